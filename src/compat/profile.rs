//! The Kanister Profile JSON (`{{ toJson .Profile }}`), parsed the way Go's
//! `encoding/json` does: keys match case-insensitively. Secrets are kept out of `Debug`.

use std::fmt;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde_json::{Map, Value};

/// Largest profile accepted, in bytes: real ones are a few hundred.
pub const MAX_PROFILE_LEN: usize = 64 * 1024;

/// Where the repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationType {
    /// Any S3-compatible store.
    S3Compliant,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// A Kopia repository server (recognised, not implemented).
    Kopia,
    /// Ours: a local directory (`"path"`), the embedded default.
    Local,
}

impl LocationType {
    /// The spelling used in profiles.
    pub fn as_str(&self) -> &'static str {
        match self {
            LocationType::S3Compliant => "s3Compliant",
            LocationType::Gcs => "gcs",
            LocationType::Azure => "azure",
            LocationType::Kopia => "kopia",
            LocationType::Local => "local",
        }
    }
}

/// The profile's `Location`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `type`.
    pub kind: LocationType,
    /// `bucket` (object stores).
    pub bucket: String,
    /// `endpoint`; empty means the provider's default.
    pub endpoint: String,
    /// `prefix`: the repository lives under it.
    pub prefix: String,
    /// `region` (a hint for S3).
    pub region: String,
    /// `path`: the directory of a `local` repository.
    pub path: String,
}

/// Credentials from the profile. `Debug` never shows secret values.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No `Credential`: the platform's default chain applies.
    None,
    /// `keyPair`: access key id and secret.
    KeyPair {
        /// Access key id.
        id: String,
        /// Secret access key.
        secret: String,
    },
    /// `secret` of type `secrets.kanister.io/aws`, decoded.
    AwsSecret {
        /// `aws_access_key_id`.
        id: String,
        /// `aws_secret_access_key`.
        secret: String,
        /// `role`: assume this role with the keys above.
        role: Option<String>,
    },
    /// `secret` of type `secrets.kanister.io/azure`, decoded.
    AzureSecret {
        /// `azure_storage_account_id`.
        account: String,
        /// `azure_storage_key`; `None` with federated identity.
        key: Option<String>,
        /// `azure_storage_environment`, as written (checked when the backend opens).
        environment: Option<String>,
        /// `azure_federated_identity: "true"`: no key, a SAS token from
        /// `$AZURE_SAS_TOKEN_FILE`.
        federated: bool,
    },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::None => f.write_str("None"),
            Credential::KeyPair { id, .. } => {
                write!(f, "KeyPair {{ id: {id:?}, secret: <redacted> }}")
            }
            Credential::AwsSecret { id, role, .. } => {
                write!(
                    f,
                    "AwsSecret {{ id: {id:?}, secret: <redacted>, role: {role:?} }}"
                )
            }
            Credential::AzureSecret {
                account,
                environment,
                federated,
                ..
            } => write!(
                f,
                "AzureSecret {{ account: {account:?}, key: <redacted>, environment: {environment:?}, federated: {federated} }}"
            ),
        }
    }
}

/// A parsed profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Where the repository is.
    pub location: Location,
    /// How to authenticate.
    pub credential: Credential,
    /// Accept any TLS certificate.
    pub skip_ssl_verify: bool,
}

/// Go-style lookup: an exact key wins, else the first case-insensitive match.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn get_obj<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<Option<&'a Map<String, Value>>> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => bail!("profile: {what} must be a JSON object"),
    }
}

fn get_str(obj: &Map<String, Value>, key: &str, what: &str) -> Result<String> {
    match get(obj, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => bail!("profile: {what} must be a string"),
    }
}

impl Profile {
    /// Parses the `--profile` value.
    pub fn parse(json: &str) -> Result<Profile> {
        if json.trim().is_empty() {
            bail!("Please provide the --profile flag");
        }
        if json.len() > MAX_PROFILE_LEN {
            bail!(
                "--profile is {} bytes; a profile is at most {MAX_PROFILE_LEN}",
                json.len()
            );
        }
        // serde_json stops at 128 levels of nesting, so hostile depth is an error, not a crash.
        let v: Value =
            serde_json::from_str(json).map_err(|e| anyhow!("--profile is not valid JSON: {e}"))?;
        let top = v
            .as_object()
            .ok_or_else(|| anyhow!("--profile must be a JSON object"))?;
        let loc = get_obj(top, "Location", "Location")?
            .ok_or_else(|| anyhow!("profile has no Location"))?;
        let kind_str = get_str(loc, "type", "Location.type")?;
        let kind = match kind_str.as_str() {
            "s3Compliant" => LocationType::S3Compliant,
            "gcs" => LocationType::Gcs,
            "azure" => LocationType::Azure,
            "kopia" => LocationType::Kopia,
            "local" => LocationType::Local,
            other => bail!("Unsupported Location type: {other}"),
        };
        let location = Location {
            kind,
            bucket: get_str(loc, "bucket", "Location.bucket")?,
            endpoint: get_str(loc, "endpoint", "Location.endpoint")?,
            prefix: get_str(loc, "prefix", "Location.prefix")?,
            region: get_str(loc, "region", "Location.region")?,
            path: get_str(loc, "path", "Location.path")?,
        };
        let credential = match get_obj(top, "Credential", "Credential")? {
            None => Credential::None,
            Some(c) => parse_credential(c)?,
        };
        let skip_ssl_verify = match get(top, "SkipSSLVerify") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => bail!("profile: SkipSSLVerify must be true or false"),
        };
        Ok(Profile {
            location,
            credential,
            skip_ssl_verify,
        })
    }
}

fn parse_credential(c: &Map<String, Value>) -> Result<Credential> {
    let kind = get_str(c, "Type", "Credential.Type")?;
    match kind.as_str() {
        "keyPair" => {
            let kp = get_obj(c, "KeyPair", "Credential.KeyPair")?
                .ok_or_else(|| anyhow!("profile: Credential of type keyPair has no KeyPair"))?;
            let id = get_str(kp, "ID", "KeyPair.ID")?;
            let secret = get_str(kp, "Secret", "KeyPair.Secret")?;
            // GCS reads an empty Secret as "Google's default credentials"; the backends
            // that need both say so when they open.
            if id.is_empty() && secret.is_empty() {
                bail!("profile: KeyPair needs both ID and Secret");
            }
            Ok(Credential::KeyPair { id, secret })
        }
        "secret" => {
            let s = get_obj(c, "Secret", "Credential.Secret")?
                .ok_or_else(|| anyhow!("profile: Credential of type secret has no Secret"))?;
            match get_str(s, "type", "Secret.type")?.as_str() {
                "secrets.kanister.io/aws" => parse_aws_secret(s),
                "secrets.kanister.io/azure" => parse_azure_secret(s),
                ty => bail!("profile: Secret type {ty:?} is not supported (expected secrets.kanister.io/aws or secrets.kanister.io/azure)"),
            }
        }
        "" => bail!("profile: Credential has no Type"),
        other => {
            bail!("profile: unsupported Credential type {other:?} (expected keyPair or secret)")
        }
    }
}

/// The Secret's base64 `data`, decoded, in key order; `None` when it has none.
fn secret_data(s: &Map<String, Value>) -> Result<Option<Vec<(String, String)>>> {
    let Some(data) = get_obj(s, "data", "Secret.data")?.filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for (k, v) in data {
        let b64 = v
            .as_str()
            .ok_or_else(|| anyhow!("profile: Secret data {k:?} must be a base64 string"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .with_context(|| format!("profile: Secret data {k:?} is not valid base64"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow!("profile: Secret data {k:?} is not UTF-8 text"))?;
        out.push((k.clone(), text));
    }
    Ok(Some(out))
}

/// A Kubernetes Secret of type `secrets.kanister.io/azure`.
fn parse_azure_secret(s: &Map<String, Value>) -> Result<Credential> {
    let data = secret_data(s)?.unwrap_or_default();
    let (mut account, mut key, mut environment, mut federated) = (None, None, None, false);
    for (k, text) in data {
        match k.as_str() {
            "azure_storage_account_id" => account = Some(text),
            "azure_storage_key" => key = Some(text).filter(|t| !t.is_empty()),
            "azure_storage_environment" => environment = Some(text).filter(|t| !t.is_empty()),
            "azure_federated_identity" => federated = text.trim().eq_ignore_ascii_case("true"),
            other => bail!("profile: Secret has unknown key {other:?} (allowed: azure_storage_account_id, azure_storage_key, azure_storage_environment, azure_federated_identity)"),
        }
    }
    let account = account
        .filter(|a| !a.is_empty())
        .ok_or_else(|| anyhow!("profile: Secret needs azure_storage_account_id"))?;
    if key.is_none() && !federated {
        bail!("profile: Secret needs azure_storage_key (or azure_federated_identity: \"true\")");
    }
    Ok(Credential::AzureSecret {
        account,
        key,
        environment,
        federated,
    })
}

/// A Kubernetes Secret of type `secrets.kanister.io/aws` with base64 `data`.
fn parse_aws_secret(s: &Map<String, Value>) -> Result<Credential> {
    // No data at all: the pod's own identity (IRSA's web-identity token, an instance
    // role), as upstream falls back to the SDK's default chain.
    let Some(data) = secret_data(s)? else {
        return Ok(Credential::None);
    };
    let (mut id, mut secret, mut role) = (None, None, None);
    for (k, text) in data {
        match k.as_str() {
            "aws_access_key_id" => id = Some(text),
            "aws_secret_access_key" => secret = Some(text),
            "role" => role = Some(text).filter(|r| !r.is_empty()),
            other => bail!("profile: Secret has unknown key {other:?} (allowed: aws_access_key_id, aws_secret_access_key, role)"),
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok(Credential::AwsSecret { id, secret, role })
        }
        _ => bail!("profile: Secret needs aws_access_key_id and aws_secret_access_key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_without_data_means_the_default_chain() {
        for data in [r#""data":{}"#, r#""stringData":{}"#] {
            let json = format!(
                r#"{{"Location":{{"type":"s3Compliant","bucket":"b"}},"Credential":{{"Type":"secret","Secret":{{"type":"secrets.kanister.io/aws",{data}}}}}}}"#
            );
            let p = Profile::parse(&json).unwrap();
            assert!(matches!(p.credential, Credential::None), "{data}");
        }
    }

    #[test]
    fn parses_a_rendered_kanister_profile() {
        let p = Profile::parse(
            r#"{"Location":{"type":"s3Compliant","bucket":"b","endpoint":"http://minio:9000","prefix":"pre","region":"us-east-1"},
                "Credential":{"Type":"keyPair","KeyPair":{"ID":"AKIA","Secret":"shh"},"Secret":null,"KopiaServerSecret":null},
                "SkipSSLVerify":false}"#,
        )
        .unwrap();
        assert_eq!(p.location.kind, LocationType::S3Compliant);
        assert_eq!(p.location.bucket, "b");
        assert_eq!(p.location.prefix, "pre");
        assert_eq!(
            p.credential,
            Credential::KeyPair {
                id: "AKIA".into(),
                secret: "shh".into()
            }
        );
        assert!(!format!("{p:?}").contains("shh"), "secrets never in Debug");
    }

    #[test]
    fn keys_match_case_insensitively() {
        let p = Profile::parse(r#"{"location":{"TYPE":"local","Path":"/r"},"skipsslverify":true}"#)
            .unwrap();
        assert_eq!(p.location.kind, LocationType::Local);
        assert_eq!(p.location.path, "/r");
        assert!(p.skip_ssl_verify);
    }

    #[test]
    fn secret_credentials() {
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let json = format!(
            r#"{{"Location":{{"type":"s3Compliant","bucket":"b"}},"Credential":{{"Type":"secret","Secret":{{"type":"secrets.kanister.io/aws","data":{{"aws_access_key_id":"{}","aws_secret_access_key":"{}","role":"{}"}}}}}}}}"#,
            b("K"),
            b("S"),
            b("arn:aws:iam::1:role/r")
        );
        let p = Profile::parse(&json).unwrap();
        assert_eq!(
            p.credential,
            Credential::AwsSecret {
                id: "K".into(),
                secret: "S".into(),
                role: Some("arn:aws:iam::1:role/r".into())
            }
        );
        let bad = json.replace(&b("K"), "!!!");
        assert!(Profile::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("base64"));
        let extra = json.replace("\"role\"", "\"other\"");
        assert!(Profile::parse(&extra)
            .unwrap_err()
            .to_string()
            .contains("unknown key"));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,300}") {
            let _ = Profile::parse(&s);
        }

        #[test]
        fn mutated_profiles_never_panic(cut in 0usize..400, byte in proptest::prelude::any::<u8>()) {
            let good = r#"{"Location":{"type":"s3Compliant","bucket":"b","prefix":"p"},"Credential":{"Type":"secret","Secret":{"type":"secrets.kanister.io/aws","data":{"aws_access_key_id":"SwE=","aws_secret_access_key":"eA=="}}}}"#;
            let mut bytes = good.as_bytes().to_vec();
            let i = cut % bytes.len();
            bytes[i] = byte;
            if let Ok(s) = std::str::from_utf8(&bytes) {
                let _ = Profile::parse(s);
            }
            let _ = Profile::parse(&good[..cut.min(good.len())]);
        }
    }

    #[test]
    fn bad_profiles_say_why() {
        let err = |s: &str| Profile::parse(s).unwrap_err().to_string();
        assert_eq!(err(""), "Please provide the --profile flag");
        assert!(err("{").contains("not valid JSON"));
        assert_eq!(
            err(r#"{"Location":{"type":"ftp"}}"#),
            "Unsupported Location type: ftp"
        );
        assert!(err(r#"{"Location":{"type":5}}"#).contains("must be a string"));
        assert!(err(r#"{"Location":[]}"#).contains("must be a JSON object"));
        let deep = "[".repeat(60_000);
        assert!(err(&deep).contains("not valid JSON"));
    }
}
