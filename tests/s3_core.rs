//! The core and gc scenarios against real S3 servers on loopback (see tests/common/s3.rs
//! for which servers run). One test per server runs the whole suite, so each server
//! starts once.

pub mod common;
#[path = "common/gc_scenarios.rs"]
pub mod gc_scenarios;
#[path = "common/migration.rs"]
pub mod migration;
#[path = "common/s3.rs"]
pub mod s3;
#[path = "common/s3_backend.rs"]
pub mod s3_backend;
#[path = "common/safety.rs"]
pub mod safety;
#[path = "common/scenarios.rs"]
pub mod scenarios;

use common::Backend;
use gc_scenarios as gc;
use s3::start_selected;
use s3_backend::S3Backend;
use scenarios as core;

fn suite(kind: &str) {
    let Some(server) = start_selected(kind) else {
        return;
    };
    let fresh = |secret| S3Backend::new(&server, secret);

    core::roundtrip_sizes(&fresh(false));
    core::roundtrip_large(&fresh(false), 100 << 20);
    core::dedup(&fresh(false));
    core::smallest_pipelines(&fresh(false));
    core::blueprint_shapes(&fresh(false));
    core::blueprint_shapes(&fresh(true));
    core::delete_by_path_components(&fresh(true));
    let b = fresh(false);
    core::bad_input_writes_nothing(&b);
    // Objects land under bucket/prefix/kando-repo/.
    let root = b.repo_root();
    assert!(
        b.object_keys().iter().all(|k| k.starts_with(&root)),
        "{:?}",
        b.object_keys()
    );

    migration_on(&fresh(false));
    gc::racing_init_agrees(&fresh(false));
    if kind == "s3s-fs" {
        // s3s-fs 0.14 ignores If-None-Match, so gc's journal could have two winners there:
        // gc refuses, and the gc scenarios run on the other servers.
        gc::gc_refused_without_exclusive_create(&fresh(false));
        return;
    }

    gc::delete_all_leaves_only_config(&fresh(false));
    gc::delete_shared_keeps_the_other(&fresh(false));
    gc::delete_defers_while_in_use(&fresh(false));
    gc::killed_pushes_leave_nothing(&fresh(false), 20);
    gc::race_push_delete(&fresh(false), 34);

    safety::paused_push_is_fenced(&fresh(false));
    safety::paused_gc_spares_a_later_push(&fresh(false), "condemn-decided");
    safety::paused_gc_spares_a_later_push(&fresh(false), "finalize-decided");
    safety::grace_then_reclaim(&fresh(false));
    safety::delete_races_list(&fresh(false), 8);
    let b = fresh(false);
    let packs = format!("{}packs/", b.repo_root());
    safety::lost_pack_heals(&b, &|| b.delete_under(&packs));
    if kind == "moto" {
        irsa_secret_falls_back_to_web_identity(&fresh(false));
    }
    if kind == "rgw" {
        safety::chaos(&fresh(false), 4);
        let b = fresh(false);
        let (access, secret) = b
            .block_on(b.server().read_only_user(b.bucket()))
            .expect("a read-only RGW user");
        let ro = b.profile_with_keys(&access, &secret);
        safety::reads_need_no_writes(&b.profile(), &|args| {
            let mut full = args.to_vec();
            full.splice(2..2, ["--profile", ro.as_str()]);
            common::kando(&full, b"")
        });
    }
}

#[test]
fn core_suite_on_rgw() {
    suite("rgw");
}

#[test]
fn core_suite_on_s3s_fs() {
    suite("s3s-fs");
}

#[test]
fn core_suite_on_moto() {
    suite("moto");
}

/// Wrong credentials, a missing bucket and an unreachable endpoint, through the binary:
/// exit 69 with one line for push, pull and delete, and nothing written.
#[test]
fn s3_errors_through_the_binary() {
    let Some(server) = start_selected("s3s-fs") else {
        return;
    };
    let b = S3Backend::new(&server, false);
    let good = b.profile();
    common::ok(&common::kando(&common::push_args(&good, "seed"), b"seed"));
    let before = b.object_keys();
    // A loopback port nothing listens on.
    let closed = common::free_port();
    let cases = [
        (
            good.replace(&server.secret_key, "wrong-secret"),
            "credentials",
        ),
        (
            good.replace("\"bucket\":\"", "\"bucket\":\"missing-"),
            "does not exist",
        ),
        (
            good.replace(&server.endpoint, &format!("http://127.0.0.1:{closed}")),
            "cannot reach",
        ),
    ];
    for (profile, expect) in &cases {
        for args in [
            common::push_args(profile, "p"),
            common::pull_args(profile, "seed"),
            common::delete_args(profile, "seed"),
        ] {
            let line = common::fails_69(&common::kando(&args, b"data"));
            assert!(line.contains(expect), "{expect}: {line}");
            assert!(
                !line.contains(&server.secret_key),
                "secret in the error: {line}"
            );
        }
    }
    assert_eq!(
        b.object_keys(),
        before,
        "a failed command wrote to the bucket"
    );
}

/// Upstream's plain objects, written by a plain S3 client at the exact keys upstream kando
/// uses (`join(prefix, path)`).
fn migration_on(b: &S3Backend) {
    use migration::{self as m, PlainClient};
    let prefix = b.repo_root().trim_end_matches("kando-repo/").to_string();
    let client = b.server().client();
    let put = |key: &str, data: &[u8]| {
        b.block_on(
            client
                .put_object()
                .bucket(b.bucket())
                .key(format!("{prefix}{key}"))
                .body(data.to_vec().into())
                .send(),
        )
        .unwrap();
    };
    let keys = || {
        b.object_keys()
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect()
    };
    m::upstream_objects_restore_and_delete(
        b,
        &PlainClient {
            put: &put,
            keys: &keys,
        },
    );
    m::cockroach_backup_is_deleted(
        b,
        &PlainClient {
            put: &put,
            keys: &keys,
        },
    );
}

/// A `secret` credential with empty data (IRSA) uses the SDK's default chain: here the
/// web-identity exchange with moto's STS (the pod's token file and role), and nothing
/// else (no keys in the environment, no instance metadata).
fn irsa_secret_falls_back_to_web_identity(b: &S3Backend) {
    let p = b.profile_with_credential(
        r#"{"Type":"secret","Secret":{"apiVersion":"v1","kind":"Secret","type":"secrets.kanister.io/aws","data":{}}}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2ln").unwrap();
    let run = |sts: &str, args: &[&str], stdin: &[u8]| {
        let mut cmd = common::kando_command();
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
            .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kanister")
            .env("AWS_ROLE_SESSION_NAME", "kando-test")
            .env("AWS_ENDPOINT_URL_STS", sts)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_REGION", &b.server().region)
            .env("KANDO_S3_REQUEST_TIMEOUT", "5")
            .args(args);
        common::run_feeding(&mut cmd, stdin)
    };
    let data = common::random_bytes(95, 1 << 20);
    let sts = b.server().endpoint.clone();
    common::ok(&run(&sts, &common::push_args(&p, "irsa"), &data));
    let out = run(&sts, &common::pull_args(&p, "irsa"), b"");
    common::ok(&out);
    assert!(out.stdout == data);
    // With the STS endpoint unreachable there are no credentials: proof the exchange above
    // was what authenticated.
    let dead = format!("http://127.0.0.1:{}", common::free_port());
    common::fails_69(&run(&dead, &common::pull_args(&p, "irsa"), b""));
}

/// The randomized interleavings alone on RGW, for long runs:
/// `KANDO_TEST_S3=rgw KANDO_CHAOS_ROUNDS=40 cargo test --test s3_core chaos_long -- --ignored`.
#[test]
#[ignore]
fn chaos_long_on_rgw() {
    let Some(server) = start_selected("rgw") else {
        return;
    };
    safety::chaos(&S3Backend::new(&server, false), 40);
}
