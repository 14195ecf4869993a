//! The first pass of extraction: every entry's name and metadata read and
//! checked before anything is written, so that an archive with one unsafe
//! name writes nothing at all.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use zip::ZipArchive;

use super::ArchiveError;
use super::zip_meta::{ModeKind, entry_mtime, mode_kind};
use super::zip_read::ExtractSummary;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry to extract, checked.
pub(super) struct Item {
    pub(super) index: usize,
    pub(super) name: String,
    /// Relative to the target directory, without `.` or empty components.
    pub(super) rel: PathBuf,
    pub(super) kind: Kind,
    pub(super) perm: u32,
    pub(super) mtime: Option<SystemTime>,
}

/// Reads and checks every entry's name and metadata; refuses the archive
/// if any name is unsafe. A name present twice keeps its last entry.
pub(super) fn catalog(
    zip: &mut ZipArchive<BufReader<File>>,
    archive: &Path,
    summary: &mut ExtractSummary,
) -> Result<Vec<Item>, ArchiveError> {
    let mut by_path: HashMap<PathBuf, usize> = HashMap::new();
    let mut items: Vec<Item> = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
            .map_err(|e| ArchiveError::zip(archive, e))?;
        let name = entry
            .name()
            .map_err(|e| ArchiveError::zip(archive, e))?
            .into_owned();
        let Some(rel) = checked_path(&name)? else {
            continue; // "./" names the target itself
        };
        let mode = entry.unix_mode().unwrap_or(0);
        let kind = match (entry.is_dir(), mode_kind(mode)) {
            (true, _) | (_, ModeKind::Dir) => Kind::Dir,
            (_, ModeKind::Symlink) => Kind::Symlink,
            (_, ModeKind::File | ModeKind::Unknown) => Kind::File,
            (_, ModeKind::Special) => {
                summary.warnings.push(format!("File ignored: {name:?}"));
                continue;
            }
        };
        let perm = match (mode & 0o777, kind) {
            (0, Kind::Dir) if entry.unix_mode().is_none() => 0o755,
            (0, _) if entry.unix_mode().is_none() => 0o644,
            (perm, _) => perm,
        };
        let mtime = entry_mtime(entry.extra_data_fields(), entry.last_modified());
        let item = Item {
            index,
            name,
            rel,
            kind,
            perm,
            mtime,
        };
        match by_path.get(&item.rel) {
            Some(&at) => items[at] = item,
            None => {
                by_path.insert(item.rel.clone(), items.len());
                items.push(item);
            }
        }
    }
    // A file or link cannot also be a directory holding other entries.
    let leaves: HashSet<&Path> = items
        .iter()
        .filter(|i| i.kind != Kind::Dir)
        .map(|i| i.rel.as_path())
        .collect();
    for item in &items {
        if let Some(leaf) = item.rel.ancestors().skip(1).find(|a| leaves.contains(a)) {
            let reason = format!("{} is also a file or link in this archive", leaf.display());
            return Err(ArchiveError::unsafe_entry(&item.name, reason));
        }
    }
    if items.iter().any(|i| i.rel.starts_with(".git")) {
        summary.warnings.push(
            "Part of .git directory is on the list of files to extract; this may introduce unexpected problems"
                .to_owned(),
        );
    }
    Ok(items)
}

/// The relative path an entry name designates, or an error when it is not
/// confined to the target directory. `None` for the target itself.
fn checked_path(name: &str) -> Result<Option<PathBuf>, ArchiveError> {
    if name.starts_with('/') {
        return Err(ArchiveError::unsafe_entry(name, "absolute path"));
    }
    if name.contains('\0') {
        return Err(ArchiveError::unsafe_entry(name, "NUL byte in name"));
    }
    let mut rel = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(ArchiveError::unsafe_entry(
                    name,
                    "path leaves the target directory",
                ));
            }
            part => rel.push(part),
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::archive::test_support::{Raw, craft, is_empty_dir};
    use crate::archive::{ArchiveError, extract_zip};

    #[test]
    fn names_escaping_the_target_refuse_the_whole_archive() {
        for bad in [
            "../evil.txt",
            "/tmp/absolute.txt",
            "a/../../evil.txt",
            "./x/../../evil",
        ] {
            let scratch = tempfile::tempdir().unwrap();
            let archive = craft(
                scratch.path(),
                &[Raw::File("fine.txt", b"ok"), Raw::File(bad, b"evil")],
            );
            let target = scratch.path().join("target");
            let err = extract_zip(&archive, &target).unwrap_err();
            assert!(
                matches!(err, ArchiveError::UnsafeEntry { ref name, .. } if name == bad),
                "{bad}: {err}"
            );
            assert!(is_empty_dir(&target), "{bad}: nothing may be written");
            assert!(!scratch.path().join("evil.txt").exists());
        }
    }

    #[test]
    fn a_link_in_the_same_archive_is_not_written_through() {
        let scratch = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let out = outside.path().to_str().unwrap();
        let archive = craft(
            scratch.path(),
            &[Raw::Link("lnk", out), Raw::File("lnk/x", b"evil")],
        );
        let target = scratch.path().join("target");
        let err = extract_zip(&archive, &target).unwrap_err();
        assert!(matches!(err, ArchiveError::UnsafeEntry { .. }), "{err}");
        assert!(is_empty_dir(outside.path()));
        assert!(is_empty_dir(&target));
    }

    #[test]
    fn the_last_of_names_for_one_path_wins_and_specials_are_skipped() {
        let scratch = tempfile::tempdir().unwrap();
        let fifo = 0o010_644 << 16;
        let archive = craft(
            scratch.path(),
            &[
                Raw::File("x", b"first"),
                Raw::Dir("d/"),
                Raw::File("./x", b"second"),
                Raw::Attr("pipe", fifo),
            ],
        );
        let target = scratch.path().join("target");
        let summary = extract_zip(&archive, &target).unwrap();
        assert_eq!(fs::read(target.join("x")).unwrap(), b"second");
        assert!(target.join("d").is_dir());
        assert!(!target.join("pipe").exists());
        assert_eq!(summary.warnings, ["File ignored: \"pipe\""]);
    }
}
