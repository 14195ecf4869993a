//! The shell executor: scripts run on the runner's own host.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::locate::locate_shell;
use super::step::{Timing, run_step};
use super::unix::become_child_subreaper;
use crate::{Executor, ExecutorError, JobEnv, OutputSink, StepOutcome, StepRequest};

/// How the shell executor runs steps.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShellOptions {
    /// Start the shell as a login shell (`-l`), so that it reads the
    /// profile files. GitLab's shell executor does; locally the default is
    /// off, so a job sees the environment the runner was started in.
    pub login: bool,
    /// Time between SIGTERM and SIGKILL when a step is timed out or
    /// cancelled, or has processes left when it ends. GitLab waits 10
    /// minutes; the local default is 10 seconds.
    pub term_grace: Duration,
    /// How long the output pipe may stay open after the shell exited,
    /// held by a background process, before the runner stops waiting for
    /// it and kills the holder. Default 2 seconds.
    pub output_leak_wait: Duration,
    /// How long to wait for processes to disappear after SIGKILL before
    /// reporting them. GitLab waits 10 seconds.
    pub kill_wait: Duration,
    /// Where to look for the shell, as a `PATH`-style list; `None` for the
    /// runner's own `PATH` (read when each step starts).
    pub search_path: Option<OsString>,
}

impl Default for ShellOptions {
    fn default() -> Self {
        ShellOptions {
            login: false,
            term_grace: Duration::from_secs(10),
            output_leak_wait: Duration::from_secs(2),
            kill_wait: Duration::from_secs(10),
            search_path: None,
        }
    }
}

/// Runs scripts with the host's bash or sh (Linux).
///
/// Each step runs in a process group of its own, and is tagged with a
/// unique environment variable (`RUNNER_STEP_ID`) so that processes which
/// leave the group are found too. When `run_step` returns, no process of
/// the step is alive: background processes left by a successful script
/// are killed, with a warning (GitLab's shell executor leaves them
/// running; a local runner must not leave a developer's machine littered).
///
/// Several steps (of several jobs) may run at once from one runner
/// process; they share nothing but the process-wide child-subreaper flag.
#[derive(Debug, Clone)]
pub struct ShellExecutor {
    options: ShellOptions,
}

impl ShellExecutor {
    /// A shell executor; makes the runner process a child subreaper (see
    /// `shell::unix` for why) and fails if that is impossible.
    pub fn new(options: ShellOptions) -> Result<Self, ExecutorError> {
        become_child_subreaper().map_err(ExecutorError::Subreaper)?;
        Ok(ShellExecutor { options })
    }

    /// The options this executor was made with.
    pub fn options(&self) -> &ShellOptions {
        &self.options
    }
}

/// A shell job's state between `prepare` and `cleanup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellPrepared {
    /// The job's id.
    pub job_id: String,
    /// The job's checkout directory, created by `prepare`.
    pub project_dir: PathBuf,
}

impl Executor for ShellExecutor {
    type Prepared = ShellPrepared;

    /// Creates the builds and project directories.
    async fn prepare(&self, env: &JobEnv) -> Result<ShellPrepared, ExecutorError> {
        let dirs = [env.builds_dir.clone(), env.project_dir.clone()];
        // File system calls block; keep them off the runtime's threads.
        tokio::task::spawn_blocking(move || {
            for dir in dirs {
                std::fs::create_dir_all(&dir)
                    .map_err(|source| ExecutorError::Directory { path: dir, source })?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ExecutorError::Directory {
            path: env.project_dir.clone(),
            source: e.into(),
        })??;
        Ok(ShellPrepared {
            job_id: env.job_id.clone(),
            project_dir: env.project_dir.clone(),
        })
    }

    async fn run_step(
        &self,
        _prepared: &mut ShellPrepared,
        request: StepRequest,
        sink: &mut dyn OutputSink,
        cancel: CancellationToken,
    ) -> Result<StepOutcome, ExecutorError> {
        let search_path = match &self.options.search_path {
            Some(p) => p.clone(),
            None => std::env::var_os("PATH").unwrap_or_default(),
        };
        let shell = locate_shell(request.shell, &search_path)?;
        let timing = Timing {
            term_grace: self.options.term_grace,
            output_leak_wait: self.options.output_leak_wait,
            kill_wait: self.options.kill_wait,
        };
        run_step(shell, self.options.login, timing, request, sink, cancel).await
    }

    /// Nothing to tear down: every step already cleaned up its processes,
    /// and the build directory is kept, as GitLab's shell executor keeps
    /// it (the next job of the project fetches into it).
    async fn cleanup(&self, _prepared: ShellPrepared) -> Result<(), ExecutorError> {
        Ok(())
    }
}
