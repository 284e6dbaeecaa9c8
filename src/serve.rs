//! `outpost serve`: the process around the library server — loads the configuration, sets up
//! logging and the runtime, binds the port (before anything touches DATA_DIR, so a port in use
//! leaves nothing behind), starts the server, tells systemd it is ready (and keeps its
//! watchdog fed while the workers are healthy, see `watchdog.rs`), and shuts it down in order
//! on SIGTERM or SIGINT.

use std::path::Path;

use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::notify;
use crate::server::{self, ServeError};
use crate::watchdog;

pub fn run(config_file: Option<&Path>) -> Result<(), ServeError> {
    let config = Config::load(config_file)?;
    crate::logging::init(&config.log_level, config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(serve(config))
}

/// SIGTERM and SIGINT, listened for from before the server starts: a signal that arrives while
/// it is starting (as soon as it logs `listening`) waits here instead of killing the process.
struct ShutdownSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    fn install() -> ShutdownSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(int)) => Some((term, int)),
                _ => None,
            };
            ShutdownSignals { streams }
        }
        #[cfg(not(unix))]
        {
            ShutdownSignals {}
        }
    }

    async fn received(self) {
        #[cfg(unix)]
        {
            if let Some((mut term, mut int)) = self.streams {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
                }
                return;
            }
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(config: Config) -> Result<(), ServeError> {
    let signals = ShutdownSignals::install();
    // Settings that only need reading are checked before the port is taken, and the port
    // before DATA_DIR is touched: a bad template or a port in use leaves nothing behind.
    server::check_settings(&config)?;
    let addr = format!("{}:{}", config.api_host, config.api_port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr: addr.clone(),
            reason: e.to_string(),
        })?;
    let handle = server::start(listener, config, Clock::system()).await?;
    notify::notify("READY=1");
    let (stop_watchdog, watchdog_stopped) = tokio::sync::oneshot::channel::<()>();
    match watchdog::interval_from_env() {
        Ok(Some(interval)) => {
            tracing::info!(
                "systemd watchdog: pinging every {} ms while healthy",
                interval.as_millis()
            );
            let stopped = async {
                let _ = watchdog_stopped.await;
            };
            tokio::spawn(watchdog::run(handle.liveness(), interval, stopped));
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "systemd watchdog: not pinging"),
    }
    signals.received().await;
    let _ = stop_watchdog.send(());
    notify::notify("STOPPING=1");
    handle.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
