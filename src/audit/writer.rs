//! The audit writer: requests hand entries to a bounded channel (never waiting), a thread of
//! its own appends them to the audit file and syncs after each batch. A full queue or a failed
//! write is logged and the entry dropped; the request it describes is never failed or delayed.
//! [`AuditLog::close`] writes what is queued and stops the thread (at shutdown).

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Mutex;
use std::thread::JoinHandle;

use super::entry::Entry;
use super::file::{AuditFile, MAX_BYTES};

/// Entries that may wait for the writer before new ones are dropped.
const QUEUE: usize = 4096;

struct Running {
    sender: SyncSender<Entry>,
    thread: JoinHandle<()>,
}

/// The handle requests record entries through.
pub struct AuditLog {
    running: Mutex<Option<Running>>,
}

impl AuditLog {
    /// Starts the writer on `DATA_DIR/audit.log`, rotated at [`MAX_BYTES`].
    pub fn start(dir: &Path) -> std::io::Result<AuditLog> {
        AuditLog::start_with_limit(dir, MAX_BYTES)
    }

    /// Starts the writer with another rotation size.
    pub fn start_with_limit(dir: &Path, max_bytes: u64) -> std::io::Result<AuditLog> {
        let (sender, receiver) = mpsc::sync_channel(QUEUE);
        let file = AuditFile::new(dir, max_bytes);
        let thread = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_all(receiver, file))?;
        Ok(AuditLog {
            running: Mutex::new(Some(Running { sender, thread })),
        })
    }

    /// Queues one entry; never blocks.
    pub fn record(&self, entry: Entry) {
        let Ok(running) = self.running.lock() else {
            return;
        };
        let Some(running) = running.as_ref() else {
            tracing::warn!("audit log closed; entry dropped");
            return;
        };
        match running.sender.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("audit log queue full; entry dropped")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("audit log writer stopped; entry dropped")
            }
        }
    }

    /// Writes every queued entry, syncs and stops the writer. Blocks until done; later
    /// entries are dropped.
    pub fn close(&self) {
        let running = match self.running.lock() {
            Ok(mut running) => running.take(),
            Err(_) => None,
        };
        if let Some(Running { sender, thread }) = running {
            drop(sender);
            if thread.join().is_err() {
                tracing::warn!("the audit log writer panicked");
            }
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn write_one(file: &mut AuditFile, entry: &Entry) {
    let mut line = match serde_json::to_vec(entry) {
        Ok(line) => line,
        Err(error) => {
            tracing::warn!(%error, "cannot encode an audit entry");
            return;
        }
    };
    line.push(b'\n');
    if let Err(error) = file.append(&line) {
        tracing::warn!(%error, "cannot write the audit log; entry dropped");
    }
}

fn write_all(receiver: Receiver<Entry>, mut file: AuditFile) {
    while let Ok(entry) = receiver.recv() {
        write_one(&mut file, &entry);
        while let Ok(entry) = receiver.try_recv() {
            write_one(&mut file, &entry);
        }
        if let Err(error) = file.sync() {
            tracing::warn!(%error, "cannot sync the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Outcome, AUDIT_FILE};

    fn entry(n: u16) -> Entry {
        Entry {
            time: "2026-01-01T00:00:00Z".into(),
            actor: "admin".into(),
            method: "PUT".into(),
            route: "/api/v1/tenants/{tenant_id}".into(),
            tenant_id: Some(format!("t{n}")),
            destination_id: None,
            event_id: None,
            secret_rotated: false,
            status: 200,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn close_writes_everything_queued_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = AuditLog::start(dir.path()).expect("start");
        for n in 0..100 {
            log.record(entry(n));
        }
        log.close();
        log.record(entry(999));
        let text = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).expect("read");
        let read: Vec<Entry> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("entry"))
            .collect();
        assert_eq!(read, (0..100).map(entry).collect::<Vec<_>>());
    }

    #[test]
    fn a_failing_file_drops_entries_without_failing_the_caller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("no-such-dir");
        let log = AuditLog::start(&missing).expect("start");
        log.record(entry(1));
        log.close();
        assert!(!missing.exists());
    }
}
