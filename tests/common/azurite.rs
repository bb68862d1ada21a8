//! Azurite (Azure Blob Storage emulator) on loopback for integration tests.
//!
//! [`Azurite::start`] runs `scripts/emulators/server.sh start azurite` in a fresh temporary
//! directory and stops it when dropped; [`Azurite::start_selected`] honours
//! `KANDO_TEST_EMULATORS` and `CI` (see `emulators`). Azurite checks SharedKey
//! signatures (an unsigned or wrongly signed request gets 403 AuthorizationFailure), so
//! set-up requests here are signed: [`shared_key`] implements the Blob service's SharedKey
//! scheme and [`container_sas`] a service SAS for a container, both with the account key.
//! Behaviour measured on Azurite 3.35.0 is in scripts/emulators/README.md.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::emulators::{http, pct_decode, pct_encode, pct_encode_path, Emulator, Response};

/// Azurite's fixed development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key (public, documented by Microsoft).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// `x-ms-version` of the set-up requests (Azurite runs with --skipApiVersionCheck anyway).
pub const API_VERSION: &str = "2021-12-02";
/// `sv` of the SAS tokens made here (string-to-sign of versions 2020-12-06 and later).
pub const SAS_VERSION: &str = "2022-11-02";

/// A running Azurite blob service, stopped on drop.
pub struct Azurite {
    /// `http://127.0.0.1:PORT/devstoreaccount1` (path-style: the account is the first
    /// path segment, containers follow).
    pub endpoint: String,
    /// devstoreaccount1.
    pub account: String,
    /// The account key (base64).
    pub key: String,
    /// The emulator's directory (`log/azurite.out`, `pids/`, `env`).
    pub workdir: PathBuf,
    _server: Emulator,
}

impl Azurite {
    /// Starts Azurite through the script, in its own temporary directory.
    pub fn start() -> anyhow::Result<Azurite> {
        let server = Emulator::start("azurite")?;
        Ok(Azurite {
            endpoint: server.get("AZURE_ENDPOINT")?,
            account: server.get("AZURE_ACCOUNT")?,
            key: server.get("AZURE_KEY")?,
            workdir: server.workdir().to_path_buf(),
            _server: server,
        })
    }

    /// Starts Azurite when `KANDO_TEST_EMULATORS` selects it; `None` (with a note) when it
    /// is not selected or cannot start outside CI; panics when it cannot start under CI.
    pub fn start_selected() -> Option<Azurite> {
        crate::emulators::start_selected("azurite", Azurite::start)
    }

    /// `endpoint/container`.
    pub fn container_url(&self, container: &str) -> String {
        format!("{}/{container}", self.endpoint)
    }

    /// `endpoint/container/blob` (the blob name percent-encoded, `/` kept).
    pub fn blob_url(&self, container: &str, blob: &str) -> String {
        format!("{}/{container}/{}", self.endpoint, pct_encode_path(blob))
    }

    /// A SharedKey-signed request. `rel` is the path below the endpoint with its query,
    /// already encoded: `/container?restype=container`, `/container/a/b?comp=block&...`.
    pub fn request(
        &self,
        method: &str,
        rel: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> anyhow::Result<Response> {
        let url = format!("{}{rel}", self.endpoint);
        let (path, query) = split_url(&url)?;
        let date = rfc1123(SystemTime::now());
        let length = body.len().to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("x-ms-version", API_VERSION),
            ("x-ms-date", &date),
            ("Content-Length", &length),
        ];
        all.extend_from_slice(headers);
        let auth = shared_key(&self.account, &self.key, method, path, query, &all)?;
        all.push(("Authorization", &auth));
        http(method, &url, &all, body)
    }

    /// Creates container `name` (201; anything else, including 409 ContainerAlreadyExists,
    /// is an error).
    pub fn create_container(&self, name: &str) -> anyhow::Result<()> {
        self.request("PUT", &format!("/{name}?restype=container"), &[], b"")?
            .expect(&format!("creating container {name}"), &[201])?;
        Ok(())
    }

    /// Creates a container with a fresh random name and returns the name.
    pub fn fresh_container(&self) -> String {
        let name = crate::emulators::unique_name("kando-test");
        self.create_container(&name)
            .unwrap_or_else(|e| panic!("creating container {name} on Azurite: {e:#}"));
        name
    }

    /// A service SAS token (query string, no leading `?`) for `container` with
    /// `permissions` (letters in the order `racwdxl...`, e.g. `racwdl` or `rl`), valid until
    /// `expiry`, signed with this account's key.
    pub fn container_sas(
        &self,
        container: &str,
        permissions: &str,
        expiry: SystemTime,
    ) -> anyhow::Result<String> {
        container_sas(&self.account, &self.key, container, permissions, expiry)
    }

    /// [`Azurite::container_sas`] valid for `ttl` from now.
    pub fn container_sas_for(
        &self,
        container: &str,
        permissions: &str,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        self.container_sas(container, permissions, SystemTime::now() + ttl)
    }

    /// Uploads a block blob in one Put Blob (overwrites).
    pub fn put_blob(&self, container: &str, blob: &str, data: &[u8]) -> anyhow::Result<()> {
        let rel = format!("/{container}/{}", pct_encode_path(blob));
        self.request("PUT", &rel, &[("x-ms-blob-type", "BlockBlob")], data)?
            .expect(&format!("Put Blob {container}/{blob}"), &[201])?;
        Ok(())
    }

    /// The blob's bytes, `None` when it does not exist.
    pub fn get_blob(&self, container: &str, blob: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let rel = format!("/{container}/{}", pct_encode_path(blob));
        let r = self.request("GET", &rel, &[], b"")?;
        match r.status {
            404 => Ok(None),
            _ => Ok(Some(
                r.expect(&format!("Get Blob {container}/{blob}"), &[200])?
                    .body,
            )),
        }
    }

    /// Deletes a blob; `false` when it did not exist.
    pub fn delete_blob(&self, container: &str, blob: &str) -> anyhow::Result<bool> {
        let rel = format!("/{container}/{}", pct_encode_path(blob));
        let r = self.request("DELETE", &rel, &[], b"")?;
        Ok(
            r.expect(&format!("Delete Blob {container}/{blob}"), &[202, 404])?
                .status
                == 202,
        )
    }

    /// Names and sizes of every blob under `prefix`, following NextMarker.
    pub fn list_blobs(&self, container: &str, prefix: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let mut rel = format!(
                "/{container}?restype=container&comp=list&maxresults=5000&prefix={}",
                pct_encode(prefix)
            );
            if !marker.is_empty() {
                rel.push_str(&format!("&marker={}", pct_encode(&marker)));
            }
            let r = self
                .request("GET", &rel, &[], b"")?
                .expect(&format!("List Blobs {container}"), &[200])?;
            let xml = r.text();
            for blob in xml_elements(&xml, "Blob") {
                let name = xml_text(blob, "Name").context("a Blob without Name")?;
                let size = xml_text(blob, "Content-Length")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                out.push((xml_unescape(name), size));
            }
            marker = xml_text(&xml, "NextMarker")
                .map(xml_unescape)
                .unwrap_or_default();
            if marker.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// The `Authorization` header value (`SharedKey account:signature`) for a Blob service
/// request (versions 2009-09-19 and later). `path` is the URL path as sent (encoded; for
/// the emulator it starts with `/devstoreaccount1`), `query` the raw query string (may be
/// empty), `headers` every header the request will carry except Host and Authorization.
pub fn shared_key(
    account: &str,
    key_b64: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<String> {
    let get = |name: &str| -> String {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .next()
            .unwrap_or_default()
    };
    let mut length = get("content-length");
    if length == "0" {
        length.clear(); // versions 2015-02-21 and later: empty, not 0
    }
    let mut sts = [
        method.to_string(),
        get("content-encoding"),
        get("content-language"),
        length,
        get("content-md5"),
        get("content-type"),
        get("date"),
        get("if-modified-since"),
        get("if-match"),
        get("if-none-match"),
        get("if-unmodified-since"),
        get("range"),
    ]
    .join("\n");
    sts.push('\n');
    // Canonicalized headers: every x-ms-* header, lower-cased, sorted.
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .filter(|(k, _)| k.starts_with("x-ms-"))
        .collect();
    ms.sort();
    for (k, v) in ms {
        sts.push_str(&format!("{k}:{v}\n"));
    }
    // Canonicalized resource: /account + path, then each query parameter (name
    // lower-cased, values decoded, sorted and comma-joined), sorted by name.
    sts.push_str(&format!("/{account}{path}"));
    let mut params: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params
            .entry(pct_decode(k).to_ascii_lowercase())
            .or_default()
            .push(pct_decode(v));
    }
    for (k, mut vs) in params {
        vs.sort();
        sts.push_str(&format!("\n{k}:{}", vs.join(",")));
    }
    Ok(format!("SharedKey {account}:{}", hmac_b64(key_b64, &sts)?))
}

/// A service SAS token for a container (`sr=c`, `sv=`[`SAS_VERSION`], `spr=https,http`),
/// as a query string without the leading `?`. String-to-sign of versions 2020-12-06 and
/// later: sp, st, se, `/blob/account/container`, si, sip, spr, sv, sr, snapshot time,
/// encryption scope, rscc, rscd, rsce, rscl, rsct.
pub fn container_sas(
    account: &str,
    key_b64: &str,
    container: &str,
    permissions: &str,
    expiry: SystemTime,
) -> anyhow::Result<String> {
    let se = humantime::format_rfc3339_seconds(expiry).to_string();
    let protocol = "https,http";
    let resource = format!("/blob/{account}/{container}");
    let sts = [
        permissions,
        "",
        &se,
        &resource,
        "",
        "",
        protocol,
        SAS_VERSION,
        "c",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    .join("\n");
    let sig = hmac_b64(key_b64, &sts)?;
    Ok(format!(
        "sv={SAS_VERSION}&sr=c&sp={}&se={}&spr={}&sig={}",
        pct_encode(permissions),
        pct_encode(&se),
        pct_encode(protocol),
        pct_encode(&sig)
    ))
}

/// base64(HMAC-SHA256(base64-decoded key, text)).
fn hmac_b64(key_b64: &str, text: &str) -> anyhow::Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(key_b64)
        .context("the account key is not base64")?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).context("HMAC key")?;
    mac.update(text.as_bytes());
    Ok(b64.encode(mac.finalize().into_bytes()))
}

/// `(path, query)` of an `http://host:port/path?query` URL.
fn split_url(url: &str) -> anyhow::Result<(&str, &str)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let path = &rest[rest.find('/').context("URL without a path")?..];
    Ok(path.split_once('?').unwrap_or((path, "")))
}

/// An HTTP date (`Tue, 01 Dec 2026 16:15:02 GMT`) for `x-ms-date`.
pub fn rfc1123(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The inner text of every `<tag>...</tag>` in `xml` (no nesting of the same tag).
fn xml_elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// The inner text of the first `<tag>...</tag>` in `xml`.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    xml_elements(xml, tag).into_iter().next()
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// How an [`AzureBackend`]'s profile carries the account key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AzureCredential {
    /// `keyPair`: ID = account, Secret = key.
    KeyPair,
    /// A `secrets.kanister.io/azure` Secret with account and key.
    Secret,
}

/// A repository location in a fresh container of a running Azurite, for the core scenarios.
pub struct AzureBackend<'a> {
    server: &'a Azurite,
    container: String,
    credential: AzureCredential,
}

impl<'a> AzureBackend<'a> {
    /// A fresh container on `server`.
    pub fn new(server: &'a Azurite, credential: AzureCredential) -> Self {
        AzureBackend {
            container: server.fresh_container(),
            server,
            credential,
        }
    }

    /// The container.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The emulator.
    pub fn server(&self) -> &Azurite {
        self.server
    }

    /// The profile with `credential` (a JSON value) as its Credential.
    pub fn profile_with(&self, credential: serde_json::Value) -> String {
        serde_json::json!({
            "Location": {"type": "azure", "bucket": self.container, "endpoint": self.server.endpoint, "prefix": "team/pre"},
            "Credential": credential,
            "SkipSSLVerify": false
        })
        .to_string()
    }

    /// A `secrets.kanister.io/azure` Secret credential with `data` (plain values, encoded
    /// here).
    pub fn secret_credential(data: &[(&str, &str)]) -> serde_json::Value {
        use base64::Engine;
        let data: serde_json::Map<String, serde_json::Value> = data
            .iter()
            .map(|(k, v)| {
                let b64 = base64::engine::general_purpose::STANDARD.encode(v);
                (k.to_string(), serde_json::Value::String(b64))
            })
            .collect();
        serde_json::json!({"Type": "secret", "Secret": {"type": "secrets.kanister.io/azure", "data": data}})
    }

    /// Where the repository's objects start in the container.
    pub fn repo_root(&self) -> String {
        "team/pre/kando-repo/".to_string()
    }

    /// Deletes every blob whose name starts with `prefix`, as an operator would.
    pub fn delete_under(&self, prefix: &str) {
        for (name, _) in self.server.list_blobs(&self.container, prefix).unwrap() {
            self.server.delete_blob(&self.container, &name).unwrap();
        }
    }
}

impl crate::common::Backend for AzureBackend<'_> {
    fn profile(&self) -> String {
        let (account, key) = (self.server.account.as_str(), self.server.key.as_str());
        self.profile_with(match self.credential {
            AzureCredential::KeyPair => serde_json::json!({
                "Type": "keyPair", "KeyPair": {"ID": account, "Secret": key}
            }),
            AzureCredential::Secret => Self::secret_credential(&[
                ("azure_storage_account_id", account),
                ("azure_storage_key", key),
            ]),
        })
    }
    fn object_keys(&self) -> Vec<String> {
        let blobs = self.server.list_blobs(&self.container, "").unwrap();
        blobs.into_iter().map(|(k, _)| k).collect()
    }
    fn stored_bytes(&self) -> u64 {
        let blobs = self.server.list_blobs(&self.container, "").unwrap();
        blobs.into_iter().map(|(_, n)| n).sum()
    }
    fn name(&self) -> String {
        format!("azurite container {}", self.container)
    }
}
