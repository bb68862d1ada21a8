//! Delete, gc, locks and crashes on the local-directory backend.

pub mod common;
#[path = "common/gc_scenarios.rs"]
pub mod gc_scenarios;

use common::LocalBackend;
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
