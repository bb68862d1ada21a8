//! The S3 backend against real S3 servers on loopback (see `common/s3.rs` for which ones
//! and how they are chosen): the storage conformance suite, the key layout under the root,
//! multipart uploads, SkipSSLVerify, and the errors connect() must make clear.

// The storage-level suites of tests/common only: these tests never run the kando binary.
#[path = "common/conformance.rs"]
pub mod conformance;
#[path = "common/s3.rs"]
pub mod s3;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use kando::storage::s3::{S3Config, S3Credentials, S3Storage};
use kando::storage::Storage;
use s3::{in_ci, is_selected, start_selected, unique_name, S3Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_s3s_fs() {
    full_suite("s3s-fs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_moto() {
    full_suite("moto").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_rgw() {
    let Some(server) = full_suite("rgw").await else {
        return;
    };
    // RGW takes seconds to start: check its error reporting on the same instance rather
    // than in the dedicated tests below, which use the quick servers.
    let bucket = server.fresh_bucket().await;
    missing_bucket_is_reported_by(&server).await;
    wrong_credentials_are_reported_by(&server, &bucket).await;
}

#[tokio::test]
async fn wrong_credentials_are_reported() {
    // moto accepts any key, so only s3s-fs can tell (and RGW, checked above).
    let Some(server) = start_selected("s3s-fs") else {
        return;
    };
    let bucket = server.fresh_bucket().await;
    wrong_credentials_are_reported_by(&server, &bucket).await;
}

#[tokio::test]
async fn missing_bucket_is_reported() {
    for kind in ["s3s-fs", "moto"] {
        if let Some(server) = start_selected(kind) {
            missing_bucket_is_reported_by(&server).await;
        }
    }
}

#[tokio::test]
async fn unreachable_endpoint_is_reported() {
    // A loopback port nobody listens on: bound, then closed again.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut cfg = S3Config::new(
        "some-bucket",
        S3Credentials::Static {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "secret-not-to-print".into(),
            session_token: None,
        },
    );
    cfg.endpoint = Some(endpoint.clone());
    cfg.region = Some("us-east-1".into());
    let started = Instant::now();
    // The guard only turns a hang into a failure; the assertion is on the message.
    let err = tokio::time::timeout(Duration::from_secs(300), S3Storage::connect(cfg))
        .await
        .expect("connect() to a closed port hung")
        .expect_err("connect() to a closed port succeeded");
    let msg = format!("{err:#}");
    eprintln!(
        "unreachable endpoint reported after {:?}: {msg}",
        started.elapsed()
    );
    assert!(
        msg.contains("cannot reach") && msg.contains(&endpoint),
        "{msg}"
    );
    assert!(!msg.contains("secret-not-to-print"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_ssl_verify_accepts_a_self_signed_certificate() {
    if !is_selected("moto") {
        eprintln!("note: skipping the TLS test: it runs on moto, which is not in KANDO_TEST_S3");
        return;
    }
    let moto = match TlsMoto::start() {
        Ok(m) => m,
        Err(e) if in_ci() => panic!("moto over TLS could not start: {e:#}"),
        Err(e) => {
            eprintln!("note: skipping the TLS test: moto over TLS could not start: {e:#}");
            return;
        }
    };
    let bucket = unique_name("kando-tls");
    create_bucket_insecurely(&moto.endpoint, &bucket);
    let mut cfg = S3Config::new(
        &bucket,
        S3Credentials::Static {
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            session_token: None,
        },
    );
    cfg.endpoint = Some(moto.endpoint.clone());
    cfg.region = Some("us-east-1".into());
    cfg.root = "tls/repo".into();
    cfg.retry.max_attempts = 2;

    // Without SkipSSLVerify the self-signed certificate is refused.
    let err = S3Storage::connect(cfg.clone())
        .await
        .expect_err("a self-signed certificate was accepted without SkipSSLVerify");
    let msg = format!("{err:#}");
    eprintln!("self-signed certificate without SkipSSLVerify: {msg}");
    assert!(msg.contains("certificate"), "{msg}");

    cfg.skip_ssl_verify = true;
    let storage = S3Storage::connect(cfg)
        .await
        .unwrap_or_else(|e| panic!("connect with SkipSSLVerify: {e:#}"));
    conformance::run_all(&storage, true).await;
}

/// moto serving HTTPS with a self-signed certificate, for the SkipSSLVerify test. Not part
/// of server.sh (no other test needs TLS); started directly, killed on drop.
struct TlsMoto {
    /// https://127.0.0.1:PORT
    endpoint: String,
    child: Child,
}

impl TlsMoto {
    /// Starts `moto_server -s` (werkzeug's ad-hoc certificate) on a free port.
    fn start() -> anyhow::Result<TlsMoto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-s"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting moto_server (pip install 'moto[server]')")?;
        let mut server = TlsMoto {
            endpoint: format!("https://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("moto_server exited: {status}");
            }
            if Instant::now() > deadline {
                bail!("moto_server did not listen on {port} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(server)
    }
}

impl Drop for TlsMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Conformance, key layout and multipart on `kind`. Returns the server for more checks.
async fn full_suite(kind: &str) -> Option<S3Server> {
    let server = start_selected(kind)?;
    let bucket = server.fresh_bucket().await;
    let root = format!("{}/repo", unique_name("root"));
    let storage = S3Storage::connect(server.config(&bucket, &root))
        .await
        .unwrap_or_else(|e| panic!("connect to {kind}: {e:#}"));
    // s3s-fs 0.14 ignores If-None-Match: concurrent creates can both "win" there.
    conformance::run_all(&storage, kind != "s3s-fs").await;
    keys_live_under_the_root(&server, &storage, &bucket, &root).await;
    large_objects_use_multipart(&storage).await;
    abandoned_uploads_are_aborted(&server, &storage, &bucket, &root).await;
    Some(server)
}

/// A multipart upload a killed writer left under the root is aborted by
/// `cleanup_incomplete`; one outside the root is not ours and stays.
async fn abandoned_uploads_are_aborted(server: &S3Server, s: &S3Storage, bucket: &str, root: &str) {
    if server.kind == "s3s-fs" {
        return; // no ListMultipartUploads (HTTP 501): cleanup_incomplete finds nothing there
    }
    let client = server.client();
    for key in [
        format!("{root}/packs/ab/abandoned"),
        "elsewhere/upload".to_string(),
    ] {
        client
            .create_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
    }
    // Not yet old enough (moto reports every upload as started in 2010).
    if server.kind != "moto" {
        let young = s.cleanup_incomplete(Duration::from_secs(3600)).await;
        assert_eq!(young.unwrap(), 0, "{}", server.kind);
    }
    assert_eq!(
        s.cleanup_incomplete(Duration::ZERO).await.unwrap(),
        1,
        "{}",
        server.kind
    );
    let left = client
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = left.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["elsewhere/upload"], "{}", server.kind);
}

async fn keys_live_under_the_root(server: &S3Server, s: &S3Storage, bucket: &str, root: &str) {
    s.put("layout/a", Bytes::from_static(b"x")).await.unwrap();
    let listed = server
        .client()
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [format!("{root}/layout/a")], "{}", server.kind);

    // A sloppy spelling of the same root reaches the same repository.
    let sloppy = format!("/{}//", root.replace('/', "//"));
    let same = S3Storage::connect(server.config(bucket, &sloppy))
        .await
        .unwrap();
    let keys: Vec<String> = same
        .list("layout/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, ["layout/a"]);
    // An empty root is the whole bucket.
    let top = S3Storage::connect(server.config(bucket, "")).await.unwrap();
    let keys: Vec<String> = top
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, [format!("{root}/layout/a")]);
    assert_eq!(
        &top.get(&format!("{root}/layout/a")).await.unwrap()[..],
        b"x"
    );

    for key in ["", "/a", "a/", "a//b", "a/../b", "./a"] {
        assert!(
            s.put(key, Bytes::from_static(b"x")).await.is_err(),
            "put {key:?}"
        );
        let err = s.get(key).await.unwrap_err();
        assert!(!err.is_not_found(), "get {key:?}: {err}");
    }

    let d = s.describe();
    assert!(
        d.contains(bucket) && d.contains(root) && d.contains(&server.endpoint),
        "{d}"
    );
    // (moto's secret is "test", which bucket names contain: only check real secrets.)
    if server.secret_key.len() >= 16 {
        for shown in [
            d,
            format!("{s:?}"),
            format!("{:?}", server.config(bucket, root)),
        ] {
            assert!(!shown.contains(&server.secret_key), "secret in {shown}");
        }
    }
    s.delete("layout/a").await.unwrap();
}

async fn large_objects_use_multipart(s: &S3Storage) {
    // Above the 64 MiB single-PUT limit, with a short last part.
    let len = (64 << 20) + (3 << 20) + 5;
    let data = Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    s.put("big/one", data.clone()).await.unwrap();
    assert_eq!(s.head("big/one").await.unwrap().unwrap().size, len as u64);
    assert!(
        s.get("big/one").await.unwrap() == data,
        "multipart object read back differs"
    );
    // Across the first part boundary.
    let r = (16u64 << 20) - 10..(16 << 20) + 10;
    let got = s.get_range("big/one", r.clone()).await.unwrap();
    assert_eq!(&got[..], &data[r.start as usize..r.end as usize]);

    assert!(!s
        .put_if_absent("big/one", Bytes::from_static(b"small"))
        .await
        .unwrap());
    assert!(!s.put_if_absent("big/one", data.clone()).await.unwrap());
    assert!(s.put_if_absent("big/two", data.clone()).await.unwrap());
    assert!(s.get("big/two").await.unwrap() == data);
    s.delete("big/one").await.unwrap();
    s.delete("big/two").await.unwrap();
}

async fn missing_bucket_is_reported_by(server: &S3Server) {
    let bucket = unique_name("kando-missing");
    let err = S3Storage::connect(server.config(&bucket, "repo"))
        .await
        .expect_err("connect to a missing bucket succeeded");
    let msg = format!("{err:#}");
    eprintln!("{}, missing bucket: {msg}", server.kind);
    assert!(
        msg.contains(&format!(
            "bucket {bucket} does not exist at {}",
            server.endpoint
        )),
        "{}: {msg}",
        server.kind
    );
}

async fn wrong_credentials_are_reported_by(server: &S3Server, bucket: &str) {
    let wrong_secret = S3Credentials::Static {
        access_key_id: server.access_key.clone(),
        secret_access_key: "wrong-secret-key-0123456789".into(),
        session_token: None,
    };
    let unknown_key = S3Credentials::Static {
        access_key_id: "AKIDUNKNOWN0000".into(),
        secret_access_key: "wrong-secret-key-0123456789".into(),
        session_token: None,
    };
    for credentials in [wrong_secret, unknown_key] {
        let cfg = S3Config {
            credentials: credentials.clone(),
            ..server.config(bucket, "repo")
        };
        let err = S3Storage::connect(cfg)
            .await
            .expect_err("connect with wrong credentials succeeded");
        let msg = format!("{err:#}");
        eprintln!("{}, wrong credentials: {msg}", server.kind);
        assert!(
            msg.contains("access denied") && msg.contains("check the profile's credentials"),
            "{} with {credentials:?}: {msg}",
            server.kind
        );
        assert!(!msg.contains("wrong-secret-key"), "{msg}");
    }
}

/// moto needs no signature, and the SDK's own client would refuse the certificate: create
/// the bucket with an unverified python request.
fn create_bucket_insecurely(endpoint: &str, bucket: &str) {
    let script = "import ssl, sys, urllib.request\n\
        req = urllib.request.Request(sys.argv[1], method='PUT')\n\
        urllib.request.urlopen(req, context=ssl._create_unverified_context()).read()\n";
    let status = Command::new("python3")
        .args(["-c", script, &format!("{endpoint}/{bucket}")])
        .status()
        .expect("running python3");
    assert!(status.success(), "creating bucket {bucket} on {endpoint}");
}

/// Real servers do not cut bodies short or ignore Range on demand, so this one test uses a
/// scripted HTTP server to check that connect() copes with the minimal answers and that
/// short or mis-ranged bodies are errors (retried first), never data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_and_misranged_bodies_are_errors() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let short_gets = Arc::new(AtomicUsize::new(0));
    let counter = short_gets.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
                // The SDK appends "?x-id=GetObject" to object requests.
                let path = target.split('?').next().unwrap_or("").to_string();
                let xml = |body: &str| {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let ns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
                let answer = if target.contains("location") {
                    xml(&format!("<LocationConstraint {ns}></LocationConstraint>"))
                } else if target.contains("list-type=2") {
                    xml(&format!(
                        "<ListBucketResult {ns}><Name>b</Name><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"
                    ))
                } else if path.ends_with("/short") {
                    // Announces 100 bytes, sends 50, hangs up.
                    counter.fetch_add(1, Ordering::SeqCst);
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{}",
                        "x".repeat(50)
                    )
                } else if path.ends_with("/whole") {
                    // Ignores Range: the whole 100-byte object, status 200.
                    let body: String = (0..100)
                        .map(|i| char::from(b'a' + (i % 26) as u8))
                        .collect();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{body}"
                    )
                } else if path.ends_with("/misranged") {
                    // Answers a ranged GET with the wrong bytes.
                    format!("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}", "y".repeat(10))
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });

    let mut cfg = S3Config::new(
        "b",
        S3Credentials::Static {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        },
    );
    cfg.endpoint = Some(endpoint);
    cfg.retry.max_attempts = 3;
    let s = S3Storage::connect(cfg).await.unwrap();

    let err = s
        .get("short")
        .await
        .expect_err("a truncated body was returned as data");
    eprintln!("truncated body: {err}");
    assert!(!err.is_not_found(), "{err}");
    assert_eq!(
        short_gets.load(Ordering::SeqCst),
        3,
        "the GET is retried: {err}"
    );
    let err = s.get_range("short", 0..100).await.unwrap_err();
    assert!(!err.is_not_found(), "{err}");

    let got = s.get_range("whole", 10..20).await.unwrap();
    assert_eq!(&got[..], b"klmnopqrst");
    assert!(s.get_range("whole", 90..101).await.is_err());

    let err = s.get_range("misranged", 10..20).await.unwrap_err();
    assert!(err.to_string().contains("bytes 10-19"), "{err}");
}

/// How often the probe catches s3s-fs's check-then-write (measurement, not a test).
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn probe_detection_rate_on_s3s_fs() {
    let Some(server) = start_selected("s3s-fs") else {
        return;
    };
    let bucket = server.fresh_bucket().await;
    let storage = S3Storage::connect(server.config(&bucket, "probe"))
        .await
        .unwrap();
    let n = 40;
    let mut caught = 0;
    for i in 0..n {
        if !storage
            .probe_exclusive_create(&format!("probes/{i}"))
            .await
            .unwrap()
        {
            caught += 1;
        }
    }
    eprintln!("PROBE caught {caught} of {n}");
}
