//! The GCS backend against fake-gcs-server on loopback (tests/common/fake_gcs.rs), with
//! service-account auth against a loopback token endpoint (tests/common/gcs_token.rs):
//! the storage conformance suite, the core, gc, safety and encrypted scenarios through
//! the CLI, credentials (token cached, refreshed before expiry, a wrong key refused), and
//! the errors a blueprint must see as one line and exit 69.

#[path = "common/cloud_suites.rs"]
pub mod cloud_suites;
pub mod common;
#[path = "common/conformance.rs"]
pub mod conformance;
#[path = "common/emulators.rs"]
pub mod emulators;
#[path = "common/fake_gcs.rs"]
pub mod fake_gcs;
#[path = "common/gc_scenarios.rs"]
pub mod gc_scenarios;
#[path = "common/gcs_token.rs"]
pub mod gcs_token;
#[path = "common/safety.rs"]
pub mod safety;
#[path = "common/scenarios.rs"]
pub mod scenarios;

use std::time::Duration;

use common::Backend;
use fake_gcs::{FakeGcs, GcsBackend};
use gcs_token::TokenServer;
use kando::storage::gcs::{GcsConfig, GcsCredentials, GcsStorage};
use kando::storage::retry::RetryPolicy;

fn config(server: &FakeGcs, bucket: &str, root: &str, credentials: GcsCredentials) -> GcsConfig {
    GcsConfig {
        bucket: bucket.to_string(),
        root: root.to_string(),
        endpoint: server.endpoint.clone(),
        credentials,
        skip_ssl_verify: false,
        retry: RetryPolicy {
            max_attempts: 3,
            attempt_timeout: Duration::from_secs(60),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_fake_gcs() {
    let Some(server) = FakeGcs::start_selected() else {
        return;
    };
    let tokens = TokenServer::start(3600);
    let bucket = server.fresh_bucket();
    let key = GcsCredentials::ServiceAccountKey(tokens.key_json());
    let storage = GcsStorage::connect(config(&server, &bucket, "root/repo", key))
        .await
        .unwrap_or_else(|e| panic!("connect to fake-gcs: {e:#}"));
    conformance::run_all(&storage, true).await;
    conformance::large_object(&storage, (64 << 20) + 12_345).await;
    // Objects live under the root; a sloppy spelling of it is the same repository.
    storage.put("layout/a", "x".into()).await.unwrap();
    let names: Vec<String> = server
        .list_objects(&bucket, "")
        .unwrap()
        .into_iter()
        .map(|o| o.0)
        .collect();
    assert_eq!(names, ["root/repo/layout/a"]);
    let sloppy = GcsStorage::connect(config(
        &server,
        &bucket,
        "/root//repo/",
        GcsCredentials::Anonymous,
    ))
    .await
    .unwrap();
    use kando::storage::Storage;
    assert_eq!(&sloppy.get("layout/a").await.unwrap()[..], b"x");
    let d = storage.describe();
    assert!(
        d.contains(&bucket) && d.contains("root/repo") && d.contains(&server.endpoint),
        "{d}"
    );
    assert!(!format!("{storage:?}{d}").contains("PRIVATE KEY"));
    // One token served the whole suite: cached, not fetched per request.
    assert_eq!((tokens.granted(), tokens.refused()), (1, 0));
}

#[test]
fn core_suite_on_fake_gcs() {
    let Some(server) = FakeGcs::start_selected() else {
        return;
    };
    let tokens = TokenServer::start(3600);
    let key = tokens.key_json();
    cloud_suites::core_gc_safety(&|| GcsBackend::new(&server, &key));
    assert_eq!(tokens.refused(), 0);
}

/// The randomized interleavings alone, for long runs:
/// `KANDO_CHAOS_ROUNDS=30 cargo test --test gcs chaos_long -- --ignored`.
#[test]
#[ignore]
fn chaos_long_on_fake_gcs() {
    let Some(server) = FakeGcs::start_selected() else {
        return;
    };
    let tokens = TokenServer::start(3600);
    safety::chaos(&GcsBackend::new(&server, &tokens.key_json()), 30);
}

#[test]
fn encrypted_suite_on_fake_gcs() {
    common::encrypt_every_run("gcs correct horse battery staple");
    let Some(server) = FakeGcs::start_selected() else {
        return;
    };
    let tokens = TokenServer::start(3600);
    let key = tokens.key_json();
    cloud_suites::encrypted(&|| GcsBackend::new(&server, &key));
}

/// Tokens: one per process while valid; fetched again when within the refresh margin of
/// expiry (gcp_auth renews 20 s early, so a 10 s token is renewed at every request); a key
/// the token endpoint refuses is one line and exit 69, with no key material in it.
#[test]
fn service_account_tokens_are_cached_refreshed_and_checked() {
    let Some(server) = FakeGcs::start_selected() else {
        return;
    };
    let data = common::mixed_data(7, 3 << 20, 100_000);

    let long = TokenServer::start(3600);
    let b = GcsBackend::new(&server, &long.key_json());
    common::push_id(&b.profile(), "db/dump", &data);
    assert_eq!(
        (long.granted(), long.refused()),
        (1, 0),
        "one token for a whole push"
    );

    let short = TokenServer::start(10);
    let b = GcsBackend::new(&server, &short.key_json());
    common::push_id(&b.profile(), "db/dump", &data);
    assert!(
        short.granted() > 1,
        "a token about to expire was not renewed: {}",
        short.granted()
    );
    assert_eq!(short.refused(), 0);

    let wrong = short.wrong_key_json();
    let out = common::kando(
        &common::push_args(&b.profile_with_key(&wrong), "db/other"),
        &data,
    );
    let msg = common::fails_69(&out);
    assert!(
        short.refused() >= 1,
        "the wrong key was not refused by the token endpoint"
    );
    assert!(
        msg.contains("invalid_grant") || msg.contains("token"),
        "{msg}"
    );
    for secret in ["PRIVATE KEY", "MII", "test-token-"] {
        assert!(!msg.contains(secret), "{secret} in: {msg}");
    }
    // Nothing of the failed push was written.
    assert!(!b.object_keys().iter().any(|k| k.contains("db/other")));
}

/// A missing bucket and an unreachable endpoint: exit 69, one line, in bounded time.
#[test]
fn gcs_errors_are_one_line() {
    let Some(server) = FakeGcs::start_selected() else {
        return;
    };
    let tokens = TokenServer::start(3600);
    let b = GcsBackend::new(&server, &tokens.key_json());
    let missing = b.profile().replace(b.bucket(), "kando-no-such-bucket");
    let msg = common::fails_69(&common::kando(&common::push_args(&missing, "x"), b"data"));
    assert!(
        msg.contains("bucket kando-no-such-bucket does not exist"),
        "{msg}"
    );

    let port = common::free_port();
    let dead = b
        .profile()
        .replace(&server.endpoint, &format!("http://127.0.0.1:{port}"));
    let msg = common::fails_69(&common::kando(&common::push_args(&dead, "x"), b"data"));
    assert!(msg.contains("cannot reach the GCS endpoint"), "{msg}");
}

impl cloud_suites::Bucket for GcsBackend<'_> {
    fn repo_root(&self) -> String {
        GcsBackend::repo_root(self)
    }
    fn delete_under(&self, prefix: &str) {
        GcsBackend::delete_under(self, prefix)
    }
    fn read_object(&self, name: &str) -> Vec<u8> {
        self.server()
            .get_object(self.bucket(), name)
            .unwrap()
            .unwrap()
    }
}
