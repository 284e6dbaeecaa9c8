//! Reading the audit log back: `audit.log.1` then `audit.log`, oldest first, filtered by
//! tenant and time and cut to the newest N. Lines that are not entries (a line torn by a
//! crash) are counted and skipped.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::entry::Entry;
use super::file::{AUDIT_FILE, ROTATED_FILE};
use crate::time::parse_rfc3339;

/// Which entries to return.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only entries naming this tenant.
    pub tenant: Option<String>,
    /// Only entries at or after this time (unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only the newest this many (after the other filters).
    pub limit: Option<usize>,
}

/// Why the audit log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was read.
#[derive(Debug, Default)]
pub struct Read {
    /// Matching entries, oldest first.
    pub entries: Vec<Entry>,
    /// Lines that were not entries.
    pub skipped: usize,
}

impl Filter {
    fn keeps(&self, entry: &Entry) -> bool {
        if let Some(tenant) = &self.tenant {
            if entry.tenant_id.as_deref() != Some(tenant.as_str()) {
                return false;
            }
        }
        match self.since_ms {
            Some(since) => parse_rfc3339(&entry.time).is_ok_and(|t| t.unix_millis() >= since),
            None => true,
        }
    }
}

/// The entries of DATA_DIR `dir` that `filter` keeps; missing files read as empty.
pub fn read_entries(dir: &Path, filter: &Filter) -> Result<Read, ReadError> {
    let mut read = Read::default();
    for name in [ROTATED_FILE, AUDIT_FILE] {
        let path = dir.join(name);
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) if error.kind() == ErrorKind::NotFound => continue,
            Err(source) => return Err(ReadError::Io { path, source }),
        };
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) if filter.keeps(&entry) => read.entries.push(entry),
                Ok(_) => {}
                Err(_) => read.skipped += 1,
            }
        }
    }
    if let Some(limit) = filter.limit {
        let excess = read.entries.len().saturating_sub(limit);
        read.entries.drain(..excess);
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;

    fn entry(time: &str, tenant: &str) -> Entry {
        Entry {
            time: time.into(),
            actor: "admin".into(),
            method: "DELETE".into(),
            route: "/api/v1/tenants/{tenant_id}".into(),
            tenant_id: Some(tenant.into()),
            destination_id: None,
            event_id: None,
            secret_rotated: false,
            status: 200,
            outcome: Outcome::Ok,
        }
    }

    fn lines(entries: &[Entry]) -> String {
        entries
            .iter()
            .map(|e| serde_json::to_string(e).expect("json") + "\n")
            .collect()
    }

    #[test]
    fn reads_both_files_oldest_first_and_filters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = entry("2026-01-01T00:00:00Z", "a");
        let b = entry("2026-01-02T00:00:00.5Z", "b");
        let c = entry("2026-01-03T00:00:00Z", "a");
        std::fs::write(
            dir.path().join(ROTATED_FILE),
            lines(std::slice::from_ref(&a)),
        )
        .expect("write");
        let current = lines(&[b.clone(), c.clone()]) + "{\"torn\n";
        std::fs::write(dir.path().join(AUDIT_FILE), current).expect("write");

        let all = read_entries(dir.path(), &Filter::default()).expect("read");
        assert_eq!(all.entries, vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(all.skipped, 1);
        let tenant = Filter {
            tenant: Some("a".into()),
            ..Filter::default()
        };
        assert_eq!(
            read_entries(dir.path(), &tenant).expect("read").entries,
            vec![a, c.clone()]
        );
        let since = Filter {
            since_ms: Some(
                parse_rfc3339("2026-01-02T00:00:00Z")
                    .expect("t")
                    .unix_millis(),
            ),
            limit: Some(1),
            ..Filter::default()
        };
        assert_eq!(
            read_entries(dir.path(), &since).expect("read").entries,
            vec![c]
        );
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(read_entries(empty.path(), &Filter::default())
            .expect("read")
            .entries
            .is_empty());
    }
}
