//! The builds dir as a tar stream and back, on the host, for daemons that
//! cannot see the host's files: what goes into a step's container, and
//! how what comes out replaces the host's copy without ever leaving it
//! half-updated.
//!
//! Blocking code: callers run it on the blocking pool, with the archive
//! API's byte stream bridged to `Read`/`Write`. Everything streams; no
//! file is ever held whole in memory.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, RenameFlags};
use tar::{EntryType, Header, HeaderMode};

/// Writes everything under `root` (not `root` itself) to `out` as a tar
/// stream, paths relative to `root`.
///
/// Kept as they are: directories (empty ones too), symlinks (as links,
/// never followed), modes, owners (by number) and modification times
/// (to the second: the daemon's side of the archive API keeps no finer).
/// Sockets and device files are left out: a builds dir has no use for
/// them, tar has no type for a socket, and making a device node needs a
/// privilege containers usually lack.
///
/// `root` itself is not written: the daemon does not apply an archive's
/// root entry to the directory it extracts into.
pub(crate) fn write_tree(root: &Path, out: impl Write) -> io::Result<()> {
    let mut builder = tar::Builder::new(out);
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        // A stable order: the same tree makes the same stream.
        .sort_by_file_name()
    {
        let entry = entry.map_err(io::Error::from)?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .map_err(|_| io::Error::other("walked outside the builds dir"))?;
        let kind = entry.file_type();
        if kind.is_file() {
            // The size in the header must be the size read: take both
            // from the open file, not from the walk's earlier look.
            let file = fs::File::open(entry.path()).map_err(|e| at(entry.path(), e))?;
            let meta = file.metadata().map_err(|e| at(entry.path(), e))?;
            let mut header = header_for(&meta);
            builder
                .append_data(&mut header, rel, file)
                .map_err(|e| at(entry.path(), e))?;
        } else if kind.is_dir() {
            let meta = entry.metadata().map_err(io::Error::from)?;
            let mut header = header_for(&meta);
            header.set_size(0);
            builder
                .append_data(&mut header, rel, io::empty())
                .map_err(|e| at(entry.path(), e))?;
        } else if kind.is_symlink() {
            let meta = entry.metadata().map_err(io::Error::from)?;
            let target = fs::read_link(entry.path()).map_err(|e| at(entry.path(), e))?;
            let mut header = header_for(&meta);
            header.set_size(0);
            builder
                .append_link(&mut header, rel, &target)
                .map_err(|e| at(entry.path(), e))?;
        } else if is_fifo(&entry) {
            let meta = entry.metadata().map_err(io::Error::from)?;
            let mut header = header_for(&meta);
            header.set_entry_type(EntryType::Fifo);
            header.set_size(0);
            builder
                .append_data(&mut header, rel, io::empty())
                .map_err(|e| at(entry.path(), e))?;
        }
    }
    builder.into_inner()?.flush()
}

fn header_for(meta: &fs::Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(meta, HeaderMode::Complete);
    header
}

fn is_fifo(entry: &walkdir::DirEntry) -> bool {
    use std::os::unix::fs::FileTypeExt;
    entry.file_type().is_fifo()
}

/// Makes `target` (a directory) equal to the tree that `input`, a tar
/// stream as the daemon sends it, holds under its one top-level directory
/// (`builds/...` for a container's `/builds`).
///
/// What the step created or changed appears, what it deleted disappears:
/// the stream is unpacked whole into a staging directory beside `target`,
/// which then takes `target`'s place in one atomic exchange. A stream
/// that fails half-way leaves `target` as it was. The staging directory,
/// holding the old tree after the exchange, is removed on every path.
///
/// `target` itself keeps its permissions and owner: the daemon does not
/// apply them inwards (see [`write_tree`]), so they are the host's to
/// keep.
///
/// `proceed` is asked once the stream is unpacked, just before the
/// exchange: `false` (nobody waits for this copy any more) leaves
/// `target` alone.
pub(crate) fn replace_from_tar(
    target: &Path,
    input: impl Read,
    proceed: impl FnOnce() -> bool,
) -> io::Result<()> {
    let (parent, name) = match (target.parent(), target.file_name()) {
        (Some(p), Some(n)) => (p, n.to_string_lossy()),
        _ => return Err(io::Error::other("the builds dir has no parent directory")),
    };
    // Beside the target: the exchange is a rename, which only works
    // within one file system.
    let staging = parent.join(format!(
        ".{name}.incoming-{}",
        super::client::new_instance_id()
    ));
    fs::create_dir(&staging).map_err(|e| at(&staging, e))?;
    let staging = Staging(staging);

    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    // Owners only as root: anyone else cannot give files away, and owns
    // what it unpacks, which is what a runner that is not root needs.
    archive.set_preserve_ownerships(rustix::process::geteuid().is_root());
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive.unpack(&staging.0)?;

    let top = single_directory(&staging.0)?;
    if !proceed() {
        return Err(io::Error::other(
            "abandoned before the builds dir was replaced",
        ));
    }
    match fs::symlink_metadata(target) {
        Ok(meta) => {
            fs::set_permissions(&top, meta.permissions()).map_err(|e| at(&top, e))?;
            if rustix::process::geteuid().is_root() {
                std::os::unix::fs::lchown(&top, Some(meta.uid()), Some(meta.gid()))
                    .map_err(|e| at(&top, e))?;
            }
            exchange(&top, target)?;
        }
        // Gone from the host meanwhile: nothing to exchange with.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::rename(&top, target).map_err(|e| at(target, e))?
        }
        Err(e) => return Err(at(target, e)),
    }
    // `staging` goes out of scope here, and the old tree with it.
    Ok(())
}

/// The one directory `dir` holds; anything else is not an archive of a
/// directory.
fn single_directory(dir: &Path) -> io::Result<PathBuf> {
    let mut entries = fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    match entries.as_slice() {
        [one] if one.file_type()?.is_dir() => Ok(entries.remove(0).path()),
        _ => Err(io::Error::other(format!(
            "the archive holds {} top-level entries, expected one directory",
            entries.len()
        ))),
    }
}

/// Swaps `a` and `b`, both existing, atomically: at every moment `b` is
/// either the whole old tree or the whole new one.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    match rustix::fs::renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        // File systems without RENAME_EXCHANGE: move the old tree into
        // the staging dir, then the new one in. A crash between the two
        // leaves the old tree whole, inside the staging dir.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            let aside = a.with_extension("old");
            fs::rename(b, &aside).map_err(|e| at(b, e))?;
            fs::rename(a, b).map_err(|e| at(b, e))
        }
        Err(e) => Err(at(b, e.into())),
    }
}

/// A staging directory, removed when dropped, whatever happened.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = remove_tree(&self.0);
    }
}

/// Removes `path` and everything under it, including directories the
/// step made read-only (a runner that is not root could not otherwise
/// delete their entries).
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            for entry in walkdir::WalkDir::new(path).follow_links(false) {
                let Ok(entry) = entry else { continue };
                if entry.file_type().is_dir() {
                    let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
                }
            }
            fs::remove_dir_all(path)
        }
        Err(e) => Err(e),
    }
}

/// `e` and the error at the bottom of it, one line: the tar crate's own
/// messages name the entry but keep the cause (a dropped stream, a full
/// disk) in their source.
pub(crate) fn describe(e: &io::Error) -> String {
    let mut text = e.to_string();
    let mut root = None;
    let mut source = e.get_ref().and_then(|inner| inner.source());
    while let Some(cause) = source {
        root = Some(cause);
        source = cause.source();
    }
    // The layers between repeat the entry's name; the top names it, the
    // bottom says what happened.
    if let Some(cause) = root {
        let line = cause.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
    }
    text
}

/// `e` with the path it happened at.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::process::Command;
    use std::time::{Duration, SystemTime};

    /// A tree with every kind of entry that must survive a round trip.
    fn sample(root: &Path) {
        fs::create_dir_all(root.join("group/project/empty")).unwrap();
        fs::write(root.join("group/project/file.txt"), "content\n").unwrap();
        fs::write(root.join("group/project/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(
            root.join("group/project/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        symlink("file.txt", root.join("group/project/link")).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
        fs::File::options()
            .write(true)
            .open(root.join("group/project/file.txt"))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    /// `tar` (the system's) lists what `write_tree` wrote.
    #[test]
    fn write_tree_keeps_kinds_modes_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("builds");
        sample(&root);
        let archive = dir.path().join("out.tar");
        write_tree(&root, fs::File::create(&archive).unwrap()).unwrap();
        let out = Command::new("tar")
            .args(["--numeric-owner", "--full-time", "-tvf"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8_lossy(&out.stdout);
        let line = |name: &str| {
            listing
                .lines()
                .find(|l| l.ends_with(name))
                .unwrap_or_else(|| panic!("{name} missing from:\n{listing}"))
                .to_owned()
        };
        assert!(
            line(" group/project/empty").starts_with("drwx"),
            "{listing}"
        );
        assert!(line("group/project/run.sh").starts_with("-rwxr-xr-x"));
        assert!(line("group/project/link -> file.txt").starts_with("lrwx"));
        assert!(line("group/project/file.txt").contains("2017-07-14 02:40:00"));
        assert!(
            !listing
                .lines()
                .any(|l| l.ends_with(" ./") || l.ends_with(" .")),
            "no root entry:\n{listing}"
        );
    }

    /// The whole trip: host tree → tar → a different tree (as a step left
    /// it, packed by the system's tar like the daemon does, under
    /// `builds/`) → the host tree equals it, deletions included.
    #[test]
    fn replace_from_tar_makes_the_target_equal() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("builds");
        sample(&target);
        fs::write(target.join("group/project/deleted-by-step"), "x").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o750)).unwrap();

        // What the step left: the sample, minus one file, plus new ones.
        let step = dir.path().join("step");
        let packed = step.join("builds");
        sample(&packed);
        fs::write(packed.join("group/project/new"), "new\n").unwrap();
        fs::create_dir(packed.join("group/project/new-empty")).unwrap();
        let archive = dir.path().join("from-step.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&step)
            .arg("-cf")
            .arg(&archive)
            .arg("builds")
            .status()
            .unwrap();
        assert!(status.success());

        replace_from_tar(&target, fs::File::open(&archive).unwrap(), || true).unwrap();
        let p = target.join("group/project");
        assert_eq!(fs::read_to_string(p.join("new")).unwrap(), "new\n");
        assert!(p.join("new-empty").is_dir());
        assert!(p.join("empty").is_dir());
        assert!(!p.join("deleted-by-step").exists());
        assert_eq!(
            fs::read_link(p.join("link")).unwrap(),
            PathBuf::from("file.txt")
        );
        assert_eq!(
            fs::metadata(p.join("run.sh")).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            fs::metadata(p.join("file.txt"))
                .unwrap()
                .modified()
                .unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000)
        );
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o750,
            "the builds dir keeps its own mode"
        );
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    /// A stream that breaks off leaves the target exactly as it was, and
    /// no staging directory.
    #[test]
    fn a_broken_stream_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("builds");
        sample(&target);
        let step = dir.path().join("step/builds");
        fs::create_dir_all(&step).unwrap();
        fs::write(step.join("big"), vec![7u8; 100_000]).unwrap();
        let mut archive = Vec::new();
        let status = Command::new("tar")
            .arg("-C")
            .arg(dir.path().join("step"))
            .args(["-cf", "-", "builds"])
            .output()
            .unwrap();
        assert!(status.status.success());
        archive.extend_from_slice(&status.stdout[..50_000]);
        let failing = archive.as_slice().chain(FailingReader);

        let err = replace_from_tar(&target, failing, || true).unwrap_err();
        assert!(describe(&err).contains("connection dropped"), "{err}");
        assert!(target.join("group/project/file.txt").exists());
        assert!(!target.join("big").exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    /// Nobody waiting for the copy any more: the target stays as it was.
    #[test]
    fn an_abandoned_copy_leaves_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("builds");
        sample(&target);
        let step = dir.path().join("step/builds");
        fs::create_dir_all(&step).unwrap();
        fs::write(step.join("new"), "x").unwrap();
        let out = Command::new("tar")
            .arg("-C")
            .arg(dir.path().join("step"))
            .args(["-cf", "-", "builds"])
            .output()
            .unwrap();
        let err = replace_from_tar(&target, out.stdout.as_slice(), || false).unwrap_err();
        assert!(err.to_string().contains("abandoned"), "{err}");
        assert!(target.join("group/project/file.txt").exists());
        assert!(!target.join("new").exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    /// An archive that is not one directory is refused, target untouched.
    #[test]
    fn an_archive_of_a_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("builds");
        sample(&target);
        fs::write(dir.path().join("lonely"), "x").unwrap();
        let out = Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .args(["-cf", "-", "lonely"])
            .output()
            .unwrap();
        let err = replace_from_tar(&target, out.stdout.as_slice(), || true).unwrap_err();
        assert!(err.to_string().contains("expected one directory"), "{err}");
        assert!(target.join("group/project/file.txt").exists());
        assert_eq!(leftovers(dir.path()), Vec::<String>::new());
    }

    #[test]
    fn remove_tree_removes_read_only_directories() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("t");
        fs::create_dir_all(tree.join("ro/inner")).unwrap();
        fs::write(tree.join("ro/inner/f"), "x").unwrap();
        fs::set_permissions(tree.join("ro/inner"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(tree.join("ro"), fs::Permissions::from_mode(0o500)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        remove_tree(&tree).unwrap();
    }

    /// Staging directories left beside the builds dir.
    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                name.contains(".incoming-").then_some(name)
            })
            .collect()
    }

    struct FailingReader;

    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("connection dropped"))
        }
    }
}
