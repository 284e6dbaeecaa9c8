//! Per-bucket counters of the two logs, the source of `GET /metrics/*`: their key layout and
//! their upkeep. `log_records` calls in here in the same write transaction as every insert or
//! removal of a log row, so the counters always equal a count of the logs (`outpost check`
//! verifies it).
//!
//! A counter row is keyed by `level ++ bucket start ++ tuple` and holds a count (u64):
//!
//! - *level* is one byte: minute (0), hour (1) or day (2). Every counted row is counted once at
//!   each level, so a query takes whole days, hours or minutes from the coarsest level that fits;
//! - *bucket start* is the UTC second the bucket starts at (a multiple of the level's length
//!   since the epoch), as an order-preserving i64 (`tables::ordered_i64`), so each level is one
//!   time-ordered range of keys;
//! - *tuple* is everything a metric can group or filter by. For attempts: tenant id,
//!   destination id, destination type, topic, status (1 byte), code, manual (1 byte) and
//!   attempt number (u32 BE); every attempt measure is a sum over tuples. For events: tenant id,
//!   topic and the matched destination ids (a u32 BE count, then each id). Strings are
//!   length-prefixed (u32 BE), as in every other key.
//!
//! An attempt is counted at its own `time`. An event is counted at its (publisher-given) `time`
//! while it is stored *and* has at least one attempt (`attempts_by_event` has a row of its id):
//! upstream's metrics count events once their first attempt is logged.

use redb::{ReadableTable, Table, WriteTransaction};

use super::{log_records, tables, StoreError};
use crate::model::event::{Attempt, AttemptStatus, Event};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A bucket length counters are kept at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Minute,
    Hour,
    Day,
}

impl Level {
    /// Every level, coarsest first.
    pub const COARSEST_FIRST: [Level; 3] = [Level::Day, Level::Hour, Level::Minute];

    pub fn seconds(self) -> i64 {
        match self {
            Level::Minute => 60,
            Level::Hour => 3_600,
            Level::Day => 86_400,
        }
    }

    fn tag(self) -> u8 {
        match self {
            Level::Minute => 0,
            Level::Hour => 1,
            Level::Day => 2,
        }
    }

    /// The start (unix seconds) of the bucket of this level holding `time_nanos`.
    pub fn bucket_of(self, time_nanos: i64) -> i64 {
        let seconds = time_nanos.div_euclid(NANOS_PER_SECOND);
        seconds.div_euclid(self.seconds()) * self.seconds()
    }
}

/// `level ++ bucket start`: the first bytes of every counter key of that bucket.
pub fn bucket_key(level: Level, bucket_start_seconds: i64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = level.tag();
    key[1..].copy_from_slice(&tables::ordered_i64(bucket_start_seconds));
    key
}

/// The key range holding every counter of `level`.
pub fn level_range(level: Level) -> (Vec<u8>, Vec<u8>) {
    (vec![level.tag()], vec![level.tag() + 1])
}

/// The bucket start (unix seconds) and tuple bytes of a counter key.
pub fn split_counter_key(key: &[u8]) -> Option<(i64, &[u8])> {
    let start = tables::decode_ordered_i64(key.get(1..9)?)?;
    Some((start, key.get(9..)?))
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&tables::tenant_prefix(text));
}

/// Reads length-prefixed strings and fixed-width numbers off the front of a tuple.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.u32()?).ok()?;
        std::str::from_utf8(self.bytes(len)?).ok()
    }
    fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

/// What an attempt counter counts by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptTuple<'a> {
    pub tenant_id: &'a str,
    pub destination_id: &'a str,
    pub destination_type: &'a str,
    pub topic: &'a str,
    pub status: AttemptStatus,
    pub code: &'a str,
    pub manual: bool,
    pub attempt_number: u32,
}

impl<'a> AttemptTuple<'a> {
    pub fn of(attempt: &'a Attempt) -> AttemptTuple<'a> {
        AttemptTuple {
            tenant_id: &attempt.tenant_id,
            destination_id: &attempt.destination_id,
            destination_type: &attempt.destination_type,
            topic: &attempt.topic,
            status: attempt.status,
            code: &attempt.code,
            manual: attempt.manual,
            attempt_number: attempt.attempt_number,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        put_str(&mut out, self.tenant_id);
        put_str(&mut out, self.destination_id);
        put_str(&mut out, self.destination_type);
        put_str(&mut out, self.topic);
        out.push(match self.status {
            AttemptStatus::Success => 1,
            AttemptStatus::Failed => 0,
        });
        put_str(&mut out, self.code);
        out.push(u8::from(self.manual));
        out.extend_from_slice(&self.attempt_number.to_be_bytes());
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Option<AttemptTuple<'a>> {
        let mut r = Reader(bytes);
        let tuple = AttemptTuple {
            tenant_id: r.str()?,
            destination_id: r.str()?,
            destination_type: r.str()?,
            topic: r.str()?,
            status: match r.u8()? {
                1 => AttemptStatus::Success,
                0 => AttemptStatus::Failed,
                _ => return None,
            },
            code: r.str()?,
            manual: match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
            attempt_number: r.u32()?,
        };
        r.end()?;
        Some(tuple)
    }
}

/// What an event counter counts by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTuple<'a> {
    pub tenant_id: &'a str,
    pub topic: &'a str,
    pub destination_ids: Vec<&'a str>,
}

impl<'a> EventTuple<'a> {
    pub fn of(event: &'a Event) -> EventTuple<'a> {
        EventTuple {
            tenant_id: &event.tenant_id,
            topic: &event.topic,
            destination_ids: event
                .matched_destination_ids
                .iter()
                .map(|d| d.as_str())
                .collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        put_str(&mut out, self.tenant_id);
        put_str(&mut out, self.topic);
        let count = u32::try_from(self.destination_ids.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for id in &self.destination_ids {
            put_str(&mut out, id);
        }
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Option<EventTuple<'a>> {
        let mut r = Reader(bytes);
        let tenant_id = r.str()?;
        let topic = r.str()?;
        let count = r.u32()?;
        let mut destination_ids = Vec::new();
        for _ in 0..count {
            destination_ids.push(r.str()?);
        }
        r.end()?;
        Some(EventTuple {
            tenant_id,
            topic,
            destination_ids,
        })
    }
}

/// The key of the counter of `tuple` at `time_nanos` at every level.
pub(super) fn counter_keys(time_nanos: i64, tuple: &[u8]) -> [Vec<u8>; 3] {
    Level::COARSEST_FIRST.map(|level| {
        let mut key = bucket_key(level, level.bucket_of(time_nanos)).to_vec();
        key.extend_from_slice(tuple);
        key
    })
}

/// Adds `delta` to the counter `key` of every level at `time_nanos`; a counter that reaches
/// zero is removed, so the tables hold only buckets with something in them.
fn add(
    table: &mut Table<'_, &'static [u8], u64>,
    time_nanos: i64,
    tuple: &[u8],
    delta: i64,
) -> Result<(), StoreError> {
    for key in counter_keys(time_nanos, tuple) {
        let current = table.get(key.as_slice())?.map_or(0, |v| v.value());
        let next = i128::from(current) + i128::from(delta);
        if next > 0 {
            table.insert(key.as_slice(), u64::try_from(next).unwrap_or(u64::MAX))?;
        } else if current > 0 {
            table.remove(key.as_slice())?;
        }
    }
    Ok(())
}

/// Counts an attempt in (`delta` 1) or out (-1).
pub(super) fn count_attempt(
    txn: &WriteTransaction,
    attempt: &Attempt,
    delta: i64,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::ATTEMPT_COUNTS)?;
    add(
        &mut table,
        attempt.time_nanos,
        &AttemptTuple::of(attempt).encode(),
        delta,
    )
}

/// Counts an event in (`delta` 1) or out (-1).
pub(super) fn count_event(
    txn: &WriteTransaction,
    event: &Event,
    delta: i64,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(tables::EVENT_COUNTS)?;
    add(
        &mut table,
        event.time_nanos,
        &EventTuple::of(event).encode(),
        delta,
    )
}

/// Whether any attempt of the event is stored (`attempts_by_event` has a row of its id).
pub fn event_has_attempts(
    by_event: &impl ReadableTable<&'static [u8], &'static str>,
    event_id: &str,
) -> Result<bool, StoreError> {
    let prefix = tables::tenant_prefix(event_id);
    let mut rows = match tables::prefix_end(&prefix) {
        Some(end) => by_event.range(prefix.as_slice()..end.as_slice())?,
        None => by_event.range(prefix.as_slice()..)?,
    };
    Ok(rows.next().transpose()?.is_some())
}

/// The stored event with this id, for counting it when its first attempt arrives or its last
/// one goes.
pub(super) fn stored_event(txn: &WriteTransaction, id: &str) -> Result<Option<Event>, StoreError> {
    let ingested = txn.open_table(tables::EVENT_INGESTED)?;
    let log = txn.open_table(tables::EVENT_LOG)?;
    Ok(log_records::find_event(&ingested, &log, id)?.map(|(_, event)| event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_round_trip() {
        let attempt = AttemptTuple {
            tenant_id: "t",
            destination_id: "d1",
            destination_type: "webhook",
            topic: "user.created",
            status: AttemptStatus::Failed,
            code: "500",
            manual: true,
            attempt_number: 3,
        };
        let bytes = attempt.encode();
        assert_eq!(AttemptTuple::decode(&bytes), Some(attempt));
        assert_eq!(AttemptTuple::decode(&bytes[..bytes.len() - 1]), None);
        let event = EventTuple {
            tenant_id: "t",
            topic: "",
            destination_ids: vec!["a", "bc"],
        };
        let bytes = event.encode();
        assert_eq!(EventTuple::decode(&bytes), Some(event));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(EventTuple::decode(&longer), None);
    }

    #[test]
    fn buckets_floor_to_their_level() {
        let nanos = |s: i64| s * NANOS_PER_SECOND;
        assert_eq!(Level::Minute.bucket_of(nanos(119) + 5), 60);
        assert_eq!(Level::Hour.bucket_of(nanos(7_199)), 3_600);
        assert_eq!(Level::Day.bucket_of(nanos(86_400)), 86_400);
        assert_eq!(Level::Minute.bucket_of(-1), -60);
        assert_eq!(Level::Day.bucket_of(nanos(-1)), -86_400);
    }

    #[test]
    fn keys_sort_by_level_then_time() {
        assert!(bucket_key(Level::Minute, 120) < bucket_key(Level::Minute, 180));
        assert!(bucket_key(Level::Minute, -60) < bucket_key(Level::Minute, 0));
        assert!(bucket_key(Level::Minute, i64::MAX) < bucket_key(Level::Hour, i64::MIN));
        let mut key = bucket_key(Level::Hour, 3_600).to_vec();
        key.extend_from_slice(b"tuple");
        assert_eq!(split_counter_key(&key), Some((3_600, b"tuple".as_slice())));
    }
}
