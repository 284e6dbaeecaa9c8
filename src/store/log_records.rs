//! The event and attempt logs of schema 2: every write and point lookup of an event or an
//! attempt goes through here, so each record and all of its index rows always change together.
//!
//! An event lives in `event_log` at its log position (`ingested_ms ++ sequence`) and is found
//! by id through `event_ingested`; it is listed through `events_by_time` and `events_by_tenant`. An attempt
//! lives in `attempt_log` under `time ++ id` and is found by id through `attempt_time`; it is
//! listed through `attempt_log` itself, `attempts_by_tenant` (whose key ends with its
//! `attempt_log` key) and `attempts_by_event`.
//!
//! The metrics counters (`counters.rs`) change in the same calls: an attempt is counted when
//! it is stored and uncounted when it is removed; an event is counted while it is stored and
//! has at least one attempt.

use std::sync::atomic::{AtomicU64, Ordering};

use redb::{ReadableTable, WriteTransaction};

use super::tables;
use super::{codec, counters, StoreError};
use crate::model::event::{Attempt, Event};

/// Gives out log positions: the sequence number only grows while the store is open, and starts
/// past the last position on disk.
#[derive(Debug, Default)]
pub struct LogSequence(AtomicU64);

impl LogSequence {
    /// Starts after the last position of `log`.
    pub(super) fn after_last(
        log: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ) -> Result<LogSequence, StoreError> {
        Ok(LogSequence(AtomicU64::new(sequence_after_last(log)?)))
    }

    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// The sequence number after the last position in `log` (0 when it is empty).
pub(super) fn sequence_after_last(
    log: &impl ReadableTable<&'static [u8], &'static [u8]>,
) -> Result<u64, StoreError> {
    let last = log.last()?;
    Ok(last
        .and_then(|(key, _)| tables::split_position(key.value()))
        .map_or(0, |(_, seq)| seq.saturating_add(1)))
}

/// Stores an event ingested at `ingested_ms` with its id and listing rows, at a fresh position
/// (a position is never reused, even if the clock went back).
pub(super) fn insert_event(
    txn: &WriteTransaction,
    sequence: &LogSequence,
    ingested_ms: u64,
    event: &Event,
) -> Result<(), StoreError> {
    let mut log = txn.open_table(tables::EVENT_LOG)?;
    let mut position = tables::log_position(ingested_ms, sequence.next());
    while log.get(position.as_slice())?.is_some() {
        position = tables::log_position(ingested_ms, sequence.next());
    }
    log.insert(
        position.as_slice(),
        codec::encode("event_log", event)?.as_slice(),
    )?;
    txn.open_table(tables::EVENT_INGESTED)?
        .insert(event.id.as_str(), position.as_slice())?;
    txn.open_table(tables::EVENTS_BY_TIME)?
        .insert(tables::time_key(event.time_nanos, &event.id).as_slice(), ())?;
    txn.open_table(tables::EVENTS_BY_TENANT)?.insert(
        tables::tenant_time_key(&event.tenant_id, event.time_nanos, &event.id).as_slice(),
        (),
    )?;
    // An id published again after its idempotency window keeps the attempts of earlier rounds.
    if counters::event_has_attempts(&txn.open_table(tables::ATTEMPTS_BY_EVENT)?, &event.id)? {
        counters::count_event(txn, event, 1)?;
    }
    Ok(())
}

/// Removes the event stored at `position` and all its rows.
pub(super) fn remove_event(
    txn: &WriteTransaction,
    position: &[u8],
    event: &Event,
) -> Result<(), StoreError> {
    txn.open_table(tables::EVENT_LOG)?.remove(position)?;
    let mut ingested = txn.open_table(tables::EVENT_INGESTED)?;
    let ours = ingested
        .get(event.id.as_str())?
        .is_some_and(|v| v.value() == position);
    if ours {
        ingested.remove(event.id.as_str())?;
        if counters::event_has_attempts(&txn.open_table(tables::ATTEMPTS_BY_EVENT)?, &event.id)? {
            counters::count_event(txn, event, -1)?;
        }
    }
    txn.open_table(tables::EVENTS_BY_TIME)?
        .remove(tables::time_key(event.time_nanos, &event.id).as_slice())?;
    txn.open_table(tables::EVENTS_BY_TENANT)?.remove(
        tables::tenant_time_key(&event.tenant_id, event.time_nanos, &event.id).as_slice(),
    )?;
    Ok(())
}

/// The event with this id and the log position it is stored at, if any.
pub(super) fn find_event(
    ingested: &impl ReadableTable<&'static str, &'static [u8]>,
    log: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &str,
) -> Result<Option<(tables::LogPosition, Event)>, StoreError> {
    let Some(position) = ingested
        .get(id)?
        .and_then(|v| tables::position_of(v.value()))
    else {
        return Ok(None);
    };
    match log.get(position.as_slice())? {
        Some(bytes) => Ok(Some((position, codec::decode("event_log", bytes.value())?))),
        None => Ok(None),
    }
}

/// Stores an attempt (under the number it already carries) with its id and listing rows.
pub(super) fn insert_attempt(txn: &WriteTransaction, attempt: &Attempt) -> Result<(), StoreError> {
    let first_of_event = !counters::event_has_attempts(
        &txn.open_table(tables::ATTEMPTS_BY_EVENT)?,
        &attempt.event_id,
    )?;
    let key = tables::time_key(attempt.time_nanos, &attempt.id);
    txn.open_table(tables::ATTEMPT_LOG)?.insert(
        key.as_slice(),
        codec::encode("attempt_log", attempt)?.as_slice(),
    )?;
    txn.open_table(tables::ATTEMPT_TIME)?.insert(
        attempt.id.as_str(),
        tables::ordered_i64(attempt.time_nanos).as_slice(),
    )?;
    txn.open_table(tables::ATTEMPTS_BY_TENANT)?.insert(
        tables::tenant_time_key(&attempt.tenant_id, attempt.time_nanos, &attempt.id).as_slice(),
        (),
    )?;
    txn.open_table(tables::ATTEMPTS_BY_EVENT)?.insert(
        tables::attempt_by_event_key(
            &attempt.event_id,
            &attempt.destination_id,
            attempt.attempt_number,
        )
        .as_slice(),
        attempt.id.as_str(),
    )?;
    counters::count_attempt(txn, attempt, 1)?;
    if first_of_event {
        if let Some(event) = counters::stored_event(txn, &attempt.event_id)? {
            counters::count_event(txn, &event, 1)?;
        }
    }
    Ok(())
}

/// Removes an attempt and all its rows.
pub(super) fn remove_attempt(txn: &WriteTransaction, attempt: &Attempt) -> Result<(), StoreError> {
    let stored = txn
        .open_table(tables::ATTEMPT_LOG)?
        .remove(tables::time_key(attempt.time_nanos, &attempt.id).as_slice())?
        .is_some();
    if stored {
        counters::count_attempt(txn, attempt, -1)?;
    }
    txn.open_table(tables::ATTEMPT_TIME)?
        .remove(attempt.id.as_str())?;
    txn.open_table(tables::ATTEMPTS_BY_TENANT)?.remove(
        tables::tenant_time_key(&attempt.tenant_id, attempt.time_nanos, &attempt.id).as_slice(),
    )?;
    let mut by_event = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
    let key = tables::attempt_by_event_key(
        &attempt.event_id,
        &attempt.destination_id,
        attempt.attempt_number,
    );
    let ours = by_event
        .get(key.as_slice())?
        .is_some_and(|id| id.value() == attempt.id.as_str());
    if ours {
        by_event.remove(key.as_slice())?;
        if !counters::event_has_attempts(&by_event, &attempt.event_id)? {
            drop(by_event);
            if let Some(event) = counters::stored_event(txn, &attempt.event_id)? {
                counters::count_event(txn, &event, -1)?;
            }
        }
    }
    Ok(())
}

/// The attempt with this id, if any.
pub(super) fn find_attempt(
    times: &impl ReadableTable<&'static str, &'static [u8]>,
    log: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &str,
) -> Result<Option<Attempt>, StoreError> {
    let Some(time) = times
        .get(id)?
        .and_then(|v| tables::decode_ordered_i64(v.value()))
    else {
        return Ok(None);
    };
    match log.get(tables::time_key(time, id).as_slice())? {
        Some(bytes) => Ok(Some(codec::decode("attempt_log", bytes.value())?)),
        None => Ok(None),
    }
}
