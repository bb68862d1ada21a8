//! Encrypted repositories on a real S3 server (Ceph RGW), and S3 server-side encryption
//! (`--sse`): SSE-KMS on RGW with its built-in testing KMS, SSE-S3 on moto.

pub mod common;
#[path = "common/gc_scenarios.rs"]
pub mod gc_scenarios;
#[path = "common/s3.rs"]
pub mod s3;
#[path = "common/s3_backend.rs"]
pub mod s3_backend;
#[path = "common/scenarios.rs"]
pub mod scenarios;

use common::Backend;
use gc_scenarios as gc;
use s3::start_selected;
use s3_backend::S3Backend;
use scenarios as core;

const PASSWORD: &str = "s3 correct horse battery staple";

fn assert_encrypted(b: &S3Backend) {
    let config = b
        .objects_with_bytes()
        .into_iter()
        .find(|(k, _)| k.ends_with("kando-repo/config"))
        .expect("a config");
    assert!(
        String::from_utf8_lossy(&config.1).contains("\"encryption\""),
        "not encrypted"
    );
}

#[test]
fn encrypted_suite_on_rgw() {
    common::encrypt_every_run(PASSWORD);
    let Some(server) = start_selected("rgw") else {
        return;
    };
    let fresh = || S3Backend::new(&server, false);
    let checked = |run: &dyn Fn(&S3Backend)| {
        let b = fresh();
        run(&b);
        assert_encrypted(&b);
    };
    checked(&|b| core::roundtrip_sizes(b));
    checked(&|b| core::roundtrip_large(b, 50 << 20));
    checked(&|b| core::dedup(b));
    checked(&|b| core::blueprint_shapes(b));
    checked(&|b| core::delete_by_path_components(b));
    checked(&|b| core::bad_input_writes_nothing(b));
    checked(&|b| gc::delete_all_leaves_only_config(b));
    checked(&|b| gc::delete_shared_keeps_the_other(b));
    checked(&|b| gc::racing_init_agrees(b));
    checked(&|b| gc::race_push_delete(b, 8));

    // No plaintext in any object, keys included.
    let b = fresh();
    let marker = b"KANDO-S3-PLAINTEXT-MARKER";
    let mut data = common::dump_text(5, 4 << 20);
    for at in (0..data.len() - marker.len()).step_by(8192) {
        data[at..at + marker.len()].copy_from_slice(marker);
    }
    common::push_id(&b.profile(), "s3-marker-path/db", &data);
    for (key, bytes) in b.objects_with_bytes() {
        assert!(!key.contains("s3-marker-path"), "{key}");
        assert!(
            !bytes.windows(marker.len()).any(|w| w == marker),
            "plaintext in {key}"
        );
    }
}

#[test]
fn sse_kms_on_rgw() {
    common::encrypt_every_run(PASSWORD);
    let Some(server) = start_selected("rgw") else {
        return;
    };
    let b = S3Backend::new(&server, false);
    let p = b.profile();
    let data = common::random_bytes(1, 3 << 20);
    let push =
        |path: &str, extra: &[&str]| common::kando(&common::push_with(&p, path, extra), &data);
    common::ok(&push("kms", &["--sse-kms-key-id", "testkey-1"]));
    let keys = b.object_keys();
    let pack = keys.iter().find(|k| k.contains("/packs/")).unwrap();
    assert_eq!(
        b.sse_of(pack),
        (Some("aws:kms".into()), Some("testkey-1".into()))
    );
    // RGW decrypts on read: the pull is intact.
    let out = common::kando(&common::pull_args(&p, "kms"), b"");
    common::ok(&out);
    assert!(out.stdout == data);
    // A key the KMS does not have: exit 69, one line naming it, nothing written.
    let before = b.object_keys();
    let line = common::fails_69(&push(
        "kms2",
        &["--sse", "aws:kms", "--sse-kms-key-id", "no-such-key"],
    ));
    assert!(line.contains("no-such-key"), "{line}");
    assert_eq!(b.object_keys(), before);
    // Flags that make no sense are refused before anything happens.
    let line = common::fails_69(&push("x", &["--sse", "AES256", "--sse-kms-key-id", "k"]));
    assert!(line.contains("aws:kms"), "{line}");
    let local = common::LocalBackend::new();
    let line = common::fails_69(&common::kando(
        &[
            "location",
            "push",
            "--profile",
            &local.profile(),
            "--sse",
            "AES256",
            "-",
        ],
        b"x",
    ));
    assert!(line.contains("s3Compliant"), "{line}");
    assert!(local.object_keys().is_empty());
}

#[test]
fn sse_s3_on_moto() {
    common::encrypt_every_run(PASSWORD);
    let Some(server) = start_selected("moto") else {
        return;
    };
    let b = S3Backend::new(&server, false);
    let p = b.profile();
    let out = common::kando(
        &common::push_with(&p, "x", &["--sse", "AES256"]),
        &common::random_bytes(2, 1 << 20),
    );
    common::ok(&out);
    for key in b.object_keys() {
        if key.contains("/locks/") {
            continue;
        }
        assert_eq!(b.sse_of(&key).0.as_deref(), Some("AES256"), "{key}");
    }
}
