//! fake-gcs-server (Google Cloud Storage JSON API emulator) on loopback for integration
//! tests.
//!
//! [`FakeGcs::start`] runs `scripts/emulators/server.sh start fake-gcs` in a fresh temporary
//! directory (in-memory backend) and stops it when dropped; [`FakeGcs::start_selected`]
//! honours `KANDO_TEST_EMULATORS` and `CI` (see `emulators`). It checks no
//! credentials. Behaviour measured on 1.54.0, including where it differs from GCS (only
//! multipart uploads honour `ifGenerationMatch`; DELETE answers 200 `null`; a resumable
//! upload appends chunks without checking their offsets), is in
//! scripts/emulators/README.md.

use std::path::PathBuf;

use anyhow::Context;

use crate::emulators::{http, pct_encode, Emulator};

/// A running fake-gcs-server, stopped on drop.
pub struct FakeGcs {
    /// `http://127.0.0.1:PORT`: JSON API under `/storage/v1`, uploads under
    /// `/upload/storage/v1` (what `STORAGE_EMULATOR_HOST` points a GCS client at).
    pub endpoint: String,
    /// The emulator's directory (`log/fake-gcs.out`, `pids/`, `env`).
    pub workdir: PathBuf,
    _server: Emulator,
}

impl FakeGcs {
    /// Starts fake-gcs-server through the script, in its own temporary directory.
    pub fn start() -> anyhow::Result<FakeGcs> {
        let server = Emulator::start("fake-gcs")?;
        Ok(FakeGcs {
            endpoint: server.get("GCS_ENDPOINT")?,
            workdir: server.workdir().to_path_buf(),
            _server: server,
        })
    }

    /// Starts it when `KANDO_TEST_EMULATORS` selects it; `None` (with a note) when it is not
    /// selected or cannot start outside CI; panics when it cannot start under CI.
    pub fn start_selected() -> Option<FakeGcs> {
        crate::emulators::start_selected("fake-gcs", FakeGcs::start)
    }

    /// Creates bucket `name` (200; anything else, including 409 for an existing bucket, is
    /// an error).
    pub fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "name": name }).to_string();
        http(
            "POST",
            &format!("{}/storage/v1/b?project=kando-test", self.endpoint),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )?
        .expect(&format!("creating bucket {name}"), &[200])?;
        Ok(())
    }

    /// Creates a bucket with a fresh random name and returns the name.
    pub fn fresh_bucket(&self) -> String {
        let name = crate::emulators::unique_name("kando-test");
        self.create_bucket(&name)
            .unwrap_or_else(|e| panic!("creating bucket {name} on fake-gcs-server: {e:#}"));
        name
    }

    /// `endpoint/storage/v1/b/BUCKET/o/NAME` (the name fully percent-encoded, `/` as `%2F`):
    /// append `?alt=media` for the bytes.
    pub fn object_url(&self, bucket: &str, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{bucket}/o/{}",
            self.endpoint,
            pct_encode(name)
        )
    }

    /// Uploads an object (simple media upload, no precondition: overwrites).
    pub fn put_object(&self, bucket: &str, name: &str, data: &[u8]) -> anyhow::Result<()> {
        http(
            "POST",
            &format!(
                "{}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
                self.endpoint,
                pct_encode(name)
            ),
            &[("Content-Type", "application/octet-stream")],
            data,
        )?
        .expect(&format!("uploading {bucket}/{name}"), &[200])?;
        Ok(())
    }

    /// The object's bytes, `None` when it does not exist.
    pub fn get_object(&self, bucket: &str, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let r = http(
            "GET",
            &format!("{}?alt=media", self.object_url(bucket, name)),
            &[],
            b"",
        )?;
        match r.status {
            404 => Ok(None),
            _ => Ok(Some(
                r.expect(&format!("downloading {bucket}/{name}"), &[200])?
                    .body,
            )),
        }
    }

    /// Deletes an object; `false` when it did not exist (fake-gcs answers 200, GCS 204).
    pub fn delete_object(&self, bucket: &str, name: &str) -> anyhow::Result<bool> {
        let r = http("DELETE", &self.object_url(bucket, name), &[], b"")?;
        Ok(
            r.expect(&format!("deleting {bucket}/{name}"), &[200, 204, 404])?
                .status
                != 404,
        )
    }

    /// Names and sizes of every object under `prefix`, following nextPageToken.
    pub fn list_objects(&self, bucket: &str, prefix: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut url = format!(
                "{}/storage/v1/b/{bucket}/o?maxResults=1000&prefix={}",
                self.endpoint,
                pct_encode(prefix)
            );
            if !token.is_empty() {
                url.push_str(&format!("&pageToken={}", pct_encode(&token)));
            }
            let r = http("GET", &url, &[], b"")?.expect(&format!("listing {bucket}"), &[200])?;
            let v: serde_json::Value = serde_json::from_slice(&r.body).context("list JSON")?;
            for item in v["items"].as_array().into_iter().flatten() {
                let name = item["name"].as_str().context("an item without name")?;
                // The JSON API gives sizes as decimal strings.
                let size = item["size"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.push((name.to_string(), size));
            }
            token = v["nextPageToken"].as_str().unwrap_or_default().to_string();
            if token.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// A repository location in a fresh bucket of a running fake-gcs-server, for the core
/// scenarios: the profile names the emulator as `endpoint` and carries the test
/// service-account key, whose tokens come from the loopback token endpoint.
pub struct GcsBackend<'a> {
    server: &'a FakeGcs,
    bucket: String,
    key_json: String,
}

impl<'a> GcsBackend<'a> {
    /// A fresh bucket on `server`; `key_json` is the profile's service-account key.
    pub fn new(server: &'a FakeGcs, key_json: &str) -> Self {
        GcsBackend {
            bucket: server.fresh_bucket(),
            server,
            key_json: key_json.to_string(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The emulator.
    pub fn server(&self) -> &FakeGcs {
        self.server
    }

    /// The profile with another key.
    pub fn profile_with_key(&self, key_json: &str) -> String {
        serde_json::json!({
            "Location": {"type": "gcs", "bucket": self.bucket, "endpoint": self.server.endpoint, "prefix": "team/pre"},
            "Credential": {"Type": "keyPair", "KeyPair": {"ID": "kando-test", "Secret": key_json}},
            "SkipSSLVerify": false
        })
        .to_string()
    }

    /// Where the repository's objects start in the bucket.
    pub fn repo_root(&self) -> String {
        "team/pre/kando-repo/".to_string()
    }

    /// Deletes every object whose name starts with `prefix`, as an operator would.
    pub fn delete_under(&self, prefix: &str) {
        for (name, _) in self.server.list_objects(&self.bucket, prefix).unwrap() {
            self.server.delete_object(&self.bucket, &name).unwrap();
        }
    }
}

impl crate::common::Backend for GcsBackend<'_> {
    fn profile(&self) -> String {
        self.profile_with_key(&self.key_json)
    }
    fn object_keys(&self) -> Vec<String> {
        let objects = self.server.list_objects(&self.bucket, "").unwrap();
        objects.into_iter().map(|(k, _)| k).collect()
    }
    fn stored_bytes(&self) -> u64 {
        let objects = self.server.list_objects(&self.bucket, "").unwrap();
        objects.into_iter().map(|(_, n)| n).sum()
    }
    fn name(&self) -> String {
        format!("fake-gcs bucket {}", self.bucket)
    }
}
