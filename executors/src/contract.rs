//! What every executor offers the runner, and the values that cross it.
//!
//! The runner drives a job as GitLab does: `prepare` once, then one
//! `run_step` per stage script (`get_sources`, `step_script`,
//! `after_script`, ...), then `cleanup`. The runner generates the scripts;
//! an executor only runs them and reports how they ended.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{ExecutorError, ImageSpec, ServiceSpec};

/// An environment that runs a job's scripts.
///
/// Methods return `Send` futures so that a runner can drive several jobs on
/// a multi-threaded runtime (`tokio::spawn` one task per job). The trait
/// uses native async functions in traits; dispatch over the executors that
/// exist is done by [`AnyExecutor`](crate::AnyExecutor), not by `dyn`.
pub trait Executor: Send + Sync {
    /// Per-job state kept between `prepare` and `cleanup` (for a shell
    /// executor, the job's directories; for Docker, its containers).
    type Prepared: Send;

    /// Sets up the environment of one job.
    fn prepare(
        &self,
        env: &JobEnv,
    ) -> impl Future<Output = Result<Self::Prepared, ExecutorError>> + Send;

    /// Runs one stage script to its end and streams its output to `sink`.
    ///
    /// Returns when the script has ended (exit, signal, timeout or
    /// cancellation) AND, for executors that promise it, when no process
    /// started by the script is alive any more. A failing script is an
    /// `Ok` outcome; `Err` means the environment failed.
    fn run_step(
        &self,
        prepared: &mut Self::Prepared,
        request: StepRequest,
        sink: &mut dyn OutputSink,
        cancel: CancellationToken,
    ) -> impl Future<Output = Result<StepOutcome, ExecutorError>> + Send;

    /// Tears down the environment of one job.
    fn cleanup(
        &self,
        prepared: Self::Prepared,
    ) -> impl Future<Output = Result<(), ExecutorError>> + Send;

    /// Where the job's scripts see `host_path`, a path on the runner's
    /// host (in the builds dir); `None` when they cannot see it at all.
    ///
    /// The runner works on the host (sources, cache, artifacts) but
    /// generates scripts that run in the executor's environment: paths it
    /// writes into a script (`cd`, `CI_PROJECT_DIR`, file variables) go
    /// through this. The shell executor sees the host as it is; the Docker
    /// executor sees the builds dir at its mount point (`/builds`).
    fn job_path(&self, prepared: &Self::Prepared, host_path: &Path) -> Option<PathBuf> {
        let _ = prepared;
        Some(host_path.to_owned())
    }

    /// Variables only the executor knows, added to the job's
    /// (`CI_BUILD_NETWORK_NAME` for a job network).
    fn job_variables(&self, prepared: &Self::Prepared) -> Vec<(String, String)> {
        let _ = prepared;
        Vec::new()
    }

    /// What helps understand a failed job beyond its own output: for the
    /// Docker executor, the last lines each service printed. Each entry is
    /// a title and its text.
    fn failure_report(
        &self,
        prepared: &Self::Prepared,
    ) -> impl Future<Output = Vec<(String, String)>> + Send {
        let _ = prepared;
        async { Vec::new() }
    }
}

/// What `prepare` needs to know about a job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobEnv {
    /// The job's id (GitLab's `CI_JOB_ID`, or a local id).
    pub job_id: String,
    /// The root of the build directories (GitLab's `builds_dir`).
    pub builds_dir: PathBuf,
    /// The job's checkout (`CI_PROJECT_DIR`), usually inside `builds_dir`.
    pub project_dir: PathBuf,
    /// The image to run the scripts in (GitLab's `image:`); `None` for the
    /// executor's default. Ignored by the shell executor.
    pub image: Option<ImageSpec>,
    /// Services to start beside the job (GitLab's `services:`). Ignored by
    /// the shell executor.
    pub services: Vec<ServiceSpec>,
    /// The environment every service gets (GitLab gives services the
    /// job's public and internal variables); each service's own
    /// `variables` win over these.
    pub service_env: Vec<(String, String)>,
}

impl JobEnv {
    /// A job environment with the given id and directories.
    pub fn new(
        job_id: impl Into<String>,
        builds_dir: impl Into<PathBuf>,
        project_dir: impl Into<PathBuf>,
    ) -> Self {
        JobEnv {
            job_id: job_id.into(),
            builds_dir: builds_dir.into(),
            project_dir: project_dir.into(),
            image: None,
            services: Vec::new(),
            service_env: Vec::new(),
        }
    }

    /// Sets the image to run the scripts in.
    pub fn with_image(mut self, image: ImageSpec) -> Self {
        self.image = Some(image);
        self
    }

    /// Adds a service.
    pub fn with_service(mut self, service: ServiceSpec) -> Self {
        self.services.push(service);
        self
    }

    /// Adds variables to the environment of every service.
    pub fn with_service_env<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.service_env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }
}

/// The shell a script was generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ShellKind {
    /// GNU bash; an executor may fall back to `sh` when bash is absent, as
    /// GitLab's shell detection does, and says so in the outcome's warnings.
    #[default]
    Bash,
    /// A POSIX `sh`.
    Sh,
}

/// One stage script to run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepRequest {
    /// GitLab's stage name: `get_sources`, `step_script`, `after_script`...
    pub stage: String,
    /// The whole generated script, fed to the shell on its standard input.
    pub script: String,
    /// Which shell the script is written for.
    pub shell: ShellKind,
    /// Variables added to the environment; they win over the runner's own.
    pub env: Vec<(String, String)>,
    /// The directory the shell starts in.
    pub workdir: PathBuf,
    /// Bound on the step's run time; `None` for no bound.
    pub timeout: Option<Duration>,
}

impl StepRequest {
    /// A bash step with no extra variables and no timeout.
    pub fn new(
        stage: impl Into<String>,
        script: impl Into<String>,
        workdir: impl Into<PathBuf>,
    ) -> Self {
        StepRequest {
            stage: stage.into(),
            script: script.into(),
            shell: ShellKind::Bash,
            env: Vec::new(),
            workdir: workdir.into(),
            timeout: None,
        }
    }
}

/// Receives a step's output as it is produced.
///
/// Bytes arrive in the order the processes wrote them, standard output and
/// standard error interleaved exactly. Chunks have arbitrary boundaries:
/// a line, or a UTF-8 character, may be split across two calls. The sink is
/// called on the task that runs the step, so it should be quick (buffer, or
/// hand off to a channel) and must not block.
pub trait OutputSink: Send {
    /// Takes the next chunk of output.
    fn output(&mut self, bytes: &[u8]);
}

impl OutputSink for Vec<u8> {
    fn output(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl<F: FnMut(&[u8]) + Send> OutputSink for F {
    fn output(&mut self, bytes: &[u8]) {
        self(bytes)
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepOutcome {
    /// The script's end.
    pub exit: ExitKind,
    /// Wall time from the start of `run_step` until it returned, including
    /// the clean-up of left-over processes.
    pub duration: Duration,
    /// Things the user should know that did not change the result, e.g.
    /// `output pipe held open by a background process`.
    pub warnings: Vec<String>,
}

/// The end of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitKind {
    /// The shell exited with this code.
    Code(i32),
    /// The shell was killed by this signal (not sent by the runner).
    Signal(i32),
    /// The step ran longer than its timeout and was killed.
    TimedOut,
    /// The step was cancelled and killed.
    Cancelled,
}

impl ExitKind {
    /// True only for `Code(0)`.
    pub fn is_success(self) -> bool {
        self == ExitKind::Code(0)
    }
}
