//! The core scenarios on the local-directory backend (the embedded default).

pub mod common;
#[path = "common/scenarios.rs"]
pub mod scenarios;

use common::LocalBackend;

#[test]
fn roundtrip_sizes() {
    scenarios::roundtrip_sizes(&LocalBackend::new());
}

#[test]
fn roundtrip_300_mb_mixed() {
    scenarios::roundtrip_large(&LocalBackend::new(), 300 << 20);
}

#[test]
fn smallest_pipelines() {
    scenarios::smallest_pipelines(&LocalBackend::new());
}

#[test]
fn dedup() {
    scenarios::dedup(&LocalBackend::new());
}

#[test]
fn blueprint_shapes() {
    scenarios::blueprint_shapes(&LocalBackend::new());
}

#[test]
fn delete_by_path_components() {
    scenarios::delete_by_path_components(&LocalBackend::new());
}

#[test]
fn bad_input_writes_nothing() {
    scenarios::bad_input_writes_nothing(&LocalBackend::new());
}
