//! The open data file behind a slot the writer can refill. redb fails every operation on a
//! `Database` after one I/O error (a write that found the file system full, say) until that
//! handle is closed and the file opened again; the writer does this (see `writer.rs`), and every
//! reader takes whichever handle is current. Opening repairs the file if the failed write left
//! it unclean; nothing a failed commit wrote is visible afterwards.
//!
//! While the file is closed for reopening, or cannot be opened again yet, reads and writes get
//! [`StoreError::Unavailable`] naming why, and the writer tries again (see `writer.rs`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadTransaction, ReadableDatabase};

use super::StoreError;

/// How long closing waits for readers still starting a transaction on the old handle.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The current handle of the data file, or why there is none.
pub(crate) struct DbSlot {
    path: PathBuf,
    current: RwLock<Option<Arc<Database>>>,
    /// Why the file is closed (the last failure, and whether the disk was full), while it is.
    closed_because: Mutex<Option<(bool, String)>>,
    /// The last storage failure the writer met (whether the disk was full, and what it was),
    /// kept after the file opens again: it explains a reader's refusal by the old handle.
    last_failure: Mutex<Option<(bool, String)>>,
    open: fn(&Path) -> Result<Database, StoreError>,
}

impl DbSlot {
    /// A slot holding `db`, the file at `path`, opened again with `open` when needed.
    pub(crate) fn new(
        path: &Path,
        db: Database,
        open: fn(&Path) -> Result<Database, StoreError>,
    ) -> DbSlot {
        DbSlot {
            path: path.to_path_buf(),
            current: RwLock::new(Some(Arc::new(db))),
            closed_because: Mutex::new(None),
            last_failure: Mutex::new(None),
            open,
        }
    }

    /// The data file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The current handle, or [`StoreError::Unavailable`] while the file is closed.
    pub(crate) fn current(&self) -> Result<Arc<Database>, StoreError> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        match current.as_ref() {
            Some(db) => Ok(db.clone()),
            None => {
                let (disk_full, reason) = self.closed_reason();
                Err(StoreError::Unavailable { disk_full, reason })
            }
        }
    }

    /// A read transaction on the current handle.
    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.current()?.begin_read()?)
    }

    /// True while a handle is open.
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn closed_reason(&self) -> (bool, String) {
        self.closed_because
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| (false, "closed".to_string()))
    }

    /// Records a storage failure of the current handle (see [`DbSlot::last_failure`]).
    pub(crate) fn note_failure(&self, failure: &StoreError) {
        if let StoreError::Unavailable { .. } = failure {
            return;
        }
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some((failure.is_disk_full(), failure.to_string()));
    }

    /// The last storage failure noted, if any: whether the disk was full, and what it was.
    pub(crate) fn last_failure(&self) -> Option<(bool, String)> {
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_closed_reason(&self, reason: Option<(bool, String)>) {
        *self
            .closed_because
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = reason;
    }

    /// Closes the current handle (after a failure described by `because`) and opens the file
    /// again. On failure the slot stays closed, answering [`StoreError::Unavailable`], until a
    /// later call succeeds. The caller must hold no handle of its own.
    pub(crate) fn reopen(&self, because: &StoreError) -> Result<(), StoreError> {
        let old = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.note_failure(because);
        if let Some(old) = old {
            self.set_closed_reason(Some((because.is_disk_full(), because.to_string())));
            close(old);
        }
        match (self.open)(&self.path) {
            Ok(db) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(db));
                self.set_closed_reason(None);
                Ok(())
            }
            Err(error) => {
                self.set_closed_reason(Some((
                    because.is_disk_full() || error.is_disk_full(),
                    format!("opening it again failed: {error}"),
                )));
                Err(error)
            }
        }
    }
}

/// Drops the last reference to `db`, closing the file and releasing its lock. Readers clone the
/// handle only for as long as beginning a transaction takes; past [`CLOSE_WAIT`] the reference
/// is dropped anyway (the file then closes with the last reader, and opening it again fails
/// until then).
fn close(mut db: Arc<Database>) {
    let began = Instant::now();
    loop {
        match Arc::try_unwrap(db) {
            Ok(db) => {
                // A handle that met an I/O failure reports it again on closing.
                if let Err(error) = db.close() {
                    tracing::debug!(%error, "closed the data file after a failed write");
                }
                return;
            }
            Err(shared) if began.elapsed() < CLOSE_WAIT => {
                db = shared;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return,
        }
    }
}
