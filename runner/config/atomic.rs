//! Replacing a file so that nobody ever reads half of it.
//!
//! The new content goes to a temporary file in the same directory (so the
//! rename stays on one filesystem), is flushed to disk, and is renamed over
//! the old file; then the directory itself is flushed so the rename
//! survives a crash. A reader opens either the old inode or the new one.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its missing parents, readable by their owner only
/// (they hold tokens).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// An exclusive advisory lock on a directory, held until dropped. Writers
/// of the same file take it around read-modify-write so that two edits
/// (a token rotation and a `register`) do not lose each other's change.
/// Locking the directory rather than a lock file leaves nothing behind.
pub(crate) struct DirLock {
    _dir: File,
}

pub(crate) fn lock_dir(dir: &Path) -> io::Result<DirLock> {
    let file = File::open(dir)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(DirLock { _dir: file })
}

/// Replaces `path` with `bytes`, leaving it with `mode` (whatever mode the
/// old file had) and, when allowed, the old file's owner. On failure the
/// old file is untouched and no temporary file is left.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path);
    let (temp_path, mut file) = create_temp(dir, path)?;
    let result = (|| {
        // The mode given to open() is reduced by the umask; set it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Ok(old) = std::fs::metadata(path) {
            // Only root can give a file away; for anyone else the file was
            // theirs already or becomes theirs, as with any editor.
            let _ = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()));
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp_path, path)
    })();
    if let Err(err) = result {
        let _ = std::fs::remove_file(&temp_path);
        return Err(err);
    }
    // The rename is done; failing to flush the directory only weakens
    // durability across a power cut, which is not worth failing for.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn create_temp(dir: &Path, target: &Path) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            // Left by a process with the same id that died mid-write.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_replaced_file_gets_the_requested_mode_whatever_it_had() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode_of(&path), 0o600);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_missing_parent_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode_of(&nested), 0o700);
        assert_eq!(mode_of(&dir.path().join("a")), 0o700);
    }

    #[test]
    fn a_reader_never_sees_half_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        // Large enough that a write in place would be seen half done.
        let a = "a".repeat(256 * 1024);
        let b = "b".repeat(256 * 1024);
        write_atomic(&path, a.as_bytes(), 0o600).unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (path, a, b, done) = (path.clone(), a.clone(), b.clone(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(text == a || text == b, "read {} bytes of a mix", text.len());
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..100 {
            let text = if i % 2 == 0 { &b } else { &a };
            write_atomic(&path, text.as_bytes(), 0o600).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }

    /// Runs in a child process (see the next test): under a file size
    /// limit every write of more than 16 bytes fails, whoever runs it.
    #[test]
    #[ignore = "run by a_failed_write_leaves_the_old_file_intact in its own process"]
    fn write_under_a_file_size_limit() {
        let Some(path) = std::env::var_os("RUNNER_TEST_ATOMIC_TARGET") else {
            return;
        };
        // SAFETY: plain system calls on this process's own limits.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 16,
                rlim_max: 16,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        }
        let err = write_atomic(Path::new(&path), &[b'x'; 4096], 0o600).unwrap_err();
        println!("write failed: {err}");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "concurrent = 1\n").unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "config::atomic::tests::write_under_a_file_size_limit",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("RUNNER_TEST_ATOMIC_TARGET", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("write failed: "), "{stdout}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "concurrent = 1\n");
        assert!(leftovers(dir.path()).is_empty());
    }
}
