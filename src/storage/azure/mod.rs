//! The Azure Blob backend: a repository under a prefix of one container, through
//! object_store's Azure client (SharedKey and SAS signing, block blobs, XML listings),
//! which passes our conformance suite on Azurite. It runs on our own HTTP stack
//! (`connector`: hyper + rustls, no reqwest), and object_store's retries follow the
//! shared [`RetryPolicy`]; a read whose body breaks off is re-issued here, as for S3.
//!
//! Object names are the keys verbatim (`Path::parse`, not `Path::from`, which would
//! percent-encode characters such as `~` and break upstream kando's plain objects).
//! Blocks of a killed writer are never committed, invisible, and expire after a week on
//! Azure's side, so `cleanup_incomplete` keeps the trait's default.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::azure::{AzureConfigKey, MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use super::error::error_chain;
use super::keys::Root;
use super::retry::{retry, Failure, RetryPolicy, PROBE_ATTEMPTS};
use super::{ObjectMeta, Storage, StorageError, StorageResult};

mod connector;

/// Objects above this size go up as blocks (bounded resends); packs stay below it.
const SINGLE_PUT_LIMIT: usize = 64 << 20;

/// Size of one block of a large object.
const PART_SIZE: usize = 16 << 20;

/// How to reach one repository in an Azure container.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// Storage account name.
    pub account: String,
    /// Container (the profile's `bucket`).
    pub container: String,
    /// Key prefix of the repository inside the container.
    pub root: String,
    /// The account's blob service URL: `https://<account>.blob.<suffix>`, or an
    /// emulator's `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: String,
    /// Who signs the requests.
    pub credentials: AzureCredentials,
    /// Accept any TLS certificate (Kanister's SkipSSLVerify).
    pub skip_ssl_verify: bool,
    /// Attempts and per-attempt timeout.
    pub retry: RetryPolicy,
}

/// How Azure requests are signed.
#[derive(Clone)]
pub enum AzureCredentials {
    /// The account key (SharedKey).
    SharedKey(String),
    /// A SAS token (query string, with or without a leading `?`).
    Sas(String),
}

// Written by hand: keys and SAS signatures never reach a log line through `{:?}`.
impl fmt::Debug for AzureCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AzureCredentials::SharedKey(_) => f.write_str("SharedKey(<redacted>)"),
            AzureCredentials::Sas(_) => f.write_str("Sas(<redacted>)"),
        }
    }
}

/// A repository stored under a prefix of an Azure Blob container.
pub struct AzureStorage {
    store: MicrosoftAzure,
    account: String,
    container: String,
    endpoint: String,
    root: Root,
    policy: RetryPolicy,
}

impl fmt::Debug for AzureStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureStorage")
            .field("endpoint", &self.endpoint)
            .field("container", &self.container)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// How an object_store call failed, in our terms.
enum Kind {
    NotFound,
    Exists,
    Denied,
    Unreachable,
    Other,
}

fn kind_of(e: &object_store::Error) -> Kind {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => Kind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => Kind::Exists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => Kind::Denied,
        _ => {
            let (status, code) = status_and_code(e);
            if connector::is_unreachable(e) {
                Kind::Unreachable
            } else if status == Some(403) || status == Some(401) {
                Kind::Denied
            } else if status == Some(404) || code.as_deref() == Some("ContainerNotFound") {
                Kind::NotFound
            } else {
                Kind::Other
            }
        }
    }
}

/// The HTTP status and Azure error code in an object_store error's text (its status type
/// is private): "... status code: 404 Not Found: <?xml ...><Code>ContainerNotFound</Code>".
fn status_and_code(e: &object_store::Error) -> (Option<u16>, Option<String>) {
    let text = error_chain(e);
    let status = text
        .split("status code: ")
        .nth(1)
        .and_then(|rest| rest.get(..3))
        .and_then(|s| s.parse().ok());
    let code = text
        .split("<Code>")
        .nth(1)
        .and_then(|rest| rest.split("</Code>").next())
        .map(str::to_string);
    (status, code)
}

impl AzureStorage {
    /// Builds the client and checks, with one listing under the root, that the container
    /// exists and the credentials may read it. Fails with a message naming the cause.
    pub async fn connect(cfg: AzureConfig) -> anyhow::Result<AzureStorage> {
        let container = cfg.container.trim().to_string();
        if container.is_empty() || container.contains('/') {
            anyhow::bail!("invalid Azure container name {:?}", cfg.container);
        }
        let endpoint = super::http::normalize_endpoint(&cfg.endpoint, "Azure")?;
        let build = |policy: RetryPolicy| -> anyhow::Result<MicrosoftAzure> {
            let mut builder = MicrosoftAzureBuilder::new()
                .with_account(&cfg.account)
                .with_container_name(&container)
                .with_endpoint(endpoint.clone())
                .with_allow_http(endpoint.starts_with("http://"))
                .with_http_connector(connector::Connector::new(
                    cfg.skip_ssl_verify,
                    policy.attempt_timeout,
                )?)
                .with_retry(RetryConfig {
                    max_retries: policy.max_attempts.saturating_sub(1) as usize,
                    retry_timeout: policy.operation_timeout(),
                    backoff: BackoffConfig {
                        init_backoff: Duration::from_millis(200),
                        max_backoff: super::retry::MAX_BACKOFF,
                        base: 2.,
                    },
                });
            builder = match &cfg.credentials {
                AzureCredentials::SharedKey(key) => builder.with_access_key(key),
                AzureCredentials::Sas(token) => builder
                    .with_config(AzureConfigKey::SasKey, token.trim().trim_start_matches('?')),
            };
            builder.build().map_err(|e| {
                anyhow::anyhow!("invalid Azure location settings: {}", error_chain(&e))
            })
        };
        let probe = AzureStorage {
            store: build(cfg.retry.with_attempts(PROBE_ATTEMPTS))?,
            account: cfg.account.clone(),
            container: container.clone(),
            endpoint: endpoint.clone(),
            root: Root::new(&cfg.root)?,
            policy: cfg.retry,
        };
        let prefix = Path::parse(probe.root.as_str())
            .map_err(|e| anyhow::anyhow!("invalid repository prefix: {e}"))?;
        let first = probe.store.list(Some(&prefix)).try_next().await;
        if let Err(e) = first {
            let (c, at) = (&container, &endpoint);
            return Err(match kind_of(&e) {
                Kind::NotFound => anyhow::anyhow!("container {c} does not exist at {at}"),
                Kind::Denied => anyhow::anyhow!(
                    "access denied to container {c} at {at} ({}): check the profile's credentials",
                    short(&e)
                ),
                Kind::Unreachable => {
                    anyhow::anyhow!("cannot reach the Azure endpoint {at}: {}", short(&e))
                }
                _ => anyhow::anyhow!("cannot use container {c} at {at}: {}", short(&e)),
            });
        }
        Ok(AzureStorage {
            store: build(cfg.retry)?,
            ..probe
        })
    }

    fn path(&self, key: &str) -> StorageResult<(Path, String)> {
        let full = self.root.full_key(key)?;
        let path = Path::parse(&full).map_err(|_| StorageError::InvalidKey {
            key: key.to_string(),
            reason: "has a control character",
        })?;
        Ok((path, full))
    }

    fn context(&self, op: &str, full: &str) -> String {
        format!("{op} azure://{}/{}/{full}", self.account, self.container)
    }

    /// The storage error of a failed call on `key`.
    fn error(&self, op: &str, key: &str, full: &str, e: object_store::Error) -> StorageError {
        let context = self.context(op, full);
        match kind_of(&e) {
            Kind::NotFound if matches!(op, "GET" | "HEAD") => {
                StorageError::NotFound(key.to_string())
            }
            Kind::Denied => StorageError::PermissionDenied {
                context,
                source: short(&e).into(),
            },
            Kind::Unreachable => StorageError::Unavailable {
                context,
                attempts: self.policy.max_attempts,
                source: short(&e).into(),
            },
            _ => StorageError::other(context, short(&e)),
        }
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> StorageResult<Bytes> {
        let (path, full) = self.path(key)?;
        let context = self.context("GET", &full);
        // object_store retries the request; a body that breaks off is a new GET here.
        retry(self.policy, &context, || async {
            let result = match &range {
                Some(r) => self.store.get_range(&path, r.clone()).await,
                None => match self.store.get(&path).await {
                    Ok(got) => got.bytes().await,
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(bytes) => Ok(bytes),
                Err(e) if matches!(kind_of(&e), Kind::Other) && is_body_failure(&e) => {
                    Err(Failure::Transient(short(&e).into()))
                }
                Err(e) => Err(Failure::Final(self.error("GET", key, &full, e))),
            }
        })
        .await
    }

    async fn write(&self, key: &str, data: Bytes, mode: PutMode) -> StorageResult<bool> {
        let (path, full) = self.path(key)?;
        let result = if data.len() > SINGLE_PUT_LIMIT {
            // A block blob in parts: Put Block each, then Put Block List.
            let mut upload = self
                .store
                .put_multipart_opts(&path, Default::default())
                .await
                .map_err(|e| self.error("PUT", key, &full, e))?;
            for start in (0..data.len()).step_by(PART_SIZE) {
                let part = data.slice(start..(start + PART_SIZE).min(data.len()));
                if let Err(e) = upload.put_part(PutPayload::from_bytes(part)).await {
                    let _ = upload.abort().await;
                    return Err(self.error("PUT", key, &full, e));
                }
            }
            upload.complete().await.map(drop)
        } else {
            let options = PutOptions::from(mode);
            let payload = PutPayload::from_bytes(data);
            self.store.put_opts(&path, payload, options).await.map(drop)
        };
        match result {
            Ok(()) => Ok(true),
            Err(e) if matches!(kind_of(&e), Kind::Exists) => Ok(false),
            Err(e) => Err(self.error("PUT", key, &full, e)),
        }
    }
}

/// The error for people: "HTTP 404 ContainerNotFound: The specified container does not
/// exist." when the server said so, else the error chain on one line — with any SAS
/// signature in a request URL it quotes blanked out.
fn short(e: &object_store::Error) -> String {
    let text = redact_signatures(&error_chain(e));
    let message = text
        .split("<Message>")
        .nth(1)
        .and_then(|rest| rest.split(['\n', '<']).next())
        .map(str::trim);
    match (status_and_code(e), message) {
        ((Some(s), Some(c)), Some(m)) => format!("HTTP {s} {c}: {m}"),
        ((Some(s), Some(c)), None) => format!("HTTP {s} {c}"),
        _ => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// `sig=<anything>` → `sig=<redacted>` (object_store quotes request URLs, and a SAS
/// token travels in the query).
fn redact_signatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("sig=") {
        out.push_str(&rest[..i + 4]);
        out.push_str("<redacted>");
        rest = &rest[i + 4..];
        let end = rest
            .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn is_body_failure(e: &object_store::Error) -> bool {
    let text = error_chain(e).to_ascii_lowercase();
    text.contains("body") || text.contains("timed out") || text.contains("interrupted")
}

#[async_trait]
impl Storage for AzureStorage {
    async fn put(&self, key: &str, data: Bytes) -> StorageResult<()> {
        self.write(key, data, PutMode::Overwrite).await.map(drop)
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> StorageResult<bool> {
        // object_store's multipart upload has no condition: large objects are checked
        // first (callers re-read; the repository's create-if-absent objects are small).
        if data.len() > SINGLE_PUT_LIMIT && self.head(key).await?.is_some() {
            return Ok(false);
        }
        // `If-None-Match: *`: Azure answers 409 BlobAlreadyExists to the loser.
        self.write(key, data, PutMode::Create).await
    }

    async fn get(&self, key: &str) -> StorageResult<Bytes> {
        self.read(key, None).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> StorageResult<Bytes> {
        let (_, full) = self.path(key)?;
        let out_of_range = |size: u64| {
            StorageError::other(
                self.context("GET", &full),
                format!("range {range:?} is outside the object's {size} bytes"),
            )
        };
        if range.start > range.end {
            return Err(out_of_range(0));
        }
        // Azure clamps a range that runs past the end (Azurite even answers one that starts
        // at the end): the size is checked first, so a short read is never data.
        let size = match self.head(key).await? {
            Some(meta) => meta.size,
            None => return Err(StorageError::NotFound(key.to_string())),
        };
        if range.end > size {
            return Err(out_of_range(size));
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let got = self.read(key, Some(range.clone())).await?;
        if got.len() as u64 != range.end - range.start {
            return Err(StorageError::other(
                self.context("GET", &full),
                format!(
                    "asked for {} bytes, received {}",
                    range.end - range.start,
                    got.len()
                ),
            ));
        }
        Ok(got)
    }

    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        let full_prefix = self.root.join(prefix);
        // object_store lists by whole path segments: list the deepest complete directory
        // of the prefix, then filter by the string prefix.
        let dir = match full_prefix.rfind('/') {
            Some(i) => &full_prefix[..i],
            None => "",
        };
        let dir_path = Path::parse(dir)
            .map_err(|e| StorageError::other(self.context("LIST", &full_prefix), e.to_string()))?;
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&dir_path))
            .try_collect()
            .await
            .map_err(|e| self.error("LIST", prefix, &full_prefix, e))?;
        let mut out: Vec<ObjectMeta> = listed
            .into_iter()
            .filter_map(|m| {
                let name = m.location.as_ref();
                let key = self.root.key_of(name, &full_prefix)?;
                Some(ObjectMeta {
                    key: key.to_string(),
                    size: m.size,
                })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.dedup_by(|a, b| a.key == b.key);
        Ok(out)
    }

    async fn delete(&self, key: &str) -> StorageResult<()> {
        let (path, full) = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(kind_of(&e), Kind::NotFound) => Ok(()),
            Err(e) => Err(self.error("DELETE", key, &full, e)),
        }
    }

    async fn head(&self, key: &str) -> StorageResult<Option<ObjectMeta>> {
        let (path, full) = self.path(key)?;
        match self.store.head(&path).await {
            Ok(m) => Ok(Some(ObjectMeta {
                key: key.to_string(),
                size: m.size,
            })),
            Err(e) => match self.error("HEAD", key, &full, e) {
                StorageError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    fn describe(&self) -> String {
        let root = self.root.as_str();
        let sep = if root.is_empty() { "" } else { "/" };
        format!(
            "azure container {}{sep}{root} at {}",
            self.container, self.endpoint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_signatures_are_blanked() {
        let url = "Error performing GET http://h/c?sv=2022-11-02&sig=abc%2Bdef&sp=rl: refused";
        assert_eq!(
            redact_signatures(url),
            "Error performing GET http://h/c?sv=2022-11-02&sig=<redacted>&sp=rl: refused"
        );
        assert_eq!(redact_signatures("x sig=abc"), "x sig=<redacted>");
        assert_eq!(redact_signatures("no secret"), "no secret");
    }
}
