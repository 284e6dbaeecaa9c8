//! The HTTP sink: each operator event is one `POST` of its JSON envelope to
//! `OPERATOR_EVENTS_HTTP_URL` with `Content-Type: application/json` and, when
//! `OPERATOR_EVENTS_HTTP_SIGNING_SECRET` is set, `X-Outpost-Signature: v0=<hex HMAC-SHA256 of
//! the body>`. A transport error, a status of 400 or above, or no answer within 30 s is a
//! failure. The sink's URL is the operator's own, so the delivery address policy
//! (`DELIVERY_DENY_CIDRS`) does not apply to it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Uri};

use crate::delivery::{HttpClient, Outbound};

/// How long one send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an error answer kept for the log.
const ERROR_SNIPPET: usize = 512;

pub const SIGNATURE_HEADER: &str = "x-outpost-signature";

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("OPERATOR_EVENTS_HTTP_URL {0:?} is not an http or https URL")]
    BadUrl(String),
    #[error("cannot build the operator events HTTP client: {0}")]
    Client(String),
    #[error("the operator event sink did not answer within {} s", SEND_TIMEOUT.as_secs())]
    Timeout,
    #[error("could not reach the operator event sink: {0}")]
    Transport(String),
    #[error("the operator event sink answered {status}: {body}")]
    Status { status: u16, body: String },
}

pub struct HttpSink {
    url: Uri,
    signing_secret: Option<ring::hmac::Key>,
    user_agent: HeaderValue,
    client: HttpClient,
}

/// `v0=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(key: &ring::hmac::Key, body: &[u8]) -> String {
    let tag = ring::hmac::sign(key, body);
    let mut out = String::with_capacity(3 + 64);
    out.push_str("v0=");
    for byte in tag.as_ref() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

impl HttpSink {
    pub fn new(
        url: &str,
        signing_secret: Option<&str>,
        user_agent: &str,
    ) -> Result<HttpSink, SinkError> {
        let parsed: Uri = url.parse().map_err(|_| SinkError::BadUrl(url.into()))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(SinkError::BadUrl(url.into()));
        }
        Ok(HttpSink {
            url: parsed,
            signing_secret: signing_secret
                .map(|secret| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes())),
            user_agent: HeaderValue::from_str(user_agent)
                .unwrap_or_else(|_| HeaderValue::from_static("Outpost")),
            client: HttpClient::new(1, Outbound::unrestricted())
                .map_err(|e| SinkError::Client(e.to_string()))?,
        })
    }

    /// Posts one event body.
    pub async fn send(&self, body: &[u8]) -> Result<(), SinkError> {
        let mut request = Request::new(Full::new(Bytes::copy_from_slice(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, self.user_agent.clone());
        if let Some(key) = &self.signing_secret {
            if let Ok(value) = HeaderValue::from_str(&signature(key, body)) {
                headers.insert(SIGNATURE_HEADER, value);
            }
        }
        let exchange = async {
            let response = self
                .client
                .send(request)
                .await
                .map_err(|e| SinkError::Transport(e.to_string()))?;
            let status = response.status().as_u16();
            let collected = response.into_body().collect().await;
            if status >= 400 {
                let bytes = collected.map(|c| c.to_bytes()).unwrap_or_default();
                let cut = &bytes[..bytes.len().min(ERROR_SNIPPET)];
                return Err(SinkError::Status {
                    status,
                    body: String::from_utf8_lossy(cut).into_owned(),
                });
            }
            Ok(())
        };
        tokio::time::timeout(SEND_TIMEOUT, exchange)
            .await
            .map_err(|_| SinkError::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "v0=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_http_urls_are_sinks() {
        for bad in ["", "ftp://x/", "not a url", "/path"] {
            assert!(HttpSink::new(bad, None, "ua").is_err(), "{bad}");
        }
    }
}
