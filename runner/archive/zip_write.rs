//! Writing selected entries to a zip archive, as gitlab-runner's archiver
//! does: unix modes kept, directories as entries, symbolic links stored as
//! links (their target as content), modification times kept.
//!
//! The archive is written to a temporary file next to the destination and
//! renamed over it only once complete, so a failure (an unreadable file, a
//! full disk) never leaves a half-written archive under the final name,
//! and the temporary file is removed.
//!
//! Small files are compressed ahead by worker threads (`zip_pool.rs`);
//! directories, links and large files are written here, in entry order,
//! large files compressed while they stream, never read whole into memory.

use std::fs::{self, DirBuilder, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use zip::ZipWriter;
use zip::write::FullFileOptions;

use super::compression::{CompressionLevel, SAMPLE_LEN};
use super::temp_file::TempFile;
use super::zip_meta::{EXTENDED_TIMESTAMP_ID, dos_time, extended_timestamp};
use super::zip_pool::{PARALLEL_MAX, Pool, with_pool};
use super::{ArchiveError, Entry};

/// Above this size a file is marked for Zip64 before it is written: its
/// compressed size is not known in advance and could pass 4 GiB.
const ZIP64_MARGIN: u64 = 0xF000_0000;

/// How to write an archive.
#[derive(Clone, Debug, Default)]
pub struct ZipOptions {
    pub level: CompressionLevel,
    /// Compression threads; 0 uses the available parallelism.
    pub threads: usize,
}

/// What was written.
#[derive(Debug, Default)]
pub struct ZipSummary {
    /// Entries written (files, directories and links).
    pub entries: usize,
    /// Uncompressed bytes of the files written.
    pub bytes: u64,
    /// Entries skipped, in gitlab-runner's words (`File ignored: ...`).
    pub warnings: Vec<String>,
}

/// Writes `entries` (paths relative to `project_dir`) to the zip archive
/// `dest`, replacing it atomically. Entries that vanished since they were
/// selected, and FIFOs, sockets and devices, are skipped with a warning;
/// any other failure aborts and leaves `dest` untouched.
pub fn write_zip(
    project_dir: &Path,
    entries: &[Entry],
    dest: &Path,
    options: &ZipOptions,
) -> Result<ZipSummary, ArchiveError> {
    let mut summary = ZipSummary::default();
    let plans = plan(project_dir, entries, &mut summary)?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        // gitlab-runner creates the archive's directory private to the user.
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| ArchiveError::io("create directory", dir, e))?;
    }
    let temp = TempFile::create_beside(dest)?;
    let file = temp
        .file()
        .try_clone()
        .map_err(|e| ArchiveError::io("write", temp.path(), e))?;
    let mut writer = Writer {
        zip: ZipWriter::new(BufWriter::with_capacity(1 << 20, file)),
        level: options.level,
        temp_path: temp.path(),
    };

    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let jobs: Vec<&FilePlan> = plans
        .iter()
        .filter_map(|p| match p {
            Plan::File(f) if f.size <= PARALLEL_MAX => Some(f),
            _ => None,
        })
        .collect();
    if threads > 1 && jobs.len() > 1 {
        with_pool(&jobs, threads, options.level, |pool| {
            writer.write(&plans, Some(pool))
        })?;
    } else {
        writer.write(&plans, None)?;
    }

    let buffered = writer
        .zip
        .finish()
        .map_err(|e| ArchiveError::zip(temp.path(), e))?;
    buffered
        .into_inner()
        .map_err(|e| ArchiveError::io("write", temp.path(), e.into_error()))?;
    temp.persist(dest)?;

    summary.entries = plans.len();
    summary.bytes = plans
        .iter()
        .map(|p| match p {
            Plan::File(f) => f.size,
            _ => 0,
        })
        .sum();
    Ok(summary)
}

/// Whether the archive `dest` is newer than every entry, so that a cache
/// need not be written again (gitlab-runner: "Archive is up to date!").
pub fn archive_is_current(project_dir: &Path, entries: &[Entry], dest: &Path) -> bool {
    let Ok(archived) = fs::metadata(dest).and_then(|m| m.modified()) else {
        return false;
    };
    entries.iter().all(|e| {
        fs::symlink_metadata(project_dir.join(&e.path))
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified <= archived)
    })
}

/// One entry, examined again just before writing.
enum Plan {
    Dir {
        name: String,
        mode: u32,
        mtime: SystemTime,
    },
    Symlink {
        name: String,
        target: String,
        mtime: SystemTime,
    },
    File(FilePlan),
}

/// A regular file to write.
pub(super) struct FilePlan {
    /// The entry name: the project-relative path.
    pub(super) name: String,
    pub(super) path: PathBuf,
    pub(super) size: u64,
    pub(super) mode: u32,
    pub(super) mtime: SystemTime,
}

fn plan(
    root: &Path,
    entries: &[Entry],
    summary: &mut ZipSummary,
) -> Result<Vec<Plan>, ArchiveError> {
    let mut plans = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.path.starts_with('/') || entry.path.split('/').any(|c| c == "..") {
            return Err(ArchiveError::unsafe_entry(
                &entry.path,
                "path leaves the project directory",
            ));
        }
        let path = root.join(&entry.path);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                summary
                    .warnings
                    .push(format!("File ignored: {}: {e}", entry.path));
                continue;
            }
            Err(e) => return Err(ArchiveError::io("examine", path, e)),
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let name = entry.path.clone();
        let file_type = meta.file_type();
        plans.push(if file_type.is_dir() {
            Plan::Dir {
                name,
                mode: meta.mode(),
                mtime,
            }
        } else if file_type.is_symlink() {
            let target =
                fs::read_link(&path).map_err(|e| ArchiveError::io("read link", &path, e))?;
            let Some(target) = target.to_str() else {
                summary.warnings.push(format!(
                    "File ignored: {}: link target is not valid UTF-8",
                    entry.path
                ));
                continue;
            };
            Plan::Symlink {
                name,
                target: target.to_owned(),
                mtime,
            }
        } else if file_type.is_file() {
            Plan::File(FilePlan {
                name,
                path,
                size: meta.len(),
                mode: meta.mode(),
                mtime,
            })
        } else {
            summary
                .warnings
                .push(format!("File ignored: {}", entry.path));
            continue;
        });
    }
    Ok(plans)
}

/// Zip entry options for an entry with `mode` and `mtime`.
pub(super) fn entry_options(mode: u32, mtime: SystemTime) -> FullFileOptions<'static, 'static> {
    let mut options = FullFileOptions::default()
        .unix_permissions(mode)
        .last_modified_time(dos_time(mtime));
    if let Some(field) = extended_timestamp(mtime) {
        // The field is well-formed and far below the size limit, so adding
        // it cannot fail; the DOS date remains if it somehow did.
        let _ = options.add_extra_field(EXTENDED_TIMESTAMP_ID, field, false);
    }
    options
}

/// Reads the first bytes of `file`, which decide how it is compressed.
pub(super) fn read_sample(file: &mut File, path: &Path) -> Result<Vec<u8>, ArchiveError> {
    let mut sample = Vec::with_capacity(SAMPLE_LEN);
    Read::take(&mut *file, SAMPLE_LEN as u64)
        .read_to_end(&mut sample)
        .map_err(|e| ArchiveError::io("read", path, e))?;
    Ok(sample)
}

/// Writes entries in order into the archive being built.
struct Writer<'a> {
    zip: ZipWriter<BufWriter<File>>,
    level: CompressionLevel,
    temp_path: &'a Path,
}

impl Writer<'_> {
    /// Writes every plan in order; files the pool compressed are taken
    /// from it, everything else is written here.
    fn write(
        &mut self,
        plans: &[Plan],
        mut pool: Option<&mut Pool<'_>>,
    ) -> Result<(), ArchiveError> {
        for plan in plans {
            let result = match plan {
                Plan::File(f) => match pool.as_deref_mut() {
                    Some(pool) if pool.is_next(f) => {
                        let prepared = pool.take_next()?;
                        self.zip.add_prepared_file(prepared)
                    }
                    _ => {
                        self.stream_file(f)?;
                        Ok(())
                    }
                },
                Plan::Dir { name, mode, mtime } => self
                    .zip
                    .add_directory(name.as_str(), entry_options(*mode, *mtime)),
                Plan::Symlink {
                    name,
                    target,
                    mtime,
                } => self
                    .zip
                    .add_symlink(name, target, entry_options(0o777, *mtime)),
            };
            result.map_err(|e| ArchiveError::zip(self.temp_path, e))?;
        }
        Ok(())
    }

    /// Compresses `f` straight into the archive, a buffer at a time.
    fn stream_file(&mut self, f: &FilePlan) -> Result<(), ArchiveError> {
        let mut file = File::open(&f.path).map_err(|e| ArchiveError::io("read", &f.path, e))?;
        let sample = read_sample(&mut file, &f.path)?;
        let (method, deflate) = self.level.method_for(&sample);
        let options = entry_options(f.mode, f.mtime)
            .compression_method(method)
            .compression_level(deflate)
            .large_file(f.size >= ZIP64_MARGIN);
        self.zip
            .start_file(f.name.as_str(), options)
            .map_err(|e| ArchiveError::zip(self.temp_path, e))?;
        let temp_path = self.temp_path;
        let write_err = |e| ArchiveError::io("write", temp_path, e);
        self.zip.write_all(&sample).map_err(write_err)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ArchiveError::io("read", &f.path, e)),
            };
            self.zip.write_all(&buf[..n]).map_err(write_err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::test_support::{random_bytes, write_file};
    use crate::archive::{EntryKind, select_paths};
    use std::os::unix::fs::symlink;
    use std::process::Command;
    use std::time::Duration;
    use zip::{CompressionMethod, ZipArchive};

    fn entries(root: &Path, paths: &[&str]) -> Vec<Entry> {
        let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
        select_paths(root, &paths, &[], false)
            .expect("selection")
            .entries
    }

    fn open(path: &Path) -> ZipArchive<File> {
        ZipArchive::new(File::open(path).expect("archive exists")).expect("valid zip")
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
    fn modes_directories_links_and_times_are_recorded() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        write_file(root, "bin/tool", b"#!/bin/sh\necho hi\n", 0o755);
        write_file(root, "bin/readme.txt", b"read me", 0o640);
        fs::create_dir(root.join("bin/empty")).unwrap();
        symlink("tool", root.join("bin/latest")).unwrap();
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        File::options()
            .write(true)
            .open(root.join("bin/tool"))
            .unwrap()
            .set_modified(when)
            .unwrap();

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("artifacts.zip");
        let summary = write_zip(
            root,
            &entries(root, &["bin"]),
            &dest,
            &ZipOptions::default(),
        )
        .unwrap();
        assert_eq!((summary.entries, summary.bytes), (5, 25));

        let mut zip = open(&dest);
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        assert_eq!(
            names,
            [
                "bin/",
                "bin/empty/",
                "bin/latest",
                "bin/readme.txt",
                "bin/tool"
            ]
        );
        let tool = zip.by_name("bin/tool").unwrap();
        assert_eq!(tool.unix_mode().unwrap() & 0o777, 0o755);
        let mtime = crate::archive::zip_meta::entry_mtime(tool.extra_data_fields(), None);
        assert_eq!(mtime, Some(when));
        drop(tool);
        assert_eq!(
            zip.by_name("bin/readme.txt").unwrap().unix_mode().unwrap() & 0o777,
            0o640
        );
        assert!(zip.by_name("bin/empty/").unwrap().is_dir());
        let mut link = zip.by_name("bin/latest").unwrap();
        assert!(link.is_symlink());
        let mut target = String::new();
        link.read_to_string(&mut target).unwrap();
        assert_eq!(target, "tool");
        assert!(leftovers(out.path(), "artifacts.zip").is_empty());
    }

    #[test]
    fn compression_levels_choose_deflate_or_store() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        write_file(
            root,
            "text.txt",
            "line of text\n".repeat(2000).as_bytes(),
            0o644,
        );
        write_file(root, "noise.bin", &random_bytes(64 * 1024, 1), 0o644);
        let selected = entries(root, &["*"]);
        let method = |level: CompressionLevel, name: &str| {
            let dest = root.join(format!("{level}.zip"));
            let options = ZipOptions { level, threads: 2 };
            write_zip(root, &selected, &dest, &options).unwrap();
            open(&dest).by_name(name).unwrap().compression()
        };
        assert_eq!(
            method(CompressionLevel::Default, "text.txt"),
            CompressionMethod::Deflated
        );
        assert_eq!(
            method(CompressionLevel::Slowest, "text.txt"),
            CompressionMethod::Deflated
        );
        assert_eq!(
            method(CompressionLevel::Default, "noise.bin"),
            CompressionMethod::Stored
        );
        assert_eq!(
            method(CompressionLevel::Fastest, "text.txt"),
            CompressionMethod::Stored
        );
    }

    #[test]
    fn vanished_and_special_files_are_skipped_with_a_warning() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        write_file(root, "kept", b"k", 0o644);
        let fifo = root.join("pipe");
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let mut selected = entries(root, &["*"]);
        selected.push(Entry {
            path: "gone".into(),
            kind: EntryKind::File,
        });
        let dest = root.join("a.zip");
        let summary = write_zip(root, &selected, &dest, &ZipOptions::default()).unwrap();
        assert_eq!(summary.entries, 1);
        assert_eq!(summary.warnings.len(), 2, "{:?}", summary.warnings);
        assert_eq!(summary.warnings[0], "File ignored: pipe");
        assert!(summary.warnings[1].starts_with("File ignored: gone: "));
    }

    #[test]
    fn entries_outside_the_project_are_refused() {
        let project = tempfile::tempdir().unwrap();
        let bad = [Entry {
            path: "../etc/passwd".into(),
            kind: EntryKind::File,
        }];
        let dest = project.path().join("a.zip");
        let err = write_zip(project.path(), &bad, &dest, &ZipOptions::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::UnsafeEntry { .. }), "{err}");
        assert!(!dest.exists());
    }

    #[test]
    fn an_archive_newer_than_every_entry_is_current() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        write_file(root, "a.txt", b"a", 0o644);
        let selected = entries(root, &["a.txt"]);
        let dest = root.join("cache.zip");
        assert!(!archive_is_current(root, &selected, &dest));
        write_zip(root, &selected, &dest, &ZipOptions::default()).unwrap();
        assert!(archive_is_current(root, &selected, &dest));
        let later = SystemTime::now() + Duration::from_secs(60);
        File::options()
            .write(true)
            .open(root.join("a.txt"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!archive_is_current(root, &selected, &dest));
    }
}
