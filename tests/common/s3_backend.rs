//! A repository location in a fresh bucket of a running S3 server ([`crate::s3`]), for the
//! scenarios that run the kando binary.

use crate::common::Backend;
use crate::s3::S3Server;

/// A repository location in a fresh bucket of a running server, for the core scenarios.
pub struct S3Backend<'a> {
    server: &'a S3Server,
    bucket: String,
    /// Use a Kubernetes-Secret credential instead of a keyPair.
    secret_credential: bool,
    /// The profile's prefix.
    prefix: &'static str,
    rt: tokio::runtime::Runtime,
}

impl<'a> S3Backend<'a> {
    /// A fresh bucket on `server`.
    pub fn new(server: &'a S3Server, secret_credential: bool) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let bucket = rt.block_on(server.fresh_bucket());
        // s3s-fs stores base64(bucket) + base64(key) in one file name, so keys over ~160
        // bytes fail there (real S3 allows 1024); the blueprint paths need every byte.
        let prefix = if server.kind == "s3s-fs" {
            ""
        } else {
            "team/pre"
        };
        S3Backend {
            server,
            bucket,
            secret_credential,
            prefix,
            rt,
        }
    }

    fn all_objects(&self) -> Vec<kando::storage::ObjectMeta> {
        use kando::storage::Storage;
        self.rt.block_on(async {
            let storage =
                kando::storage::s3::S3Storage::connect(self.server.config(&self.bucket, ""))
                    .await
                    .unwrap();
            storage.list("").await.unwrap()
        })
    }
}

impl S3Backend<'_> {
    /// Deletes every object whose key starts with `prefix` (relative to the bucket), as
    /// an operator or a lifecycle rule would.
    pub fn delete_under(&self, prefix: &str) {
        use kando::storage::Storage;
        self.rt.block_on(async {
            let storage =
                kando::storage::s3::S3Storage::connect(self.server.config(&self.bucket, ""))
                    .await
                    .unwrap();
            for m in storage.list(prefix).await.unwrap() {
                storage.delete(&m.key).await.unwrap();
            }
        })
    }

    /// The server this bucket is on.
    pub fn server(&self) -> &S3Server {
        self.server
    }

    /// Runs `f` on this backend's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Every object under the bucket, with its bytes.
    pub fn objects_with_bytes(&self) -> Vec<(String, Vec<u8>)> {
        use kando::storage::Storage;
        self.rt.block_on(async {
            let storage =
                kando::storage::s3::S3Storage::connect(self.server.config(&self.bucket, ""))
                    .await
                    .unwrap();
            let mut out = Vec::new();
            for m in storage.list("").await.unwrap() {
                let bytes = storage.get(&m.key).await.unwrap();
                out.push((m.key, bytes.to_vec()));
            }
            out
        })
    }

    /// The server-side encryption headers of one object: (mode, KMS key id).
    pub fn sse_of(&self, key: &str) -> (Option<String>, Option<String>) {
        self.rt.block_on(async {
            let head = self
                .server
                .client()
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .unwrap();
            (
                head.server_side_encryption()
                    .map(|m| m.as_str().to_string()),
                head.ssekms_key_id().map(str::to_string),
            )
        })
    }

    /// Where the repository's objects start in the bucket.
    pub fn repo_root(&self) -> String {
        if self.prefix.is_empty() {
            "kando-repo/".to_string()
        } else {
            format!("{}/kando-repo/", self.prefix)
        }
    }
}

impl S3Backend<'_> {
    /// The profile with other keys (a keyPair credential).
    pub fn profile_with_keys(&self, access: &str, secret: &str) -> String {
        self.profile_with_credential(&format!(
            r#"{{"Type":"keyPair","KeyPair":{{"ID":"{access}","Secret":"{secret}"}}}}"#
        ))
    }

    /// The profile with `credential` (JSON) as its Credential.
    pub fn profile_with_credential(&self, credential: &str) -> String {
        format!(
            r#"{{"Location":{{"type":"s3Compliant","bucket":"{}","endpoint":"{}","prefix":"{}","region":"{}"}},"Credential":{credential},"SkipSSLVerify":false}}"#,
            self.bucket, self.server.endpoint, self.prefix, self.server.region
        )
    }
}

impl Backend for S3Backend<'_> {
    fn profile(&self) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let credential = if self.secret_credential {
            format!(
                r#"{{"Type":"secret","Secret":{{"apiVersion":"v1","kind":"Secret","type":"secrets.kanister.io/aws","data":{{"aws_access_key_id":"{}","aws_secret_access_key":"{}"}}}}}}"#,
                b64(&self.server.access_key),
                b64(&self.server.secret_key)
            )
        } else {
            format!(
                r#"{{"Type":"keyPair","KeyPair":{{"ID":"{}","Secret":"{}"}},"Secret":null,"KopiaServerSecret":null}}"#,
                self.server.access_key, self.server.secret_key
            )
        };
        format!(
            r#"{{"Location":{{"type":"s3Compliant","bucket":"{}","endpoint":"{}","prefix":"{}","region":"{}"}},"Credential":{credential},"SkipSSLVerify":false}}"#,
            self.bucket, self.server.endpoint, self.prefix, self.server.region
        )
    }
    fn object_keys(&self) -> Vec<String> {
        self.all_objects().into_iter().map(|m| m.key).collect()
    }
    fn stored_bytes(&self) -> u64 {
        self.all_objects().iter().map(|m| m.size).sum()
    }
    fn name(&self) -> String {
        format!("s3/{}", self.server.kind)
    }
}
