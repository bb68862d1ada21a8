//! The HTTP client of the backends that speak their protocol themselves (GCS, Azure):
//! hyper 1 with rustls (aws-lc-rs), the same stack the AWS SDK uses, so no second TLS or
//! HTTP implementation enters the binary. Trusts the system's roots, or any certificate
//! with SkipSSLVerify. Also classifies what is worth a retry.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::error::{error_chain, Cause};
use super::retry::{Failure, CONNECT_TIMEOUT};

/// A pooled HTTPS (and plain HTTP, for emulators and gateways) client.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

/// A whole answer: status, headers, body.
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The body, complete.
    pub body: Bytes,
}

impl Answer {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Content-Length`, if the server sent one.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }
}

impl HttpClient {
    /// A client that checks certificates against the system's roots, or accepts any
    /// certificate when `skip_ssl_verify` (Kanister's SkipSSLVerify).
    pub fn new(skip_ssl_verify: bool) -> std::io::Result<HttpClient> {
        Ok(HttpClient {
            client: pooled_client(https_connector(skip_ssl_verify)?),
        })
    }

    /// Sends `request` and reads the whole answer. Transport failures, a body that breaks
    /// off or comes back shorter than its `Content-Length`, are transient; the caller
    /// bounds the time (see [`super::retry::retry`]).
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Answer, Failure> {
        let response: Response<_> = self
            .client
            .request(request)
            .await
            .map_err(|e| Failure::Transient(error_chain(&e).into()))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| {
                Failure::Transient(format!("reading the body failed: {}", error_chain(&e)).into())
            })?
            .to_bytes();
        let answer = Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        super::body::check_length(&answer.body, answer.content_length())
            .map_err(|why| Failure::Transient(why.into()))?;
        Ok(answer)
    }
}

/// The TLS (or plain, for `http://` URLs) connector of every HTTP backend: system roots,
/// or any certificate with SkipSSLVerify; a short connect timeout.
pub fn https_connector(skip_ssl_verify: bool) -> std::io::Result<HttpsConnector<HttpConnector>> {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false); // the TLS layer handles https:// URIs
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    Ok(if skip_ssl_verify {
        builder.with_tls_config(super::tls::accept_any_certificate())
    } else {
        builder.with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
    }
    .https_or_http()
    .enable_http1()
    .wrap_connector(tcp))
}

/// A pooled client over `connector`, for any request body type.
pub fn pooled_client<B>(
    connector: HttpsConnector<HttpConnector>,
) -> Client<HttpsConnector<HttpConnector>, B>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Adds https:// to a bare host[:port] (as some profiles carry) and drops a trailing
/// '/'; refuses anything but an http(s) URL with a host. `service` names it in errors.
pub fn normalize_endpoint(endpoint: &str, service: &str) -> anyhow::Result<String> {
    let e = endpoint.trim().trim_end_matches('/');
    if e.is_empty() {
        anyhow::bail!("empty {service} endpoint");
    }
    let e = if e.contains("://") {
        e.to_string()
    } else {
        format!("https://{e}")
    };
    let uri: http::Uri = e
        .parse()
        .map_err(|err| anyhow::anyhow!("invalid {service} endpoint {e:?}: {err}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        anyhow::bail!("invalid {service} endpoint {e:?}: expected http(s)://host[:port]");
    }
    Ok(e)
}

/// True for statuses a later attempt may not see: throttling, timeouts, server errors
/// (except 501, which says the server will never do it).
pub fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED)
}

/// "HTTP 404: <first line of the body>", for messages (bodies of error answers carry
/// the server's code and message, never our secrets).
pub fn describe(answer: &Answer) -> Cause {
    let text = String::from_utf8_lossy(&answer.body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text: String = text.chars().take(300).collect();
    format!("HTTP {}: {text}", answer.status.as_u16()).into()
}
