//! Static dispatch over the executors that exist.
//!
//! Async trait methods are not object safe, and boxing every future would
//! cost an allocation per call for no gain: the set of executors is closed
//! and known here, so an enum is the simplest dispatch.

use tokio_util::sync::CancellationToken;

use crate::shell::{ShellExecutor, ShellPrepared};
use crate::{Executor, ExecutorError, JobEnv, OutputSink, StepOutcome, StepRequest};

/// Any executor the runner can be configured with.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyExecutor {
    /// Runs scripts on the runner's host.
    Shell(ShellExecutor),
}

/// The per-job state of an [`AnyExecutor`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyPrepared {
    /// State of a shell job.
    Shell(ShellPrepared),
}

impl Executor for AnyExecutor {
    type Prepared = AnyPrepared;

    async fn prepare(&self, env: &JobEnv) -> Result<AnyPrepared, ExecutorError> {
        match self {
            AnyExecutor::Shell(e) => e.prepare(env).await.map(AnyPrepared::Shell),
        }
    }

    async fn run_step(
        &self,
        prepared: &mut AnyPrepared,
        request: StepRequest,
        sink: &mut dyn OutputSink,
        cancel: CancellationToken,
    ) -> Result<StepOutcome, ExecutorError> {
        // A `Prepared` of another executor cannot reach here while there is
        // one variant; with more, the mismatch arm becomes an error.
        match (self, prepared) {
            (AnyExecutor::Shell(e), AnyPrepared::Shell(p)) => {
                e.run_step(p, request, sink, cancel).await
            }
        }
    }

    async fn cleanup(&self, prepared: AnyPrepared) -> Result<(), ExecutorError> {
        match (self, prepared) {
            (AnyExecutor::Shell(e), AnyPrepared::Shell(p)) => e.cleanup(p).await,
        }
    }
}
