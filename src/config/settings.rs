//! The table of every setting outpost reads: its environment name (upstream's where upstream
//! has it), its built-in default, whether it is a secret, and a one-line description. The TOML
//! key of a setting is its environment name in lowercase.

/// One configurable value.
pub struct Setting {
    pub name: &'static str,
    /// `None` means "unset" (which some settings distinguish from empty).
    pub default: Option<&'static str>,
    pub secret: bool,
    pub about: &'static str,
}

const fn s(name: &'static str, default: Option<&'static str>, about: &'static str) -> Setting {
    Setting {
        name,
        default,
        secret: false,
        about,
    }
}

const fn secret(name: &'static str, about: &'static str) -> Setting {
    Setting {
        name,
        default: None,
        secret: true,
        about,
    }
}

pub const SETTINGS: &[Setting] = &[
    s(
        "LOG_LEVEL",
        Some("info"),
        "Log level: error, warn, info, debug (adds a line per request and per delivery attempt) or trace.",
    ),
    s(
        "LOG_FORMAT",
        Some("text"),
        "Log format: text (one readable line per record) or json (one JSON object per line).",
    ),
    s(
        "API_PORT",
        Some("3333"),
        "TCP port the API listens on (0 picks a free port).",
    ),
    s("API_HOST", Some("0.0.0.0"), "Address the API binds to."),
    secret(
        "API_KEY",
        "Admin API key. Unset: generated on first start and kept in DATA_DIR.",
    ),
    secret(
        "API_JWT_SECRET",
        "Key for tenant JWTs (HS256). Unset: generated like API_KEY.",
    ),
    secret(
        "AES_ENCRYPTION_SECRET",
        "Secret that destination credentials and delivery metadata are encrypted with in the store (AES-256-GCM). Unset: generated like API_KEY. Change it with `outpost rekey`.",
    ),
    s(
        "API_AUTH_DISABLED",
        Some("false"),
        "true serves every request as admin with no auth check.",
    ),
    s(
        "METRICS_AUTH_DISABLED",
        Some("false"),
        "true serves GET /metrics (Prometheus) without the admin API key, for scrapers on a trusted network.",
    ),
    s(
        "API_MAX_REQUEST_BODY_BYTES",
        Some("1048576"),
        "Largest request body accepted (413 above).",
    ),
    s(
        "HTTP_MAX_HEADER_BYTES",
        Some("16384"),
        "Largest request line plus headers accepted, in bytes; above it 431 with the JSON error body, and from twice it on the request is refused while it is read (431, empty body) and the connection closed.",
    ),
    s(
        "HTTP_MAX_HEADERS",
        Some("50"),
        "Most header fields a request may carry; above it 431 with the JSON error body, and from twice it on the request is refused while it is read (431, empty body) and the connection closed.",
    ),
    s(
        "HTTP_MAX_CONNECTIONS",
        Some("4096"),
        "Most client connections served at once; further connections wait in the listen backlog until one closes.",
    ),
    s(
        "HTTP_IDLE_TIMEOUT_SECONDS",
        Some("60"),
        "How long a keep-alive connection may sit between requests before it is closed.",
    ),
    s(
        "HTTP_HEADER_READ_TIMEOUT_SECONDS",
        Some("10"),
        "How long a client has to send a request's line and headers, from connecting or from the first byte after an idle spell; the connection is closed when they are late.",
    ),
    s(
        "HTTP_BODY_READ_TIMEOUT_SECONDS",
        Some("30"),
        "How long a client has to send a request body once the server reads it; a late body gets 408 and the connection is closed.",
    ),
    s(
        "API_RATE_LIMIT_PER_SECOND",
        Some("0"),
        "Requests per second each caller may make (the admin API key is one caller, each tenant's JWTs another), refilled continuously; above it 429 with Retry-After. 0 turns rate limiting off.",
    ),
    s(
        "API_RATE_LIMIT_BURST",
        Some("0"),
        "Requests a caller may make at once before API_RATE_LIMIT_PER_SECOND paces it; 0 means the same as API_RATE_LIMIT_PER_SECOND.",
    ),
    s(
        "DATA_DIR",
        Some("./outpost-data"),
        "Directory holding the redb store and generated keys.",
    ),
    s(
        "DATA_MAX_BYTES",
        None,
        "Largest the store file may grow; above it publish answers 503 (deliveries, reads and deletes go on). Unset: no limit.",
    ),
    s(
        "DATA_COMMIT_INTERVAL_MS",
        Some("5"),
        "Under concurrent load, least time between two durable commits of the store; writes arriving meanwhile share the next commit, which writes far less to storage (about 35 KB per 1 KiB event with 0, 14 KB with 5, 8.5 KB with 10, at 2,000 events/s) at the cost of up to this much added latency. A lone or sequential client never waits. 0 commits as soon as possible.",
    ),
    s(
        "DATA_MIN_FREE_BYTES",
        Some("268435456"),
        "Free space to keep on the file system holding DATA_DIR; below it publish answers 503. 0 disables the check.",
    ),
    s(
        "DEPLOYMENT_ID",
        None,
        "Deployment id added to tenant JWTs; ^[a-zA-Z0-9_-]{1,64}$.",
    ),
    s(
        "TOPICS",
        None,
        "Comma-separated list of allowed topics; empty allows any topic.",
    ),
    s(
        "TOPICS_ALLOW_WILDCARDS",
        Some("false"),
        "Allow `*` patterns in destination topics.",
    ),
    s(
        "MAX_DESTINATIONS_PER_TENANT",
        Some("20"),
        "Live destinations a tenant may have.",
    ),
    s(
        "HTTP_USER_AGENT",
        None,
        "User-Agent of deliveries; unset: Outpost/<version>.",
    ),
    s(
        "IDGEN_TYPE",
        Some("uuidv7"),
        "Generated id format: uuidv7 (time-ordered), uuidv4 or nanoid.",
    ),
    s(
        "IDGEN_EVENT_PREFIX",
        Some(""),
        "Prefix of generated event ids.",
    ),
    s(
        "IDGEN_DESTINATION_PREFIX",
        Some(""),
        "Prefix of generated destination ids.",
    ),
    s(
        "IDGEN_ATTEMPT_PREFIX",
        Some(""),
        "Prefix of generated attempt ids.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_MODE",
        Some("default"),
        "Webhook flavour: default or standard (Standard Webhooks).",
    ),
    s(
        "DESTINATIONS_WEBHOOK_HEADER_PREFIX",
        None,
        "Header prefix; unset: x-outpost- (standard mode: webhook-).",
    ),
    s(
        "DESTINATIONS_WEBHOOK_EVENT_ID_HEADER_NAME",
        None,
        "Event id header name; empty omits it.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_NAME",
        None,
        "Signature header name; empty omits it.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_TIMESTAMP_HEADER_NAME",
        None,
        "Timestamp header name; empty omits it.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_TOPIC_HEADER_NAME",
        None,
        "Topic header name; empty omits it.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_EVENT_ID_HEADER",
        Some("false"),
        "Deprecated: omit the event id header.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_SIGNATURE_HEADER",
        Some("false"),
        "Deprecated: omit the signature header.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_TIMESTAMP_HEADER",
        Some("false"),
        "Deprecated: omit the timestamp header.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_DISABLE_DEFAULT_TOPIC_HEADER",
        Some("false"),
        "Deprecated: omit the topic header.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE",
        Some("{{.Body}}"),
        "Template of the signed content.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE",
        Some("v0={{.Signatures | join \",\"}}"),
        "Template of the signature header value.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_SIGNATURE_ENCODING",
        Some("hex"),
        "Signature encoding: hex or base64.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_SIGNATURE_ALGORITHM",
        Some("hmac-sha256"),
        "Signature algorithm: hmac-sha256 or hmac-sha1.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE",
        Some("whsec_{{.RandomHex}}"),
        "Template of generated signing secrets.",
    ),
    s(
        "DESTINATIONS_WEBHOOK_MAX_RESPONSE_BODY_BYTES",
        Some("131072"),
        "Largest response body stored per attempt (0 = unlimited).",
    ),
    s(
        "DESTINATIONS_INCLUDE_MILLISECOND_TIMESTAMP",
        Some("false"),
        "Also send a timestamp-ms metadata header.",
    ),
    s(
        "PUBLISH_IDEMPOTENCY_KEY_TTL",
        Some("3600"),
        "Seconds an event id is remembered for duplicate detection.",
    ),
    s(
        "LOG_RETENTION_TTL_DAYS",
        Some("30"),
        "Days events and attempts are kept (0 keeps everything); also read as CLICKHOUSE_LOG_RETENTION_TTL_DAYS.",
    ),
    s(
        "LOG_RETENTION_TTL_SECONDS",
        None,
        "Seconds events and attempts are kept, for short windows (trials, benchmarks); when above 0 it overrides LOG_RETENTION_TTL_DAYS. Unset or 0: the days apply.",
    ),
    s(
        "RETRY_SCHEDULE",
        None,
        "Comma-separated seconds between attempts; overrides the backoff and MAX_RETRY_LIMIT.",
    ),
    s(
        "RETRY_INTERVAL_SECONDS",
        Some("30"),
        "Base of the exponential backoff: interval x 2^(n-1) seconds.",
    ),
    s(
        "MAX_RETRY_LIMIT",
        Some("10"),
        "Automatic retries after the first attempt.",
    ),
    s(
        "DELIVERY_TIMEOUT_SECONDS",
        Some("5"),
        "Timeout of one delivery attempt (connect, send, read).",
    ),
    s(
        "DELIVERY_MAX_CONCURRENCY",
        Some("256"),
        "Deliveries in flight at once.",
    ),
    s(
        "DELIVERY_MAX_CONCURRENCY_PER_DESTINATION",
        Some("64"),
        "Deliveries in flight at once to one destination.",
    ),
    s(
        "DELIVERY_DENY_CIDRS",
        Some("0.0.0.0/8,169.254.0.0/16,224.0.0.0/4,255.255.255.255/32,::/128,fe80::/10,ff00::/8"),
        "Comma-separated CIDRs (IPv4 and IPv6) deliveries may not connect to, checked on every connection (each redirect hop too) against the resolved address; a value replaces the default (unspecified, link-local incl. 169.254.169.254, multicast, broadcast). Empty: deny nothing.",
    ),
    s(
        "DELIVERY_ALLOW_CIDRS",
        None,
        "Comma-separated CIDRs deliveries may connect to even when DELIVERY_DENY_CIDRS covers them (allow wins).",
    ),
    s(
        "DELIVERY_RESOLVE_OVERRIDES",
        None,
        "Comma-separated name=ip pairs answered instead of DNS for delivery host names (air-gapped hosts without DNS, tests); the address policy still applies.",
    ),
    s(
        "ALERT_CONSECUTIVE_FAILURE_COUNT",
        None,
        "Failed attempts in a row to one destination that mean 100 %: alerts fire at 50, 70 and 90 % of it and on every failure from 100 %. Unset: 100; set empty: no consecutive-failure alerts.",
    ),
    s(
        "ALERT_AUTO_DISABLE_DESTINATION",
        Some("false"),
        "true disables a destination when its consecutive failures reach ALERT_CONSECUTIVE_FAILURE_COUNT.",
    ),
    s(
        "ALERT_EXHAUSTED_RETRIES_WINDOW_SECONDS",
        None,
        "At most one exhausted-retries alert per destination within this many seconds. Unset: 3600; 0: every exhaustion alerts; set empty: no exhausted-retries alerts.",
    ),
    s(
        "OPERATOR_EVENTS_TOPICS",
        None,
        "Operator event topics to emit, comma-separated, or * for all: alert.destination.consecutive_failure, alert.destination.disabled, alert.attempt.exhausted_retries, attempt.success, attempt.failed, tenant.subscription.updated. Empty: none. Also read as OPERATION_EVENTS_TOPICS.",
    ),
    s(
        "OPERATOR_EVENTS_HTTP_URL",
        None,
        "Where operator events are POSTed as JSON (the HTTP sink). Also read as OPERATION_EVENTS_HTTP_URL.",
    ),
    secret(
        "OPERATOR_EVENTS_HTTP_SIGNING_SECRET",
        "Signs operator events: X-Outpost-Signature: v0=<hex HMAC-SHA256 of the body>. Also read as OPERATION_EVENTS_HTTP_SIGNING_SECRET.",
    ),
    s(
        "SHUTDOWN_TIMEOUT_SECONDS",
        Some("10"),
        "How long shutdown waits for in-flight deliveries; the rest stay queued.",
    ),
];

/// Other names a setting answers to, as `(alias, setting)`: upstream's name for a setting
/// outpost names differently. The setting's own name wins when both are given in one layer.
pub const ALIASES: &[(&str, &str)] = &[
    (
        "CLICKHOUSE_LOG_RETENTION_TTL_DAYS",
        "LOG_RETENTION_TTL_DAYS",
    ),
    ("OPERATION_EVENTS_TOPICS", "OPERATOR_EVENTS_TOPICS"),
    ("OPERATION_EVENTS_HTTP_URL", "OPERATOR_EVENTS_HTTP_URL"),
    (
        "OPERATION_EVENTS_HTTP_SIGNING_SECRET",
        "OPERATOR_EVENTS_HTTP_SIGNING_SECRET",
    ),
];

/// The setting `name` (or an alias of it) refers to.
pub fn find(name: &str) -> Option<&'static Setting> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, setting)| setting);
    SETTINGS.iter().find(|s| s.name == name)
}

/// The aliases of the setting `name`.
pub fn aliases_of(name: &str) -> impl Iterator<Item = &'static str> + '_ {
    ALIASES
        .iter()
        .filter(move |(_, setting)| *setting == name)
        .map(|(alias, _)| *alias)
}
