//! The audit log of admin changes: one JSON line per state-changing API request, and per
//! refused (401/403) attempt at one, in `DATA_DIR/audit.log` (mode 0600), rotated once to
//! `audit.log.1` at [`MAX_BYTES`]. The API decides what is recorded (`api::audit`); this module
//! owns the entry format, the file, the writer thread and reading the entries back.

mod entry;
mod file;
mod read;
mod writer;

pub use entry::{Entry, Outcome, Subject};
pub use file::{AuditFile, AUDIT_FILE, MAX_BYTES, ROTATED_FILE};
pub use read::{read_entries, Filter, Read, ReadError};
pub use writer::AuditLog;
