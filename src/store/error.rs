//! The store's error type: storage failures from redb, records that fail to encode or decode,
//! a file written by a newer outpost than this binary understands, and an upgrade that cannot
//! keep its copy of the file, and a data file that cannot be written for now (the file system
//! is full, or another I/O failure), which the writer recovers from by itself.

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("storage error: {0}")]
    Storage(#[from] redb::Error),
    #[error("cannot encode a record for table {table}: {reason}")]
    Encode { table: &'static str, reason: String },
    #[error("corrupt record in table {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error(
        "the data file has schema version {found}, newer than this binary understands \
         (up to {supported}); upgrade outpost or restore a backup made by this version"
    )]
    SchemaTooNew { found: u32, supported: u32 },
    #[error(
        "upgrading the data file to schema version 2 first keeps a copy of it as {copy}, which \
         needs {needed} bytes, but the file system has {available} bytes available; free some \
         space (or move the data directory) and start again — the file is unchanged"
    )]
    UpgradeNoRoom {
        copy: String,
        needed: u64,
        available: u64,
    },
    #[error("cannot keep a copy of the data file as {copy} before upgrading it: {reason}")]
    UpgradeCopy { copy: String, reason: String },
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("destination secrets: {reason}")]
    Secrets { reason: String },
    #[error(
        "AES_ENCRYPTION_SECRET is not the secret this data file's destination secrets are \
         encrypted with; configure that one (or the one `outpost rekey` last wrote)"
    )]
    WrongEncryptionSecret,
    #[error(
        "this data file holds encrypted destination secrets, but it was opened without \
         AES_ENCRYPTION_SECRET"
    )]
    EncryptionSecretMissing,
    #[error("write batch failed: {0}")]
    BatchFailed(String),
    #[error("the store's writer has stopped")]
    WriterStopped,
    /// A commit failed writing the data file; nothing of its batch was stored.
    #[error("{}: {reason}; nothing of this write was stored", failure(*.disk_full))]
    WriteFailed { disk_full: bool, reason: String },
    /// The data file is closed after a failed write and not open again yet.
    #[error(
        "{}: the data file is being opened again after a failed write ({reason})",
        failure(*.disk_full)
    )]
    Unavailable { disk_full: bool, reason: String },
    /// Writes are held off after a write failed for want of space, until space is freed.
    #[error(
        "the disk is full: writes resume once space is freed on the file system holding the \
         data file (the last write failed: {reason})"
    )]
    NoSpace { reason: String },
}

impl StoreError {
    /// True for a failure of the data file's storage (an I/O error, or redb refusing a handle
    /// after one) rather than of a record or a request: the handle must be opened again, and
    /// the request may succeed later.
    pub fn is_storage_failure(&self) -> bool {
        match self {
            StoreError::Storage(error) => matches!(
                error,
                redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
            ),
            StoreError::WriteFailed { .. }
            | StoreError::Unavailable { .. }
            | StoreError::NoSpace { .. } => true,
            _ => false,
        }
    }

    /// True for redb refusing a handle of the data file that met an I/O failure before (or was
    /// closed to be opened again), which says nothing of the failure itself.
    pub fn is_failed_handle(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(redb::Error::PreviousIo | redb::Error::DatabaseClosed)
        )
    }

    /// True when the storage failure is (or was caused by) a full file system.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Storage(redb::Error::Io(error)) => is_no_space(error),
            StoreError::WriteFailed { disk_full, .. }
            | StoreError::Unavailable { disk_full, .. } => *disk_full,
            StoreError::NoSpace { .. } => true,
            _ => false,
        }
    }
}

/// How the message of a storage failure begins.
fn failure(disk_full: bool) -> &'static str {
    if disk_full {
        "the disk is full"
    } else {
        "the data file could not be written"
    }
}

/// True for "no space left on device" (and a full quota).
pub(crate) fn is_no_space(error: &std::io::Error) -> bool {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    error.kind() == std::io::ErrorKind::StorageFull
        || error.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(error.raw_os_error(), Some(ENOSPC | EDQUOT))
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Storage(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);
