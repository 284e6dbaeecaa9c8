//! One typed configuration struct, built from defaults < `outpost.toml` < environment and
//! validated once at start. A bad value stops start-up with a message naming the setting.

pub mod settings;
pub mod sources;
pub mod upstream;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::alerts::AlertRules;
use crate::delivery::{AddressPolicy, Cidr, Outbound, ResolveOverrides};
use crate::disk_budget::Limits;
use crate::model::destination_type::WebhookMode;
use crate::model::ids::{IdGenerator, IdKind};
use crate::model::retry::RetryPolicy;
use crate::model::signing::{SignatureAlgorithm, SignatureEncoding};
use crate::operator_events::{OperatorEventSettings, SinkSettings, TopicFilter};
use sources::RawValues;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("invalid {setting}={value:?}: {reason}")]
    Invalid {
        setting: &'static str,
        value: String,
        reason: String,
    },
}

/// How a webhook system header (`event-id`, `signature`, `timestamp`, `topic`) is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderName {
    /// `<prefix><key>`.
    Prefixed,
    /// Exactly this name.
    Custom(String),
    /// Not sent.
    Omitted,
}

#[derive(Clone, Debug)]
pub struct WebhookSettings {
    pub mode: WebhookMode,
    pub header_prefix: String,
    pub event_id_header: HeaderName,
    pub signature_header: HeaderName,
    pub timestamp_header: HeaderName,
    pub topic_header: HeaderName,
    pub signature_content_template: String,
    pub signature_header_template: String,
    pub signature_encoding: SignatureEncoding,
    pub signature_algorithm: SignatureAlgorithm,
    pub signing_secret_template: String,
    pub max_response_body_bytes: usize,
    pub include_millisecond_timestamp: bool,
}

/// How log records are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per record.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// What one client connection may take of the server (`HTTP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest request line plus headers, in bytes (431 above).
    pub max_header_bytes: usize,
    /// Most header fields in one request (431 above).
    pub max_headers: usize,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Longest quiet spell between two requests on a keep-alive connection.
    pub idle_timeout: Duration,
    /// Longest a request's line and headers may take to arrive.
    pub header_read_timeout: Duration,
    /// Longest a request body may take to arrive once it is read.
    pub body_read_timeout: Duration,
}

/// A per-caller token bucket (`API_RATE_LIMIT_*`): `burst` requests at once, refilled at
/// `per_second`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// Every setting outpost uses, typed.
#[derive(Clone, Debug)]
pub struct Config {
    pub log_level: String,
    pub log_format: LogFormat,
    pub api_host: String,
    pub api_port: u16,
    pub api_key: Option<String>,
    pub api_jwt_secret: Option<String>,
    /// `AES_ENCRYPTION_SECRET`: seals destination secrets in the store; generated when unset.
    pub aes_encryption_secret: Option<String>,
    pub auth_disabled: bool,
    /// `METRICS_AUTH_DISABLED`: `GET /metrics` needs no credentials.
    pub metrics_auth_disabled: bool,
    pub max_request_body_bytes: usize,
    /// `HTTP_*`: what one client connection may take of the server.
    pub http: HttpLimits,
    /// `API_RATE_LIMIT_*`: requests per caller; `None` when off.
    pub rate_limit: Option<RateLimit>,
    pub data_dir: PathBuf,
    /// `DATA_MAX_BYTES` and `DATA_MIN_FREE_BYTES`: when publishing pauses.
    pub disk_limits: Limits,
    /// `DATA_COMMIT_INTERVAL_MS`: least time between two commits under concurrent load.
    pub commit_interval: Duration,
    pub deployment_id: Option<String>,
    /// `None` when `TOPICS` is unset (upstream answers `null` on `GET /topics`).
    pub topics: Option<Vec<String>>,
    pub topics_allow_wildcards: bool,
    pub max_destinations_per_tenant: usize,
    pub http_user_agent: String,
    pub ids: IdGenerator,
    pub webhook: WebhookSettings,
    pub publish_idempotency_ttl_seconds: u64,
    pub retry: RetryPolicy,
    pub delivery_timeout: Duration,
    pub delivery_max_concurrency: usize,
    pub delivery_max_concurrency_per_destination: usize,
    /// `DELIVERY_DENY_CIDRS`, `DELIVERY_ALLOW_CIDRS`, `DELIVERY_RESOLVE_OVERRIDES`: which
    /// addresses deliveries may connect to, and names resolved without DNS.
    pub outbound: Outbound,
    pub shutdown_timeout: Duration,
    /// How long events and attempts are kept (`LOG_RETENTION_TTL_SECONDS` when above 0, else
    /// `LOG_RETENTION_TTL_DAYS`); zero keeps everything.
    pub log_retention_ttl: Duration,
    /// `ALERT_*`: consecutive-failure and exhausted-retries alerts, auto-disable.
    pub alerts: AlertRules,
    /// `OPERATOR_EVENTS_*`: which operator events are emitted and where they go.
    pub operator_events: OperatorEventSettings,
    /// The layered raw values, kept for `outpost config`.
    pub raw: RawValues,
    /// Upstream settings present in the environment or the file that outpost does not act on
    /// (see `upstream.rs`), named in a warning at start.
    pub unacted_settings: Vec<String>,
}

struct Reader<'a> {
    raw: &'a RawValues,
}

impl Reader<'_> {
    fn get(&self, name: &'static str) -> Option<&str> {
        self.raw.get(name).map(String::as_str)
    }
    fn text(&self, name: &'static str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }
    fn invalid(&self, name: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            setting: name,
            value: self.text(name),
            reason: reason.into(),
        }
    }
    fn boolean(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self
            .get(name)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "false" | "0" | "no" | "off" => Ok(false),
            "true" | "1" | "yes" | "on" => Ok(true),
            _ => Err(self.invalid(name, "expected true or false")),
        }
    }
    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ConfigError> {
        self.get(name)
            .unwrap_or("")
            .trim()
            .parse()
            .map_err(|_| self.invalid(name, "expected a non-negative whole number"))
    }
    fn positive<T: std::str::FromStr + PartialOrd + From<u8>>(
        &self,
        name: &'static str,
    ) -> Result<T, ConfigError> {
        let value: T = self.number(name)?;
        if value < T::from(1u8) {
            return Err(self.invalid(name, "must be at least 1"));
        }
        Ok(value)
    }
    fn optional(&self, name: &'static str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_string)
    }
    fn header_name(
        &self,
        name: &'static str,
        disable: &'static str,
    ) -> Result<HeaderName, ConfigError> {
        match self.get(name) {
            Some(value) if value.trim().is_empty() => Ok(HeaderName::Omitted),
            Some(value) => {
                if !valid_header_name(value) {
                    return Err(self.invalid(name, "not a valid HTTP header name"));
                }
                if RESERVED_HEADERS.contains(&value.to_ascii_lowercase().as_str()) {
                    return Err(self.invalid(name, "reserved header name"));
                }
                Ok(HeaderName::Custom(value.to_string()))
            }
            None if self.boolean(disable)? => Ok(HeaderName::Omitted),
            None => Ok(HeaderName::Prefixed),
        }
    }
}

/// Headers a destination or setting may not override.
pub const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "connection",
    "user-agent",
];

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]*$`, upstream's custom header name rule.
pub fn valid_header_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_deployment_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Seconds of a timeout setting: a whole number from 1 to a day.
fn timeout_seconds(r: &Reader<'_>, name: &'static str) -> Result<Duration, ConfigError> {
    let seconds: u64 = r.positive(name)?;
    if seconds > 86_400 {
        return Err(r.invalid(name, "must be at most 86400"));
    }
    Ok(Duration::from_secs(seconds))
}

/// `HTTP_*`: header, connection and read-deadline limits.
fn http_limits(r: &Reader<'_>) -> Result<HttpLimits, ConfigError> {
    let max_header_bytes: usize = r.positive("HTTP_MAX_HEADER_BYTES")?;
    if !(1024..=1 << 20).contains(&max_header_bytes) {
        return Err(r.invalid("HTTP_MAX_HEADER_BYTES", "must be from 1024 to 1048576"));
    }
    let max_headers: usize = r.positive("HTTP_MAX_HEADERS")?;
    if max_headers > 1000 {
        return Err(r.invalid("HTTP_MAX_HEADERS", "must be from 1 to 1000"));
    }
    let max_connections: usize = r.positive("HTTP_MAX_CONNECTIONS")?;
    if max_connections > 1_000_000 {
        return Err(r.invalid("HTTP_MAX_CONNECTIONS", "must be from 1 to 1000000"));
    }
    Ok(HttpLimits {
        max_header_bytes,
        max_headers,
        max_connections,
        idle_timeout: timeout_seconds(r, "HTTP_IDLE_TIMEOUT_SECONDS")?,
        header_read_timeout: timeout_seconds(r, "HTTP_HEADER_READ_TIMEOUT_SECONDS")?,
        body_read_timeout: timeout_seconds(r, "HTTP_BODY_READ_TIMEOUT_SECONDS")?,
    })
}

/// `API_RATE_LIMIT_*`: off when the rate is 0; a burst of 0 takes the rate.
fn rate_limit(r: &Reader<'_>) -> Result<Option<RateLimit>, ConfigError> {
    let per_second: u32 = r.number("API_RATE_LIMIT_PER_SECOND")?;
    let burst: u32 = r.number("API_RATE_LIMIT_BURST")?;
    if per_second > 1_000_000 {
        return Err(r.invalid("API_RATE_LIMIT_PER_SECOND", "must be at most 1000000"));
    }
    if burst > 1_000_000 {
        return Err(r.invalid("API_RATE_LIMIT_BURST", "must be at most 1000000"));
    }
    Ok((per_second > 0).then_some(RateLimit {
        per_second,
        burst: if burst == 0 { per_second } else { burst },
    }))
}

/// `ALERT_*`: unset and set-empty differ for the count and the window (see `settings.rs`).
fn alert_rules(r: &Reader<'_>, retry: &RetryPolicy) -> Result<AlertRules, ConfigError> {
    let consecutive_failure_count = match r.get("ALERT_CONSECUTIVE_FAILURE_COUNT") {
        None => Some(100),
        Some(text) if text.trim().is_empty() => None,
        Some(_) => Some(r.positive("ALERT_CONSECUTIVE_FAILURE_COUNT")?),
    };
    let exhausted_retries_window_seconds = match r.get("ALERT_EXHAUSTED_RETRIES_WINDOW_SECONDS") {
        None => Some(3600),
        Some(text) if text.trim().is_empty() => None,
        Some(_) => Some(r.number("ALERT_EXHAUSTED_RETRIES_WINDOW_SECONDS")?),
    };
    Ok(AlertRules {
        consecutive_failure_count,
        auto_disable: r.boolean("ALERT_AUTO_DISABLE_DESTINATION")?,
        exhausted_retries_window_seconds,
        max_retries: retry.max_retries(),
    })
}

/// `OPERATOR_EVENTS_*`: the topics, the HTTP sink and the deployment id of the envelope.
fn operator_event_settings(
    r: &Reader<'_>,
    deployment_id: Option<String>,
) -> Result<OperatorEventSettings, ConfigError> {
    let sink = match r.optional("OPERATOR_EVENTS_HTTP_URL") {
        None => None,
        Some(url) => {
            let parsed: Option<hyper::Uri> = url.parse().ok();
            let usable = parsed.as_ref().is_some_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
            });
            if !usable {
                return Err(r.invalid("OPERATOR_EVENTS_HTTP_URL", "expected an http or https URL"));
            }
            Some(SinkSettings::Http {
                url,
                signing_secret: r.optional("OPERATOR_EVENTS_HTTP_SIGNING_SECRET"),
            })
        }
    };
    Ok(OperatorEventSettings {
        topics: TopicFilter::parse(&r.text("OPERATOR_EVENTS_TOPICS")),
        sink,
        deployment_id,
    })
}

/// `DELIVERY_DENY_CIDRS`, `DELIVERY_ALLOW_CIDRS` and `DELIVERY_RESOLVE_OVERRIDES`.
fn outbound(r: &Reader<'_>) -> Result<Outbound, ConfigError> {
    let cidrs = |name: &'static str| {
        Cidr::parse_list(&r.text(name)).map_err(|err| r.invalid(name, err.to_string()))
    };
    let policy = AddressPolicy::new(
        cidrs("DELIVERY_DENY_CIDRS")?,
        cidrs("DELIVERY_ALLOW_CIDRS")?,
    );
    let resolve_overrides = ResolveOverrides::parse(&r.text("DELIVERY_RESOLVE_OVERRIDES"))
        .map_err(|err| r.invalid("DELIVERY_RESOLVE_OVERRIDES", err.to_string()))?;
    Ok(Outbound {
        policy,
        resolve_overrides,
    })
}

/// The log retention TTL: `LOG_RETENTION_TTL_SECONDS` when set above 0, else
/// `LOG_RETENTION_TTL_DAYS` (zero: keep everything).
fn retention_ttl(r: &Reader<'_>) -> Result<Duration, ConfigError> {
    let days: u64 = r.number("LOG_RETENTION_TTL_DAYS")?;
    let seconds: u64 = match r.get("LOG_RETENTION_TTL_SECONDS").map(str::trim) {
        None | Some("") => 0,
        Some(_) => r.number("LOG_RETENTION_TTL_SECONDS")?,
    };
    Ok(if seconds > 0 {
        Duration::from_secs(seconds)
    } else {
        Duration::from_secs(days.saturating_mul(86_400))
    })
}

impl Config {
    /// Loads the configuration from defaults, the file (explicit or `./outpost.toml`) and the
    /// process environment.
    pub fn load(explicit_file: Option<&Path>) -> Result<Config, ConfigError> {
        let file = sources::config_file_path(explicit_file);
        let mut unacted = Vec::new();
        let raw = sources::layered_noting(
            file.as_deref(),
            &|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()),
            &mut unacted,
        )?;
        unacted.extend(
            std::env::vars_os()
                .filter_map(|(name, _)| name.into_string().ok())
                .filter(|name| self::upstream::classify(name).is_some()),
        );
        unacted.sort();
        unacted.dedup();
        let mut config = Config::from_raw(raw)?;
        config.unacted_settings = unacted;
        Ok(config)
    }

    /// Defaults overlaid with the settings `lookup` answers for (by upstream variable name),
    /// without reading a file or the process environment: how an embedding program or a test
    /// configures a server it starts in-process.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_raw(sources::layered(None, lookup)?)
    }

    /// Parses and validates layered raw values.
    pub fn from_raw(raw: RawValues) -> Result<Config, ConfigError> {
        let r = Reader { raw: &raw };
        let deployment_id = r.optional("DEPLOYMENT_ID");
        if let Some(id) = &deployment_id {
            if !valid_deployment_id(id) {
                return Err(r.invalid(
                    "DEPLOYMENT_ID",
                    "must match ^[a-zA-Z0-9_-]+$, at most 64 characters",
                ));
            }
        }
        let topics = match r.get("TOPICS") {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => Some(text.split(',').map(str::to_string).collect()),
        };
        let kind = IdKind::from_setting(&r.text("IDGEN_TYPE"))
            .ok_or_else(|| r.invalid("IDGEN_TYPE", "expected uuidv4, uuidv7 or nanoid"))?;
        let mode = match r.text("DESTINATIONS_WEBHOOK_MODE").as_str() {
            "" | "default" => WebhookMode::Default,
            "standard" => WebhookMode::Standard,
            _ => return Err(r.invalid("DESTINATIONS_WEBHOOK_MODE", "expected default or standard")),
        };
        let header_prefix = match r.get("DESTINATIONS_WEBHOOK_HEADER_PREFIX") {
            Some(p) if p.trim().is_empty() => String::new(),
            Some(p) => p.to_string(),
            None if mode == WebhookMode::Standard => "webhook-".into(),
            None => "x-outpost-".into(),
        };
        let signature_encoding =
            SignatureEncoding::from_setting(&r.text("DESTINATIONS_WEBHOOK_SIGNATURE_ENCODING"))
                .ok_or_else(|| {
                    r.invalid(
                        "DESTINATIONS_WEBHOOK_SIGNATURE_ENCODING",
                        "expected hex or base64",
                    )
                })?;
        let webhook = WebhookSettings {
            mode,
            header_prefix,
            event_id_header: r.header_name(
                "DESTINATIONS_WEBHOOK_EVENT_ID_HEADER_NAME",
                "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_EVENT_ID_HEADER",
            )?,
            signature_header: r.header_name(
                "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_NAME",
                "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_SIGNATURE_HEADER",
            )?,
            timestamp_header: r.header_name(
                "DESTINATIONS_WEBHOOK_TIMESTAMP_HEADER_NAME",
                "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_TIMESTAMP_HEADER",
            )?,
            topic_header: r.header_name(
                "DESTINATIONS_WEBHOOK_TOPIC_HEADER_NAME",
                "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_TOPIC_HEADER",
            )?,
            signature_content_template: r.text("DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE"),
            signature_header_template: r.text("DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE"),
            signature_encoding,
            signature_algorithm: SignatureAlgorithm::from_setting(
                &r.text("DESTINATIONS_WEBHOOK_SIGNATURE_ALGORITHM"),
            ),
            signing_secret_template: r.text("DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE"),
            max_response_body_bytes: r.number("DESTINATIONS_WEBHOOK_MAX_RESPONSE_BODY_BYTES")?,
            include_millisecond_timestamp: r
                .boolean("DESTINATIONS_INCLUDE_MILLISECOND_TIMESTAMP")?,
        };
        let api_port: u16 = r.number("API_PORT")?;
        let max_request_body_bytes: usize = r.number("API_MAX_REQUEST_BODY_BYTES")?;
        if max_request_body_bytes == 0 {
            return Err(r.invalid("API_MAX_REQUEST_BODY_BYTES", "must be at least 1"));
        }
        let http = http_limits(&r)?;
        let rate_limit = rate_limit(&r)?;
        let data_dir = PathBuf::from(r.text("DATA_DIR"));
        if data_dir.as_os_str().is_empty() {
            return Err(r.invalid("DATA_DIR", "must not be empty"));
        }
        let disk_limits = Limits {
            max_bytes: match r.optional("DATA_MAX_BYTES") {
                None => None,
                Some(_) => Some(r.positive("DATA_MAX_BYTES")?),
            },
            min_free_bytes: r.number("DATA_MIN_FREE_BYTES")?,
        };
        let commit_interval_ms: u64 = r.number("DATA_COMMIT_INTERVAL_MS")?;
        if commit_interval_ms > 1_000 {
            return Err(r.invalid("DATA_COMMIT_INTERVAL_MS", "must be at most 1000"));
        }
        let schedule = match r.get("RETRY_SCHEDULE").map(str::trim) {
            None | Some("") => Vec::new(),
            Some(text) => text
                .split(',')
                .map(|p| p.trim().parse::<u64>().ok().filter(|s| *s >= 1))
                .collect::<Option<Vec<u64>>>()
                .ok_or_else(|| {
                    r.invalid(
                        "RETRY_SCHEDULE",
                        "expected comma-separated whole seconds, each at least 1",
                    )
                })?,
        };
        let retry = RetryPolicy {
            schedule,
            interval_seconds: r.positive("RETRY_INTERVAL_SECONDS")?,
            max_retry_limit: r.number("MAX_RETRY_LIMIT")?,
        };
        let log_format = match r.text("LOG_FORMAT").as_str() {
            "" | "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(r.invalid("LOG_FORMAT", "expected text or json")),
        };
        let alerts = alert_rules(&r, &retry)?;
        let operator_events = operator_event_settings(&r, deployment_id.clone())?;
        let config = Config {
            log_level: r.text("LOG_LEVEL"),
            log_format,
            api_host: r.text("API_HOST"),
            api_port,
            api_key: r.optional("API_KEY"),
            api_jwt_secret: r.optional("API_JWT_SECRET"),
            aes_encryption_secret: r.optional("AES_ENCRYPTION_SECRET"),
            auth_disabled: r.boolean("API_AUTH_DISABLED")?,
            metrics_auth_disabled: r.boolean("METRICS_AUTH_DISABLED")?,
            max_request_body_bytes,
            http,
            rate_limit,
            data_dir,
            disk_limits,
            commit_interval: Duration::from_millis(commit_interval_ms),
            deployment_id,
            topics,
            topics_allow_wildcards: r.boolean("TOPICS_ALLOW_WILDCARDS")?,
            max_destinations_per_tenant: r.number("MAX_DESTINATIONS_PER_TENANT")?,
            http_user_agent: r
                .optional("HTTP_USER_AGENT")
                .unwrap_or_else(|| format!("Outpost/{}", env!("CARGO_PKG_VERSION"))),
            ids: IdGenerator {
                kind,
                event_prefix: r.text("IDGEN_EVENT_PREFIX"),
                destination_prefix: r.text("IDGEN_DESTINATION_PREFIX"),
                attempt_prefix: r.text("IDGEN_ATTEMPT_PREFIX"),
            },
            webhook,
            publish_idempotency_ttl_seconds: r.number("PUBLISH_IDEMPOTENCY_KEY_TTL")?,
            retry,
            delivery_timeout: Duration::from_secs(r.positive("DELIVERY_TIMEOUT_SECONDS")?),
            delivery_max_concurrency: r.positive("DELIVERY_MAX_CONCURRENCY")?,
            delivery_max_concurrency_per_destination: r
                .positive("DELIVERY_MAX_CONCURRENCY_PER_DESTINATION")?,
            outbound: outbound(&r)?,
            shutdown_timeout: Duration::from_secs(r.number("SHUTDOWN_TIMEOUT_SECONDS")?),
            log_retention_ttl: retention_ttl(&r)?,
            alerts,
            operator_events,
            raw: raw.clone(),
            unacted_settings: Vec::new(),
        };
        if !matches!(
            config.log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(r.invalid("LOG_LEVEL", "expected error, warn, info, debug or trace"));
        }
        Ok(config)
    }

    /// The effective settings as `NAME=value` lines, secrets redacted. `generated_in` names
    /// the file holding a generated value of an unset secret, if there is one.
    pub fn redacted_lines(&self, generated_in: impl Fn(&str) -> Option<PathBuf>) -> Vec<String> {
        settings::SETTINGS
            .iter()
            .map(|s| match self.raw.get(s.name) {
                Some(_) if s.secret => format!("{}=<redacted>  # {}", s.name, s.about),
                Some(value) => format!("{}={value}  # {}", s.name, s.about),
                None => match generated_in(s.name).filter(|_| s.secret) {
                    Some(file) => format!(
                        "{}=<redacted>  # generated, kept in {}; {}",
                        s.name,
                        file.display(),
                        s.about
                    ),
                    None => format!("# {} is unset  # {}", s.name, s.about),
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let raw = sources::layered(None, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })?;
        Config::from_raw(raw)
    }

    #[test]
    fn defaults_match_upstream() {
        let c = raw_with(&[]).unwrap();
        assert_eq!(c.api_port, 3333);
        assert_eq!(c.max_destinations_per_tenant, 20);
        assert!(c.topics.is_none());
        assert_eq!(c.webhook.header_prefix, "x-outpost-");
        assert_eq!(c.webhook.max_response_body_bytes, 131_072);
        assert_eq!(c.data_dir, PathBuf::from("./outpost-data"));
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn http_limits_and_rate_limit_settings() {
        let d = raw_with(&[]).unwrap();
        assert_eq!(d.http.max_header_bytes, 16_384);
        assert_eq!(d.http.max_headers, 50);
        assert_eq!(d.http.max_connections, 4096);
        assert_eq!(d.http.idle_timeout, Duration::from_secs(60));
        assert_eq!(d.http.header_read_timeout, Duration::from_secs(10));
        assert_eq!(d.http.body_read_timeout, Duration::from_secs(30));
        assert_eq!(d.rate_limit, None);
        let on = raw_with(&[("API_RATE_LIMIT_PER_SECOND", "5")]).unwrap();
        assert_eq!(
            on.rate_limit,
            Some(RateLimit {
                per_second: 5,
                burst: 5
            })
        );
        let burst = raw_with(&[
            ("API_RATE_LIMIT_PER_SECOND", "5"),
            ("API_RATE_LIMIT_BURST", "20"),
        ])
        .unwrap();
        assert_eq!(burst.rate_limit.map(|r| r.burst), Some(20));
        for (name, value) in [
            ("HTTP_MAX_HEADER_BYTES", "100"),
            ("HTTP_MAX_HEADERS", "0"),
            ("HTTP_MAX_CONNECTIONS", "-1"),
            ("HTTP_IDLE_TIMEOUT_SECONDS", "0"),
            ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "90000"),
            ("HTTP_BODY_READ_TIMEOUT_SECONDS", "soon"),
            ("API_RATE_LIMIT_PER_SECOND", "1.5"),
            ("API_RATE_LIMIT_BURST", "2000000"),
        ] {
            let err = raw_with(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn disk_budget_settings() {
        let d = raw_with(&[]).unwrap();
        assert_eq!(d.disk_limits.max_bytes, None);
        assert_eq!(d.disk_limits.min_free_bytes, 256 << 20);
        let c = raw_with(&[("DATA_MAX_BYTES", "1000"), ("DATA_MIN_FREE_BYTES", "0")]).unwrap();
        assert_eq!(c.disk_limits.max_bytes, Some(1000));
        assert!(!c.disk_limits.unlimited());
        let off = raw_with(&[("DATA_MAX_BYTES", ""), ("DATA_MIN_FREE_BYTES", "0")]).unwrap();
        assert!(off.disk_limits.unlimited());
        for (name, value) in [
            ("DATA_MAX_BYTES", "0"),
            ("DATA_MAX_BYTES", "1G"),
            ("DATA_MIN_FREE_BYTES", "-1"),
        ] {
            let err = raw_with(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn log_format() {
        let c = raw_with(&[("LOG_FORMAT", "json")]).unwrap();
        assert_eq!(c.log_format, LogFormat::Json);
        let err = raw_with(&[("LOG_FORMAT", "xml")]).unwrap_err().to_string();
        assert!(err.contains("LOG_FORMAT"), "{err}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = raw_with(&[("API_PORT", "seventy")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("API_PORT"), "{err}");
        let err = raw_with(&[("TOPICS_ALLOW_WILDCARDS", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("TOPICS_ALLOW_WILDCARDS"), "{err}");
        let err = raw_with(&[("DEPLOYMENT_ID", "a b")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("DEPLOYMENT_ID"), "{err}");
    }

    #[test]
    fn retry_settings() {
        let c = raw_with(&[("RETRY_SCHEDULE", "1, 5,10")]).unwrap();
        assert_eq!(c.retry.schedule, vec![1, 5, 10]);
        assert_eq!(c.retry.max_retries(), 3);
        assert!(raw_with(&[("RETRY_SCHEDULE", "1,0")]).is_err());
        assert!(raw_with(&[("RETRY_INTERVAL_SECONDS", "0")]).is_err());
        assert!(raw_with(&[("DELIVERY_MAX_CONCURRENCY", "0")]).is_err());
        let d = raw_with(&[]).unwrap();
        assert_eq!(d.retry.max_retries(), 10);
        assert_eq!(d.delivery_timeout, Duration::from_secs(5));
    }

    #[test]
    fn topics_split_on_commas_untrimmed() {
        let c = raw_with(&[("TOPICS", "user.created, user.deleted")]).unwrap();
        assert_eq!(
            c.topics.unwrap(),
            vec!["user.created".to_string(), " user.deleted".to_string()]
        );
        assert!(raw_with(&[("TOPICS", "  ")]).unwrap().topics.is_none());
    }

    #[test]
    fn header_directives() {
        let c = raw_with(&[
            ("DESTINATIONS_WEBHOOK_TOPIC_HEADER_NAME", ""),
            ("DESTINATIONS_WEBHOOK_EVENT_ID_HEADER_NAME", "X-Id"),
            (
                "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_TIMESTAMP_HEADER",
                "true",
            ),
        ])
        .unwrap();
        assert_eq!(c.webhook.topic_header, HeaderName::Omitted);
        assert_eq!(c.webhook.event_id_header, HeaderName::Custom("X-Id".into()));
        assert_eq!(c.webhook.timestamp_header, HeaderName::Omitted);
        assert_eq!(c.webhook.signature_header, HeaderName::Prefixed);
        assert!(raw_with(&[("DESTINATIONS_WEBHOOK_TOPIC_HEADER_NAME", "Host")]).is_err());
    }

    #[test]
    fn upstream_settings_in_the_file_are_noted_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.toml");
        std::fs::write(
            &path,
            "redis_host = \"r\"\nportal_logo = \"l\"\napi_port = 4000\n",
        )
        .unwrap();
        let mut unacted = Vec::new();
        let raw = sources::layered_noting(Some(&path), &|_| None, &mut unacted).unwrap();
        unacted.sort();
        assert_eq!(unacted, ["PORTAL_LOGO", "REDIS_HOST"]);
        assert_eq!(Config::from_raw(raw).unwrap().api_port, 4000);
        // A name upstream does not have either is still refused.
        std::fs::write(&path, "api_prot = 1\n").unwrap();
        assert!(sources::layered(Some(&path), &|_| None).is_err());
    }

    #[test]
    fn file_layer_sits_between_defaults_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.toml");
        std::fs::write(
            &path,
            "api_port = 4000\ntopics = [\"a\", \"b\"]\nmax_destinations_per_tenant = 5\n",
        )
        .unwrap();
        let raw = sources::layered(Some(&path), &|name| {
            (name == "API_PORT").then(|| "5000".to_string())
        })
        .unwrap();
        let c = Config::from_raw(raw).unwrap();
        assert_eq!(c.api_port, 5000);
        assert_eq!(c.max_destinations_per_tenant, 5);
        assert_eq!(c.topics.unwrap(), vec!["a".to_string(), "b".to_string()]);
        std::fs::write(&path, "no_such_setting = 1\n").unwrap();
        let err = sources::layered(Some(&path), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such_setting"), "{err}");
    }

    #[test]
    fn retention_ttl_defaults_to_30_days_and_takes_upstreams_name() {
        let days = |n: u64| Duration::from_secs(n * 86_400);
        assert_eq!(raw_with(&[]).unwrap().log_retention_ttl, days(30));
        let c = raw_with(&[("CLICKHOUSE_LOG_RETENTION_TTL_DAYS", "0")]).unwrap();
        assert_eq!(c.log_retention_ttl, Duration::ZERO);
        // The setting's own name wins over the alias.
        let c = raw_with(&[
            ("CLICKHOUSE_LOG_RETENTION_TTL_DAYS", "0"),
            ("LOG_RETENTION_TTL_DAYS", "7"),
        ])
        .unwrap();
        assert_eq!(c.log_retention_ttl, days(7));
        let err = raw_with(&[("CLICKHOUSE_LOG_RETENTION_TTL_DAYS", "soon")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("LOG_RETENTION_TTL_DAYS"), "{err}");
        // In the file too, under either key.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.toml");
        std::fs::write(
            &path,
            "log_retention_ttl_days = 3\nclickhouse_log_retention_ttl_days = 9\n",
        )
        .unwrap();
        let raw = sources::layered(Some(&path), &|_| None).unwrap();
        assert_eq!(Config::from_raw(raw).unwrap().log_retention_ttl, days(3));
        std::fs::write(&path, "clickhouse_log_retention_ttl_days = 9\n").unwrap();
        let raw = sources::layered(Some(&path), &|_| None).unwrap();
        assert_eq!(Config::from_raw(raw).unwrap().log_retention_ttl, days(9));
    }

    #[test]
    fn retention_ttl_in_seconds_overrides_the_days() {
        let ttl = |pairs: &[(&str, &str)]| raw_with(pairs).unwrap().log_retention_ttl;
        assert_eq!(
            ttl(&[("LOG_RETENTION_TTL_SECONDS", "5")]),
            Duration::from_secs(5)
        );
        // Above 0 it wins over the days, also over days = 0 (retention off).
        assert_eq!(
            ttl(&[
                ("LOG_RETENTION_TTL_DAYS", "0"),
                ("LOG_RETENTION_TTL_SECONDS", "90")
            ]),
            Duration::from_secs(90)
        );
        assert_eq!(
            ttl(&[
                ("CLICKHOUSE_LOG_RETENTION_TTL_DAYS", "2"),
                ("LOG_RETENTION_TTL_SECONDS", "1")
            ]),
            Duration::from_secs(1)
        );
        // 0 or empty: the days apply.
        for unset in ["0", "", " ", " 0 "] {
            assert_eq!(
                ttl(&[
                    ("LOG_RETENTION_TTL_DAYS", "2"),
                    ("LOG_RETENTION_TTL_SECONDS", unset)
                ]),
                Duration::from_secs(2 * 86_400),
                "{unset:?}"
            );
        }
        assert_eq!(
            ttl(&[
                ("LOG_RETENTION_TTL_DAYS", "0"),
                ("LOG_RETENTION_TTL_SECONDS", "0")
            ]),
            Duration::ZERO
        );
        for bad in ["-5", "5s", "1.5"] {
            let err = raw_with(&[("LOG_RETENTION_TTL_SECONDS", bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains("LOG_RETENTION_TTL_SECONDS"), "{err}");
        }
        // In the file too.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outpost.toml");
        std::fs::write(&path, "log_retention_ttl_seconds = 30\n").unwrap();
        let raw = sources::layered(Some(&path), &|_| None).unwrap();
        assert_eq!(
            Config::from_raw(raw).unwrap().log_retention_ttl,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn delivery_address_policy_settings() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(
            settings::find("DELIVERY_DENY_CIDRS").and_then(|s| s.default),
            Some(crate::delivery::DEFAULT_DENY_CIDRS)
        );
        let d = raw_with(&[]).unwrap();
        assert_eq!(d.outbound, Outbound::default());
        assert!(d.outbound.policy.check(ip("169.254.169.254")).is_err());
        assert!(d.outbound.policy.check(ip("127.0.0.1")).is_ok());
        let c = raw_with(&[
            ("DELIVERY_DENY_CIDRS", "127.0.0.0/8, ::1"),
            ("DELIVERY_ALLOW_CIDRS", "127.0.0.1/32"),
            ("DELIVERY_RESOLVE_OVERRIDES", "hook.test=127.0.0.2"),
        ])
        .unwrap();
        assert!(c.outbound.policy.check(ip("127.0.0.1")).is_ok());
        assert!(c.outbound.policy.check(ip("127.0.0.2")).is_err());
        assert!(c.outbound.policy.check(ip("::1")).is_err());
        // Set empty: nothing denied.
        let open = raw_with(&[("DELIVERY_DENY_CIDRS", "")]).unwrap();
        assert!(open.outbound.policy.check(ip("169.254.169.254")).is_ok());
        for (name, value) in [
            ("DELIVERY_DENY_CIDRS", "10.0.0.0/33"),
            ("DELIVERY_ALLOW_CIDRS", "localhost"),
            ("DELIVERY_RESOLVE_OVERRIDES", "hook.test"),
        ] {
            let err = raw_with(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn example_file_documents_every_setting() {
        let example = include_str!("../../outpost.toml.example");
        for setting in settings::SETTINGS {
            let key = setting.name.to_ascii_lowercase();
            assert!(
                example.contains(&format!("{key} =")),
                "{key} missing from outpost.toml.example"
            );
        }
    }
}
