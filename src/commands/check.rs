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
    Ok(())
}
