//! `outpost rekey`: seals every destination's secrets again under a new
//! `AES_ENCRYPTION_SECRET`, on a stopped server.
//!
//! With the secret kept in `DATA_DIR/credentials.env` (not configured), the new one is written
//! there first as `AES_ENCRYPTION_SECRET_NEXT`, then the store is sealed with it in one commit,
//! then it replaces the old one. A crash between the two leaves both in the file, and the next
//! start uses whichever opens the store. With a configured secret, the new one must be given
//! and the operator puts it in the configuration afterwards.

use std::path::Path;

use crate::config::Config;
use crate::credentials::{self, ENCRYPTION_SECRET, NEXT_ENCRYPTION_SECRET};
use crate::instance;
use crate::store::secrets::SecretBox;
use crate::store::{maintenance, STORE_FILE};

pub fn rekey(new_secret: Option<&str>, file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let data_dir = &config.data_dir;
    let path = data_dir.join(STORE_FILE);
    if let Some(holder) = instance::running_server(data_dir) {
        return Err(format!(
            "{} is in use by a running outpost server ({holder}); stop the server first, then \
             run rekey again",
            path.display()
        ));
    }
    let configured = config.aes_encryption_secret.clone();
    let old = match &configured {
        Some(secret) => secret.clone(),
        None => credentials::stored(data_dir, ENCRYPTION_SECRET)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                format!(
                    "no AES_ENCRYPTION_SECRET is configured or kept in {}: start the server \
                     once first",
                    credentials::file_path(data_dir).display()
                )
            })?,
    };
    let new = match (new_secret, &configured) {
        (Some(secret), _) if !secret.is_empty() => secret.to_string(),
        (_, Some(_)) => {
            return Err(
                "AES_ENCRYPTION_SECRET is configured: pass the new one with --new-secret, and \
                 put the same value in the configuration before starting the server"
                    .into(),
            )
        }
        (_, None) => credentials::new_secret().map_err(|e| e.to_string())?,
    };
    if new == old {
        return Err("the new secret is the one in use".into());
    }
    let sealer = |secret: &str| SecretBox::new(secret).map_err(|e| e.to_string());
    let (old_key, new_key) = (sealer(&old)?, sealer(&new)?);
    if configured.is_none() {
        credentials::store_value(data_dir, NEXT_ENCRYPTION_SECRET, &new, &[])
            .map_err(|e| e.to_string())?;
    }
    let count = maintenance::rekey(&path, &old_key, &new_key).map_err(|e| e.to_string())?;
    if configured.is_none() {
        credentials::store_value(data_dir, ENCRYPTION_SECRET, &new, &[NEXT_ENCRYPTION_SECRET])
            .map_err(|e| e.to_string())?;
        crate::output::line(format_args!(
            "encrypted the secrets of {count} destinations under a new AES_ENCRYPTION_SECRET, \
             kept in {}",
            credentials::file_path(data_dir).display()
        ));
    } else {
        crate::output::line(format_args!(
            "encrypted the secrets of {count} destinations under the new secret; set \
             AES_ENCRYPTION_SECRET to it in the configuration before starting the server"
        ));
    }
    Ok(())
}
