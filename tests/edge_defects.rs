//! Edge cases found by review, one section per defect; every test here failed before
//! its fix.

pub mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    delete_args, fails_69, kando, kando_bin, kando_command, ok, pull_args, pull_to_args, pull_with,
    push_args, push_command_args, push_id, push_with, Backend, LocalBackend,
};

/// The repository directory of a [`LocalBackend`] (its profile's prefix, default repo dir).
fn repo_dir(b: &LocalBackend) -> PathBuf {
    b.dir().join("team/pre/kando-repo")
}

/// `kando location pull --profile P --path PATH TARGET`.
fn pull_to(profile: &str, path: &str, target: &Path) -> Output {
    kando(&pull_to_args(profile, path, target.to_str().unwrap()), b"")
}

/// The snapshots `repo list` shows (one line each).
fn listed(profile: &str) -> Vec<String> {
    let out = kando(&["repo", "list", "--profile", profile], b"");
    ok(&out);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Entries of `dir` (names).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Polls `cond` until it holds; a bounded loop, never a fixed wait. `child` failing first
/// ends the test with its stderr.
fn poll_until(what: &str, child: &mut std::process::Child, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !cond() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("kando ended ({status}) before {what}: {stderr}");
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn send(child: &std::process::Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

// ---- 1. Pull to a FIFO or a device writes through it. ----

#[test]
fn pull_to_a_fifo_writes_through_it() {
    let b = LocalBackend::new();
    let profile = b.profile();
    let data = common::random_bytes(1, 3 << 20);
    push_id(&profile, "p", &data);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // A second name for the FIFO, to release the reader if kando never opens it.
    let link = dir.path().join("fifo-link");
    std::fs::hard_link(&fifo, &link).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            got
        })
    };
    let out = pull_to(&profile, "p", &fifo);
    if !reader.is_finished() {
        // Kando wrote elsewhere: open and close a writer so the reader sees end of file.
        // Non-blocking: it fails harmlessly if the reader has already closed its end.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&link);
    }
    let got = reader.join().unwrap();
    ok(&out);
    assert!(got == data, "the reader got {} bytes", got.len());
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(
        meta.file_type().is_fifo(),
        "replaced: {:?}",
        meta.file_type()
    );
    assert_eq!(entries(dir.path()), ["fifo", "fifo-link"]);
}

#[test]
fn pull_through_a_link_to_dev_null_keeps_both() {
    let b = LocalBackend::new();
    let profile = b.profile();
    push_id(&profile, "p", &common::random_bytes(2, 1 << 20));
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("out");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    ok(&pull_to(&profile, "p", &link));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(entries(dir.path()), ["out"]);
}

#[test]
fn pull_to_dev_null_keeps_it_a_device() {
    let b = LocalBackend::new();
    let profile = b.profile();
    push_id(&profile, "p", &common::random_bytes(3, 1 << 20));
    ok(&pull_to(&profile, "p", Path::new("/dev/null")));
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn pull_to_a_character_device_node_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("null");
    let c = std::ffi::CString::new(node.to_str().unwrap()).unwrap();
    // SAFETY: mknod on a NUL-terminated path; the same device as /dev/null (1, 3).
    if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } != 0 {
        eprintln!(
            "skipped: cannot make a device node here ({})",
            std::io::Error::last_os_error()
        );
        return;
    }
    let b = LocalBackend::new();
    let profile = b.profile();
    push_id(&profile, "p", &common::random_bytes(4, 1 << 20));
    ok(&pull_to(&profile, "p", &node));
    assert!(std::fs::symlink_metadata(&node)
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(entries(dir.path()), ["null"]);
}

#[test]
fn pull_to_a_bind_mounted_file_copies_in_place() {
    // A bind-mounted file cannot be renamed over (EBUSY). Needs a private mount namespace
    // (root or CAP_SYS_ADMIN); skipped where there is none.
    let probe = Command::new("unshare").args(["-m", "true"]).output();
    if !matches!(&probe, Ok(o) if o.status.success()) {
        eprintln!("skipped: no private mount namespace here");
        return;
    }
    let b = LocalBackend::new();
    let profile = b.profile();
    let data = common::random_bytes(11, 1 << 20);
    push_id(&profile, "p", &data);
    let dir = tempfile::tempdir().unwrap();
    let mounted = dir.path().join("mounted");
    let target = dir.path().join("target");
    // Longer than the snapshot: the copy must truncate.
    std::fs::write(&mounted, vec![b'x'; 2 << 20]).unwrap();
    std::fs::write(&target, b"under the mount").unwrap();
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(r#"mount --bind "$1" "$2" && exec "$3" location pull --profile "$4" --path p "$2""#)
        .arg("sh")
        .args([&mounted, &target, &kando_bin()])
        .arg(&profile)
        .env_remove("KANDO_PASSWORD")
        .env_remove("KANDO_PASSWORD_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ok(&out);
    // Written through the mount into the mounted file; the file under it untouched.
    assert!(std::fs::read(&mounted).unwrap() == data);
    assert_eq!(std::fs::read(&target).unwrap(), b"under the mount");
    assert_eq!(entries(dir.path()), ["mounted", "target"]);
}

// ---- 2. Long target names. ----

#[test]
fn pull_to_a_250_byte_file_name() {
    let b = LocalBackend::new();
    let profile = b.profile();
    let data = common::random_bytes(5, 1 << 20);
    push_id(&profile, "p", &data);
    let dir = tempfile::tempdir().unwrap();
    let name = "n".repeat(250);
    let target = dir.path().join(&name);
    ok(&pull_to(&profile, "p", &target));
    assert!(std::fs::read(&target).unwrap() == data);
    assert_eq!(entries(dir.path()), std::slice::from_ref(&name));
    // Over an existing file of that name, too.
    ok(&pull_to(&profile, "p", &target));
    assert!(std::fs::read(&target).unwrap() == data);
    assert_eq!(entries(dir.path()), [name]);
}

// ---- 3. Signals. ----

/// Asserts the one-line interruption report.
fn interrupted(out: &Output, sig: &str) -> String {
    let line = fails_69(out);
    assert!(line.contains(sig), "{line}");
    line
}

#[test]
fn sigterm_during_pull_to_a_file_removes_the_partial_output() {
    let b = LocalBackend::new();
    let profile = b.profile();
    // Zeros dedup to one chunk: quick to push, and long enough to pull that the signal
    // lands mid-stream.
    push_id(&profile, "big", &vec![0u8; 256 << 20]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("restored");
    let mut child = kando_command()
        .args(pull_to_args(&profile, "big", target.to_str().unwrap()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The temporary output exists: the pull is under way.
    poll_until("the temporary output", &mut child, || {
        !entries(dir.path()).is_empty()
    });
    send(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let line = interrupted(&out, "SIGTERM");
    assert!(line.contains("removed"), "{line}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

#[test]
fn signals_during_push_commit_nothing() {
    let b = LocalBackend::new();
    let profile = b.profile();
    for (sig, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let mut child = common::spawn_kando(&push_args(&profile, "p"));
        let mut stdin = child.stdin.take().unwrap();
        // More than the pipe holds (1 MiB): once written, kando is reading its input.
        stdin
            .write_all(&common::random_bytes(sig as u64, 4 << 20))
            .unwrap();
        send(&child, sig);
        // The input stays open: only the signal can end the push.
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        let line = interrupted(&out, name);
        assert!(line.contains("nothing was committed"), "{line}");
        assert!(out.stdout.is_empty());
        assert_eq!(listed(&profile), Vec::<String>::new(), "after {name}");
    }
}

// ---- 4. Closed stdout. ----

/// Runs `kando ARGS >&-` (stdout closed) through sh, feeding `stdin`.
fn with_stdout_closed(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec "$@" >&-"#)
        .arg("sh")
        .arg(kando_bin())
        .args(args)
        .env_remove("KANDO_PASSWORD")
        .env_remove("KANDO_PASSWORD_FILE");
    common::run_feeding(&mut cmd, stdin)
}

#[test]
fn pull_to_a_closed_stdout_fails() {
    let b = LocalBackend::new();
    let profile = b.profile();
    push_id(&profile, "p", &common::random_bytes(6, 1 << 20));
    let out = with_stdout_closed(&pull_args(&profile, "p"), b"");
    let line = fails_69(&out);
    assert!(line.contains("standard output is closed"), "{line}");
}

#[test]
fn push_with_stdout_closed_fails_before_committing() {
    let b = LocalBackend::new();
    let profile = b.profile();
    ok(&kando(&["repo", "init", "--profile", &profile], b""));
    let out = with_stdout_closed(&push_args(&profile, "p"), &common::random_bytes(7, 1 << 20));
    let line = fails_69(&out);
    assert!(line.contains("standard output is closed"), "{line}");
    assert_eq!(listed(&profile), Vec::<String>::new());
    assert!(common::files_under(&repo_dir(&b).join("packs")).is_empty());
}

// ---- 5. Numbers out of range. ----

#[test]
fn out_of_range_numbers_fail_cleanly() {
    let b = LocalBackend::new();
    let profile = b.profile();
    let s3 = r#"{"Location":{"type":"s3Compliant","bucket":"b","endpoint":"http://127.0.0.1:1","region":"us-east-1"},"Credential":{"Type":"keyPair","KeyPair":{"ID":"a","Secret":"s"}}}"#;
    let huge = "18446744073709551615";
    let owned = |args: Vec<&str>| args.into_iter().map(str::to_string).collect::<Vec<_>>();
    let push = |extra: &[&str]| owned(push_with(&profile, "p", extra));
    let pull = |extra: &[&str]| owned(pull_with(&profile, "p", extra));
    type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (push(&[]), vec![("KANDO_LOCK_WAIT", huge)]),
        (push(&["--lock-wait", huge]), vec![]),
        (push(&["--lock-wait", "31536001"]), vec![]),
        (push(&[]), vec![("KANDO_LOCK_STALE_AFTER", huge)]),
        (push(&[]), vec![("KANDO_GC_GRACE", huge)]),
        (push(&["--gc-grace", "31536001"]), vec![]),
        (push(&["--lock-stale-after", huge]), vec![]),
        (push(&[]), vec![("KANDO_PROGRESS_INTERVAL", "nan")]),
        (push(&[]), vec![("KANDO_PROGRESS_INTERVAL", "inf")]),
        (push(&[]), vec![("KANDO_PROGRESS_INTERVAL", "-1")]),
        (push(&["--progress-interval", "NaN"]), vec![]),
        (push(&["--progress-interval", "1e300"]), vec![]),
        (push(&["--jobs", "3000"]), vec![]),
        (push(&["--jobs", "0"]), vec![]),
        (push(&["--jobs", huge]), vec![]),
        (push(&["--uploads", "0"]), vec![]),
        (push(&["--uploads", "100000"]), vec![]),
        (push(&["--pack-size-mib", "0"]), vec![]),
        (push(&["--pack-size-mib", "100000"]), vec![]),
        (push(&["--pack-size-mib", huge]), vec![]),
        (pull(&["--reads", "0"]), vec![]),
        (pull(&["--reads", "100000"]), vec![]),
        (pull(&["--reads", huge]), vec![]),
        (
            owned(push_args(s3, "p")),
            vec![("KANDO_S3_REQUEST_TIMEOUT", "nan")],
        ),
        (
            owned(push_args(s3, "p")),
            vec![("KANDO_S3_REQUEST_TIMEOUT", "0")],
        ),
    ];
    for (args, env) in cases {
        let mut cmd = kando_command();
        cmd.args(&args);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = common::run_feeding(&mut cmd, b"data");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(69),
            "{args:?} {env:?}: exit {:?}, stderr: {stderr}",
            out.status
        );
        assert!(!stderr.contains("panicked"), "{args:?} {env:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?} {env:?}: {stderr}");
        assert!(
            lines[0].starts_with("Error: "),
            "{args:?} {env:?}: {stderr}"
        );
    }
    // Nothing was pushed by any of them; the limits themselves are accepted.
    assert!(b.object_keys().is_empty(), "{:?}", b.object_keys());
    let limits = push_with(
        &profile,
        "p",
        &[
            "--progress-interval",
            "0.05",
            "--lock-wait",
            "31536000",
            "--lock-stale-after",
            "31536000",
            "--uploads",
            "64",
            "--jobs",
            "1",
        ],
    );
    ok(&kando(&limits, b"data"));
}

// ---- 6. Password files that never end. ----

#[test]
fn password_file_dev_zero_is_refused() {
    let b = LocalBackend::new();
    let p = b.profile();
    let out = kando(
        &push_with(&p, "p", &["--password-file", "/dev/zero"]),
        b"data",
    );
    let line = fails_69(&out);
    assert!(line.contains("password"), "{line}");
    assert!(b.object_keys().is_empty());
}

// ---- 7. An empty --from-command. ----

#[test]
fn empty_from_command_commits_nothing() {
    let b = LocalBackend::new();
    let profile = b.profile();
    ok(&kando(&["repo", "init", "--profile", &profile], b""));
    for cmd in ["", "   ", "\t\n"] {
        let out = kando(&push_command_args(&profile, "p", cmd), b"");
        let line = fails_69(&out);
        assert!(line.contains("from-command"), "{line}");
    }
    assert_eq!(listed(&profile), Vec::<String>::new());
}

// ---- 8. A damaged key slot is not a wrong password. ----

fn encrypted_kando(args: &[&str]) -> Output {
    common::run_feeding(kando_command().env("KANDO_PASSWORD", "pw").args(args), b"")
}

#[test]
fn damaged_config_key_slot_is_reported_as_damage() {
    let b = LocalBackend::new();
    let profile = b.profile();
    let data = common::random_bytes(8, 1 << 20);
    ok(&common::run_feeding(
        kando_command()
            .env("KANDO_PASSWORD", "pw")
            .args(push_args(&profile, "p")),
        &data,
    ));
    let config_path = repo_dir(&b).join("config");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let config: serde_json::Value = serde_json::from_str(&original).unwrap();
    let salt = config["encryption"]["salt"].as_str().unwrap().to_string();
    let wrapped = config["encryption"]["wrapped_key"]
        .as_str()
        .unwrap()
        .to_string();
    let pull = pull_args(&profile, "p");
    let damage = |field: &str, value: String| {
        let mut c = config.clone();
        c["encryption"][field] = serde_json::Value::String(value);
        std::fs::write(&config_path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    };
    for (field, value) in [
        ("salt", salt[..16].to_string()),           // truncated, still hex
        ("salt", format!("{}x", &salt[1..])),       // not hex
        ("wrapped_key", wrapped[..40].to_string()), // truncated
        ("wrapped_key", format!("{wrapped}00")),    // too long
    ] {
        damage(field, value.clone());
        let line = fails_69(&encrypted_kando(&pull));
        assert!(line.contains("damaged"), "{field}={value}: {line}");
        assert!(!line.contains("wrong password"), "{field}={value}: {line}");
    }
    // A changed byte inside a well-formed wrapped key cannot be told from a wrong password.
    let mut flipped = wrapped.clone().into_bytes();
    flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
    damage("wrapped_key", String::from_utf8(flipped).unwrap());
    let line = fails_69(&encrypted_kando(&pull));
    assert!(line.contains("wrong password"), "{line}");
    // Restored, it opens again.
    std::fs::write(&config_path, original).unwrap();
    let out = encrypted_kando(&pull);
    ok(&out);
    assert!(out.stdout == data);
}

// ---- 9. Delete leaves no empty directories. ----

#[test]
fn delete_leaves_no_empty_ref_directories() {
    let b = LocalBackend::new();
    let profile = b.profile();
    push_id(&profile, "a/b/c", b"abc");
    push_id(&profile, "keep/me", b"keep");
    ok(&kando(&delete_args(&profile, "a"), b""));
    let refs = repo_dir(&b).join("refs");
    let mut dirs = Vec::new();
    let mut stack = vec![refs.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
                stack.push(e.path());
            }
        }
    }
    dirs.sort();
    assert_eq!(
        dirs,
        [refs.join("keep"), refs.join("keep/me")],
        "left behind"
    );
    assert_eq!(listed(&profile).len(), 1);
    ok(&kando(&delete_args(&profile, "keep"), b""));
    assert!(!refs.exists() || entries(&refs).is_empty());
    // The repository itself stays, and takes new pushes under the pruned paths.
    assert!(repo_dir(&b).join("config").is_file());
    push_id(&profile, "a/b/c", b"again");
    assert_eq!(listed(&profile).len(), 1);
}

// ---- 10. Paths whose keys would not fit. ----

#[test]
fn over_long_escaped_path_component_fails_before_writing() {
    let b = LocalBackend::new();
    let profile = b.profile();
    // 29 CJK characters: 87 bytes, each escaped to `!XX`: 261 bytes, over 255.
    let path = format!("db/{}", "数".repeat(29));
    let out = kando(
        &push_args(&profile, &path),
        &common::random_bytes(9, 4 << 20),
    );
    let line = fails_69(&out);
    assert!(line.contains("255"), "{line}");
    assert!(b.object_keys().is_empty(), "{:?}", b.object_keys());
    // One character fewer fits, and round-trips.
    let fits = format!("db/{}", "数".repeat(28));
    let data = common::random_bytes(10, 1 << 20);
    let id = push_id(&profile, &fits, &data);
    let out = common::pull_id(&profile, &id);
    ok(&out);
    assert!(out.stdout == data);
}

#[test]
fn over_long_ref_key_fails_before_writing() {
    let b = LocalBackend::new();
    let profile = b.profile();
    // 1000 bytes of path, each component fine, escaped to well over 1024 bytes of key.
    let path = vec!["é".repeat(20); 25].join("/");
    assert!(path.len() <= 1024);
    let line = fails_69(&kando(&push_args(&profile, &path), b"data"));
    assert!(line.contains("1024"), "{line}");
    assert!(b.object_keys().is_empty(), "{:?}", b.object_keys());
}
