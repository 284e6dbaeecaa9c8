//! Log retention in the store: the bounded deletion batches the retention sweep runs over the
//! heads of the two logs.
//!
//! An event expires by the time it was stored (`event_log` is keyed by it; its publisher-given
//! `time` may be anything), an attempt by the time it was made (`attempt_log` is keyed by it).
//! Events that still have a queued delivery or a pending retry are *protected*: neither they nor
//! their attempts are deleted.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

use redb::{ReadableTable, StorageError, Table};

use super::tables;
use super::writer::WriteCtx;
use super::{codec, log_records, Store, StoreError};
use crate::model::event::{Attempt, DeliveryTask, Event};

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

type LogTable<'t> = Table<'t, &'static [u8], &'static [u8]>;
/// A log row: its key and its record's bytes.
type LogRow = (Vec<u8>, Vec<u8>);

/// Up to `limit` rows of a log table after `after` and before `end`.
fn next_rows(
    table: &LogTable<'_>,
    after: Option<&[u8]>,
    end: &[u8],
    limit: usize,
) -> Result<Vec<LogRow>, StorageError> {
    let start = match after {
        Some(after) => Bound::Excluded(after),
        None => Bound::Unbounded,
    };
    let mut rows = Vec::new();
    for row in table.range::<&[u8]>((start, Bound::Excluded(end)))? {
        let (key, value) = row?;
        rows.push((key.value().to_vec(), value.value().to_vec()));
        if rows.len() >= limit {
            break;
        }
    }
    Ok(rows)
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
        let rows = {
            let log = ctx.txn.open_table(tables::ATTEMPT_LOG)?;
            next_rows(&log, cursor.attempts_after.as_deref(), &end, budget)?
        };
        budget -= rows.len();
        cursor.attempts_done = budget > 0;
        for (_, bytes) in &rows {
            let attempt: Attempt = codec::decode("attempt_log", bytes)?;
            if protected.contains(attempt.event_id.as_str()) {
                batch.protected += 1;
            } else {
                log_records::remove_attempt(ctx.txn, &attempt)?;
                batch.deleted_attempts += 1;
            }
        }
        if let Some((last, _)) = rows.last() {
            cursor.attempts_after = Some(last.clone());
        }
    }
    if cursor.attempts_done && budget > 0 {
        let end = (cutoff_ms.max(0) as u64).to_be_bytes();
        let rows = {
            let log = ctx.txn.open_table(tables::EVENT_LOG)?;
            next_rows(&log, cursor.events_after.as_deref(), &end, budget)?
        };
        cursor.events_done = rows.len() < budget;
        for (position, bytes) in &rows {
            let event: Event = codec::decode("event_log", bytes)?;
            if protected.contains(event.id.as_str()) {
                batch.protected += 1;
                continue;
            }
            log_records::remove_event(ctx.txn, position, &event)?;
            batch.deleted_events += 1;
        }
        if let Some((last, _)) = rows.last() {
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
            .open_table(tables::EVENT_LOG)?
            .first()?
            .and_then(|(k, _)| tables::split_position(k.value()).map(|(ms, _)| ms as i64));
        let attempt = txn
            .open_table(tables::ATTEMPT_LOG)?
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
