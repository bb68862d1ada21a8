//! The storage conformance suite: one set of checks every backend must pass.
//! `tests/storage_conformance.rs` runs it on the local and memory backends,
//! `tests/s3_conformance.rs` on real S3 servers. Test-only: not in the shipped binary.

use bytes::Bytes;

use kando::storage::{Storage, StorageError};

/// Number of keys for the listing test: more than one S3 `ListObjectsV2` page (1000).
pub const LIST_KEYS: usize = 1100;

/// Runs every check against `storage`, which must be empty. Panics on the first failure.
/// `atomic_create`: the store makes concurrent create-if-absent exclusive (false only for
/// S3 servers that ignore `If-None-Match`, where the backend can only check first).
pub async fn run_all(storage: &dyn Storage, atomic_create: bool) {
    rejected_keys_write_nothing(storage).await;
    put_get_roundtrip(storage).await;
    missing_key_is_not_found(storage).await;
    put_if_absent_keeps_first(storage).await;
    ranged_reads(storage).await;
    list_with_prefix_and_pagination(storage).await;
    delete_is_idempotent(storage).await;
    racing_put_if_absent_has_one_winner(storage, atomic_create).await;
    probe_tells_exclusive_create(storage, atomic_create).await;
    cleanup_keeps_complete_objects(storage).await;
}

/// Keys outside the key syntax are refused by every operation, before anything is sent.
async fn rejected_keys_write_nothing(s: &dyn Storage) {
    for key in [
        "",
        "/abs",
        "a//b",
        "a/",
        "./a",
        "a/../../b",
        "..",
        "nul\0byte",
    ] {
        let refused = |r: Result<(), StorageError>, op: &str| {
            assert!(
                matches!(r, Err(StorageError::InvalidKey { .. })),
                "{op} {key:?}: {r:?}"
            )
        };
        refused(s.put(key, Bytes::from_static(b"x")).await, "put");
        refused(
            s.put_if_absent(key, Bytes::from_static(b"x"))
                .await
                .map(drop),
            "put_if_absent",
        );
        refused(s.get(key).await.map(drop), "get");
        refused(s.get_range(key, 0..1).await.map(drop), "get_range");
        refused(s.head(key).await.map(drop), "head");
        refused(s.delete(key).await, "delete");
    }
    assert!(
        s.list("").await.unwrap().is_empty(),
        "a refused key wrote something"
    );
}

/// Of writers racing to create one key, exactly one wins, and its bytes are stored.
/// Without `atomic`, at least one wins and the stored bytes are one writer's, whole.
async fn racing_put_if_absent_has_one_winner(s: &dyn Storage, atomic: bool) {
    use futures::future::join_all;
    for round in 0..4 {
        let key = format!("race/{round}");
        let results = join_all((0..8u8).map(|i| {
            let key = key.clone();
            async move {
                (
                    i,
                    s.put_if_absent(&key, Bytes::from(vec![i; 4096]))
                        .await
                        .unwrap(),
                )
            }
        }))
        .await;
        let winners: Vec<u8> = results
            .iter()
            .filter(|(_, won)| *won)
            .map(|(i, _)| *i)
            .collect();
        let stored = s.get(&key).await.unwrap();
        if atomic {
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            assert_eq!(stored, Bytes::from(vec![winners[0]; 4096]));
        } else {
            assert!(!winners.is_empty(), "round {round}: nobody won");
            assert!(winners
                .iter()
                .any(|w| stored.len() == 4096 && stored.iter().all(|b| b == w)));
        }
        s.delete(&key).await.unwrap();
    }
}

/// The probe gc asks before deleting anything tells the store's conditional writes as
/// they are, and leaves nothing behind.
async fn probe_tells_exclusive_create(s: &dyn Storage, atomic: bool) {
    for round in 0..2 {
        let prefix = format!("probes/conformance-{round}");
        assert_eq!(
            s.probe_exclusive_create(&prefix).await.unwrap(),
            atomic,
            "round {round}"
        );
        assert_eq!(
            s.list(&prefix).await.unwrap(),
            vec![],
            "probe keys left behind"
        );
    }
}

/// Cleaning up leftovers never touches a complete object, however young.
async fn cleanup_keeps_complete_objects(s: &dyn Storage) {
    s.put("clean/x", Bytes::from_static(b"x")).await.unwrap();
    s.cleanup_incomplete(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(&s.get("clean/x").await.unwrap()[..], b"x");
    s.delete("clean/x").await.unwrap();
}

/// A `len`-byte object (above a backend's single-request limit) round-trips, whole and
/// by ranges across its parts.
pub async fn large_object(s: &dyn Storage, len: usize) {
    let data = Bytes::from((0..len).map(|i| (i % 253) as u8).collect::<Vec<_>>());
    s.put("large/obj", data.clone()).await.unwrap();
    assert_eq!(s.head("large/obj").await.unwrap().unwrap().size, len as u64);
    assert!(
        s.get("large/obj").await.unwrap() == data,
        "large object differs"
    );
    let r = (len as u64 / 2 - 100)..(len as u64 / 2 + 100);
    assert_eq!(
        s.get_range("large/obj", r.clone()).await.unwrap(),
        data.slice(r.start as usize..r.end as usize)
    );
    assert!(!s.put_if_absent("large/obj", data.clone()).await.unwrap());
    s.delete("large/obj").await.unwrap();
}

async fn put_get_roundtrip(s: &dyn Storage) {
    let data = Bytes::from((0..=255u8).cycle().take(1 << 20).collect::<Vec<_>>());
    s.put("rt/a", data.clone()).await.unwrap();
    assert_eq!(s.get("rt/a").await.unwrap(), data);
    let head = s
        .head("rt/a")
        .await
        .unwrap()
        .expect("head of a written key");
    assert_eq!(head.size, data.len() as u64);
    // Overwrite replaces.
    s.put("rt/a", Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(&s.get("rt/a").await.unwrap()[..], b"second");
    // Empty objects are objects.
    s.put("rt/empty", Bytes::new()).await.unwrap();
    assert_eq!(s.get("rt/empty").await.unwrap().len(), 0);
    s.delete("rt/a").await.unwrap();
    s.delete("rt/empty").await.unwrap();
}

async fn missing_key_is_not_found(s: &dyn Storage) {
    let err = s.get("missing/key").await.unwrap_err();
    assert!(err.is_not_found(), "get of a missing key: {err}");
    let err = s.get_range("missing/key", 0..1).await.unwrap_err();
    assert!(err.is_not_found(), "ranged get of a missing key: {err}");
    assert!(s.head("missing/key").await.unwrap().is_none());
}

async fn put_if_absent_keeps_first(s: &dyn Storage) {
    assert!(s
        .put_if_absent("pia/config", Bytes::from_static(b"first"))
        .await
        .unwrap());
    let second = s
        .put_if_absent("pia/config", Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert!(
        !second,
        "put_if_absent on an existing key must report it existed"
    );
    assert_eq!(&s.get("pia/config").await.unwrap()[..], b"first");
    s.delete("pia/config").await.unwrap();
}

async fn ranged_reads(s: &dyn Storage) {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    s.put("range/obj", Bytes::from(data.clone())).await.unwrap();
    for r in [0..1u64, 0..10_000, 17..4_096, 9_999..10_000, 5_000..5_000] {
        if r.is_empty() {
            continue; // zero-length ranges are not expressible in HTTP
        }
        let got = s.get_range("range/obj", r.clone()).await.unwrap();
        assert_eq!(&got[..], &data[r.start as usize..r.end as usize], "{r:?}");
    }
    assert!(s.get_range("range/obj", 9_000..10_001).await.is_err());
    s.delete("range/obj").await.unwrap();
}

async fn list_with_prefix_and_pagination(s: &dyn Storage) {
    use futures::stream::{self, StreamExt, TryStreamExt};
    stream::iter(0..LIST_KEYS)
        .map(|i| async move {
            s.put(&format!("list/many/{i:05}"), Bytes::from_static(b"v"))
                .await
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    s.put("list/other/x", Bytes::from_static(b"x"))
        .await
        .unwrap();
    s.put("list/manyx", Bytes::from_static(b"y")).await.unwrap();

    let all = s.list("list/many/").await.unwrap();
    assert_eq!(all.len(), LIST_KEYS);
    assert!(all.windows(2).all(|w| w[0].key < w[1].key), "sorted");
    assert_eq!(all[0].key, "list/many/00000");
    assert_eq!(all[0].size, 1);
    // A prefix that is not a whole directory name still matches by string.
    assert_eq!(s.list("list/many").await.unwrap().len(), LIST_KEYS + 1);
    assert_eq!(s.list("list/many/0109").await.unwrap().len(), 10);
    assert!(s.list("nothing/here/").await.unwrap().is_empty());

    stream::iter(all)
        .map(|m| async move { s.delete(&m.key).await })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    s.delete("list/other/x").await.unwrap();
    s.delete("list/manyx").await.unwrap();
    assert!(s.list("list/").await.unwrap().is_empty());
}

async fn delete_is_idempotent(s: &dyn Storage) {
    s.put("del/x", Bytes::from_static(b"x")).await.unwrap();
    s.delete("del/x").await.unwrap();
    s.delete("del/x").await.unwrap();
    assert!(s.head("del/x").await.unwrap().is_none());
}
