//! Sending and classification, against real local servers: success and failure statuses,
//! the response body cap, header names on the wire, timeouts, transport errors and redirects.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::delivery::webhook::send::transport_failure;

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// Serves `handler` on 127.0.0.1:0; records every request.
async fn serve<F, Fut>(handler: F) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>)
where
    F: Fn(Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let handler = handler.clone();
                    let log = log.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let seen = Seen {
                            method: parts.method,
                            path: parts.uri.to_string(),
                            headers: parts.headers,
                            body,
                        };
                        log.lock().unwrap().push(seen.clone());
                        Ok::<_, Infallible>(handler(seen).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn reply(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
}

fn sender_with(cap: usize, timeout: Duration) -> TestSender {
    let mut settings = settings(WebhookMode::Default);
    settings.max_response_body_bytes = cap;
    TestSender::new(
        WebhookProvider::new(&settings, "Outpost/test", timeout, 2, Outbound::default()).unwrap(),
    )
}

#[tokio::test]
async fn delivers_and_records_success() {
    let (addr, seen) = serve(|_| async { reply(200, "ok") }).await;
    let sender = sender_with(131_072, Duration::from_secs(5));
    let destination = destination(&format!("http://{addr}/hook"), "whsec_abc");
    let outcome = sender.deliver(&event(), &destination, NOW).await;
    assert_eq!(
        outcome,
        DeliveryOutcome {
            success: true,
            code: "200".into(),
            response_data: Some(json!({"status": 200, "body": "ok"})),
        }
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].path, "/hook");
    assert_eq!(&seen[0].body[..], BODY.as_bytes());
    assert_eq!(seen[0].headers["x-outpost-event-id"], "evt_1");
    assert_eq!(
        seen[0].headers["x-outpost-signature"],
        format!("v0={}", hmac_hex(b"whsec_abc", BODY.as_bytes())).as_str()
    );
    // A second delivery reuses the pool.
    let outcome = sender.deliver(&event(), &destination, NOW).await;
    assert!(outcome.success);
}

#[tokio::test]
async fn server_error_fails_with_body_captured() {
    let (addr, _) = serve(|_| async { reply(500, "boom") }).await;
    let sender = sender_with(131_072, Duration::from_secs(5));
    let outcome = sender
        .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
        .await;
    assert_eq!(
        outcome,
        DeliveryOutcome {
            success: false,
            code: "500".into(),
            response_data: Some(json!({"status": 500, "body": "boom"})),
        }
    );
}

#[tokio::test]
async fn oversize_body_is_replaced_not_truncated() {
    let (addr, _) = serve(|_| async { reply(202, "0123456789abcdefX") }).await;
    let url = format!("http://{addr}/");
    let outcome = sender_with(16, Duration::from_secs(5))
        .deliver(&event(), &destination(&url, ""), NOW)
        .await;
    assert!(outcome.success);
    assert_eq!(outcome.code, "202");
    assert_eq!(
        outcome.response_data,
        Some(json!({
            "status": 202,
            "body": "Response body exceeded 16 bytes and was not stored"
        }))
    );
    // Exactly at the cap is kept; 0 = unlimited.
    let (addr, _) = serve(|_| async { reply(200, "0123456789abcdef") }).await;
    let url = format!("http://{addr}/");
    let outcome = sender_with(16, Duration::from_secs(5))
        .deliver(&event(), &destination(&url, ""), NOW)
        .await;
    assert_eq!(
        outcome.response_data,
        Some(json!({"status": 200, "body": "0123456789abcdef"}))
    );
    let outcome = sender_with(0, Duration::from_secs(5))
        .deliver(&event(), &destination(&url, ""), NOW)
        .await;
    assert_eq!(
        outcome.response_data,
        Some(json!({"status": 200, "body": "0123456789abcdef"}))
    );
}

#[tokio::test]
async fn oversize_chunked_body_stops_reading_at_the_cap() {
    // A raw server that streams a chunked body which never ends: the reader must stop
    // after cap + 1 bytes instead of waiting for the end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .await;
        loop {
            if stream.write_all(b"8\r\nabcdefgh\r\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let outcome = sender_with(20, Duration::from_secs(5))
        .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
        .await;
    assert_eq!(outcome.code, "200");
    assert_eq!(
        outcome.response_data,
        Some(json!({
            "status": 200,
            "body": "Response body exceeded 20 bytes and was not stored"
        }))
    );
}

#[tokio::test]
async fn header_names_go_out_canonicalized() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buf = vec![0u8; 4096];
        while !received.ends_with(BODY.as_bytes()) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let _ = tx.send(String::from_utf8_lossy(&received).into_owned());
    });
    let outcome = sender_with(16, Duration::from_secs(5))
        .deliver(
            &event(),
            &destination(&format!("http://{addr}/"), "whsec_a"),
            NOW,
        )
        .await;
    assert_eq!(outcome.code, "204");
    let wire = rx.await.unwrap();
    for name in [
        "Content-Type: application/json",
        "User-Agent: Outpost/test",
        "X-Outpost-Event-Id: evt_1",
        "X-Outpost-Signature: v0=",
    ] {
        assert!(wire.contains(name), "{name} missing from {wire}");
    }
}

#[tokio::test]
async fn timeout_is_classified() {
    let (addr, _) = serve(|_| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        reply(200, "late")
    })
    .await;
    let outcome = sender_with(16, Duration::from_millis(200))
        .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
        .await;
    assert_eq!(outcome, transport_failure("timeout"));
}

#[tokio::test]
async fn connection_refused_is_classified() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let outcome = sender_with(16, Duration::from_secs(5))
        .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
        .await;
    assert_eq!(outcome, transport_failure("connection_refused"));
}

#[tokio::test]
async fn tls_failure_is_classified() {
    // HTTPS to a plain-HTTP server: the handshake fails (Go: "tls: first record does not
    // look like a TLS handshake").
    let (addr, _) = serve(|_| async { reply(200, "plain") }).await;
    let outcome = sender_with(16, Duration::from_secs(5))
        .deliver(&event(), &destination(&format!("https://{addr}/"), ""), NOW)
        .await;
    assert_eq!(outcome, transport_failure("tls_error"));
}

#[tokio::test]
async fn redirects_are_followed_like_go() {
    let (addr, seen) = serve(|seen: Seen| async move {
        match seen.path.as_str() {
            "/see-other" => {
                let mut response = reply(303, "");
                response
                    .headers_mut()
                    .insert("location", HeaderValue::from_static("/final"));
                response
            }
            "/temporary" => {
                let mut response = reply(307, "");
                response
                    .headers_mut()
                    .insert("location", HeaderValue::from_static("final"));
                response
            }
            "/final" => reply(200, "done"),
            _ => {
                let mut response = reply(302, "");
                response
                    .headers_mut()
                    .insert("location", HeaderValue::from_static("/loop"));
                response
            }
        }
    })
    .await;
    let sender = sender_with(1024, Duration::from_secs(5));
    let outcome = sender
        .deliver(
            &event(),
            &destination(&format!("http://{addr}/see-other"), ""),
            NOW,
        )
        .await;
    assert_eq!(outcome.code, "200");
    assert_eq!(
        outcome.response_data,
        Some(json!({"status": 200, "body": "done"}))
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[1].method, Method::GET);
        assert!(seen[1].body.is_empty());
        assert_eq!(
            seen[1].headers["referer"],
            format!("http://{addr}/see-other").as_str()
        );
    }
    seen.lock().unwrap().clear();
    let outcome = sender
        .deliver(
            &event(),
            &destination(&format!("http://{addr}/temporary"), ""),
            NOW,
        )
        .await;
    assert_eq!(outcome.code, "200");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[1].method, Method::POST);
        assert_eq!(&seen[1].body[..], BODY.as_bytes());
        assert_eq!(seen[1].headers["x-outpost-event-id"], "evt_1");
    }
    seen.lock().unwrap().clear();
    let outcome = sender
        .deliver(
            &event(),
            &destination(&format!("http://{addr}/loop"), ""),
            NOW,
        )
        .await;
    assert_eq!(outcome, transport_failure("redirect_error"));
    assert_eq!(seen.lock().unwrap().len(), 10);
}

#[tokio::test]
async fn redirect_without_location_is_a_success() {
    let (addr, _) = serve(|_| async { reply(302, "moved?") }).await;
    let outcome = sender_with(1024, Duration::from_secs(5))
        .deliver(&event(), &destination(&format!("http://{addr}/"), ""), NOW)
        .await;
    assert!(outcome.success);
    assert_eq!(outcome.code, "302");
}
