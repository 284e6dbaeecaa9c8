//! Rules of the non-webhook destination types beyond their metadata: extra checks (Hookdeck
//! token format, S3 storage class, GCP key JSON, RabbitMQ/Kafka enums) and the preprocessing
//! that normalises stored config (TLS flags, Kafka brokers, Hookdeck source id).

use super::codec::decode_std_base64;
use super::validate::{value_of, Checked, Violation};
use super::{Draft, Kind, PrepareContext};
use crate::model::StrMap;

/// S3 storage classes accepted for `config.storage_class` (compared case-insensitively).
const S3_STORAGE_CLASSES: [&str; 12] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "GLACIER_IR",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_OPENZFS",
];

const KAFKA_SASL_MECHANISMS: [&str; 3] = ["plain", "scram-sha-256", "scram-sha-512"];

/// Accepted spellings of the RabbitMQ/Kafka `tls` flag before normalisation.
const TLS_VALUES: [&str; 3] = ["true", "false", "on"];

/// Extracts the source id from a Hookdeck token: standard base64 of `<id>:<secret>`.
pub fn parse_hookdeck_token(token: &str) -> Option<String> {
    let decoded = String::from_utf8(decode_std_base64(token)?).ok()?;
    let (id, _secret) = decoded.split_once(':')?;
    Some(id.to_string())
}

/// Type-specific checks, run once the metadata checks passed.
pub(super) fn check(kind: Kind, config: &StrMap, credentials: &StrMap) -> Checked {
    match kind {
        Kind::Hookdeck => check_hookdeck(credentials),
        Kind::AwsS3 => check_s3(config),
        Kind::GcpPubsub => check_gcp_pubsub(config, credentials),
        Kind::Rabbitmq => check_tls(config, true),
        Kind::Kafka => check_kafka(config),
        Kind::Webhook | Kind::AwsSqs | Kind::AwsKinesis | Kind::AzureServicebus => Ok(()),
    }
}

/// Normalisation applied before storing; never fails except for Hookdeck tokens.
pub(super) fn preprocess(kind: Kind, draft: &mut Draft, ctx: &PrepareContext<'_>) -> Checked {
    match kind {
        Kind::Hookdeck => preprocess_hookdeck(draft, ctx),
        Kind::Rabbitmq => {
            normalise_tls(&mut draft.config);
            Ok(())
        }
        Kind::Kafka => {
            normalise_tls(&mut draft.config);
            trim_brokers(&mut draft.config);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_hookdeck(credentials: &StrMap) -> Checked {
    let token = value_of(credentials, "token");
    if !token.is_empty() && parse_hookdeck_token(token).is_none() {
        return Violation::fail("credentials.token", "invalid_token_format");
    }
    Ok(())
}

/// Requires a well-formed token and records its source id in the config when the token is new.
/// The token is not verified against Hookdeck's API (no network calls here), so no
/// `source_name` is known; a stale one from an older token is dropped.
fn preprocess_hookdeck(draft: &mut Draft, ctx: &PrepareContext<'_>) -> Checked {
    let token = value_of(&draft.credentials, "token");
    if token.is_empty() {
        return Violation::fail("credentials.token", "token_required");
    }
    let Some(source_id) = parse_hookdeck_token(token) else {
        return Violation::fail("credentials.token", "invalid_token_format");
    };
    let token_changed = ctx
        .existing
        .is_none_or(|existing| value_of(&existing.credentials, "token") != token);
    if token_changed {
        draft.config.remove("source_name");
        draft.config.insert("source_id".to_string(), source_id);
    }
    Ok(())
}

fn check_s3(config: &StrMap) -> Checked {
    let storage_class = value_of(config, "storage_class");
    let known_class = storage_class.is_empty()
        || S3_STORAGE_CLASSES
            .iter()
            .any(|class| class.eq_ignore_ascii_case(storage_class));
    if !known_class {
        return Violation::fail("config.storage_class", "enum");
    }
    let key_template = value_of(config, "key_template");
    if !key_template.is_empty() && !looks_like_jmespath(key_template) {
        return Violation::fail("config.key_template", "pattern");
    }
    Ok(())
}

/// A light syntax check for JMESPath expressions: something other than whitespace, closed
/// quotes/literals and balanced brackets. Full compilation happens at delivery time.
fn looks_like_jmespath(expression: &str) -> bool {
    if expression.trim().is_empty() {
        return false;
    }
    let mut open_brackets = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expression.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' | '[' | '{' => open_brackets.push(c),
            ')' | ']' | '}' => {
                let expected = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if open_brackets.pop() != Some(expected) {
                    return false;
                }
            }
            _ => {}
        }
    }
    quote.is_none() && open_brackets.is_empty()
}

/// The service account key must be a JSON object with a `type` member, unless an emulator
/// endpoint is configured.
fn check_gcp_pubsub(config: &StrMap, credentials: &StrMap) -> Checked {
    let key_json = value_of(credentials, "service_account_json");
    if !value_of(config, "endpoint").is_empty() || key_json.is_empty() {
        return Ok(());
    }
    match serde_json::from_str::<serde_json::Value>(key_json) {
        Ok(serde_json::Value::Object(members)) if members.contains_key("type") => Ok(()),
        Ok(serde_json::Value::Object(_)) => {
            Violation::fail("credentials.service_account_json", "missing_type")
        }
        _ => Violation::fail("credentials.service_account_json", "format"),
    }
}

fn check_kafka(config: &StrMap) -> Checked {
    let mechanism = value_of(config, "sasl_mechanism");
    if !mechanism.is_empty() && !KAFKA_SASL_MECHANISMS.contains(&mechanism) {
        return Violation::fail("config.sasl_mechanism", "invalid");
    }
    check_tls(config, false)
}

/// `tls` must be `true`, `false` or `on`. RabbitMQ also rejects an explicitly empty value;
/// Kafka treats empty as unset.
fn check_tls(config: &StrMap, empty_is_invalid: bool) -> Checked {
    match config.get("tls") {
        None => Ok(()),
        Some(value) if value.is_empty() && !empty_is_invalid => Ok(()),
        Some(value) if TLS_VALUES.contains(&value.as_str()) => Ok(()),
        Some(_) => Violation::fail("config.tls", "invalid"),
    }
}

/// Stores the TLS flag as `"true"`/`"false"`: `on` becomes `true`, missing or empty `false`.
fn normalise_tls(config: &mut StrMap) {
    let normalised = match value_of(config, "tls") {
        "on" => "true",
        "" => "false",
        _ => return,
    };
    config.insert("tls".to_string(), normalised.to_string());
}

/// Removes whitespace around each comma-separated broker address.
fn trim_brokers(config: &mut StrMap) {
    if let Some(brokers) = config.get_mut("brokers") {
        if !brokers.is_empty() {
            *brokers = brokers
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(",");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hookdeck_tokens() {
        // "src_123:secret"
        assert_eq!(
            parse_hookdeck_token("c3JjXzEyMzpzZWNyZXQ="),
            Some("src_123".to_string())
        );
        // ":secret" still has the separator; the id is empty.
        assert_eq!(parse_hookdeck_token("OnNlY3JldA=="), Some(String::new()));
        // "nocolon"
        assert_eq!(parse_hookdeck_token("bm9jb2xvbg=="), None);
        assert_eq!(parse_hookdeck_token("not base64"), None);
    }

    #[test]
    fn jmespath_sanity() {
        assert!(looks_like_jmespath(
            r#"join('', [time.rfc3339_nano, '_', metadata."event-id", '.json'])"#
        ));
        assert!(looks_like_jmespath("data.customer_id"));
        assert!(looks_like_jmespath(r"join('\'', [data.a])"));
        assert!(!looks_like_jmespath("   "));
        assert!(!looks_like_jmespath("join('', [data.a)"));
        assert!(!looks_like_jmespath("data.a]"));
        assert!(!looks_like_jmespath("'unterminated"));
    }

    #[test]
    fn tls_normalisation() {
        let mut config = StrMap::from([("tls".to_string(), "on".to_string())]);
        normalise_tls(&mut config);
        assert_eq!(config["tls"], "true");
        let mut config = StrMap::new();
        normalise_tls(&mut config);
        assert_eq!(config["tls"], "false");
        let mut config = StrMap::from([("tls".to_string(), "false".to_string())]);
        normalise_tls(&mut config);
        assert_eq!(config["tls"], "false");
    }

    #[test]
    fn broker_trimming() {
        let mut config = StrMap::from([(
            "brokers".to_string(),
            " a:9092 ,b:9092,  c:9092 ".to_string(),
        )]);
        trim_brokers(&mut config);
        assert_eq!(config["brokers"], "a:9092,b:9092,c:9092");
    }
}
