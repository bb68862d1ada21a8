//! Switching from upstream kando on the local backend (issue 14): plain objects, every
//! upstream flag form, colour-free logs.

pub mod common;
#[path = "common/migration.rs"]
pub mod migration;

use common::*;
use migration::{self as m, PlainClient};

fn plain_client(b: &LocalBackend) -> (impl Fn(&str, &[u8]) + '_, impl Fn() -> Vec<String> + '_) {
    let root = b.dir().join("team/pre");
    let root2 = root.clone();
    (
        move |key: &str, data: &[u8]| {
            let path = root.join(key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        },
        move || {
            files_under(&root2)
                .into_iter()
                .map(|f| {
                    f.strip_prefix(&root2)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        },
    )
}

#[test]
fn upstream_objects_restore_and_delete() {
    let b = LocalBackend::new();
    let (put, keys) = plain_client(&b);
    m::upstream_objects_restore_and_delete(
        &b,
        &PlainClient {
            put: &put,
            keys: &keys,
        },
    );
}

#[test]
fn cockroach_backup_is_deleted() {
    let b = LocalBackend::new();
    let (put, keys) = plain_client(&b);
    m::cockroach_backup_is_deleted(
        &b,
        &PlainClient {
            put: &put,
            keys: &keys,
        },
    );
}

/// `kando location -p P -s X push -` and friends: profile and path before the subcommand.
#[test]
fn location_flags_before_the_subcommand() {
    let b = LocalBackend::new();
    let p = b.profile();
    let data = mixed_data(90, 2 << 20, 1 << 20);
    let out = kando(&["location", "-p", &p, "-s", "flags/x", "push", "-"], &data);
    ok(&out);
    let out = kando(
        &["location", "--profile", &p, "--path=flags/x", "pull", "-"],
        b"",
    );
    ok(&out);
    assert!(out.stdout == data);
    let out = kando(
        &[
            "-v", "info", "location", "-s", "flags/x", "-p", &p, "delete",
        ],
        b"",
    );
    ok(&out);
    fails_69(&kando(
        &["location", "-p", &p, "-s", "flags/x", "pull", "-"],
        b"",
    ));
}

#[test]
fn bare_location_prints_help() {
    let out = kando(&["location"], b"");
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("push") && text.contains("pull") && text.contains("delete"),
        "{text}"
    );
}

#[test]
fn verbosity_levels_as_upstream() {
    for level in [
        "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace", "INFO",
    ] {
        ok(&kando(&["-v", level, "output", "k", "v"], b""));
    }
    for level in ["loud", "", "5"] {
        let out = kando(&["-v", level, "output", "k", "v"], b"");
        assert_eq!(out.status.code(), Some(69), "-v {level:?}");
    }
}

/// Log lines carry no colour codes when stderr is not a terminal (pod logs).
#[test]
fn logs_are_colour_free_off_a_terminal() {
    let b = LocalBackend::new();
    let p = b.profile();
    push_id(&p, "a", b"data");
    let pull = pull_with(
        &p,
        "b",
        &["--kopia-snapshot", "0123456789abcdef0123456789abcdef"],
    );
    let out = kando(&[&["-v", "debug"][..], &pull].concat(), b"");
    assert_eq!(out.status.code(), Some(69));
    let out2 = kando(&[&["-v", "debug"][..], &gc_args(&p, &[])].concat(), b"");
    ok(&out2);
    for o in [&out, &out2] {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!stderr.contains('\u{1b}'), "{stderr}");
    }
    assert!(
        !String::from_utf8_lossy(&out2.stderr).is_empty(),
        "debug logs were written"
    );
}

/// `--kopia-snapshot` of a snapshot pushed to another path: used, with a warning.
#[test]
fn snapshot_of_another_path_warns() {
    let b = LocalBackend::new();
    let p = b.profile();
    let id = push_id(&p, "here", b"some data");
    let out = kando(&pull_with(&p, "elsewhere", &["--kopia-snapshot", &id]), b"");
    ok(&out);
    assert_eq!(out.stdout, b"some data");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("was pushed to --path \"here\""), "{stderr}");
}
