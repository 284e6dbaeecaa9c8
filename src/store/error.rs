//! The store's error type: storage failures from redb, records that fail to encode or decode,
//! a file written by a newer outpost than this binary understands, and an upgrade that cannot
//! keep its copy of the file.

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
