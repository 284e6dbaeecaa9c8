//! `outpost backup` and `outpost restore`.

use std::path::Path;

use super::print_counts;
use crate::config::Config;
use crate::instance;
use crate::store::{maintenance, STORE_FILE};

pub fn backup(target: &Path, file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let counts = maintenance::backup(&config.data_dir, target).map_err(|e| e.to_string())?;
    crate::output::line(format_args!("backup written to {}", target.display()));
    print_counts(&counts);
    Ok(())
}

pub fn restore(source: &Path, replace: bool, file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    if let Some(holder) = instance::running_server(&config.data_dir) {
        return Err(format!(
            "{} is in use by a running outpost server ({holder}); stop the server first, then \
             run restore again",
            config.data_dir.join(STORE_FILE).display()
        ));
    }
    let counts =
        maintenance::restore(source, &config.data_dir, replace).map_err(|e| e.to_string())?;
    crate::output::line(format_args!(
        "restored {} into {}",
        source.display(),
        config.data_dir.display()
    ));
    print_counts(&counts);
    Ok(())
}
