//! Failures of an executor's environment, as opposed to failures of a script.

use std::io;
use std::path::PathBuf;

/// Something went wrong with the environment a script runs in.
///
/// A script that exits non-zero, is killed by a signal, times out or is
/// cancelled is NOT an error: that is a [`StepOutcome`](crate::StepOutcome).
/// An `ExecutorError` means the runner could not run the script at all, or
/// lost control of it; GitLab reports such jobs as `runner_system_failure`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// None of the acceptable shells is installed.
    #[error("no shell found: tried {}", .tried.join(", "))]
    NoShell {
        /// The shell names looked for, in order.
        tried: Vec<String>,
    },

    /// A directory of the job could not be created or used.
    #[error("cannot use directory {}: {source}", .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The pipe that carries the script's output could not be set up.
    #[error("failed to create the output pipe: {0}")]
    Pipe(#[source] io::Error),

    /// The shell could not be started.
    #[error("failed to start {}: {source}", .shell.display())]
    Spawn {
        /// The shell binary.
        shell: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Waiting for the shell to exit failed.
    #[error("failed to wait for the shell (pid {pid}): {source}")]
    Wait {
        /// The shell's process id.
        pid: u32,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The shell survived SIGKILL for longer than the kill wait (a process
    /// stuck in the kernel, e.g. on a dead network file system).
    #[error("process {pid} did not exit {waited:?} after SIGKILL")]
    Unkillable {
        /// The process id.
        pid: u32,
        /// How long the runner waited after SIGKILL.
        waited: std::time::Duration,
    },

    /// The runner could not make itself a child subreaper.
    #[error("failed to become a child subreaper: {0}")]
    Subreaper(#[source] io::Error),
}
