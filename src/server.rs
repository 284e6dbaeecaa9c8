//! The server as a library: [`start`] runs outpost on a listener the caller bound, with a
//! configuration (which names the data directory) and a [`Clock`], and returns a
//! [`ServerHandle`]. The handle's [`ServerHandle::shutdown`] stops accepting, drains in-flight
//! deliveries up to `SHUTDOWN_TIMEOUT_SECONDS`, flushes the audit log, lets the writer finish,
//! and returns.
//!
//! `outpost serve` (see `serve.rs`) and the integration tests both start the server this way;
//! only process concerns (signals, logging set-up, systemd notification) live outside.
//!
//! The handle also gives the server's [`Liveness`] (what `/healthz` reports, and what the
//! systemd watchdog follows) and a few seams that stop or wedge one worker, for tests of the
//! health check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};

use crate::api::{self, AppState, AuthKeys};
use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::credentials::{self, CredentialsError, KeySource};
use crate::delivery::{
    Dispatcher, DispatcherSettings, Providers, WebhookConfigError, WebhookProvider,
};
use crate::disk_budget::DiskBudget;
use crate::instance::{self, InstanceError};
use crate::liveness::{Heartbeat, Liveness};
use crate::model::destination_type::{DestinationKind, Registry, RegistryError};
use crate::model::secret::SecretTemplate;
use crate::model::topics::TopicRules;
use crate::operator_events::{HttpSink, Sender, SinkSettings};
use crate::retention::{self, Retention, RetentionStatus};
use crate::store::secrets::SecretBox;
use crate::store::writer::Stall;
use crate::store::{OutcomeRules, Store, StoreError, StoreThread, STORE_FILE};
use crate::telemetry::Metrics;
use crate::template::TemplateError;

/// How long open requests may take to finish after a shutdown signal.
const HTTP_GRACE: Duration = Duration::from_secs(10);
/// How long the writer may take to finish its last batch at exit.
const WRITER_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Instance(#[from] InstanceError),
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
    #[error("built-in destination type metadata is broken: {0}")]
    Registry(#[from] RegistryError),
    #[error("invalid DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE: {0}")]
    SecretTemplate(TemplateError),
    #[error("invalid webhook settings: {0}")]
    Webhook(#[from] WebhookConfigError),
    #[error("cannot start the audit log writer: {0}")]
    Audit(std::io::Error),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("operator events: {0}")]
    OperatorEvents(#[from] crate::operator_events::SinkError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    store: Store,
    clock: Clock,
    retention: Option<RetentionStatus>,
    liveness: Liveness,
    dispatcher_task: AbortHandle,
    retention_task: Option<AbortHandle>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many delivery tasks (first attempts and scheduled retries) are queued on disk.
    pub fn queued_deliveries(&self) -> Result<u64, StoreError> {
        self.store.queue_len()
    }

    /// How many queued delivery tasks are due by the server's clock. Zero means every delivery
    /// that is due has its outcome committed: nothing more happens until time moves on or
    /// something new is published.
    pub fn due_deliveries(&self) -> Result<u64, StoreError> {
        self.store.queue_due_len(self.clock.now_ms())
    }

    /// Whether the log retention sweep has deleted everything expired by the server's clock
    /// (except what it keeps for queued deliveries) and sleeps; always true with retention off
    /// (`LOG_RETENTION_TTL_DAYS=0` and no `LOG_RETENTION_TTL_SECONDS`).
    pub fn log_retention_idle(&self) -> bool {
        self.retention.as_ref().is_none_or(RetentionStatus::is_idle)
    }

    /// The workers' heartbeats: what `/healthz` reports.
    pub fn liveness(&self) -> Liveness {
        self.liveness.clone()
    }

    /// Test seam: aborts the dispatch loop, as if it had failed. `/healthz` then answers 503
    /// naming `dispatcher`; nothing is delivered until a restart.
    #[doc(hidden)]
    pub fn abort_dispatcher(&self) {
        self.dispatcher_task.abort();
    }

    /// Test seam: aborts the log retention sweep (when retention is on), as if it had failed.
    #[doc(hidden)]
    pub fn abort_retention(&self) {
        if let Some(task) = &self.retention_task {
            task.abort();
        }
    }

    /// Test seam: holds the store writer inside one job until the returned guard is dropped;
    /// meanwhile writes wait, and `/healthz` reports the writer stuck once the liveness stuck
    /// threshold has passed (see [`Liveness::set_stuck_after`]).
    #[doc(hidden)]
    pub async fn stall_writer(&self) -> Result<Stall, StoreError> {
        self.store.stall_writer().await
    }

    /// Stops accepting, lets open requests finish, drains in-flight deliveries (up to
    /// `SHUTDOWN_TIMEOUT_SECONDS`; any still running stay queued) and waits for the writer.
    pub async fn shutdown(self) {
        let ServerHandle {
            stop, task, store, ..
        } = self;
        drop(store);
        let _ = stop.send(());
        let _ = task.await;
    }
}

/// Says where the admin API key in force comes from; logged on every start.
fn log_key_source(source: &KeySource) {
    match source {
        KeySource::Configured => tracing::info!("admin API key: configured (API_KEY)"),
        KeySource::Stored(path) => tracing::info!(
            "admin API key: generated on an earlier start, read from {}",
            path.display()
        ),
        KeySource::Generated(path) => tracing::info!(
            "admin API key: generated now (first start) into {}",
            path.display()
        ),
        KeySource::Disabled => tracing::warn!(
            "API_AUTH_DISABLED=true: every request is served as admin without authentication"
        ),
    }
}

/// What start-up builds from the configuration alone, before anything touches DATA_DIR.
struct Prepared {
    secret_template: SecretTemplate,
    registry: Registry,
    webhook: WebhookProvider,
}

fn prepare(config: &Config) -> Result<Prepared, ServeError> {
    Ok(Prepared {
        secret_template: SecretTemplate::parse(&config.webhook.signing_secret_template)
            .map_err(ServeError::SecretTemplate)?,
        registry: Registry::new(config.webhook.mode)?,
        webhook: WebhookProvider::new(
            &config.webhook,
            &config.http_user_agent,
            config.delivery_timeout,
            config.delivery_max_concurrency_per_destination,
            config.outbound.clone(),
        )?,
    })
}

/// Checks the settings that need no data directory (templates, webhook header names), so a
/// caller can refuse a bad configuration before binding a port or touching DATA_DIR.
pub fn check_settings(config: &Config) -> Result<(), ServeError> {
    prepare(config).map(drop)
}

/// Logs the alert and operator event settings and starts the operator event sender when events
/// have somewhere to go.
fn start_operator_events(config: &Config, store: &Store) -> Result<Option<Sender>, ServeError> {
    tracing::info!("alerts: {}", config.alerts.describe());
    let settings = &config.operator_events;
    if !settings.topics.unknown.is_empty() {
        tracing::warn!(
            "OPERATOR_EVENTS_TOPICS names {}, which are not operator event topics; they are ignored",
            settings.topics.unknown.join(", ")
        );
    }
    let (line, warn) = settings.describe();
    if warn {
        tracing::warn!("{line}");
    } else {
        tracing::info!("{line}");
    }
    if store.outbox_len() > 0 {
        tracing::info!(
            waiting = store.outbox_len(),
            "operator events wait in the outbox"
        );
    }
    match &settings.sink {
        Some(SinkSettings::Http {
            url,
            signing_secret,
        }) => {
            let sink = HttpSink::new(url, signing_secret.as_deref(), &config.http_user_agent)?;
            Ok(Some(Sender::start(store.clone(), sink)))
        }
        None => Ok(None),
    }
}

/// Opens the store with the key its destination secrets are sealed with. When the secret kept
/// in `credentials.env` does not open it but the new one an interrupted `outpost rekey` left
/// beside it does, the rekey had sealed the store: that secret is promoted now.
fn open_store(
    config: &Config,
    resolved: &credentials::ResolvedCredentials,
    now_ms: i64,
) -> Result<(Store, StoreThread), ServeError> {
    let cipher = SecretBox::new(&resolved.encryption_secret)?;
    match Store::open_sealed(&config.data_dir, now_ms, cipher) {
        Err(StoreError::WrongEncryptionSecret) if resolved.encryption_secret_stored => {
            let Some(next) =
                credentials::stored(&config.data_dir, credentials::NEXT_ENCRYPTION_SECRET)?
            else {
                return Err(StoreError::WrongEncryptionSecret.into());
            };
            let opened = Store::open_sealed(&config.data_dir, now_ms, SecretBox::new(&next)?)?;
            credentials::store_value(
                &config.data_dir,
                credentials::ENCRYPTION_SECRET,
                &next,
                &[credentials::NEXT_ENCRYPTION_SECRET],
            )?;
            tracing::warn!(
                "finished an interrupted `outpost rekey`: the store was sealed with the new \
                 secret, which now replaces the old one in credentials.env"
            );
            Ok(opened)
        }
        other => Ok(other?),
    }
}

/// Starts outpost on `listener`: takes the data directory (one server per directory), resolves
/// credentials, opens the store, starts the dispatcher and serves the API until
/// [`ServerHandle::shutdown`].
pub async fn start(
    listener: TcpListener,
    config: Config,
    clock: Clock,
) -> Result<ServerHandle, ServeError> {
    let addr = listener.local_addr().map_err(|e| ServeError::Bind {
        addr: "listener".into(),
        reason: e.to_string(),
    })?;
    let Prepared {
        secret_template,
        registry,
        webhook,
    } = prepare(&config)?;
    crate::store::create_private_dir(&config.data_dir).map_err(|e| ServeError::DataDir {
        path: config.data_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let instance_lock = instance::acquire(&config.data_dir, STORE_FILE)?;
    let resolved = credentials::resolve(
        &config.data_dir,
        config.api_key.as_deref(),
        config.api_jwt_secret.as_deref(),
        config.aes_encryption_secret.as_deref(),
        config.auth_disabled,
    )?;
    log_key_source(&resolved.api_key_source);
    if let Some(warning) = crate::config::upstream::warning(&config.unacted_settings) {
        tracing::warn!("{warning}");
    }
    let (store, store_thread) = open_store(&config, &resolved, clock.now_ms())?;
    let metrics = Arc::new(Metrics::new(api::route_labels()));
    store.set_commit_interval(config.commit_interval);
    store.set_outcome_rules(OutcomeRules {
        alerts: config.alerts.clone(),
        events: config.operator_events.clone(),
        clock: clock.clone(),
    });
    let operator_events = start_operator_events(&config, &store)?;
    let dispatcher = Dispatcher::start(
        store.clone(),
        Providers::new().with(DestinationKind::Webhook, Arc::new(webhook)),
        clock.clone(),
        DispatcherSettings {
            max_concurrency: config.delivery_max_concurrency,
            max_per_destination: config.delivery_max_concurrency_per_destination,
            retry: config.retry.clone(),
            ids: config.ids.clone(),
            metrics: metrics.clone(),
        },
    )?;
    let retention = Retention::start(store.clone(), clock.clone(), config.log_retention_ttl);
    match retention::describe_ttl(config.log_retention_ttl) {
        None => tracing::info!("log retention: off (LOG_RETENTION_TTL_DAYS=0), everything is kept"),
        Some(ttl) => tracing::info!("log retention: events and attempts are kept {ttl}"),
    }
    let retention_status = retention.as_ref().map(Retention::status);
    let http_heartbeat = Heartbeat::new("http-server");
    let mut workers = vec![
        http_heartbeat.clone(),
        store.writer_stats().heartbeat.clone(),
        dispatcher.heartbeat(),
    ];
    workers.extend(retention.as_ref().map(Retention::heartbeat));
    let liveness = Liveness::new(workers);
    let dispatcher_task = dispatcher.abort_handle();
    let retention_task = retention.as_ref().map(Retention::abort_handle);
    tracing::info!(
        "delivery policy: {}; attempt timeout {} s; at most {} deliveries in flight, {} per \
         destination",
        config.retry.describe(),
        config.delivery_timeout.as_secs(),
        config.delivery_max_concurrency,
        config.delivery_max_concurrency_per_destination
    );
    tracing::info!("disk budget: {}", config.disk_limits.describe());
    let audit = AuditLog::start(&config.data_dir).map_err(ServeError::Audit)?;
    let state = Arc::new(AppState {
        keys: AuthKeys::new(
            resolved.api_key,
            &resolved.jwt_secret,
            config.deployment_id.clone(),
            clock.clone(),
        ),
        topic_rules: TopicRules {
            topics: config.topics.clone().unwrap_or_default(),
            allow_wildcards: config.topics_allow_wildcards,
        },
        registry,
        secret_template,
        store: store.clone(),
        clock: clock.clone(),
        disk_budget: DiskBudget::on_disk(
            config.disk_limits,
            &config.data_dir,
            &config.data_dir.join(STORE_FILE),
            clock.clone(),
        ),
        rate_limiter: config.rate_limit.map(api::RateLimiter::new),
        config,
        metrics,
        liveness: liveness.clone(),
        audit,
    });
    tracing::info!(addr = %addr, data_dir = %state.config.data_dir.display(), "listening");
    let (stop, stopped) = oneshot::channel::<()>();
    let http_running = http_heartbeat.start();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        api::serve(listener, state.clone(), shutdown, HTTP_GRACE).await;
        let audit_state = state.clone();
        if tokio::task::spawn_blocking(move || audit_state.audit.close())
            .await
            .is_err()
        {
            tracing::warn!("the audit log could not be closed");
        }
        drop(http_running);
        if let Some(retention) = retention {
            retention.shutdown().await;
        }
        dispatcher.shutdown(state.config.shutdown_timeout).await;
        if let Some(sender) = operator_events {
            sender.shutdown().await;
        }
        drop(state);
        if !store_thread.join(WRITER_GRACE).await {
            tracing::warn!(
                "the store writer was still busy at exit; acknowledged writes are durable"
            );
        }
        drop(instance_lock);
    });
    Ok(ServerHandle {
        addr,
        store,
        clock,
        retention: retention_status,
        liveness,
        dispatcher_task,
        retention_task,
        stop,
        task,
    })
}
