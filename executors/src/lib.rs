//! The environments a job's scripts run in.
//!
//! This crate knows nothing of `.gitlab-ci.yml` or of the GitLab API: the
//! runner turns a job into scripts, and an executor runs each one in its
//! environment and reports how it ended.
//!
//! - [`Executor`] is the contract: `prepare`, `run_step` per stage script,
//!   `cleanup`. [`AnyExecutor`] dispatches over the executors that exist.
//! - [`shell`] runs scripts on the runner's own host (Linux).
//! - [`docker`] runs them in containers, through the Docker Engine API.
//! - `conformance` (cargo feature `conformance`) is the behaviour suite that
//!   every executor must pass.

#![warn(missing_docs)]

mod any;
mod contract;
pub mod docker;
mod error;
mod job_spec;
pub mod shell;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use any::{AnyExecutor, AnyPrepared};
pub use contract::{Executor, ExitKind, JobEnv, OutputSink, ShellKind, StepOutcome, StepRequest};
pub use error::{CopyDirection, ErrorReport, ExecutorError};
pub use job_spec::{ImageSpec, ServiceSpec};
pub use tokio_util::sync::CancellationToken;
