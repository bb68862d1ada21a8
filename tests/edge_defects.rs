//! Edge cases found by review, one section per defect; every test here failed before
//! its fix.

mod common;

use std::path::Path;
use std::process::Output;

use common::{kando, ok, push_id, Backend, LocalBackend};

/// `kando location pull --profile P --path PATH TARGET`.
fn pull_to(profile: &str, path: &str, target: &Path) -> Output {
    kando(
        &[
            "location",
            "pull",
            "--profile",
            profile,
            "--path",
            path,
            target.to_str().unwrap(),
        ],
        b"",
    )
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
