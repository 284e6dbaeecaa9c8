//! Table definitions and key layouts. Composite keys are byte strings built so that redb's
//! ordering is the order we list in: fixed-width big-endian numbers and length-prefixed strings.

use redb::TableDefinition;

/// `schema_version` → u32 (big-endian).
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// tenant id → `Tenant` record.
pub const TENANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenants");
/// `created_at_ms (u64 BE) ++ tenant id` → (). Listing order for `GET /tenants`.
pub const TENANTS_BY_CREATED: TableDefinition<&[u8], ()> =
    TableDefinition::new("tenants_by_created");
/// `tenant prefix ++ destination id` → `Destination` record.
pub const DESTINATIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("destinations");

/// Log position (`ingested_ms u64 BE ++ sequence u64 BE`) → `Event` record: the event log, in
/// the order events were stored (their ingestion time, not their publisher-given `time`), so
/// publishes append at the right edge of the tree and log retention deletes from the left.
pub const EVENT_LOG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("event_log");
/// `time ++ event id` → (). Listing order of every event (publisher time).
pub const EVENTS_BY_TIME: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_time");
/// `tenant prefix ++ time ++ event id` → (). Listing order of one tenant's events.
pub const EVENTS_BY_TENANT: TableDefinition<&[u8], ()> = TableDefinition::new("events_by_tenant");
/// event id → its log position (16 bytes): where the event sits in `event_log`. (Schema 1 held
/// the ingestion ms alone, 8 bytes.)
pub const EVENT_INGESTED: TableDefinition<&str, &[u8]> = TableDefinition::new("event_ingested");
/// `time ++ attempt id` → `Attempt` record: the attempt log, in the order attempts were made
/// (an attempt's time is the clock when it was made). Also the listing of every attempt.
pub const ATTEMPT_LOG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("attempt_log");
/// attempt id → its time (`ordered_i64` of unix nanoseconds): where it sits in `attempt_log`.
pub const ATTEMPT_TIME: TableDefinition<&str, &[u8]> = TableDefinition::new("attempt_time");
/// `tenant prefix ++ time ++ attempt id` → ().
pub const ATTEMPTS_BY_TENANT: TableDefinition<&[u8], ()> =
    TableDefinition::new("attempts_by_tenant");
/// `event prefix ++ destination prefix ++ attempt number (u32 BE)` → attempt id. The last row
/// of a pair is its latest attempt.
pub const ATTEMPTS_BY_EVENT: TableDefinition<&[u8], &str> =
    TableDefinition::new("attempts_by_event");
/// `due_at_ms (u64 BE) ++ seq (u64 BE)` → `DeliveryTask`. The on-disk delivery queue: a row
/// stays until its outcome is committed.
pub const QUEUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("queue");
/// `event prefix ++ destination id` → queue key of the pair's pending automatic retry.
pub const PENDING_RETRY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending_retry");
/// `level ++ bucket start ++ attempt tuple` → how many attempts of that tuple were made in the
/// bucket (see `counters.rs`).
pub const ATTEMPT_COUNTS: TableDefinition<&[u8], u64> = TableDefinition::new("attempt_counts");
/// `level ++ bucket start ++ event tuple` → how many stored events with at least one attempt
/// have that tuple and a `time` in the bucket (see `counters.rs`).
pub const EVENT_COUNTS: TableDefinition<&[u8], u64> = TableDefinition::new("event_counts");

/// `tenant prefix ++ destination id` → `AlertState` record: the destination's failure streak
/// and when it last raised an exhausted-retries alert. No row: nothing to remember.
pub const ALERT_STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("alert_state");
/// Sequence number (u64 BE) → operator event body (the JSON the sink receives): events waiting
/// to be sent, in the order their commits made them.
pub const OPERATOR_OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("operator_outbox");

/// Invokes `$apply!(TABLE)` for every table, so code that must touch all of them (creation,
/// backup) cannot forget one.
macro_rules! every_table {
    ($apply:ident) => {
        $apply!(META);
        $apply!(TENANTS);
        $apply!(TENANTS_BY_CREATED);
        $apply!(DESTINATIONS);
        $apply!(EVENT_LOG);
        $apply!(EVENTS_BY_TIME);
        $apply!(EVENTS_BY_TENANT);
        $apply!(EVENT_INGESTED);
        $apply!(ATTEMPT_LOG);
        $apply!(ATTEMPT_TIME);
        $apply!(ATTEMPTS_BY_TENANT);
        $apply!(ATTEMPTS_BY_EVENT);
        $apply!(QUEUE);
        $apply!(PENDING_RETRY);
        $apply!(ALERT_STATE);
        $apply!(OPERATOR_OUTBOX);
        $apply!(ATTEMPT_COUNTS);
        $apply!(EVENT_COUNTS);
    };
}
pub(crate) use every_table;

/// The schema version this binary writes and the newest it can open. Version 1 kept events and
/// attempts keyed by id (see `legacy.rs`); version 2 keys them by time (`event_log`,
/// `attempt_log`). A version-1 file is upgraded on open (`migrate.rs`).
pub const SCHEMA_VERSION: u32 = 2;

/// Length-prefixed tenant id: all of one tenant's rows share this prefix and no other
/// tenant's key can start with it.
pub fn tenant_prefix(tenant_id: &str) -> Vec<u8> {
    let len = u32::try_from(tenant_id.len()).unwrap_or(u32::MAX);
    let mut key = Vec::with_capacity(4 + tenant_id.len());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(tenant_id.as_bytes());
    key
}

pub fn destination_key(tenant_id: &str, destination_id: &str) -> Vec<u8> {
    let mut key = tenant_prefix(tenant_id);
    key.extend_from_slice(destination_id.as_bytes());
    key
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub fn tenant_created_key(created_at_ms: i64, tenant_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + tenant_id.len());
    key.extend_from_slice(&(created_at_ms.max(0) as u64).to_be_bytes());
    key.extend_from_slice(tenant_id.as_bytes());
    key
}

/// An `i64` as 8 bytes whose unsigned order is the signed order.
pub fn ordered_i64(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn decode_ordered_i64(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// `time ++ id`: listing key of an event or attempt.
pub fn time_key(time_nanos: i64, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + id.len());
    key.extend_from_slice(&ordered_i64(time_nanos));
    key.extend_from_slice(id.as_bytes());
    key
}

/// An event's key in `event_log`: when it was stored (unix ms), then a sequence number that only
/// grows, so the keys of successive publishes keep increasing even within one millisecond and
/// every insert lands at the right edge of the tree.
pub type LogPosition = [u8; 16];

pub fn log_position(ingested_ms: u64, seq: u64) -> LogPosition {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&ingested_ms.to_be_bytes());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// A log position read back from bytes (an `event_log` key or an `event_ingested` value).
pub fn position_of(bytes: &[u8]) -> Option<LogPosition> {
    bytes.try_into().ok()
}

/// The ingestion ms and sequence number of a log position.
pub fn split_position(position: &[u8]) -> Option<(u64, u64)> {
    let ms: [u8; 8] = position.get(..8)?.try_into().ok()?;
    let seq: [u8; 8] = position.get(8..16)?.try_into().ok()?;
    Some((u64::from_be_bytes(ms), u64::from_be_bytes(seq)))
}

/// `ingested_ms ++ event id`: an event's key in schema 1's `events_by_ingestion`.
pub fn ingestion_key(ingested_ms: u64, event_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + event_id.len());
    key.extend_from_slice(&ingested_ms.to_be_bytes());
    key.extend_from_slice(event_id.as_bytes());
    key
}

/// The value of a schema-1 `event_ingested` row: the ingestion ms.
pub fn ingested_ms_of(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

/// The time (unix nanoseconds) and id of a `time ++ id` key.
pub fn split_time_key(key: &[u8]) -> Option<(i64, &str)> {
    let raw: [u8; 8] = key.get(..8)?.try_into().ok()?;
    let id = std::str::from_utf8(key.get(8..)?).ok()?;
    Some(((u64::from_be_bytes(raw) ^ (1 << 63)) as i64, id))
}

/// `tenant prefix ++ time ++ id`.
pub fn tenant_time_key(tenant_id: &str, time_nanos: i64, id: &str) -> Vec<u8> {
    let mut key = tenant_prefix(tenant_id);
    key.extend_from_slice(&time_key(time_nanos, id));
    key
}

/// `event prefix ++ destination prefix`: all attempts of one pair share it.
pub fn pair_prefix(event_id: &str, destination_id: &str) -> Vec<u8> {
    let mut key = tenant_prefix(event_id);
    key.extend_from_slice(&tenant_prefix(destination_id));
    key
}

pub fn attempt_by_event_key(event_id: &str, destination_id: &str, number: u32) -> Vec<u8> {
    let mut key = pair_prefix(event_id, destination_id);
    key.extend_from_slice(&number.to_be_bytes());
    key
}

/// The attempt number at the end of an `attempts_by_event` key whose pair prefix is
/// `prefix_len` bytes long.
pub fn attempt_number_of(key: &[u8], prefix_len: usize) -> Option<u32> {
    let raw: [u8; 4] = key.get(prefix_len..)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}

pub fn pending_retry_key(event_id: &str, destination_id: &str) -> Vec<u8> {
    pair_prefix(event_id, destination_id)
}

/// A queue row's key: when it is due, then a sequence number for uniqueness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    pub due_ms: u64,
    pub seq: u64,
}

impl QueueKey {
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.due_ms.to_be_bytes());
        out[8..].copy_from_slice(&self.seq.to_be_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<QueueKey> {
        let due: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
        let seq: [u8; 8] = bytes.get(8..16)?.try_into().ok()?;
        Some(QueueKey {
            due_ms: u64::from_be_bytes(due),
            seq: u64::from_be_bytes(seq),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_i64_sorts_like_signed() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in values.windows(2) {
            assert!(ordered_i64(pair[0]) < ordered_i64(pair[1]));
            assert_eq!(decode_ordered_i64(&ordered_i64(pair[0])), Some(pair[0]));
        }
    }

    #[test]
    fn queue_keys_round_trip_in_due_order() {
        let a = QueueKey { due_ms: 5, seq: 9 };
        let b = QueueKey { due_ms: 6, seq: 1 };
        assert!(a.to_bytes() < b.to_bytes());
        assert_eq!(QueueKey::from_bytes(&a.to_bytes()), Some(a));
    }

    #[test]
    fn tenant_prefixes_do_not_collide() {
        let a = destination_key("ab", "c");
        let b = destination_key("a", "bc");
        assert_ne!(a, b);
        assert!(!a.starts_with(&tenant_prefix("a")));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }

    #[test]
    fn created_keys_sort_by_time_then_id() {
        assert!(tenant_created_key(1, "z") < tenant_created_key(2, "a"));
        assert!(tenant_created_key(2, "a") < tenant_created_key(2, "b"));
    }
}
