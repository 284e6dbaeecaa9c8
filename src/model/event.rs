//! Events and delivery attempts as stored, plus the Go-compatible compaction of event payloads
//! (upstream re-encodes `data` with Go's encoder: insignificant whitespace removed and `<`, `>`,
//! `&`, U+2028, U+2029 escaped; key order and number literals kept).

use serde::{Deserialize, Serialize};

use super::identifiers::{AttemptId, DestinationId, EventId, TenantId};
use super::StrMap;

/// A published event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub tenant_id: TenantId,
    /// The `destination_id` the publisher targeted, or empty.
    pub destination_id: DestinationId,
    pub matched_destination_ids: Vec<DestinationId>,
    pub topic: String,
    pub time_nanos: i64,
    /// Offset the publisher wrote `time` with (seconds east of UTC); used by the filter input.
    pub time_offset_seconds: i32,
    pub eligible_for_retry: bool,
    pub metadata: StrMap,
    /// Compact JSON text of the payload object.
    pub data: String,
    /// Until when (unix ms) publishing the same id again is answered as a duplicate.
    pub idempotency_expires_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttemptStatus {
    Success,
    Failed,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Success => "success",
            AttemptStatus::Failed => "failed",
        }
    }
}

/// One delivery attempt of one event to one destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub id: AttemptId,
    pub tenant_id: TenantId,
    pub event_id: EventId,
    pub destination_id: DestinationId,
    pub destination_type: String,
    /// 1-based.
    pub attempt_number: u32,
    pub manual: bool,
    pub status: AttemptStatus,
    pub time_nanos: i64,
    pub code: String,
    /// JSON text of the captured response, if any.
    pub response_data: Option<String>,
    /// The event's topic, denormalized for filtering.
    pub topic: String,
}

/// A pending delivery: the unit the on-disk queue holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTask {
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub destination_id: DestinationId,
    pub attempt_number: u32,
    pub manual: bool,
}

#[cfg(test)]
impl Event {
    /// An event for tests: the given id, tenant and topic, time zero, eligible for retry, data
    /// `{}`, nothing else; tests override what they need with struct-update syntax.
    pub fn sample(id: &str, tenant_id: &str, topic: &str) -> Event {
        Event {
            id: id.into(),
            tenant_id: tenant_id.into(),
            destination_id: Default::default(),
            matched_destination_ids: Vec::new(),
            topic: topic.into(),
            time_nanos: 0,
            time_offset_seconds: 0,
            eligible_for_retry: true,
            metadata: StrMap::new(),
            data: "{}".into(),
            idempotency_expires_ms: 0,
        }
    }
}

/// Re-encodes valid JSON text the way Go's encoder writes it: no insignificant whitespace, and
/// `<`, `>`, `&`, U+2028 and U+2029 inside strings escaped. Input must already be valid JSON.
pub fn go_compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            if escaped {
                escaped = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '"' => {
                    in_string = false;
                    out.push(c);
                }
                '<' => out.push_str("\\u003c"),
                '>' => out.push_str("\\u003e"),
                '&' => out.push_str("\\u0026"),
                '\u{2028}' => out.push_str("\\u2028"),
                '\u{2029}' => out.push_str("\\u2029"),
                _ => out.push(c),
            }
        } else {
            match c {
                ' ' | '\n' | '\r' | '\t' => {}
                '"' => {
                    in_string = true;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_like_go() {
        let input = "{ \"b\" : 1.50 ,\n \"a\": [ \"x y\", \"<&>\" ], \"s\": \"q\\\" \u{2028}\" }";
        assert_eq!(
            go_compact(input),
            r#"{"b":1.50,"a":["x y","\u003c\u0026\u003e"],"s":"q\" \u2028"}"#
        );
    }

    #[test]
    fn keeps_escapes_and_order() {
        let input = r#"{"z":"\\","y":"\u00e9"}"#;
        assert_eq!(go_compact(input), input);
    }
}
