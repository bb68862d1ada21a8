//! object_store's HTTP connector on our own stack ([`crate::storage::http`]): hyper with
//! rustls, the system's roots or SkipSSLVerify, and a per-attempt timeout that
//! object_store treats as a retryable timeout. (Its own reqwest connector would add a
//! second HTTP client to the binary.)

use std::time::Duration;

use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use object_store::client::{
    HttpClient, HttpConnector as Connect, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};

use crate::storage::http::{https_connector, pooled_client};

/// Makes one pooled client for object_store.
#[derive(Debug)]
pub(super) struct Connector {
    connector: HttpsConnector<HttpConnector>,
    attempt_timeout: Duration,
}

impl Connector {
    pub(super) fn new(skip_ssl_verify: bool, attempt_timeout: Duration) -> anyhow::Result<Self> {
        Ok(Connector {
            connector: https_connector(skip_ssl_verify)
                .map_err(|e| anyhow::anyhow!("cannot load the system's TLS roots: {e}"))?,
            attempt_timeout,
        })
    }
}

impl Connect for Connector {
    fn connect(&self, _options: &object_store::ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Service {
            client: pooled_client(self.connector.clone()),
            attempt_timeout: self.attempt_timeout,
        }))
    }
}

#[derive(Debug)]
struct Service {
    client: Client<HttpsConnector<HttpConnector>, HttpRequestBody>,
    attempt_timeout: Duration,
}

#[async_trait::async_trait]
impl HttpService for Service {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let response = tokio::time::timeout(self.attempt_timeout, self.client.request(request))
            .await
            .map_err(|_| HttpError::new(HttpErrorKind::Timeout, TimedOut(self.attempt_timeout)))?
            .map_err(|e| {
                let kind = if e.is_connect() {
                    HttpErrorKind::Connect
                } else {
                    HttpErrorKind::Request
                };
                HttpError::new(kind, e)
            })?;
        let (parts, body) = response.into_parts();
        let body = body.map_err(|e| HttpError::new(HttpErrorKind::Interrupted, e));
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

#[derive(Debug)]
struct TimedOut(Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// True when the request never got an answer: connection refused, DNS, connect timeout.
pub(super) fn is_unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            if matches!(h.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout) {
                return true;
            }
        }
        next = err.source();
    }
    false
}
