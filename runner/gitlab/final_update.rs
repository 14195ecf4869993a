//! The end of a job on GitLab (runner-api.md §5.4): every remaining trace
//! byte, then the final `PUT` with the state and the trace's checksum,
//! until GitLab has both.
//!
//! GitLab may answer 202 (it is still storing the trace: ask again after
//! the interval) or 412 (its trace does not match the checksum: send the
//! whole trace again). Any other trouble, an unreachable server included,
//! repeats the whole procedure after a back-off, a bounded number of times:
//! a GitLab restarting while a job ends loses nothing.

use crate::job::outcome::JobStatus;

use super::failure::{map_failure_reason, map_reason_name};
use super::jobs::{JobState, JobUpdate, TraceOutput, UpdateOutcome};
use super::trace::{PatchStep, SendState, StreamContext, send_patch};
use super::trace_buffer::TraceBuffer;

/// Rounds (202s, 412s, 416s) one attempt goes through before it counts as
/// failed; GitLab itself stops answering 202 after five minutes.
const MAX_ROUNDS: u32 = 100;

/// How the final update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalOutcome {
    /// 200: GitLab recorded the final state.
    Completed,
    /// 403 or `Job-Status` `canceled`/`failed`: GitLab had already ended
    /// the job.
    Aborted,
    /// 404: the job no longer exists.
    NotFound,
    /// Every attempt failed; the last reason.
    GaveUp { last_error: String },
}

/// What [`super::TraceStreamer::finish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishReport {
    pub outcome: FinalOutcome,
    /// The checksum and size sent with the final state.
    pub output: TraceOutput,
    /// Bytes GitLab accepted, as far as the runner knows.
    pub sent_bytes: u64,
    /// Attempts of the whole procedure.
    pub attempts: u32,
}

/// The state, reason and exit code a job that ended with `status` reports,
/// with the reason mapped to one the server lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalState {
    pub state: JobState,
    pub failure_reason: Option<&'static str>,
    pub exit_code: Option<i32>,
}

impl FinalState {
    /// `server_listed` is the payload's `features.failure_reasons`. A
    /// cancelled job is reported failed with gitlab-runner's `job_canceled`,
    /// which GitLab knows as `unknown_failure` (it records the job as
    /// cancelled itself).
    pub fn of(status: &JobStatus, server_listed: &[String]) -> FinalState {
        match status {
            JobStatus::Success => FinalState {
                state: JobState::Success,
                failure_reason: None,
                exit_code: None,
            },
            JobStatus::Failed {
                reason, exit_code, ..
            } => FinalState {
                state: JobState::Failed,
                failure_reason: Some(map_failure_reason(*reason, server_listed)),
                exit_code: *exit_code,
            },
            JobStatus::Canceled => FinalState {
                state: JobState::Failed,
                failure_reason: Some(map_reason_name("job_canceled", server_listed)),
                exit_code: None,
            },
        }
    }
}

/// Runs the final procedure from where the loop left `state`.
pub(crate) async fn send(
    ctx: &StreamContext,
    buffer: &TraceBuffer,
    mut state: SendState,
    mut update: JobUpdate,
) -> FinishReport {
    let output = buffer.output();
    update.output = Some(output.clone());
    // Back to the initial interval: the server names its own if it wants.
    state.interval = ctx.config.update_interval;
    let limit = ctx.config.final_update_retry_limit.max(1);
    let mut backoff = ctx.config.final_retry_backoff;
    let mut last_error = String::new();
    for attempt in 1..=limit {
        match procedure(ctx, buffer, &mut state, &update).await {
            Ok(outcome) => {
                return FinishReport {
                    outcome,
                    output,
                    sent_bytes: state.sent,
                    attempts: attempt,
                };
            }
            Err(error) => last_error = error,
        }
        if attempt < limit {
            tokio::time::sleep(backoff).await;
            backoff = backoff
                .saturating_mul(2)
                .min(ctx.config.final_retry_backoff_max);
        }
    }
    FinishReport {
        outcome: FinalOutcome::GaveUp { last_error },
        output,
        sent_bytes: state.sent,
        attempts: limit,
    }
}

/// One attempt: the remaining trace, then the final update, as many rounds
/// as GitLab asks for.
async fn procedure(
    ctx: &StreamContext,
    buffer: &TraceBuffer,
    state: &mut SendState,
    update: &JobUpdate,
) -> Result<FinalOutcome, String> {
    for _ in 0..MAX_ROUNDS {
        if !send_remaining(ctx, buffer, state).await? {
            // 416: GitLab told where it stands; continue from there.
            tokio::time::sleep(state.interval).await;
            continue;
        }
        let response = ctx
            .client
            .update_job(&ctx.job, &ctx.info, update)
            .await
            .map_err(|e| e.to_string())?;
        state.follow_interval(response.update_interval);
        // GitLab names the job's new status (`failed`, `canceled`) in the
        // answer to a final update it took: that is no abort.
        if response.status == 200 {
            return Ok(FinalOutcome::Completed);
        }
        match response.outcome {
            UpdateOutcome::Succeeded => return Ok(FinalOutcome::Completed),
            UpdateOutcome::Abort | UpdateOutcome::Conflict => return Ok(FinalOutcome::Aborted),
            UpdateOutcome::NotFound => return Ok(FinalOutcome::NotFound),
            UpdateOutcome::Accepted => {}
            UpdateOutcome::TraceValidationFailed => {
                state.sent = 0;
                state.gone = false;
                state.aborted = false;
            }
            UpdateOutcome::Failed { message } => return Err(message),
        }
        tokio::time::sleep(state.interval).await;
    }
    Err(format!(
        "GitLab did not take the final update in {MAX_ROUNDS} rounds"
    ))
}

/// Sends every byte from `state.sent` to the end. `Ok(false)` after a 416
/// (the offset moved), an error when a patch failed.
async fn send_remaining(
    ctx: &StreamContext,
    buffer: &TraceBuffer,
    state: &mut SendState,
) -> Result<bool, String> {
    loop {
        // A job GitLab ended or removed takes no more trace; the final
        // update still goes out and gets GitLab's word on it.
        if state.gone || state.aborted {
            return Ok(true);
        }
        let chunk = buffer.read(state.sent, ctx.config.max_patch_bytes);
        if chunk.is_empty() {
            return Ok(true);
        }
        match send_patch(ctx, buffer, state, &chunk).await {
            PatchStep::Sent => {}
            PatchStep::Stopped => return Ok(true),
            PatchStep::Resynced => return Ok(false),
            PatchStep::Failed(reason) => {
                return Err(format!(
                    "sending the trace from byte {}: {reason}",
                    state.sent
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::outcome::FailureReason;

    #[test]
    fn job_endings_become_final_states() {
        let listed: Vec<String> = vec!["script_failure".into()];
        assert_eq!(
            FinalState::of(&JobStatus::Success, &listed),
            FinalState {
                state: JobState::Success,
                failure_reason: None,
                exit_code: None
            }
        );
        let failed = JobStatus::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(2),
            message: "exit code 2".into(),
        };
        assert_eq!(
            FinalState::of(&failed, &listed),
            FinalState {
                state: JobState::Failed,
                failure_reason: Some("script_failure"),
                exit_code: Some(2)
            }
        );
        assert_eq!(
            FinalState::of(&JobStatus::Canceled, &listed).failure_reason,
            Some("unknown_failure")
        );
    }
}
