//! Real S3 servers on loopback for integration tests.
//!
//! [`S3Server::start`] runs `scripts/s3/server.sh start KIND` in a fresh temporary
//! directory and stops the server when dropped. Which kinds a test run uses comes from
//! `KANDO_TEST_S3` (comma list of `rgw`, `s3s-fs`, `moto`; default `s3s-fs,moto`, plus `rgw`
//! when `radosgw` is installed). [`start_selected`] is the usual entry point: a kind that is
//! not selected is skipped with a note; a selected kind that cannot start is skipped with a
//! note too, except under `CI=true`, where the test fails, so CI never passes by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use kando::storage::retry::RetryPolicy;
use kando::storage::s3::{S3Config, S3Credentials};

/// A running S3 server, stopped on drop.
pub struct S3Server {
    /// rgw, s3s-fs or moto.
    pub kind: String,
    /// http://127.0.0.1:PORT
    pub endpoint: String,
    /// Access key of the server's user.
    pub access_key: String,
    /// Secret key of the server's user.
    pub secret_key: String,
    /// Region the server answers for.
    pub region: String,
    workdir: tempfile::TempDir,
}

/// Path of the start/stop script, from the crate root.
pub fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3/server.sh")
}

/// Server kinds `scripts/s3/server.sh` can start.
pub const KINDS: [&str; 3] = ["rgw", "s3s-fs", "moto"];

/// Kinds this run should test, from `KANDO_TEST_S3` or the default. Panics on an unknown
/// kind: a typo must not turn into a silently skipped server.
pub fn selected_kinds() -> Vec<String> {
    let kinds = match std::env::var("KANDO_TEST_S3") {
        Ok(v) if !v.trim().is_empty() => v
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect(),
        _ => {
            let mut kinds = vec!["s3s-fs".to_string(), "moto".to_string()];
            if which("radosgw") {
                kinds.push("rgw".to_string());
            }
            kinds
        }
    };
    if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
        panic!("KANDO_TEST_S3: unknown S3 server kind {bad:?} (known: {KINDS:?})");
    }
    kinds
}

/// True when the kind is in [`selected_kinds`].
pub fn is_selected(kind: &str) -> bool {
    selected_kinds().iter().any(|k| k == kind)
}

/// True under CI, where a selected server that cannot start fails the test.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Starts `kind` when selected. `None` (after a note on stderr) when it is not selected,
/// or when it cannot start outside CI; panics when it cannot start under CI.
pub fn start_selected(kind: &str) -> Option<S3Server> {
    if !is_selected(kind) {
        eprintln!("note: skipping S3 server {kind}: not in KANDO_TEST_S3");
        return None;
    }
    match S3Server::start(kind) {
        Ok(server) => Some(server),
        Err(e) if in_ci() => panic!("S3 server {kind} is selected but could not start: {e:#}"),
        Err(e) => {
            eprintln!("note: skipping S3 server {kind}: could not start it: {e:#}");
            None
        }
    }
}

impl S3Server {
    /// Starts a server of `kind` through the script, in its own temporary directory.
    pub fn start(kind: &str) -> anyhow::Result<S3Server> {
        let script = server_script();
        if !script.exists() {
            bail!("{} not found", script.display());
        }
        let workdir = tempfile::Builder::new()
            .prefix(&format!("kando-s3-{kind}-"))
            .tempdir()
            .context("creating the server's directory")?;
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .arg(kind)
            .arg(workdir.path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            // The script cleans up after a failed start; nothing to stop.
            bail!(
                "server.sh start {kind} failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let get = |name: &str| -> anyhow::Result<String> {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim().to_string())
                .with_context(|| format!("server.sh printed no {name}: {stdout}"))
        };
        // Build the value before any `?` below can drop the directory with a live server:
        // from here on, Drop stops it.
        let mut server = S3Server {
            kind: kind.to_string(),
            endpoint: String::new(),
            access_key: String::new(),
            secret_key: String::new(),
            region: String::new(),
            workdir,
        };
        server.endpoint = get("S3_ENDPOINT")?;
        server.access_key = get("S3_ACCESS_KEY")?;
        server.secret_key = get("S3_SECRET_KEY")?;
        server.region = get("S3_REGION")?;
        Ok(server)
    }

    /// The server user's keys.
    pub fn credentials(&self) -> S3Credentials {
        S3Credentials::Static {
            access_key_id: self.access_key.clone(),
            secret_access_key: self.secret_key.clone(),
            session_token: None,
        }
    }

    /// A configuration for a repository at `root` in `bucket` on this server, with short
    /// timeouts so that a broken server fails a test quickly.
    pub fn config(&self, bucket: &str, root: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_string(),
            root: root.to_string(),
            endpoint: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            credentials: self.credentials(),
            skip_ssl_verify: false,
            retry: RetryPolicy {
                max_attempts: 3,
                attempt_timeout: Duration::from_secs(60),
            },
            sse: None,
        }
    }

    /// A plain SDK client for this server, to set up and inspect what the tests do.
    pub fn client(&self) -> aws_sdk_s3::Client {
        sdk_client(
            &self.endpoint,
            &self.region,
            &self.access_key,
            &self.secret_key,
        )
    }

    /// Creates a bucket with a fresh random name and returns the name.
    pub async fn fresh_bucket(&self) -> String {
        let name = unique_name("kando-test");
        self.create_bucket(&name)
            .await
            .unwrap_or_else(|e| panic!("creating bucket {name} on {}: {e:#}", self.kind));
        name
    }

    /// RGW only: a second user that may only read and list `bucket` (a bucket policy
    /// grants it GetObject and ListBucket); returns its access and secret keys.
    pub async fn read_only_user(&self, bucket: &str) -> anyhow::Result<(String, String)> {
        anyhow::ensure!(self.kind == "rgw", "read-only users are set up on rgw only");
        let uid = unique_name("ro");
        let (access, secret) = (unique_name("ak"), unique_name("sk"));
        let out = Command::new("radosgw-admin")
            .arg("-c")
            .arg(self.workdir.path().join("ceph.conf"))
            .args(["user", "create", "--uid", &uid, "--display-name", &uid])
            .args(["--access-key", &access, "--secret-key", &secret])
            .stdin(Stdio::null())
            .output()
            .context("running radosgw-admin")?;
        anyhow::ensure!(
            out.status.success(),
            "radosgw-admin user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam:::user/{uid}"]}},"Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
        );
        self.client()
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        Ok((access, secret))
    }

    /// Creates `name` (in the default region, so no location constraint).
    pub async fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        self.client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
        Ok(())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let status = Command::new("bash")
            .arg(server_script())
            .arg("stop")
            .arg(self.workdir.path())
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "warning: stopping S3 server {} in {} failed: {status:?}",
                self.kind,
                self.workdir.path().display()
            );
        }
        // KANDO_KEEP_S3_LOGS=DIR keeps the server's logs for debugging a failed run.
        if let Ok(dir) = std::env::var("KANDO_KEEP_S3_LOGS") {
            let _ = Command::new("cp")
                .arg("-r")
                .arg(self.workdir.path().join("log"))
                .arg(format!("{dir}/{}-{}", self.kind, std::process::id()))
                .status();
        }
    }
}

/// An SDK client with static keys and path-style addressing, for test setup.
pub fn sdk_client(endpoint: &str, region: &str, access: &str, secret: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            access, secret, None, None, "test",
        ))
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// `prefix-` and 12 random hex digits: valid as a bucket name and as a key component.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
