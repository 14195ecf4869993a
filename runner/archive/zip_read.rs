//! Extracting a zip archive (artifacts of earlier jobs, a cache) into a
//! directory, as gitlab-runner does: files overwrite what is there (later
//! jobs' artifacts win), modes and modification times are restored,
//! symbolic links are recreated as links.
//!
//! Archives come from other jobs, so nothing is trusted. Every name is
//! checked before anything is written: absolute names and names climbing
//! out with `..` are refused, and so is the whole archive with them. While
//! writing, no directory on the way to an entry may be a symbolic link
//! leading outside the target, whether it came from an earlier archive or
//! this one; the archive's own links are created last, after every file,
//! so none of its files can be written through them. An existing file is
//! removed before it is replaced, so a link or hard link in its place is
//! never written through either.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use zip::ZipArchive;
use zip::result::ZipError;

use super::ArchiveError;
use super::zip_catalog::{Item, Kind, catalog};

/// The longest symbolic link target accepted (Linux's `PATH_MAX`).
const MAX_LINK_TARGET: u64 = 4096;

/// What was extracted.
#[derive(Debug, Default)]
pub struct ExtractSummary {
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    /// Uncompressed bytes of the files.
    pub bytes: u64,
    /// Entries skipped and other remarks for the job log.
    pub warnings: Vec<String>,
}

/// Extracts the zip archive `archive` into `target` (created if missing).
pub fn extract_zip(archive: &Path, target: &Path) -> Result<ExtractSummary, ArchiveError> {
    let mut zip = open(archive)?;
    let mut summary = ExtractSummary::default();
    let items = catalog(&mut zip, archive, &mut summary)?;

    fs::create_dir_all(target).map_err(|e| ArchiveError::io("create directory", target, e))?;
    let root = fs::canonicalize(target).map_err(|e| ArchiveError::io("resolve", target, e))?;
    let extractor = Extractor {
        archive,
        root: &root,
    };

    let mut known_dirs = HashSet::new();
    for item in items.iter().filter(|i| i.kind == Kind::Dir) {
        extractor.ensure_dir(item, &item.rel, &mut known_dirs)?;
        summary.dirs += 1;
    }

    let files: Vec<&Item> = items.iter().filter(|i| i.kind == Kind::File).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    summary.bytes = if threads > 1 && files.len() > 1 {
        extractor.files_parallel(&files, threads.min(files.len()))?
    } else {
        extractor.files(&mut zip, &files, &AtomicUsize::new(0))?
    };
    summary.files = files.len();

    for item in items.iter().filter(|i| i.kind == Kind::Symlink) {
        extractor.symlink(&mut zip, item, &mut known_dirs)?;
        summary.symlinks += 1;
    }

    // Directories last, deepest first: writing into them above would have
    // changed their times, and a read-only mode would have blocked it.
    let mut dirs: Vec<&Item> = items.iter().filter(|i| i.kind == Kind::Dir).collect();
    dirs.sort_by_key(|i| std::cmp::Reverse(i.rel.components().count()));
    for item in dirs {
        let path = root.join(&item.rel);
        if let Some(mtime) = item.mtime
            && let Err(e) = File::open(&path).and_then(|f| f.set_modified(mtime))
        {
            summary.warnings.push(format!("{}: {e}", item.name));
        }
        if let Err(e) = fs::set_permissions(&path, Permissions::from_mode(item.perm)) {
            summary.warnings.push(format!("{}: {e}", item.name));
        }
    }
    Ok(summary)
}

pub(super) fn open(archive: &Path) -> Result<ZipArchive<BufReader<File>>, ArchiveError> {
    let file = File::open(archive).map_err(|e| ArchiveError::io("open", archive, e))?;
    ZipArchive::new(BufReader::with_capacity(64 * 1024, file))
        .map_err(|e| ArchiveError::zip(archive, e))
}

struct Extractor<'a> {
    archive: &'a Path,
    /// The target directory, canonical.
    root: &'a Path,
}

impl Extractor<'_> {
    /// Makes sure every directory from the root down to `rel` exists, and
    /// that none is a link leading out of the target. `known` remembers the
    /// directories already checked.
    fn ensure_dir(
        &self,
        item: &Item,
        rel: &Path,
        known: &mut HashSet<PathBuf>,
    ) -> Result<(), ArchiveError> {
        let mut dir = self.root.to_path_buf();
        for part in rel.components() {
            dir.push(part);
            if known.contains(&dir) {
                continue;
            }
            match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    let inside = fs::canonicalize(&dir)
                        .is_ok_and(|real| real.starts_with(self.root) && real.is_dir());
                    if !inside {
                        let shown = dir.strip_prefix(self.root).unwrap_or(&dir).display();
                        let reason =
                            format!("{shown} is a symbolic link that leaves the target directory");
                        return Err(ArchiveError::unsafe_entry(&item.name, reason));
                    }
                }
                Ok(_) => {
                    return Err(ArchiveError::io(
                        "create directory",
                        dir,
                        io::ErrorKind::NotADirectory.into(),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&dir) {
                    // Another thread may have just created it.
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                    Err(e) => return Err(ArchiveError::io("create directory", dir, e)),
                },
                Err(e) => return Err(ArchiveError::io("examine", dir, e)),
            }
            known.insert(dir.clone());
        }
        Ok(())
    }

    /// Removes what is at `path` so that a new file or link can take its
    /// place; a directory is never removed.
    fn clear(&self, path: &Path) -> Result<(), ArchiveError> {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => Err(ArchiveError::io(
                "replace",
                path,
                io::ErrorKind::IsADirectory.into(),
            )),
            Ok(_) => fs::remove_file(path).map_err(|e| ArchiveError::io("replace", path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ArchiveError::io("examine", path, e)),
        }
    }

    /// Extracts files on `threads` threads, each reading the archive
    /// through its own handle. Returns the bytes written.
    fn files_parallel(&self, files: &[&Item], threads: usize) -> Result<u64, ArchiveError> {
        let next = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut zip = open(self.archive)?;
                        self.files(&mut zip, files, &next)
                    })
                })
                .collect();
            let mut bytes = 0;
            for worker in workers {
                let done = worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                bytes += done?;
            }
            Ok(bytes)
        })
    }

    /// Extracts the files whose turn `next` gives, until none is left.
    fn files<R: Read + io::Seek>(
        &self,
        zip: &mut ZipArchive<R>,
        files: &[&Item],
        next: &AtomicUsize,
    ) -> Result<u64, ArchiveError> {
        let mut known = HashSet::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut bytes = 0;
        while let Some(item) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
            // A failure elsewhere makes the others stop at their next file.
            bytes += self
                .file(zip, item, &mut known, &mut buf)
                .inspect_err(|_| {
                    next.store(files.len(), Ordering::Relaxed);
                })?;
        }
        Ok(bytes)
    }

    fn file<R: Read + io::Seek>(
        &self,
        zip: &mut ZipArchive<R>,
        item: &Item,
        known: &mut HashSet<PathBuf>,
        buf: &mut [u8],
    ) -> Result<u64, ArchiveError> {
        if let Some(parent) = item.rel.parent() {
            self.ensure_dir(item, parent, known)?;
        }
        let path = self.root.join(&item.rel);
        self.clear(&path)?;
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ArchiveError::io("create", &path, e))?;
        let mut entry = zip
            .by_index(item.index)
            .map_err(|e| ArchiveError::zip(self.archive, e))?;
        let mut written = 0u64;
        loop {
            // Reading also checks the CRC once the entry is exhausted.
            let n = match entry.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArchiveError::zip(self.archive, ZipError::Io(e))),
            };
            out.write_all(&buf[..n])
                .map_err(|e| ArchiveError::io("write", &path, e))?;
            written += n as u64;
        }
        // Set explicitly: the mode given at creation was reduced by umask.
        out.set_permissions(Permissions::from_mode(item.perm))
            .map_err(|e| ArchiveError::io("set the mode of", &path, e))?;
        if let Some(mtime) = item.mtime {
            out.set_modified(mtime)
                .map_err(|e| ArchiveError::io("set the time of", &path, e))?;
        }
        Ok(written)
    }

    fn symlink<R: Read + io::Seek>(
        &self,
        zip: &mut ZipArchive<R>,
        item: &Item,
        known: &mut HashSet<PathBuf>,
    ) -> Result<(), ArchiveError> {
        let entry = zip
            .by_index(item.index)
            .map_err(|e| ArchiveError::zip(self.archive, e))?;
        let mut target = Vec::new();
        entry
            .take(MAX_LINK_TARGET + 1)
            .read_to_end(&mut target)
            .map_err(|e| ArchiveError::zip(self.archive, ZipError::Io(e)))?;
        if target.is_empty() || target.len() as u64 > MAX_LINK_TARGET || target.contains(&0) {
            return Err(ArchiveError::unsafe_entry(
                &item.name,
                "invalid symbolic link target",
            ));
        }
        if let Some(parent) = item.rel.parent() {
            self.ensure_dir(item, parent, known)?;
        }
        let path = self.root.join(&item.rel);
        self.clear(&path)?;
        symlink(OsStr::from_bytes(&target), &path)
            .map_err(|e| ArchiveError::io("create link", &path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::test_support::{
        Raw, craft, is_empty_dir, mode_of, random_bytes, write_file,
    };
    use crate::archive::{ZipOptions, select_paths, write_zip};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn modes_links_directories_and_times_round_trip() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        write_file(root, "out/run.sh", b"#!/bin/sh\n", 0o755);
        write_file(root, "out/data.txt", b"data", 0o600);
        fs::create_dir(root.join("out/empty")).unwrap();
        std::os::unix::fs::symlink("run.sh", root.join("out/run")).unwrap();
        std::os::unix::fs::symlink("/nowhere/at/all", root.join("out/dangling")).unwrap();
        let when = UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        File::options()
            .write(true)
            .open(root.join("out/data.txt"))
            .unwrap()
            .set_modified(when)
            .unwrap();
        fs::set_permissions(root.join("out/empty"), Permissions::from_mode(0o750)).unwrap();
        let entries = select_paths(root, &["out".into()], &[], false)
            .unwrap()
            .entries;
        let archive = root.join("a.zip");
        write_zip(root, &entries, &archive, &ZipOptions::default()).unwrap();

        let target = tempfile::tempdir().unwrap();
        let t = target.path();
        let summary = extract_zip(&archive, t).unwrap();
        assert_eq!(
            (summary.files, summary.dirs, summary.symlinks, summary.bytes),
            (2, 2, 2, 14)
        );
        assert_eq!(mode_of(&t.join("out/run.sh")), 0o755);
        assert_eq!(mode_of(&t.join("out/data.txt")), 0o600);
        assert_eq!(mode_of(&t.join("out/empty")), 0o750);
        assert_eq!(
            fs::read_link(t.join("out/run")).unwrap(),
            Path::new("run.sh")
        );
        assert_eq!(
            fs::read_link(t.join("out/dangling")).unwrap(),
            Path::new("/nowhere/at/all")
        );
        assert_eq!(
            fs::metadata(t.join("out/data.txt"))
                .unwrap()
                .modified()
                .unwrap(),
            when
        );
        assert_eq!(fs::read(t.join("out/run.sh")).unwrap(), b"#!/bin/sh\n");
    }

    #[test]
    fn an_existing_link_leading_outside_is_not_written_through() {
        let scratch = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(outside.path(), target.join("out")).unwrap();
        let archive = craft(scratch.path(), &[Raw::File("out/x", b"evil")]);
        let err = extract_zip(&archive, &target).unwrap_err();
        assert!(
            err.to_string()
                .contains("symbolic link that leaves the target"),
            "{err}"
        );
        assert!(is_empty_dir(outside.path()));
    }

    #[test]
    fn an_existing_link_inside_the_target_is_followed() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        fs::create_dir_all(target.join("real")).unwrap();
        std::os::unix::fs::symlink("real", target.join("alias")).unwrap();
        let archive = craft(scratch.path(), &[Raw::File("alias/x", b"ok")]);
        extract_zip(&archive, &target).unwrap();
        assert_eq!(fs::read(target.join("real/x")).unwrap(), b"ok");
    }

    #[test]
    fn existing_files_and_links_are_replaced_not_written_through() {
        let scratch = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        fs::write(&secret, "secret").unwrap();
        let target = scratch.path().join("target");
        write_file(&target, "a.txt", b"old artifact", 0o644);
        std::os::unix::fs::symlink(&secret, target.join("b.txt")).unwrap();
        let archive = craft(
            scratch.path(),
            &[Raw::File("a.txt", b"new"), Raw::File("b.txt", b"b")],
        );
        extract_zip(&archive, &target).unwrap();
        assert_eq!(fs::read(target.join("a.txt")).unwrap(), b"new");
        assert!(
            fs::symlink_metadata(target.join("b.txt"))
                .unwrap()
                .is_file()
        );
        assert_eq!(fs::read(target.join("b.txt")).unwrap(), b"b");
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
    }

    #[test]
    fn a_directory_in_the_way_of_a_file_is_an_error() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        fs::create_dir_all(target.join("a.txt")).unwrap();
        let archive = craft(scratch.path(), &[Raw::File("a.txt", b"a")]);
        let err = extract_zip(&archive, &target).unwrap_err();
        assert!(err.to_string().starts_with("cannot replace "), "{err}");
    }

    #[test]
    fn a_corrupted_entry_is_an_error() {
        let scratch = tempfile::tempdir().unwrap();
        let archive = craft(scratch.path(), &[Raw::File("x", b"hello hello hello")]);
        let mut bytes = fs::read(&archive).unwrap();
        let at = bytes.windows(5).position(|w| w == b"hello").unwrap();
        bytes[at] = b'j';
        fs::write(&archive, bytes).unwrap();
        let err = extract_zip(&archive, &scratch.path().join("t")).unwrap_err();
        assert!(matches!(err, ArchiveError::Zip { .. }), "{err}");
        let err = extract_zip(&scratch.path().join("missing.zip"), scratch.path()).unwrap_err();
        assert!(err.to_string().starts_with("cannot open "), "{err}");
    }

    #[test]
    fn many_files_extract_in_parallel() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        for i in 0..40u64 {
            write_file(
                root,
                &format!("d{}/f{i}", i % 5),
                &random_bytes(5000 + i as usize, i),
                0o644,
            );
        }
        let entries = select_paths(root, &["*".into()], &[], false)
            .unwrap()
            .entries;
        let archive = root.join("../many.zip");
        write_zip(root, &entries, &archive, &ZipOptions::default()).unwrap();
        let target = tempfile::tempdir().unwrap();
        let summary = extract_zip(&archive, target.path()).unwrap();
        assert_eq!(summary.files, 40);
        for i in 0..40u64 {
            let rel = format!("d{}/f{i}", i % 5);
            assert_eq!(
                fs::read(target.path().join(&rel)).unwrap(),
                random_bytes(5000 + i as usize, i)
            );
        }
        fs::remove_file(archive).unwrap();
    }
}
