//! Reads of the event and attempt logs: point lookups, the latest attempt of an (event,
//! destination) pair, and keyset scans over the time-ordered listings with upstream's filters.

use std::ops::Bound;

use redb::{ReadTransaction, TableDefinition};

type KeyBounds = (Bound<Vec<u8>>, Bound<Vec<u8>>);

use super::tables;
use super::{codec, log_records, Direction, Store, StoreError};
use crate::model::event::{Attempt, AttemptStatus, Event};
use crate::model::identifiers::{DestinationId, EventId, TenantId};

/// Inclusive/exclusive bounds on a time, in unix nanoseconds.
#[derive(Clone, Debug, Default)]
pub struct TimeRange {
    pub gte: Option<i64>,
    pub gt: Option<i64>,
    pub lte: Option<i64>,
    pub lt: Option<i64>,
}

impl TimeRange {
    /// The smallest included time.
    fn low(&self) -> i64 {
        let a = self.gte.unwrap_or(i64::MIN);
        let b = self.gt.map(|t| t.saturating_add(1)).unwrap_or(i64::MIN);
        a.max(b)
    }
    /// The largest included time.
    fn high(&self) -> i64 {
        let a = self.lte.unwrap_or(i64::MAX);
        let b = self.lt.map(|t| t.saturating_sub(1)).unwrap_or(i64::MAX);
        a.min(b)
    }
}

#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub tenant_ids: Vec<TenantId>,
    pub ids: Vec<EventId>,
    pub destination_ids: Vec<DestinationId>,
    pub topics: Vec<String>,
    pub time: TimeRange,
}

impl EventFilter {
    fn accepts(&self, event: &Event) -> bool {
        (self.tenant_ids.is_empty() || self.tenant_ids.contains(&event.tenant_id))
            && (self.ids.is_empty() || self.ids.contains(&event.id))
            && (self.topics.is_empty() || self.topics.contains(&event.topic))
            && (self.destination_ids.is_empty()
                || event
                    .matched_destination_ids
                    .iter()
                    .any(|d| self.destination_ids.contains(d)))
    }
}

#[derive(Clone, Debug, Default)]
pub struct AttemptFilter {
    pub tenant_ids: Vec<TenantId>,
    pub event_ids: Vec<EventId>,
    pub destination_ids: Vec<DestinationId>,
    pub destination_types: Vec<String>,
    pub status: Option<AttemptStatus>,
    pub topics: Vec<String>,
    pub time: TimeRange,
}

impl AttemptFilter {
    fn accepts(&self, attempt: &Attempt) -> bool {
        (self.tenant_ids.is_empty() || self.tenant_ids.contains(&attempt.tenant_id))
            && (self.event_ids.is_empty() || self.event_ids.contains(&attempt.event_id))
            && (self.destination_ids.is_empty()
                || self.destination_ids.contains(&attempt.destination_id))
            && (self.destination_types.is_empty()
                || self.destination_types.contains(&attempt.destination_type))
            && self.status.is_none_or(|s| s == attempt.status)
            && (self.topics.is_empty() || self.topics.contains(&attempt.topic))
    }
}

/// A position in a time-ordered listing: `(time, id)`.
pub type Position = (i64, String);

/// Key bounds of a scan over `prefix ++ time ++ id` keys.
fn bounds(
    prefix: &[u8],
    time: &TimeRange,
    direction: Direction,
    after: Option<&Position>,
) -> Option<KeyBounds> {
    let (low, high) = (time.low(), time.high());
    if low > high {
        return None;
    }
    let with_prefix = |bytes: &[u8]| {
        let mut key = prefix.to_vec();
        key.extend_from_slice(bytes);
        key
    };
    let mut lower = Bound::Included(with_prefix(&tables::ordered_i64(low)));
    let mut upper = match high.checked_add(1) {
        Some(next) => Bound::Excluded(with_prefix(&tables::ordered_i64(next))),
        None => match tables::prefix_end(prefix) {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        },
    };
    if let Some((t, id)) = after {
        let cursor = with_prefix(&tables::time_key(*t, id));
        match direction {
            Direction::Asc => {
                if let Bound::Included(l) = &lower {
                    if cursor >= *l {
                        lower = Bound::Excluded(cursor);
                    }
                }
            }
            Direction::Desc => {
                let tighter = match &upper {
                    Bound::Excluded(u) => cursor < *u,
                    _ => true,
                };
                if tighter {
                    upper = Bound::Excluded(cursor);
                }
            }
        }
    }
    Some((lower, upper))
}

/// One keyset scan: which index, under which key prefix, in which order.
struct Scan<'a, V: redb::Value + 'static> {
    index: TableDefinition<'static, &'static [u8], V>,
    prefix: &'a [u8],
    time: &'a TimeRange,
    direction: Direction,
    after: Option<&'a Position>,
    limit: usize,
}

/// Walks an index of `prefix ++ time ++ id` keys and loads each record with `load` (given the
/// `time ++ id` part of the key) until `limit` pass `accept`.
fn scan<T, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    spec: Scan<'_, V>,
    load: impl Fn(&[u8]) -> Result<Option<T>, StoreError>,
    accept: impl Fn(&T) -> bool,
) -> Result<Vec<T>, StoreError> {
    let Scan {
        index,
        prefix,
        time,
        direction,
        after,
        limit,
    } = spec;
    let Some((lower, upper)) = bounds(prefix, time, direction, after) else {
        return Ok(Vec::new());
    };
    let index = txn.open_table(index)?;
    let lower_ref = match &lower {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    };
    let upper_ref = match &upper {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    };
    let range = index.range::<&[u8]>((lower_ref, upper_ref))?;
    let rows: Box<dyn Iterator<Item = _>> = match direction {
        Direction::Asc => Box::new(range),
        Direction::Desc => Box::new(range.rev()),
    };
    let mut out = Vec::new();
    for row in rows {
        if out.len() >= limit {
            break;
        }
        let (key, _) = row?;
        let Some(time_and_id) = key.value().get(prefix.len()..) else {
            continue;
        };
        if let Some(record) = load(time_and_id)? {
            if accept(&record) {
                out.push(record);
            }
        }
    }
    Ok(out)
}

/// Loads events by the `time ++ id` part of a listing key, through `event_ingested`.
fn event_loader(
    txn: &ReadTransaction,
) -> Result<impl Fn(&[u8]) -> Result<Option<Event>, StoreError>, StoreError> {
    let ingested = txn.open_table(tables::EVENT_INGESTED)?;
    let log = txn.open_table(tables::EVENT_LOG)?;
    Ok(move |time_and_id: &[u8]| {
        let Some(id) = time_and_id
            .get(8..)
            .and_then(|b| std::str::from_utf8(b).ok())
        else {
            return Ok(None);
        };
        Ok(log_records::find_event(&ingested, &log, id)?.map(|(_, event)| event))
    })
}

/// Loads attempts by their `attempt_log` key (`time ++ id`), which ends every attempt listing
/// key.
fn attempt_loader(
    txn: &ReadTransaction,
) -> Result<impl Fn(&[u8]) -> Result<Option<Attempt>, StoreError>, StoreError> {
    let log = txn.open_table(tables::ATTEMPT_LOG)?;
    Ok(move |key: &[u8]| match log.get(key)? {
        Some(bytes) => Ok(Some(codec::decode("attempt_log", bytes.value())?)),
        None => Ok(None),
    })
}

impl Store {
    pub fn get_event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let txn = self.read()?;
        let ingested = txn.open_table(tables::EVENT_INGESTED)?;
        let log = txn.open_table(tables::EVENT_LOG)?;
        Ok(log_records::find_event(&ingested, &log, id)?.map(|(_, event)| event))
    }

    pub fn get_attempt(&self, id: &str) -> Result<Option<Attempt>, StoreError> {
        let txn = self.read()?;
        let times = txn.open_table(tables::ATTEMPT_TIME)?;
        let log = txn.open_table(tables::ATTEMPT_LOG)?;
        log_records::find_attempt(&times, &log, id)
    }

    /// The highest-numbered attempt of an (event, destination) pair.
    pub fn latest_attempt(
        &self,
        event_id: &str,
        destination_id: &str,
    ) -> Result<Option<Attempt>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
        let prefix = tables::pair_prefix(event_id, destination_id);
        let Some(end) = tables::prefix_end(&prefix) else {
            return Ok(None);
        };
        let last = index.range(prefix.as_slice()..end.as_slice())?.next_back();
        let Some(row) = last else {
            return Ok(None);
        };
        let (_, id) = row?;
        let times = txn.open_table(tables::ATTEMPT_TIME)?;
        let log = txn.open_table(tables::ATTEMPT_LOG)?;
        log_records::find_attempt(&times, &log, id.value())
    }

    /// Events matching `filter`, in `direction` order of (time, id), after `after`.
    pub fn scan_events(
        &self,
        filter: &EventFilter,
        direction: Direction,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let txn = self.read()?;
        let load = event_loader(&txn)?;
        if let [tenant] = filter.tenant_ids.as_slice() {
            let prefix = tables::tenant_prefix(tenant);
            return scan(
                &txn,
                Scan {
                    index: tables::EVENTS_BY_TENANT,
                    prefix: &prefix,
                    time: &filter.time,
                    direction,
                    after,
                    limit,
                },
                load,
                |e| filter.accepts(e),
            );
        }
        scan(
            &txn,
            Scan {
                index: tables::EVENTS_BY_TIME,
                prefix: &[],
                time: &filter.time,
                direction,
                after,
                limit,
            },
            load,
            |e| filter.accepts(e),
        )
    }

    /// Attempts matching `filter`, in `direction` order of (time, id), after `after`.
    pub fn scan_attempts(
        &self,
        filter: &AttemptFilter,
        direction: Direction,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<Vec<Attempt>, StoreError> {
        if let [event_id] = filter.event_ids.as_slice() {
            return self.scan_event_attempts(event_id, filter, direction, after, limit);
        }
        let txn = self.read()?;
        let load = attempt_loader(&txn)?;
        if let [tenant] = filter.tenant_ids.as_slice() {
            let prefix = tables::tenant_prefix(tenant);
            return scan(
                &txn,
                Scan {
                    index: tables::ATTEMPTS_BY_TENANT,
                    prefix: &prefix,
                    time: &filter.time,
                    direction,
                    after,
                    limit,
                },
                load,
                |a| filter.accepts(a),
            );
        }
        scan(
            &txn,
            Scan {
                index: tables::ATTEMPT_LOG,
                prefix: &[],
                time: &filter.time,
                direction,
                after,
                limit,
            },
            load,
            |a| filter.accepts(a),
        )
    }

    /// One event's attempts, through the per-event index, sorted in memory.
    fn scan_event_attempts(
        &self,
        event_id: &str,
        filter: &AttemptFilter,
        direction: Direction,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<Vec<Attempt>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
        let times = txn.open_table(tables::ATTEMPT_TIME)?;
        let log = txn.open_table(tables::ATTEMPT_LOG)?;
        let prefix = tables::tenant_prefix(event_id);
        let Some(end) = tables::prefix_end(&prefix) else {
            return Ok(Vec::new());
        };
        let (low, high) = (filter.time.low(), filter.time.high());
        let mut found = Vec::new();
        for row in index.range(prefix.as_slice()..end.as_slice())? {
            let (_, id) = row?;
            if let Some(attempt) = log_records::find_attempt(&times, &log, id.value())? {
                if filter.accepts(&attempt)
                    && attempt.time_nanos >= low
                    && attempt.time_nanos <= high
                {
                    found.push(attempt);
                }
            }
        }
        found.sort_by(|a, b| (a.time_nanos, &a.id).cmp(&(b.time_nanos, &b.id)));
        if direction == Direction::Desc {
            found.reverse();
        }
        let beyond = |a: &Attempt| match after {
            None => true,
            Some((t, id)) => {
                let here = (a.time_nanos, a.id.as_str());
                let there = (*t, id.as_str());
                match direction {
                    Direction::Asc => here > there,
                    Direction::Desc => here < there,
                }
            }
        };
        Ok(found
            .into_iter()
            .filter(|a| beyond(a))
            .take(limit)
            .collect())
    }
}
