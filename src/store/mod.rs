//! The embedded store: one redb file holding every table, opened with a schema-version check,
//! written only by the writer thread (group commit) and read through MVCC read transactions
//! that never wait for it. The only module that imports redb. The open file sits in a slot
//! (`slot.rs`) the writer refills after a failed write, so the store recovers from a full disk
//! without a restart.

mod codec;
#[cfg(test)]
mod codec_golden_tests;
pub mod consistency;
mod counters;
mod counters_backfill;
mod destination_record;
mod destinations;
mod error;
mod legacy;
mod log_records;
mod logs;
pub mod maintenance;
mod metrics;
mod migrate;
mod outbox;
mod outcome_effects;
#[cfg(test)]
mod property_tests;
mod publish;
mod queue;
mod repair;
mod retention;
pub mod secrets;
mod slot;
mod space_wait;
mod tables;
mod tenants;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};
use slot::DbSlot;

pub use counters::{AttemptTuple, EventTuple};
pub use destinations::CreateDestination;
pub use error::StoreError;
pub use logs::{AttemptFilter, EventFilter, Position, TimeRange};
pub use migrate::SCHEMA1_COPY;
pub use outbox::{OutboxRow, MAX_OUTBOX_ROWS};
pub use outcome_effects::{AttemptContext, OutcomeRules, Raised};
pub use publish::{PublishOutcome, PublishRequest};
use queue::QueueShared;
pub use queue::{DeliverySnapshot, Outcome, QueueListener, Recorded};
pub use retention::{SweepBatch, SweepCursor};
pub use tables::QueueKey;
pub use tenants::TenantUpsert;
use writer::WriterHandle;

/// File name of the store inside `DATA_DIR`.
pub const STORE_FILE: &str = "outpost.redb";

/// The server's handle writes; `outpost backup` opens a read-only handle beside it.
const CONCURRENCY: redb::ConcurrencyMode = redb::ConcurrencyMode::SingleWriter;

/// How long [`Store::explain`] waits for the writer to note the failure behind a refusal.
const EXPLAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Page cache redb may keep in memory.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Listing direction of a keyset scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn reverse(self) -> Direction {
        match self {
            Direction::Asc => Direction::Desc,
            Direction::Desc => Direction::Asc,
        }
    }
}

/// A handle to the open store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DbSlot>,
    writer: WriterHandle,
    queue: Arc<QueueShared>,
    /// Sequence numbers of event log positions.
    log_sequence: Arc<log_records::LogSequence>,
    /// The operator event outbox's sequence, count and wake-up signal.
    outbox: Arc<outbox::OutboxShared>,
    /// Alert and operator event settings, set once at start; unset: none apply.
    rules: Arc<OnceLock<Arc<OutcomeRules>>>,
    /// The key destination secrets are sealed with; `None` stores them plain (tests, tools).
    cipher: Option<Arc<secrets::SecretBox>>,
}

/// Keeps the writer thread joinable for an orderly shutdown.
pub struct StoreThread(std::thread::JoinHandle<()>);

impl StoreThread {
    /// Waits up to `deadline` for the writer to finish its last batch, which happens once every
    /// `Store` clone is gone. Every acknowledged write is already durable either way.
    pub async fn join(self, deadline: std::time::Duration) -> bool {
        let handle = self.0;
        let joined = tokio::task::spawn_blocking(move || handle.join());
        tokio::time::timeout(deadline, joined).await.is_ok()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`, checks the schema version and starts
    /// the writer thread; the system clock dates any ingestion-index backfill.
    pub fn open(data_dir: &Path) -> Result<(Store, StoreThread), StoreError> {
        Store::open_at(data_dir, crate::clock::Clock::system().now_ms())
    }

    /// As [`Store::open`], with `now_ms` (unix ms) as the upper bound of the ingestion times a
    /// file written before the ingestion index existed gets for its events. A schema-1 file is
    /// upgraded first (`migrate.rs`).
    pub fn open_at(data_dir: &Path, now_ms: i64) -> Result<(Store, StoreThread), StoreError> {
        Store::open_with(data_dir, now_ms, None)
    }

    /// As [`Store::open_at`], with the key destination secrets are sealed with: every
    /// destination row still plain (written by an earlier release) is sealed now, and a file
    /// sealed with another key is refused.
    pub fn open_sealed(
        data_dir: &Path,
        now_ms: i64,
        cipher: secrets::SecretBox,
    ) -> Result<(Store, StoreThread), StoreError> {
        Store::open_with(data_dir, now_ms, Some(cipher))
    }

    fn open_with(
        data_dir: &Path,
        now_ms: i64,
        cipher: Option<secrets::SecretBox>,
    ) -> Result<(Store, StoreThread), StoreError> {
        create_private_dir(data_dir).map_err(|e| StoreError::DataDir {
            path: data_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let path: PathBuf = data_dir.join(STORE_FILE);
        // The copy a schema-1 file's upgrade keeps is taken before anything writes to it.
        let copied = migrate::keep_copy_before_opening(&path)?;
        let db = open_file(&path)?;
        let (db, upgraded) = migrate::upgrade(&path, db, copied, now_ms, open_file)?;
        prepare_schema(&db)?;
        if let Some(cipher) = &cipher {
            let sealed = seal_destinations(&db, cipher)?;
            if sealed > 0 {
                tracing::info!(
                    destinations = sealed,
                    "encrypted the secrets of destinations stored by an earlier release"
                );
            }
        }
        if let Some(built) = counters_backfill::ensure(&db)? {
            tracing::info!(
                events = built.events,
                attempts = built.attempts,
                "built the metrics counters"
            );
        }
        if let Some(upgraded) = upgraded {
            tracing::info!(
                events = upgraded.events,
                attempts = upgraded.attempts,
                copy = %upgraded.copy.display(),
                "upgraded the data file to schema version 2; the copy of the old file can be \
                 removed once this version is known to work"
            );
        }
        let (log_sequence, outbox) = {
            let txn = db.begin_read()?;
            let log = txn.open_table(tables::EVENT_LOG)?;
            (
                Arc::new(log_records::LogSequence::after_last(&log)?),
                Arc::new(outbox::OutboxShared::load(&txn)?),
            )
        };
        let db = Arc::new(DbSlot::new(&path, db, open_file));
        let (writer, thread) = writer::spawn(db.clone());
        Ok((
            Store {
                db,
                writer,
                queue: Arc::new(QueueShared::default()),
                log_sequence,
                outbox,
                rules: Arc::new(OnceLock::new()),
                cipher: cipher.map(Arc::new),
            },
            StoreThread(thread),
        ))
    }

    /// The writer thread's heartbeat and commit histograms.
    pub fn writer_stats(&self) -> &Arc<writer::WriterStats> {
        self.writer.stats()
    }

    /// A seam for tests of the health check: holds the writer busy inside one job until the
    /// returned guard is dropped (see [`writer::WriterHandle::stall`]).
    pub async fn stall_writer(&self) -> Result<writer::Stall, StoreError> {
        self.writer.stall().await
    }

    /// Spaces commits at least `interval` apart while writers are concurrent
    /// (`DATA_COMMIT_INTERVAL_MS`; see `writer.rs`).
    pub fn set_commit_interval(&self, interval: std::time::Duration) {
        self.writer.set_commit_interval(interval);
    }

    /// Sets the alert and operator event settings every later commit applies. Only the first
    /// call counts.
    pub fn set_outcome_rules(&self, rules: OutcomeRules) {
        let _ = self.rules.set(Arc::new(rules));
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read()
    }

    /// Explains a refusal by a data file handle that failed (redb's "previous I/O error", or a
    /// handle closed for reopening) by the storage failure behind it, as
    /// [`StoreError::Unavailable`] saying whether the disk is full; other errors are returned
    /// as they are. Waits up to [`EXPLAIN_WAIT`] for the writer to note the failure, which it
    /// does as soon as its commit returns.
    pub async fn explain(&self, error: StoreError) -> StoreError {
        if !error.is_failed_handle() {
            return error;
        }
        let deadline = std::time::Instant::now() + EXPLAIN_WAIT;
        loop {
            if let Some((disk_full, reason)) = self.db.last_failure() {
                return StoreError::Unavailable { disk_full, reason };
            }
            if std::time::Instant::now() >= deadline {
                return error;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Checks every index and cross-table reference of the current snapshot.
    #[cfg(test)]
    pub fn check_consistency(&self) -> Result<consistency::ConsistencyReport, StoreError> {
        consistency::check(&self.read()?)
    }
}

/// Opens (creating if needed) the store file with the server's settings.
fn open_file(path: &Path) -> Result<Database, StoreError> {
    Ok(Database::builder()
        .set_cache_size(CACHE_BYTES)
        .set_concurrency_mode(CONCURRENCY)
        .create(path)?)
}

/// Creates the data directory (and parents) readable only by its owner when new.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// Checks that `cipher` is the key the file's destination secrets are sealed with (refusing
/// another), records it, and seals every destination row still plain. Returns how many rows it
/// sealed; writes nothing when there is nothing to change.
fn seal_destinations(db: &Database, cipher: &secrets::SecretBox) -> Result<u64, StoreError> {
    let txn = db.begin_write()?;
    let sealed = {
        let mut meta = txn.open_table(tables::META)?;
        let recorded = meta.get(secrets::KEY_CHECK)?.map(|v| v.value().to_vec());
        match recorded {
            Some(check) if check != cipher.check() => {
                return Err(StoreError::WrongEncryptionSecret)
            }
            Some(_) => {}
            None => {
                meta.insert(secrets::KEY_CHECK, cipher.check().as_slice())?;
            }
        }
        let mut table = txn.open_table(tables::DESTINATIONS)?;
        let mut plain = Vec::new();
        for row in table.iter()? {
            let (key, value) = row?;
            if !destination_record::is_sealed(value.value()) {
                plain.push((key.value().to_vec(), value.value().to_vec()));
            }
        }
        for (key, value) in &plain {
            let destination = destination_record::decode(value, key, None)?;
            table.insert(
                key.as_slice(),
                destination_record::encode(&destination, key, Some(cipher))?.as_slice(),
            )?;
        }
        (plain.len() as u64, recorded.is_none())
    };
    if sealed.0 == 0 && !sealed.1 {
        txn.abort()?;
        return Ok(0);
    }
    txn.commit()?;
    Ok(sealed.0)
}

/// Creates the tables of a new file, stamps its schema version, and refuses newer files.
fn prepare_schema(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(tables::META)?;
        let found = match meta.get("schema_version")? {
            Some(value) => {
                let bytes: [u8; 4] = value.value().try_into().map_err(|_| StoreError::Corrupt {
                    table: "meta",
                    reason: "schema_version is not 4 bytes".into(),
                })?;
                Some(u32::from_be_bytes(bytes))
            }
            None => None,
        };
        match found {
            Some(version) if version > tables::SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found: version,
                    supported: tables::SCHEMA_VERSION,
                });
            }
            Some(_) => {}
            None => {
                meta.insert(
                    "schema_version",
                    tables::SCHEMA_VERSION.to_be_bytes().as_slice(),
                )?;
            }
        }
        drop(meta);
        macro_rules! create {
            ($table:ident) => {
                txn.open_table(tables::$table)?;
            };
        }
        tables::every_table!(create);
    }
    txn.commit()?;
    Ok(())
}

/// Stamps a schema version onto a store file (tests of the version check).
#[cfg(test)]
fn stamp_schema_version(data_dir: &Path, version: u32) -> Result<(), StoreError> {
    let db = Database::create(data_dir.join(STORE_FILE))?;
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(tables::META)?;
        meta.insert("schema_version", version.to_be_bytes().as_slice())?;
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        stamp_schema_version(dir.path(), tables::SCHEMA_VERSION + 1).unwrap();
        match Store::open(dir.path()) {
            Err(StoreError::SchemaTooNew { found, .. }) => {
                assert_eq!(found, tables::SCHEMA_VERSION + 1)
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }

    #[tokio::test]
    async fn group_commit_answers_every_caller() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _thread) = Store::open(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .upsert_tenant(format!("t{i}"), Default::default(), i)
                    .await
            }));
        }
        for task in tasks {
            assert!(matches!(
                task.await.unwrap().unwrap(),
                TenantUpsert::Created(_)
            ));
        }
        assert_eq!(store.tenant_count().unwrap(), 200);
    }
}
