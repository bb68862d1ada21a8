//! The Azure Blob backend against Azurite on loopback (tests/common/azurite.rs): the
//! storage conformance suite, the core, gc, safety and encrypted scenarios through the
//! CLI, every way a Kanister profile carries Azure credentials (keyPair, the Kanister
//! Secret with each key and environment, a SAS token file), and the errors a blueprint
//! must see as one line and exit 69.

#[path = "common/azurite.rs"]
pub mod azurite;
#[path = "common/cloud_suites.rs"]
pub mod cloud_suites;
pub mod common;
#[path = "common/conformance.rs"]
pub mod conformance;
#[path = "common/emulators.rs"]
pub mod emulators;
#[path = "common/gc_scenarios.rs"]
pub mod gc_scenarios;
#[path = "common/safety.rs"]
pub mod safety;
#[path = "common/scenarios.rs"]
pub mod scenarios;

use std::time::Duration;

use azurite::{AzureBackend, AzureCredential, Azurite};
use common::Backend;
use kando::storage::azure::{AzureConfig, AzureCredentials, AzureStorage};
use kando::storage::retry::RetryPolicy;
use kando::storage::Storage;

fn config(
    server: &Azurite,
    container: &str,
    root: &str,
    credentials: AzureCredentials,
) -> AzureConfig {
    AzureConfig {
        account: server.account.clone(),
        container: container.to_string(),
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
async fn conformance_on_azurite() {
    let Some(server) = Azurite::start_selected() else {
        return;
    };
    let container = server.fresh_container();
    let key = AzureCredentials::SharedKey(server.key.clone());
    let storage = AzureStorage::connect(config(&server, &container, "root/repo", key))
        .await
        .unwrap_or_else(|e| panic!("connect to Azurite: {e:#}"));
    conformance::run_all(&storage, true).await;
    conformance::large_object(&storage, (64 << 20) + 12_345).await;
    storage.put("layout/a~b c", "x".into()).await.unwrap();
    let names: Vec<String> = server
        .list_blobs(&container, "")
        .unwrap()
        .into_iter()
        .map(|b| b.0)
        .collect();
    assert_eq!(
        names,
        ["root/repo/layout/a~b c"],
        "names are the keys, verbatim"
    );
    // The same repository through a container SAS, and a sloppy spelling of the root.
    let sas = server
        .container_sas_for(&container, "racwdl", Duration::from_secs(3600))
        .unwrap();
    let by_sas = AzureStorage::connect(config(
        &server,
        &container,
        "/root//repo/",
        AzureCredentials::Sas(sas.clone()),
    ))
    .await
    .unwrap();
    assert_eq!(&by_sas.get("layout/a~b c").await.unwrap()[..], b"x");
    let d = format!("{}{by_sas:?}{storage:?}", storage.describe());
    assert!(d.contains(&container) && d.contains("root/repo"), "{d}");
    assert!(
        !d.contains(&server.key) && !d.contains(sas.split("sig=").nth(1).unwrap()),
        "{d}"
    );
}

#[test]
fn core_suite_on_azurite() {
    let Some(server) = Azurite::start_selected() else {
        return;
    };
    cloud_suites::core_gc_safety(&|| AzureBackend::new(&server, AzureCredential::KeyPair));
    // The Kanister Secret carries the same account and key.
    let secret = || AzureBackend::new(&server, AzureCredential::Secret);
    scenarios::blueprint_shapes(&secret());
    scenarios::delete_by_path_components(&secret());
}

/// The randomized interleavings alone, for long runs:
/// `KANDO_CHAOS_ROUNDS=30 cargo test --test azure chaos_long -- --ignored`.
#[test]
#[ignore]
fn chaos_long_on_azurite() {
    let Some(server) = Azurite::start_selected() else {
        return;
    };
    safety::chaos(&AzureBackend::new(&server, AzureCredential::KeyPair), 30);
}

#[test]
fn encrypted_suite_on_azurite() {
    common::encrypt_every_run("azure correct horse battery staple");
    let Some(server) = Azurite::start_selected() else {
        return;
    };
    cloud_suites::encrypted(&|| AzureBackend::new(&server, AzureCredential::KeyPair));
}

/// Every way a profile carries Azure credentials, and what it refuses.
#[test]
fn kanister_secret_and_sas_credentials() {
    let Some(server) = Azurite::start_selected() else {
        return;
    };
    let b = AzureBackend::new(&server, AzureCredential::Secret);
    let data = common::mixed_data(11, 1 << 20, 50_000);
    let (account, key) = (server.account.as_str(), server.key.as_str());
    let secret = |extra: &[(&str, &str)]| {
        let mut all = vec![
            ("azure_storage_account_id", account),
            ("azure_storage_key", key),
        ];
        all.extend_from_slice(extra);
        b.profile_with(AzureBackend::secret_credential(&all))
    };
    // Each environment spelling is accepted (the endpoint overrides the host it implies).
    for env in [
        "AzureCloud",
        "azurepubliccloud",
        "AzureUSGovernment",
        "AZUREUSGOVERNMENTCLOUD",
        "AzureChinaCloud",
        "AzureGermanCloud",
    ] {
        let id = common::push_id(
            &secret(&[("azure_storage_environment", env)]),
            &format!("env/{env}"),
            &data,
        );
        assert!(!id.is_empty());
    }
    let msg = common::fails_69(&common::kando(
        &common::push_args(&secret(&[("azure_storage_environment", "Mars")]), "x"),
        &data,
    ));
    assert!(
        msg.contains("azure_storage_environment") && msg.contains("Mars"),
        "{msg}"
    );
    let msg = common::fails_69(&common::kando(
        &common::push_args(&secret(&[("azure_storage_colour", "blue")]), "x"),
        &data,
    ));
    assert!(
        msg.contains("unknown key") && msg.contains("azure_storage_colour"),
        "{msg}"
    );
    assert!(!msg.contains(key), "key in: {msg}");

    // Federated identity: a container SAS from $AZURE_SAS_TOKEN_FILE, no key.
    let dir = tempfile::tempdir().unwrap();
    let federated = b.profile_with(AzureBackend::secret_credential(&[
        ("azure_storage_account_id", account),
        ("azure_federated_identity", "true"),
    ]));
    let with_file = |token: &str, args: &[&str], stdin: &[u8]| {
        let file = dir.path().join("sas");
        std::fs::write(&file, token).unwrap();
        let mut cmd = common::kando_command();
        cmd.env("AZURE_SAS_TOKEN_FILE", &file).args(args);
        common::run_feeding(&mut cmd, stdin)
    };
    let sas = server
        .container_sas_for(b.container(), "racwdl", Duration::from_secs(3600))
        .unwrap();
    let out = with_file(&sas, &common::push_args(&federated, "sas/db"), &data);
    common::ok(&out);
    let out = with_file(&sas, &common::pull_args(&federated, "sas/db"), b"");
    assert!(common::ok(&out).stdout == data, "SAS round trip differs");
    // A read-only SAS reads but cannot push; a forged one is refused; neither leaks.
    let read_only = server
        .container_sas_for(b.container(), "rl", Duration::from_secs(3600))
        .unwrap();
    common::ok(&with_file(
        &read_only,
        &common::pull_args(&federated, "sas/db"),
        b"",
    ));
    let msg = common::fails_69(&with_file(
        &read_only,
        &common::push_args(&federated, "sas/other"),
        &data,
    ));
    let forged = sas.replace("sig=", "sig=AAAA");
    let msg2 = common::fails_69(&with_file(
        &forged,
        &common::push_args(&federated, "sas/other"),
        &data,
    ));
    for m in [&msg, &msg2] {
        assert!(!m.contains("sig="), "SAS signature in: {m}");
    }
    // A SAS that allows plain HTTP is refused for a non-loopback endpoint, before any request.
    let remote = federated.replace(&server.endpoint, "http://blob.example.invalid/acct");
    let msg = common::fails_69(&with_file(&sas, &common::push_args(&remote, "x"), &data));
    assert!(msg.contains("spr=https"), "{msg}");
    // An unreachable endpoint: the error quotes the request, never the signature.
    let dead = format!("http://127.0.0.1:{}/{account}", common::free_port());
    let unreachable = federated.replace(&server.endpoint, &dead);
    let msg = common::fails_69(&with_file(
        &sas,
        &common::push_args(&unreachable, "x"),
        &data,
    ));
    let signature = sas.split("sig=").nth(1).unwrap().split('&').next().unwrap();
    assert!(msg.contains("cannot reach the Azure endpoint"), "{msg}");
    assert!(!msg.contains(signature), "SAS signature in: {msg}");
}

/// Wrong key, missing container, unreachable endpoint: exit 69, one line, nothing written.
#[test]
fn azure_errors_are_one_line() {
    let Some(server) = Azurite::start_selected() else {
        return;
    };
    let b = AzureBackend::new(&server, AzureCredential::KeyPair);
    let wrong = b.profile_with(serde_json::json!({"Type": "keyPair", "KeyPair": {"ID": server.account, "Secret": "d3JvbmcK"}}));
    let msg = common::fails_69(&common::kando(&common::push_args(&wrong, "x"), b"data"));
    assert!(msg.contains("access denied"), "{msg}");
    assert!(!msg.contains(&server.key), "{msg}");
    assert!(b.object_keys().is_empty(), "{:?}", b.object_keys());

    let missing = b
        .profile()
        .replace(b.container(), "kando-no-such-container");
    let msg = common::fails_69(&common::kando(&common::push_args(&missing, "x"), b"data"));
    assert!(
        msg.contains("container kando-no-such-container does not exist"),
        "{msg}"
    );

    let port = common::free_port();
    let dead_endpoint = format!("http://127.0.0.1:{port}/{}", server.account);
    let dead = b.profile().replace(&server.endpoint, &dead_endpoint);
    let msg = common::fails_69(&common::kando(&common::push_args(&dead, "x"), b"data"));
    assert!(msg.contains("cannot reach the Azure endpoint"), "{msg}");
}

impl cloud_suites::Bucket for AzureBackend<'_> {
    fn repo_root(&self) -> String {
        AzureBackend::repo_root(self)
    }
    fn delete_under(&self, prefix: &str) {
        AzureBackend::delete_under(self, prefix)
    }
    fn read_object(&self, name: &str) -> Vec<u8> {
        self.server()
            .get_blob(self.container(), name)
            .unwrap()
            .unwrap()
    }
}
