//! Runs planned jobs on this machine: the scheduler decides what starts,
//! this module builds each job's payload (with the artifacts and dotenv
//! variables of the jobs it depends on), runs it through the engine, and
//! reports the result back to the scheduler.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runner_executors::docker::{BuildsTransfer, UnknownBuildsTransfer};
use runner_executors::{AnyExecutor, CancellationToken, ShellKind};
use tokio::task::JoinSet;

use crate::ci::load::Loaded;
use crate::ci::plan::{Plan, PlannedJob};
use crate::job::artifact_store::LocalArtifactStore;
use crate::job::engine::{EngineSettings, JobRun, job_secrets, run_job};
use crate::job::log::JobLog;
use crate::job::outcome::{JobOutcome, JobStatus};
use crate::job::payload::{Dependency, JobVariable};
use crate::job::sources::SourceMode;
use crate::pipeline::{AttemptResult, JobState, Scheduler};

use super::output::{LocalLogTarget, TerminalStyle};
use super::payload::{JobFacts, PipelineFacts, build_payload};
use super::state::ProjectState;

/// How a local run goes.
pub struct RunOptions {
    /// Jobs running at once.
    pub concurrency: usize,
    /// Manual jobs the user asked for.
    pub manual: Vec<String>,
    pub source: SourceChoice,
    pub style: TerminalStyle,
    /// Prefix each output line with its job's name (several jobs).
    pub prefix_lines: bool,
    pub file_variables: Vec<JobVariable>,
    pub cli_variables: Vec<(String, String)>,
    /// Overrides every job's timeout.
    pub timeout: Option<Duration>,
    /// Which executor runs each job.
    pub executor: ExecutorMode,
    /// The image of jobs that name none, under `--executor docker`.
    pub docker_image: Option<String>,
    /// Whose artifacts each job receives, when decided on a larger plan
    /// than the one run; `None` decides on the plan run.
    pub dependencies: Option<DependencyNames>,
}

/// Job name → names of the jobs whose artifacts it receives.
pub type DependencyNames = HashMap<String, Vec<String>>;

/// Whose artifacts each job of `plan` receives, by GitLab's rules:
/// `dependencies` lists them; otherwise `needs` does (those with
/// `artifacts: true`); otherwise every job of an earlier stage.
pub fn dependency_names(plan: &Plan) -> DependencyNames {
    let stage_index = |stage: &str| plan.stages.iter().position(|s| s.name == stage);
    plan.jobs
        .iter()
        .map(|job| {
            let names = if let Some(deps) = &job.dependencies {
                deps.clone()
            } else if let Some(needs) = &job.needs {
                needs
                    .iter()
                    .filter(|n| n.artifacts)
                    .map(|n| n.job.clone())
                    .collect()
            } else {
                let mine = stage_index(&job.stage);
                plan.jobs
                    .iter()
                    .filter(|j| stage_index(&j.stage) < mine)
                    .map(|j| j.name.clone())
                    .collect()
            };
            (job.name.clone(), names)
        })
        .collect()
}

/// Which executor runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorMode {
    /// Jobs with an `image:` in Docker, the others in the shell.
    Auto,
    Shell,
    Docker,
}

impl ExecutorMode {
    /// Whether a job (with or without an image) runs in Docker.
    pub fn uses_docker(self, has_image: bool) -> bool {
        match self {
            ExecutorMode::Auto => has_image,
            ExecutorMode::Shell => false,
            ExecutorMode::Docker => true,
        }
    }
}

/// The variable that chooses how Docker jobs get their builds dir.
const DOCKER_BUILDS_VAR: &str = "RUNNER_DOCKER_BUILDS";

/// `RUNNER_DOCKER_BUILDS` (`bind`, `copy` or `auto`), else `auto`: bind
/// mounts for a daemon on a unix socket, copies for one reached over the
/// network, which cannot see this machine's files.
fn builds_transfer_from_env() -> Result<BuildsTransfer, String> {
    match std::env::var(DOCKER_BUILDS_VAR) {
        Ok(value) if !value.trim().is_empty() => value
            .parse()
            .map_err(|e: UnknownBuildsTransfer| format!("{DOCKER_BUILDS_VAR}: {e}")),
        _ => Ok(BuildsTransfer::Auto),
    }
}

/// Where sources come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChoice {
    Worktree,
    Commit,
}

/// One job's end, for the summary.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub name: String,
    pub stage: String,
    /// The scheduler's final word (`success`, `failed`, `skipped`, ...).
    pub status: String,
    /// The failure reason or why the job was skipped.
    pub detail: Option<String>,
    pub duration: Option<Duration>,
    pub log_file: Option<PathBuf>,
    pub attempts: u32,
}

/// The end of a local run.
pub struct RunReport {
    pub jobs: Vec<JobReport>,
    /// GitLab would call the pipeline passed.
    pub passed: bool,
    /// GitLab's pipeline status word.
    pub status: String,
    pub pipeline_id: u64,
    pub duration: Duration,
}

/// Everything a job task needs, shared by all of them.
struct Shared {
    loaded: Loaded,
    plan: Plan,
    state: ProjectState,
    store: LocalArtifactStore,
    settings: EngineSettings,
    shell: AnyExecutor,
    docker: Option<AnyExecutor>,
    options: RunOptions,
    dependencies: DependencyNames,
    pipeline_id: u64,
    /// Job name → id of its run in this pipeline, once it has finished.
    finished: Mutex<HashMap<String, u64>>,
    /// First Ctrl-C: jobs are canceled, their after_script still runs.
    cancel: CancellationToken,
    /// Second Ctrl-C: everything stops now.
    abort: CancellationToken,
}

/// Runs `plan`'s jobs; the plan may be a subset of the pipeline (`exec`).
pub async fn run_plan(
    loaded: Loaded,
    plan: Plan,
    options: RunOptions,
) -> Result<RunReport, String> {
    let started = Instant::now();
    let state = ProjectState::for_project(&loaded.git.toplevel);
    let pipeline_id = state
        .next_pipeline_id()
        .map_err(|e| format!("cannot write to {}: {e}", state.root.display()))?;
    let shell = AnyExecutor::Shell(
        runner_executors::shell::ShellExecutor::new(Default::default())
            .map_err(|e| e.to_string())?,
    );
    // Docker is only connected to when a job will run there, so a
    // pipeline without images needs no daemon.
    let docker = if plan
        .jobs
        .iter()
        .any(|j| !j.trigger && options.executor.uses_docker(j.image.is_some()))
    {
        let mut docker_options = runner_executors::docker::DockerOptions::default();
        docker_options.default_image = options.docker_image.clone();
        docker_options.owner = state.docker_owner();
        docker_options.builds_transfer = builds_transfer_from_env()?;
        let executor = runner_executors::docker::DockerExecutor::new(docker_options)
            .await
            .map_err(|e| e.to_string())?;
        Some(AnyExecutor::Docker(executor))
    } else {
        None
    };
    let settings = EngineSettings {
        builds_dir: state.builds_dir(),
        cache_dir: state.cache_dir(),
        source_mode: match options.source {
            SourceChoice::Worktree => SourceMode::WorkingTree {
                repo: loaded.git.toplevel.clone(),
            },
            SourceChoice::Commit => SourceMode::Commit,
        },
        custom_build_dir_enabled: true,
        runner_variables: vec![
            (
                "CI_RUNNER_VERSION".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            ("CI_RUNNER_REVISION".to_owned(), "local".to_owned()),
            (
                "CI_RUNNER_EXECUTABLE_ARCH".to_owned(),
                format!("{}/{}", crate::gitlab::go_os(), crate::gitlab::go_arch()),
            ),
            ("CI_RUNNER_SHORT_TOKEN".to_owned(), "local".to_owned()),
            ("CI_RUNNER_DESCRIPTION".to_owned(), "local".to_owned()),
            ("CI_RUNNER_TAGS".to_owned(), "[]".to_owned()),
            ("CI_CONCURRENT_ID".to_owned(), "0".to_owned()),
            ("CI_CONCURRENT_PROJECT_ID".to_owned(), "0".to_owned()),
            ("CI_SHARED_ENVIRONMENT".to_owned(), "true".to_owned()),
        ],
        runner_identity: None,
    };
    let store = LocalArtifactStore::new(state.artifacts_dir());
    let dependencies = match &options.dependencies {
        Some(names) => names.clone(),
        None => dependency_names(&plan),
    };
    let mut scheduler = Scheduler::new(&plan, &options.manual).map_err(|e| e.to_string())?;
    let concurrency = options.concurrency.max(1);
    let shared = Arc::new(Shared {
        loaded,
        plan,
        state,
        store,
        settings,
        shell,
        docker,
        options,
        dependencies,
        pipeline_id,
        finished: Mutex::new(HashMap::new()),
        cancel: CancellationToken::new(),
        abort: CancellationToken::new(),
    });

    let mut queue = std::collections::VecDeque::new();
    let mut running: JoinSet<(usize, JobOutcome)> = JoinSet::new();
    let mut reports: HashMap<usize, (Option<Duration>, PathBuf, u32)> = HashMap::new();
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    let mut terminations =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("cannot watch for SIGTERM: {e}"))?;
    loop {
        queue.extend(scheduler.ready(Instant::now()));
        while running.len() < concurrency {
            let Some(start) = queue.pop_front() else {
                break;
            };
            let shared = Arc::clone(&shared);
            let log_file = shared.state.log_file(pipeline_id, &start.name);
            let attempt = start.attempt;
            reports.insert(start.index, (None, log_file.clone(), attempt));
            running.spawn(async move {
                let outcome = run_one(&shared, start.index, attempt, log_file).await;
                (start.index, outcome)
            });
        }
        if running.is_empty() && queue.is_empty() && scheduler.is_done() {
            break;
        }
        let wakeup = scheduler.next_wakeup();
        tokio::select! {
            Some(joined) = running.join_next(), if !running.is_empty() => {
                let (index, outcome) = joined.map_err(|e| format!("a job task failed: {e}"))?;
                if let Some(report) = reports.get_mut(&index) {
                    report.0 = Some(report.0.unwrap_or_default() + outcome.duration);
                }
                scheduler
                    .finished(index, attempt_result(&outcome.status))
                    .map_err(|e| format!("the scheduler lost track of a job: {e}"))?;
            }
            _ = sleep_until(wakeup), if wakeup.is_some() => {}
            _ = interrupt(&mut interrupts, &mut terminations), if !shared.abort.is_cancelled() => {
                if shared.cancel.is_cancelled() {
                    eprintln!("Interrupted again: stopping everything now");
                    shared.abort.cancel();
                } else {
                    eprintln!("Interrupted: canceling the running jobs (again to stop at once)...");
                    shared.cancel.cancel();
                    scheduler.cancel();
                    queue.clear();
                }
            }
        }
    }

    let jobs = scheduler
        .jobs()
        .iter()
        .enumerate()
        .map(|(index, job)| {
            let report = reports.get(&index);
            JobReport {
                name: job.name.clone(),
                stage: job.stage.clone(),
                status: state_word(&job.state).to_owned(),
                detail: state_detail(&job.state),
                duration: report.and_then(|r| r.0),
                log_file: report.map(|r| r.1.clone()),
                attempts: job.attempts,
            }
        })
        .collect();
    let status = scheduler.pipeline_status();
    Ok(RunReport {
        jobs,
        passed: status.passed(),
        status: status.to_string(),
        pipeline_id,
        duration: started.elapsed(),
    })
}

/// Waits for SIGINT or SIGTERM.
async fn interrupt(
    interrupts: &mut tokio::signal::unix::Signal,
    terminations: &mut tokio::signal::unix::Signal,
) {
    tokio::select! {
        _ = interrupts.recv() => {}
        _ = terminations.recv() => {}
    }
}

async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when.into()).await,
        None => std::future::pending().await,
    }
}

fn attempt_result(status: &JobStatus) -> AttemptResult {
    match status {
        JobStatus::Success => AttemptResult::Success,
        JobStatus::Failed {
            reason, exit_code, ..
        } => AttemptResult::Failed {
            reason: *reason,
            exit_code: *exit_code,
        },
        JobStatus::Canceled => AttemptResult::Canceled,
    }
}

/// The summary's word for a job's final state.
fn state_word(state: &JobState) -> &'static str {
    match state {
        JobState::Created => "blocked",
        JobState::Scheduled => "scheduled",
        JobState::Pending { .. } => "pending",
        JobState::Running { .. } => "running",
        JobState::Success => "success",
        JobState::Failed { .. } => "failed",
        JobState::FailedAllowed { .. } => "allowed-failure",
        JobState::Canceled => "canceled",
        JobState::Skipped(_) => "skipped",
        JobState::Manual => "manual",
    }
}

/// Why, for the states where the word alone does not say.
fn state_detail(state: &JobState) -> Option<String> {
    match state {
        JobState::Failed { reason, exit_code } | JobState::FailedAllowed { reason, exit_code } => {
            Some(match exit_code {
                Some(code) => format!("{reason}, exit code {code}"),
                None => reason.to_string(),
            })
        }
        JobState::Skipped(why) => Some(why.to_string()),
        JobState::Created => Some("waits for a manual job".to_owned()),
        _ => None,
    }
}

/// Runs attempt `attempt` of the plan's job `index`.
async fn run_one(shared: &Shared, index: usize, attempt: u32, log_file: PathBuf) -> JobOutcome {
    let planned = &shared.plan.jobs[index];
    let model = &shared.loaded.pipeline.jobs[planned.source_index];
    // Job ids are unique within the project: the pipeline id, then the
    // job's position and attempt.
    let job_id = shared.pipeline_id * 100_000 + (index as u64) * 10 + u64::from(attempt.min(9));
    let (dependencies, dotenv) = dependencies_of(shared, planned);
    let facts = PipelineFacts {
        git: &shared.loaded.git,
        git_is_real: shared.loaded.git_is_real,
        pipeline_variables: &shared.loaded.pipeline_variables,
        pipeline_id: shared.pipeline_id,
        file_variables: &shared.options.file_variables,
        cli_variables: &shared.options.cli_variables,
        protected: shared
            .loaded
            .pipeline_variables
            .lookup("CI_COMMIT_REF_PROTECTED")
            == Some("true"),
    };
    // Names padded to the longest, so output lines start in one column.
    let width = shared
        .plan
        .jobs
        .iter()
        .map(|j| j.name.chars().count())
        .max()
        .unwrap_or(0);
    let prefix = format!("{:<width$}", planned.name);
    let prefix = shared.options.prefix_lines.then_some(prefix.as_str());
    let target = match LocalLogTarget::new(&log_file, prefix, shared.options.style) {
        Ok(t) => t,
        Err(e) => {
            return JobOutcome {
                status: JobStatus::system_failure(format!(
                    "cannot write the log file {}: {e}",
                    log_file.display()
                )),
                duration: Duration::ZERO,
            };
        }
    };
    let payload = build_payload(
        &facts,
        &JobFacts {
            planned,
            model,
            job_id,
            dependencies,
            dotenv,
        },
    );
    let mut payload = match payload {
        Ok(p) => p,
        Err(message) => {
            let mut log = JobLog::new(Box::new(target), &[], usize::MAX);
            log.error(&message);
            log.finish();
            return JobOutcome {
                status: JobStatus::system_failure(message),
                duration: Duration::ZERO,
            };
        }
    };
    if let Some(timeout) = shared.options.timeout {
        payload.runner_info.timeout = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    }
    let mut log = JobLog::new(
        Box::new(target),
        &job_secrets(&payload),
        // Locally the log file keeps everything; the limit is for GitLab.
        usize::MAX,
    )
    .with_token_prefixes(&payload.features.token_mask_prefixes);
    let project_dir = shared
        .state
        .project_dir(&planned.name, &payload.job_info.project_full_path);
    let has_image = payload.image.as_ref().is_some_and(|i| !i.name.is_empty());
    let (executor, executor_name, shell) = match (
        shared.options.executor.uses_docker(has_image),
        &shared.docker,
    ) {
        // Scripts in images are written for POSIX sh: the image may
        // have no bash.
        // bash when the image has it, else sh, as GitLab picks.
        (true, Some(docker)) => (docker, "docker", ShellKind::Bash),
        _ => (&shared.shell, "shell", ShellKind::Bash),
    };
    let mut settings = shared.settings.clone();
    settings.builds_dir = shared.state.job_builds_dir(&planned.name);
    let outcome = run_job(
        &settings,
        executor,
        JobRun {
            payload: &payload,
            project_dir,
            transport: &shared.store,
            cancel: shared.cancel.child_token(),
            abort: shared.abort.child_token(),
            executor_name,
            shell,
        },
        &mut log,
    )
    .await;
    if shared.store.has_archive(job_id).is_some() {
        let _ = shared.state.set_latest_artifacts(&planned.name, job_id);
    }
    if let Ok(mut finished) = shared.finished.lock() {
        finished.insert(planned.name.clone(), job_id);
    }
    outcome
}

/// The jobs whose artifacts `job` downloads (see [`dependency_names`]),
/// with their archives and dotenv variables. A job that did not run in
/// this pipeline is looked up among earlier local runs.
fn dependencies_of(shared: &Shared, job: &PlannedJob) -> (Vec<Dependency>, Vec<(String, String)>) {
    let names = shared
        .dependencies
        .get(&job.name)
        .cloned()
        .unwrap_or_default();
    let finished = shared
        .finished
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    let mut dependencies = Vec::new();
    let mut dotenv = Vec::new();
    for name in names {
        let id = finished
            .get(&name)
            .copied()
            .or_else(|| shared.state.latest_artifacts(&name));
        let Some(id) = id else { continue };
        if let Ok(vars) = shared.store.dotenv_variables(id) {
            dotenv.extend(vars);
        }
        dependencies.push(Dependency {
            id,
            name,
            token: String::new(),
            artifacts_file: shared.store.has_archive(id),
        });
    }
    (dependencies, dotenv)
}
