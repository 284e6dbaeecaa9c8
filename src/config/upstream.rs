//! Upstream settings outpost knows of but does not act on: features not built yet, and the
//! infrastructure upstream needs beside it (Redis, a log database, message queues) that an
//! appliance keeping everything in `DATA_DIR` does not. They are accepted wherever a setting
//! may be given (the environment, `outpost.toml`) and named in one warning at start, so none
//! is ignored silently.

/// Why a known upstream setting has no effect here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unacted {
    /// A feature outpost does not have yet.
    NotSupported,
    /// Infrastructure or tuning of upstream's distributed design, with no counterpart here.
    NotNeeded,
}

/// Names and name prefixes (ending in `_`) of upstream features outpost does not act on.
const NOT_SUPPORTED: &[&str] = &[
    "PORTAL_",
    "ALERT_",
    "OPERATOR_EVENTS_",
    "OPERATION_EVENTS_",
    "OTEL_",
    "DISABLE_TELEMETRY",
    "TELEMETRY_",
    "PUBLISH_AWS_SQS_",
    "PUBLISH_AZURE_SERVICEBUS_",
    "PUBLISH_GCP_PUBSUB_",
    "PUBLISH_RABBITMQ_",
    "DESTINATIONS_WEBHOOK_PROXY_URL",
    "DESTINATIONS_METADATA_PATH",
    "DESTINATIONS_AWS_KINESIS_METADATA_IN_PAYLOAD",
    "DELIVERY_IDEMPOTENCY_KEY_TTL",
];

/// Names and name prefixes of upstream infrastructure settings.
const NOT_NEEDED: &[&str] = &[
    "REDIS_",
    "POSTGRES_URL",
    "CLICKHOUSE_",
    "MQS_AUTO_PROVISION",
    "RABBITMQ_",
    "AWS_SQS_",
    "GCP_PUBSUB_",
    "AZURE_SERVICEBUS_",
    "SERVICE",
    "GIN_MODE",
    "PUBLISH_MAX_CONCURRENCY",
    "LOG_MAX_CONCURRENCY",
    "RETRY_POLL_BACKOFF_MS",
    "RETRY_VISIBILITY_TIMEOUT_SECONDS",
    "LOG_BATCH_THRESHOLD_SECONDS",
    "LOG_BATCH_SIZE",
];

fn matches(name: &str, patterns: &[&str]) -> bool {
    patterns.iter().any(|p| {
        if p.ends_with('_') {
            name.starts_with(p) && name.len() > p.len()
        } else {
            name == *p
        }
    })
}

/// Whether `name` (upper case) is an upstream setting outpost does not act on, and why. A
/// setting outpost does act on (`CLICKHOUSE_LOG_RETENTION_TTL_DAYS`, an alias) is never one.
pub fn classify(name: &str) -> Option<Unacted> {
    if super::settings::find(name).is_some() {
        return None;
    }
    if matches(name, NOT_SUPPORTED) {
        Some(Unacted::NotSupported)
    } else if matches(name, NOT_NEEDED) {
        Some(Unacted::NotNeeded)
    } else {
        None
    }
}

/// The one start-up warning naming every such setting found, or `None` when there is none.
pub fn warning(found: &[String]) -> Option<String> {
    let of = |kind| {
        found
            .iter()
            .filter(|name| classify(name) == Some(kind))
            .map(String::as_str)
            .collect::<Vec<_>>()
    };
    let (unsupported, unneeded) = (of(Unacted::NotSupported), of(Unacted::NotNeeded));
    let mut parts = Vec::new();
    if !unsupported.is_empty() {
        parts.push(format!(
            "outpost does not act on {} (not supported yet)",
            unsupported.join(", ")
        ));
    }
    if !unneeded.is_empty() {
        parts.push(format!(
            "{} {} upstream's infrastructure and not needed here: outpost keeps its store, queue \
             and logs in DATA_DIR",
            unneeded.join(", "),
            if unneeded.len() == 1 { "is" } else { "are" }
        ));
    }
    (!parts.is_empty()).then(|| format!("upstream settings set but unused: {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_upstream_settings_outpost_does_not_act_on() {
        assert_eq!(classify("AES_ENCRYPTION_SECRET"), None);
        assert_eq!(classify("PORTAL_LOGO"), Some(Unacted::NotSupported));
        assert_eq!(
            classify("OPERATOR_EVENTS_AWS_SQS_QUEUE_URL"),
            Some(Unacted::NotSupported)
        );
        assert_eq!(classify("ALERT_CALLBACK_URL"), Some(Unacted::NotSupported));
        assert_eq!(classify("REDIS_HOST"), Some(Unacted::NotNeeded));
        assert_eq!(classify("CLICKHOUSE_ADDR"), Some(Unacted::NotNeeded));
        assert_eq!(classify("SERVICE"), Some(Unacted::NotNeeded));
        // Acted on: a setting of ours or an alias of one.
        assert_eq!(classify("CLICKHOUSE_LOG_RETENTION_TTL_DAYS"), None);
        assert_eq!(classify("OPERATION_EVENTS_HTTP_URL"), None);
        assert_eq!(classify("ALERT_AUTO_DISABLE_DESTINATION"), None);
        assert_eq!(classify("API_KEY"), None);
        // Unknown names and bare prefixes are not upstream settings.
        assert_eq!(classify("PORTAL_"), None);
        assert_eq!(classify("SERVICES"), None);
        assert_eq!(classify("HOME"), None);
    }

    #[test]
    fn one_warning_names_every_setting_and_says_why() {
        let found = ["OTEL_SERVICE_NAME", "PORTAL_LOGO", "REDIS_HOST"].map(String::from);
        let text = warning(&found).expect("warning");
        assert!(text.contains("OTEL_SERVICE_NAME, PORTAL_LOGO (not supported yet)"));
        assert!(text.contains("REDIS_HOST is upstream's infrastructure and not needed here"));
        assert_eq!(warning(&[]), None);
    }
}
