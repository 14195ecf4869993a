//! The job's trace as the runner keeps it before and while sending it:
//! every byte the job log wrote (already masked and limited), made valid
//! UTF-8, with the CRC-32 and size GitLab checks at the end
//! (runner-api.md §5.6).
//!
//! The whole trace stays in memory: the output limit bounds it, and GitLab
//! may ask for all of it again (a 412 on the final update).

use std::sync::{Arc, Mutex, MutexGuard};

use crate::job::log::LogTarget;

use super::jobs::TraceOutput;

/// U+FFFD, the replacement character, in UTF-8.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

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
#[derive(Clone, Default)]
pub struct TraceBuffer {
    inner: Arc<Mutex<BufferState>>,
}

#[derive(Default)]
struct BufferState {
    bytes: Vec<u8>,
    crc: crc32fast::Hasher,
    repair: Utf8Repair,
    closed: bool,
    scratch: Vec<u8>,
}

impl TraceBuffer {
    pub fn new() -> TraceBuffer {
        TraceBuffer::default()
    }

    fn state(&self) -> MutexGuard<'_, BufferState> {
        // A writer that panicked leaves whole bytes behind; keep them.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends log bytes. After [`TraceBuffer::close`], writes are ignored:
    /// the checksum already went out.
    pub fn write(&self, bytes: &[u8]) {
        let mut state = self.state();
        if state.closed {
            return;
        }
        let BufferState {
            bytes: buffered,
            crc,
            repair,
            scratch,
            ..
        } = &mut *state;
        scratch.clear();
        repair.push(bytes, scratch);
        crc.update(scratch);
        buffered.extend_from_slice(scratch);
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
        state.bytes.extend_from_slice(&tail);
    }

    /// Bytes in the trace.
    pub fn len(&self) -> u64 {
        self.state().bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            bytesize: state.bytes.len() as u64,
        }
    }

    /// At most `max` bytes from `offset` on (nothing past the end).
    pub fn read(&self, offset: u64, max: usize) -> Vec<u8> {
        let state = self.state();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(state.bytes.len());
        let end = start.saturating_add(max).min(state.bytes.len());
        state.bytes[start..end].to_vec()
    }

    /// The whole trace.
    pub fn contents(&self) -> Vec<u8> {
        self.state().bytes.clone()
    }
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
}
