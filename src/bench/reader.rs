//! The closed-loop HTTP reader of the read scenarios (`query` and `metrics`).
//!
//! It owns one keep-alive connection asking `GET` after `GET` with the bearer key, the next
//! request once the previous answer is read, until told to stop: each answer timed (send to
//! last body byte) and classified, within [`REQUEST_TIMEOUT`] — a 200 whose body passes the
//! scenario's check counts as good with its latency and rows; another status is an error
//! quoting the body's start; a transport error or no answer in time is an error after which
//! the connection is given up and made again. The counters are [`ReadStats`], which also
//! answer the report's [`ReadFigures`]. A scenario says only what to ask next: an [`Ask`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};

use super::hist::Histogram;
use super::load;
use super::per_second;
use super::report::{Latency, ReadFigures};

/// How long one read may take before the connection is given up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most body bytes an error for a status other than 200 quotes.
const SNIPPET_BYTES: usize = 200;
/// Pause after a failed connect before the next try.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// One kind of request's counters during a read load.
#[derive(Default)]
pub struct ReadStats {
    ok: AtomicU64,
    errors: AtomicU64,
    rows: AtomicU64,
    latency: Histogram,
    first_error: Mutex<Option<String>>,
}

impl ReadStats {
    /// Good answers so far.
    pub fn ok(&self) -> u64 {
        self.ok.load(Relaxed)
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    /// The p99 latency of the good answers so far, ms.
    pub fn p99_ms(&self) -> f64 {
        self.latency.quantile(0.99) as f64 / 1000.0
    }

    fn good(&self, took: Duration, rows: usize) {
        self.latency.record(took.as_micros() as u64);
        self.ok.fetch_add(1, Relaxed);
        self.rows.fetch_add(rows as u64, Relaxed);
    }

    fn error(&self, message: String) {
        self.errors.fetch_add(1, Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(message);
    }

    /// The report's figures for a load of `seconds`.
    pub fn figures(&self, seconds: f64) -> ReadFigures {
        let ok = self.ok();
        ReadFigures {
            ok,
            errors: self.errors(),
            requests_per_s: per_second(ok, seconds),
            avg_models: if ok > 0 {
                self.rows.load(Relaxed) as f64 / ok as f64
            } else {
                0.0
            },
            latency: Latency::from(self.latency.summary()),
            first_error: self
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// A reader's next request.
pub struct Ask<'r, C> {
    /// Path and query of the `GET`.
    pub path: String,
    /// The counters its answer goes to.
    pub stats: &'r ReadStats,
    /// Checks a 200 body: answers its rows, or what is wrong with it (the whole error message).
    pub check: C,
}

/// Runs one closed-loop read connection to `addr` with the bearer `key` until `stop` is set,
/// asking what `next` answers each time.
pub async fn run<'r, N, C>(addr: SocketAddr, key: &str, stop: &AtomicBool, mut next: N)
where
    N: FnMut() -> Ask<'r, C>,
    C: FnOnce(&[u8]) -> Result<usize, String>,
{
    let auth = format!("Bearer {key}");
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    while !stop.load(Relaxed) {
        let ask = next();
        if sender.is_none() {
            match load::connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    ask.stats.error(e);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let request = match request(addr, &auth, &ask.path) {
            Ok(request) => request,
            Err(e) => {
                ask.stats.error(format!("GET {}: {e}", ask.path));
                continue;
            }
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, load::exchange(s, request))
            .await
            .ok();
        let took = sent.elapsed();
        match classify(&ask.path, answer, ask.check) {
            Verdict::Good(rows) => ask.stats.good(took, rows),
            Verdict::Bad(e) => ask.stats.error(e),
            Verdict::Broken(e) => {
                ask.stats.error(e);
                sender = None;
            }
        }
    }
}

/// What one answer came to.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// A 200 whose body passed the check, with its rows.
    Good(usize),
    /// An error; the connection can carry the next request.
    Bad(String),
    /// An error after which the connection is given up.
    Broken(String),
}

/// Classifies the answer to `GET path`: status and body, a transport error, or `None` for no
/// answer within [`REQUEST_TIMEOUT`]. `check` sees the body of a 200 only.
fn classify(
    path: &str,
    answer: Option<Result<(u16, Bytes), String>>,
    check: impl FnOnce(&[u8]) -> Result<usize, String>,
) -> Verdict {
    match answer {
        Some(Ok((200, body))) => match check(&body) {
            Ok(rows) => Verdict::Good(rows),
            Err(e) => Verdict::Bad(e),
        },
        Some(Ok((status, body))) => Verdict::Bad(format!(
            "GET {path} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(SNIPPET_BYTES)])
        )),
        Some(Err(e)) => Verdict::Broken(format!("GET {path}: {e}")),
        None => Verdict::Broken(format!("GET {path}: no answer within {REQUEST_TIMEOUT:?}")),
    }
}

/// `GET path` to `addr` with the `authorization` header `auth`.
fn request(addr: SocketAddr, auth: &str, path: &str) -> Result<Request<Full<Bytes>>, String> {
    Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", auth)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())
}

/// `GET path` with the bearer `key` on a fresh connection to `addr`: status and body.
pub async fn get(addr: SocketAddr, key: &str, path: &str) -> Result<(u16, Bytes), String> {
    let mut sender = load::connect(addr).await?;
    let request = request(addr, &format!("Bearer {key}"), path)?;
    load::exchange(&mut sender, request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> impl FnOnce(&[u8]) -> Result<usize, String> {
        move |body| {
            if body == b"good" {
                Ok(n)
            } else {
                Err("bad page".into())
            }
        }
    }

    #[test]
    fn answers_are_classified() {
        let answer = |status, body: &'static [u8]| Some(Ok((status, Bytes::from_static(body))));
        assert_eq!(
            classify("/p", answer(200, b"good"), rows(3)),
            Verdict::Good(3)
        );
        assert_eq!(
            classify("/p", answer(200, b"nope"), rows(3)),
            Verdict::Bad("bad page".into())
        );
        // Another status is checked not at all, and quoted.
        assert_eq!(
            classify("/p", answer(503, b"good"), |_| panic!("checked a 503")),
            Verdict::Bad("GET /p answered 503: good".into())
        );
        let long = classify("/p", Some(Ok((500, Bytes::from(vec![b'x'; 500])))), rows(0));
        assert_eq!(
            long,
            Verdict::Bad(format!(
                "GET /p answered 500: {}",
                "x".repeat(SNIPPET_BYTES)
            ))
        );
        assert_eq!(
            classify("/p", Some(Err("connection reset".into())), rows(0)),
            Verdict::Broken("GET /p: connection reset".into())
        );
        assert_eq!(
            classify("/p", None, rows(0)),
            Verdict::Broken("GET /p: no answer within 30s".into())
        );
    }

    #[test]
    fn figures_count_good_answers_and_keep_the_first_error() {
        let stats = ReadStats::default();
        assert_eq!(stats.figures(1.0).avg_models, 0.0);
        stats.good(Duration::from_millis(2), 10);
        stats.good(Duration::from_millis(4), 20);
        stats.error("first".into());
        stats.error("second".into());
        let figures = stats.figures(2.0);
        assert_eq!((figures.ok, figures.errors), (2, 2));
        assert_eq!(figures.requests_per_s, 1.0);
        assert_eq!(figures.avg_models, 15.0);
        assert_eq!(figures.first_error.as_deref(), Some("first"));
        assert!(stats.p99_ms() >= 2.0, "{}", stats.p99_ms());
    }
}
