//! The publishers: `--connections` keep-alive HTTP/1.1 connections (hyper client connections,
//! one task each) posting to `/api/v1/publish`. Open-loop: event `i` is due at
//! `start + i / rate` whatever happened before it, and both its publish latency and the
//! `sent_at_ns` it carries (for end-to-end latency) count from that scheduled time, so a
//! stalled server cannot hide its stall (no coordinated omission). `--rate 0` sends as fast as
//! the connections allow and measures from the actual send. Events go to the spec's tenants in
//! turn; a sample of the acknowledged events' ids ([`AckedIds`]) can be kept for later reads. A
//! load may number its events from `first_seq` (so several loads can share one ledger) and may
//! be ended early by a [`LoadStop`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::hist::Histogram;
use super::ledger::Ledger;
use super::BenchClock;

/// Bytes of the `data` object besides the pad (keys, a ~6-digit seq, a 19-digit timestamp).
const DATA_OVERHEAD: usize = 56;
/// How long one publish may take before the connection is given up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub api_key: String,
    /// Event `seq` goes to `tenants[seq % tenants.len()]`; never empty.
    pub tenants: Vec<String>,
    /// Events per second; 0 = as fast as possible.
    pub rate: f64,
    pub connections: usize,
    /// No event is scheduled at or after this offset from the start.
    pub duration: Duration,
    pub events: Option<u64>,
    /// Approximate size of each event's `data` JSON, bytes.
    pub payload: usize,
    /// Sequence number of the first event (the ledger's key); later ones count up from it.
    pub first_seq: u64,
    /// Ends the load early when stopped.
    pub stop: Option<Arc<LoadStop>>,
    /// Where to keep a sample of the ids the server gave the acknowledged events.
    pub ids: Option<Arc<AckedIds>>,
}

/// Ends a load before its duration: events scheduled at or after the moment of
/// [`LoadStop::stop`] are not sent (and not counted as skipped).
#[derive(Debug, Default)]
pub struct LoadStop(OnceLock<Instant>);

impl LoadStop {
    /// Stops the load now; a second call changes nothing.
    pub fn stop(&self) {
        let _ = self.0.set(Instant::now());
    }

    /// Whether an event scheduled at `scheduled` falls after the stop.
    fn excludes(&self, scheduled: Instant) -> bool {
        self.0.get().is_some_and(|at| scheduled >= *at)
    }
}

/// How many events an open-loop load at `rate` meant to send: those scheduled before the end
/// of `duration`, or before `stopped_after` when it was stopped earlier, at most `events`.
fn planned_events(
    rate: f64,
    duration: Duration,
    events: Option<u64>,
    stopped_after: Option<Duration>,
) -> u64 {
    let window = stopped_after.map_or(duration, |s| s.min(duration));
    let planned = (rate * window.as_secs_f64()).ceil() as u64;
    events.map_or(planned, |n| planned.min(n))
}

impl LoadSpec {
    /// The load a scenario's plan asks for, against `api`, publishing for `tenant`.
    pub fn for_plan(plan: &super::Plan, api: &super::api::Api, tenant: String) -> LoadSpec {
        LoadSpec {
            addr: api.addr,
            api_key: api.key.clone(),
            tenants: vec![tenant],
            rate: plan.rate,
            connections: plan.connections,
            duration: plan.duration,
            events: plan.events,
            payload: plan.payload,
            first_seq: 0,
            stop: None,
            ids: None,
        }
    }
}

/// The ids of every `stride`-th acknowledged event (by sequence number), as the server's 202
/// answered them: a sample spread evenly over the whole publish.
pub struct AckedIds {
    stride: u64,
    ids: Mutex<Vec<String>>,
}

impl AckedIds {
    /// A sample of at most about `keep` ids out of `events` events.
    pub fn new(events: u64, keep: u64) -> AckedIds {
        AckedIds {
            stride: events.div_ceil(keep.max(1)).max(1),
            ids: Mutex::new(Vec::new()),
        }
    }

    fn wants(&self, seq: u64) -> bool {
        seq.is_multiple_of(self.stride)
    }

    fn keep(&self, id: String) {
        self.ids.lock().unwrap_or_else(|p| p.into_inner()).push(id);
    }

    /// The ids kept so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ids.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The event id in a publish answer (`{"id":"…","duplicate":false,…}`).
fn published_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        id: String,
    }
    serde_json::from_slice::<Answer>(body)
        .ok()
        .map(|a| a.id)
        .filter(|id| !id.is_empty())
}

#[derive(Default)]
pub struct LoadStats {
    claimed: AtomicU64,
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    /// Answers other than 202.
    pub rejected: AtomicU64,
    /// Connection failures and timeouts.
    pub transport_errors: AtomicU64,
    /// Events due before the end whose turn came after the hard deadline (server too slow).
    pub skipped: AtomicU64,
    pub first_error: Mutex<Option<String>>,
}

impl LoadStats {
    /// Sequence numbers taken so far (sent or not), counted from the load's `first_seq`: a
    /// later load sharing the ledger starts at `first_seq + claimed()`.
    pub fn claimed(&self) -> u64 {
        self.claimed.load(Ordering::Relaxed)
    }

    fn error(&self, message: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(message);
        }
    }
}

struct Shared {
    spec: LoadSpec,
    stats: Arc<LoadStats>,
    latency: Arc<Histogram>,
    ledger: Arc<Ledger>,
    clock: BenchClock,
    start: Instant,
    deadline: Instant,
    pad: String,
    auth: String,
}

/// Runs the load to its end; answers the time from the first scheduled send to the last answer.
pub async fn run(
    spec: LoadSpec,
    stats: Arc<LoadStats>,
    latency: Arc<Histogram>,
    ledger: Arc<Ledger>,
    clock: BenchClock,
) -> Duration {
    let start = Instant::now() + Duration::from_millis(5);
    let grace = (spec.duration / 2).max(Duration::from_secs(5));
    let shared = Arc::new(Shared {
        deadline: start + spec.duration + grace,
        pad: "x".repeat(spec.payload.saturating_sub(DATA_OVERHEAD)),
        auth: format!("Bearer {}", spec.api_key),
        spec,
        stats,
        latency,
        ledger,
        clock,
        start,
    });
    let tasks: Vec<_> = (0..shared.spec.connections)
        .map(|_| tokio::spawn(connection(shared.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed();
    if shared.spec.rate > 0.0 {
        let stopped_after = shared
            .spec
            .stop
            .as_ref()
            .and_then(|stop| stop.0.get())
            .map(|at| at.saturating_duration_since(start));
        let planned = planned_events(
            shared.spec.rate,
            shared.spec.duration,
            shared.spec.events,
            stopped_after,
        );
        let sent = shared.stats.sent.load(Ordering::Relaxed);
        shared
            .stats
            .skipped
            .store(planned.saturating_sub(sent), Ordering::Relaxed);
    }
    elapsed
}

impl Shared {
    /// The next event: its sequence number and scheduled send time, or `None` at the end.
    fn claim(&self) -> Option<(u64, Instant)> {
        let seq = self.stats.claimed.fetch_add(1, Ordering::Relaxed);
        if self.spec.events.is_some_and(|n| seq >= n) {
            return None;
        }
        let now = Instant::now();
        let scheduled = if self.spec.rate > 0.0 {
            let offset = Duration::from_secs_f64(seq as f64 / self.spec.rate);
            if offset >= self.spec.duration {
                return None;
            }
            self.start + offset
        } else {
            if now.saturating_duration_since(self.start) >= self.spec.duration {
                return None;
            }
            now.max(self.start)
        };
        if now > self.deadline || self.stopped(scheduled) {
            return None;
        }
        Some((self.spec.first_seq + seq, scheduled))
    }

    fn stopped(&self, scheduled: Instant) -> bool {
        self.spec
            .stop
            .as_ref()
            .is_some_and(|stop| stop.excludes(scheduled))
    }

    fn body(&self, seq: u64, sent_at_ns: u64) -> String {
        format!(
            r#"{{"tenant_id":"{}","topic":"bench.event","data":{{"seq":{seq},"sent_at_ns":{sent_at_ns},"pad":"{}"}}}}"#,
            self.spec.tenants[(seq % self.spec.tenants.len() as u64) as usize],
            self.pad
        )
    }
}

/// A keep-alive HTTP/1.1 client connection to `addr`.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// Sends `request` once the connection is ready and reads the whole answer: status and body.
pub async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

async fn connection(shared: Arc<Shared>) {
    let stats = &shared.stats;
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while let Some((seq, scheduled)) = shared.claim() {
        tokio::time::sleep_until(scheduled.into()).await;
        if shared.stopped(scheduled) {
            return;
        }
        if sender.is_none() {
            match connect(shared.spec.addr).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                    stats.error(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let sent_from = if shared.spec.rate > 0.0 {
            scheduled
        } else {
            Instant::now()
        };
        let sent_at_ns = shared.clock.at_ns(sent_from);
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/publish")
            .header("host", shared.spec.addr.to_string())
            .header("authorization", shared.auth.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(shared.body(seq, sent_at_ns))));
        let Ok(request) = request else { continue };
        stats.sent.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange(s, request)).await {
            Ok(Ok((202, body))) => {
                let took = sent_from.elapsed();
                shared.latency.record(took.as_micros() as u64);
                shared.ledger.record_ack(seq);
                stats.acked.fetch_add(1, Ordering::Relaxed);
                if let Some(ids) = shared.spec.ids.as_ref().filter(|ids| ids.wants(seq)) {
                    match published_id(&body) {
                        Some(id) => ids.keep(id),
                        None => stats.error(format!(
                            "publish answered 202 without an id: {}",
                            String::from_utf8_lossy(&body[..body.len().min(200)])
                        )),
                    }
                }
            }
            Ok(Ok((status, body))) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                stats.error(format!(
                    "publish answered {status}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ));
            }
            Ok(Err(e)) => {
                stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                stats.error(format!("publish: {e}"));
                sender = None;
            }
            Err(_) => {
                stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                stats.error(format!("publish: no answer within {REQUEST_TIMEOUT:?}"));
                sender = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_every_stride_th_id() {
        let ids = AckedIds::new(5_000_000, 100_000);
        assert_eq!(ids.stride, 50);
        assert!(ids.wants(0) && ids.wants(50) && !ids.wants(49));
        assert_eq!(AckedIds::new(20_000, 100_000).stride, 1);
        assert_eq!(AckedIds::new(100_001, 100_000).stride, 2);
        assert_eq!(AckedIds::new(10, 0).stride, 10);
        ids.keep("a".into());
        ids.keep("b".into());
        assert_eq!(ids.take(), vec!["a".to_string(), "b".to_string()]);
        assert!(ids.take().is_empty());
    }

    #[test]
    fn reads_the_id_of_a_publish_answer() {
        let body = br#"{"id":"0193b6d2-7c1e-7000-8000-000000000001","duplicate":false,"destination_ids":["d1"]}"#;
        assert_eq!(
            published_id(body).as_deref(),
            Some("0193b6d2-7c1e-7000-8000-000000000001")
        );
        assert_eq!(published_id(br#"{"id":""}"#), None);
        assert_eq!(published_id(b"accepted"), None);
    }

    #[test]
    fn planned_events_count_the_schedule_up_to_the_end_or_the_stop() {
        let d = Duration::from_secs;
        assert_eq!(planned_events(2000.0, d(20), None, None), 40_000);
        assert_eq!(planned_events(2000.0, d(20), Some(100), None), 100);
        // Stopped after 1.5 s: events 0..3000 were scheduled before the stop.
        assert_eq!(
            planned_events(2000.0, d(600), None, Some(Duration::from_millis(1500))),
            3_000
        );
        // A stop after the end changes nothing.
        assert_eq!(planned_events(10.0, d(2), None, Some(d(5))), 20);
        // Event i is due at i / rate: at 3/s over 1 s, events 0, 1 and 2.
        assert_eq!(planned_events(3.0, d(1), None, None), 3);
        assert_eq!(planned_events(2000.0, d(20), None, Some(Duration::ZERO)), 0);
    }

    #[test]
    fn a_stop_excludes_what_is_scheduled_from_then_on() {
        let stop = LoadStop::default();
        let before = Instant::now();
        assert!(!stop.excludes(before));
        stop.stop();
        let after = Instant::now() + Duration::from_millis(1);
        assert!(stop.excludes(after));
        assert!(!stop.excludes(before));
        // The first stop counts.
        stop.stop();
        assert!(!stop.excludes(before));
    }
}
