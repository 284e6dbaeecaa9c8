//! Layering of configuration sources: built-in defaults, then the TOML file, then the process
//! environment. The result is one map from setting name to raw text, which `Config` parses. A
//! setting may also be given under an alias (upstream's name for it, see `settings::ALIASES`);
//! within one layer its own name wins.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::settings::{aliases_of, find, SETTINGS};
use super::upstream;
use super::ConfigError;

/// Raw setting values by name, after layering. Absent = unset.
pub type RawValues = BTreeMap<&'static str, String>;

/// Where the TOML file comes from: an explicit `--config` path, or `outpost.toml` in the
/// working directory when it exists.
pub fn config_file_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = PathBuf::from("outpost.toml");
            default.is_file().then_some(default)
        }
    }
}

fn toml_scalar(key: &str, value: &toml::Value) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(ConfigError::File {
            path: PathBuf::new(),
            reason: format!("`{key}` must be a string, number, boolean or list of those"),
        }),
    }
}

/// Reads the TOML file into raw values. Keys are setting names in lowercase. Upstream settings
/// outpost does not act on are not errors: their names go to `unacted`.
pub fn read_file(
    path: &Path,
    into: &mut RawValues,
    unacted: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // A setting's own key wins over an alias of it, whatever their order in the file.
    let mut entries: Vec<(&String, &toml::Value)> = table.iter().collect();
    entries.sort_by_key(|(key, _)| {
        find(&key.to_ascii_uppercase()).map(|s| s.name) == Some(key.to_ascii_uppercase().as_str())
    });
    for (key, value) in entries {
        if upstream::classify(&key.to_ascii_uppercase()).is_some() {
            unacted.push(key.to_ascii_uppercase());
            continue;
        }
        let setting = find(&key.to_ascii_uppercase()).ok_or_else(|| ConfigError::File {
            path: path.to_path_buf(),
            reason: format!("unknown setting `{key}`"),
        })?;
        let with_path = |e: ConfigError| match e {
            ConfigError::File { reason, .. } => ConfigError::File {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        };
        let text = match value {
            toml::Value::Array(items) => items
                .iter()
                .map(|item| toml_scalar(key, item))
                .collect::<Result<Vec<_>, _>>()
                .map_err(with_path)?
                .join(","),
            other => toml_scalar(key, other).map_err(with_path)?,
        };
        into.insert(setting.name, text);
    }
    Ok(())
}

/// Defaults, then the file (if any), then the environment given by `env`.
pub fn layered(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawValues, ConfigError> {
    layered_noting(file, env, &mut Vec::new())
}

/// As [`layered`], also noting the upstream settings of the file that outpost does not act on.
pub fn layered_noting(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    unacted: &mut Vec<String>,
) -> Result<RawValues, ConfigError> {
    let mut values = RawValues::new();
    for setting in SETTINGS {
        if let Some(default) = setting.default {
            values.insert(setting.name, default.to_string());
        }
    }
    if let Some(path) = file {
        read_file(path, &mut values, unacted)?;
    }
    for setting in SETTINGS {
        let value = env(setting.name).or_else(|| aliases_of(setting.name).find_map(env));
        if let Some(value) = value {
            values.insert(setting.name, value);
        }
    }
    Ok(values)
}
