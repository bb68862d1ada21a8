//! An HTTP client for the SDK that accepts any server certificate (SkipSSLVerify).
//!
//! aws-smithy-http-client builds its rustls configuration internally and offers no way to
//! install a custom certificate verifier (only extra trusted roots or server names, and a
//! custom crypto provider behind an unstable cfg). So this module plugs its own connector
//! into the SDK's `HttpClient` trait, built from the same crates the SDK already uses
//! (hyper 1, hyper-util's pooled client, hyper-rustls, rustls with aws-lc-rs): no second
//! HTTP stack. It is only used when SkipSSLVerify is set.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpRequest;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The SDK's HTTP client for SkipSSLVerify.
pub(super) fn http_client(connect_timeout: Duration) -> SharedHttpClient {
    SharedHttpClient::new(InsecureClient {
        default_connect_timeout: connect_timeout,
        connectors: Mutex::new(HashMap::new()),
    })
}

/// Hands the SDK one pooled connector per connect timeout, as its own client does
/// (the SDK asks for a connector on every attempt; building one each time would lose
/// the connection pool).
#[derive(Debug)]
struct InsecureClient {
    default_connect_timeout: Duration,
    connectors: Mutex<HashMap<Duration, SharedHttpConnector>>,
}

impl HttpClient for InsecureClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeout = settings
            .connect_timeout()
            .unwrap_or(self.default_connect_timeout);
        self.connectors
            .lock()
            .expect("connector cache lock")
            .entry(timeout)
            .or_insert_with(|| SharedHttpConnector::new(InsecureConnector::new(timeout)))
            .clone()
    }
}

struct InsecureConnector {
    client: hyper_util::client::legacy::Client<HttpsConnector<TcpConnector>, SdkBody>,
}

impl fmt::Debug for InsecureConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InsecureConnector")
    }
}

impl InsecureConnector {
    fn new(connect_timeout: Duration) -> Self {
        let tls = crate::storage::tls::accept_any_certificate();
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false); // the TLS layer handles https:// URIs
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        // HTTP/1.1 only: it is what S3 and S3-compatible servers speak.
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(https);
        InsecureConnector { client }
    }
}

impl HttpConnector for InsecureConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = self.client.request(request);
        HttpConnectorFuture::new(async move {
            match response.await {
                Ok(r) => HttpResponse::try_from(r.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(classify(e)),
            }
        })
    }
}

/// Classifies a transport failure the way the SDK's own client does, so that the retry
/// strategy retries the same things: connect and I/O errors and timeouts are transient.
fn classify(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let hyper_error = find_source::<hyper::Error>(&e);
    if hyper_error.is_some_and(|h| h.is_timeout()) {
        return ConnectorError::timeout(e.into());
    }
    if hyper_error.is_some_and(|h| h.is_user()) {
        return ConnectorError::user(e.into());
    }
    if hyper_error.is_some_and(|h| h.is_incomplete_message()) {
        return ConnectorError::other(e.into(), Some(ErrorKind::TransientError));
    }
    if e.is_connect()
        || hyper_error.is_some_and(|h| h.is_closed() || h.is_canceled())
        || find_source::<std::io::Error>(&e).is_some()
    {
        return ConnectorError::io(e.into());
    }
    ConnectorError::other(e.into(), None)
}

fn find_source<'a, E: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}
