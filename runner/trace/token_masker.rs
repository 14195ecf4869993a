//! Streaming masking of GitLab tokens by their prefix.
//!
//! GitLab's tokens carry a kind prefix (`glpat-` for personal access
//! tokens, `glcbt-` for job tokens, ...). A token printed by a job is
//! hidden even when no variable holds it: the prefix stays, the run of
//! token characters after it becomes `[MASKED]` (`glpat-AbC123` →
//! `glpat-[MASKED]`). Like the value masker, this works across writes: a
//! prefix split over two chunks, or a token whose characters continue in
//! the next chunk, is still masked.

use super::masker::MASKED;

/// The prefixes gitlab-runner masks by default (`glpat-` always; the rest
/// with `FF_MASK_ALL_DEFAULT_TOKENS`, which is on by default).
pub const DEFAULT_TOKEN_PREFIXES: &[&str] = &[
    "glpat-",
    "gloas-",
    "gldt-",
    "glrt-",
    "glcbt-",
    "glrtr-",
    "glptt-",
    "glft-",
    "glimt-",
    "glagent-",
    "glsoat-",
    "glffct-",
    "_gitlab_session=",
    "gltok-",
];

/// Characters a token is made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-')
}

/// A streaming token masker.
#[derive(Debug, Clone)]
pub struct TokenMasker {
    prefixes: Vec<Vec<u8>>,
    /// `first[b]`: some prefix starts with byte `b`.
    first: [bool; 256],
    max_len: usize,
    /// Undecided bytes: a possible start of a prefix at the end of the
    /// last chunk, or a prefix not yet followed by any byte.
    pending: Vec<u8>,
    /// Inside a token whose `[MASKED]` is already written: token bytes are
    /// dropped until another byte comes.
    in_token: bool,
}

impl TokenMasker {
    /// A masker for the default prefixes plus `extra` (the payload's
    /// `features.token_mask_prefixes`).
    pub fn new(extra: &[String]) -> Self {
        let mut prefixes: Vec<Vec<u8>> = DEFAULT_TOKEN_PREFIXES
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .chain(
                extra
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| p.as_bytes().to_vec()),
            )
            .collect();
        prefixes.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        prefixes.dedup();
        let mut first = [false; 256];
        for p in &prefixes {
            first[usize::from(p[0])] = true;
        }
        let max_len = prefixes.first().map_or(0, Vec::len);
        TokenMasker {
            prefixes,
            first,
            max_len,
            pending: Vec::new(),
            in_token: false,
        }
    }

    /// Masks `chunk` and appends what is decided to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.pending.is_empty() {
            let done = self.scan(chunk, false, out);
            self.pending.extend_from_slice(&chunk[done..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(chunk);
            let done = self.scan(&buf, false, out);
            buf.drain(..done);
            self.pending = buf;
        }
    }

    /// Ends the stream, deciding the held bytes.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let buf = std::mem::take(&mut self.pending);
        self.scan(&buf, true, out);
        self.in_token = false;
    }

    fn scan(&mut self, buf: &[u8], at_end: bool, out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        if self.in_token {
            while i < buf.len() && is_token_byte(buf[i]) {
                i += 1;
            }
            if i == buf.len() {
                return i;
            }
            self.in_token = false;
        }
        let mut copied = i;
        while i < buf.len() {
            match buf[i..].iter().position(|&b| self.first[usize::from(b)]) {
                Some(off) => i += off,
                None => break,
            }
            let rest = &buf[i..];
            if !at_end && rest.len() < self.max_len && self.could_become_prefix(rest) {
                out.extend_from_slice(&buf[copied..i]);
                return i;
            }
            let Some(prefix) = self.prefixes.iter().find(|p| rest.starts_with(p)) else {
                i += 1;
                continue;
            };
            let after = i + prefix.len();
            if after == buf.len() && !at_end {
                // The token's characters are still to come.
                out.extend_from_slice(&buf[copied..i]);
                return i;
            }
            let token_len = buf[after..]
                .iter()
                .take_while(|&&b| is_token_byte(b))
                .count();
            if token_len == 0 {
                // A prefix with no token after it hides nothing.
                i = after;
                continue;
            }
            out.extend_from_slice(&buf[copied..after]);
            out.extend_from_slice(MASKED);
            i = after + token_len;
            copied = i;
            if i == buf.len() && !at_end {
                // The token may go on in the next chunk.
                self.in_token = true;
                return i;
            }
        }
        out.extend_from_slice(&buf[copied..]);
        buf.len()
    }

    fn could_become_prefix(&self, rest: &[u8]) -> bool {
        self.prefixes
            .iter()
            .any(|p| p.len() >= rest.len() && p.starts_with(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(chunks: &[&[u8]], extra: &[String]) -> String {
        let mut m = TokenMasker::new(extra);
        let mut out = Vec::new();
        for c in chunks {
            m.push(c, &mut out);
        }
        m.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_prefix_stays_and_the_token_goes() {
        assert_eq!(
            mask(&[b"token glpat-AbC123_x.y=z-9 end"], &[]),
            "token glpat-[MASKED] end"
        );
        assert_eq!(mask(&[b"job glcbt-64_abc\n"], &[]), "job glcbt-[MASKED]\n");
        assert_eq!(
            mask(&[b"cookie _gitlab_session=abc123;"], &[]),
            "cookie _gitlab_session=[MASKED];"
        );
    }

    #[test]
    fn a_prefix_alone_or_an_unrelated_word_is_kept() {
        assert_eq!(
            mask(&[b"glpat- is the prefix"], &[]),
            "glpat- is the prefix"
        );
        assert_eq!(mask(&[b"glp glpa glpat"], &[]), "glp glpa glpat");
        assert_eq!(mask(&[b"ends with glpat-"], &[]), "ends with glpat-");
    }

    #[test]
    fn tokens_split_anywhere_across_chunks_are_masked() {
        let input = b"a glpat-SECRETtoken123 b glrt-t1_xyz c";
        let want = "a glpat-[MASKED] b glrt-[MASKED] c";
        for cut in 0..=input.len() {
            assert_eq!(
                mask(&[&input[..cut], &input[cut..]], &[]),
                want,
                "cut at {cut}"
            );
            for cut2 in cut..=input.len() {
                assert_eq!(
                    mask(&[&input[..cut], &input[cut..cut2], &input[cut2..]], &[]),
                    want,
                    "cuts at {cut},{cut2}"
                );
            }
        }
    }

    #[test]
    fn payload_prefixes_are_added() {
        assert_eq!(
            mask(&[b"x acme_tok-abc y"], &["acme_tok-".to_owned()]),
            "x acme_tok-[MASKED] y"
        );
    }
}
