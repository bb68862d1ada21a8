//! Integrity and hostile input (issue 6): failed producers, corrupted or missing objects,
//! hostile profiles, paths and snapshot arguments, read-only and full filesystems.

pub mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    delete_args, delete_snapshot_args, fails_69, gc_args, kando, mixed_data, ok, pull_args,
    pull_snapshot_args, push_args, push_command_args, snapshot_of, Backend, LocalBackend,
};

fn repo_dir(b: &LocalBackend) -> PathBuf {
    b.dir().join("team/pre/kando-repo")
}

fn files_under(dir: &Path, sub: &str) -> Vec<PathBuf> {
    common::files_under(&dir.join(sub))
}

fn push(b: &LocalBackend, path: &str, data: &[u8]) -> String {
    common::push_id(&b.profile(), path, data)
}

fn pull(b: &LocalBackend, id: &str) -> std::process::Output {
    common::pull_id(&b.profile(), id)
}

fn verify(b: &LocalBackend) -> std::process::Output {
    kando(
        &["repo", "verify", "--profile", &b.profile(), "--read-data"],
        b"",
    )
}

#[test]
fn from_command_commits_only_when_the_producer_succeeds() {
    let b = LocalBackend::new();
    let p = b.profile();
    let out = kando(&push_command_args(&p, "db", "seq 1 100000"), b"");
    ok(&out);
    let id = snapshot_of(&out, "kandoOutput")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pulled = pull(&b, &id);
    ok(&pulled);
    let want: String = (1..=100000).map(|i| format!("{i}\n")).collect();
    assert!(pulled.stdout == want.as_bytes());

    // A dump that dies halfway: its partial output must not become a backup.
    let out = kando(
        &push_command_args(&p, "broken", "seq 1 100000; exit 3"),
        b"",
    );
    let line = fails_69(&out);
    assert!(
        line.contains("exit status: 3") && line.contains("no snapshot"),
        "{line}"
    );
    assert!(
        out.stdout.is_empty(),
        "no output artifact for a failed dump"
    );
    let list = kando(&["repo", "list", "--profile", &p, "--path", "broken"], b"");
    ok(&list);
    assert!(
        list.stdout.is_empty(),
        "no snapshot: {}",
        String::from_utf8_lossy(&list.stdout)
    );
    // Both a source and --from-command is an argument mistake.
    let out = kando(
        &[
            "location",
            "push",
            "-",
            "--profile",
            &p,
            "--from-command",
            "true",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(69));
}

#[test]
fn a_flipped_byte_in_a_pack_is_caught() {
    let b = LocalBackend::new();
    let data = mixed_data(1, 6 << 20, 1 << 20);
    let id = push(&b, "x", &data);
    ok(&verify(&b));
    let pack = files_under(&repo_dir(&b), "packs")[0].clone();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&pack, &bytes).unwrap();
    let line = fails_69(&pull(&b, &id));
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(line.contains(&id) && line.contains(&pack_name), "{line}");
    let out = verify(&b);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains(&pack_name), "{stderr}");
    // gc refuses to rewrite data it cannot read, and deletes nothing.
    push(&b, "y", &mixed_data(2, 1 << 20, 1 << 19));
    let before = files_under(&repo_dir(&b), "packs");
    let p = b.profile();
    let out = kando(&gc_args(&p, &["--repack-dead-pct", "0"]), b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Either nothing needed rewriting (ok) or gc stopped on the corrupt pack; never loss.
    if !out.status.success() {
        assert!(
            stderr.contains("corrupt") && stderr.contains("nothing was deleted"),
            "{stderr}"
        );
    }
    assert!(files_under(&repo_dir(&b), "packs").len() >= before.len());
}

#[test]
fn a_missing_pack_is_caught_by_pull_verify_and_gc() {
    let b = LocalBackend::new();
    let id = push(&b, "x", &mixed_data(3, 6 << 20, 1 << 20));
    let pack = files_under(&repo_dir(&b), "packs")[0].clone();
    std::fs::remove_file(&pack).unwrap();
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    let line = fails_69(&pull(&b, &id));
    assert!(line.contains(&pack_name), "{line}");
    let out = kando(&["repo", "verify", "--profile", &b.profile()], b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        stderr.contains(&pack_name) && stderr.contains("missing"),
        "{stderr}"
    );
    let out = kando(&gc_args(&b.profile(), &[]), b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(
        stderr.contains("stopped before deleting anything"),
        "{stderr}"
    );
}

#[test]
fn truncated_index_and_manifest_are_caught() {
    let b = LocalBackend::new();
    let id = push(&b, "x", &mixed_data(4, 3 << 20, 1 << 20));
    let seg = files_under(&repo_dir(&b), "index")[0].clone();
    let bytes = std::fs::read(&seg).unwrap();
    std::fs::write(&seg, &bytes[..bytes.len() / 2]).unwrap();
    let line = fails_69(&pull(&b, &id));
    assert!(
        line.contains(&seg.file_name().unwrap().to_string_lossy().into_owned()),
        "{line}"
    );
    std::fs::write(&seg, &bytes).unwrap();
    ok(&pull(&b, &id));

    let manifest = repo_dir(&b).join("snapshots").join(&id);
    let bytes = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &bytes[..bytes.len() - 10]).unwrap();
    let line = fails_69(&pull(&b, &id));
    assert!(line.contains(&format!("snapshots/{id}")), "{line}");
    let out = verify(&b);
    assert_eq!(out.status.code(), Some(69));
}

#[test]
fn hostile_profiles_fail_cleanly() {
    let b = LocalBackend::new();
    let dir = b.dir().display().to_string();
    let huge = format!(
        r#"{{"Location":{{"type":"local","path":"{dir}","junk":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    let deep = format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let bad_b64 = r#"{"Location":{"type":"s3Compliant","bucket":"b"},"Credential":{"Type":"secret","Secret":{"type":"secrets.kanister.io/aws","data":{"aws_access_key_id":"@@@","aws_secret_access_key":"eA=="}}}}"#;
    let cases: Vec<(String, &str)> = vec![
        (huge, "at most"),
        (deep, "not valid JSON"),
        (
            r#"{"Location":{"type":"local","path":17}}"#.to_string(),
            "must be a string",
        ),
        (
            r#"{"Location":"local"}"#.to_string(),
            "must be a JSON object",
        ),
        (
            r#"{"Location":{"type":"local","path":"/x"},"SkipSSLVerify":"yes"}"#.to_string(),
            "SkipSSLVerify",
        ),
        (r#"[1,2,3]"#.to_string(), "must be a JSON object"),
        (bad_b64.to_string(), "base64"),
    ];
    for (profile, expect) in cases {
        let line = fails_69(&kando(&push_args(&profile, "p"), b"data"));
        assert!(line.contains(expect), "{expect}: {line}");
        assert!(line.len() < 500, "one short line, got {} bytes", line.len());
    }
    assert!(b.object_keys().is_empty());
}

#[test]
fn hostile_paths_and_snapshot_args_fail_cleanly() {
    let b = LocalBackend::new();
    let p = b.profile();
    push(&b, "ok", b"fine");
    let before = b.object_keys();
    let long = "x/".repeat(600);
    for path in ["../../etc/passwd", "a/../../b", "a/\u{1}/b", long.as_str()] {
        fails_69(&kando(&push_args(&p, path), b"data"));
        fails_69(&kando(&pull_args(&p, path), b""));
        fails_69(&kando(&delete_args(&p, path), b""));
    }
    for snap in [
        "not json at all",
        "{\"id\":",
        "{\"id\":\"../../x\"}",
        "[]",
        "0123",
    ] {
        fails_69(&kando(&pull_snapshot_args(&p, snap), b""));
        fails_69(&kando(&delete_snapshot_args(&p, snap), b""));
    }
    // A component that is long but legal is fine (escaped into the ref key).
    push(&b, &format!("dir/{}", "n".repeat(200)), b"long name");
    assert!(b.object_keys().len() > before.len());
    // Nothing appeared outside the location.
    assert!(!b.dir().parent().unwrap().join("etc").exists());
}

/// Mounts a tmpfs for the test; `None` (with a note) where mounting is not allowed, which
/// under CI=true is a failure.
fn tmpfs(opts: &str) -> Option<(tempfile::TempDir, Unmount)> {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "cannot mount a tmpfs under CI (needs root)"
        );
        eprintln!("note: cannot mount a tmpfs here (not root?); skipping");
        return None;
    }
    let path = dir.path().to_path_buf();
    Some((dir, Unmount(path)))
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_filesystem_fails_cleanly_and_leaves_no_snapshot() {
    let Some((dir, _unmount)) = tmpfs("size=4m") else {
        return;
    };
    let profile = format!(
        r#"{{"Location":{{"type":"local","path":"{}"}}}}"#,
        dir.path().display()
    );
    let small = kando(&push_args(&profile, "small"), b"fits");
    ok(&small);
    let big = common::random_bytes(5, 16 << 20);
    let line = fails_69(&kando(&push_args(&profile, "big"), &big));
    assert!(line.contains("No space left"), "{line}");
    let list = kando(&["repo", "list", "--profile", &profile], b"");
    ok(&list);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert_eq!(
        listed.lines().count(),
        1,
        "only the small snapshot: {listed}"
    );
    ok(&kando(&pull_args(&profile, "small"), b""));
}

#[test]
fn read_only_directory_fails_cleanly() {
    let Some((dir, _unmount)) = tmpfs("ro,size=1m") else {
        return;
    };
    let profile = format!(
        r#"{{"Location":{{"type":"local","path":"{}"}}}}"#,
        dir.path().display()
    );
    let line = fails_69(&kando(&push_args(&profile, "p"), b"data"));
    assert!(line.contains("Read-only"), "{line}");
}
