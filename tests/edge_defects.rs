//! Edge cases found by review, one section per defect; every test here failed before
//! its fix.

mod common;

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
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
