//! Progress output: periodic lines on stderr when it is not a terminal, never on stdout,
//! a summary at the end, silence with --quiet.

pub mod common;

use std::io::{BufRead, BufReader, Write};

use common::{pull_args, push_args, random_bytes, spawn_kando, Backend, LocalBackend};

#[test]
fn progress_lines_go_to_stderr_during_a_push() {
    let b = LocalBackend::new();
    let p = b.profile();
    let mut child =
        spawn_kando(&[&["--progress-interval", "0.05"][..], &push_args(&p, "p")].concat());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&random_bytes(1, 4 << 20)).unwrap();
    // The push is now waiting for more input; its progress line must arrive meanwhile.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr closed before a progress line"
        );
        if line.starts_with("kando: push: ") {
            break;
        }
    }
    assert!(
        line.contains("/s)") && line.contains("deduplicated"),
        "{line}"
    );
    stdin.write_all(&random_bytes(2, 1 << 20)).unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{rest}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "stdout: {stdout}");
    assert!(stdout.starts_with("###Phase-output###: "));
    assert!(
        rest.lines().any(|l| l.starts_with("kando: pushed ")),
        "summary line: {rest}"
    );
}

#[test]
fn quiet_silences_progress_but_keeps_the_summary() {
    let b = LocalBackend::new();
    let p = b.profile();
    let data = random_bytes(3, 64 << 20);
    let push = [
        &["--quiet", "--progress-interval", "0.05"][..],
        &push_args(&p, "p"),
    ]
    .concat();
    let out = common::kando(&push, &data);
    common::ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("kando: push: "), "{stderr}");
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.starts_with("kando: pushed "))
            .count(),
        1,
        "{stderr}"
    );
    let pulled = common::kando(&[&["-q"][..], &pull_args(&p, "p")].concat(), b"");
    common::ok(&pulled);
    assert!(pulled.stdout == data);
    assert!(String::from_utf8_lossy(&pulled.stderr).contains("kando: pulled "));
}
