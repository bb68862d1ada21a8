//! The command-line contract with upstream kando: exit codes, messages, output artifacts,
//! argument shapes.

pub mod common;

use common::{
    bash, delete_args, fails_69, kando, ok, phase_outputs, pull_args, pull_snapshot_args,
    push_args, Backend, LocalBackend,
};

#[test]
fn output_prints_one_go_encoded_line() {
    let out = kando(&["output", "backupLocation", "s3://b/<x>&\"y\"\n"], b"");
    ok(&out);
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap(),
        "###Phase-output###: {\"key\":\"backupLocation\",\"value\":\"s3://b/\\u003cx\\u003e\\u0026\\\"y\\\"\\n\"}\n"
    );
    assert_eq!(
        phase_outputs(&out.stdout)["backupLocation"],
        "s3://b/<x>&\"y\"\n"
    );
    assert!(out.stderr.is_empty());
}

#[test]
fn output_key_with_a_dash_fails() {
    let line = fails_69(&kando(&["output", "bad-key", "v"], b""));
    assert!(line.contains("bad-key"), "{line}");
}

#[test]
fn wrong_argument_counts_fail_with_usage() {
    for args in [
        vec!["output", "onlykey"],
        vec!["output", "k", "v", "extra"],
        vec!["location", "push"],
        vec!["location", "push", "a", "b"],
        vec!["location", "pull"],
        vec!["location", "frobnicate"],
    ] {
        let out = kando(&args, b"");
        assert_eq!(out.status.code(), Some(69), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Argument mistakes, unlike runtime failures, show usage.
        assert!(stderr.contains("Usage:"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn delete_ignores_extra_arguments() {
    let b = LocalBackend::new();
    let p = b.profile();
    // The extra arguments right after the subcommand.
    let mut args = delete_args(&p, "p");
    args.splice(2..2, ["extra", "args"]);
    ok(&kando(&args, b""));
}

#[test]
fn profile_errors() {
    let b = LocalBackend::new();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "Please provide the --profile flag"),
        (
            vec!["--profile".into(), "".into()],
            "Please provide the --profile flag",
        ),
        (
            vec!["--profile".into(), "{\"Location\":".into()],
            "not valid JSON",
        ),
        (
            vec!["--profile".into(), r#"{"Location":{"type":"ftp"}}"#.into()],
            "Unsupported Location type: ftp",
        ),
        (
            vec!["--profile".into(), r#"{"Location":{"type":"gcs"}}"#.into()],
            "the gcs Location has no bucket",
        ),
        (
            vec![
                "--profile".into(),
                r#"{"Location":{"type":"azure"}}"#.into(),
            ],
            "the azure Location has no bucket",
        ),
        (
            vec![
                "--profile".into(),
                r#"{"Location":{"type":"kopia"}}"#.into(),
            ],
            "kopia",
        ),
        (
            vec![
                "--profile".into(),
                r#"{"Location":{"type":"local","path":"relative"}}"#.into(),
            ],
            "absolute",
        ),
    ];
    for (flags, expect) in cases {
        for cmd in [
            vec!["location", "push", "--path", "p", "-"],
            vec!["location", "pull", "--path", "p", "-"],
            vec!["location", "delete", "--path", "p"],
        ] {
            let mut args: Vec<&str> = cmd.clone();
            args.extend(flags.iter().map(String::as_str));
            let line = fails_69(&kando(&args, b"data"));
            assert!(line.contains(expect), "{args:?}: {line}");
        }
    }
    assert!(b.object_keys().is_empty());
}

#[test]
fn unknown_snapshot_id_fails() {
    let b = LocalBackend::new();
    let p = b.profile();
    ok(&kando(&push_args(&p, "x"), b"hello"));
    let id = "0123456789abcdef0123456789abcdef";
    let line = fails_69(&kando(&pull_snapshot_args(&p, id), b""));
    assert!(line.contains(id) && line.contains("not found"), "{line}");
    let json = format!(r#"{{"id":"{id}","logicalSize":5,"physicalSize":0}}"#);
    fails_69(&kando(&pull_snapshot_args(&p, &json), b""));
    let line = fails_69(&kando(&pull_snapshot_args(&p, "{oops"), b""));
    assert!(line.contains("kopia-snapshot"), "{line}");
}

#[test]
fn terminal_on_stdin_is_refused() {
    let b = LocalBackend::new();
    // python's pty gives kando a real terminal as stdin.
    let out = bash(
        r#"python3 -c 'import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, status = os.waitpid(pid, 0)
sys.stderr.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))' kando location push --profile "$P" --path p -"#,
        &[("P", &b.profile())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("terminal"), "{stderr}");
    assert!(b.object_keys().is_empty(), "nothing written");
}

#[test]
fn closed_stdout_is_an_error_not_a_panic() {
    let b = LocalBackend::new();
    let data = common::mixed_data(3, 8 << 20, 1 << 20);
    ok(&kando(&push_args(&b.profile(), "x"), &data));
    let out = bash(
        r#"set +o errexit; kando location pull --profile "$P" --path x - | head -c 10 > /dev/null; echo "status=${PIPESTATUS[0]}" >&2"#,
        &[("P", &b.profile())],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("status=69"), "{stderr}");
    assert!(
        stderr.contains("Error:") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn version_has_upstream_shape() {
    let out = kando(&["--version"], b"");
    ok(&out);
    let s = String::from_utf8(out.stdout).unwrap();
    let json = s.strip_prefix("kando version ").expect("prefix").trim();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    for k in ["version", "gitCommit", "buildDate"] {
        assert!(v[k].is_string(), "{k} in {s}");
    }
}

#[test]
fn stdout_carries_only_data_and_phase_output() {
    let b = LocalBackend::new();
    let p = b.profile();
    let out = kando(
        &[&["-v", "debug"][..], &push_args(&p, "x")].concat(),
        b"abc",
    );
    ok(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with("###Phase-output###: "), "{stdout}");
    let out = kando(&[&["-v", "debug"][..], &pull_args(&p, "x")].concat(), b"");
    ok(&out);
    assert_eq!(out.stdout, b"abc");
}
