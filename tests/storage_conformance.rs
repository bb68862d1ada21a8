//! The storage conformance suite on the backends that need no server.

#[path = "common/conformance.rs"]
pub mod conformance;

use kando::storage::local::LocalStorage;
use kando::storage::memory::MemoryStorage;

#[tokio::test]
async fn local_directory() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&LocalStorage::new(dir.path().join("repo")), true).await;
}

#[tokio::test]
async fn memory() {
    conformance::run_all(&MemoryStorage::new(), true).await;
}
