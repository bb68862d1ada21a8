//! gc safety on the local-directory backend (issue 13): the three loss scenarios, the
//! grace period, randomized interleavings, read-only repositories, repair.

pub mod common;
#[path = "common/safety.rs"]
pub mod safety;

use common::{Backend, LocalBackend};
use safety as s;

#[test]
fn paused_push_is_fenced() {
    s::paused_push_is_fenced(&LocalBackend::new());
}

#[test]
fn push_in_another_pid_namespace() {
    s::push_in_another_pid_namespace(&LocalBackend::new());
}

#[test]
fn gc_frozen_after_planning_spares_a_later_push() {
    s::paused_gc_spares_a_later_push(&LocalBackend::new(), "condemn-decided");
}

#[test]
fn gc_frozen_before_finalizing_spares_a_later_push() {
    s::paused_gc_spares_a_later_push(&LocalBackend::new(), "finalize-decided");
}

#[test]
fn gc_frozen_before_deleting_spares_a_later_push() {
    s::paused_gc_spares_a_later_push(&LocalBackend::new(), "deleting");
}

#[test]
fn grace_then_reclaim() {
    s::grace_then_reclaim(&LocalBackend::new());
}

#[test]
fn chaos_local() {
    s::chaos(&LocalBackend::new(), 8);
}

/// Runs kando with the location's directory bind-mounted read-only (a new mount
/// namespace; root only, as in CI).
fn read_only_run(b: &LocalBackend, args: &[&str]) -> std::process::Output {
    let dir = b.dir().to_str().unwrap().to_string();
    let script =
        r#"d=$1; shift; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && exec "$@""#;
    let mut cmd = std::process::Command::new("unshare");
    for (k, v) in common::kando_command().get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut full: Vec<&str> = args.to_vec();
    let profile = b.profile();
    full.splice(2..2, ["--profile", profile.as_str()]);
    cmd.args(["--mount", "sh", "-c", script, "sh", &dir])
        .arg(common::kando_bin())
        .args(&full)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn pull_verify_list_from_a_read_only_mount() {
    let b = LocalBackend::new();
    s::reads_need_no_writes(&b.profile(), &|args| read_only_run(&b, args));
}

#[test]
fn a_lost_pack_is_never_deduplicated_against() {
    let b = LocalBackend::new();
    let repo = b.dir().join("team/pre/kando-repo");
    s::lost_pack_heals(&b, &|| {
        for pack in common::files_under(&repo.join("packs")) {
            std::fs::remove_file(pack).unwrap();
        }
    });
}

#[test]
fn deletes_racing_list_and_verify() {
    s::delete_races_list(&LocalBackend::new(), 24);
}

#[test]
fn a_damaged_index_segment_is_skipped_then_repaired() {
    use common::*;
    let b = LocalBackend::new();
    let p = b.profile();
    let a = mixed_data(60, 4 << 20, 1 << 20);
    let id_a = push_id(&p, "seg/a", &a);
    let index = b.dir().join("team/pre/kando-repo/index");
    let seg_a = files_under(&index).remove(0);
    let bb = random_bytes(61, 3 << 20);
    let id_b = push_id(&p, "seg/b", &bb);
    let mut bytes = std::fs::read(&seg_a).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&seg_a, &bytes).unwrap();
    // B's chunks are indexed elsewhere: restored, with a warning.
    let out = pull_id(&p, &id_b);
    ok(&out);
    assert!(out.stdout == bb);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipping index segment"));
    // A's are not: a loud failure that names the damaged segment.
    let line = fails_69(&pull_id(&p, &id_a));
    let name = seg_a.file_name().unwrap().to_string_lossy().into_owned();
    assert!(line.contains(&name) && line.contains("repair"), "{line}");
    // gc refuses to work from a damaged index.
    fails_69(&kando(&gc_args(&p, &[]), b""));
    let out = kando(&["repo", "repair", "--profile", &p], b"");
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("every snapshot (2) can be restored"));
    let out = pull_id(&p, &id_a);
    ok(&out);
    assert!(out.stdout == a);
    s::final_gc_and_verify(&p);
}
