//! `outpost compact`: shrinks the store file of a stopped server.

use std::path::Path;

use crate::config::Config;
use crate::instance;
use crate::store::{maintenance, STORE_FILE};

pub fn compact(file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let path = config.data_dir.join(STORE_FILE);
    if let Some(holder) = instance::running_server(&config.data_dir) {
        return Err(format!(
            "{} is in use by a running outpost server ({holder}); stop the server first, then \
             run compact again",
            path.display()
        ));
    }
    let sizes = maintenance::compact(&path).map_err(|e| e.to_string())?;
    crate::output::line(format_args!(
        "compacted {}: {} bytes before, {} bytes after",
        path.display(),
        sizes.before,
        sizes.after
    ));
    Ok(())
}
