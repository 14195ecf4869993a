//! Streaming replacement of secret values with `[MASKED]`.
//!
//! Job output arrives in arbitrary chunks (pipe reads), so a secret can be
//! split across two or more writes. The masker keeps back the shortest tail
//! that could still grow into a secret and decides about it when more bytes
//! (or the end of the stream) arrive. Everything before that tail is final.
//!
//! Matching is leftmost-first, longest-wins: scanning left to right, at each
//! position the longest secret that matches there is replaced and scanning
//! resumes after it. This is what a reader expects when one secret is a
//! prefix of another (`abc` and `abcdef` → the whole `abcdef` is hidden).

/// The text that replaces every masked value.
pub const MASKED: &[u8] = b"[MASKED]";

/// A streaming secret masker.
///
/// Feed output with [`Masker::push`] and end the stream with
/// [`Masker::finish`]. Bytes are never dropped or reordered: the output is the
/// input with each secret occurrence replaced by [`MASKED`].
#[derive(Debug, Clone)]
pub struct Masker {
    /// Distinct non-empty secrets, longest first so the first match at a
    /// position is the longest one.
    secrets: Vec<Vec<u8>>,
    /// `first[b]` is true when some secret starts with byte `b`; lets the
    /// scan skip runs of bytes that cannot begin a match.
    first: [bool; 256],
    /// Length of the longest secret (0 when there are none).
    max_len: usize,
    /// Bytes not yet decided: at most `max_len - 1` of them between calls.
    pending: Vec<u8>,
}

impl Masker {
    /// Builds a masker for `secrets`.
    ///
    /// Empty values are ignored (masking them would be meaningless). There is
    /// no minimum length: GitLab enforces its masking rules (at least 8
    /// characters, restricted charset) when the variable is saved, and the
    /// runner masks whatever it is told to.
    pub fn new(secrets: &[String]) -> Self {
        let mut list: Vec<Vec<u8>> = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect();
        list.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        list.dedup();
        let mut first = [false; 256];
        for s in &list {
            first[usize::from(s[0])] = true;
        }
        let max_len = list.first().map_or(0, Vec::len);
        Masker {
            secrets: list,
            first,
            max_len,
            pending: Vec::new(),
        }
    }

    /// Number of bytes currently held back awaiting more input.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Masks `chunk` (continuing any bytes held from earlier calls) and
    /// appends everything that is decided to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.secrets.is_empty() {
            out.extend_from_slice(chunk);
            return;
        }
        if self.pending.is_empty() {
            let done = self.scan(chunk, false, out);
            self.pending.extend_from_slice(&chunk[done..]);
        } else {
            // The held tail is shorter than the longest secret, so copying
            // it in front of the chunk keeps the per-chunk cost linear.
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(chunk);
            let done = self.scan(&buf, false, out);
            buf.drain(..done);
            self.pending = buf;
        }
    }

    /// Ends the stream: decides the held bytes (a secret at the very end is
    /// masked) and appends them to `out`. The masker can then be reused.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let buf = std::mem::take(&mut self.pending);
        let done = self.scan(&buf, true, out);
        debug_assert_eq!(done, buf.len());
    }

    /// Scans `buf`, writing decided output, and returns how many bytes of
    /// `buf` were consumed. Unless `at_end`, stops at the first position
    /// whose remaining bytes are a proper prefix of some secret: a later
    /// byte could still complete a (longer) match there.
    fn scan(&self, buf: &[u8], at_end: bool, out: &mut Vec<u8>) -> usize {
        let mut copied = 0;
        let mut i = 0;
        while i < buf.len() {
            // Skip bytes that cannot begin any secret.
            match buf[i..].iter().position(|&b| self.first[usize::from(b)]) {
                Some(off) => i += off,
                None => break,
            }
            let rest = &buf[i..];
            if !at_end && rest.len() < self.max_len && self.could_grow(rest) {
                out.extend_from_slice(&buf[copied..i]);
                return i;
            }
            match self.secrets.iter().find(|s| rest.starts_with(s)) {
                Some(s) => {
                    out.extend_from_slice(&buf[copied..i]);
                    out.extend_from_slice(MASKED);
                    i += s.len();
                    copied = i;
                }
                None => i += 1,
            }
        }
        out.extend_from_slice(&buf[copied..]);
        buf.len()
    }

    /// True when `rest` is a proper prefix of some secret, i.e. more input
    /// could turn it into a match (or into a longer one).
    fn could_grow(&self, rest: &[u8]) -> bool {
        self.secrets
            .iter()
            .any(|s| s.len() > rest.len() && s.starts_with(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: leftmost, longest-wins replacement on the whole input.
    fn reference(input: &[u8], secrets: &[String]) -> Vec<u8> {
        let mut list: Vec<&[u8]> = secrets
            .iter()
            .map(|s| s.as_bytes())
            .filter(|s| !s.is_empty())
            .collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            if let Some(s) = list.iter().find(|s| input[i..].starts_with(s)) {
                out.extend_from_slice(MASKED);
                i += s.len();
            } else {
                out.push(input[i]);
                i += 1;
            }
        }
        out
    }

    fn mask_chunks(secrets: &[String], chunks: &[&[u8]]) -> Vec<u8> {
        let mut m = Masker::new(secrets);
        let mut out = Vec::new();
        for c in chunks {
            m.push(c, &mut out);
            assert!(m.pending_len() < m.max_len.max(1), "held back too much");
        }
        m.finish(&mut out);
        out
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn secret_split_at_every_position_across_two_chunks() {
        let secrets = s(&["s3cr3t-value"]);
        let input = b"before s3cr3t-value after s3cr3t-value";
        let want = b"before [MASKED] after [MASKED]".to_vec();
        for cut in 0..=input.len() {
            let got = mask_chunks(&secrets, &[&input[..cut], &input[cut..]]);
            assert_eq!(got, want, "cut at {cut}");
        }
    }

    #[test]
    fn secret_split_at_every_pair_of_positions_across_three_chunks() {
        let secrets = s(&["hunter22"]);
        let input = b"x hunter22 y";
        let want = b"x [MASKED] y".to_vec();
        for a in 0..=input.len() {
            for b in a..=input.len() {
                let got = mask_chunks(&secrets, &[&input[..a], &input[a..b], &input[b..]]);
                assert_eq!(got, want, "cuts at {a},{b}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_feeding() {
        let secrets = s(&["password1", "pass"]);
        let input = b"pass password1 passwor";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            mask_chunks(&secrets, &chunks),
            b"[MASKED] [MASKED] [MASKED]wor".to_vec()
        );
    }

    #[test]
    fn prefix_secrets_longest_wins() {
        let secrets = s(&["abc", "abcdef"]);
        let input = b"abcdef abc abcde";
        let want = b"[MASKED] [MASKED] [MASKED]de".to_vec();
        for cut in 0..=input.len() {
            let got = mask_chunks(&secrets, &[&input[..cut], &input[cut..]]);
            assert_eq!(got, want, "cut at {cut}");
        }
    }

    #[test]
    fn secret_at_stream_end_is_flushed_by_finish() {
        let mut m = Masker::new(&s(&["topsecret"]));
        let mut out = Vec::new();
        m.push(b"value: topsecre", &mut out);
        assert_eq!(out, b"value: ");
        m.push(b"t", &mut out);
        // A complete secret that no longer secret could extend is final.
        assert_eq!(out, b"value: [MASKED]");
        m.push(b" and tops", &mut out);
        m.finish(&mut out);
        assert_eq!(out, b"value: [MASKED] and tops");
        assert_eq!(m.pending_len(), 0);
    }

    #[test]
    fn held_prefix_that_never_completes_is_emitted_unchanged() {
        let mut m = Masker::new(&s(&["abcdefgh"]));
        let mut out = Vec::new();
        m.push(b"xxabcdefg", &mut out);
        assert_eq!(out, b"xx");
        m.push(b"X", &mut out);
        assert_eq!(out, b"xxabcdefgX");
    }

    #[test]
    fn hold_back_is_at_most_max_len_minus_one() {
        let mut m = Masker::new(&s(&["aaaaaaaa"]));
        let mut out = Vec::new();
        m.push(b"aaaaaaa", &mut out);
        assert_eq!(m.pending_len(), 7);
        m.push(b"aaaaaaaaaaaaaaa", &mut out);
        assert_eq!(m.pending_len(), 6);
        m.finish(&mut out);
        assert_eq!(out, b"[MASKED][MASKED]aaaaaa");
    }

    #[test]
    fn no_secrets_or_empty_secret_passes_through() {
        for secrets in [s(&[]), s(&[""])] {
            let mut m = Masker::new(&secrets);
            let mut out = Vec::new();
            m.push(b"anything \xff\x00", &mut out);
            assert_eq!(m.pending_len(), 0);
            m.finish(&mut out);
            assert_eq!(out, b"anything \xff\x00");
        }
    }

    #[test]
    fn overlapping_occurrences_mask_leftmost() {
        // "abab" occurs at 0 and 2 in "ababab"; the leftmost is masked and
        // the remaining "ab" is not a secret.
        assert_eq!(
            mask_chunks(&s(&["abab"]), &[b"ababab"]),
            b"[MASKED]ab".to_vec()
        );
    }

    proptest! {
        #[test]
        fn random_chunking_matches_reference(
            input in proptest::collection::vec(prop::sample::select(b"abc\n".to_vec()), 0..200),
            secrets in proptest::collection::vec("[abc]{1,6}", 0..4),
            cuts in proptest::collection::vec(0usize..200, 0..10),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut prev = 0;
            for c in cuts {
                chunks.push(&input[prev..c]);
                prev = c;
            }
            chunks.push(&input[prev..]);
            prop_assert_eq!(mask_chunks(&secrets, &chunks), reference(&input, &secrets));
        }

        #[test]
        fn no_secret_in_input_is_identity(
            input in proptest::collection::vec(0u8..=255, 0..300),
            chunk in 1usize..50,
        ) {
            // Secrets use bytes outside the input's range of a few letters
            // only by chance; the reference decides either way.
            let secrets = s(&["\u{1}never-in-input\u{1}"]);
            let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
            let got = mask_chunks(&secrets, &chunks);
            prop_assert_eq!(&got, &reference(&input, &secrets));
            if !input.windows(16).any(|w| w == b"\x01never-in-input\x01") {
                prop_assert_eq!(got, input);
            }
        }
    }

    #[test]
    fn throughput_50_mib_in_64_kib_chunks_with_10_secrets() {
        let secrets: Vec<String> = (0..10)
            .map(|i| format!("secret-value-{i:02}-xyz"))
            .collect();
        let mut input = Vec::with_capacity(50 << 20);
        let line = b"compiling crate foo v1.2.3 (/builds/group/project) ok\n";
        let mut n = 0;
        while input.len() < 50 << 20 {
            input.extend_from_slice(line);
            n += 1;
            if n % 1000 == 0 {
                input.extend_from_slice(secrets[n / 1000 % 10].as_bytes());
            }
        }
        let start = std::time::Instant::now();
        let mut m = Masker::new(&secrets);
        let mut out = Vec::with_capacity(input.len());
        for c in input.chunks(64 << 10) {
            m.push(c, &mut out);
        }
        m.finish(&mut out);
        let secs = start.elapsed().as_secs_f64();
        let mb = input.len() as f64 / (1024.0 * 1024.0);
        println!("masked {mb:.0} MiB in {secs:.3}s: {:.0} MiB/s", mb / secs);
        assert!(!out.windows(10).any(|w| w == b"secret-val"));
        assert_eq!(
            out.windows(MASKED.len()).filter(|w| *w == MASKED).count(),
            n / 1000
        );
    }
}
