//! Making a directory hold exactly the files of a `git ls-files` listing of
//! another: copy what differs, delete what is not listed.
//!
//! Creating files is the expensive part of laying a work tree into the
//! project directory; looking at them is cheap. So a file already there
//! with the source's size, mode and modification time (which a copy
//! carries over) is left alone, as `rsync` does: on a rerun only the files
//! the user or the job changed are written.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, FileTimes, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::SourcesError;
use super::stage::create_dir;

/// Above this many files the copy is spread over threads.
const PARALLEL_FROM: usize = 64;

/// What a sync found and left to its caller.
#[derive(Debug, Default)]
pub(crate) struct Synced {
    /// Listed directories that are repositories of their own (submodules,
    /// nested clones): a listing does not go into them.
    pub nested: Vec<PathBuf>,
    /// How many files and symlinks were written.
    #[cfg_attr(not(test), expect(dead_code))]
    pub written: usize,
}

/// Makes `dst` hold exactly the entries of `listing` (NUL-separated paths
/// relative to `src`) that exist in `src`, with their content, mode and
/// symlink targets.
///
/// `dst/.git` is never touched. A nested repository's directory is kept
/// (created empty if need be); its content is left alone when `descend`
/// says the caller syncs it next, and removed otherwise, as git leaves an
/// unpopulated submodule empty.
pub(crate) fn sync_listing(
    src: &Path,
    dst: &Path,
    listing: &[u8],
    descend: bool,
) -> Result<Synced, SourcesError> {
    let mut files: Vec<(&Path, Metadata)> = Vec::new();
    let mut nested: Vec<PathBuf> = Vec::new();
    let mut previous: Option<&[u8]> = None;
    for raw in listing.split(|&b| b == 0) {
        // An untracked nested repository is listed as `dir/`.
        let raw = raw.strip_suffix(b"/").unwrap_or(raw);
        // Unmerged paths are listed once per stage.
        if raw.is_empty() || previous == Some(raw) {
            continue;
        }
        previous = Some(raw);
        let rel = Path::new(OsStr::from_bytes(raw));
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            continue;
        }
        let from = src.join(rel);
        let meta = match fs::symlink_metadata(&from) {
            Ok(meta) => meta,
            // Deleted in the work tree (or its directory replaced by a
            // file): the job does not get it either.
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(SourcesError::io("cannot read", &from, e)),
        };
        let kind = meta.file_type();
        if kind.is_dir() {
            if from.join(".git").exists() {
                nested.push(rel.to_path_buf());
            }
        } else if kind.is_file() || kind.is_symlink() {
            files.push((rel, meta));
        }
        // Sockets and fifos: nothing a checkout could hold.
    }

    create_dir(dst)?;
    let existing = remove_unlisted(dst, &files, &nested, descend)?;
    for rel in &nested {
        create_dir(&dst.join(rel))?;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    let written = if files.len() < PARALLEL_FROM || threads < 2 {
        copy_files(src, dst, &files, &existing)?
    } else {
        let chunk = files.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    let existing = &existing;
                    scope.spawn(move || copy_files(src, dst, part, existing))
                })
                .collect();
            let mut written = 0;
            for worker in workers {
                written += worker.join().map_err(|_| {
                    SourcesError::io(
                        "cannot copy into",
                        dst,
                        io::Error::other("copy thread panicked"),
                    )
                })??;
            }
            Ok::<usize, SourcesError>(written)
        })?
    };
    Ok(Synced { nested, written })
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// What `dst` may keep.
struct Keep<'a> {
    /// Listed files and symlinks.
    files: HashSet<&'a Path>,
    /// Directories leading to them, and nested repositories' directories.
    dirs: HashSet<&'a Path>,
    /// Nested repositories whose content the caller syncs next.
    owned: HashSet<&'a Path>,
}

/// Deletes what `dst` holds beyond the listing and returns the files and
/// symlinks it keeps, with their metadata.
fn remove_unlisted<'a>(
    dst: &Path,
    files: &'a [(&'a Path, Metadata)],
    nested: &'a [PathBuf],
    descend: bool,
) -> Result<HashMap<PathBuf, Metadata>, SourcesError> {
    let mut keep = Keep {
        files: files.iter().map(|(rel, _)| *rel).collect(),
        dirs: nested.iter().map(PathBuf::as_path).collect(),
        owned: HashSet::new(),
    };
    for rel in files
        .iter()
        .map(|(rel, _)| *rel)
        .chain(nested.iter().map(PathBuf::as_path))
    {
        keep.dirs.extend(
            rel.ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty()),
        );
    }
    if descend {
        keep.owned = nested.iter().map(PathBuf::as_path).collect();
    }
    let mut kept = HashMap::new();
    prune(dst, Path::new(""), &keep, &mut kept)?;
    Ok(kept)
}

fn prune(
    dir: &Path,
    rel: &Path,
    keep: &Keep<'_>,
    kept: &mut HashMap<PathBuf, Metadata>,
) -> Result<(), SourcesError> {
    let entries = fs::read_dir(dir).map_err(|e| SourcesError::io("cannot read", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SourcesError::io("cannot read", dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        // The job's repository is not part of the work tree.
        if rel.as_os_str().is_empty() && name == ".git" {
            continue;
        }
        let child = rel.join(&name);
        let kind = entry
            .file_type()
            .map_err(|e| SourcesError::io("cannot read", &path, e))?;
        if kind.is_dir() {
            if keep.owned.contains(child.as_path()) {
                continue;
            }
            if keep.dirs.contains(child.as_path()) {
                prune(&path, &child, keep, kept)?;
            } else {
                fs::remove_dir_all(&path)
                    .map_err(|e| SourcesError::io("cannot remove", &path, e))?;
            }
        } else if keep.files.contains(child.as_path()) && !keep.dirs.contains(child.as_path()) {
            // Does not follow a symlink: the link itself is compared.
            let meta = entry
                .metadata()
                .map_err(|e| SourcesError::io("cannot read", &path, e))?;
            kept.insert(child, meta);
        } else {
            fs::remove_file(&path).map_err(|e| SourcesError::io("cannot remove", &path, e))?;
        }
    }
    Ok(())
}

/// Writes the files that are missing or differ; returns how many.
fn copy_files(
    src: &Path,
    dst: &Path,
    files: &[(&Path, Metadata)],
    existing: &HashMap<PathBuf, Metadata>,
) -> Result<usize, SourcesError> {
    let mut made: HashSet<PathBuf> = HashSet::new();
    let mut written = 0;
    for (rel, meta) in files {
        let from = src.join(rel);
        let to = dst.join(rel);
        let current = existing.get(*rel);
        if meta.file_type().is_symlink() {
            let target =
                fs::read_link(&from).map_err(|e| SourcesError::io("cannot read", &from, e))?;
            if let Some(current) = current {
                if current.file_type().is_symlink()
                    && fs::read_link(&to).ok().as_ref() == Some(&target)
                {
                    continue;
                }
                fs::remove_file(&to).map_err(|e| SourcesError::io("cannot remove", &to, e))?;
            } else {
                make_parent(&to, &mut made)?;
            }
            std::os::unix::fs::symlink(&target, &to)
                .map_err(|e| SourcesError::io("cannot write", &to, e))?;
        } else {
            match current {
                Some(current) if current.file_type().is_file() && same_file(meta, current) => {
                    continue;
                }
                Some(current) if !current.file_type().is_file() => {
                    fs::remove_file(&to).map_err(|e| SourcesError::io("cannot remove", &to, e))?;
                }
                Some(_) => {}
                None => make_parent(&to, &mut made)?,
            }
            copy_file(&from, &to, meta).map_err(|e| SourcesError::io("cannot copy", &from, e))?;
        }
        written += 1;
    }
    Ok(written)
}

/// Same size, permission bits and modification time: a copy made earlier
/// and not changed since on either side.
fn same_file(src: &Metadata, dst: &Metadata) -> bool {
    src.len() == dst.len()
        && src.mode() & 0o7777 == dst.mode() & 0o7777
        && src.mtime() == dst.mtime()
        && src.mtime_nsec() == dst.mtime_nsec()
}

fn make_parent(path: &Path, made: &mut HashSet<PathBuf>) -> Result<(), SourcesError> {
    if let Some(parent) = path.parent()
        && !made.contains(parent)
    {
        create_dir(parent)?;
        made.insert(parent.to_path_buf());
    }
    Ok(())
}

/// Copies content and permission bits, then the modification time, which
/// marks the copy as current for the next sync.
fn copy_file(from: &Path, to: &Path, meta: &Metadata) -> io::Result<()> {
    let mut reader = fs::File::open(from)?;
    let mut writer = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(meta.mode() & 0o7777)
        .open(to)?;
    io::copy(&mut reader, &mut writer)?;
    // The umask may have taken bits off, and an existing file keeps its
    // old mode on open.
    writer.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    writer.set_times(FileTimes::new().set_modified(meta.modified()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in names {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        out
    }

    fn write(path: &Path, content: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    #[test]
    fn a_second_sync_writes_only_what_changed_and_removes_the_rest() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let (s, d) = (src.path(), dst.path().join("p"));
        write(&s.join("a.txt"), "a");
        write(&s.join("dir/b.txt"), "b");
        write(&s.join("dir/c.txt"), "c");
        let names = listing(&["a.txt", "dir/b.txt", "dir/c.txt", "deleted.txt"]);
        let first = sync_listing(s, &d, &names, false).unwrap();
        assert_eq!(first.written, 3);
        assert_eq!(fs::read_to_string(d.join("dir/b.txt")).unwrap(), "b");

        // The job leaves junk and edits a file; the user edits another.
        write(&d.join("junk/deep/x.o"), "junk");
        write(&d.join("dir/c.txt"), "changed by the job");
        write(&s.join("a.txt"), "edited");
        write(&d.join(".git/keep"), "git dir");
        let second = sync_listing(s, &d, &names, false).unwrap();
        assert_eq!(second.written, 2, "only a.txt and dir/c.txt");
        assert_eq!(fs::read_to_string(d.join("a.txt")).unwrap(), "edited");
        assert_eq!(fs::read_to_string(d.join("dir/c.txt")).unwrap(), "c");
        assert!(!d.join("junk").exists());
        assert!(d.join(".git/keep").exists());
        let third = sync_listing(s, &d, &names, false).unwrap();
        assert_eq!(third.written, 0);
    }

    #[test]
    fn type_changes_and_modes_are_followed() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let (s, d) = (src.path(), dst.path().join("p"));
        write(&s.join("x"), "file");
        write(&s.join("y/inner"), "inner");
        sync_listing(s, &d, &listing(&["x", "y/inner"]), false).unwrap();

        // x becomes a directory, y a symlink; a mode changes.
        fs::remove_file(s.join("x")).unwrap();
        write(&s.join("x/now-a-dir"), "d");
        fs::remove_dir_all(s.join("y")).unwrap();
        std::os::unix::fs::symlink("x", s.join("y")).unwrap();
        write(&s.join("tool"), "#!/bin/sh\n");
        fs::set_permissions(s.join("tool"), fs::Permissions::from_mode(0o751)).unwrap();
        sync_listing(s, &d, &listing(&["tool", "x/now-a-dir", "y"]), false).unwrap();
        assert_eq!(fs::read_to_string(d.join("x/now-a-dir")).unwrap(), "d");
        assert_eq!(fs::read_link(d.join("y")).unwrap(), Path::new("x"));
        assert_eq!(fs::metadata(d.join("tool")).unwrap().mode() & 0o7777, 0o751);
    }

    #[test]
    fn nested_repositories_are_reported_and_kept_or_emptied() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let (s, d) = (src.path(), dst.path().join("p"));
        write(&s.join("sub/.git"), "gitdir: elsewhere");
        write(&s.join("sub/file"), "f");
        write(&d.join("sub/file"), "synced by the submodule's own listing");
        let synced = sync_listing(s, &d, &listing(&["sub"]), true).unwrap();
        assert_eq!(synced.nested, [PathBuf::from("sub")]);
        assert!(
            d.join("sub/file").exists(),
            "descend: the submodule's files stay"
        );
        sync_listing(s, &d, &listing(&["sub"]), false).unwrap();
        assert!(d.join("sub").is_dir());
        assert!(
            !d.join("sub/file").exists(),
            "no descend: an empty directory"
        );
    }

    #[test]
    fn large_listings_are_copied_in_parallel_all_the_same() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        let (s, d) = (src.path(), dst.path().join("p"));
        let names: Vec<String> = (0..PARALLEL_FROM + 10)
            .map(|i| format!("d{}/f{i}", i % 7))
            .collect();
        for n in &names {
            write(&s.join(n), n);
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let synced = sync_listing(s, &d, &listing(&refs), false).unwrap();
        assert_eq!(synced.written, names.len());
        for n in &names {
            assert_eq!(fs::read_to_string(d.join(n)).unwrap(), *n);
        }
    }
}
