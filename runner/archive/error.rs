//! The one error type of the archive module.
//!
//! Messages are lowercase fragments that name the path or entry involved,
//! except where GitLab has its own wording (cache keys, dotenv reports),
//! which is kept word for word so users see what GitLab would show them.

use std::io;
use std::path::PathBuf;

/// Why archiving, extracting or computing a cache key failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file system operation failed on `path`.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted, as a verb phrase ("read", "create directory").
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// The zip library refused to read or write `path`.
    #[error("invalid zip archive {}: {source}", path.display())]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },

    /// An archive entry would be written outside the target directory, or
    /// cannot be extracted safely.
    #[error("refusing archive entry {name:?}: {reason}")]
    UnsafeEntry { name: String, reason: String },

    /// `git` could not be started.
    #[error("could not run git: {0}")]
    GitSpawn(io::Error),

    /// A `git` command exited with an error.
    #[error("git {args} failed: {stderr}")]
    Git { args: String, stderr: String },

    /// A `cache:key` that GitLab rejects; `location` is the key path such as
    /// `jobs:build:cache:key`.
    #[error("{location} config {problem}")]
    InvalidCacheKey {
        location: String,
        problem: CacheKeyProblem,
    },

    /// The runner could not turn the key into a usable path (gitlab-runner's
    /// own wording).
    #[error("cache key {0:?} could not be sanitized")]
    UnsanitizableCacheKey(String),

    /// The dotenv report is larger than the limit (GitLab's wording).
    #[error("Dotenv Artifact Too Big. Maximum Allowable Size: {limit}")]
    DotenvTooBig { size: usize, limit: usize },

    /// The dotenv report defines more variables than allowed (GitLab's
    /// wording).
    #[error("Dotenv files cannot have more than {limit} variables")]
    DotenvTooManyVariables { count: usize, limit: usize },

    /// One line of a dotenv report is invalid; `line` is 1-based.
    #[error("dotenv line {line}: {message}")]
    DotenvLine { line: usize, message: String },
}

/// What is wrong with a `cache:key`, worded as GitLab words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheKeyProblem {
    #[error("cannot contain the \"/\" character")]
    Slash,
    #[error("cannot be \".\" or \"..\"")]
    Dots,
}

impl ArchiveError {
    /// Wraps an I/O error with the action and the path it concerns.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ArchiveError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn zip(path: impl Into<PathBuf>, source: zip::result::ZipError) -> Self {
        ArchiveError::Zip {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsafe_entry(name: impl Into<String>, reason: impl Into<String>) -> Self {
        ArchiveError::UnsafeEntry {
            name: name.into(),
            reason: reason.into(),
        }
    }
}
