//! Sends a built webhook request over the shared pooled client and classifies what happened.
//!
//! Outcome: status ≥ 400 → failed, anything else → success, code = the status; response_data
//! `{"status", "body"}` with the body capped at `max_response_body_bytes` (0 = unlimited; a
//! larger body is replaced by a note, never truncated, and at most cap + 1 bytes are read).
//! Transport failures → failed with a class code and no response_data, except a connection the
//! outbound address policy refused: `address_denied` with `{"error": "connection to <address>
//! refused: address denied by DELIVERY_DENY_CIDRS"}`. The timeout covers connecting, sending
//! and reading the capped body.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use serde_json::json;

use crate::delivery::connect_guard::Outbound;
use crate::delivery::http_client::{classify_transport_error, HttpClient, HttpClientError};
use crate::delivery::provider::DeliveryOutcome;

/// Sends webhook requests. One per process; shares its connection pool.
pub(super) struct Sender {
    client: HttpClient,
    timeout: Duration,
    max_response_body_bytes: usize,
}

impl Sender {
    pub fn new(
        max_idle_per_host: usize,
        timeout: Duration,
        max_response_body_bytes: usize,
        outbound: Outbound,
    ) -> Result<Sender, HttpClientError> {
        Ok(Sender {
            client: HttpClient::new(max_idle_per_host, outbound)?,
            timeout,
            max_response_body_bytes,
        })
    }

    /// Sends the request within the timeout and classifies the outcome.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> DeliveryOutcome {
        let exchange = async {
            let response = self
                .client
                .send(request)
                .await
                .map_err(|err| match err.denied() {
                    Some(denied) => address_denied(&denied.to_string()),
                    None => transport_failure(err.code()),
                })?;
            let status = response.status().as_u16();
            let body = read_capped(response, self.max_response_body_bytes)
                .await
                .map_err(|err| transport_failure(classify_transport_error(&err)))?;
            Ok::<_, DeliveryOutcome>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => transport_failure("timeout"),
            Ok(Err(failure)) => failure,
            Ok(Ok((status, body))) => {
                let body = match body {
                    CapturedBody::Text(text) => text,
                    CapturedBody::TooLarge => format!(
                        "Response body exceeded {} bytes and was not stored",
                        self.max_response_body_bytes
                    ),
                };
                DeliveryOutcome {
                    success: status < 400,
                    code: status.to_string(),
                    response_data: Some(json!({ "status": status, "body": body })),
                }
            }
        }
    }
}

/// A failed exchange: the class code, no response data.
pub(super) fn transport_failure(code: &str) -> DeliveryOutcome {
    DeliveryOutcome {
        success: false,
        code: code.to_string(),
        response_data: None,
    }
}

/// A connection the outbound address policy refused: the reason in `response_data.error`.
fn address_denied(reason: &str) -> DeliveryOutcome {
    DeliveryOutcome {
        success: false,
        code: "address_denied".to_string(),
        response_data: Some(json!({ "error": reason })),
    }
}

enum CapturedBody {
    Text(String),
    TooLarge,
}

/// Reads the response body, never more than `cap + 1` bytes (`cap == 0` = unlimited).
async fn read_capped(
    response: Response<Incoming>,
    cap: usize,
) -> Result<CapturedBody, hyper::Error> {
    let mut body = response.into_body();
    if cap > 0 && body.size_hint().lower() > cap as u64 {
        return Ok(CapturedBody::TooLarge);
    }
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if cap > 0 && buffer.len().saturating_add(data.len()) > cap {
                return Ok(CapturedBody::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(CapturedBody::Text(
        String::from_utf8_lossy(&buffer).into_owned(),
    ))
}
