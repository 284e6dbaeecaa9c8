//! One server per data directory: `DATA_DIR/outpost.pid` holds the running server's process id
//! under an exclusive advisory lock that lasts as long as the process. A second server, or a
//! `restore`, finds the lock taken and can say which process holds it. The lock goes away with
//! the process, even after `kill -9`; the file itself stays.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside `DATA_DIR`.
pub const PID_FILE: &str = "outpost.pid";

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "{store} is in use by another outpost server ({holder}); stop that server first, or \
         give this one another DATA_DIR"
    )]
    InUse { store: PathBuf, holder: String },
    #[error("cannot lock {path}: {reason}")]
    Io { path: PathBuf, reason: String },
}

/// Held while the server runs; dropping it releases the data directory.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

fn io_error(path: &Path, e: impl ToString) -> InstanceError {
    InstanceError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Describes the holder of a taken lock from the pid it wrote.
fn holder_of(file: &mut File, path: &Path) -> String {
    let mut text = String::new();
    match file.read_to_string(&mut text).ok().map(|_| text.trim()) {
        Some(pid) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => {
            format!("process {pid}, per {}", path.display())
        }
        _ => format!("its process holds the lock on {}", path.display()),
    }
}

/// Takes the data directory for this process (which must exist) and records its pid.
pub fn acquire(data_dir: &Path, store_file: &str) -> Result<InstanceLock, InstanceError> {
    let path = data_dir.join(PID_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_error(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(InstanceError::InUse {
                store: data_dir.join(store_file),
                holder: holder_of(&mut file, &path),
            })
        }
        Err(TryLockError::Error(e)) => return Err(io_error(&path, e)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(|e| io_error(&path, e))?;
    Ok(InstanceLock { _file: file })
}

/// Who holds the data directory, if a server does (without creating anything).
pub fn running_server(data_dir: &Path) -> Option<String> {
    let path = data_dir.join(PID_FILE);
    let mut file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Err(TryLockError::WouldBlock) => Some(holder_of(&mut file, &path)),
        Ok(()) | Err(TryLockError::Error(_)) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        assert!(running_server(dir.path()).is_none());
        let lock = acquire(dir.path(), "outpost.redb").unwrap();
        let pid = std::process::id().to_string();
        let text = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        assert_eq!(text.trim(), pid);
        let err = acquire(dir.path(), "outpost.redb").unwrap_err().to_string();
        assert!(err.contains(&format!("process {pid}")), "{err}");
        assert!(err.contains("outpost.redb"), "{err}");
        assert!(running_server(dir.path()).is_some_and(|h| h.contains(&pid)));
        drop(lock);
        assert!(running_server(dir.path()).is_none());
        acquire(dir.path(), "outpost.redb").unwrap();
    }
}
