//! `outpost config`: the effective configuration, secrets redacted.

use std::path::Path;

use crate::config::Config;

pub fn config(file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    for line in config.redacted_lines() {
        println!("{line}");
    }
    Ok(())
}
