//! Operator maintenance of store files: a consistent backup of a store a running server has
//! open (a read-only handle shares the file with the server's writer and copies one MVCC
//! snapshot), restoring a backup into a data directory, checking a file not in use, and
//! compacting one (giving the pages freed by deletions back to the file system).

use std::path::{Path, PathBuf};

use redb::{
    Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition, WriteTransaction,
};

use super::consistency::{self, ConsistencyReport};
use super::tables::{self, every_table};
use super::{codec, StoreError, STORE_FILE};
use crate::model::event::{Attempt, DeliveryTask, Event};
use crate::model::tenant::Tenant;

/// Rows per table, in table order, as found by a backup or a check.
pub type TableCounts = Vec<(&'static str, u64)>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaintenanceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("{0} is in use by a running server; stop it first")]
    InUse(PathBuf),
    #[error("{0} failed the integrity check")]
    Corrupt(PathBuf),
    #[error("{} failed the consistency check: {}", .path.display(), describe(.report))]
    Inconsistent {
        path: PathBuf,
        report: ConsistencyReport,
    },
}

/// "N problems" and the named ones, one per line.
fn describe(report: &ConsistencyReport) -> String {
    let mut text = format!(
        "{} problem{}",
        report.total,
        if report.total == 1 { "" } else { "s" }
    );
    for problem in &report.problems {
        text.push_str("\n  ");
        text.push_str(problem);
    }
    if report.total > report.problems.len() as u64 {
        text.push_str(&format!(
            "\n  … and {} more",
            report.total - report.problems.len() as u64
        ));
    }
    text
}

fn file_error(path: &Path, reason: impl ToString) -> MaintenanceError {
    MaintenanceError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn copy_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    source: &ReadTransaction,
    target: &WriteTransaction,
    definition: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let mut to = target.open_table(definition)?;
    // A table a file of an earlier release lacks (the metrics counters) is copied empty.
    let from = match source.open_table(definition) {
        Ok(from) => from,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut rows = 0;
    for row in from.iter()? {
        let (key, value) = row?;
        to.insert(key.value(), value.value())?;
        rows += 1;
    }
    Ok(rows)
}

/// Opens the store of `data_dir` read-only, next to a running server if there is one.
fn open_shared(data_dir: &Path) -> Result<ReadOnlyDatabase, MaintenanceError> {
    let path = data_dir.join(STORE_FILE);
    if !path.is_file() {
        return Err(file_error(&path, "no store file here"));
    }
    Database::builder()
        .set_concurrency_mode(super::CONCURRENCY)
        .open_read_only(&path)
        .map_err(|e| file_error(&path, e))
}

/// Writes a consistent copy of the store in `data_dir` to `target` (which must not exist),
/// while a server may be running on it.
pub fn backup(data_dir: &Path, target: &Path) -> Result<TableCounts, MaintenanceError> {
    if target.exists() {
        return Err(file_error(target, "already exists"));
    }
    let source = open_shared(data_dir)?;
    let snapshot = source.begin_read().map_err(StoreError::from)?;
    let partial = target.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let copy = Database::create(&partial).map_err(|e| file_error(&partial, e))?;
    let txn = copy.begin_write().map_err(StoreError::from)?;
    let mut counts = TableCounts::new();
    macro_rules! copy {
        ($table:ident) => {
            counts.push((
                stringify!($table),
                copy_table(&snapshot, &txn, tables::$table)?,
            ));
        };
    }
    every_table!(copy);
    txn.commit().map_err(StoreError::from)?;
    drop(copy);
    std::fs::rename(&partial, target).map_err(|e| file_error(target, e))?;
    Ok(counts)
}

/// Checks a store file that no server has open: redb's page checksums and allocator state, the
/// schema version, that every record decodes, and that every secondary index and cross-table
/// reference agrees with its table (see `consistency`). A file of an older schema (which the
/// next server start upgrades) gets the first checks only.
pub fn check(path: &Path) -> Result<TableCounts, MaintenanceError> {
    if !path.is_file() {
        return Err(file_error(path, "no such file"));
    }
    let mut db = match Database::builder().create(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(MaintenanceError::InUse(path.to_path_buf()))
        }
        Err(e) => return Err(file_error(path, e)),
    };
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) | Err(_) => return Err(MaintenanceError::Corrupt(path.to_path_buf())),
    }
    let txn = db.begin_read().map_err(StoreError::from)?;
    let meta = txn.open_table(tables::META).map_err(StoreError::from)?;
    let version = meta
        .get("schema_version")
        .map_err(StoreError::from)?
        .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| file_error(path, "no schema version: not an outpost store"))?;
    if version > tables::SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: tables::SCHEMA_VERSION,
        }
        .into());
    }
    fn decode_all<K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
        txn: &ReadTransaction,
        name: &'static str,
        definition: TableDefinition<K, &'static [u8]>,
    ) -> Result<(), StoreError> {
        for row in txn.open_table(definition)?.iter()? {
            let (_, value) = row?;
            codec::decode::<T>(name, value.value())?;
        }
        Ok(())
    }
    decode_all::<&str, Tenant>(&txn, "tenants", tables::TENANTS)?;
    // Destination secrets are sealed: what decodes without the key is checked.
    let owners = || -> Result<(), StoreError> {
        for row in txn.open_table(tables::DESTINATIONS)?.iter()? {
            let (_, value) = row?;
            super::destination_record::owner(value.value())?;
        }
        Ok(())
    };
    owners()?;
    decode_all::<&[u8], DeliveryTask>(&txn, "queue", tables::QUEUE)?;
    if version < tables::SCHEMA_VERSION {
        // An older layout (a backup made by an earlier release, say): its records must decode;
        // its indexes are rebuilt by the upgrade the next server start runs.
        decode_all::<&str, Event>(&txn, "events", super::legacy::EVENTS)?;
        decode_all::<&str, Attempt>(&txn, "attempts", super::legacy::ATTEMPTS)?;
        let mut counts = TableCounts::new();
        for (name, definition) in [
            ("TENANTS", tables::TENANTS),
            ("EVENTS", super::legacy::EVENTS),
            ("ATTEMPTS", super::legacy::ATTEMPTS),
        ] {
            let rows = txn
                .open_table(definition)
                .and_then(|t| Ok(t.len()?))
                .map_err(StoreError::from)?;
            counts.push((name, rows));
        }
        return Ok(counts);
    }
    decode_all::<&[u8], Event>(&txn, "event_log", tables::EVENT_LOG)?;
    decode_all::<&[u8], Attempt>(&txn, "attempt_log", tables::ATTEMPT_LOG)?;
    let report = consistency::check(&txn)?;
    if !report.is_consistent() {
        return Err(MaintenanceError::Inconsistent {
            path: path.to_path_buf(),
            report,
        });
    }
    let mut counts = TableCounts::new();
    macro_rules! count {
        ($table:ident) => {
            // A table a file of an earlier release lacks (the metrics counters) counts 0 rows.
            let rows = match txn.open_table(tables::$table) {
                Ok(table) => table.len().map_err(StoreError::from)?,
                Err(redb::TableError::TableDoesNotExist(_)) => 0,
                Err(e) => return Err(StoreError::from(e).into()),
            };
            counts.push((stringify!($table), rows));
        };
    }
    every_table!(count);
    Ok(counts)
}

/// Where a store file's bytes go, as redb accounts for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Space {
    /// The file's length.
    pub file_bytes: u64,
    /// Pages in use (by tables and redb's own trees); the rest of the file is free pages that
    /// new writes reuse and `outpost compact` gives back.
    pub in_use_bytes: u64,
    /// Per table: name, rows, pages (leaf + branch) and bytes of keys and values stored.
    pub tables: Vec<TableSpace>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpace {
    pub name: &'static str,
    pub rows: u64,
    pub pages: u64,
    pub stored_bytes: u64,
}

/// Measures a store file no server has open (see [`Space`]). Opening for writing is needed for
/// redb's statistics; nothing is written.
pub fn space(path: &Path) -> Result<Space, MaintenanceError> {
    let file_bytes = file_size(path)?;
    let db = match Database::builder().create(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(MaintenanceError::InUse(path.to_path_buf()))
        }
        Err(e) => return Err(file_error(path, e)),
    };
    let txn = db.begin_write().map_err(StoreError::from)?;
    let stats = txn.stats().map_err(StoreError::from)?;
    let mut tables = Vec::new();
    macro_rules! measure {
        ($table:ident) => {
            let table = txn.open_table(tables::$table).map_err(StoreError::from)?;
            let table_stats = table.stats().map_err(StoreError::from)?;
            tables.push(TableSpace {
                name: stringify!($table),
                rows: table.len().map_err(StoreError::from)?,
                pages: table_stats.leaf_pages() + table_stats.branch_pages(),
                stored_bytes: table_stats.stored_bytes(),
            });
            drop(table);
        };
    }
    every_table!(measure);
    txn.abort().map_err(StoreError::from)?;
    Ok(Space {
        file_bytes,
        in_use_bytes: stats.allocated_pages() * stats.page_size() as u64,
        tables,
    })
}

/// Sizes of a store file before and after compaction, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub before: u64,
    pub after: u64,
}

fn file_size(path: &Path) -> Result<u64, MaintenanceError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| file_error(path, e))
}

/// Compacts a store file no server has open: moves live pages to the front and truncates the
/// free space at the end. redb reuses freed pages for new writes but never shrinks the file by
/// itself, so this is how space freed by a large deletion goes back to the file system.
pub fn compact(path: &Path) -> Result<Compacted, MaintenanceError> {
    if !path.is_file() {
        return Err(file_error(path, "no such file"));
    }
    let before = file_size(path)?;
    let mut db = match Database::builder().create(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(MaintenanceError::InUse(path.to_path_buf()))
        }
        Err(e) => return Err(file_error(path, e)),
    };
    db.compact().map_err(|e| file_error(path, e))?;
    drop(db);
    Ok(Compacted {
        before,
        after: file_size(path)?,
    })
}

/// Seals every destination's secrets of a store file no server has open again under `new`,
/// in one commit, after checking that `old` is the key they are sealed with now. Returns how
/// many destinations it sealed.
pub fn rekey(
    path: &Path,
    old: &super::secrets::SecretBox,
    new: &super::secrets::SecretBox,
) -> Result<u64, MaintenanceError> {
    use super::{destination_record, secrets};
    if !path.is_file() {
        return Err(file_error(path, "no such file"));
    }
    let db = match Database::builder().create(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(MaintenanceError::InUse(path.to_path_buf()))
        }
        Err(e) => return Err(file_error(path, e)),
    };
    let run = || -> Result<u64, StoreError> {
        let txn = db.begin_write()?;
        let count = {
            let mut meta = txn.open_table(tables::META)?;
            let recorded = meta.get(secrets::KEY_CHECK)?.map(|v| v.value().to_vec());
            if recorded.is_some_and(|check| check != old.check()) {
                return Err(StoreError::WrongEncryptionSecret);
            }
            meta.insert(secrets::KEY_CHECK, new.check().as_slice())?;
            let mut table = txn.open_table(tables::DESTINATIONS)?;
            let mut rows = Vec::new();
            for row in table.iter()? {
                let (key, value) = row?;
                rows.push((key.value().to_vec(), value.value().to_vec()));
            }
            for (key, value) in &rows {
                let destination = destination_record::decode(value, key, Some(old))?;
                table.insert(
                    key.as_slice(),
                    destination_record::encode(&destination, key, Some(new))?.as_slice(),
                )?;
            }
            rows.len() as u64
        };
        txn.commit()?;
        Ok(count)
    };
    Ok(run()?)
}

/// Installs a backup file as the store of `data_dir`, after checking it. An existing store is
/// kept beside it as `outpost.redb.before-restore` (refused without `replace`).
pub fn restore(
    backup: &Path,
    data_dir: &Path,
    replace: bool,
) -> Result<TableCounts, MaintenanceError> {
    let counts = check(backup)?;
    super::create_private_dir(data_dir).map_err(|e| file_error(data_dir, e))?;
    let target = data_dir.join(STORE_FILE);
    if target.exists() {
        if !replace {
            return Err(file_error(
                &target,
                "a store already exists here (pass --replace to set it aside)",
            ));
        }
        // Refuse while a server has it open.
        if let Err(redb::DatabaseError::DatabaseAlreadyOpen) = Database::builder().create(&target) {
            return Err(MaintenanceError::InUse(target));
        }
        let aside = data_dir.join(format!("{STORE_FILE}.before-restore"));
        std::fs::rename(&target, &aside).map_err(|e| file_error(&aside, e))?;
    }
    let partial = data_dir.join(format!("{STORE_FILE}.restoring"));
    std::fs::copy(backup, &partial).map_err(|e| file_error(&partial, e))?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| file_error(&partial, e))?;
    give_to_owner_of(&partial, data_dir).map_err(|e| file_error(&partial, e))?;
    std::fs::rename(&partial, &target).map_err(|e| file_error(&target, e))?;
    Ok(counts)
}

/// Makes a restored file belong to whoever owns the data directory, readable only by them, so
/// a restore run as root leaves a store the service's own user can open.
fn give_to_owner_of(file: &Path, data_dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let owner = std::fs::metadata(data_dir)?;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        let current = std::fs::metadata(file)?;
        if (current.uid(), current.gid()) != (owner.uid(), owner.gid()) {
            std::os::unix::fs::chown(file, Some(owner.uid()), Some(owner.gid()))?;
        }
    }
    Ok(())
}
