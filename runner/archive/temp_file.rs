//! A temporary file beside its destination, renamed over it when complete
//! and removed otherwise: the destination never holds a partial file.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ArchiveError;

/// Distinguishes temporary files made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// Creates `.<name>.<pid>.<n>.partial` in the directory of `dest`, so
    /// that the final rename stays within one file system and is atomic.
    pub(crate) fn create_beside(dest: &Path) -> Result<TempFile, ArchiveError> {
        let dir = dest.parent().unwrap_or(Path::new(""));
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "archive".to_owned());
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.{}.{n}.partial", std::process::id()));
            match OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        persisted: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ArchiveError::io("create", path, e)),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Renames the file to `dest`, replacing what was there.
    pub(crate) fn persist(mut self, dest: &Path) -> Result<(), ArchiveError> {
        std::fs::rename(&self.path, dest).map_err(|e| ArchiveError::io("replace", dest, e))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Nothing better can be done if removal fails too.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
