//! `outpost serve`: loads the configuration, binds the port (before touching DATA_DIR, so a
//! port in use leaves nothing behind), takes the data directory, resolves credentials, opens the
//! store, serves until SIGTERM or SIGINT, then shuts down in order.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::{self, AppState, AuthKeys};
use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::credentials::{self, CredentialsError, KeySource};
use crate::delivery::{
    Dispatcher, DispatcherSettings, Providers, WebhookConfigError, WebhookSender,
};
use crate::instance::{self, InstanceError};
use crate::model::destination_type::{Registry, RegistryError};
use crate::model::secret::SecretTemplate;
use crate::model::template::TemplateError;
use crate::model::topics::TopicRules;
use crate::notify;
use crate::store::{Store, StoreError, STORE_FILE};

/// How long open requests may take to finish after a shutdown signal.
const HTTP_GRACE: Duration = Duration::from_secs(10);

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
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

pub fn run(config_file: Option<&Path>) -> Result<(), ServeError> {
    let config = Config::load(config_file)?;
    crate::logging::init(&config.log_level, config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(config))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
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

async fn bind(config: &Config) -> Result<(TcpListener, SocketAddr), ServeError> {
    let addr = format!("{}:{}", config.api_host, config.api_port);
    let failed = |e: std::io::Error| ServeError::Bind {
        addr: addr.clone(),
        reason: e.to_string(),
    };
    let listener = TcpListener::bind(&addr).await.map_err(failed)?;
    let local = listener.local_addr().map_err(failed)?;
    Ok((listener, local))
}

async fn serve(config: Config) -> Result<(), ServeError> {
    // Everything that only reads the configuration comes first, then the port: a bad template
    // or a port in use stops start-up before anything is created in DATA_DIR.
    let secret_template = SecretTemplate::parse(&config.webhook.signing_secret_template)
        .map_err(ServeError::SecretTemplate)?;
    let registry = Registry::new(config.webhook.mode)?;
    let webhook = WebhookSender::new(
        &config.webhook,
        config.http_user_agent.clone(),
        config.delivery_timeout,
        config.delivery_max_concurrency_per_destination,
    )?;
    let (listener, local) = bind(&config).await?;
    crate::store::create_private_dir(&config.data_dir).map_err(|e| ServeError::DataDir {
        path: config.data_dir.display().to_string(),
        reason: e.to_string(),
    })?;
    let instance_lock = instance::acquire(&config.data_dir, STORE_FILE)?;
    let resolved = credentials::resolve(
        &config.data_dir,
        config.api_key.as_deref(),
        config.api_jwt_secret.as_deref(),
        config.auth_disabled,
    )?;
    log_key_source(&resolved.api_key_source);
    let (store, store_thread) = Store::open(&config.data_dir)?;
    let clock = Clock::system();
    let dispatcher = Dispatcher::start(
        store.clone(),
        Providers { webhook },
        clock.clone(),
        DispatcherSettings {
            max_concurrency: config.delivery_max_concurrency,
            max_per_destination: config.delivery_max_concurrency_per_destination,
            retry: config.retry.clone(),
            ids: config.ids.clone(),
        },
    )?;
    tracing::info!(
        "delivery policy: {}; attempt timeout {} s; at most {} deliveries in flight, {} per \
         destination",
        config.retry.describe(),
        config.delivery_timeout.as_secs(),
        config.delivery_max_concurrency,
        config.delivery_max_concurrency_per_destination
    );
    let state = Arc::new(AppState {
        keys: AuthKeys::new(
            resolved.api_key,
            &resolved.jwt_secret,
            config.deployment_id.clone(),
        ),
        topic_rules: TopicRules {
            topics: config.topics.clone().unwrap_or_default(),
            allow_wildcards: config.topics_allow_wildcards,
        },
        registry,
        secret_template,
        store,
        clock,
        config,
    });
    tracing::info!(addr = %local, data_dir = %state.config.data_dir.display(), "listening");
    notify::notify("READY=1");
    let shutdown = async {
        shutdown_signal().await;
        notify::notify("STOPPING=1");
    };
    api::serve(listener, state.clone(), shutdown, HTTP_GRACE).await;
    dispatcher.shutdown(state.config.shutdown_timeout).await;
    drop(state);
    if !store_thread.join(Duration::from_secs(10)).await {
        tracing::warn!("the store writer was still busy at exit; acknowledged writes are durable");
    }
    drop(instance_lock);
    tracing::info!("stopped");
    Ok(())
}
