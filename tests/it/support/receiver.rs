//! A real HTTP receiver for webhook deliveries: listens on 127.0.0.1, records every request and
//! answers according to a programmable [`Behaviour`]. Waits are event-driven (`Notify`) and
//! always bounded by a timeout.

// A support API: not every helper is used by every test binary configuration.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinSet;

/// How the receiver answers. Request indexes count from 0 and restart whenever the behaviour
/// is replaced with [`Receiver::set_behaviour`].
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Always answer with this status.
    Status(u16),
    /// Answer `status` to the first `count` requests, then 200.
    FailFirst { count: u64, status: u16 },
    /// Fail exactly `percent` of requests, spread evenly and deterministically (request `i`
    /// fails iff `floor((i+1)·p/100) > floor(i·p/100)`).
    FailPercent { percent: u64, status: u16 },
    /// Answer 500 while the switch ([`Receiver::set_switch`]) is off, 200 while it is on.
    Switch,
    /// Answer `status` (a redirect) with `Location: location`.
    Redirect { status: u16, location: String },
}

/// Body the receiver sends with a successful answer.
pub const OK_BODY: &str = r#"{"received":true}"#;
/// Body the receiver sends with a failing answer.
pub const FAIL_BODY: &str = r#"{"error":"receiver refused"}"#;

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub method: Method,
    /// Path and query, e.g. `/hooks/a?x=1`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub arrived: Instant,
    pub arrived_at: SystemTime,
    /// The status the receiver answered with.
    pub answered: u16,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The delivery's event id: `x-outpost-event-id`, else `webhook-id`.
    pub fn event_id(&self) -> Option<String> {
        self.header("x-outpost-event-id")
            .or_else(|| self.header("webhook-id"))
            .map(str::to_string)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Shared {
    requests: Mutex<Vec<ReceivedRequest>>,
    /// Delivery count per event id, kept incrementally for cheap checks on large runs.
    per_event: Mutex<HashMap<String, u64>>,
    notify: Notify,
    behaviour: Mutex<Behaviour>,
    /// Requests answered under the current behaviour.
    index: AtomicU64,
    switch_on: AtomicBool,
    delay: Mutex<Duration>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

pub struct Receiver {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Mutex<Option<Running>>,
}

impl Receiver {
    /// Starts a receiver on an ephemeral port of 127.0.0.1.
    pub async fn start(behaviour: Behaviour) -> Receiver {
        Receiver::start_on("127.0.0.1:0".parse().unwrap(), behaviour).await
    }

    /// Starts a receiver on `addr` (another loopback address such as 127.0.0.2, a chosen port).
    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Receiver {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            per_event: Mutex::new(HashMap::new()),
            notify: Notify::new(),
            behaviour: Mutex::new(behaviour),
            index: AtomicU64::new(0),
            switch_on: AtomicBool::new(false),
            delay: Mutex::new(Duration::ZERO),
        });
        let (addr, running) = listen(shared.clone(), addr).await;
        Receiver {
            shared,
            addr,
            running: Mutex::new(Some(running)),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// URL of `path` (which starts with `/`) on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
        self.shared.index.store(0, Ordering::SeqCst);
    }

    /// For [`Behaviour::Switch`]: on = answer 200, off = answer 500.
    pub fn set_switch(&self, on: bool) {
        self.shared.switch_on.store(on, Ordering::SeqCst);
    }

    /// Wait this long before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    /// Stops listening and drops every open connection (keep-alive ones included), so
    /// deliveries get "connection refused" until [`Receiver::restart`].
    pub async fn stop(&self) {
        let running = self.running.lock().unwrap().take();
        if let Some(running) = running {
            let _ = running.shutdown.send(());
            let _ = running.done.await;
        }
    }

    /// Listens again on the same port after [`Receiver::stop`].
    pub async fn restart(&self) {
        let already = self.running.lock().unwrap().is_some();
        assert!(!already, "receiver is already running");
        let (_, running) = listen(self.shared.clone(), self.addr).await;
        *self.running.lock().unwrap() = Some(running);
    }

    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Requests whose path (without query) equals `path`.
    pub fn requests_to(&self, path: &str) -> Vec<ReceivedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.split('?').next() == Some(path))
            .collect()
    }

    /// Event ids of all requests in arrival order (duplicates kept).
    pub fn event_ids(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(ReceivedRequest::event_id)
            .collect()
    }

    /// Deliveries per event id.
    pub fn deliveries_per_event(&self) -> HashMap<String, u64> {
        self.shared.per_event.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived; returns them all. Panics with what did
    /// arrive when `timeout` passes first.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        let ok = self
            .wait_until(timeout, |requests| requests.len() >= count)
            .await;
        let requests = self.requests();
        assert!(
            ok,
            "receiver: expected at least {count} requests within {timeout:?}, got {}: {:?}",
            requests.len(),
            summary(&requests)
        );
        requests
    }

    /// Waits until `predicate` holds for the recorded requests; false if `timeout` passed.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut predicate: impl FnMut(&[ReceivedRequest]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if predicate(&self.shared.requests.lock().unwrap()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return predicate(&self.shared.requests.lock().unwrap());
            }
        }
    }

    /// Waits until every id in `ids` was delivered at least once; returns the ids still
    /// missing when `timeout` passed (empty on success).
    pub async fn wait_for_event_ids(
        &self,
        ids: &HashSet<String>,
        timeout: Duration,
    ) -> HashSet<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut missing = ids.clone();
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let seen = self.shared.per_event.lock().unwrap();
                missing.retain(|id| !seen.contains_key(id));
            }
            if missing.is_empty() {
                return missing;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let seen = self.shared.per_event.lock().unwrap();
                missing.retain(|id| !seen.contains_key(id));
                return missing;
            }
        }
    }

    /// Proves that no request beyond the first `count` arrives within `window` (keep it
    /// short); panics listing the extra requests otherwise.
    pub async fn assert_no_more_than(&self, count: usize, window: Duration) {
        let extra = self
            .wait_until(window, |requests| requests.len() > count)
            .await;
        let requests = self.requests();
        assert!(
            !extra,
            "receiver: expected no more than {count} requests, got {}: {:?}",
            requests.len(),
            summary(&requests)
        );
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(running) = self.running.lock().unwrap().take() {
            let _ = running.shutdown.send(());
            running.done.abort();
        }
    }
}

/// `(path, event id, answered status)` of each request, for failure messages.
pub fn summary(requests: &[ReceivedRequest]) -> Vec<(String, Option<String>, u16)> {
    requests
        .iter()
        .map(|r| (r.path.clone(), r.event_id(), r.answered))
        .collect()
}

async fn listen(shared: Arc<Shared>, addr: SocketAddr) -> (SocketAddr, Running) {
    let socket = TcpSocket::new_v4().expect("receiver socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    // The port may still be held briefly after a stop; retry the bind for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match socket.bind(addr) {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("receiver cannot bind {addr}: {e}"),
        }
    }
    let listener = socket.listen(1024).expect("receiver listen");
    let local = listener.local_addr().expect("receiver addr");
    let (shutdown, mut stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(async move {
        // Dropping the set aborts every connection task: a stopped receiver serves nobody.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(shared.clone(), request));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    });
    (local, Running { shutdown, done })
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let arrived = Instant::now();
    let arrived_at = SystemTime::now();
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status = decide(&shared);
    let received = ReceivedRequest {
        method: parts.method,
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string()),
        headers: parts.headers,
        body,
        arrived,
        arrived_at,
        answered: status,
    };
    if let Some(id) = received.event_id() {
        *shared.per_event.lock().unwrap().entry(id).or_default() += 1;
    }
    shared.requests.lock().unwrap().push(received);
    shared.notify.notify_waiters();
    // Recorded before the delay, so a client that gives up still counts as a delivery.
    let delay = *shared.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let body = if status < 400 { OK_BODY } else { FAIL_BODY };
    let mut response = Response::builder();
    if let Behaviour::Redirect { location, .. } = &*shared.behaviour.lock().unwrap() {
        response = response.header("location", location.as_str());
    }
    let response = response
        .status(StatusCode::from_u16(status).expect("valid status"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("response");
    Ok(response)
}

fn decide(shared: &Shared) -> u16 {
    let index = shared.index.fetch_add(1, Ordering::SeqCst);
    match shared.behaviour.lock().unwrap().clone() {
        Behaviour::Status(status) => status,
        Behaviour::FailFirst { count, status } => {
            if index < count {
                status
            } else {
                200
            }
        }
        Behaviour::FailPercent { percent, status } => {
            if (index + 1) * percent / 100 > index * percent / 100 {
                status
            } else {
                200
            }
        }
        Behaviour::Redirect { status, .. } => status,
        Behaviour::Switch => {
            if shared.switch_on.load(Ordering::SeqCst) {
                200
            } else {
                500
            }
        }
    }
}
