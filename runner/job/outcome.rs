//! How a job ended, in the terms GitLab records: a status, and for a
//! failure its reason and exit code.

use std::fmt;
use std::time::Duration;

/// Why a job failed, as gitlab-runner reports it (runner-api.md §8.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// The job's script exited non-zero, or a stage that runs as part of
    /// the script (artifact upload) failed.
    ScriptFailure,
    /// The job ran out of time (`timeout:` or `RUNNER_SCRIPT_TIMEOUT`).
    JobExecutionTimeout,
    /// The runner itself could not do its part (executor, I/O).
    RunnerSystemFailure,
    /// The job's configuration cannot be honoured (`GIT_CLONE_PATH` outside
    /// the builds directory).
    RunnerConfigurationError,
    /// A service the job needs (the Docker daemon, an image) failed.
    RunnerExternalDependencyFailure,
    /// An image could not be pulled.
    ImagePullFailure,
}

impl FailureReason {
    /// The name GitLab uses (`failure_reason` on the wire, `retry:when`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ScriptFailure => "script_failure",
            FailureReason::JobExecutionTimeout => "job_execution_timeout",
            FailureReason::RunnerSystemFailure => "runner_system_failure",
            FailureReason::RunnerConfigurationError => "runner_configuration_error",
            FailureReason::RunnerExternalDependencyFailure => "runner_external_dependency_failure",
            FailureReason::ImagePullFailure => "image_pull_failure",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The end of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStatus {
    Success,
    Failed {
        reason: FailureReason,
        /// The failing command's exit code, when a process exited.
        exit_code: Option<i32>,
        /// What the last log line says after `ERROR: Job failed: `.
        message: String,
    },
    /// Stopped by the user (Ctrl-C) or the coordinator.
    Canceled,
}

impl JobStatus {
    pub fn is_success(&self) -> bool {
        matches!(self, JobStatus::Success)
    }

    /// `CI_JOB_STATUS` as `after_script` sees it.
    pub fn ci_job_status(&self) -> &'static str {
        match self {
            JobStatus::Success => "success",
            JobStatus::Failed {
                reason: FailureReason::JobExecutionTimeout,
                ..
            } => "timedout",
            JobStatus::Failed { .. } => "failed",
            JobStatus::Canceled => "canceled",
        }
    }

    pub(crate) fn script_failure(exit_code: i32) -> JobStatus {
        JobStatus::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(exit_code),
            message: format!("exit code {exit_code}"),
        }
    }

    pub(crate) fn system_failure(message: impl Into<String>) -> JobStatus {
        JobStatus::Failed {
            reason: FailureReason::RunnerSystemFailure,
            exit_code: None,
            message: message.into(),
        }
    }
}

/// A finished job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    pub status: JobStatus,
    pub duration: Duration,
}
