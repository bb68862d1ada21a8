//! Delete, gc, locks and crashes on the local-directory backend.

pub mod common;
#[path = "common/gc_scenarios.rs"]
pub mod gc_scenarios;

use common::{Backend, LocalBackend};
use gc_scenarios as s;

#[test]
fn delete_all_leaves_only_config() {
    s::delete_all_leaves_only_config(&LocalBackend::new());
}

#[test]
fn delete_shared_keeps_the_other() {
    s::delete_shared_keeps_the_other(&LocalBackend::new());
}

#[test]
fn race_push_delete_102_rounds() {
    s::race_push_delete(&LocalBackend::new(), 34);
}

#[test]
fn killed_pushes_leave_nothing() {
    s::killed_pushes_leave_nothing(&LocalBackend::new(), 24);
}

#[test]
fn racing_init_agrees() {
    s::racing_init_agrees(&LocalBackend::new());
}

#[test]
fn delete_defers_while_in_use() {
    s::delete_defers_while_in_use(&LocalBackend::new());
}

/// gc removes what a killed probe left only once it is an hour old by its name — never a
/// probe running beside it, whatever `--lock-stale-after` says (at 0 it once removed a
/// running probe's keys, and that gc refused).
#[test]
fn gc_removes_only_old_probe_leftovers() {
    let b = LocalBackend::new();
    let p = b.profile();
    common::push_id(&p, "a", b"a");
    let repo = b.dir().join("team/pre/kando-repo");
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let running = format!("probes/{now_ns}-0000000000000001");
    let killed = "probes/1000-0000000000000002";
    for dir in [running.as_str(), killed] {
        std::fs::create_dir_all(repo.join(dir)).unwrap();
        std::fs::write(repo.join(dir).join("race-0"), b"x").unwrap();
    }
    let out = common::kando(
        &common::gc_args(&p, &["--lock-stale-after", "0", "--gc-grace", "0"]),
        b"",
    );
    common::ok(&out);
    assert!(
        repo.join(&running).join("race-0").exists(),
        "a running probe's key was removed"
    );
    assert!(
        !repo.join(killed).join("race-0").exists(),
        "a killed probe's key stayed"
    );
}
