//! Job and pipeline statuses, and GitLab's composite status: how the
//! statuses of several jobs add up to one. The scheduler asks it what the
//! jobs a job waits for add up to (`Ci::PipelineProcessing::
//! AtomicProcessingService`), and the pipeline's status is the composite
//! of all its jobs (`Gitlab::Ci::Status::Composite`).

use std::fmt;

use super::retry::FailureReason;

/// Where a job of the pipeline is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Waits for the jobs before it. A job still created once the
    /// pipeline is done was held back by a blocking manual job.
    Created,
    /// A delayed job whose timer runs (GitLab's `scheduled`).
    Scheduled,
    /// Decided to start: the next `ready()` hands it out.
    Pending {
        attempt: u32,
    },
    /// Handed out by `ready()`; this attempt runs.
    Running {
        attempt: u32,
    },
    Success,
    Failed {
        reason: FailureReason,
        exit_code: Option<i32>,
    },
    /// Failed, but `allow_failure` lets it (a warning in GitLab).
    FailedAllowed {
        reason: FailureReason,
        exit_code: Option<i32>,
    },
    Canceled,
    /// Not run, and why.
    Skipped(SkipReason),
    /// A manual job nobody chose to run.
    Manual,
}

impl JobState {
    /// True once nothing more happens to the job.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Success
                | JobState::Failed { .. }
                | JobState::FailedAllowed { .. }
                | JobState::Canceled
                | JobState::Skipped(_)
                | JobState::Manual
        )
    }

    /// True while the job may still start or is running: what a job
    /// waiting for it has to wait out.
    pub(crate) fn is_active(&self) -> bool {
        matches!(
            self,
            JobState::Created
                | JobState::Scheduled
                | JobState::Pending { .. }
                | JobState::Running { .. }
        )
    }

    /// GitLab's name for the status (`success`, `failed`, `manual`, ...);
    /// an allowed failure is `failed`, as in GitLab.
    pub fn gitlab_status(&self) -> &'static str {
        match self {
            JobState::Created => "created",
            JobState::Scheduled => "scheduled",
            JobState::Pending { .. } => "pending",
            JobState::Running { .. } => "running",
            JobState::Success => "success",
            JobState::Failed { .. } | JobState::FailedAllowed { .. } => "failed",
            JobState::Canceled => "canceled",
            JobState::Skipped(_) => "skipped",
            JobState::Manual => "manual",
        }
    }
}

/// Why a job was skipped. `needs` says whether the job waited for its
/// `needs` (true) or for the earlier stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A trigger job: never run locally.
    Trigger,
    /// `on_success` (or manual, delayed) and something it waited for failed.
    UpstreamFailed { needs: bool },
    /// `on_failure` and nothing it waited for failed.
    NothingFailed { needs: bool },
    /// It needs `job`, which was skipped or is a manual job that did not
    /// run: GitLab skips a job with `needs` then, unless it is `always`.
    NeedNotRun { job: String },
    /// Something it waited for was canceled, which no `when` accepts.
    UpstreamCanceled { needs: bool },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waited = |needs: bool| {
            if needs {
                "a job it needs"
            } else {
                "a job of an earlier stage"
            }
        };
        match self {
            SkipReason::Trigger => f.write_str(
                "trigger jobs run a downstream pipeline, which a local run does not create",
            ),
            SkipReason::UpstreamFailed { needs } => write!(f, "{} failed", waited(*needs)),
            SkipReason::NothingFailed { needs } => {
                let what = if *needs {
                    "no job it needs"
                } else {
                    "no job of an earlier stage"
                };
                write!(f, "when: on_failure, and {what} failed")
            }
            SkipReason::NeedNotRun { job } => write!(f, "it needs `{job}`, which did not run"),
            SkipReason::UpstreamCanceled { needs } => {
                write!(f, "{} was canceled", waited(*needs))
            }
        }
    }
}

/// The status of the whole pipeline, as GitLab shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipelineStatus {
    /// Jobs still run, wait, or are about to start.
    Running,
    Success,
    /// Passed, with jobs whose failure was allowed.
    SuccessWithWarnings,
    Failed,
    Canceled,
    /// Nothing ran: every job was skipped or is an optional manual job.
    Skipped,
    /// A blocking manual job (`allow_failure: false`) holds the rest back.
    Blocked,
}

impl PipelineStatus {
    /// True only when GitLab calls the pipeline passed (with or without
    /// warnings). A skipped or blocked pipeline has not passed.
    pub fn passed(self) -> bool {
        matches!(
            self,
            PipelineStatus::Success | PipelineStatus::SuccessWithWarnings
        )
    }

    /// The words GitLab's pipeline badge uses.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineStatus::Running => "running",
            PipelineStatus::Success => "passed",
            PipelineStatus::SuccessWithWarnings => "passed with warnings",
            PipelineStatus::Failed => "failed",
            PipelineStatus::Canceled => "canceled",
            PipelineStatus::Skipped => "skipped",
            PipelineStatus::Blocked => "blocked",
        }
    }
}

impl fmt::Display for PipelineStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job's status as the composite reads it: allowed failures count as
/// `success_with_warnings`, optional manual jobs as `ignored`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
enum Token {
    Created = 1 << 0,
    Pending = 1 << 1,
    Running = 1 << 2,
    Scheduled = 1 << 3,
    Manual = 1 << 4,
    Success = 1 << 5,
    Failed = 1 << 6,
    Canceled = 1 << 7,
    Skipped = 1 << 8,
    SuccessWithWarnings = 1 << 9,
    Ignored = 1 << 10,
}

fn token(state: &JobState, allow_failure: bool) -> Token {
    match state {
        JobState::Created => Token::Created,
        JobState::Scheduled => Token::Scheduled,
        JobState::Pending { .. } => Token::Pending,
        JobState::Running { .. } => Token::Running,
        JobState::Success => Token::Success,
        // GitLab's PASSED_WITH_WARNINGS_STATUSES are failed and canceled.
        JobState::Failed { .. } | JobState::Canceled if allow_failure => Token::SuccessWithWarnings,
        JobState::Failed { .. } => Token::Failed,
        JobState::FailedAllowed { .. } => Token::SuccessWithWarnings,
        JobState::Canceled => Token::Canceled,
        JobState::Skipped(_) => Token::Skipped,
        JobState::Manual if allow_failure => Token::Ignored,
        JobState::Manual => Token::Manual,
    }
}

/// What a set of job statuses adds up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Composite {
    Success,
    Skipped,
    Failed,
    Canceled,
    Created,
    Pending,
    Running,
    Manual,
    Scheduled,
}

impl Composite {
    /// GitLab's `COMPLETED_STATUSES`: only then is a waiting job decided.
    pub(crate) fn is_complete(self) -> bool {
        matches!(
            self,
            Composite::Success | Composite::Failed | Composite::Canceled | Composite::Skipped
        )
    }
}

/// The set of statuses of some jobs (GitLab keeps a set too: how many jobs
/// have a status does not matter, only which statuses occur).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StatusSet(u16);

impl StatusSet {
    /// Adds a job in `state`, whose failure is allowed when
    /// `allow_failure` (its resolved `allow_failure: true`).
    pub(crate) fn add(&mut self, state: &JobState, allow_failure: bool) {
        self.0 |= token(state, allow_failure) as u16;
    }

    /// Both sets together.
    pub(crate) fn union(self, other: StatusSet) -> StatusSet {
        StatusSet(self.0 | other.0)
    }

    fn any_of(self, tokens: &[Token]) -> bool {
        tokens.iter().any(|t| self.0 & *t as u16 != 0)
    }

    /// GitLab's `only_of?`: not empty, and nothing outside `tokens`.
    fn only_of(self, tokens: &[Token]) -> bool {
        let mask = tokens.iter().fold(0, |m, t| m | *t as u16);
        self.0 != 0 && self.0 & !mask == 0
    }

    /// The composite status, in GitLab's order of checks; `None` for no
    /// jobs. `dag` is for the jobs a job `needs`: one of them skipped, or
    /// a manual job that did not run, makes them all `skipped`.
    pub(crate) fn status(self, dag: bool) -> Option<Composite> {
        use Token::*;
        if self.0 == 0 {
            return None;
        }
        // For needs, one skipped (or a manual job that did not run) is
        // enough; otherwise all of them must be.
        let skipped = if dag {
            self.any_of(&[Skipped, Ignored])
        } else {
            self.only_of(&[Skipped, Ignored])
        };
        Some(if skipped {
            Composite::Skipped
        } else if self.only_of(&[Success, Skipped, SuccessWithWarnings, Ignored]) {
            Composite::Success
        } else if self.only_of(&[Created, SuccessWithWarnings, Ignored]) {
            Composite::Created
        } else if self.only_of(&[Canceled, Success, Skipped, SuccessWithWarnings, Ignored]) {
            Composite::Canceled
        } else if self.only_of(&[Pending, Created, Skipped, SuccessWithWarnings, Ignored]) {
            Composite::Pending
        } else if self.any_of(&[Running, Pending]) {
            Composite::Running
        } else if self.any_of(&[Manual]) {
            Composite::Manual
        } else if self.any_of(&[Scheduled]) {
            Composite::Scheduled
        } else if self.any_of(&[Created]) {
            Composite::Running
        } else {
            Composite::Failed
        })
    }

    /// The pipeline's status when these are all its jobs' statuses.
    pub(crate) fn pipeline_status(self) -> PipelineStatus {
        // GitLab falls back to `success` for no jobs (`status_for_array`).
        match self.status(false).unwrap_or(Composite::Success) {
            Composite::Success if self.any_of(&[Token::SuccessWithWarnings]) => {
                PipelineStatus::SuccessWithWarnings
            }
            Composite::Success => PipelineStatus::Success,
            Composite::Skipped => PipelineStatus::Skipped,
            Composite::Failed => PipelineStatus::Failed,
            Composite::Canceled => PipelineStatus::Canceled,
            Composite::Manual => PipelineStatus::Blocked,
            Composite::Created | Composite::Pending | Composite::Running | Composite::Scheduled => {
                PipelineStatus::Running
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: JobState = JobState::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(1),
    };
    const SKIPPED_TRIGGER: fn() -> JobState = || JobState::Skipped(SkipReason::Trigger);

    fn set(states: &[(JobState, bool)]) -> StatusSet {
        let mut s = StatusSet::default();
        for (state, allow_failure) in states {
            s.add(state, *allow_failure);
        }
        s
    }

    #[test]
    fn no_jobs_add_up_to_nothing_and_a_pipeline_of_none_passes() {
        assert_eq!(StatusSet::default().status(false), None);
        assert_eq!(
            StatusSet::default().pipeline_status(),
            PipelineStatus::Success
        );
    }

    #[test]
    fn rule_130_skipped_jobs_and_allowed_failures_count_as_success() {
        let s = set(&[
            (JobState::Success, false),
            (SKIPPED_TRIGGER(), false),
            (FAILED, true),
        ]);
        assert_eq!(s.status(false), Some(Composite::Success));
        assert_eq!(s.pipeline_status(), PipelineStatus::SuccessWithWarnings);
        let only_skipped = set(&[(SKIPPED_TRIGGER(), false), (JobState::Manual, true)]);
        assert_eq!(only_skipped.status(false), Some(Composite::Skipped));
        assert_eq!(only_skipped.pipeline_status(), PipelineStatus::Skipped);
    }

    #[test]
    fn an_allowed_failure_state_counts_as_a_warning_whatever_the_flag() {
        let allowed = JobState::FailedAllowed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(3),
        };
        let s = set(&[(JobState::Success, false), (allowed, false)]);
        assert_eq!(s.pipeline_status(), PipelineStatus::SuccessWithWarnings);
    }

    #[test]
    fn a_need_that_did_not_run_makes_the_needs_skipped() {
        let s = set(&[(JobState::Success, false), (JobState::Manual, true)]);
        assert_eq!(s.status(false), Some(Composite::Success));
        assert_eq!(s.status(true), Some(Composite::Skipped));
        // Even while another need still runs.
        let s = set(&[
            (JobState::Running { attempt: 1 }, false),
            (SKIPPED_TRIGGER(), false),
        ]);
        assert_eq!(s.status(true), Some(Composite::Skipped));
        assert_eq!(s.status(false), Some(Composite::Running));
    }

    #[test]
    fn rule_132_a_blocking_manual_job_wins_over_a_failure() {
        let s = set(&[(FAILED, false), (JobState::Manual, false)]);
        assert_eq!(s.status(false), Some(Composite::Manual));
        assert!(!Composite::Manual.is_complete());
        assert_eq!(s.pipeline_status(), PipelineStatus::Blocked);
        let s = set(&[
            (FAILED, false),
            (JobState::Created, false),
            (JobState::Manual, false),
        ]);
        assert_eq!(s.pipeline_status(), PipelineStatus::Blocked);
    }

    #[test]
    fn unfinished_jobs_keep_the_status_incomplete() {
        for state in [
            JobState::Created,
            JobState::Pending { attempt: 1 },
            JobState::Running { attempt: 2 },
            JobState::Scheduled,
        ] {
            let s = set(&[(FAILED, false), (state.clone(), false)]);
            let status = s.status(false).unwrap();
            assert!(!status.is_complete(), "{state:?} gave {status:?}");
            assert_eq!(s.pipeline_status(), PipelineStatus::Running);
        }
    }

    #[test]
    fn canceled_is_a_warning_only_when_failure_is_allowed() {
        let s = set(&[(JobState::Success, false), (JobState::Canceled, false)]);
        assert_eq!(s.status(false), Some(Composite::Canceled));
        assert_eq!(s.pipeline_status(), PipelineStatus::Canceled);
        let s = set(&[(JobState::Success, false), (JobState::Canceled, true)]);
        assert_eq!(s.pipeline_status(), PipelineStatus::SuccessWithWarnings);
        // A failure beside a cancel makes the whole failed.
        let s = set(&[(FAILED, false), (JobState::Canceled, false)]);
        assert_eq!(s.status(false), Some(Composite::Failed));
    }

    #[test]
    fn passed_is_true_only_for_success() {
        let passed: Vec<PipelineStatus> = [
            PipelineStatus::Running,
            PipelineStatus::Success,
            PipelineStatus::SuccessWithWarnings,
            PipelineStatus::Failed,
            PipelineStatus::Canceled,
            PipelineStatus::Skipped,
            PipelineStatus::Blocked,
        ]
        .into_iter()
        .filter(|s| s.passed())
        .collect();
        assert_eq!(
            passed,
            [PipelineStatus::Success, PipelineStatus::SuccessWithWarnings]
        );
    }

    #[test]
    fn skip_reasons_read_as_sentences() {
        assert_eq!(
            SkipReason::UpstreamFailed { needs: false }.to_string(),
            "a job of an earlier stage failed"
        );
        assert_eq!(
            SkipReason::NeedNotRun {
                job: "build".into()
            }
            .to_string(),
            "it needs `build`, which did not run"
        );
        assert_eq!(
            SkipReason::NothingFailed { needs: true }.to_string(),
            "when: on_failure, and no job it needs failed"
        );
    }
}
