//! How a job ended, in the terms GitLab records: a status, and for a
//! failure its reason and exit code.

use std::fmt;
use std::time::Duration;

/// Why an attempt failed, as GitLab's `failure_reason` names it.
///
/// These are the reasons a runner reports for a job it ran, plus
/// `missing_dependency_failure`, which GitLab sets itself when a job's
/// dependency has no artifacts (rule 154); in a local pipeline the runner
/// plays that part too. A cancelled attempt is not a failure: it is
/// `AttemptResult::Canceled` in the scheduler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureReason {
    ScriptFailure,
    RunnerSystemFailure,
    /// The job ran longer than its timeout. GitLab keeps this apart from
    /// its own `stuck_or_timeout_failure` (a job nobody picked up or that
    /// stopped sending updates), so `retry:when: stuck_or_timeout_failure`
    /// does not retry it.
    JobExecutionTimeout,
    ImagePullFailure,
    UnknownFailure,
    RunnerConfigurationError,
    RunnerExternalDependencyFailure,
    RunnerInterrupted,
    MissingDependencyFailure,
}

impl FailureReason {
    /// Every reason, in the order of the documentation above.
    pub const ALL: [FailureReason; 9] = [
        FailureReason::ScriptFailure,
        FailureReason::RunnerSystemFailure,
        FailureReason::JobExecutionTimeout,
        FailureReason::ImagePullFailure,
        FailureReason::UnknownFailure,
        FailureReason::RunnerConfigurationError,
        FailureReason::RunnerExternalDependencyFailure,
        FailureReason::RunnerInterrupted,
        FailureReason::MissingDependencyFailure,
    ];

    /// GitLab's name for the reason (`script_failure`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ScriptFailure => "script_failure",
            FailureReason::RunnerSystemFailure => "runner_system_failure",
            FailureReason::JobExecutionTimeout => "job_execution_timeout",
            FailureReason::ImagePullFailure => "image_pull_failure",
            FailureReason::UnknownFailure => "unknown_failure",
            FailureReason::RunnerConfigurationError => "runner_configuration_error",
            FailureReason::RunnerExternalDependencyFailure => "runner_external_dependency_failure",
            FailureReason::RunnerInterrupted => "runner_interrupted",
            FailureReason::MissingDependencyFailure => "missing_dependency_failure",
        }
    }

    /// The reason GitLab calls `name`, if it is one of these.
    pub fn parse(name: &str) -> Option<FailureReason> {
        FailureReason::ALL.into_iter().find(|r| r.as_str() == name)
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
