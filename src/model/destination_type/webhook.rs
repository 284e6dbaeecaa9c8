//! Webhook-specific rules (both signing modes): `custom_headers` parsing and checks, signing
//! secret checks, the credential lifecycle run on create/update (generation, rotation, tenant
//! restrictions) and how secrets are shown in API responses.

use super::codec::decode_std_base64;
use super::validate::{value_of, Checked, Violation};
use super::{Draft, PrepareContext, Role, WebhookMode};
use crate::model::StrMap;
use crate::time::{self, Timestamp};

const SECRET: &str = "secret";
const PREVIOUS_SECRET: &str = "previous_secret";
const PREVIOUS_SECRET_INVALID_AT: &str = "previous_secret_invalid_at";
const ROTATE_SECRET: &str = "rotate_secret";

/// The only credential keys a webhook destination keeps.
const STORED_KEYS: [&str; 3] = [SECRET, PREVIOUS_SECRET, PREVIOUS_SECRET_INVALID_AT];

/// How long a replaced secret keeps signing when no expiry is given: 24 hours.
const PREVIOUS_SECRET_GRACE_MS: i64 = 24 * 60 * 60 * 1_000;

/// Header names that `custom_headers` may not set (compared case-insensitively).
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "connection",
    "user-agent",
];

/// Prefix of Standard Webhooks secrets; the rest is standard, padded base64.
pub const STANDARD_SECRET_PREFIX: &str = "whsec_";

/// Parses `config.custom_headers`, a JSON object of header name to string value, as stored.
///
/// Empty text and JSON `null` mean "no headers" (`Some` of an empty map); anything that is not
/// an object of strings gives `None`.
pub fn parse_custom_headers(raw: &str) -> Option<StrMap> {
    if raw.is_empty() {
        return Some(StrMap::new());
    }
    serde_json::from_str::<Option<StrMap>>(raw)
        .ok()
        .map(Option::unwrap_or_default)
}

/// Decodes the key of a Standard Webhooks secret (`whsec_<base64>`), or `None` if malformed.
pub fn decode_standard_secret(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(STANDARD_SECRET_PREFIX)?;
    if encoded.is_empty() {
        return None;
    }
    decode_std_base64(encoded)
}

/// Webhook-specific validation run after the metadata checks: custom headers, then secrets.
pub(super) fn check(mode: WebhookMode, config: &StrMap, credentials: &StrMap) -> Checked {
    check_custom_headers(config)?;
    check_credentials(mode, credentials)
}

fn check_custom_headers(config: &StrMap) -> Checked {
    let Some(headers) = parse_custom_headers(value_of(config, "custom_headers")) else {
        return Violation::fail("config.custom_headers", "invalid");
    };
    let violations: Vec<Violation> = headers
        .iter()
        .filter_map(|(name, value)| {
            let field = || format!("config.custom_headers.{name}");
            if !is_header_name(name) {
                Some(Violation::new(field(), "pattern"))
            } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                Some(Violation::new(field(), "forbidden"))
            } else if value.is_empty() {
                Some(Violation::new(field(), "required"))
            } else {
                None
            }
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_-]*$`
fn is_header_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Secret rules, applied only when at least one of the three secret keys is set.
fn check_credentials(mode: WebhookMode, credentials: &StrMap) -> Checked {
    let secret = value_of(credentials, SECRET);
    let previous = value_of(credentials, PREVIOUS_SECRET);
    let invalid_at = value_of(credentials, PREVIOUS_SECRET_INVALID_AT);
    if secret.is_empty() && previous.is_empty() && invalid_at.is_empty() {
        return Ok(());
    }
    let standard = mode == WebhookMode::Standard;

    if secret.is_empty() {
        return Violation::fail("credentials.secret", "required");
    }
    if standard && decode_standard_secret(secret).is_none() {
        return Violation::fail("credentials.secret", "pattern");
    }
    if !invalid_at.is_empty() && time::parse_rfc3339(invalid_at).is_err() {
        return Violation::fail("credentials.previous_secret_invalid_at", "pattern");
    }
    if standard && !previous.is_empty() && decode_standard_secret(previous).is_none() {
        return Violation::fail("credentials.previous_secret", "pattern");
    }
    if !previous.is_empty() && invalid_at.is_empty() {
        return Violation::fail("credentials.previous_secret_invalid_at", "required");
    }
    if !invalid_at.is_empty() && previous.is_empty() {
        return Violation::fail("credentials.previous_secret", "required");
    }
    Ok(())
}

/// The credential lifecycle: rotation, tenant restrictions, generation of a first secret, a
/// default expiry for the previous secret, and reduction to the three stored keys.
pub(super) fn preprocess(draft: &mut Draft, ctx: &PrepareContext<'_>) -> Checked {
    let requested = &draft.credentials;
    let mut credentials = if is_truthy(value_of(requested, ROTATE_SECRET)) {
        rotate(requested, ctx)?
    } else {
        let mut kept = keep_allowed(requested, ctx)?;
        let nothing_kept = STORED_KEYS
            .iter()
            .all(|key| value_of(&kept, key).is_empty());
        if ctx.existing.is_none() && nothing_kept {
            kept.insert(SECRET.to_string(), (ctx.generate_secret)());
        }
        kept
    };

    if !value_of(&credentials, PREVIOUS_SECRET).is_empty()
        && value_of(&credentials, PREVIOUS_SECRET_INVALID_AT).is_empty()
    {
        credentials.insert(
            PREVIOUS_SECRET_INVALID_AT.to_string(),
            default_invalid_at(ctx.now_unix_ms),
        );
    }
    credentials.retain(|key, value| STORED_KEYS.contains(&key.as_str()) && !value.is_empty());
    draft.credentials = credentials;
    Ok(())
}

/// Replaces the stored secret with a fresh one and keeps the old one as `previous_secret`.
fn rotate(requested: &StrMap, ctx: &PrepareContext<'_>) -> Result<StrMap, Vec<Violation>> {
    let Some(existing) = ctx.existing else {
        return Err(vec![Violation::new("credentials.rotate_secret", "invalid")]);
    };
    let old_secret = value_of(&existing.credentials, SECRET);
    if old_secret.is_empty() {
        return Err(vec![Violation::new("credentials.secret", "required")]);
    }

    // On update the draft holds the stored credentials merged with the request, so an expiry
    // only counts as "sent" when it differs from the stored one.
    let requested_invalid_at = value_of(requested, PREVIOUS_SECRET_INVALID_AT);
    let stored_invalid_at = value_of(&existing.credentials, PREVIOUS_SECRET_INVALID_AT);
    let invalid_at =
        if !requested_invalid_at.is_empty() && requested_invalid_at != stored_invalid_at {
            requested_invalid_at.to_string()
        } else {
            default_invalid_at(ctx.now_unix_ms)
        };

    Ok(StrMap::from([
        (SECRET.to_string(), (ctx.generate_secret)()),
        (PREVIOUS_SECRET.to_string(), old_secret.to_string()),
        (PREVIOUS_SECRET_INVALID_AT.to_string(), invalid_at),
    ]))
}

/// Admins may set any secret value. Tenants may set none on create and may only resend the
/// stored values on update.
fn keep_allowed(requested: &StrMap, ctx: &PrepareContext<'_>) -> Result<StrMap, Vec<Violation>> {
    let pick = |source: &StrMap| -> StrMap {
        STORED_KEYS
            .iter()
            .filter(|key| !value_of(source, key).is_empty())
            .map(|key| (key.to_string(), value_of(source, key).to_string()))
            .collect()
    };
    if ctx.role == Role::Admin {
        return Ok(pick(requested));
    }

    let stored = ctx.existing.map(|existing| &existing.credentials);
    for key in STORED_KEYS {
        let sent = value_of(requested, key);
        let allowed = match stored {
            Some(stored) => sent.is_empty() || sent == value_of(stored, key),
            None => sent.is_empty(),
        };
        if !allowed {
            return Err(vec![Violation::new(
                format!("credentials.{key}"),
                "forbidden",
            )]);
        }
    }
    Ok(stored.map(pick).unwrap_or_default())
}

/// Credentials as returned by the API: in clear, minus the previous secret once it expired.
pub(super) fn display(credentials: &StrMap, now_unix_ms: i64) -> StrMap {
    let now = Timestamp::from_unix_millis(now_unix_ms);
    let expired = time::parse_rfc3339(value_of(credentials, PREVIOUS_SECRET_INVALID_AT))
        .is_ok_and(|invalid_at| now > invalid_at);
    credentials
        .iter()
        .filter(|(key, _)| {
            !(expired
                && (key.as_str() == PREVIOUS_SECRET || key.as_str() == PREVIOUS_SECRET_INVALID_AT))
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn default_invalid_at(now_unix_ms: i64) -> String {
    Timestamp::from_unix_millis(now_unix_ms)
        .saturating_add_millis(PREVIOUS_SECRET_GRACE_MS)
        .format_rfc3339()
}

/// `rotate_secret` flag values that mean "yes" (case-insensitive).
fn is_truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "1" | "on" | "yes"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_headers_parsing() {
        assert_eq!(parse_custom_headers(""), Some(StrMap::new()));
        assert_eq!(parse_custom_headers("null"), Some(StrMap::new()));
        assert_eq!(parse_custom_headers("{}"), Some(StrMap::new()));
        assert_eq!(
            parse_custom_headers(r#"{"x-a":"1"}"#),
            Some(StrMap::from([("x-a".to_string(), "1".to_string())]))
        );
        assert_eq!(parse_custom_headers(r#"{"x-a":1}"#), None);
        assert_eq!(parse_custom_headers(r#"["x-a"]"#), None);
        assert_eq!(parse_custom_headers("not json"), None);
    }

    #[test]
    fn header_names() {
        assert!(is_header_name("X-Api-Key"));
        assert!(is_header_name("a_b"));
        assert!(!is_header_name("-x"));
        assert!(!is_header_name(""));
        assert!(!is_header_name("x y"));
        assert!(!is_header_name("x:y"));
    }

    #[test]
    fn standard_secret_decoding() {
        assert_eq!(
            decode_standard_secret("whsec_aGVsbG8="),
            Some(b"hello".to_vec())
        );
        assert_eq!(decode_standard_secret("whsec_"), None);
        assert_eq!(decode_standard_secret("aGVsbG8="), None);
        assert_eq!(decode_standard_secret("whsec_aGVsbG8"), None);
        assert_eq!(decode_standard_secret("whsec_not base64!"), None);
    }

    #[test]
    fn truthy_values() {
        for yes in ["true", "TRUE", "1", "on", "Yes"] {
            assert!(is_truthy(yes), "{yes}");
        }
        for no in ["", "false", "0", "off", "no", "y"] {
            assert!(!is_truthy(no), "{no}");
        }
    }

    #[test]
    fn display_hides_expired_previous_secret() {
        let credentials = StrMap::from([
            (SECRET.to_string(), "new".to_string()),
            (PREVIOUS_SECRET.to_string(), "old".to_string()),
            (
                PREVIOUS_SECRET_INVALID_AT.to_string(),
                "1970-01-01T00:00:10Z".to_string(),
            ),
        ]);
        assert_eq!(display(&credentials, 10_000), credentials);
        let after = display(&credentials, 10_001);
        assert_eq!(
            after,
            StrMap::from([(SECRET.to_string(), "new".to_string())])
        );
    }

    fn rotated(invalid_at: &str) -> StrMap {
        StrMap::from([
            (SECRET.to_string(), "new".to_string()),
            (PREVIOUS_SECRET.to_string(), "old".to_string()),
            (
                PREVIOUS_SECRET_INVALID_AT.to_string(),
                invalid_at.to_string(),
            ),
        ])
    }

    /// The expiry is read by the same RFC 3339 reader as delivery's: what Go's parser rejects
    /// fails validation, and sub-millisecond fractions count.
    #[test]
    fn previous_secret_expiry_is_read_like_go() {
        for accepted in [
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:00.123456789+01:00",
        ] {
            assert_eq!(
                check_credentials(WebhookMode::Default, &rotated(accepted)),
                Ok(()),
                "{accepted}"
            );
        }
        for rejected in [
            "2030-01-01t00:00:00Z",
            "2030-01-01T00:00:00z",
            "2016-12-31T23:59:60Z",
        ] {
            assert!(
                check_credentials(WebhookMode::Default, &rotated(rejected)).is_err(),
                "{rejected}"
            );
        }
        let credentials = rotated("1970-01-01T00:00:10.0005Z");
        assert_eq!(display(&credentials, 10_000), credentials);
        assert_eq!(display(&credentials, 10_001).len(), 1);
    }
}
