//! Entry points shared by the `cargo fuzz` targets (`fuzz/fuzz_targets/`) and by the test that
//! replays their committed corpora (`fuzz/corpus/<target>/`) on the stable toolchain.
//!
//! Each function takes arbitrary bytes, drives one of the parsers that read client or
//! operator input, and checks properties that must hold for every input. A violated property
//! panics: that is how a fuzzer reports a finding, and how the replay test fails. Nothing here
//! runs in the server.

use serde_json::Value;

use crate::api::cursor;
use crate::api::query::Query;
use crate::api::requests::{
    self, apply_patch, CreateDestinationBody, PublishBody, UpdateDestinationBody,
};
use crate::delivery::{content_template, header_template};
use crate::model::secret::SecretTemplate;
use crate::model::signing::{self, SignatureAlgorithm, SignatureEncoding};
use crate::model::topics::{self, TopicRules};
use crate::model::{filter, StrMap};
use crate::template::{TemplateTime, TemplateValue};
use crate::time;

/// A fuzz target's entry point: any bytes; a violated property panics.
pub type EntryPoint = fn(&[u8]);

/// The fuzz targets by name, each with its entry point; the names are the directories under
/// `fuzz/corpus/`.
pub const TARGETS: &[(&str, EntryPoint)] = &[
    ("filter", filter_language),
    ("topics", topic_patterns),
    ("cursor", cursors),
    ("templates", templates),
    ("signing", signatures),
    ("requests", request_bodies),
];

/// Splits `data` at its first NUL byte (no NUL: all of it and nothing).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[]),
    }
}

/// The filter language: `<filter JSON> NUL <input JSON>` (no input: a fixed event document).
/// The verdict is the same however often it is asked, and the same for the filter as stored
/// (compact JSON text read back), which is what fan-out evaluates.
pub fn filter_language(data: &[u8]) {
    let (schema, input) = split(data);
    let Ok(schema) = serde_json::from_slice::<Value>(schema) else {
        return;
    };
    let input = serde_json::from_slice::<Value>(input).unwrap_or_else(|_| {
        serde_json::json!({
            "id": "evt_1", "topic": "user.created", "time": "2024-06-01T08:23:36Z",
            "metadata": {"source": "api"},
            "data": {"user": {"id": 7, "tags": ["a", "b"], "email": "x@example.com"}},
        })
    });
    let verdict = filter::matches(&schema, &input);
    assert_eq!(
        verdict,
        filter::matches(&schema, &input),
        "not deterministic"
    );
    if let Ok(stored) = serde_json::from_str::<Value>(&schema.to_string()) {
        assert_eq!(
            verdict,
            filter::matches(&stored, &input),
            "stored filter decides otherwise"
        );
    }
    if schema.is_null() || schema.as_object().is_some_and(|m| m.is_empty()) {
        assert!(verdict, "an empty filter matches everything");
    }
}

/// Topic patterns: `<pattern> NUL <topic>` through the matcher, and the whole input as a
/// destination `topics` value (with and without wildcards allowed). A pattern without `*`
/// matches only itself, one of stars everything; normalizing is idempotent; a destination matches every topic its own
/// entries name.
pub fn topic_patterns(data: &[u8]) {
    let (pattern, topic) = split(data);
    let pattern = String::from_utf8_lossy(pattern);
    let topic = String::from_utf8_lossy(topic);
    let verdict = topics::pattern_matches(&pattern, &topic);
    if !pattern.contains('*') {
        assert_eq!(verdict, pattern == topic, "literal pattern");
    }
    if !pattern.is_empty() && pattern.chars().all(|c| c == '*') {
        assert!(verdict, "only stars match everything");
    }
    if !topic.contains('*') {
        assert!(
            topics::pattern_matches(&topic, &topic),
            "a topic matches itself"
        );
    }
    let configured = vec!["user.created".to_string(), topic.to_string()];
    for allow_wildcards in [false, true] {
        let rules = TopicRules {
            topics: if allow_wildcards {
                Vec::new()
            } else {
                configured.clone()
            },
            allow_wildcards,
        };
        let _ = rules.check_publish_topic(&topic);
        let Ok(value) = serde_json::from_slice::<Value>(data) else {
            continue;
        };
        let Ok(normalized) = rules.destination_topics(&value) else {
            continue;
        };
        assert!(!normalized.is_empty(), "accepted topics are never empty");
        let again = rules.destination_topics(&Value::from(normalized.clone()));
        assert_eq!(
            again.as_ref(),
            Ok(&normalized),
            "normalizing twice changes it"
        );
        for entry in &normalized {
            if !entry.contains('*') {
                assert!(topics::destination_matches_topic(&normalized, entry));
                assert!(topics::destination_covers_all(
                    &normalized,
                    std::slice::from_ref(entry)
                ));
            }
        }
        let _ = topics::tenant_topics([normalized.as_slice()]);
    }
}

/// Pagination cursors: any text decodes to a position or a 400, never a panic; a decoded
/// position encodes back to a cursor that decodes to it; every position round-trips.
pub fn cursors(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for resource in ["evt", "att", "tnt"] {
        match cursor::decode(resource, &text) {
            Ok(position) => {
                let again = cursor::encode(resource, &position);
                assert_eq!(
                    cursor::decode(resource, &again).ok().as_deref(),
                    Some(position.as_str())
                );
            }
            Err(error) => assert_eq!(error.status.as_u16(), 400),
        }
        let encoded = cursor::encode(resource, &text);
        if encoded.len() <= 4096 {
            assert_eq!(
                cursor::decode(resource, &encoded).ok().as_deref(),
                Some(&*text),
                "round trip"
            );
        }
    }
}

/// Signature and header templates: the first byte picks the content template, the header
/// template or the signing-secret template; the rest is its source. A template the server
/// accepts at start renders delivery data (extreme times, odd strings) to text or an error,
/// and a secret template accepted at start always yields a non-empty secret.
pub fn templates(data: &[u8]) {
    let Some((&which, source)) = data.split_first() else {
        return;
    };
    let Ok(source) = std::str::from_utf8(source) else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(template) = content_template(source) {
                for data in delivery_data(false) {
                    let _ = template.render(&data);
                }
            }
        }
        1 => {
            if let Ok(template) = header_template(source) {
                for data in delivery_data(true) {
                    let _ = template.render(&data);
                }
            }
        }
        _ => {
            if let Ok(template) = SecretTemplate::parse(source) {
                let mut counter = 0u8;
                let mut random = |bytes: &mut [u8]| {
                    for byte in bytes.iter_mut() {
                        counter = counter.wrapping_add(97);
                        *byte = counter;
                    }
                    Ok(())
                };
                if let Ok(secret) = template.generate(&mut random) {
                    assert!(
                        !secret.is_empty(),
                        "an accepted template made an empty secret"
                    );
                }
            }
        }
    }
}

/// The data a signature template sees at delivery, at the edges of what events carry.
fn delivery_data(with_signatures: bool) -> Vec<TemplateValue> {
    [i64::MIN, -1, 0, 1_717_230_216_123_456_789, i64::MAX]
        .into_iter()
        .map(|nanos| {
            let mut fields = vec![
                ("EventID", TemplateValue::from("evt_\u{1F600}\"<&>")),
                ("Topic", TemplateValue::from("")),
                (
                    "Timestamp",
                    TemplateValue::Time(TemplateTime::from_unix_nanos(i128::from(nanos))),
                ),
            ];
            if with_signatures {
                fields.push((
                    "Signatures",
                    TemplateValue::List(vec!["a".into(), "".into(), "c\r\n".into()]),
                ));
            } else {
                fields.push(("Body", TemplateValue::from("{\"a\":[1,2,{}]}")));
            }
            TemplateValue::map(fields)
        })
        .collect()
}

/// Signatures: the first byte picks the algorithm and encoding settings; the rest is
/// `<secret> NUL <content>`. Signing is deterministic and of the digest's length; a Standard
/// Webhooks secret that decodes re-encodes to the same key.
pub fn signatures(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let (secret, content) = split(rest);
    let secret = String::from_utf8_lossy(secret);
    let algorithm = SignatureAlgorithm::from_setting(
        ["hmac-sha256", "hmac-sha1", "", "x"][usize::from(which & 3)],
    );
    let Some(encoding) =
        SignatureEncoding::from_setting(["hex", "base64"][usize::from(which >> 2 & 1)])
    else {
        return;
    };
    let _ = SignatureAlgorithm::from_setting(&secret);
    let _ = SignatureEncoding::from_setting(&secret);
    let one = signing::sign(algorithm, encoding, &secret, content);
    assert_eq!(one, signing::sign(algorithm, encoding, &secret, content));
    assert!(!one.is_empty());
    if let Ok(key) = signing::decode_standard_secret(&secret) {
        use base64::Engine as _;
        let again = format!(
            "{}{}",
            signing::STANDARD_SECRET_PREFIX,
            base64::engine::general_purpose::STANDARD.encode(&key)
        );
        assert_eq!(signing::decode_standard_secret(&again), Ok(key));
        let signature = signing::standard_webhooks_signature(&secret, "msg_1", 1, content);
        assert!(signature.is_ok_and(|s| s.starts_with("v1,")));
    } else {
        assert!(signing::standard_webhooks_signature(&secret, "msg_1", 1, content).is_err());
    }
}

/// Request bodies and query strings: the first byte picks the parser (publish, destination
/// create, destination update, tenant upsert, query string); the rest is the body. Every
/// refusal is a client error in upstream's shape (4xx with a message), never a panic.
pub fn request_bodies(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let now_ms = 1_717_230_216_000;
    let rules = TopicRules {
        topics: Vec::new(),
        allow_wildcards: which & 0x80 != 0,
    };
    let refused = |error: crate::api::error::ApiError| {
        assert!(error.status.is_client_error(), "{error:?}");
        assert!(error.message.is_some(), "{error:?}");
    };
    match which % 5 {
        0 => match PublishBody::parse(body) {
            Ok(publish) => {
                assert!(!publish.tenant_id.is_empty());
                assert!(
                    serde_json::from_str::<Value>(publish.data.get()).is_ok_and(|d| d.is_object())
                );
                if let Some(parsed) = publish.time {
                    let _ = parsed.timestamp.unix_nanos_i64();
                }
            }
            Err(error) => refused(error),
        },
        1 => match CreateDestinationBody::parse(body) {
            Ok(create) => {
                for field in ["created_at", "updated_at", "disabled_at"] {
                    if let Err(error) = requests::past_timestamp(&create.body, field, now_ms) {
                        refused(error);
                    }
                }
                if let Err(error) = rules.destination_topics(&create.topics) {
                    refused(requests::topics_error(error));
                }
                if let Some(filter) = &create.filter {
                    assert!(serde_json::from_str::<Value>(filter).is_ok_and(|f| f.is_object()));
                }
            }
            Err(error) => refused(error),
        },
        2 => match UpdateDestinationBody::parse(body, &rules, now_ms) {
            Ok(update) => {
                let current: StrMap = [("url".to_string(), "https://example.com".to_string())]
                    .into_iter()
                    .collect();
                for patch in [update.config, update.credentials, update.metadata] {
                    let _ = apply_patch(&current, &patch);
                }
                if let Some(Some(ms)) = update.disabled_at {
                    assert!(ms <= now_ms, "a future disabled_at was accepted");
                }
            }
            Err(error) => refused(error),
        },
        3 => {
            if let Err(error) = requests::tenant_metadata(body) {
                refused(error);
            }
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let query = Query::parse(Some(&text));
            for key in ["limit", "next", "prev", "topics", "type", "time"] {
                let _ = query.get(key);
                let _ = query.array(key);
                let _ = query.operators(key);
            }
            if let Some(next) = query.get("next") {
                let _ = cursor::decode("evt", next);
            }
            if let Some(at) = query.get("time") {
                let _ = time::parse_rfc3339_or_date(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Every committed corpus file still passes its target's checks.
    #[test]
    fn committed_corpora_replay() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, run) in TARGETS {
            let dir = root.join(name);
            let mut count = 0;
            for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if let Err(panic) = std::panic::catch_unwind(|| run(&data)) {
                    panic!("{name}: {path:?} fails: {panic:?}");
                }
                count += 1;
            }
            assert!(count > 0, "{name}: empty corpus");
        }
    }
}
