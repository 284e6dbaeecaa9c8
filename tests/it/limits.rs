//! Limits on what a client controls: request head size and field count (431), the connection
//! cap, the idle, header and body deadlines, and the per-caller rate limit. The head and
//! deadline tests speak raw HTTP/1.1 over TCP, since they send what a well-behaved client
//! never would.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::client::Auth;
use crate::support::server::API_KEY;
use crate::support::{ServerOptions, TestServer};

/// Longest any test waits for something the server must do.
const PATIENCE: Duration = Duration::from_secs(15);

/// One response read off a raw connection.
struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawReply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads one response (head, then a `content-length` body); `None` when the server closed
/// the connection first.
async fn read_reply(stream: &mut TcpStream) -> Option<RawReply> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("content-length"));
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(RawReply { status, head, body })
}

/// Sends `request` on a new connection and reads one response.
async fn exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("send");
    tokio::time::timeout(PATIENCE, read_reply(&mut stream))
        .await
        .expect("an answer in time")
        .expect("an answer before the connection closed")
}

/// Waits until the server closes `stream`, failing if it answers anything meanwhile; returns
/// how long that took.
async fn until_closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
        .await
        .expect("the server closes the connection in time");
    match read {
        Ok(0) | Err(_) => started.elapsed(),
        Ok(n) => panic!(
            "expected the connection closed, got {:?}",
            String::from_utf8_lossy(&chunk[..n])
        ),
    }
}

fn get_with_headers(path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: outpost\r\nauthorization: Bearer {API_KEY}\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let server = TestServer::start(
        ServerOptions::default()
            .env("HTTP_MAX_HEADER_BYTES", "2048")
            .env("HTTP_MAX_HEADERS", "10"),
    );
    let addr = server.addr;
    let within = exchange(
        addr,
        &get_with_headers("/api/v1/tenants", &[("x-pad".into(), "p".repeat(1500))]),
    )
    .await;
    assert_eq!(within.status, 200, "{}", within.head);

    // Over the configured limits: upstream's error body.
    let big = exchange(
        addr,
        &get_with_headers("/api/v1/tenants", &[("x-pad".into(), "p".repeat(3000))]),
    )
    .await;
    assert_eq!(big.status, 431);
    assert!(big.head.contains("content-type: application/json"));
    let body = big.json();
    assert_eq!(body["status"], 431);
    assert_eq!(body["data"], json!({"max_header_bytes": 2048}));
    assert!(body["message"].as_str().unwrap().contains("2048"));

    let eleven: Vec<(String, String)> = (0..8).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many = exchange(addr, &get_with_headers("/api/v1/tenants", &eleven)).await;
    assert_eq!(many.status, 431);
    assert_eq!(many.json()["data"], json!({"max_headers": 10}));

    // Beyond twice the limits the parser refuses the head itself: 431, no body, closed.
    for headers in [
        vec![("x-pad".to_string(), "p".repeat(5000))],
        (0..30).map(|i| (format!("x-h{i}"), "v".into())).collect(),
    ] {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(&get_with_headers("/api/v1/tenants", &headers))
            .await
            .expect("send");
        let refused = tokio::time::timeout(PATIENCE, read_reply(&mut stream))
            .await
            .expect("in time")
            .expect("an answer");
        assert_eq!(refused.status, 431);
        assert!(refused.body.is_empty());
        until_closed(&mut stream).await;
    }

    // The server is still fine.
    assert_eq!(
        server.api.get("/api/v1/tenants").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_trickling_or_silent_head_is_cut_at_the_header_deadline() {
    let server =
        TestServer::start(ServerOptions::default().env("HTTP_HEADER_READ_TIMEOUT_SECONDS", "1"));
    // Silent from the start.
    let silent_opened = Instant::now();
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    // One byte every 100 ms, forever: the head never ends.
    let mut trickling = TcpStream::connect(server.addr).await.expect("connect");
    trickling
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("send");
    let started = Instant::now();
    let cut = async {
        let mut chunk = [0u8; 64];
        loop {
            tokio::select! {
                read = trickling.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => return started.elapsed(),
                    Ok(n) => panic!("unexpected answer {:?}", String::from_utf8_lossy(&chunk[..n])),
                },
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if trickling.write_all(b"x").await.is_err() {
                        return started.elapsed();
                    }
                }
            }
        }
    };
    let took = tokio::time::timeout(PATIENCE, cut)
        .await
        .expect("the trickling connection is cut in time");
    assert!(took >= Duration::from_secs(1), "cut after {took:?}");
    until_closed(&mut silent).await;
    let silent_took = silent_opened.elapsed();
    assert!(silent_took >= Duration::from_secs(1), "{silent_took:?}");
    // Well-behaved clients are served all along.
    assert_eq!(server.api.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn idle_keep_alive_connections_close_but_a_slow_head_has_its_own_deadline() {
    let server = TestServer::start(
        ServerOptions::default()
            .env("HTTP_IDLE_TIMEOUT_SECONDS", "1")
            .env("HTTP_HEADER_READ_TIMEOUT_SECONDS", "30"),
    );
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    // A head that takes longer than the idle timeout is still within the header deadline.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream
        .write_all(b"host: outpost\r\n\r\n")
        .await
        .expect("send");
    let reply = tokio::time::timeout(PATIENCE, read_reply(&mut stream))
        .await
        .expect("in time")
        .expect("answered");
    assert_eq!(reply.status, 200);
    // Then nothing: the connection is closed after the idle timeout.
    let idle = until_closed(&mut stream).await;
    assert!(idle >= Duration::from_millis(900), "closed after {idle:?}");
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_the_connection_closes() {
    let server =
        TestServer::start(ServerOptions::default().env("HTTP_BODY_READ_TIMEOUT_SECONDS", "1"));
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let started = Instant::now();
    stream
        .write_all(
            format!(
                "POST /api/v1/publish HTTP/1.1\r\nhost: outpost\r\nauthorization: Bearer {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"topic\":"
            )
            .as_bytes(),
        )
        .await
        .expect("send");
    let reply = tokio::time::timeout(PATIENCE, read_reply(&mut stream))
        .await
        .expect("in time")
        .expect("answered");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(reply.status, 408);
    assert!(reply.head.contains("connection: close"), "{}", reply.head);
    assert_eq!(
        reply.json(),
        json!({"status": 408, "message": "request body not received within 1 s"})
    );
    until_closed(&mut stream).await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = TestServer::start(
        ServerOptions::default()
            .env("HTTP_MAX_CONNECTIONS", "2")
            .env("HTTP_IDLE_TIMEOUT_SECONDS", "300"),
    );
    let request = b"GET /healthz HTTP/1.1\r\nhost: outpost\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        stream.write_all(request).await.expect("send");
        let reply = tokio::time::timeout(PATIENCE, read_reply(&mut stream))
            .await
            .expect("in time")
            .expect("answered");
        assert_eq!(reply.status, 200);
        held.push(stream);
    }
    // The third connection is not served while both slots are held...
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    third.write_all(request).await.expect("send");
    let early = tokio::time::timeout(Duration::from_secs(1), read_reply(&mut third)).await;
    assert!(early.is_err(), "served beyond the connection cap");
    // ...and is served once one of them closes.
    drop(held.remove(0));
    let reply = tokio::time::timeout(PATIENCE, read_reply(&mut third))
        .await
        .expect("served once a slot is free")
        .expect("answered");
    assert_eq!(reply.status, 200);
}

fn header<'r>(reply: &'r crate::support::client::Reply, name: &str) -> Option<&'r str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn the_rate_limit_paces_each_caller_on_its_own() {
    let server = TestServer::start(
        ServerOptions::default()
            .manual_clock()
            .env("API_RATE_LIMIT_PER_SECOND", "1")
            .env("API_RATE_LIMIT_BURST", "3"),
    );
    let api = &server.api;
    let token = api.tenant_with_token("t").await;
    // Setting up spent admin tokens; let the bucket fill again.
    server.advance(Duration::from_secs(10));

    for remaining in ["2", "1", "0"] {
        let r = api.get("/api/v1/tenants").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(header(&r, "x-ratelimit-limit"), Some("3"));
        assert_eq!(header(&r, "x-ratelimit-remaining"), Some(remaining));
        assert!(header(&r, "x-ratelimit-reset").is_some());
        assert_eq!(header(&r, "retry-after"), None);
    }
    let refused = api.get("/api/v1/tenants").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.json(),
        json!({"status": 429, "message": "too many requests"})
    );
    assert_eq!(header(&refused, "retry-after"), Some("1"));
    assert_eq!(header(&refused, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(header(&refused, "x-ratelimit-reset"), Some("3"));
    // A refused write changes nothing.
    let r = api.put("/api/v1/tenants/other", None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);

    // The tenant has a bucket of its own.
    let r = api
        .as_tenant(&token, hyper::Method::GET, "/api/v1/tenants/t", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some("2"));

    // Requests with no valid credentials, and public routes, are not counted or labelled.
    let anonymous = api
        .raw(hyper::Method::GET, "/api/v1/tenants", None, Auth::None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(header(&anonymous, "x-ratelimit-limit"), None);
    let health = api
        .raw(hyper::Method::GET, "/healthz", None, Auth::None)
        .await;
    assert_eq!(header(&health, "x-ratelimit-limit"), None);

    // A second later the admin key may make one more request.
    server.advance(Duration::from_secs(1));
    let r = api.get("/api/v1/tenants").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(header(&r, "x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        api.get("/api/v1/tenants/other").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.advance(Duration::from_secs(1));
    assert_eq!(
        api.get("/api/v1/tenants/other").await.status,
        StatusCode::NOT_FOUND,
        "the refused PUT created nothing"
    );
}

#[tokio::test]
async fn the_rate_limit_is_off_by_default() {
    let server = TestServer::start(ServerOptions::default());
    for _ in 0..50 {
        let r = server.api.get("/api/v1/tenants").await;
        assert_eq!(r.status, StatusCode::OK);
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert_eq!(header(&r, name), None);
        }
    }
}

#[tokio::test]
async fn a_request_being_served_outlasts_both_connection_deadlines() {
    let server = TestServer::start(
        ServerOptions::default()
            .env("HTTP_HEADER_READ_TIMEOUT_SECONDS", "1")
            .env("HTTP_IDLE_TIMEOUT_SECONDS", "1"),
    );
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    // Writes wait while the store's writer is held: the request stays in its handler.
    let stall = server
        .handle()
        .stall_writer()
        .await
        .expect("stall the writer");
    let body = br#"{"id":"t"}"#;
    stream
        .write_all(
            format!(
                "PUT /api/v1/tenants/t HTTP/1.1\r\nhost: outpost\r\nauthorization: Bearer {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("send");
    stream.write_all(body).await.expect("send");
    // Held well past both deadlines, the request is not cut...
    let early = tokio::time::timeout(Duration::from_millis(2500), read_reply(&mut stream)).await;
    assert!(early.is_err(), "answered while the writer was held");
    drop(stall);
    // ...and is answered once the writer goes on.
    let reply = tokio::time::timeout(PATIENCE, read_reply(&mut stream))
        .await
        .expect("in time")
        .expect("answered, not closed");
    assert!(
        (200..300).contains(&reply.status),
        "{} {:?}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
}
