//! The receiving endpoint: a hyper HTTP/1.1 keep-alive server on 127.0.0.1:0 that the bench's
//! webhook destinations point at (`/d/<destination index>`). It answers 200, or 500 to an exact,
//! evenly spread share of requests (failure scenario), or holds requests unanswered
//! (blackhole mode, used to keep a backlog queued). Per successful delivery it parses the
//! publisher's `seq` and `sent_at_ns` from the head of the body, records the end-to-end latency
//! and marks the delivery in the ledger.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::hist::Histogram;
use super::ledger::{Delivery, Ledger};
use super::BenchClock;

/// How the receiver treats requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answer 200 (or 500 for the configured share).
    Answer,
    /// Read the request head and never answer (until the mode changes, then 503).
    Blackhole,
}

/// The path operator events are posted to (`--operator-events`).
pub const OPERATOR_PATH: &str = "/operator";

/// Receiver-side counters.
pub struct ReceiverStats {
    pub requests: AtomicU64,
    /// Requests held unanswered in blackhole mode.
    pub held: AtomicU64,
    /// 5xx answered on purpose (failure scenario).
    pub failed: AtomicU64,
    /// Requests whose body did not carry a bench `seq`/`sent_at_ns`, or a bad path.
    pub unparsable: AtomicU64,
    /// Requests without an `x-outpost-event-id` header.
    pub missing_event_id: AtomicU64,
    /// Operator events received on [`OPERATOR_PATH`] (not deliveries; answered 200).
    pub operator_events: AtomicU64,
    /// End-to-end latency of first deliveries, µs.
    pub e2e: Histogram,
    /// Bench-clock times (ns) of the first and last first-delivery, and the last completion.
    pub first_delivery_ns: AtomicU64,
    pub last_delivery_ns: AtomicU64,
    pub last_complete_ns: AtomicU64,
}

struct Shared {
    stats: Arc<ReceiverStats>,
    ledger: Arc<Ledger>,
    clock: BenchClock,
    fail_percent: u64,
    counter: AtomicU64,
    mode: watch::Receiver<Mode>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub stats: Arc<ReceiverStats>,
    mode: watch::Sender<Mode>,
    accept: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Receiver {
    pub async fn start(
        ledger: Arc<Ledger>,
        clock: BenchClock,
        fail_percent: u64,
        mode: Mode,
    ) -> Result<Receiver, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("receiver: cannot listen on 127.0.0.1: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("receiver: {e}"))?;
        let stats = Arc::new(ReceiverStats {
            requests: AtomicU64::new(0),
            held: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            unparsable: AtomicU64::new(0),
            missing_event_id: AtomicU64::new(0),
            operator_events: AtomicU64::new(0),
            e2e: Histogram::new(),
            first_delivery_ns: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            last_complete_ns: AtomicU64::new(0),
        });
        let (mode_tx, mode_rx) = watch::channel(mode);
        let shared = Arc::new(Shared {
            stats: stats.clone(),
            ledger,
            clock,
            fail_percent,
            counter: AtomicU64::new(0),
            mode: mode_rx,
        });
        let accept = tokio::spawn(accept_loop(listener, shared));
        Ok(Receiver {
            addr,
            stats,
            mode: mode_tx,
            accept,
        })
    }

    pub fn set_mode(&self, mode: Mode) {
        let _ = self.mode.send(mode);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&shared, request).await) }
            });
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// Request `n` fails iff floor((n+1)·p/100) > floor(n·p/100): exactly p % of requests, evenly
/// spread, and a retry lands on a different `n`.
fn fails(n: u64, percent: u64) -> bool {
    percent > 0 && (n + 1) * percent / 100 > n * percent / 100
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if *shared.mode.borrow() == Mode::Blackhole {
        shared.stats.held.fetch_add(1, Ordering::Relaxed);
        let mut mode = shared.mode.clone();
        let _ = mode.wait_for(|m| *m != Mode::Blackhole).await;
        return reply(StatusCode::SERVICE_UNAVAILABLE);
    }
    let stats = &shared.stats;
    if request.uri().path() == OPERATOR_PATH {
        let _ = request.into_body().collect().await;
        stats.operator_events.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::OK);
    }
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let destination = request
        .uri()
        .path()
        .strip_prefix("/d/")
        .and_then(|d| d.parse::<u32>().ok());
    if !request.headers().contains_key("x-outpost-event-id") {
        stats.missing_event_id.fetch_add(1, Ordering::Relaxed);
    }
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST),
    };
    let now = shared.clock.now_ns();
    if fails(
        shared.counter.fetch_add(1, Ordering::Relaxed),
        shared.fail_percent,
    ) {
        stats.failed.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let head = &body[..body.len().min(256)];
    let parsed = (
        destination,
        number_field(head, b"\"seq\":"),
        number_field(head, b"\"sent_at_ns\":"),
    );
    let (Some(destination), Some(seq), Some(sent_at)) = parsed else {
        stats.unparsable.fetch_add(1, Ordering::Relaxed);
        return reply(StatusCode::OK);
    };
    match shared.ledger.record_delivery(seq, destination) {
        Delivery::First { completes } => {
            stats.e2e.record(now.saturating_sub(sent_at) / 1000);
            let _ = stats.first_delivery_ns.compare_exchange(
                0,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            stats.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
            if completes {
                stats.last_complete_ns.fetch_max(now, Ordering::Relaxed);
            }
        }
        Delivery::Duplicate => {}
        Delivery::Unknown => {
            stats.unparsable.fetch_add(1, Ordering::Relaxed);
        }
    }
    reply(StatusCode::OK)
}

/// The unsigned integer following `key` in `head` (e.g. `"seq":123`).
fn number_field(head: &[u8], key: &[u8]) -> Option<u64> {
    let start = head.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = head[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&head[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_from_the_body_head() {
        let body = br#"{"seq":42,"sent_at_ns":1700000000123456789,"pad":"xx"}"#;
        assert_eq!(number_field(body, b"\"seq\":"), Some(42));
        assert_eq!(
            number_field(body, b"\"sent_at_ns\":"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(number_field(body, b"\"nope\":"), None);
        assert_eq!(number_field(br#"{"seq":"x"}"#, b"\"seq\":"), None);
    }

    #[test]
    fn failure_share_is_exact() {
        assert_eq!((0..1000).filter(|&n| fails(n, 10)).count(), 100);
        assert_eq!((0..1000).filter(|&n| fails(n, 0)).count(), 0);
        assert_eq!((0..100).filter(|&n| fails(n, 33)).count(), 33);
    }
}
