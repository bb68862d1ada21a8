//! A Google OAuth token endpoint on loopback, for service-account auth: it checks each
//! JWT-bearer assertion as Google does (RS256 signature against the test key's public
//! half, issuer, audience, scope, lifetime) and hands out numbered tokens with a chosen
//! lifetime. It counts what it saw, so tests can tell a cached token from a refreshed one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine;

/// What the server saw.
#[derive(Default)]
pub struct Counts {
    /// Assertions that passed every check (tokens handed out).
    pub granted: AtomicUsize,
    /// Assertions refused (bad signature, wrong claims).
    pub refused: AtomicUsize,
}

/// The running token endpoint; stops with the test process.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`: the key's `token_uri`.
    pub uri: String,
    /// What it saw.
    pub counts: Arc<Counts>,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

impl TokenServer {
    /// Starts a server whose tokens live `lifetime_secs`.
    pub fn start(lifetime_secs: u64) -> TokenServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}/token", listener.local_addr().unwrap());
        let counts = Arc::new(Counts::default());
        let public = std::fs::read(fixture("gcs-test-key.pub.der")).unwrap();
        let (aud, seen) = (uri.clone(), counts.clone());
        let serial = Arc::new(AtomicU64::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &public, &aud, lifetime_secs, &seen, &serial);
            }
        });
        TokenServer { uri, counts }
    }

    /// The test service-account key JSON, pointing at this server.
    pub fn key_json(&self) -> String {
        self.key_from("gcs-test-key.json")
    }

    /// A key of the same account that the server does not know (signature refused).
    pub fn wrong_key_json(&self) -> String {
        self.key_from("gcs-wrong-key.json")
    }

    fn key_from(&self, name: &str) -> String {
        std::fs::read_to_string(fixture(name))
            .unwrap()
            .replace("TOKEN_URI", &self.uri)
    }

    pub fn granted(&self) -> usize {
        self.counts.granted.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.counts.refused.load(Ordering::SeqCst)
    }
}

fn serve(
    stream: TcpStream,
    public_key: &[u8],
    audience: &str,
    lifetime: u64,
    counts: &Counts,
    serial: &AtomicU64,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let form = String::from_utf8_lossy(&body).into_owned();
    let verdict = check(&form, public_key, audience);
    let (status, text) = match verdict {
        Ok(()) => {
            counts.granted.fetch_add(1, Ordering::SeqCst);
            let n = serial.fetch_add(1, Ordering::SeqCst);
            (
                "200 OK",
                format!(
                    r#"{{"access_token":"test-token-{n}","expires_in":{lifetime},"token_type":"Bearer"}}"#
                ),
            )
        }
        Err(why) => {
            eprintln!("token endpoint: refused an assertion: {why}");
            counts.refused.fetch_add(1, Ordering::SeqCst);
            (
                "400 Bad Request",
                format!(r#"{{"error":"invalid_grant","error_description":"{why}"}}"#),
            )
        }
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )
}

/// Checks a `grant_type=…&assertion=…` form the way Google's token endpoint does.
fn check(form: &str, public_key: &[u8], audience: &str) -> Result<(), String> {
    let field = |name: &str| {
        form.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| {
                let v = v.replace('+', " ");
                percent_encoding::percent_decode_str(&v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
    };
    if field("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return Err(format!("bad grant_type in {form}"));
    }
    let jwt = field("assertion").ok_or("no assertion")?;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not a JWT".into());
    };
    // gcp_auth pads its segments; Google accepts both.
    let b64 = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let signature = b64.decode(signature).map_err(|e| e.to_string())?;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    )
    .verify(format!("{header}.{claims}").as_bytes(), &signature)
    .map_err(|_| "bad signature".to_string())?;
    let header: serde_json::Value =
        serde_json::from_slice(&b64.decode(header).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err(format!("alg {}", header["alg"]));
    }
    let claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(claims).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    if claims["iss"] != "kando-test@kando-test.iam.gserviceaccount.com" {
        return Err(format!("iss {}", claims["iss"]));
    }
    if claims["aud"] != audience {
        return Err(format!("aud {}", claims["aud"]));
    }
    let scope = claims["scope"].as_str().unwrap_or_default();
    if !scope
        .split(' ')
        .any(|s| s == "https://www.googleapis.com/auth/devstorage.read_write")
    {
        return Err(format!("scope {scope}"));
    }
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    match (iat, exp) {
        (Some(i), Some(e)) if e > i && e - i <= 3600 => Ok(()),
        _ => Err(format!("lifetime {iat:?}..{exp:?}")),
    }
}
