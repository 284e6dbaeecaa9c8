//! The HTTP API: upstream Outpost's `/api/v1` routes plus `/healthz`, served over raw hyper.
//! Knows the store's interface, not its tables; never delivers anything itself.

mod audit;
mod auth;
pub(crate) mod body;
mod connection;
pub(crate) mod cursor;
mod destinations;
mod display;
pub(crate) mod error;
mod header_limits;
mod health;
mod logs;
mod metrics;
mod pagination;
mod prometheus;
mod publish;
pub(crate) mod query;
mod rate_limit;
mod reply;
pub(crate) mod requests;
mod retry;
mod router;
mod routes;
mod schemas;
mod tenants;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use auth::AuthKeys;
pub use rate_limit::RateLimiter;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::Config;
use crate::disk_budget::DiskBudget;
use crate::liveness::Liveness;
use crate::model::destination_type::{Registry, WebhookMode};
use crate::model::random;
use crate::model::secret::{self, SecretError, SecretTemplate};
use crate::model::topics::TopicRules;
use crate::store::Store;
use crate::telemetry::{Metrics, RouteLabel};

/// Everything a handler may use.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub keys: AuthKeys,
    pub registry: Registry,
    pub topic_rules: TopicRules,
    pub secret_template: SecretTemplate,
    pub clock: Clock,
    /// Whether publishing may write more (`DATA_MAX_BYTES`, `DATA_MIN_FREE_BYTES`).
    pub disk_budget: DiskBudget,
    /// This server's counters and histograms (`GET /metrics`).
    pub metrics: Arc<Metrics>,
    /// The workers' heartbeats (`GET /healthz`).
    pub liveness: Liveness,
    /// Where admin changes are recorded (`DATA_DIR/audit.log`).
    pub audit: AuditLog,
    /// Requests per caller (`API_RATE_LIMIT_*`); `None` when off.
    pub rate_limiter: Option<RateLimiter>,
}

/// Every row of the route table as the request metrics label it, in table order.
pub fn route_labels() -> Vec<RouteLabel> {
    routes::ROUTES
        .iter()
        .map(|route| RouteLabel {
            method: route.method.as_str(),
            pattern: route.pattern,
        })
        .collect()
}

impl AppState {
    /// A fresh signing secret in the configured webhook mode's format: always that format,
    /// or an error.
    pub fn new_secret(&self) -> Result<String, SecretError> {
        let mut random = random::os_random;
        match self.registry_mode() {
            WebhookMode::Standard => Ok(secret::standard_secret(&mut random)?),
            WebhookMode::Default => self.secret_template.generate(&mut random),
        }
    }

    fn registry_mode(&self) -> WebhookMode {
        self.config.webhook.mode
    }
}

/// Accepts connections until `shutdown` resolves, then lets open requests finish for up to
/// `grace`. At most `HTTP_MAX_CONNECTIONS` are served at once: at the cap the loop stops
/// accepting, and further connections wait in the listen backlog until one closes. Each
/// connection runs under its header and idle deadlines (`connection`).
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let limits = state.config.http;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The header deadline is `connection`'s: hyper's would also cut idle keep-alive
        // connections at the header deadline.
        .header_read_timeout(None)
        .max_header_size(header_limits::parser_header_bytes(&limits))
        .keep_alive(true);
    let parser_headers = header_limits::parser_headers(&limits);
    if parser_headers != header_limits::PARSER_DEFAULT_HEADERS {
        builder.max_headers(parser_headers);
    }
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (_, SocketAddr) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let phase = connection::Phase::new();
                let state = state.clone();
                let service_phase = phase.clone();
                let service = service_fn(move |request| {
                    let state = state.clone();
                    let phase = service_phase.clone();
                    phase.request_started();
                    async move {
                        let reply = router::handle(state, request).await;
                        phase.request_finished();
                        Ok::<_, std::convert::Infallible>(reply)
                    }
                });
                let io = TokioIo::new(connection::Watched::new(stream, phase.clone()));
                let connection = graceful.watch(builder.serve_connection(io, service));
                let deadlined =
                    connection::Deadlined::new(connection, phase, connection::Deadlines::from(&limits));
                tokio::spawn(async move {
                    match deadlined.await {
                        connection::Ended::Finished(Err(error)) => {
                            tracing::debug!(%error, %peer, "connection ended with an error");
                        }
                        connection::Ended::Finished(Ok(())) => {}
                        connection::Ended::Expired(expired) => {
                            tracing::debug!(%peer, ?expired, "connection closed at its deadline");
                        }
                    }
                    drop(slot);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!("open connections did not finish within the shutdown deadline");
        }
    }
}
