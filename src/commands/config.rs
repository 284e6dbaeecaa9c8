//! `outpost config`: the effective configuration, secrets redacted; a secret the server
//! generated shows as generated, with the file that keeps it.

use std::path::Path;

use crate::config::Config;
use crate::credentials;

pub fn config(file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let generated_in = |name: &str| {
        credentials::stored(&config.data_dir, name)
            .ok()
            .flatten()
            .map(|_| credentials::file_path(&config.data_dir))
    };
    for line in config.redacted_lines(generated_in) {
        crate::output::line(format_args!("{line}"));
    }
    Ok(())
}
