//! Building the metrics counters of a file written before they existed (a schema-2 file of an
//! earlier release, or one just upgraded from schema 1), run when the store opens, before the
//! writer starts.
//!
//! `meta.counters_built` marks a file whose counters are complete; every later write keeps them
//! so. Without it, the counters are built from the logs in transactions of at most 10,000 rows
//! — attempts first, then events — with the position reached kept in `meta.counters_backfill`
//! in the same transaction, so a start interrupted halfway resumes where it stopped. The first
//! batch clears both counter tables. A new file (both logs empty) is marked at once.
//!
//! A marked file whose day counters of attempts do not add up to the attempts stored was written
//! by a release without counters since (a downgrade): its mark is dropped and they are built
//! again.

use std::ops::Bound;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::{codec, counters, tables, StoreError};
use crate::model::event::{Attempt, Event};

/// `meta` entry of a file whose counters are complete.
const BUILT: &str = "counters_built";
/// `meta` entry of a build under way: phase byte (0 attempts, 1 events) ++ last key counted.
const PROGRESS: &str = "counters_backfill";
/// Log rows counted per transaction.
const BATCH: usize = 10_000;

const ATTEMPTS: u8 = 0;
const EVENTS: u8 = 1;

/// Whether the file's counters are complete (a file of an earlier release gets them built at its
/// next start; until then there is nothing to check them against).
pub(super) fn built(txn: &redb::ReadTransaction) -> Result<bool, StoreError> {
    Ok(txn.open_table(tables::META)?.get(BUILT)?.is_some())
}

/// What a build counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Backfilled {
    pub attempts: u64,
    pub events: u64,
}

/// Builds the counters unless the file says they are complete. Returns what was counted when
/// there was anything to do.
pub(super) fn ensure(db: &Database) -> Result<Option<Backfilled>, StoreError> {
    if marked_but_stale(db)? {
        tracing::warn!(
            "the metrics counters do not add up to the attempt log (a release without them \
             wrote to the file?): building them again"
        );
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(tables::META)?;
            meta.remove(BUILT)?;
            meta.remove(PROGRESS)?;
        }
        txn.commit()?;
    }
    {
        let txn = db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        if meta.get(BUILT)?.is_some() {
            return Ok(None);
        }
        let empty = txn.open_table(tables::ATTEMPT_LOG)?.is_empty()?
            && txn.open_table(tables::EVENT_LOG)?.is_empty()?;
        if empty && meta.get(PROGRESS)?.is_none() {
            drop(meta);
            drop(txn);
            let txn = db.begin_write()?;
            clear_counters(&txn)?;
            txn.open_table(tables::META)?
                .insert(BUILT, [1u8].as_slice())?;
            txn.commit()?;
            return Ok(None);
        }
    }
    tracing::info!("building the metrics counters from the event and attempt logs");
    let mut counted = Backfilled::default();
    loop {
        let step = batch(db, BATCH)?;
        counted.attempts += step.attempts;
        counted.events += step.events;
        if step.done {
            return Ok(Some(counted));
        }
    }
}

/// Whether the file is marked as counted but its day counters of attempts do not add up to the
/// attempts stored: a release without counters wrote to it since. Reads one counter row per
/// day and tuple, not the log.
fn marked_but_stale(db: &Database) -> Result<bool, StoreError> {
    let txn = db.begin_read()?;
    if txn.open_table(tables::META)?.get(BUILT)?.is_none() {
        return Ok(false);
    }
    let (from, to) = counters::level_range(counters::Level::Day);
    let mut counted: u64 = 0;
    for row in txn
        .open_table(tables::ATTEMPT_COUNTS)?
        .range(from.as_slice()..to.as_slice())?
    {
        counted = counted.saturating_add(row?.1.value());
    }
    Ok(counted != txn.open_table(tables::ATTEMPT_LOG)?.len()?)
}

/// What one batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Step {
    /// Attempts counted.
    pub attempts: u64,
    /// Events counted (those with an attempt).
    pub events: u64,
    /// The build is complete and marked.
    pub done: bool,
}

fn clear_counters(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(tables::ATTEMPT_COUNTS)?;
    txn.delete_table(tables::EVENT_COUNTS)?;
    txn.open_table(tables::ATTEMPT_COUNTS)?;
    txn.open_table(tables::EVENT_COUNTS)?;
    Ok(())
}

/// A log row: its key and its record's bytes.
type LogRow = (Vec<u8>, Vec<u8>);

/// The keys of up to `limit` rows after `after`, with their values.
fn rows_after(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<LogRow>, StoreError> {
    let start = match after {
        Some(after) => Bound::Excluded(after),
        None => Bound::Unbounded,
    };
    let mut rows = Vec::new();
    for row in table.range::<&[u8]>((start, Bound::Unbounded))? {
        let (key, value) = row?;
        rows.push((key.value().to_vec(), value.value().to_vec()));
        if rows.len() >= limit {
            break;
        }
    }
    Ok(rows)
}

/// Counts up to `limit` more log rows in one transaction.
pub(super) fn batch(db: &Database, limit: usize) -> Result<Step, StoreError> {
    let txn = db.begin_write()?;
    let progress = txn
        .open_table(tables::META)?
        .get(PROGRESS)?
        .map(|v| v.value().to_vec());
    let (phase, after) = match &progress {
        Some(bytes) => match bytes.split_first() {
            Some((&phase, after)) => (phase, (!after.is_empty()).then_some(after)),
            None => (ATTEMPTS, None),
        },
        None => {
            clear_counters(&txn)?;
            (ATTEMPTS, None)
        }
    };
    let mut step = Step::default();
    let next = match phase {
        ATTEMPTS => {
            let rows = rows_after(&txn.open_table(tables::ATTEMPT_LOG)?, after, limit)?;
            for (_, bytes) in &rows {
                let attempt: Attempt = codec::decode("attempt_log", bytes)?;
                counters::count_attempt(&txn, &attempt, 1)?;
            }
            step.attempts = rows.len() as u64;
            match rows.last() {
                Some((last, _)) if rows.len() >= limit => {
                    Some([&[ATTEMPTS], last.as_slice()].concat())
                }
                _ => Some(vec![EVENTS]),
            }
        }
        EVENTS => {
            let rows = rows_after(&txn.open_table(tables::EVENT_LOG)?, after, limit)?;
            let ingested = txn.open_table(tables::EVENT_INGESTED)?;
            let by_event = txn.open_table(tables::ATTEMPTS_BY_EVENT)?;
            let mut events = 0;
            for (position, bytes) in &rows {
                let event: Event = codec::decode("event_log", bytes)?;
                let current = ingested
                    .get(event.id.as_str())?
                    .is_some_and(|v| v.value() == position.as_slice());
                if current && counters::event_has_attempts(&by_event, &event.id)? {
                    counters::count_event(&txn, &event, 1)?;
                    events += 1;
                }
            }
            step.events = events;
            match rows.last() {
                Some((last, _)) if rows.len() >= limit => {
                    Some([&[EVENTS], last.as_slice()].concat())
                }
                _ => None,
            }
        }
        _ => {
            return Err(StoreError::Corrupt {
                table: "meta",
                reason: format!("{PROGRESS} names an unknown phase {phase}"),
            })
        }
    };
    {
        let mut meta = txn.open_table(tables::META)?;
        match next {
            Some(progress) => {
                meta.insert(PROGRESS, progress.as_slice())?;
            }
            None => {
                meta.remove(PROGRESS)?;
                meta.insert(BUILT, [1u8].as_slice())?;
                step.done = true;
            }
        }
    }
    txn.commit()?;
    Ok(step)
}

/// Removes the mark, as a file written before the counters existed would lack it (tests).
#[cfg(test)]
pub(super) fn unmark(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(tables::META)?.remove(BUILT)?;
    txn.commit()?;
    Ok(())
}
