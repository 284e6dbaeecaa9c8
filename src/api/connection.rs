//! Deadlines of one client connection. A connection is always in one of three phases:
//!
//! * **head** — from the accept, or from the first byte after an idle spell, until the request
//!   line and headers are parsed: bounded by `HTTP_HEADER_READ_TIMEOUT_SECONDS`;
//! * **busy** — a request is being served (its body, bounded separately by the handler with
//!   `HTTP_BODY_READ_TIMEOUT_SECONDS`, and the handler itself): no deadline here;
//! * **idle** — after a response, until the next request's first byte: bounded by
//!   `HTTP_IDLE_TIMEOUT_SECONDS`.
//!
//! [`Watched`] wraps the socket and notes bytes arriving; the service notes a request's start
//! and end; [`Deadlined`] wraps the connection future and ends it (closing the socket) when
//! the phase's deadline passes. Every phase change happens inside the connection future's own
//! poll, so the deadline is recomputed after each poll and needs no wake-up of its own.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::config::HttpLimits;

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// Which deadline ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// The request line and headers were late.
    Head,
    /// The connection sat idle between requests too long.
    Idle,
}

/// The phase of one connection, shared by its socket wrapper, its service and its deadline.
pub struct Phase {
    opened: Instant,
    phase: AtomicU8,
    /// Milliseconds after `opened` when the phase began.
    since_ms: AtomicU64,
}

impl Phase {
    /// A connection just accepted: waiting for its first request's head.
    pub fn new() -> Arc<Phase> {
        Arc::new(Phase {
            opened: Instant::now(),
            phase: AtomicU8::new(HEAD),
            since_ms: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: u8) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }

    /// Bytes arrived: an idle connection starts a request head.
    fn bytes_arrived(&self) {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            self.enter(HEAD);
        }
    }

    /// A request's head was parsed and its handler runs.
    pub fn request_started(&self) {
        self.phase.store(BUSY, Ordering::Relaxed);
    }

    /// The handler answered: the connection waits for the next request.
    pub fn request_finished(&self) {
        self.enter(IDLE);
    }

    /// When the current phase ends the connection, and how.
    fn deadline(&self, limits: &Deadlines) -> Option<(Instant, Expired)> {
        let (limit, expired) = match self.phase.load(Ordering::Relaxed) {
            HEAD => (limits.head, Expired::Head),
            IDLE => (limits.idle, Expired::Idle),
            _ => return None,
        };
        let since = Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        Some((self.opened + since + limit, expired))
    }
}

/// The two connection-level deadlines.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    pub head: Duration,
    pub idle: Duration,
}

impl From<&HttpLimits> for Deadlines {
    fn from(limits: &HttpLimits) -> Deadlines {
        Deadlines {
            head: limits.header_read_timeout,
            idle: limits.idle_timeout,
        }
    }
}

/// A socket that tells its connection's [`Phase`] when bytes arrive.
pub struct Watched<S> {
    inner: S,
    phase: Arc<Phase>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, phase: Arc<Phase>) -> Watched<S> {
        Watched { inner, phase }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.phase.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a deadlined connection ended.
pub enum Ended<T> {
    /// The connection future finished by itself.
    Finished(T),
    /// A deadline passed; the connection future was stopped (and its socket closes on drop).
    Expired(Expired),
}

/// A connection future under its phase's deadline.
pub struct Deadlined<F> {
    connection: Pin<Box<F>>,
    phase: Arc<Phase>,
    limits: Deadlines,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl<F: Future> Deadlined<F> {
    pub fn new(connection: F, phase: Arc<Phase>, limits: Deadlines) -> Deadlined<F> {
        Deadlined {
            connection: Box::pin(connection),
            phase,
            limits,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
        }
    }
}

impl<F: Future> Future for Deadlined<F> {
    type Output = Ended<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Poll::Ready(output) = this.connection.as_mut().poll(cx) {
            return Poll::Ready(Ended::Finished(output));
        }
        let Some((deadline, expired)) = this.phase.deadline(&this.limits) else {
            // Busy: the connection future wakes this task when anything changes.
            return Poll::Pending;
        };
        if Instant::now() >= deadline {
            return Poll::Ready(Ended::Expired(expired));
        }
        if this.armed != Some(deadline) {
            this.sleep.as_mut().reset(deadline);
            this.armed = Some(deadline);
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Ended::Expired(expired)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Deadlines = Deadlines {
        head: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_ends_at_the_header_deadline() {
        let phase = Phase::new();
        let started = Instant::now();
        let ended = Deadlined::new(std::future::pending::<()>(), phase, LIMITS).await;
        assert!(matches!(ended, Ended::Expired(Expired::Head)));
        assert_eq!(started.elapsed(), LIMITS.head);
    }

    #[tokio::test(start_paused = true)]
    async fn phases_pick_their_deadline_and_busy_has_none() {
        let phase = Phase::new();
        phase.request_started();
        assert!(phase.deadline(&LIMITS).is_none());
        tokio::time::advance(Duration::from_secs(100)).await;
        phase.request_finished();
        let (deadline, expired) = phase.deadline(&LIMITS).expect("idle deadline");
        assert_eq!(expired, Expired::Idle);
        assert_eq!(deadline - Instant::now(), LIMITS.idle);
        // The first byte of the next request switches to the (shorter) header deadline.
        tokio::time::advance(Duration::from_secs(5)).await;
        phase.bytes_arrived();
        let (deadline, expired) = phase.deadline(&LIMITS).expect("head deadline");
        assert_eq!(expired, Expired::Head);
        assert_eq!(deadline - Instant::now(), LIMITS.head);
        // More bytes of the same head do not push the deadline back.
        tokio::time::advance(Duration::from_secs(3)).await;
        phase.bytes_arrived();
        let (later, _) = phase.deadline(&LIMITS).expect("head deadline");
        assert_eq!(later, deadline);
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_connection_is_not_cut() {
        let phase = Phase::new();
        let ended = Deadlined::new(async { 7 }, phase, LIMITS).await;
        assert!(matches!(ended, Ended::Finished(7)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_ends_at_the_idle_deadline() {
        let phase = Phase::new();
        phase.request_started();
        phase.request_finished();
        let started = Instant::now();
        let ended = Deadlined::new(std::future::pending::<()>(), phase, LIMITS).await;
        assert!(matches!(ended, Ended::Expired(Expired::Idle)));
        assert_eq!(started.elapsed(), LIMITS.idle);
    }
}
