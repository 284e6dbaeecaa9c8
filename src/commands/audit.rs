//! `outpost audit`: prints the audit log of DATA_DIR (`audit.log.1`, then `audit.log`), one
//! JSON entry per line, oldest first, optionally only one tenant's, only since a time, or only
//! the newest N. Reads the files only, so it works beside a running server.

use std::path::Path;

use crate::audit::{read_entries, Filter};
use crate::config::Config;
use crate::time::parse_rfc3339;

/// What to print.
pub struct AuditQuery<'a> {
    pub tenant: Option<&'a str>,
    pub since: Option<&'a str>,
    pub limit: Option<usize>,
}

pub fn audit(query: &AuditQuery<'_>, file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let since_ms = match query.since {
        Some(text) => Some(
            parse_rfc3339(text)
                .map_err(|_| format!("--since {text:?} is not an RFC 3339 time"))?
                .unix_millis(),
        ),
        None => None,
    };
    let filter = Filter {
        tenant: query.tenant.map(str::to_string),
        since_ms,
        limit: query.limit,
    };
    let read = read_entries(&config.data_dir, &filter).map_err(|e| e.to_string())?;
    for entry in &read.entries {
        let line = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        crate::output::line(format_args!("{line}"));
    }
    if read.skipped > 0 {
        eprintln!(
            "outpost: skipped {} line(s) of the audit log that are not entries",
            read.skipped
        );
    }
    Ok(())
}
