//! Compressing small files on worker threads while one thread writes the
//! archive in entry order.
//!
//! Deflate dominates the time to archive a job's files, and entries must
//! still appear in order, so workers compress whole small files into
//! memory ([`PreparedZipFile`]) ahead of the writer, which appends them as
//! their turn comes. Memory is bounded: a worker waits while the files
//! compressed but not yet written exceed [`IN_FLIGHT_BUDGET`], unless its
//! file is the very one the writer waits for, which therefore always
//! proceeds.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};

use zip::PreparedZipFile;
use zip::write::ZipFileBuilder;

use super::ArchiveError;
use super::compression::CompressionLevel;
use super::zip_write::{FilePlan, entry_options, read_sample};

/// Files up to this size are compressed in memory by the workers; larger
/// ones are streamed by the writer.
pub(super) const PARALLEL_MAX: u64 = 8 << 20;

/// Bytes of files that may be compressed ahead of the writer.
const IN_FLIGHT_BUDGET: u64 = 64 << 20;

/// What the workers and the writer share.
struct Window {
    /// Index of the next job the writer needs.
    next_needed: usize,
    /// Bytes of jobs being compressed or waiting to be written.
    in_flight: u64,
    /// Set when the writer is done or failed: workers exit.
    stop: bool,
}

struct Shared {
    window: Mutex<Window>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

type JobResult = (usize, Result<PreparedZipFile, ArchiveError>);

/// The writer's side of the pool: compressed files, in job order.
pub(super) struct Pool<'a> {
    jobs: &'a [&'a FilePlan],
    shared: &'a Shared,
    results: mpsc::Receiver<JobResult>,
    /// Results that arrived before their turn.
    early: HashMap<usize, PreparedZipFile>,
    next: usize,
}

impl Pool<'_> {
    /// Whether `file` is the job whose turn it is.
    pub(super) fn is_next(&self, file: &FilePlan) -> bool {
        self.jobs
            .get(self.next)
            .is_some_and(|j| std::ptr::eq(*j, file))
    }

    /// Waits for the next job's compressed file and gives it up. The first
    /// failure of any job is returned as soon as it is known.
    pub(super) fn take_next(&mut self) -> Result<PreparedZipFile, ArchiveError> {
        let prepared = loop {
            if let Some(p) = self.early.remove(&self.next) {
                break p;
            }
            let (i, result) = self.results.recv().map_err(|_| {
                let path = self
                    .jobs
                    .get(self.next)
                    .map(|j| j.path.clone())
                    .unwrap_or_default();
                ArchiveError::io("compress", path, io::Error::other("compression stopped"))
            })?;
            self.early.insert(i, result?);
        };
        let size = self.jobs[self.next].size;
        self.next += 1;
        let mut window = self.shared.lock();
        window.next_needed = self.next;
        window.in_flight = window.in_flight.saturating_sub(size);
        self.shared.changed.notify_all();
        Ok(prepared)
    }
}

/// Stops the workers when the writer leaves, whether it succeeded or not.
struct StopOnDrop<'a>(&'a Shared);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.lock().stop = true;
        self.0.changed.notify_all();
    }
}

/// Runs `write` with a pool of `threads` workers compressing `jobs` at
/// `level`; the workers are stopped and joined before this returns.
pub(super) fn with_pool<T>(
    jobs: &[&FilePlan],
    threads: usize,
    level: CompressionLevel,
    write: impl FnOnce(&mut Pool<'_>) -> T,
) -> T {
    let shared = Shared {
        window: Mutex::new(Window {
            next_needed: 0,
            in_flight: 0,
            stop: false,
        }),
        changed: Condvar::new(),
    };
    let next_job = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<JobResult>();
    std::thread::scope(|scope| {
        for _ in 0..threads.min(jobs.len()) {
            let tx = tx.clone();
            let (shared, next_job) = (&shared, &next_job);
            scope.spawn(move || work(jobs, next_job, shared, &tx, level));
        }
        drop(tx);
        let _stop = StopOnDrop(&shared);
        let mut pool = Pool {
            jobs,
            shared: &shared,
            results: rx,
            early: HashMap::new(),
            next: 0,
        };
        write(&mut pool)
    })
}

/// A worker: takes the next job, waits until it fits in the budget (or is
/// the one the writer needs), compresses it, hands it over.
fn work(
    jobs: &[&FilePlan],
    next_job: &AtomicUsize,
    shared: &Shared,
    tx: &mpsc::Sender<JobResult>,
    level: CompressionLevel,
) {
    loop {
        let i = next_job.fetch_add(1, Ordering::Relaxed);
        let Some(job) = jobs.get(i) else { return };
        {
            let mut window = shared.lock();
            while !window.stop
                && i != window.next_needed
                && window.in_flight + job.size > IN_FLIGHT_BUDGET
            {
                window = shared
                    .changed
                    .wait(window)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if window.stop {
                return;
            }
            window.in_flight += job.size;
        }
        if tx.send((i, compress(job, level))).is_err() {
            return;
        }
    }
}

/// Compresses a whole small file into memory.
fn compress(job: &FilePlan, level: CompressionLevel) -> Result<PreparedZipFile, ArchiveError> {
    let mut file = File::open(&job.path).map_err(|e| ArchiveError::io("read", &job.path, e))?;
    let sample = read_sample(&mut file, &job.path)?;
    let (method, deflate) = level.method_for(&sample);
    let options = entry_options(job.mode, job.mtime)
        .compression_method(method)
        .compression_level(deflate);
    let mut builder =
        ZipFileBuilder::new(&job.name, options).map_err(|e| ArchiveError::zip(&job.path, e))?;
    builder
        .write_all(&sample)
        .and_then(|()| io::copy(&mut file, &mut builder).map(drop))
        .map_err(|e| ArchiveError::io("read", &job.path, e))?;
    builder
        .finish()
        .map_err(|e| ArchiveError::zip(&job.path, e))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Read;

    use zip::ZipArchive;

    use crate::archive::test_support::{random_bytes, write_file};
    use crate::archive::{CompressionLevel, EntryKind, ZipOptions, select_paths, write_zip};

    use super::PARALLEL_MAX;

    #[test]
    fn many_files_in_parallel_keep_entry_order_and_content() {
        let project = tempfile::tempdir().unwrap();
        let root = project.path();
        for i in 0..60 {
            let body = if i % 3 == 0 {
                random_bytes(3000 + i, i as u64)
            } else {
                format!("file {i}\n").repeat(i + 1).into_bytes()
            };
            write_file(root, &format!("d{}/f{i:02}", i % 4), &body, 0o644);
        }
        // One file above the limit goes through the writer's streaming path
        // between pooled ones.
        write_file(
            root,
            "d0/large",
            &random_bytes(PARALLEL_MAX as usize + 1, 7),
            0o644,
        );
        let selected = select_paths(root, &["d*".into()], &[], false)
            .unwrap()
            .entries;
        let dest = root.join("out.zip");
        let options = ZipOptions {
            level: CompressionLevel::Fast,
            threads: 3,
        };
        write_zip(root, &selected, &dest, &options).unwrap();
        let mut zip = ZipArchive::new(fs::File::open(&dest).unwrap()).unwrap();
        let names: Vec<String> = zip.file_names().map(|n| n.unwrap().into_owned()).collect();
        let want: Vec<String> = selected
            .iter()
            .map(|e| match e.kind {
                EntryKind::Dir => format!("{}/", e.path),
                _ => e.path.clone(),
            })
            .collect();
        assert_eq!(names, want);
        for e in selected.iter().filter(|e| e.kind == EntryKind::File) {
            let mut content = Vec::new();
            zip.by_name(&e.path)
                .unwrap()
                .read_to_end(&mut content)
                .unwrap();
            assert_eq!(content, fs::read(root.join(&e.path)).unwrap(), "{}", e.path);
        }
    }
}
