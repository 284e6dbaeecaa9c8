//! The operator commands: each loads the configuration, does one job and reports on stdout.
//! Errors come back as text for `main` to print.

mod audit;
mod backup;
mod check;
mod compact;
mod config;
mod rekey;
mod token;

pub use audit::{audit, AuditQuery};
pub use backup::{backup, restore};
pub use check::check;
pub use compact::compact;
pub use config::config;
pub use rekey::rekey;
pub use token::token;

use crate::store::maintenance::TableCounts;

/// Prints `table rows` lines.
fn print_counts(counts: &TableCounts) {
    for (table, rows) in counts {
        crate::output::line(format_args!("  {table:<20} {rows}"));
    }
}
