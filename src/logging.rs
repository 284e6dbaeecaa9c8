//! Log output: the `LOG_LEVEL` filter (outpost's own records at that level, its dependencies'
//! at `warn`) and the `LOG_FORMAT` writer on standard error — readable text lines, or one JSON
//! object per line for log shippers.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the process-wide subscriber; a second call is a no-op.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(format!("outpost={level},warn"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
