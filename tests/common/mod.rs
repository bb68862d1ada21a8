//! Shared test support: running the built `kando` binary, repositories to run it against,
//! deterministic test data, and Kanister-style output parsing.
//!
//! Every test binary that runs kando declares this module as `pub mod common;`. The helpers
//! of one topic (scenarios, S3 servers, fault proxy, ...) live beside it and are declared
//! only by the binaries that use them, also `pub`:
//!
//! ```ignore
//! pub mod common;
//! #[path = "common/scenarios.rs"]
//! pub mod scenarios;
//! ```
//!
//! `pub` makes these modules the test crate's interface, as a test-support library would
//! be, so a binary that calls only some of the helpers gets no dead-code warnings for the
//! rest (almost every helper here is used by some binaries and not by others).

mod args;

pub use args::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The binary under test.
pub fn kando_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kando"))
}

/// The password every kando this test binary runs gets (see [`encrypt_every_run`]).
static PASSWORD: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every kando this test binary starts run with `KANDO_PASSWORD=password`, so the
/// plain suites run unchanged against encrypted repositories. A test binary either calls
/// this (always with the same password) or never: tests of a binary share a process.
pub fn encrypt_every_run(password: &str) {
    assert_eq!(PASSWORD.get_or_init(|| password.to_string()), password);
}

/// A `Command` for the binary under test, with the test binary's password if it set one
/// (and never one inherited from the developer's shell).
pub fn kando_command() -> Command {
    let mut cmd = Command::new(kando_bin());
    apply_password(&mut cmd);
    // Deleted data is reclaimed by the same delete (the grace period's own tests set it).
    cmd.env("KANDO_GC_GRACE", "0");
    cmd
}

fn apply_password(cmd: &mut Command) {
    cmd.env_remove("KANDO_PASSWORD")
        .env_remove("KANDO_PASSWORD_FILE");
    if let Some(pw) = PASSWORD.get() {
        cmd.env("KANDO_PASSWORD", pw);
    }
}

/// A place a repository lives, reachable through a rendered profile.
pub trait Backend {
    /// `{{ toJson .Profile }}` for this repository.
    fn profile(&self) -> String;
    /// Every object key under the location (to check that nothing was written).
    fn object_keys(&self) -> Vec<String>;
    /// Total bytes stored under the location.
    fn stored_bytes(&self) -> u64;
    /// Short name for messages.
    fn name(&self) -> String;
}

/// The repository's objects, less the gc journal's newest records (a few hundred bytes of
/// state that always remains).
pub fn repo_objects(b: &dyn Backend) -> Vec<String> {
    let mut keys: Vec<String> = b
        .object_keys()
        .into_iter()
        .map(|k| k.rsplit("kando-repo/").next().unwrap().to_string())
        .filter(|k| !k.starts_with("journal/"))
        .collect();
    keys.sort();
    keys
}

/// A repository in a temporary local directory, under a prefix.
pub struct LocalBackend {
    dir: tempfile::TempDir,
}

impl LocalBackend {
    /// A fresh, empty location.
    pub fn new() -> Self {
        LocalBackend {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The location's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for LocalBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn walk(dir: &Path, out: &mut Vec<(String, u64)>, root: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out, root);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, e.metadata().map(|m| m.len()).unwrap_or(0)));
        }
    }
}

impl Backend for LocalBackend {
    fn profile(&self) -> String {
        format!(
            r#"{{"Location":{{"type":"local","path":"{}","prefix":"team/pre"}},"SkipSSLVerify":false}}"#,
            self.dir.path().display()
        )
    }
    fn object_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out, self.dir.path());
        out.into_iter().map(|(k, _)| k).collect()
    }
    fn stored_bytes(&self) -> u64 {
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out, self.dir.path());
        out.into_iter().map(|(_, n)| n).sum()
    }
    fn name(&self) -> String {
        "local".to_string()
    }
}

/// Runs kando with `args`, feeding `stdin`.
pub fn kando(args: &[&str], stdin: &[u8]) -> Output {
    run_feeding(kando_command().args(args), stdin)
}

/// Starts kando with `args`, its standard input, output and error piped.
pub fn spawn_kando(args: &[&str]) -> Child {
    kando_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `cmd`, writing `stdin` to it from another thread, and collects its output.
pub fn run_feeding(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kando runs");
    let mut sin = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Runs a shell command line under `bash -o errexit -o pipefail -c`, with `KANDO` on PATH
/// and `env` set.
pub fn bash(script: &str, env: &[(&str, &str)]) -> Output {
    let bin_dir = kando_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-o", "errexit", "-o", "pipefail", "-c", script])
        .env("PATH", path)
        .stdin(Stdio::null());
    apply_password(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Panics unless `got` is exactly `want`, without printing megabytes: the lengths and
/// the first difference.
#[track_caller]
pub fn same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: wrong bytes: got {} bytes, want {}, first difference at {first}",
            got.len(),
            want.len()
        );
    }
}

/// Asserts success, showing stderr otherwise.
#[track_caller]
pub fn ok(out: &Output) -> &Output {
    assert!(
        out.status.success(),
        "expected success, got {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Asserts exit 69 with exactly one `Error:` line, no usage text and no panic; returns it.
#[track_caller]
pub fn fails_69(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(69),
        "expected exit 69; stderr: {stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "one Error: line expected, got: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("Usage:"),
        "runtime errors print no usage: {stderr}"
    );
    errors[0].to_string()
}

/// Parses output artifacts the way Kanister does: the marker anywhere in a line, then the
/// rest of the line must decode as `{"key":…,"value":…}`. Last value of a key wins.
pub fn phase_outputs(text: &[u8]) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for line in String::from_utf8_lossy(text).lines() {
        if let Some(i) = line.find("###Phase-output###:") {
            let rest = line[i + "###Phase-output###:".len()..].trim();
            let v: serde_json::Value = serde_json::from_str(rest).expect("phase output is JSON");
            out.insert(
                v["key"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            );
        }
    }
    out
}

/// The snapshot JSON a push emitted under `key`, decoded.
pub fn snapshot_of(out: &Output, key: &str) -> serde_json::Value {
    let outputs = phase_outputs(&out.stdout);
    let value = outputs
        .get(key)
        .unwrap_or_else(|| panic!("no output {key}: {}", String::from_utf8_lossy(&out.stdout)));
    serde_json::from_str(value).expect("snapshot JSON")
}

/// Pushes `data` to `path` and returns the new snapshot's id.
pub fn push_id(profile: &str, path: &str, data: &[u8]) -> String {
    let out = kando(&push_args(profile, path), data);
    ok(&out);
    snapshot_of(&out, "kandoOutput")["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Pulls snapshot `id` to stdout.
pub fn pull_id(profile: &str, id: &str) -> Output {
    kando(&pull_snapshot_args(profile, id), b"")
}

/// Deterministic incompressible bytes.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.finalize_xof().fill(&mut out);
    out
}

/// Deterministic text shaped like a SQL dump (COPY rows: numbers, hex, JSON), unique
/// enough that it does not dedup against itself.
pub fn dump_text(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 256);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut row = 0u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        row += 1;
        writeln!(
            out,
            "{row}\t{}\t{:016x}{:08x}\t{{\"user\": \"u{}\", \"score\": {}, \"tags\": [\"a\", \"b{}\"]}}",
            x % 100_000,
            x,
            row,
            x % 977,
            x % 10_000,
            x % 13
        )
        .unwrap();
    }
    out.truncate(len);
    out
}

/// Text and random blocks alternating, `block` bytes each.
pub fn mixed_data(seed: u64, len: usize, block: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while out.len() < len {
        let n = block.min(len - out.len());
        if i % 2 == 0 {
            out.extend(dump_text(seed + i, n));
        } else {
            out.extend(random_bytes(seed + i, n));
        }
        i += 1;
    }
    out
}

/// Every file under `dir`, sorted (none if it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A TCP port on 127.0.0.1 that nothing listens on (just released by the OS).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
