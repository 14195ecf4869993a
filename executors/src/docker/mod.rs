//! The Docker executor: each step of a job runs in a container of the
//! job's image, through the Docker Engine API (no `docker` CLI), with the
//! host's builds dir at `/builds` (bind-mounted, or copied in and out for
//! a daemon on another machine: [`BuildsTransfer`]) and services on a
//! network of the job's.
//!
//! Paths: the runner passes HOST paths (`JobEnv`, `StepRequest::workdir`)
//! and must write CONTAINER paths into scripts; [`PathMap`] (from
//! [`DockerPrepared::paths`]) and `Executor::job_path` translate. See
//! [`DockerExecutor`].

mod cleanup;
mod client;
mod copy;
mod executor;
mod image;
mod options;
mod policy;
mod services;
mod settings;
mod step;
mod tree;
mod units;
mod wrapper;

#[cfg(test)]
mod tests;

pub use cleanup::CleanupReport;
pub use executor::{DockerExecutor, DockerPrepared, PathMap};
pub use options::{
    BuildsTransfer, DockerOptions, PullPolicy, ResourceLimits, UnknownBuildsTransfer,
    UnknownPullPolicy,
};
pub use services::{PortWait, ServiceStatus};
pub use units::{InvalidUnit, parse_cpus, parse_memory};
