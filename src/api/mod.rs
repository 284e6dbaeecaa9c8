//! The HTTP API: upstream Outpost's `/api/v1` routes plus `/healthz`, served over raw hyper.
//! Knows the store's interface, not its tables; never delivers anything itself.

mod audit;
mod auth;
pub(crate) mod body;
pub(crate) mod cursor;
mod destinations;
mod display;
pub(crate) mod error;
mod health;
mod logs;
mod metrics;
mod pagination;
mod prometheus;
mod publish;
pub(crate) mod query;
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

pub use auth::AuthKeys;

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

/// How long a client may take to send a request's headers (slow-loris protection).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
                let state = state.clone();
                let service = service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(router::handle(state, request).await) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, %peer, "connection ended with an error");
                    }
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
