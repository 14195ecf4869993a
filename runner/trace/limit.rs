//! The per-runner log size limit (`output_limit`, configured in KiB).
//!
//! Once the limit is reached the log is cut at a UTF-8 boundary, a notice is
//! appended and all further output is dropped; the job itself keeps running.

use super::ansi;

/// Default `output_limit` of a runner: 4096 KiB.
pub const DEFAULT_OUTPUT_LIMIT_KIB: usize = 4096;

/// Caps the number of job output bytes that reach the log.
#[derive(Debug, Clone)]
pub struct OutputLimit {
    /// The limit in bytes.
    limit: usize,
    /// Output bytes passed through so far (the notice not counted).
    written: usize,
    /// Set once the notice has been written; later output is dropped.
    exceeded: bool,
}

impl OutputLimit {
    /// A limit of `limit_bytes` bytes.
    pub fn new(limit_bytes: usize) -> Self {
        OutputLimit {
            limit: limit_bytes,
            written: 0,
            exceeded: false,
        }
    }

    /// A limit given in KiB as in `config.toml`.
    pub fn from_kib(kib: usize) -> Self {
        Self::new(kib.saturating_mul(1024))
    }

    /// Whether output has been cut.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// Appends to `out` the part of `chunk` that fits. The first time the
    /// limit is crossed, the chunk is cut so no UTF-8 character is split
    /// and the notice follows; after that everything is dropped.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.exceeded {
            return;
        }
        let room = self.limit - self.written;
        if chunk.len() <= room {
            out.extend_from_slice(chunk);
            self.written += chunk.len();
            return;
        }
        let cut = utf8_floor(chunk, room);
        out.extend_from_slice(&chunk[..cut]);
        self.written += cut;
        out.extend_from_slice(notice(self.limit).as_bytes());
        self.exceeded = true;
    }
}

/// The notice written where the log is cut.
pub fn notice(limit_bytes: usize) -> String {
    format!(
        "\n{}Job's log exceeded limit of {limit_bytes} bytes.\n\
         Job execution will continue but no more output will be collected.{}\n",
        ansi::BOLD_YELLOW,
        ansi::RESET
    )
}

/// The largest index `<= at` of `buf` that does not fall inside a UTF-8
/// multi-byte sequence. Only looks back up to three bytes (the longest
/// continuation run), so arbitrary binary output is cut near `at` anyway.
fn utf8_floor(buf: &[u8], at: usize) -> usize {
    let is_cont = |b: u8| b & 0xC0 == 0x80;
    let mut i = at;
    while i > 0 && at - i < 3 && is_cont(buf[i]) {
        i -= 1;
    }
    // `buf[i]` should be the lead byte of the character `at` falls in.
    if i < at && buf[i] >= 0xC0 { i } else { at }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: usize, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut l = OutputLimit::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            l.push(c, &mut out);
        }
        (out, l.exceeded())
    }

    #[test]
    fn under_and_at_limit_pass_through() {
        assert_eq!(
            run(10, &[b"12345", b"67890"]),
            (b"1234567890".to_vec(), false)
        );
        assert_eq!(run(10, &[b"123"]), (b"123".to_vec(), false));
    }

    #[test]
    fn over_limit_cuts_and_writes_notice_once() {
        let (out, exceeded) = run(8, &[b"12345", b"6789", b"more", b"even more"]);
        assert!(exceeded);
        let want = "12345678\n\x1b[33;1mJob's log exceeded limit of 8 bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n";
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn cut_does_not_split_a_utf8_character() {
        // "é" is two bytes, "€" three, "😀" four; the limit falls inside each.
        for (text, limit, kept) in [
            ("abé", 3, "ab"),
            ("a€", 2, "a"),
            ("a€", 3, "a"),
            ("a😀", 4, "a"),
            ("a😀b", 5, "a😀"),
        ] {
            let (out, exceeded) = run(limit, &[text.as_bytes()]);
            assert!(exceeded);
            assert_eq!(&out[..kept.len()], kept.as_bytes(), "{text} at {limit}");
            assert_eq!(out[kept.len()], b'\n', "{text} at {limit}");
        }
    }

    #[test]
    fn binary_output_is_cut_at_the_limit() {
        let (out, _) = run(2, &[b"\x80\x80\x80\x80"]);
        assert_eq!(&out[..3], b"\x80\x80\n");
    }

    #[test]
    fn zero_limit_and_kib() {
        let (out, exceeded) = run(0, &[b"x"]);
        assert!(exceeded);
        assert!(out.starts_with(b"\n\x1b[33;1mJob's log exceeded limit of 0 bytes."));
        let mut l = OutputLimit::from_kib(DEFAULT_OUTPUT_LIMIT_KIB);
        let mut out = Vec::new();
        l.push(&vec![b'a'; 4 << 20], &mut out);
        assert!(!l.exceeded());
        l.push(b"b", &mut out);
        assert!(l.exceeded());
        assert!(String::from_utf8_lossy(&out).contains("limit of 4194304 bytes"));
    }
}
