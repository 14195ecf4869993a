//! Static dispatch over the executors that exist.
//!
//! Async trait methods are not object safe, and boxing every future would
//! cost an allocation per call for no gain: the set of executors is closed
//! and known here, so an enum is the simplest dispatch.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::docker::{DockerExecutor, DockerPrepared};
use crate::shell::{ShellExecutor, ShellPrepared};
use crate::{Executor, ExecutorError, JobEnv, OutputSink, StepOutcome, StepRequest};

/// Any executor the runner can be configured with.
// One per runner, and one prepared state per job: their size does not
// matter, and boxing would only add an indirection to every call.
#[expect(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyExecutor {
    /// Runs scripts on the runner's host.
    Shell(ShellExecutor),
    /// Runs scripts in Docker containers.
    Docker(DockerExecutor),
}

/// The per-job state of an [`AnyExecutor`].
#[expect(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyPrepared {
    /// State of a shell job.
    Shell(ShellPrepared),
    /// State of a Docker job.
    Docker(DockerPrepared),
}

impl Executor for AnyExecutor {
    type Prepared = AnyPrepared;

    async fn prepare(&self, env: &JobEnv) -> Result<AnyPrepared, ExecutorError> {
        match self {
            AnyExecutor::Shell(e) => e.prepare(env).await.map(AnyPrepared::Shell),
            AnyExecutor::Docker(e) => e.prepare(env).await.map(AnyPrepared::Docker),
        }
    }

    async fn run_step(
        &self,
        prepared: &mut AnyPrepared,
        request: StepRequest,
        sink: &mut dyn OutputSink,
        cancel: CancellationToken,
    ) -> Result<StepOutcome, ExecutorError> {
        match (self, prepared) {
            (AnyExecutor::Shell(e), AnyPrepared::Shell(p)) => {
                e.run_step(p, request, sink, cancel).await
            }
            (AnyExecutor::Docker(e), AnyPrepared::Docker(p)) => {
                e.run_step(p, request, sink, cancel).await
            }
            _ => Err(ExecutorError::WrongExecutor),
        }
    }

    async fn cleanup(&self, prepared: AnyPrepared) -> Result<(), ExecutorError> {
        match (self, prepared) {
            (AnyExecutor::Shell(e), AnyPrepared::Shell(p)) => e.cleanup(p).await,
            (AnyExecutor::Docker(e), AnyPrepared::Docker(p)) => e.cleanup(p).await,
            _ => Err(ExecutorError::WrongExecutor),
        }
    }

    fn job_variables(&self, prepared: &AnyPrepared) -> Vec<(String, String)> {
        match (self, prepared) {
            (AnyExecutor::Shell(e), AnyPrepared::Shell(p)) => e.job_variables(p),
            (AnyExecutor::Docker(e), AnyPrepared::Docker(p)) => e.job_variables(p),
            _ => Vec::new(),
        }
    }

    async fn failure_report(&self, prepared: &AnyPrepared) -> Vec<(String, String)> {
        match (self, prepared) {
            (AnyExecutor::Shell(e), AnyPrepared::Shell(p)) => e.failure_report(p).await,
            (AnyExecutor::Docker(e), AnyPrepared::Docker(p)) => e.failure_report(p).await,
            _ => Vec::new(),
        }
    }

    fn job_path(&self, prepared: &AnyPrepared, host_path: &Path) -> Option<PathBuf> {
        match (self, prepared) {
            (AnyExecutor::Shell(e), AnyPrepared::Shell(p)) => e.job_path(p, host_path),
            (AnyExecutor::Docker(e), AnyPrepared::Docker(p)) => e.job_path(p, host_path),
            _ => None,
        }
    }
}
