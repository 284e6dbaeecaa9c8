//! The audit file: appends lines to `audit.log` (created mode 0600), and once the next line
//! would take it past the size limit, renames it to `audit.log.1` (replacing the previous one)
//! and starts a new file. At most about twice the limit is kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The current audit file, in DATA_DIR.
pub const AUDIT_FILE: &str = "audit.log";
/// The previous audit file, after one rotation.
pub const ROTATED_FILE: &str = "audit.log.1";
/// Size at which `audit.log` is rotated (16 MiB).
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// An open (or, after an error, to be reopened) audit file.
pub struct AuditFile {
    path: PathBuf,
    rotated: PathBuf,
    max_bytes: u64,
    file: Option<File>,
    size: u64,
}

impl AuditFile {
    /// The audit file of `dir`, rotated at `max_bytes`; opened on the first append.
    pub fn new(dir: &Path, max_bytes: u64) -> AuditFile {
        AuditFile {
            path: dir.join(AUDIT_FILE),
            rotated: dir.join(ROTATED_FILE),
            max_bytes,
            file: None,
            size: 0,
        }
    }

    /// Appends one line (which must end with `\n`), rotating first when it would not fit.
    /// After an error the file is reopened on the next append.
    pub fn append(&mut self, line: &[u8]) -> io::Result<()> {
        let result = self.try_append(line);
        if result.is_err() {
            self.file = None;
        }
        result
    }

    fn try_append(&mut self, line: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.open()?;
        }
        let len = line.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.file = None;
            fs::rename(&self.path, &self.rotated)?;
            self.open()?;
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("audit file not open"))?;
        file.write_all(line)?;
        self.size = self.size.saturating_add(len);
        Ok(())
    }

    /// Makes what was appended durable.
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    fn open(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        let metadata = file.metadata()?;
        if metadata.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        self.size = metadata.len();
        self.file = Some(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_once_at_the_size_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = AuditFile::new(dir.path(), 30);
        let line = b"0123456789\n"; // 11 bytes
        file.append(line).expect("first");
        file.append(line).expect("second");
        assert_eq!(
            fs::read(dir.path().join(AUDIT_FILE)).expect("read").len(),
            22
        );
        assert!(!dir.path().join(ROTATED_FILE).exists());
        // A third line would make 33 > 30: the file is rotated first.
        file.append(b"third-line\n").expect("third");
        assert_eq!(
            fs::read_to_string(dir.path().join(ROTATED_FILE)).expect("rotated"),
            "0123456789\n0123456789\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(AUDIT_FILE)).expect("current"),
            "third-line\n"
        );
        // A second rotation replaces the first: only one older file is kept.
        file.append(line).expect("fourth");
        file.append(b"fifth-line\n").expect("fifth");
        assert_eq!(
            fs::read_to_string(dir.path().join(ROTATED_FILE)).expect("rotated"),
            "third-line\n0123456789\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join(AUDIT_FILE)).expect("current"),
            "fifth-line\n"
        );
        let mode = fs::metadata(dir.path().join(AUDIT_FILE))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_line_larger_than_the_limit_is_still_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut file = AuditFile::new(dir.path(), 4);
        file.append(b"longer than four\n").expect("append");
        assert!(!dir.path().join(ROTATED_FILE).exists());
        file.append(b"next\n").expect("append");
        assert_eq!(
            fs::read_to_string(dir.path().join(ROTATED_FILE)).expect("rotated"),
            "longer than four\n"
        );
    }

    #[test]
    fn reopening_continues_counting_from_the_file_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        AuditFile::new(dir.path(), 30)
            .append(b"0123456789012345678901234\n")
            .expect("first");
        let mut again = AuditFile::new(dir.path(), 30);
        again.append(b"0123456789\n").expect("second");
        assert!(dir.path().join(ROTATED_FILE).exists());
    }
}
