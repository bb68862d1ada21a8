//! gc safety on the local-directory backend (issue 13): the three loss scenarios, the
//! grace period, randomized interleavings, read-only repositories, repair.

mod common;

use common::safety as s;
use common::LocalBackend;

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
