//! Log retention in the store: the ingestion index of events (`events_by_ingestion` and its
//! reverse `event_ingested`, written with each publish), its one-off backfill for files written
//! before it existed, and the bounded deletion batches the retention sweep runs.
//!
//! An event expires by the time it was stored (its publisher-given `time` may be anything), an
//! attempt by the time it was made (`attempts_by_time`). Events that still have a queued
//! delivery or a pending retry are *protected*: neither they nor their attempts are deleted.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, StorageError, Table, WriteTransaction};

use super::tables;
use super::writer::WriteCtx;
use super::{codec, Store, StoreError};
use crate::model::event::{Attempt, DeliveryTask, Event};

/// Writes an event's ingestion entries (both directions).
pub(super) fn index_ingestion(
    txn: &WriteTransaction,
    ingested_ms: u64,
    event_id: &str,
) -> Result<(), StoreError> {
    txn.open_table(tables::EVENTS_BY_INGESTION)?
        .insert(tables::ingestion_key(ingested_ms, event_id).as_slice(), ())?;
    txn.open_table(tables::EVENT_INGESTED)?
        .insert(event_id, ingested_ms.to_be_bytes().as_slice())?;
    Ok(())
}

/// Removes an event's ingestion entries, if it has them.
pub(super) fn unindex_ingestion(ctx: &WriteCtx<'_>, event_id: &str) -> Result<(), StoreError> {
    let previous = ctx
        .txn
        .open_table(tables::EVENT_INGESTED)?
        .remove(event_id)?
        .and_then(|v| tables::ingested_ms_of(v.value()));
    if let Some(ms) = previous {
        ctx.txn
            .open_table(tables::EVENTS_BY_INGESTION)?
            .remove(tables::ingestion_key(ms, event_id).as_slice())?;
    }
    Ok(())
}

/// Gives every event of a file written before the ingestion index existed an entry, once: when
/// the index is empty but `events` is not. The ingestion time is estimated as the event's own
/// `time`, capped at `now_ms`. Returns how many events were indexed.
pub(super) fn backfill_ingestion(db: &Database, now_ms: i64) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let mut indexed = 0;
    {
        let events = txn.open_table(tables::EVENTS)?;
        let needed = txn.open_table(tables::EVENTS_BY_INGESTION)?.is_empty()?
            && txn.open_table(tables::EVENT_INGESTED)?.is_empty()?
            && !events.is_empty()?;
        if needed {
            for row in events.iter()? {
                let (_, bytes) = row?;
                let event: Event = codec::decode("events", bytes.value())?;
                let estimate = event.time_nanos.div_euclid(1_000_000).min(now_ms).max(0);
                index_ingestion(&txn, estimate as u64, &event.id)?;
                indexed += 1;
            }
        }
    }
    txn.commit()?;
    Ok(indexed)
}

/// Where a sweep run has got to: the last key it examined in each index.
#[derive(Clone, Debug, Default)]
pub struct SweepCursor {
    attempts_after: Option<Vec<u8>>,
    attempts_done: bool,
    events_after: Option<Vec<u8>>,
    events_done: bool,
}

/// What one sweep batch did.
#[derive(Debug, Default)]
pub struct SweepBatch {
    pub cursor: SweepCursor,
    pub deleted_events: u64,
    pub deleted_attempts: u64,
    /// Expired rows kept because their event still has a queued delivery.
    pub protected: u64,
    /// Nothing expired is left beyond the cursor.
    pub done: bool,
}

type KeyTable<'t> = Table<'t, &'static [u8], ()>;

/// Up to `limit` keys of `table` after `after` and before `end`.
fn next_keys(
    table: &KeyTable<'_>,
    after: Option<&[u8]>,
    end: &[u8],
    limit: usize,
) -> Result<Vec<Vec<u8>>, StorageError> {
    let start = match after {
        Some(after) => Bound::Excluded(after),
        None => Bound::Unbounded,
    };
    let mut keys = Vec::new();
    for row in table.range::<&[u8]>((start, Bound::Excluded(end)))? {
        keys.push(row?.0.value().to_vec());
        if keys.len() >= limit {
            break;
        }
    }
    Ok(keys)
}

fn delete_attempt(ctx: &WriteCtx<'_>, attempt: &Attempt) -> Result<(), StoreError> {
    ctx.txn
        .open_table(tables::ATTEMPTS)?
        .remove(attempt.id.as_str())?;
    ctx.txn
        .open_table(tables::ATTEMPTS_BY_TIME)?
        .remove(tables::time_key(attempt.time_nanos, &attempt.id).as_slice())?;
    ctx.txn.open_table(tables::ATTEMPTS_BY_TENANT)?.remove(
        tables::tenant_time_key(&attempt.tenant_id, attempt.time_nanos, &attempt.id).as_slice(),
    )?;
    let mut by_event = ctx.txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
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
    }
    Ok(())
}

fn delete_event(ctx: &WriteCtx<'_>, event: &Event) -> Result<(), StoreError> {
    ctx.txn
        .open_table(tables::EVENTS)?
        .remove(event.id.as_str())?;
    ctx.txn
        .open_table(tables::EVENTS_BY_TIME)?
        .remove(tables::time_key(event.time_nanos, &event.id).as_slice())?;
    ctx.txn.open_table(tables::EVENTS_BY_TENANT)?.remove(
        tables::tenant_time_key(&event.tenant_id, event.time_nanos, &event.id).as_slice(),
    )?;
    unindex_ingestion(ctx, &event.id)
}

/// One batch: examines at most `limit` expired rows (attempts first, then events) after the
/// cursor and deletes those whose event is not protected.
fn sweep_batch(
    ctx: &WriteCtx<'_>,
    cutoff_ms: i64,
    mut cursor: SweepCursor,
    protected: &HashSet<String>,
    limit: usize,
) -> Result<SweepBatch, StoreError> {
    let mut batch = SweepBatch::default();
    let mut budget = limit;
    if !cursor.attempts_done {
        let end = tables::ordered_i64(cutoff_ms.saturating_mul(1_000_000));
        let keys = {
            let index = ctx.txn.open_table(tables::ATTEMPTS_BY_TIME)?;
            next_keys(&index, cursor.attempts_after.as_deref(), &end, budget)?
        };
        budget -= keys.len();
        cursor.attempts_done = budget > 0;
        for key in &keys {
            let Some((_, id)) = tables::split_time_key(key) else {
                continue;
            };
            let attempt: Option<Attempt> = match ctx.txn.open_table(tables::ATTEMPTS)?.get(id)? {
                Some(bytes) => Some(codec::decode("attempts", bytes.value())?),
                None => None,
            };
            match attempt {
                Some(a) if protected.contains(a.event_id.as_str()) => batch.protected += 1,
                Some(a) => {
                    delete_attempt(ctx, &a)?;
                    batch.deleted_attempts += 1;
                }
                None => {}
            }
        }
        if let Some(last) = keys.last() {
            cursor.attempts_after = Some(last.clone());
        }
    }
    if cursor.attempts_done && budget > 0 {
        let end = (cutoff_ms.max(0) as u64).to_be_bytes();
        let keys = {
            let index = ctx.txn.open_table(tables::EVENTS_BY_INGESTION)?;
            next_keys(&index, cursor.events_after.as_deref(), &end, budget)?
        };
        cursor.events_done = keys.len() < budget;
        for key in &keys {
            let Some((_, id)) = tables::split_ingestion_key(key) else {
                continue;
            };
            if protected.contains(id) {
                batch.protected += 1;
                continue;
            }
            let event: Option<Event> = match ctx.txn.open_table(tables::EVENTS)?.get(id)? {
                Some(bytes) => Some(codec::decode("events", bytes.value())?),
                None => None,
            };
            match event {
                Some(event) => {
                    delete_event(ctx, &event)?;
                    batch.deleted_events += 1;
                }
                // An entry without its event: remove the entry alone.
                None => unindex_ingestion(ctx, id)?,
            }
        }
        if let Some(last) = keys.last() {
            cursor.events_after = Some(last.clone());
        }
    }
    batch.done = cursor.attempts_done && cursor.events_done;
    batch.cursor = cursor;
    Ok(batch)
}

impl Store {
    /// The oldest ingestion time (unix ms) of any event or attempt still stored, if any.
    pub fn oldest_log_ms(&self) -> Result<Option<i64>, StoreError> {
        let txn = self.read()?;
        let event = txn
            .open_table(tables::EVENTS_BY_INGESTION)?
            .first()?
            .and_then(|(k, _)| tables::split_ingestion_key(k.value()).map(|(ms, _)| ms as i64));
        let attempt = txn
            .open_table(tables::ATTEMPTS_BY_TIME)?
            .first()?
            .and_then(|(k, _)| tables::split_time_key(k.value()).map(|(ns, _)| ns))
            .map(|ns| ns.div_euclid(1_000_000));
        Ok(match (event, attempt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    /// The ids of events that must not expire: those with a queued delivery (first attempt,
    /// automatic or manual retry) or a pending automatic retry.
    pub fn protected_events(&self) -> Result<HashSet<String>, StoreError> {
        let txn = self.read()?;
        let mut ids = HashSet::new();
        for row in txn.open_table(tables::QUEUE)?.iter()? {
            let (_, bytes) = row?;
            let task: DeliveryTask = codec::decode("queue", bytes.value())?;
            ids.insert(task.event_id.into_string());
        }
        for row in txn.open_table(tables::PENDING_RETRY)?.iter()? {
            let (pair, _) = row?;
            let pair = pair.value();
            let event = pair
                .get(..4)
                .and_then(|len| <[u8; 4]>::try_from(len).ok())
                .map(|len| u32::from_be_bytes(len) as usize)
                .and_then(|len| pair.get(4..4 + len))
                .and_then(|id| std::str::from_utf8(id).ok());
            if let Some(event) = event {
                ids.insert(event.to_string());
            }
        }
        Ok(ids)
    }

    /// Deletes, in one write job, at most `limit` expired rows after `cursor`: attempts made
    /// and events stored before `cutoff_ms` whose event is not in `protected`.
    pub async fn sweep_expired(
        &self,
        cutoff_ms: i64,
        cursor: SweepCursor,
        protected: Arc<HashSet<String>>,
        limit: usize,
    ) -> Result<SweepBatch, StoreError> {
        self.writer
            .write(move |ctx| sweep_batch(ctx, cutoff_ms, cursor.clone(), &protected, limit))
            .await
    }
}
