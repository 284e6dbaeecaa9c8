//! `outpost token TENANT`: mints a tenant JWT from the configured secret (or the one generated
//! into DATA_DIR on first start), exactly as `GET /tenants/:id/token` would.

use std::path::Path;

use crate::api::AuthKeys;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials;

pub fn token(tenant: &str, file: Option<&Path>) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let secret =
        match config.api_jwt_secret.clone() {
            Some(secret) => secret,
            None => credentials::stored(&config.data_dir, "API_JWT_SECRET")
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!(
                    "no API_JWT_SECRET is configured and {} holds none yet (start the server once)",
                    config.data_dir.join(credentials::CREDENTIALS_FILE).display()
                )
                })?,
        };
    let clock = Clock::system();
    let keys = AuthKeys::new(None, &secret, config.deployment_id.clone(), clock.clone());
    let token = keys
        .mint(tenant, clock.now_seconds())
        .map_err(|_| "could not sign the token".to_string())?;
    crate::output::line(format_args!("{token}"));
    Ok(())
}
