//! `runner pipeline`: running a whole planned pipeline locally.
//!
//! The scheduler decides which jobs start when, which are skipped and
//! why, and the pipeline's status, as GitLab would; it starts nothing
//! itself.

mod retry;
mod schedule;
mod status;

#[cfg(test)]
mod control_tests;
#[cfg(test)]
mod schedule_props;
#[cfg(test)]
mod schedule_tests;
#[cfg(test)]
mod testutil;

pub use retry::{AttemptResult, FailureReason};
pub use schedule::{AfterAttempt, JobStart, JobStatus, ScheduleError, Scheduler};
pub use status::{JobState, PipelineStatus, SkipReason};
