//! Cloud-storage emulators on loopback (Azurite, fake-gcs-server) for integration tests,
//! shared by `azurite` and `fake_gcs`.
//!
//! An emulator runs through `scripts/emulators/server.sh start KIND` in a fresh temporary
//! directory and is stopped when its handle is dropped. Which kinds a test run uses comes
//! from `KANDO_TEST_EMULATORS` (comma list of `azurite`, `fake-gcs`; default both; `none`
//! for neither). [`start_selected`] has the semantics of `s3::start_selected`: a
//! kind that is not selected is skipped with a note; a selected kind that cannot start is
//! skipped with a note too, except under `CI=true`, where the test fails.
//!
//! [`http`] is a minimal blocking HTTP/1.1 client over `std::net::TcpStream` (plain http,
//! one request per connection), enough to set up and inspect what tests do.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};

/// Path of the start/stop script, from the crate root.
pub fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/emulators/server.sh")
}

/// Emulator kinds `scripts/emulators/server.sh` can start.
pub const KINDS: [&str; 2] = ["azurite", "fake-gcs"];

/// Kinds this run should test, from `KANDO_TEST_EMULATORS` (default: all; `none`: none).
/// Panics on an unknown kind: a typo must not turn into a silently skipped emulator.
pub fn selected_kinds() -> Vec<String> {
    let kinds: Vec<String> = match std::env::var("KANDO_TEST_EMULATORS") {
        Ok(v) if v.trim() == "none" => Vec::new(),
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect(),
        _ => KINDS.iter().map(|k| k.to_string()).collect(),
    };
    if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        panic!("KANDO_TEST_EMULATORS: unknown emulator {bad:?} (known: {KINDS:?}, or none)");
    }
    kinds
}

/// True when the kind is in [`selected_kinds`].
pub fn is_selected(kind: &str) -> bool {
    selected_kinds().iter().any(|k| k == kind)
}

/// True under CI, where a selected emulator that cannot start fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Runs `start` when `kind` is selected. `None` (after a note on stderr) when it is not
/// selected, or when it cannot start outside CI; panics when it cannot start under CI.
pub fn start_selected<T>(kind: &str, start: impl FnOnce() -> anyhow::Result<T>) -> Option<T> {
    if !is_selected(kind) {
        eprintln!("note: skipping emulator {kind}: not in KANDO_TEST_EMULATORS");
        return None;
    }
    match start() {
        Ok(server) => Some(server),
        Err(e) if in_ci() => panic!("emulator {kind} is selected but could not start: {e:#}"),
        Err(e) => {
            eprintln!("note: skipping emulator {kind}: could not start it: {e:#}");
            None
        }
    }
}

/// A running emulator, stopped on drop (through the script, which also waits for it).
pub struct Emulator {
    /// azurite or fake-gcs.
    pub kind: String,
    /// What `server.sh start` printed (`KEY=VALUE` lines).
    pub env: HashMap<String, String>,
    workdir: tempfile::TempDir,
}

impl Emulator {
    /// Starts an emulator of `kind` through the script, in its own temporary directory.
    pub fn start(kind: &str) -> anyhow::Result<Emulator> {
        let script = server_script();
        if !script.exists() {
            bail!("{} not found", script.display());
        }
        let workdir = tempfile::Builder::new()
            .prefix(&format!("kando-emu-{kind}-"))
            .tempdir()
            .context("creating the emulator's directory")?;
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(kind)
            .arg(workdir.path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            // The script cleans up after a failed start; nothing to stop.
            bail!(
                "server.sh start {kind} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        // From here on, Drop stops the emulator whatever the caller does with the value.
        Ok(Emulator {
            kind: kind.to_string(),
            env,
            workdir,
        })
    }

    /// The value `server.sh start` printed for `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<String> {
        self.env
            .get(name)
            .cloned()
            .with_context(|| format!("server.sh start {} printed no {name}", self.kind))
    }

    /// The emulator's directory (`log/`, `pids/`, `env`).
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let status = Command::new("bash")
            .arg(server_script())
            .arg("stop")
            .arg(self.workdir.path())
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "warning: stopping emulator {} in {} failed: {status:?}",
                self.kind,
                self.workdir.path().display()
            );
        }
        // KANDO_KEEP_EMULATOR_LOGS=DIR keeps the emulator's logs for debugging a failed run.
        if let Ok(dir) = std::env::var("KANDO_KEEP_EMULATOR_LOGS") {
            let _ = Command::new("cp")
                .arg("-r")
                .arg(self.workdir.path().join("log"))
                .arg(format!("{dir}/{}-{}", self.kind, std::process::id()))
                .status();
        }
    }
}

// ------------------------------------------------------------------ HTTP

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Err` with the status and body unless the status is one of `ok`.
    pub fn expect(self, what: &str, ok: &[u16]) -> anyhow::Result<Response> {
        if ok.contains(&self.status) {
            Ok(self)
        } else {
            bail!("{what}: HTTP {} {}", self.status, self.text())
        }
    }
}

/// One request to `url` (`http://HOST:PORT/path?query`, sent as is: encode it yourself)
/// with `headers` (Host, Content-Length and `Connection: close` are added), on a fresh
/// connection; reads the whole response. 60 s timeouts on connect, read and write.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("only http:// URLs: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let timeout = Duration::from_secs(60);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("no address for {host}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the response to {method} {url}"))?;
    parse_response(&raw, method == "HEAD").with_context(|| format!("{method} {url}"))
}

fn parse_response(raw: &[u8], head_only: bool) -> anyhow::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers in the response")?;
    let head = std::str::from_utf8(&raw[..end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(resp);
    }
    resp.body = if resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        dechunk(rest)?
    } else if let Some(n) = resp.header("content-length") {
        let n: usize = n.parse().context("bad Content-Length")?;
        anyhow::ensure!(
            rest.len() >= n,
            "body cut short: {} of {n} bytes",
            rest.len()
        );
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line not terminated")?;
        let line = std::str::from_utf8(&data[..eol])?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {line:?}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        anyhow::ensure!(data.len() >= size + 2, "chunk cut short");
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so `/` becomes `%2F`):
/// for a query value, or an object name in a GCS JSON API path.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes a path, keeping `/` (for blob names in an Azure URL).
pub fn pct_encode_path(s: &str) -> String {
    s.split('/').map(pct_encode).collect::<Vec<_>>().join("/")
}

/// Decodes `%XX` escapes and `+` (as in a query string); a malformed escape stays as is.
pub fn pct_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `prefix-` and 12 random hex digits: valid as a container or bucket name.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}
