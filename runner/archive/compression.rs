//! How hard to compress: GitLab's `ARTIFACT_COMPRESSION_LEVEL` and
//! `CACHE_COMPRESSION_LEVEL` levels, and the decision to store a file
//! as is when compressing it would be wasted work.

use std::fmt;
use std::str::FromStr;

use zip::CompressionMethod;

/// A compression level as named by `ARTIFACT_COMPRESSION_LEVEL` /
/// `CACHE_COMPRESSION_LEVEL`.
///
/// As in gitlab-runner, `fastest` stores files without compressing them and
/// the others are Deflate levels: 1, 3, 7 and 9. gitlab-runner uses 5 for
/// `default`, but its compressor (klauspost/compress) is much faster than
/// zlib at equal levels. With zlib-rs, level 5 took about 1.4 times as
/// long as level 3 on source code, for output 6% smaller; level 3 keeps
/// `default` in the speed class users expect of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompressionLevel {
    Fastest,
    Fast,
    #[default]
    Default,
    Slow,
    Slowest,
}

/// A level name gitlab-runner does not know. The `Display` text is its
/// warning; it then uses [`CompressionLevel::Default`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("compression level {0:?} is invalid, falling back to default")]
pub struct InvalidCompressionLevel(pub String);

impl FromStr for CompressionLevel {
    type Err = InvalidCompressionLevel;

    /// Exact, lowercase names; the empty string is the default level.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "fastest" => Ok(CompressionLevel::Fastest),
            "fast" => Ok(CompressionLevel::Fast),
            "default" | "" => Ok(CompressionLevel::Default),
            "slow" => Ok(CompressionLevel::Slow),
            "slowest" => Ok(CompressionLevel::Slowest),
            other => Err(InvalidCompressionLevel(other.to_owned())),
        }
    }
}

impl fmt::Display for CompressionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompressionLevel::Fastest => "fastest",
            CompressionLevel::Fast => "fast",
            CompressionLevel::Default => "default",
            CompressionLevel::Slow => "slow",
            CompressionLevel::Slowest => "slowest",
        })
    }
}

impl CompressionLevel {
    /// The Deflate level, or `None` when files are stored uncompressed.
    pub(crate) fn deflate_level(self) -> Option<i64> {
        match self {
            CompressionLevel::Fastest => None,
            CompressionLevel::Fast => Some(1),
            CompressionLevel::Default => Some(3),
            CompressionLevel::Slow => Some(7),
            CompressionLevel::Slowest => Some(9),
        }
    }

    /// The method and level for a file whose first bytes are `sample`.
    pub(crate) fn method_for(self, sample: &[u8]) -> (CompressionMethod, Option<i64>) {
        match self.deflate_level() {
            Some(level) if !looks_compressed(sample) => (CompressionMethod::Deflated, Some(level)),
            _ => (CompressionMethod::Stored, None),
        }
    }
}

/// How many leading bytes of a file are looked at to decide.
pub(crate) const SAMPLE_LEN: usize = 16 * 1024;

/// Below this, a sample says too little; the file is deflated.
const MIN_SAMPLE: usize = 4 * 1024;

/// Whether `sample` looks like already-compressed data (archives, images,
/// video): its byte entropy is close to 8 bits. Deflate spends most of its
/// time on such data and gains nothing, so these files are stored. Plain
/// text sits near 4.5 bits, executables near 6; a random 16 KiB sample
/// measures about 7.99.
pub(crate) fn looks_compressed(sample: &[u8]) -> bool {
    if sample.len() < MIN_SAMPLE {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in sample {
        counts[usize::from(b)] += 1;
    }
    let n = sample.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    entropy > 7.9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_are_gitlabs() {
        for (name, level) in [
            ("fastest", CompressionLevel::Fastest),
            ("fast", CompressionLevel::Fast),
            ("default", CompressionLevel::Default),
            ("", CompressionLevel::Default),
            ("slow", CompressionLevel::Slow),
            ("slowest", CompressionLevel::Slowest),
        ] {
            assert_eq!(name.parse::<CompressionLevel>(), Ok(level));
        }
        let err = "Fast".parse::<CompressionLevel>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "compression level \"Fast\" is invalid, falling back to default"
        );
    }

    #[test]
    fn levels_map_to_deflate_levels() {
        let levels: Vec<_> = ["fastest", "fast", "default", "slow", "slowest"]
            .iter()
            .map(|n| n.parse::<CompressionLevel>().unwrap().deflate_level())
            .collect();
        assert_eq!(levels, [None, Some(1), Some(3), Some(7), Some(9)]);
    }

    #[test]
    fn random_bytes_are_stored_and_text_is_deflated() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let random: Vec<u8> = (0..SAMPLE_LEN)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(looks_compressed(&random));
        let text = "fn main() { println!(\"hello\"); }\n".repeat(600);
        assert!(!looks_compressed(text.as_bytes()));
        // A short sample decides nothing: deflate.
        assert!(!looks_compressed(&random[..100]));
        let level = CompressionLevel::Default;
        assert_eq!(level.method_for(&random).0, CompressionMethod::Stored);
        assert_eq!(
            level.method_for(text.as_bytes()),
            (CompressionMethod::Deflated, Some(3))
        );
        assert_eq!(
            CompressionLevel::Fastest.method_for(text.as_bytes()).0,
            CompressionMethod::Stored
        );
    }
}
