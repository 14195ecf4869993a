//! Noticing that `config.toml` changed, so the agent reloads it without a
//! SIGHUP (as gitlab-runner does, checking every few seconds).
//!
//! The file is compared by modification time, size and inode: an editor
//! that writes a new file and renames it over the old one changes the
//! inode even within the same second, and `register` does exactly that.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How often the file is looked at.
pub const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

/// Remembers what the file looked like when it was last loaded.
#[derive(Debug)]
pub struct ConfigWatch {
    path: PathBuf,
    seen: Option<Stamp>,
}

impl ConfigWatch {
    /// Starts watching `path` as it is now (call right after loading it).
    pub fn new(path: &Path) -> Self {
        ConfigWatch {
            path: path.to_owned(),
            seen: stamp(path),
        }
    }

    /// Whether the file differs from when it was last seen; the new look
    /// becomes the one remembered, so each change is reported once.
    pub fn changed(&mut self) -> bool {
        let now = stamp(&self.path);
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_or_a_rename_over_the_file_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 1\n").unwrap();
        let mut watch = ConfigWatch::new(&path);
        assert!(!watch.changed());
        // Same size, same second: only the inode tells.
        let other = dir.path().join("new.toml");
        std::fs::write(&other, "concurrent = 2\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(watch.changed());
        assert!(!watch.changed());
        std::fs::write(&path, "concurrent = 3\ncheck_interval = 1\n").unwrap();
        assert!(watch.changed());
        std::fs::remove_file(&path).unwrap();
        assert!(watch.changed());
        assert!(!watch.changed());
    }
}
