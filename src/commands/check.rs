//! `outpost check`: the integrity of a store file no server has open.

use std::path::Path;

use super::print_counts;
use crate::config::Config;
use crate::store::{maintenance, STORE_FILE};

pub fn check(path: Option<&Path>, file: Option<&Path>) -> Result<(), String> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => Config::load(file)
            .map_err(|e| e.to_string())?
            .data_dir
            .join(STORE_FILE),
    };
    let counts = maintenance::check(&path).map_err(|e| e.to_string())?;
    crate::output::line(format_args!("{}: ok", path.display()));
    print_counts(&counts);
    if let Ok(space) = maintenance::space(&path) {
        print_space(&space);
    }
    Ok(())
}

/// The file's size, what of it is in use, and each table's share.
fn print_space(space: &maintenance::Space) {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    crate::output::line(format_args!(
        "file {:.1} MiB, {:.1} MiB in use, {:.1} MiB free inside the file (reused by new \
         writes; outpost compact gives it back)",
        mib(space.file_bytes),
        mib(space.in_use_bytes),
        mib(space.file_bytes.saturating_sub(space.in_use_bytes))
    ));
    crate::output::line(format_args!(
        "  {:<20} {:>10} {:>10} {:>14}",
        "table", "rows", "pages", "stored bytes"
    ));
    for table in &space.tables {
        crate::output::line(format_args!(
            "  {:<20} {:>10} {:>10} {:>14}",
            table.name, table.rows, table.pages, table.stored_bytes
        ));
    }
}
