//! One job GitLab handed to the agent, from its acknowledgement to its
//! final update: the same engine as local runs, fed by the API.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use runner_executors::{AnyExecutor, ShellKind};
use tokio_util::sync::CancellationToken;

use crate::config::RunnerConfig;
use crate::gitlab::{
    ApiArtifactTransport, ApiClient, FinalOutcome, FinalState, Info, JobCredentials, JobState,
    JobUpdate, TraceConfig, TraceStreamer, UpdateOutcome,
};
use crate::job::engine::{EngineSettings, JobRun, job_secrets, run_job};
use crate::job::log::JobLog;
use crate::job::outcome::{FailureReason, JobStatus};
use crate::job::payload::{Hook, JobPayload};
use crate::job::sources::SourceMode;

use super::layout::{ConcurrencyIds, JobSlotIds, project_path, shared_project_dir};
use super::log::AgentLog;
use super::metrics::{Metrics, RunnerLabels};

/// What every job of one `[[runners]]` entry shares.
pub struct EntryContext {
    pub config: RunnerConfig,
    pub client: ApiClient,
    pub info: Info,
    pub executor: Arc<AnyExecutor>,
    /// `shell` or `docker`, for the log.
    pub executor_name: &'static str,
    pub shell: ShellKind,
    pub system_id: String,
    pub short_token: String,
    /// The builds dir on this host (shared between jobs, see `layout`).
    pub builds_dir: PathBuf,
    /// Where local cache archives are kept on this host.
    pub cache_dir: PathBuf,
    pub labels: RunnerLabels,
}

/// What the daemon hands every job.
pub struct JobServices<'a> {
    pub ids: &'a ConcurrencyIds,
    pub metrics: &'a Metrics,
    pub log: &'a AgentLog,
    /// Fired when the agent is stopped forcefully: the job is aborted and
    /// reported `runner_interrupted`.
    pub interrupt: CancellationToken,
    /// Timings of the trace streamer (tests shorten them).
    pub trace: TraceConfig,
}

/// How a job went, for the daemon's log and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd {
    /// GitLab would not let it start (already taken, canceled, gone).
    Dropped(String),
    /// It ran; the status and how the final update went.
    Ran {
        status: JobStatus,
        reported: FinalOutcome,
    },
}

/// Acknowledges, runs and reports one job.
pub async fn run_received_job(
    entry: &EntryContext,
    services: JobServices<'_>,
    mut payload: JobPayload,
) -> JobEnd {
    let credentials = JobCredentials::of(&payload);
    let job_id = payload.id;
    // With two_phase_job_commit GitLab keeps the job pending until this
    // acknowledgement; a job never acknowledged goes back to the queue, so
    // dropping it here loses nothing.
    let ack = entry
        .client
        .update_job(&credentials, &entry.info, &JobUpdate::running())
        .await;
    let canceled_at_once = match &ack {
        Ok(r) if r.is_canceling() => true,
        Ok(r) if r.outcome == UpdateOutcome::Succeeded => false,
        Ok(r) => return JobEnd::Dropped(format!("GitLab answered {:?}", r.outcome)),
        Err(e) => return JobEnd::Dropped(format!("acknowledging it failed: {e}")),
    };

    add_runner_scripts(&mut payload, &entry.config);
    let ids = services
        .ids
        .acquire(&entry.short_token, payload.job_info.project_id);
    let (builds_dir, project_dir) = job_dirs(entry, &ids, &payload);

    let cancel = CancellationToken::new();
    let abort = CancellationToken::new();
    let mut trace = services.trace.clone();
    trace.debug_trace = TraceConfig::for_payload(&payload).debug_trace;
    trace.final_update_retry_limit = entry.config.job_status_final_update_retry_limit();
    let streamer = TraceStreamer::start(
        entry.client.clone(),
        credentials,
        entry.info.clone(),
        trace,
        cancel.clone(),
        abort.clone(),
    );
    let mut log = JobLog::new(
        streamer.log_target(),
        &job_secrets(&payload),
        entry.config.output_limit_bytes(),
    )
    .with_token_prefixes(&payload.features.token_mask_prefixes);
    if canceled_at_once {
        cancel.cancel();
    }

    // A forceful stop of the agent aborts the job (the script and
    // everything after it); it is then reported as interrupted rather
    // than canceled.
    let interrupted = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (interrupt, cancel, abort, interrupted) = (
            services.interrupt.clone(),
            cancel.clone(),
            abort.clone(),
            Arc::clone(&interrupted),
        );
        tokio::spawn(async move {
            interrupt.cancelled().await;
            interrupted.store(true, Ordering::SeqCst);
            abort.cancel();
            cancel.cancel();
        })
    };

    services.metrics.job_started(&entry.labels);
    services.log.info(
        "Job started",
        &[
            ("job", &job_id),
            ("project", &payload.job_info.project_id),
            ("runner", &entry.short_token),
        ],
    );
    let started = Instant::now();
    let transport = ApiArtifactTransport::new(entry.client.clone(), &payload);
    let settings = engine_settings(entry, &ids, builds_dir);
    let outcome = run_job(
        &settings,
        entry.executor.as_ref(),
        JobRun {
            payload: &payload,
            project_dir,
            transport: &transport,
            cancel,
            abort,
            executor_name: entry.executor_name,
            shell: entry.shell,
        },
        &mut log,
    )
    .await;
    watcher.abort();
    drop(log);

    let status = if interrupted.load(Ordering::SeqCst) {
        JobStatus::Failed {
            reason: FailureReason::RunnerInterrupted,
            exit_code: None,
            message: "the runner was stopped".to_owned(),
        }
    } else {
        outcome.status
    };
    let state = FinalState::of(&status, &payload.features.failure_reasons);
    let report = streamer
        .finish(state.state, state.failure_reason, state.exit_code)
        .await;
    drop(ids);

    services
        .metrics
        .job_finished(&entry.labels, started.elapsed(), state.failure_reason);
    let state_name = match state.state {
        JobState::Success => "success",
        _ => "failed",
    };
    services.log.info(
        "Job finished",
        &[
            ("job", &job_id),
            ("state", &state_name),
            (
                "duration_s",
                &format_args!("{:.1}", started.elapsed().as_secs_f64()),
            ),
            ("reported", &format_args!("{:?}", report.outcome)),
        ],
    );
    if let FinalOutcome::GaveUp { last_error } = &report.outcome {
        services.log.error(
            "GitLab never took the job's final state",
            &[("job", &job_id), ("error", last_error)],
        );
    }
    JobEnd::Ran {
        status,
        reported: report.outcome,
    }
}

/// gitlab-runner's runner-level scripts: `pre_get_sources_script` runs
/// before the job's own hook of that name and `post_get_sources_script`
/// after its own; `pre_build_script` and `post_build_script` wrap the
/// job's script in the same shell.
fn add_runner_scripts(payload: &mut JobPayload, config: &RunnerConfig) {
    let lines = |text: &str| -> Vec<String> {
        if text.trim().is_empty() {
            Vec::new()
        } else {
            vec![text.to_owned()]
        }
    };
    let mut hook = |name: &str, runner: Vec<String>, runner_first: bool| {
        if runner.is_empty() {
            return;
        }
        match payload.hooks.iter_mut().find(|h| h.name == name) {
            Some(h) if runner_first => h.script.splice(0..0, runner).for_each(drop),
            Some(h) => h.script.extend(runner),
            None => payload.hooks.push(Hook {
                name: name.to_owned(),
                script: runner,
            }),
        }
    };
    hook(
        "pre_get_sources_script",
        lines(&config.pre_get_sources_script),
        true,
    );
    hook(
        "post_get_sources_script",
        lines(&config.post_get_sources_script),
        false,
    );
    if let Some(step) = payload.steps.iter_mut().find(|s| s.name == "script") {
        step.script
            .splice(0..0, lines(&config.pre_build_script))
            .for_each(drop);
        step.script.extend(lines(&config.post_build_script));
    }
}

/// The builds dir and the project dir of a job, on this host.
///
/// Shell jobs share the entry's builds dir, with gitlab-runner's layout
/// for a shared dir (`<builds>/<short token>/<project id>/<path>`). A
/// Docker job gets that same directory as a builds dir of its own, which
/// its containers see as `/builds`: `CI_PROJECT_DIR` is then
/// `/builds/<namespace>/<project>`, as GitLab's Docker executor gives, and
/// no job sees (or, when the files are copied to a remote daemon,
/// overwrites) another's checkout.
fn job_dirs(entry: &EntryContext, ids: &JobSlotIds, payload: &JobPayload) -> (PathBuf, PathBuf) {
    let path = project_path(payload);
    match entry.executor.as_ref() {
        AnyExecutor::Docker(_) => {
            // `CI_CONCURRENT_ID` is unique among the entry's running
            // jobs, whatever their project.
            let own = entry
                .builds_dir
                .join(&entry.short_token)
                .join(ids.concurrent_id.to_string());
            let project = own.join(&path);
            (own, project)
        }
        _ => (
            entry.builds_dir.clone(),
            shared_project_dir(&entry.builds_dir, &entry.short_token, ids.project_id, &path),
        ),
    }
}

fn engine_settings(entry: &EntryContext, ids: &JobSlotIds, builds_dir: PathBuf) -> EngineSettings {
    let disposable = matches!(entry.executor.as_ref(), AnyExecutor::Docker(_));
    let mut vars = vec![
        (
            "CI_RUNNER_VERSION".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        (
            "CI_RUNNER_REVISION".to_owned(),
            option_env!("RUNNER_REVISION")
                .unwrap_or("unknown")
                .to_owned(),
        ),
        (
            "CI_RUNNER_EXECUTABLE_ARCH".to_owned(),
            format!("{}/{}", crate::gitlab::go_os(), crate::gitlab::go_arch()),
        ),
        (
            "CI_RUNNER_SHORT_TOKEN".to_owned(),
            entry.short_token.clone(),
        ),
        ("CI_CONCURRENT_ID".to_owned(), ids.concurrent_id.to_string()),
        (
            "CI_CONCURRENT_PROJECT_ID".to_owned(),
            ids.project_id.to_string(),
        ),
        if disposable {
            ("CI_DISPOSABLE_ENVIRONMENT".to_owned(), "true".to_owned())
        } else {
            ("CI_SHARED_ENVIRONMENT".to_owned(), "true".to_owned())
        },
    ];
    for (flag, on) in &entry.config.feature_flags {
        vars.push((flag.clone(), on.to_string()));
    }
    vars.extend(entry.config.environment_pairs());
    let custom_build_dir = entry.config.custom_build_dir.enabled.unwrap_or(disposable);
    EngineSettings {
        builds_dir,
        cache_dir: entry.cache_dir.clone(),
        source_mode: SourceMode::Commit,
        custom_build_dir_enabled: custom_build_dir,
        runner_variables: vars,
        runner_identity: Some(format!(
            "{} {}, system ID: {}",
            entry.config.name, entry.short_token, entry.system_id
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::payload::Step;

    #[test]
    fn runner_scripts_wrap_the_jobs_own() {
        let mut payload = JobPayload {
            steps: vec![Step {
                name: "script".into(),
                script: vec!["make".into()],
                ..Step::default()
            }],
            hooks: vec![Hook {
                name: "pre_get_sources_script".into(),
                script: vec!["job-pre".into()],
            }],
            ..JobPayload::default()
        };
        let config = RunnerConfig {
            pre_get_sources_script: "runner-pre".into(),
            post_get_sources_script: "runner-post".into(),
            pre_build_script: "echo before".into(),
            post_build_script: "echo after".into(),
            ..RunnerConfig::default()
        };
        add_runner_scripts(&mut payload, &config);
        assert_eq!(
            payload.hook("pre_get_sources_script"),
            ["runner-pre", "job-pre"]
        );
        assert_eq!(payload.hook("post_get_sources_script"), ["runner-post"]);
        assert_eq!(
            payload.steps[0].script,
            ["echo before", "make", "echo after"]
        );
    }
}
