//! Errors that end a command, and the exit status each one maps to.

use std::path::PathBuf;

/// Exit statuses of `runner`, documented in the README.
pub mod exit {
    /// Success; for `lint`, the configuration is valid.
    pub const OK: i32 = 0;
    /// The configuration is invalid (`lint`, `plan`).
    pub const INVALID_CONFIG: i32 = 1;
    /// `exec`, `pipeline`: the job or the pipeline did not pass (also given
    /// when the configuration is invalid: either way nothing passed).
    pub const FAILED: i32 = 1;
    /// Wrong command-line usage (clap uses the same code).
    pub const USAGE: i32 = 2;
    /// The runner itself could not do its work (I/O, git missing, ...).
    pub const RUNNER_FAILURE: i32 = 3;
}

/// A failure of the runner, as opposed to a problem in the user's
/// configuration (which is reported as diagnostics).
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl RunnerError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunnerError::Usage(_) => exit::USAGE,
            RunnerError::Read { .. } | RunnerError::Other(_) => exit::RUNNER_FAILURE,
        }
    }
}
