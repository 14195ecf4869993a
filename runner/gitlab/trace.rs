//! The trace streamer (runner-api.md §5.3–§5.5): sends the job's log to
//! GitLab while the job runs, and learns from GitLab's answers whether the
//! job is being cancelled.
//!
//! The job log writes into a [`TraceBuffer`]; a background task sends what
//! is new every update interval, one patch of at most 1 MiB per tick, and
//! "touches" the job (`PUT state=running` with checksum and size) when
//! nothing went out for the force-send interval, so a silent job still
//! hears about cancellation. There is no push channel: cancellation is only
//! ever seen in the answers to these calls. [`TraceStreamer::finish`] sends
//! the rest and the final state.
//!
//! One patch per interval is gitlab-runner's cadence; it would take a job
//! printing 100 MiB five minutes (at GitLab's usual 30 s, much longer) to
//! show its log, and the rest would wait for the job's end. So while a
//! whole patch is waiting and the last patch went through, the next one
//! goes out at once: every patch sent early is a full one, so a busy job
//! costs GitLab no more requests than the same bytes sent on the cadence,
//! only sooner. Less than a patch waits for the interval as before, and so
//! does anything after a patch that failed or met a 416.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::job::log::LogTarget;
use crate::job::payload::JobPayload;

use super::client::ApiClient;
use super::final_update::{self, FinishReport};
use super::info::Info;
use super::jobs::{
    JobCredentials, JobState, JobUpdate, MAX_UPDATE_INTERVAL, PatchOutcome, UpdateOutcome,
};
use super::trace_buffer::TraceBuffer;

/// The timings and limits of the streamer. The defaults are
/// gitlab-runner's; tests shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceConfig {
    /// Between two sends until GitLab names another (3 s); also the pause
    /// between rounds of the final update.
    pub update_interval: Duration,
    /// Silence after which the job is touched (30 s).
    pub force_send_interval: Duration,
    /// The largest patch body (1 MiB).
    pub max_patch_bytes: usize,
    /// Attempts of the whole final update procedure
    /// (`job_status_final_update_retry_limit`, 10).
    pub final_update_retry_limit: u32,
    /// The first wait between two attempts, doubled each time (1 s) ...
    pub final_retry_backoff: Duration,
    /// ... up to this (60 min).
    pub final_retry_backoff_max: Duration,
    /// `debug_trace=true` on patches, for jobs with `CI_DEBUG_TRACE` or
    /// `CI_DEBUG_SERVICES` (GitLab then restricts who may read the log).
    pub debug_trace: bool,
    /// Trace bytes kept in memory before the trace moves to a temporary
    /// file (1 MiB; see `TraceBuffer`).
    pub memory_bytes: usize,
    /// Where that file is made; `None`: the system's temporary directory.
    pub spool_dir: Option<PathBuf>,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            update_interval: Duration::from_secs(3),
            force_send_interval: Duration::from_secs(30),
            max_patch_bytes: 1 << 20,
            final_update_retry_limit: 10,
            final_retry_backoff: Duration::from_secs(1),
            final_retry_backoff_max: Duration::from_secs(60 * 60),
            debug_trace: false,
            memory_bytes: super::trace_buffer::DEFAULT_MEMORY_BYTES,
            spool_dir: None,
        }
    }
}

impl TraceConfig {
    /// The defaults, with `debug_trace` as the job's variables ask.
    pub fn for_payload(payload: &JobPayload) -> TraceConfig {
        let on = |key| {
            payload
                .variable(key)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        TraceConfig {
            debug_trace: on("CI_DEBUG_TRACE") || on("CI_DEBUG_SERVICES"),
            ..TraceConfig::default()
        }
    }
}

/// What every part of the streamer shares.
pub(crate) struct StreamContext {
    pub client: ApiClient,
    pub job: JobCredentials,
    pub info: Info,
    pub config: TraceConfig,
    /// Graceful cancel: stop the script, still run after_script.
    pub cancel: CancellationToken,
    /// Stop everything.
    pub abort: CancellationToken,
}

impl StreamContext {
    /// Acts on a `Job-Status` header.
    pub fn remote_status(&self, job_status: Option<&str>) {
        match job_status {
            Some("canceling") => self.cancel.cancel(),
            Some("canceled" | "failed") => self.abort_job(),
            _ => {}
        }
    }

    /// An abort is also a cancel; cancel first, so whoever sees the abort
    /// already sees the cancel.
    pub fn abort_job(&self) {
        self.cancel.cancel();
        self.abort.cancel();
    }
}

/// Where sending stands; handed from the loop to the final update.
#[derive(Debug, Clone)]
pub(crate) struct SendState {
    /// Bytes GitLab has accepted.
    pub sent: u64,
    pub interval: Duration,
    /// When a patch or a touch last got through.
    pub last_sent: Instant,
    /// The job is gone (404): nothing more is sent.
    pub gone: bool,
    /// GitLab ended the job: no more patches.
    pub aborted: bool,
}

impl SendState {
    fn new(interval: Duration) -> SendState {
        SendState {
            sent: 0,
            interval,
            last_sent: Instant::now(),
            gone: false,
            aborted: false,
        }
    }

    pub fn follow_interval(&mut self, interval: Option<Duration>) {
        if let Some(interval) = interval {
            self.interval = interval.min(MAX_UPDATE_INTERVAL);
        }
    }
}

/// Streams one job's trace to GitLab.
pub struct TraceStreamer {
    buffer: TraceBuffer,
    ctx: Arc<StreamContext>,
    stop: CancellationToken,
    task: Option<JoinHandle<SendState>>,
}

impl TraceStreamer {
    /// Starts sending the trace of `job` (on the current tokio runtime).
    /// GitLab's `canceling` fires `cancel`; `canceled`, `failed` or a 403
    /// fire `abort` and `cancel`.
    pub fn start(
        client: ApiClient,
        job: JobCredentials,
        info: Info,
        mut config: TraceConfig,
        cancel: CancellationToken,
        abort: CancellationToken,
    ) -> TraceStreamer {
        // A patch of nothing would never move the offset.
        config.max_patch_bytes = config.max_patch_bytes.max(1);
        let buffer = TraceBuffer::spooling(config.spool_dir.clone(), config.memory_bytes);
        let ctx = Arc::new(StreamContext {
            client,
            job,
            info,
            config,
            cancel,
            abort,
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(stream_loop(ctx.clone(), buffer.clone(), stop.clone()));
        TraceStreamer {
            buffer,
            ctx,
            stop,
            task: Some(task),
        }
    }

    /// The trace, to write into or to read.
    pub fn buffer(&self) -> &TraceBuffer {
        &self.buffer
    }

    /// A target for the job's `JobLog`.
    pub fn log_target(&self) -> Box<dyn LogTarget> {
        Box::new(self.buffer.clone())
    }

    /// Ends the job on GitLab: stops the loop, sends every byte not yet
    /// accepted, then the final `PUT` with `state`, `failure_reason` (as
    /// the server knows it, see `map_failure_reason`), `exit_code` and the
    /// trace's checksum and size, retrying as gitlab-runner does.
    pub async fn finish(
        mut self,
        state: JobState,
        failure_reason: Option<&str>,
        exit_code: Option<i32>,
    ) -> FinishReport {
        self.stop.cancel();
        let fresh = SendState::new(self.ctx.config.update_interval);
        let sent = match self.task.take() {
            // A loop that died mid-way lost its offset: start from 0 and
            // let GitLab's 416 say where it is.
            Some(task) => task.await.unwrap_or(fresh),
            None => fresh,
        };
        self.buffer.close();
        let update = JobUpdate {
            state: Some(state),
            failure_reason: failure_reason.map(str::to_owned),
            exit_code,
            output: None,
        };
        final_update::send(&self.ctx, &self.buffer, sent, update).await
    }
}

impl Drop for TraceStreamer {
    fn drop(&mut self) {
        // Dropped without `finish`: the loop must not outlive the job.
        self.stop.cancel();
    }
}

async fn stream_loop(
    ctx: Arc<StreamContext>,
    buffer: TraceBuffer,
    stop: CancellationToken,
) -> SendState {
    let mut state = SendState::new(ctx.config.update_interval);
    let patch = ctx.config.max_patch_bytes as u64;
    // Whether the last patch went through (or nothing needed sending):
    // only then may a waiting whole patch go out before the interval.
    let mut flowing = true;
    loop {
        let due = tokio::time::Instant::now() + state.interval;
        loop {
            // Checked first: a backlog must not keep `finish` waiting.
            if stop.is_cancelled() {
                return state;
            }
            let eager = flowing && !state.gone && !state.aborted;
            if eager && buffer.len().saturating_sub(state.sent) >= patch {
                break;
            }
            if eager {
                buffer.wake_at_len(state.sent.saturating_add(patch));
            }
            tokio::select! {
                _ = stop.cancelled() => return state,
                _ = tokio::time::sleep_until(due) => break,
                _ = buffer.grown(), if eager => {}
            }
        }
        flowing = matches!(
            tick(&ctx, &buffer, &mut state).await,
            None | Some(PatchStep::Sent)
        );
    }
}

/// One round: send what is new, touch the job if it has been silent.
/// What became of the patch, if one was sent.
async fn tick(
    ctx: &StreamContext,
    buffer: &TraceBuffer,
    state: &mut SendState,
) -> Option<PatchStep> {
    if state.gone || state.aborted {
        return None;
    }
    let chunk = buffer.read(state.sent, ctx.config.max_patch_bytes);
    let step = if chunk.is_empty() {
        None
    } else {
        Some(send_patch(ctx, buffer, state, &chunk).await)
    };
    if matches!(step, None | Some(PatchStep::Sent))
        && state.last_sent.elapsed() >= ctx.config.force_send_interval
    {
        touch(ctx, buffer, state).await;
    }
    step
}

/// What became of one patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatchStep {
    /// Accepted; the offset moved past it.
    Sent,
    /// 416: the offset is now the server's.
    Resynced,
    /// GitLab ended or removed the job: nothing more is sent.
    Stopped,
    /// No answer, or an error status: the same bytes go again later.
    Failed(String),
}

/// Sends `chunk` from `state.sent`.
pub(crate) async fn send_patch(
    ctx: &StreamContext,
    buffer: &TraceBuffer,
    state: &mut SendState,
    chunk: &[u8],
) -> PatchStep {
    let response = match ctx
        .client
        .patch_trace(&ctx.job, chunk, state.sent, ctx.config.debug_trace)
        .await
    {
        Ok(response) => response,
        // The server is unreachable: the bytes stay, the next tick sends
        // them again.
        Err(e) => return PatchStep::Failed(e.to_string()),
    };
    state.follow_interval(response.update_interval);
    ctx.remote_status(response.job_status.as_deref());
    match response.outcome {
        PatchOutcome::Accepted { next_offset } => {
            state.sent = next_offset;
            state.last_sent = Instant::now();
            PatchStep::Sent
        }
        PatchOutcome::RangeMismatch { server_size } => {
            // GitLab has a different amount than we think (a patch whose
            // answer was lost, a restarted server): continue from what it
            // has, which can never be past what we have.
            state.sent = server_size.min(buffer.len());
            PatchStep::Resynced
        }
        PatchOutcome::NotFound => {
            state.gone = true;
            PatchStep::Stopped
        }
        PatchOutcome::Abort => {
            state.aborted = true;
            ctx.abort_job();
            PatchStep::Stopped
        }
        PatchOutcome::Failed { message } => PatchStep::Failed(message),
    }
}

/// The keep-alive: `PUT state=running` with the trace's checksum and size.
async fn touch(ctx: &StreamContext, buffer: &TraceBuffer, state: &mut SendState) {
    let update = JobUpdate {
        state: Some(JobState::Running),
        output: Some(buffer.output()),
        ..JobUpdate::default()
    };
    let Ok(response) = ctx.client.update_job(&ctx.job, &ctx.info, &update).await else {
        return;
    };
    state.follow_interval(response.update_interval);
    ctx.remote_status(response.job_status.as_deref());
    match response.outcome {
        UpdateOutcome::Succeeded | UpdateOutcome::Accepted => state.last_sent = Instant::now(),
        UpdateOutcome::Abort => {
            state.aborted = true;
            ctx.abort_job();
        }
        UpdateOutcome::NotFound => state.gone = true,
        UpdateOutcome::TraceValidationFailed
        | UpdateOutcome::Conflict
        | UpdateOutcome::Failed { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::payload::JobVariable;

    #[test]
    fn debug_trace_follows_the_job_variables() {
        let mut payload = JobPayload::default();
        assert!(!TraceConfig::for_payload(&payload).debug_trace);
        payload
            .variables
            .push(JobVariable::public("CI_DEBUG_TRACE", "TRUE"));
        assert!(TraceConfig::for_payload(&payload).debug_trace);
        payload
            .variables
            .push(JobVariable::public("CI_DEBUG_TRACE", "false"));
        assert!(!TraceConfig::for_payload(&payload).debug_trace);
        payload
            .variables
            .push(JobVariable::public("CI_DEBUG_SERVICES", "true"));
        assert!(TraceConfig::for_payload(&payload).debug_trace);
    }

    #[test]
    fn intervals_from_gitlab_are_capped() {
        let mut state = SendState::new(Duration::from_secs(3));
        state.follow_interval(None);
        assert_eq!(state.interval, Duration::from_secs(3));
        state.follow_interval(Some(Duration::from_secs(30)));
        assert_eq!(state.interval, Duration::from_secs(30));
        state.follow_interval(Some(Duration::from_secs(100_000)));
        assert_eq!(state.interval, MAX_UPDATE_INTERVAL);
    }
}
