//! The job's trace as the runner keeps it before and while sending it:
//! every byte the job log wrote (already masked and limited), made valid
//! UTF-8, with the CRC-32 and size GitLab checks at the end
//! (runner-api.md §5.6).
//!
//! Every byte is kept until the job ends: GitLab may ask for all of it
//! again (a 412 on the final update). Kept in memory, a long log would
//! grow the runner by its whole size, once per running job (an
//! `output_limit` of hundreds of MiB is allowed), so past the first MiB
//! the bytes go to a temporary file, as gitlab-runner also keeps its trace
//! in one. The file has no name (it is unlinked as it is made): it
//! disappears with the buffer's last clone, even when the runner is killed.
//! When no file can be made, the trace stays in memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::job::log::LogTarget;

use super::jobs::TraceOutput;

/// U+FFFD, the replacement character, in UTF-8.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Trace bytes kept in memory before they move to the file: the size of a
/// patch, so a job's whole trace usually never touches the disk.
pub const DEFAULT_MEMORY_BYTES: usize = 1 << 20;

/// Makes a byte stream valid UTF-8 as it comes: each invalid sequence
/// becomes U+FFFD (as `String::from_utf8_lossy` does), and a character
/// split across two writes is kept whole.
#[derive(Debug, Default)]
pub(crate) struct Utf8Repair {
    /// The start of a character whose remaining bytes have not come yet
    /// (at most three bytes).
    pending: Vec<u8>,
}

impl Utf8Repair {
    /// Appends the valid form of `bytes` to `out`, holding back an
    /// unfinished character at the end.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let joined;
        let mut rest: &[u8] = if self.pending.is_empty() {
            bytes
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(bytes);
            joined = buf;
            &joined
        };
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    out.extend_from_slice(valid.as_bytes());
                    return;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.extend_from_slice(valid);
                    match e.error_len() {
                        Some(bad) => {
                            out.extend_from_slice(REPLACEMENT);
                            rest = &after[bad..];
                        }
                        // The input ends inside a character: wait for the
                        // rest of it.
                        None => {
                            self.pending = after.to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The stream is over: an unfinished character is invalid.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            self.pending.clear();
            out.extend_from_slice(REPLACEMENT);
        }
    }
}

/// The trace of one job, shared between the job log (which writes) and
/// the streamer (which reads and sends). Clones share the same trace.
#[derive(Clone)]
pub struct TraceBuffer {
    inner: Arc<Shared>,
}

struct Shared {
    state: Mutex<BufferState>,
    /// Told when the trace reaches `BufferState::wake_at` bytes.
    grown: Notify,
    /// Where the file is made; `None`: the system's temporary directory.
    spool_dir: Option<PathBuf>,
    /// Bytes kept in memory before they move to the file.
    memory_bytes: usize,
}

#[derive(Default)]
struct BufferState {
    /// The trace from byte `spooled` on; before it, the file.
    tail: Vec<u8>,
    file: Option<File>,
    /// Bytes in the file: the first `spooled` of the trace.
    spooled: u64,
    /// Making or writing the file failed once: the rest stays in memory
    /// rather than failing again on every write.
    spool_failed: bool,
    crc: crc32fast::Hasher,
    repair: Utf8Repair,
    closed: bool,
    scratch: Vec<u8>,
    /// Wake the streamer when the trace is this long.
    wake_at: u64,
}

impl BufferState {
    fn len(&self) -> u64 {
        self.spooled + self.tail.len() as u64
    }
}

impl Default for TraceBuffer {
    fn default() -> Self {
        TraceBuffer::new()
    }
}

impl TraceBuffer {
    /// A trace kept in memory up to 1 MiB, then in a file of the system's
    /// temporary directory.
    pub fn new() -> TraceBuffer {
        TraceBuffer::spooling(None, DEFAULT_MEMORY_BYTES)
    }

    /// A trace kept in memory up to `memory_bytes`, then in a file made in
    /// `dir` (`None`: the system's temporary directory).
    pub fn spooling(dir: Option<PathBuf>, memory_bytes: usize) -> TraceBuffer {
        TraceBuffer {
            inner: Arc::new(Shared {
                state: Mutex::new(BufferState {
                    wake_at: u64::MAX,
                    ..BufferState::default()
                }),
                grown: Notify::new(),
                spool_dir: dir,
                memory_bytes,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, BufferState> {
        // A writer that panicked leaves whole bytes behind; keep them.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends log bytes. After [`TraceBuffer::close`], writes are ignored:
    /// the checksum already went out.
    pub fn write(&self, bytes: &[u8]) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        let BufferState {
            tail,
            crc,
            repair,
            scratch,
            ..
        } = &mut *state;
        scratch.clear();
        repair.push(bytes, scratch);
        crc.update(scratch);
        tail.extend_from_slice(scratch);
        self.appended(state);
    }

    /// Ends the trace: an unfinished character becomes U+FFFD.
    pub fn close(&self) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        state.closed = true;
        let mut tail = Vec::new();
        state.repair.finish(&mut tail);
        state.crc.update(&tail);
        state.tail.extend_from_slice(&tail);
        self.appended(state);
    }

    /// After bytes were added: moves a long tail to the file, and wakes
    /// whoever waits for this length.
    fn appended(&self, mut state: MutexGuard<'_, BufferState>) {
        if state.tail.len() >= self.inner.memory_bytes && !state.spool_failed {
            self.spool(&mut state);
        }
        if state.len() >= state.wake_at {
            state.wake_at = u64::MAX;
            drop(state);
            self.inner.grown.notify_one();
        }
    }

    fn spool(&self, state: &mut BufferState) {
        if state.file.is_none() {
            let dir = self
                .inner
                .spool_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir);
            match tempfile::tempfile_in(&dir) {
                Ok(file) => state.file = Some(file),
                Err(_) => {
                    state.spool_failed = true;
                    return;
                }
            }
        }
        let Some(file) = &state.file else { return };
        match file.write_all_at(&state.tail, state.spooled) {
            Ok(()) => {
                state.spooled += state.tail.len() as u64;
                state.tail.clear();
            }
            // Bytes already in the file stay valid; what failed stays
            // here.
            Err(_) => state.spool_failed = true,
        }
    }

    /// Bytes in the trace.
    pub fn len(&self) -> u64 {
        self.state().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether part of the trace is in a file.
    pub fn is_spooled(&self) -> bool {
        self.state().spooled > 0
    }

    /// `crc32:%08x` of the trace's bytes (CRC-32/IEEE).
    pub fn checksum(&self) -> String {
        format!("crc32:{:08x}", self.state().crc.clone().finalize())
    }

    /// Checksum and size, taken together.
    pub fn output(&self) -> TraceOutput {
        let state = self.state();
        TraceOutput {
            checksum: format!("crc32:{:08x}", state.crc.clone().finalize()),
            bytesize: state.len(),
        }
    }

    /// At most `max` bytes from `offset` on (nothing past the end). Should
    /// the file fail to be read, the bytes before the failure.
    pub fn read(&self, offset: u64, max: usize) -> Vec<u8> {
        let state = self.state();
        let len = state.len();
        let start = offset.min(len);
        let end = start.saturating_add(max as u64).min(len);
        let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        if start < state.spooled {
            let from_file = end.min(state.spooled) - start;
            out.resize(usize::try_from(from_file).unwrap_or(0), 0);
            let read = match &state.file {
                Some(file) => read_at(file, &mut out, start),
                None => 0,
            };
            if read < out.len() {
                out.truncate(read);
                return out;
            }
        }
        let tail_start = usize::try_from(start.max(state.spooled) - state.spooled).unwrap_or(0);
        let tail_end = usize::try_from(end - state.spooled.min(end)).unwrap_or(0);
        if tail_start < tail_end {
            out.extend_from_slice(&state.tail[tail_start..tail_end]);
        }
        out
    }

    /// The whole trace.
    pub fn contents(&self) -> Vec<u8> {
        self.read(0, usize::MAX)
    }

    /// Makes [`TraceBuffer::grown`] fire once the trace holds `len` bytes
    /// (at once if it already does).
    pub(crate) fn wake_at_len(&self, len: u64) {
        let mut state = self.state();
        if state.len() >= len {
            state.wake_at = u64::MAX;
            drop(state);
            self.inner.grown.notify_one();
        } else {
            state.wake_at = len;
        }
    }

    /// Completes after the length set with [`TraceBuffer::wake_at_len`]
    /// was reached (or, rarely, earlier: callers check the length again).
    pub(crate) fn grown(&self) -> Notified<'_> {
        self.inner.grown.notified()
    }
}

/// Fills `buf` from `offset` of `file`; how many bytes were read.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
}

impl LogTarget for TraceBuffer {
    fn write(&mut self, bytes: &[u8]) {
        TraceBuffer::write(self, bytes);
    }

    fn finish(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn repaired(chunks: &[&[u8]]) -> Vec<u8> {
        let mut repair = Utf8Repair::default();
        let mut out = Vec::new();
        for chunk in chunks {
            repair.push(chunk, &mut out);
        }
        repair.finish(&mut out);
        out
    }

    #[test]
    fn a_character_split_across_writes_is_kept_whole() {
        let euro = "€".as_bytes();
        assert_eq!(
            repaired(&[b"a", &euro[..1], &euro[1..2], &euro[2..], b"b"]),
            "a€b".as_bytes()
        );
        let emoji = "😀".as_bytes();
        assert_eq!(repaired(&[&emoji[..3], &emoji[3..]]), "😀".as_bytes());
    }

    #[test]
    fn invalid_bytes_become_replacement_characters_like_lossy_decoding() {
        let cases: [&[u8]; 5] = [
            b"ok\xffok",
            b"\xe2\x82A",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"tail\xe2\x82",
        ];
        for case in cases {
            assert_eq!(
                repaired(&[case]),
                String::from_utf8_lossy(case).as_bytes(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn an_unfinished_character_followed_by_junk_is_replaced_once() {
        assert_eq!(repaired(&[b"\xe2\x82", b"A"]), "\u{FFFD}A".as_bytes());
        assert_eq!(repaired(&[b"\xe2", b"\xff"]), "\u{FFFD}\u{FFFD}".as_bytes());
    }

    #[test]
    fn every_split_of_a_mixed_stream_gives_the_lossy_text() {
        let input: &[u8] = b"a\xc3\xa9b\xe2\x82\xac\xffc\xf0\x9f\x98\x80\xe2\x82d";
        let expected = String::from_utf8_lossy(input).into_owned().into_bytes();
        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(
                    repaired(&[&input[..i], &input[i..j], &input[j..]]),
                    expected,
                    "{i} {j}"
                );
            }
        }
    }

    #[test]
    fn the_checksum_and_size_cover_exactly_the_buffered_bytes() {
        let buffer = TraceBuffer::new();
        buffer.write(b"hello \xe2\x82");
        // The unfinished character is not counted yet.
        assert_eq!(buffer.len(), 6);
        buffer.write(b"\xac world\xff");
        buffer.close();
        let bytes = buffer.contents();
        assert_eq!(bytes, "hello € world\u{FFFD}".as_bytes());
        let output = buffer.output();
        assert_eq!(output.bytesize, bytes.len() as u64);
        assert_eq!(
            output.checksum,
            format!("crc32:{:08x}", crc32fast::hash(&bytes))
        );
        buffer.write(b"after close");
        assert_eq!(buffer.contents(), bytes);
    }

    #[test]
    fn reads_are_clamped_to_the_trace() {
        let buffer = TraceBuffer::new();
        buffer.write(b"0123456789");
        assert_eq!(buffer.read(2, 3), b"234");
        assert_eq!(buffer.read(8, 100), b"89");
        assert!(buffer.read(50, 10).is_empty());
        assert!(buffer.read(u64::MAX, usize::MAX).is_empty());
    }

    #[test]
    fn an_empty_trace_has_the_crc_of_nothing() {
        assert_eq!(TraceBuffer::new().checksum(), "crc32:00000000");
    }

    /// Open descriptors of this process on nameless files made in `dir`.
    fn spool_files_in(dir: &std::path::Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    #[test]
    fn a_spooled_trace_keeps_every_byte_with_its_checksum_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = TraceBuffer::spooling(Some(dir.path().to_owned()), 64);
        let mut expected = Vec::new();
        for i in 0..200 {
            let line = format!("line {i} price € {}\n", "x".repeat(i % 13));
            let bytes = line.as_bytes();
            // Cut inside the euro sign now and then: the repair must hold
            // it across the move to the file.
            let cut = if i % 3 == 0 {
                line.find('€').unwrap_or(0) + 1
            } else {
                bytes.len()
            };
            buffer.write(&bytes[..cut]);
            buffer.write(&bytes[cut..]);
            expected.extend_from_slice(bytes);
        }
        buffer.write(b"bad \xff end");
        expected.extend_from_slice("bad \u{FFFD} end".as_bytes());
        buffer.close();

        assert!(buffer.is_spooled());
        assert_eq!(buffer.contents(), expected);
        assert_eq!(buffer.len(), expected.len() as u64);
        let output = buffer.output();
        assert_eq!(output.bytesize, expected.len() as u64);
        assert_eq!(
            output.checksum,
            format!("crc32:{:08x}", crc32fast::hash(&expected))
        );
        // Every window, across the file and the part still in memory.
        for offset in (0..expected.len() + 3).step_by(7) {
            for max in [1, 50, 64, 65, 1000] {
                let end = (offset + max).min(expected.len());
                let want = expected.get(offset..end).unwrap_or_default();
                assert_eq!(buffer.read(offset as u64, max), want, "{offset}+{max}");
            }
        }
    }

    #[test]
    fn the_spool_file_has_no_name_and_goes_with_the_last_clone() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = TraceBuffer::spooling(Some(dir.path().to_owned()), 16);
        buffer.write(b"short");
        assert_eq!(spool_files_in(dir.path()), 0, "a file for 5 bytes");
        let reader = buffer.clone();
        buffer.write(&[b'a'; 100]);
        assert!(reader.is_spooled());
        assert_eq!(spool_files_in(dir.path()), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        drop(buffer);
        assert_eq!(reader.len(), 105);
        assert_eq!(spool_files_in(dir.path()), 1);
        drop(reader);
        assert_eq!(spool_files_in(dir.path()), 0);
    }

    #[test]
    fn without_a_usable_directory_the_trace_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let buffer = TraceBuffer::spooling(Some(missing), 8);
        let text = b"0123456789abcdefghijklmnopqrstuvwxyz".repeat(10);
        for chunk in text.chunks(7) {
            buffer.write(chunk);
        }
        assert!(!buffer.is_spooled());
        assert_eq!(buffer.contents(), text);
        assert_eq!(
            buffer.checksum(),
            format!("crc32:{:08x}", crc32fast::hash(&text))
        );
    }

    #[tokio::test]
    async fn growth_wakes_only_at_the_length_asked_for() {
        let buffer = TraceBuffer::new();
        buffer.write(b"12345");
        buffer.wake_at_len(10);
        let wait = Duration::from_millis(50);
        buffer.write(b"678");
        assert!(
            tokio::time::timeout(wait, buffer.grown()).await.is_err(),
            "woken at 8 of 10 bytes"
        );
        buffer.write(b"90");
        assert!(tokio::time::timeout(wait, buffer.grown()).await.is_ok());
        // Already long enough: at once.
        buffer.wake_at_len(3);
        assert!(tokio::time::timeout(wait, buffer.grown()).await.is_ok());
    }
}
