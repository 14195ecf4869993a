//! The job engine: one job through gitlab-runner's stages, in its order
//! (runner-api.md §8.1):
//!
//! prepare executor → get_sources → restore_cache → download_artifacts →
//! step_script → after_script → archive_cache → upload_artifacts → cleanup.
//!
//! Only the user's scripts go through the executor. Sources, cache and
//! artifacts are handled by the runner process itself on the project
//! directory, which every executor shares with the host (the Docker executor
//! mounts it), so those stages cost no shell start and behave the same under
//! every executor.
//!
//! The failure rules are gitlab-runner's: a failed get_sources,
//! restore_cache or download_artifacts skips the scripts (and after_script)
//! but still saves the cache and uploads artifacts for a failed job; the job
//! timeout ends everything where it is; `RUNNER_SCRIPT_TIMEOUT` only ends the
//! scripts, and after_script and the uploads still run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runner_executors::{
    CancellationToken, Executor, ExitKind, ImageSpec, JobEnv, OutputSink, ServiceSpec, ShellKind,
    StepOutcome, StepRequest,
};

use super::artifacts_stage::{self, ArtifactTransport};
use super::cache_stage::{self, CacheContext};
use super::log::JobLog;
use super::outcome::{FailureReason, JobOutcome, JobStatus};
use super::payload::{AFTER_SCRIPT_STEP, JobPayload};
use super::script::{Dialect, ScriptSpec, generate, generate_after_script};
use super::sources::{self, SourceMode, SourcesError, SourcesRequest};
use super::vars::JobVars;

/// `RUNNER_AFTER_SCRIPT_TIMEOUT`'s default.
const DEFAULT_AFTER_SCRIPT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How the runner runs jobs, the same for every job it runs.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `CI_BUILDS_DIR`.
    pub builds_dir: PathBuf,
    /// Where the local cache archives live.
    pub cache_dir: PathBuf,
    /// How sources get into the project directory.
    pub source_mode: SourceMode,
    /// Whether `GIT_CLONE_PATH` may move the project directory.
    pub custom_build_dir_enabled: bool,
    /// Variables the runner sets for every job, before the job's own.
    pub runner_variables: Vec<(String, String)>,
    /// Who runs the job, for the log's second line (`on <name> <short
    /// token>, system ID: <id>`); `None` for local runs.
    pub runner_identity: Option<String>,
}

/// One job to run.
pub struct JobRun<'a> {
    pub payload: &'a JobPayload,
    /// `CI_PROJECT_DIR` unless `GIT_CLONE_PATH` moves it.
    pub project_dir: PathBuf,
    pub transport: &'a dyn ArtifactTransport,
    /// Cancels the job: the scripts are stopped, after_script runs with
    /// `CI_JOB_STATUS=canceled`.
    pub cancel: CancellationToken,
    /// Stops everything at once, after_script included (a second Ctrl-C).
    pub abort: CancellationToken,
    /// The executor's name, for the log (`shell`, `docker`).
    pub executor_name: &'a str,
    /// The shell language the scripts are written in.
    pub shell: ShellKind,
}

/// The variables and secrets of a job, for building its log before the
/// job starts: the log must mask from its first line.
pub fn job_secrets(payload: &JobPayload) -> Vec<String> {
    let mut secrets: Vec<String> = payload
        .variables
        .iter()
        .filter(|v| v.masked && !v.value.is_empty())
        .map(|v| v.value.clone())
        .collect();
    if !payload.token.is_empty() {
        secrets.push(payload.token.clone());
    }
    secrets
}

/// Runs one job to its end. Never fails: every problem becomes the job's
/// status, explained in its log.
pub async fn run_job<E: Executor>(
    settings: &EngineSettings,
    executor: &E,
    job: JobRun<'_>,
    log: &mut JobLog,
) -> JobOutcome {
    let started = Instant::now();
    let timeout = Duration::from_secs(job.payload.runner_info.timeout_secs());
    let deadline = started + timeout;
    let status = Engine {
        settings,
        payload: job.payload,
        transport: job.transport,
        cancel: job.cancel,
        abort: job.abort,
        executor_name: job.executor_name,
        shell: job.shell,
        deadline,
        timeout,
    }
    .run(executor, job.project_dir, log)
    .await;
    match &status {
        JobStatus::Success => log.notice("Job succeeded"),
        // gitlab-runner keeps "(system failure)" for failures of the
        // runner itself, not for what its configuration refused.
        JobStatus::Failed {
            reason:
                FailureReason::ScriptFailure
                | FailureReason::JobExecutionTimeout
                | FailureReason::RunnerConfigurationError,
            message,
            ..
        } => log.error(&format!("Job failed: {message}")),
        JobStatus::Failed { message, .. } => {
            log.error(&format!("Job failed (system failure): {message}"))
        }
        JobStatus::Canceled => log.error("Job failed: canceled"),
    }
    log.finish();
    JobOutcome {
        status,
        duration: started.elapsed(),
    }
}

struct Engine<'a> {
    settings: &'a EngineSettings,
    payload: &'a JobPayload,
    transport: &'a dyn ArtifactTransport,
    cancel: CancellationToken,
    abort: CancellationToken,
    executor_name: &'a str,
    shell: ShellKind,
    deadline: Instant,
    timeout: Duration,
}

/// Where the job's files are: on the runner's host, where sources, cache
/// and artifacts are handled, and as the job's scripts see them (the same
/// for the shell executor; under `/builds` in a container).
struct Dirs {
    project: PathBuf,
    tmp: PathBuf,
    script_project: PathBuf,
    script_tmp: PathBuf,
    script_builds: PathBuf,
}

impl Engine<'_> {
    async fn run<E: Executor>(
        &self,
        executor: &E,
        default_dir: PathBuf,
        log: &mut JobLog,
    ) -> JobStatus {
        let initial_vars = JobVars::resolve(
            &self.settings.runner_variables,
            &self.payload.variables,
            &[],
            Path::new(""),
        );
        let project = match sources::resolve_project_dir(
            &initial_vars,
            &self.settings.builds_dir,
            &default_dir,
            self.settings.custom_build_dir_enabled,
        ) {
            Ok(dir) => dir,
            Err(err) => {
                return JobStatus::Failed {
                    reason: FailureReason::RunnerConfigurationError,
                    exit_code: None,
                    message: err.to_string(),
                };
            }
        };
        let tmp = tmp_dir_of(&project);

        log.info(&format!(
            "Running with runner {}",
            env!("CARGO_PKG_VERSION")
        ));
        if let Some(identity) = &self.settings.runner_identity {
            log.info(&format!("  on {identity}"));
        }
        log.section_start(
            "prepare_executor",
            &format!("Preparing the \"{}\" executor", self.executor_name),
        );
        let env = self.job_env(&project, &initial_vars);
        // gitlab-runner's words, so the log says where the job runs.
        match (&env.image, self.executor_name) {
            (Some(image), "docker") => log.info(&format!(
                "Using Docker executor with image {} ...",
                image.name
            )),
            (_, "shell") => log.info(&format!(
                "Using Shell ({}) executor...",
                match self.shell {
                    ShellKind::Bash => "bash",
                    ShellKind::Sh => "sh",
                }
            )),
            _ => {}
        }
        for service in &env.services {
            log.info(&format!("Starting service {} ...", service.name));
        }
        let prepared = executor.prepare(&env).await;
        let mut prepared = match prepared {
            Ok(p) => p,
            Err(err) => {
                if let Some(hint) = err.hint() {
                    log.warning(hint);
                }
                if let Some(report) = err.report() {
                    log.info("");
                    log.error(&report.headline);
                    for line in &report.lines {
                        log.info(line);
                    }
                }
                log.section_end("prepare_executor");
                // What the runner's configuration refuses (an image not
                // allowed...) is the operator's to fix, not a fault.
                if err.is_configuration() {
                    return JobStatus::Failed {
                        reason: FailureReason::RunnerConfigurationError,
                        exit_code: None,
                        message: err.to_string(),
                    };
                }
                return JobStatus::system_failure(err.to_string());
            }
        };
        log.section_end("prepare_executor");
        let seen = |host: &Path| executor.job_path(&prepared, host);
        let (Some(script_project), Some(script_tmp), Some(script_builds)) =
            (seen(&project), seen(&tmp), seen(&self.settings.builds_dir))
        else {
            let _ = executor.cleanup(prepared).await;
            return JobStatus::system_failure(format!(
                "the {} executor cannot see the build directory {}",
                self.executor_name,
                project.display()
            ));
        };
        let dirs = Dirs {
            project,
            tmp,
            script_project,
            script_tmp,
            script_builds,
        };
        let vars = self.job_vars(&dirs, executor.job_variables(&prepared));

        let status = self
            .stages(executor, &mut prepared, &dirs, &vars, log)
            .await;
        if !status.is_success() && status != JobStatus::Canceled {
            for (title, text) in executor.failure_report(&prepared).await {
                log.section_start("failure_report", &title);
                log.write(text.as_bytes());
                log.section_end("failure_report");
            }
        }
        self.cleanup_file_variables(&dirs, log);
        if let Err(err) = executor.cleanup(prepared).await {
            log.warning(&format!("cleaning up the executor failed: {err}"));
        }
        status
    }

    /// What the executor needs to prepare the job: its image and services,
    /// with variables in their names expanded as the runner does.
    fn job_env(&self, project: &Path, vars: &JobVars) -> JobEnv {
        let mut env = JobEnv::new(
            self.payload.id.to_string(),
            self.settings.builds_dir.clone(),
            project.to_owned(),
        );
        if let Some(image) = self.payload.image.as_ref().filter(|i| !i.name.is_empty()) {
            let mut spec = ImageSpec::new(vars.expand(&image.name));
            if let Some(entrypoint) = &image.entrypoint {
                spec = spec.with_entrypoint(entrypoint.iter().cloned());
            }
            if let Some(policy) = &image.pull_policy {
                spec = spec.with_pull_policy(policy.iter().cloned());
            }
            env = env.with_image(spec);
        }
        for service in &self.payload.services {
            let mut spec = ServiceSpec::new(vars.expand(&service.name));
            for alias in service.alias.split([' ', ',']).filter(|a| !a.is_empty()) {
                spec = spec.with_alias(vars.expand(alias));
            }
            if let Some(entrypoint) = &service.entrypoint {
                spec = spec.with_entrypoint(entrypoint.iter().cloned());
            }
            if let Some(command) = &service.command {
                spec = spec.with_command(command.iter().cloned());
            }
            if let Some(policy) = &service.pull_policy {
                spec = spec.with_pull_policy(policy.iter().cloned());
            }
            for v in &service.variables {
                spec = spec.with_variable(v.key.clone(), vars.expand(&v.value));
            }
            env = env.with_service(spec);
        }
        // Services get the job's public variables, never its secrets.
        let public: Vec<(String, String)> = vars
            .iter()
            .filter(|v| v.public && !v.file)
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect();
        env.with_service_env(public)
    }

    /// The job's variables: the runner's defaults, the payload's, then the
    /// paths only the runner knows, as the scripts see them.
    fn job_vars(&self, dirs: &Dirs, executor_vars: Vec<(String, String)>) -> JobVars {
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let mut overrides = vec![
            ("CI_BUILDS_DIR".to_owned(), path(&dirs.script_builds)),
            ("CI_PROJECT_DIR".to_owned(), path(&dirs.script_project)),
            ("RUNNER_TEMP_PROJECT_DIR".to_owned(), path(&dirs.script_tmp)),
            (
                "CI_JOB_TIMEOUT".to_owned(),
                self.timeout.as_secs().to_string(),
            ),
            ("CI_JOB_STATUS".to_owned(), "running".to_owned()),
            ("CI_SERVER".to_owned(), "yes".to_owned()),
        ];
        if let Some(image) = self.payload.image.as_ref().filter(|i| !i.name.is_empty()) {
            overrides.push(("CI_JOB_IMAGE".to_owned(), image.name.clone()));
        }
        overrides.extend(executor_vars);
        JobVars::resolve(
            &self.settings.runner_variables,
            &self.payload.variables,
            &overrides,
            &dirs.script_tmp,
        )
    }

    async fn stages<E: Executor>(
        &self,
        executor: &E,
        prepared: &mut E::Prepared,
        dirs: &Dirs,
        vars: &JobVars,
        log: &mut JobLog,
    ) -> JobStatus {
        log.section_start("prepare_script", "Preparing environment");
        log.info(&format!("Running on {}...", hostname()));
        log.section_end("prepare_script");
        if let Err(err) = std::fs::create_dir_all(&dirs.tmp) {
            return JobStatus::system_failure(format!(
                "cannot create {}: {err}",
                dirs.tmp.display()
            ));
        }

        // Stages before the scripts: a failure skips the scripts but the
        // on-failure cache and artifact stages still run.
        let mut status = match self.prepare_workspace(dirs, vars, log).await {
            Ok(()) => self.scripts(executor, prepared, dirs, vars, log).await,
            Err(status) => status,
        };
        if self.aborted(&status) {
            return status;
        }

        let succeeded = status.is_success();
        let cache_ctx = self.cache_context(dirs);
        let (name, title) = if succeeded {
            ("archive_cache", "Saving cache for successful job")
        } else {
            ("archive_cache_on_failure", "Saving cache for failed job")
        };
        if self.has_cache_to_save(succeeded) {
            log.section_start(name, title);
            blocking(|| cache_stage::save_caches(self.payload, vars, &cache_ctx, succeeded, log));
            log.section_end(name);
        }

        let (name, title) = if succeeded {
            (
                "upload_artifacts_on_success",
                "Uploading artifacts for successful job",
            )
        } else {
            (
                "upload_artifacts_on_failure",
                "Uploading artifacts for failed job",
            )
        };
        if self.has_artifacts_to_upload(succeeded) {
            log.section_start(name, title);
            let uploaded = blocking(|| {
                artifacts_stage::upload_artifacts(
                    self.payload,
                    vars,
                    &dirs.project,
                    &dirs.tmp,
                    self.transport,
                    succeeded,
                    log,
                )
            });
            log.section_end(name);
            // An upload failure fails a successful job; a failed job keeps
            // its own, earlier error.
            if let (Err(err), true) = (uploaded, succeeded) {
                status = JobStatus::Failed {
                    reason: FailureReason::ScriptFailure,
                    exit_code: None,
                    message: err.to_string(),
                };
            }
        }
        status
    }

    /// get_sources, restore_cache and download_artifacts.
    async fn prepare_workspace(
        &self,
        dirs: &Dirs,
        vars: &JobVars,
        log: &mut JobLog,
    ) -> Result<(), JobStatus> {
        log.section_start("get_sources", "Getting source from Git repository");
        let request = SourcesRequest {
            payload: self.payload,
            vars,
            builds_dir: &self.settings.builds_dir,
            project_dir: &dirs.project,
            tmp_dir: &dirs.tmp,
            mode: self.settings.source_mode.clone(),
        };
        let fetched = tokio::time::timeout_at(
            self.deadline.into(),
            sources::get_sources(&request, log, &self.cancel),
        )
        .await;
        log.section_end("get_sources");
        match fetched {
            Err(_) => return Err(self.job_timeout()),
            Ok(Err(SourcesError::Cancelled)) => return Err(JobStatus::Canceled),
            Ok(Err(err)) => {
                log.error(&err.to_string());
                return Err(JobStatus::Failed {
                    reason: FailureReason::ScriptFailure,
                    exit_code: Some(1),
                    message: "exit code 1".to_owned(),
                });
            }
            Ok(Ok(())) => {}
        }

        let cache_ctx = self.cache_context(dirs);
        if self.payload.cache.iter().any(|c| c.policy != "push") {
            log.section_start("restore_cache", "Restoring cache");
            blocking(|| cache_stage::restore_caches(self.payload, vars, &cache_ctx, log));
            log.section_end("restore_cache");
        }

        if self
            .payload
            .dependencies
            .iter()
            .any(|d| d.artifacts_file.is_some())
        {
            log.section_start("download_artifacts", "Downloading artifacts");
            let downloaded = blocking(|| {
                artifacts_stage::download_artifacts(
                    self.payload,
                    &dirs.project,
                    &dirs.tmp,
                    self.transport,
                    log,
                )
            });
            log.section_end("download_artifacts");
            if let Err(err) = downloaded {
                log.error(&err.to_string());
                return Err(JobStatus::Failed {
                    reason: FailureReason::ScriptFailure,
                    exit_code: Some(1),
                    message: "exit code 1".to_owned(),
                });
            }
        }
        Ok(())
    }

    /// step_script, then after_script.
    async fn scripts<E: Executor>(
        &self,
        executor: &E,
        prepared: &mut E::Prepared,
        dirs: &Dirs,
        vars: &JobVars,
        log: &mut JobLog,
    ) -> JobStatus {
        let script_deadline = self.script_deadline(vars, log);
        let mut status = JobStatus::Success;
        for step in self
            .payload
            .steps
            .iter()
            .filter(|s| s.name != AFTER_SCRIPT_STEP)
        {
            let name = format!("step_{}", step.name);
            let title = format!("Executing \"{name}\" stage of the job script");
            let script = generate(&self.script_spec(dirs, vars, &step.script));
            log.section_start(&name, &title);
            let outcome = self
                .run_step(
                    executor,
                    prepared,
                    &name,
                    script,
                    script_deadline,
                    dirs,
                    log,
                    self.cancel.clone(),
                )
                .await;
            log.section_end(&name);
            status = self.step_status(outcome, script_deadline);
            if !status.is_success() {
                break;
            }
        }
        // The job timeout ends the job where it is; a cancel still lets
        // after_script clean up (GitLab 17.0 and later).
        if self.aborted(&status) && status != JobStatus::Canceled {
            return status;
        }

        if let Some(after) = self
            .payload
            .step(AFTER_SCRIPT_STEP)
            .filter(|s| !s.script.is_empty())
        {
            let spec = self.script_spec(dirs, vars, &after.script);
            let script = generate_after_script(&spec, status.ci_job_status());
            let after_deadline = self.after_script_deadline(vars, log);
            log.section_start("after_script", "Running after_script");
            // after_script answers only to an abort: it must be able to run
            // after a cancel.
            let outcome = self
                .run_step(
                    executor,
                    prepared,
                    "after_script",
                    script,
                    after_deadline,
                    dirs,
                    log,
                    self.abort.clone(),
                )
                .await;
            log.section_end("after_script");
            match outcome {
                Ok(o) if o.exit == ExitKind::Cancelled => return JobStatus::Canceled,
                Ok(_) if status == JobStatus::Canceled => {}
                Ok(o) if o.exit == ExitKind::TimedOut && Instant::now() >= self.deadline => {
                    return self.job_timeout();
                }
                Ok(o) if !o.exit.is_success() => {
                    log.warning(&format!(
                        "after_script failed, but job will continue unaffected: {}",
                        exit_text(o.exit)
                    ));
                }
                Ok(_) => {}
                Err(err) => log.warning(&format!(
                    "after_script failed, but job will continue unaffected: {err}"
                )),
            }
        }
        status
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step<E: Executor>(
        &self,
        executor: &E,
        prepared: &mut E::Prepared,
        stage: &str,
        script: String,
        deadline: Instant,
        dirs: &Dirs,
        log: &mut JobLog,
        cancel: CancellationToken,
    ) -> Result<StepOutcome, runner_executors::ExecutorError> {
        let mut request = StepRequest::new(stage, script, &dirs.project);
        request.shell = self.shell;
        request.timeout = Some(deadline.saturating_duration_since(Instant::now()));
        let mut sink = LogSink(log);
        let outcome = executor
            .run_step(prepared, request, &mut sink, cancel)
            .await;
        if let Ok(o) = &outcome {
            for warning in &o.warnings {
                log.warning(warning);
            }
        }
        outcome
    }

    fn step_status(
        &self,
        outcome: Result<StepOutcome, runner_executors::ExecutorError>,
        script_deadline: Instant,
    ) -> JobStatus {
        match outcome {
            Err(err) => JobStatus::system_failure(err.to_string()),
            Ok(o) => match o.exit {
                ExitKind::Code(0) => JobStatus::Success,
                ExitKind::Code(code) => JobStatus::script_failure(code),
                ExitKind::Signal(sig) => JobStatus::Failed {
                    reason: FailureReason::ScriptFailure,
                    exit_code: Some(128 + sig),
                    message: format!("exit code {} (killed by signal {sig})", 128 + sig),
                },
                ExitKind::Cancelled => JobStatus::Canceled,
                ExitKind::TimedOut if script_deadline < self.deadline => JobStatus::Failed {
                    reason: FailureReason::JobExecutionTimeout,
                    exit_code: None,
                    message: "script timeout context: deadline exceeded".to_owned(),
                },
                ExitKind::TimedOut => self.job_timeout(),
            },
        }
    }

    fn job_timeout(&self) -> JobStatus {
        JobStatus::Failed {
            reason: FailureReason::JobExecutionTimeout,
            exit_code: None,
            message: format!(
                "execution took longer than {} seconds",
                self.timeout.as_secs()
            ),
        }
    }

    /// The job timeout and cancellation end a job on the spot: no
    /// after_script, no cache, no uploads.
    fn aborted(&self, status: &JobStatus) -> bool {
        match status {
            JobStatus::Canceled => true,
            JobStatus::Failed {
                reason: FailureReason::JobExecutionTimeout,
                ..
            } => Instant::now() >= self.deadline,
            _ => false,
        }
    }

    /// `RUNNER_SCRIPT_TIMEOUT` bounds the scripts only; it cannot extend
    /// the job timeout.
    fn script_deadline(&self, vars: &JobVars, log: &mut JobLog) -> Instant {
        match setting_duration(vars, "RUNNER_SCRIPT_TIMEOUT", log) {
            Some(limit) if Instant::now() + limit < self.deadline => Instant::now() + limit,
            Some(_) => {
                log.warning(
                    "RUNNER_SCRIPT_TIMEOUT is longer than the job timeout; the job timeout applies",
                );
                self.deadline
            }
            None => self.deadline,
        }
    }

    fn after_script_deadline(&self, vars: &JobVars, log: &mut JobLog) -> Instant {
        let limit = setting_duration(vars, "RUNNER_AFTER_SCRIPT_TIMEOUT", log)
            .unwrap_or(DEFAULT_AFTER_SCRIPT_TIMEOUT);
        (Instant::now() + limit).min(self.deadline)
    }

    /// The language of the scripts. Which shell runs them in a container
    /// is only known there (bash when the image has it, else sh, as
    /// GitLab picks), so container scripts are POSIX, which both run.
    fn dialect(&self) -> Dialect {
        match (self.executor_name, self.shell) {
            ("docker", _) | (_, ShellKind::Sh) => Dialect::Posix,
            (_, ShellKind::Bash) => Dialect::Bash,
        }
    }

    fn script_spec(&self, dirs: &Dirs, vars: &JobVars, commands: &[String]) -> ScriptSpec {
        ScriptSpec {
            project_dir: dirs.script_project.to_string_lossy().into_owned(),
            tmp_dir: dirs.script_tmp.to_string_lossy().into_owned(),
            variables: vars.script_vars(),
            commands: commands.to_vec(),
            dialect: self.dialect(),
            debug_trace: vars.get("CI_DEBUG_TRACE").as_deref() == Some("true"),
        }
    }

    fn cache_context<'d>(&'d self, dirs: &'d Dirs) -> CacheContext<'d> {
        CacheContext {
            cache_dir: &self.settings.cache_dir,
            project_path: &self.payload.job_info.project_full_path,
            project_dir: &dirs.project,
            job_name: &self.payload.job_info.name,
            git_ref: &self.payload.git_info.git_ref,
        }
    }

    fn has_cache_to_save(&self, succeeded: bool) -> bool {
        self.payload.cache.iter().any(|c| {
            c.policy != "pull"
                && match c.when.as_str() {
                    "always" => true,
                    "on_failure" => !succeeded,
                    _ => succeeded,
                }
        })
    }

    fn has_artifacts_to_upload(&self, succeeded: bool) -> bool {
        self.payload
            .artifacts
            .iter()
            .any(|a| match a.when.as_deref().unwrap_or("on_success") {
                "always" => true,
                "on_failure" => !succeeded,
                _ => succeeded,
            })
    }

    /// Removes what the scripts left in the job's temporary directory:
    /// file variables (secrets) and the `GITLAB_ENV` file.
    fn cleanup_file_variables(&self, dirs: &Dirs, log: &mut JobLog) {
        if !dirs.tmp.exists() {
            return;
        }
        if let Err(err) = std::fs::remove_dir_all(&dirs.tmp) {
            log.warning(&format!("cannot remove {}: {err}", dirs.tmp.display()));
        }
    }
}

/// The job's temporary directory: beside the project, never inside it, so
/// artifacts and `git clean` never see it.
pub fn tmp_dir_of(project_dir: &Path) -> PathBuf {
    let mut name = project_dir.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// A duration setting such as `RUNNER_SCRIPT_TIMEOUT` (`1h30m`, `90s`, Go
/// duration syntax); unparsable or negative values warn and are ignored.
fn setting_duration(vars: &JobVars, key: &str, log: &mut JobLog) -> Option<Duration> {
    let text = vars.setting(key)?;
    match parse_go_duration(&text) {
        Some(d) => Some(d),
        None => {
            log.warning(&format!(
                "ignoring {key}={text:?}: not a duration such as 10m or 1h30m"
            ));
            None
        }
    }
}

/// Go's `time.ParseDuration`, for the non-negative values a timeout takes:
/// a sequence of decimal numbers with units `ns`, `us`, `ms`, `s`, `m`, `h`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

fn exit_text(exit: ExitKind) -> String {
    match exit {
        ExitKind::Code(code) => format!("exit code {code}"),
        ExitKind::Signal(sig) => format!("killed by signal {sig}"),
        ExitKind::TimedOut => "timed out".to_owned(),
        ExitKind::Cancelled => "canceled".to_owned(),
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// Runs synchronous stage work (archives, file copies) without stalling
/// the other jobs' tasks on this runtime thread.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Feeds executor output into the job log.
struct LogSink<'a>(&'a mut JobLog);

impl OutputSink for LogSink<'_> {
    fn output(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_go() {
        assert_eq!(parse_go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("-5m"), None);
        assert_eq!(parse_go_duration("5 minutes"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn the_tmp_dir_sits_beside_the_project() {
        assert_eq!(
            tmp_dir_of(Path::new("/builds/group/project")),
            PathBuf::from("/builds/group/project.tmp")
        );
    }

    #[test]
    fn after_script_sees_gitlabs_status_words() {
        assert_eq!(JobStatus::Success.ci_job_status(), "success");
        assert_eq!(JobStatus::script_failure(2).ci_job_status(), "failed");
        assert_eq!(JobStatus::Canceled.ci_job_status(), "canceled");
        let timeout = JobStatus::Failed {
            reason: FailureReason::JobExecutionTimeout,
            exit_code: None,
            message: String::new(),
        };
        assert_eq!(timeout.ci_job_status(), "timedout");
    }
}
