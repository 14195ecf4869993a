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
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
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

#[cfg(test)]
mod tests {
    //! The promise of this module, kept by [`write_zip`] whatever fails.

    use std::fs;
    use std::path::Path;
    use std::process::Command;

    use crate::archive::test_support::{random_bytes, write_file};
    use crate::archive::{Entry, ZipOptions, select_paths, write_zip};

    fn entries(root: &Path, paths: &[&str]) -> Vec<Entry> {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        select_paths(root, &paths, &[], false)
            .expect("selection")
            .entries
    }

    /// Files in the destination directory other than the archive itself.
    fn leftovers(dir: &Path, archive: &str) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != archive)
            .collect()
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary_file() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        write_file(root, "a.txt", b"a", 0o644);
        let out = tempfile::tempdir().unwrap();
        // The destination is a non-empty directory: the final rename fails.
        let dest = out.path().join("cache.zip");
        write_file(&dest, "occupied", b"x", 0o644);
        let err = write_zip(
            root,
            &entries(root, &["a.txt"]),
            &dest,
            &ZipOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("cannot replace "), "{err}");
        assert!(leftovers(out.path(), "cache.zip").is_empty());
        assert!(dest.join("occupied").exists());
    }

    /// Environment variables that turn [`child_archives_under_a_file_size_limit`]
    /// on; it runs only inside the process started by the test below.
    const CHILD_PROJECT: &str = "RUNNER_ARCHIVE_TEST_PROJECT";
    const CHILD_DEST: &str = "RUNNER_ARCHIVE_TEST_DEST";

    #[test]
    #[ignore = "run by a_failure_mid_write_leaves_nothing_behind in a child process"]
    fn child_archives_under_a_file_size_limit() {
        let (Some(project), Some(dest)) = (
            std::env::var_os(CHILD_PROJECT),
            std::env::var_os(CHILD_DEST),
        ) else {
            return;
        };
        let root = Path::new(&project);
        let result = write_zip(
            root,
            &entries(root, &["*"]),
            Path::new(&dest),
            &ZipOptions::default(),
        );
        let err = result.expect_err("the file size limit stops the archive");
        assert!(err.to_string().contains("File too large"), "{err}");
    }

    #[test]
    fn a_failure_mid_write_leaves_nothing_behind() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        for i in 0..4 {
            write_file(
                root,
                &format!("part{i}.bin"),
                &random_bytes(512 * 1024, i),
                0o644,
            );
        }
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("artifacts.zip");
        // A file size limit of 256 blocks makes the write fail with EFBIG
        // once the archive passes it, like a full disk; ignoring SIGXFSZ
        // turns the signal into that error, and survives exec.
        let test = "archive::temp_file::tests::child_archives_under_a_file_size_limit";
        let out_of_child = Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 256; exec \"$0\" \"$@\"")
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                test,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_PROJECT, root)
            .env(CHILD_DEST, &dest)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out_of_child.stdout);
        assert!(
            out_of_child.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out_of_child.stderr)
        );
        assert!(stdout.contains("1 passed"), "{stdout}");
        assert!(!dest.exists());
        assert!(leftovers(out.path(), "artifacts.zip").is_empty());
    }
}
