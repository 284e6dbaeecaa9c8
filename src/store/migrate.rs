//! The in-place upgrade of a schema-1 data file to schema 2, run when a schema-2 binary first
//! opens it, before the writer starts.
//!
//! 1. Keeps a copy of the untouched file beside it, `outpost.redb.schema1` (refusing, with the
//!    file unchanged, when the file system cannot hold the copy), then marks the upgrade as
//!    started in `meta` (so a restart after a crash never overwrites the copy with a half-moved
//!    file).
//! 2. Runs the one-off repairs schema 1 may need (ingestion-time backfill, attempt numbers).
//! 3. Moves events from `events` (keyed by id) to `event_log` (keyed by ingestion time and a
//!    sequence number; `event_ingested` then holds that position instead of the time), and
//!    attempts from `attempts` to `attempt_log` (keyed by time) with their `attempt_time`
//!    entries, in transactions of at most 10,000 rows: each row is in exactly one of the two
//!    tables after every commit, so a crash at any point leaves a file the next start finishes.
//!    Record bytes are moved verbatim (record versions are unchanged).
//! 4. In one last transaction, deletes the schema-1 tables (`events`, `events_by_ingestion`,
//!    `attempts`, `attempts_by_time`), stamps schema version 2 and clears the mark.

use std::fs::File;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableError};

use super::{codec, legacy, log_records, repair, tables, StoreError};
use crate::model::event::{Attempt, Event};

/// Name of the copy kept beside the data file.
pub const SCHEMA1_COPY: &str = "outpost.redb.schema1";
/// `meta` entry present while an upgrade is under way.
const STARTED: &str = "upgrade_to_2_started";
/// Rows moved per transaction.
const BATCH: usize = 10_000;
/// Room left on the file system beyond the copy itself.
const SPARE_BYTES: u64 = 16 * 1024 * 1024;

/// What an upgrade did.
#[derive(Debug)]
pub struct Upgraded {
    pub events: u64,
    pub attempts: u64,
    pub copy: PathBuf,
}

/// The schema version stamped in the file, if any.
pub(super) fn stamped_version(db: &impl ReadableDatabase) -> Result<Option<u32>, StoreError> {
    let txn = db.begin_read()?;
    let meta = match txn.open_table(tables::META) {
        Ok(meta) => meta,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(value) = meta.get("schema_version")? else {
        return Ok(None);
    };
    let bytes: [u8; 4] = value.value().try_into().map_err(|_| StoreError::Corrupt {
        table: "meta",
        reason: "schema_version is not 4 bytes".into(),
    })?;
    Ok(Some(u32::from_be_bytes(bytes)))
}

/// Records in `meta` that the upgrade has begun (its copy is kept).
pub(super) fn mark_started(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.open_table(tables::META)?
        .insert(STARTED, [1u8].as_slice())?;
    txn.commit()?;
    Ok(())
}

fn started(db: &impl ReadableDatabase) -> Result<bool, StoreError> {
    let txn = db.begin_read()?;
    Ok(txn.open_table(tables::META)?.get(STARTED)?.is_some())
}

/// Before the file is opened for writing (which rewrites parts of it even when nothing
/// changes): when it is a schema-1 file whose upgrade has not started, keeps the copy, taken
/// from the file exactly as the old release left it. Returns whether it did. A file that cannot
/// be opened read-only (one that needs redb's recovery after a crash) is left to [`upgrade`].
pub(super) fn keep_copy_before_opening(path: &Path) -> Result<bool, StoreError> {
    if !path.is_file() {
        return Ok(false);
    }
    let Ok(db) = Database::builder().open_read_only(path) else {
        return Ok(false);
    };
    if stamped_version(&db)? != Some(1) || started(&db)? {
        return Ok(false);
    }
    drop(db);
    keep_copy(path, &path.with_file_name(SCHEMA1_COPY))?;
    Ok(true)
}

/// Upgrades the schema-1 file at `path` (opened as `db`) to schema 2. `copied` says the copy
/// was already kept; otherwise it is taken now with the file closed, and `reopen` opens it
/// again. Returns the database, and what was done when there was anything to do.
pub(super) fn upgrade(
    path: &Path,
    db: Database,
    copied: bool,
    now_ms: i64,
    reopen: impl Fn(&Path) -> Result<Database, StoreError>,
) -> Result<(Database, Option<Upgraded>), StoreError> {
    if stamped_version(&db)? != Some(1) {
        return Ok((db, None));
    }
    let copy = path.with_file_name(SCHEMA1_COPY);
    let db = if started(&db)? {
        db
    } else {
        let db = if copied {
            db
        } else {
            drop(db);
            keep_copy(path, &copy)?;
            reopen(path)?
        };
        mark_started(&db)?;
        db
    };
    tracing::info!(
        copy = %copy.display(),
        "upgrading the data file from schema version 1 to 2 (a copy of the old file is kept)"
    );
    legacy::backfill_ingestion(&db, now_ms)?;
    repair::reindex_shadowed_attempts(&db)?;
    let events = move_events(&db, now_ms)?;
    let attempts = move_attempts(&db)?;
    let txn = db.begin_write()?;
    txn.delete_table(legacy::EVENTS)?;
    txn.delete_table(legacy::EVENTS_BY_INGESTION)?;
    txn.delete_table(legacy::ATTEMPTS)?;
    txn.delete_table(legacy::ATTEMPTS_BY_TIME)?;
    {
        let mut meta = txn.open_table(tables::META)?;
        meta.insert(
            "schema_version",
            tables::SCHEMA_VERSION.to_be_bytes().as_slice(),
        )?;
        meta.remove(STARTED)?;
    }
    txn.commit()?;
    Ok((
        db,
        Some(Upgraded {
            events,
            attempts,
            copy,
        }),
    ))
}

/// Copies the closed file to `copy` (through a temporary name, synced), after checking the file
/// system can hold it.
fn keep_copy(path: &Path, copy: &Path) -> Result<(), StoreError> {
    let failed = |reason: String| StoreError::UpgradeCopy {
        copy: copy.display().to_string(),
        reason,
    };
    let needed = std::fs::metadata(path)
        .map_err(|e| failed(e.to_string()))?
        .len();
    let dir = path.parent().unwrap_or(Path::new("."));
    let stats = rustix::fs::statvfs(dir).map_err(|e| failed(e.to_string()))?;
    let available = stats.f_bavail.saturating_mul(stats.f_frsize);
    if available < needed.saturating_add(SPARE_BYTES) {
        return Err(StoreError::UpgradeNoRoom {
            copy: copy.display().to_string(),
            needed,
            available,
        });
    }
    let partial = copy.with_extension("schema1.partial");
    std::fs::copy(path, &partial).map_err(|e| failed(e.to_string()))?;
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed(e.to_string()))?;
    std::fs::rename(&partial, copy).map_err(|e| failed(e.to_string()))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Moves every event to `event_log` at a position made of its ingestion time and a sequence
/// number, and points `event_ingested` at it. Returns how many moved.
fn move_events(db: &Database, now_ms: i64) -> Result<u64, StoreError> {
    let mut moved = 0;
    let mut sequence = next_sequence(db)?;
    loop {
        let batch = move_event_batch(db, now_ms, &mut sequence, BATCH)?;
        if batch == 0 {
            return Ok(moved);
        }
        moved += batch;
    }
}

/// The sequence number after the last position in `event_log`: past any position an
/// interrupted earlier run gave out.
pub(super) fn next_sequence(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    let log = match txn.open_table(tables::EVENT_LOG) {
        Ok(log) => log,
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    log_records::sequence_after_last(&log)
}

/// Moves up to `limit` events in one transaction; returns how many moved.
pub(super) fn move_event_batch(
    db: &Database,
    now_ms: i64,
    sequence: &mut u64,
    limit: usize,
) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let batch = first_rows(&txn, legacy::EVENTS, limit)?;
    if batch.is_empty() {
        txn.abort()?;
        return Ok(0);
    }
    {
        let mut events = txn.open_table(legacy::EVENTS)?;
        let mut ingested = txn.open_table(tables::EVENT_INGESTED)?;
        let mut log = txn.open_table(tables::EVENT_LOG)?;
        for (id, bytes) in &batch {
            let known = ingested
                .get(id.as_str())?
                .and_then(|v| tables::ingested_ms_of(v.value()));
            let ms = match known {
                Some(ms) => ms,
                None => {
                    let event: Event = codec::decode("events", bytes)?;
                    event.time_nanos.div_euclid(1_000_000).min(now_ms).max(0) as u64
                }
            };
            let position = tables::log_position(ms, *sequence);
            *sequence += 1;
            log.insert(position.as_slice(), bytes.as_slice())?;
            ingested.insert(id.as_str(), position.as_slice())?;
            events.remove(id.as_str())?;
        }
    }
    txn.commit()?;
    Ok(batch.len() as u64)
}

/// The first `limit` rows (id, record bytes) of a schema-1 table keyed by id.
fn first_rows(
    txn: &redb::WriteTransaction,
    table: redb::TableDefinition<&str, &[u8]>,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let table = txn.open_table(table)?;
    let mut rows = Vec::new();
    for row in table.iter()?.take(limit) {
        let (id, bytes) = row?;
        rows.push((id.value().to_string(), bytes.value().to_vec()));
    }
    Ok(rows)
}

/// Moves every attempt to `attempt_log` under its time. Returns how many moved.
fn move_attempts(db: &Database) -> Result<u64, StoreError> {
    let mut moved = 0;
    loop {
        let batch = move_attempt_batch(db, BATCH)?;
        if batch == 0 {
            return Ok(moved);
        }
        moved += batch;
    }
}

/// Moves up to `limit` attempts in one transaction; returns how many moved.
pub(super) fn move_attempt_batch(db: &Database, limit: usize) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let batch = first_rows(&txn, legacy::ATTEMPTS, limit)?;
    if batch.is_empty() {
        txn.abort()?;
        return Ok(0);
    }
    {
        let mut attempts = txn.open_table(legacy::ATTEMPTS)?;
        let mut times = txn.open_table(tables::ATTEMPT_TIME)?;
        let mut log = txn.open_table(tables::ATTEMPT_LOG)?;
        for (id, bytes) in &batch {
            let attempt: Attempt = codec::decode("attempts", bytes)?;
            log.insert(
                tables::time_key(attempt.time_nanos, id).as_slice(),
                bytes.as_slice(),
            )?;
            times.insert(
                id.as_str(),
                tables::ordered_i64(attempt.time_nanos).as_slice(),
            )?;
            attempts.remove(id.as_str())?;
        }
    }
    txn.commit()?;
    Ok(batch.len() as u64)
}
