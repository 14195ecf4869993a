//! What can stop the `get_sources` stage.

use std::io;
use std::path::PathBuf;

/// Why getting the sources failed.
///
/// The job engine branches on the variant: `InvalidConfig` is GitLab's
/// `runner_configuration_error`, `Command` a failed stage (`script_failure`
/// with the command's exit code), `Cancelled` an aborted or timed-out job,
/// `Io` a runner-side failure.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// The job's settings cannot be honoured, e.g. a `GIT_CLONE_PATH`
    /// outside the builds directory. Worded like gitlab-runner's message.
    #[error("{0}")]
    InvalidConfig(String),
    /// A git command (or a hook's shell) ended unsuccessfully.
    #[error("{command} failed with {status}{}", stderr_suffix(.stderr))]
    Command {
        /// The command line, without secrets (URLs are stored without
        /// credentials; hooks are named, not quoted).
        command: String,
        /// `exit code <n>` or `signal <n>`.
        status: String,
        /// The process's exit code, when it exited on its own.
        exit_code: Option<i32>,
        /// The last lines of the command's error output, on one line.
        stderr: String,
    },
    /// The job was cancelled (or timed out) while the stage ran; every
    /// process the stage started has been killed.
    #[error("getting sources was cancelled")]
    Cancelled,
    /// A file-system or process-spawning failure on the runner's side.
    #[error("{context} {}: {source}", .path.display())]
    Io {
        /// What was being done, e.g. `cannot remove`.
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SourcesError {
    /// The exit code a failed command ended with: the job's exit code when
    /// the stage fails this way.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            SourcesError::Command { exit_code, .. } => *exit_code,
            _ => None,
        }
    }

    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SourcesError::Io {
            context,
            path: path.into(),
            source,
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_failure_names_the_command_status_and_stderr_on_one_line() {
        let err = SourcesError::Command {
            command: "git fetch origin".into(),
            status: "exit code 128".into(),
            exit_code: Some(128),
            stderr: "fatal: no such remote".into(),
        };
        assert_eq!(
            err.to_string(),
            "git fetch origin failed with exit code 128: fatal: no such remote"
        );
        assert_eq!(err.exit_code(), Some(128));
        let io = SourcesError::io(
            "cannot remove",
            "/b/p",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(io.to_string().starts_with("cannot remove /b/p: "), "{io}");
        assert_eq!(io.exit_code(), None);
    }
}
