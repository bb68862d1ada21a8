//! The CLI suites every cloud object store runs (GCS on fake-gcs-server, Azure on
//! Azurite): one list, so a scenario added here runs on each.

use crate::common::{self, Backend};
use crate::gc_scenarios as gc;
use crate::safety;
use crate::scenarios as core;

/// What the suites need of a bucket or container beyond [`Backend`].
pub trait Bucket: Backend {
    /// Where the repository's objects start.
    fn repo_root(&self) -> String;
    /// Deletes every object whose name starts with `prefix`, as an operator would.
    fn delete_under(&self, prefix: &str);
    /// The bytes of object `name`.
    fn read_object(&self, name: &str) -> Vec<u8>;
}

/// Round trips, dedup, blueprint shapes, bad input, delete and gc, and the gc safety
/// scenarios, each on a fresh bucket from `fresh`.
pub fn core_gc_safety<B: Bucket>(fresh: &dyn Fn() -> B) {
    core::roundtrip_sizes(&fresh());
    core::roundtrip_large(&fresh(), 100 << 20);
    core::dedup(&fresh());
    core::smallest_pipelines(&fresh());
    core::blueprint_shapes(&fresh());
    let b = fresh();
    core::bad_input_writes_nothing(&b);
    let root = b.repo_root();
    let keys = b.object_keys();
    assert!(keys.iter().all(|k| k.starts_with(&root)), "{keys:?}");

    gc::delete_all_leaves_only_config(&fresh());
    gc::delete_shared_keeps_the_other(&fresh());
    gc::racing_init_agrees(&fresh());
    gc::delete_defers_while_in_use(&fresh());
    gc::killed_pushes_leave_nothing(&fresh(), 10);
    gc::race_push_delete(&fresh(), 16);

    safety::paused_push_is_fenced(&fresh());
    safety::paused_gc_spares_a_later_push(&fresh(), "condemn-decided");
    safety::paused_gc_spares_a_later_push(&fresh(), "finalize-decided");
    safety::grace_then_reclaim(&fresh());
    let b = fresh();
    let packs = format!("{}packs/", b.repo_root());
    safety::lost_pack_heals(&b, &|| b.delete_under(&packs));
    safety::chaos(&fresh(), 2);
}

/// The suites on an encrypted repository (the caller has set the password with
/// [`common::encrypt_every_run`]), then no plaintext in any object name or body.
pub fn encrypted<B: Bucket>(fresh: &dyn Fn() -> B) {
    core::roundtrip_sizes(&fresh());
    core::dedup(&fresh());
    core::blueprint_shapes(&fresh());
    core::bad_input_writes_nothing(&fresh());
    gc::delete_shared_keeps_the_other(&fresh());
    gc::race_push_delete(&fresh(), 8);
    let b = fresh();
    let marker = b"KANDO-CLOUD-PLAINTEXT-MARKER";
    let mut data = common::dump_text(5, 2 << 20);
    for at in (0..data.len() - marker.len()).step_by(8192) {
        data[at..at + marker.len()].copy_from_slice(marker);
    }
    common::push_id(&b.profile(), "cloud-marker-path/db", &data);
    for name in b.object_keys() {
        assert!(!name.contains("cloud-marker-path"), "{name}");
        let bytes = b.read_object(&name);
        let leaked = bytes.windows(marker.len()).any(|w| w == marker);
        assert!(!leaked, "plaintext in {name}");
    }
}
