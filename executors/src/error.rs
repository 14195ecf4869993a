//! Failures of an executor's environment, as opposed to failures of a script.

use std::io;
use std::path::PathBuf;

/// Something went wrong with the environment a script runs in.
///
/// A script that exits non-zero, is killed by a signal, times out or is
/// cancelled is NOT an error: that is a [`StepOutcome`](crate::StepOutcome).
/// An `ExecutorError` means the runner could not run the script at all, or
/// lost control of it; GitLab reports such jobs as `runner_system_failure`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// None of the acceptable shells is installed.
    #[error("no shell found: tried {}", .tried.join(", "))]
    NoShell {
        /// The shell names looked for, in order.
        tried: Vec<String>,
    },

    /// A directory of the job could not be created or used.
    #[error("cannot use directory {}: {source}", .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The pipe that carries the script's output could not be set up.
    #[error("failed to create the output pipe: {0}")]
    Pipe(#[source] io::Error),

    /// The shell could not be started.
    #[error("failed to start {}: {source}", .shell.display())]
    Spawn {
        /// The shell binary.
        shell: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Waiting for the shell to exit failed.
    #[error("failed to wait for the shell (pid {pid}): {source}")]
    Wait {
        /// The shell's process id.
        pid: u32,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The shell survived SIGKILL for longer than the kill wait (a process
    /// stuck in the kernel, e.g. on a dead network file system).
    #[error("process {pid} did not exit {waited:?} after SIGKILL")]
    Unkillable {
        /// The process id.
        pid: u32,
        /// How long the runner waited after SIGKILL.
        waited: std::time::Duration,
    },

    /// The runner could not make itself a child subreaper.
    #[error("failed to become a child subreaper: {0}")]
    Subreaper(#[source] io::Error),

    /// The image has no shell the scripts could run with (Docker).
    #[error("no shell found in image {image}: tried {}", .tried.join(", "))]
    NoShellInImage {
        /// The image.
        image: String,
        /// The shell paths looked for, in order.
        tried: Vec<String>,
    },

    /// The Docker daemon did not answer.
    #[error("cannot reach the docker daemon at {host} ({origin}): {message}")]
    DockerUnreachable {
        /// The daemon's address, e.g. `unix:///var/run/docker.sock`.
        host: String,
        /// Where the address came from, and what to do about it.
        origin: String,
        /// The connection error.
        message: String,
    },

    /// A Docker API call failed.
    #[error("docker: failed to {action}: {message}")]
    Docker {
        /// What the runner was doing, e.g. `create the container of step step_script`.
        action: String,
        /// The daemon's answer, or the connection error.
        message: String,
    },

    /// Pulling an image failed.
    #[error("failed to pull image {image}: {message}")]
    ImagePull {
        /// The image.
        image: String,
        /// The registry's (or the daemon's) answer.
        message: String,
        /// What to do about it, when there is something obvious (see
        /// [`ExecutorError::hint`]).
        hint: Option<String>,
    },

    /// An image is not present locally and no pull policy allows pulling it.
    #[error("image {image} is not present locally and the pull policy is {policy}")]
    ImageNotPresent {
        /// The image.
        image: String,
        /// The pull policy that forbade pulling (`never`).
        policy: String,
    },

    /// A pull policy of an image is not one Docker knows.
    #[error(
        "unknown pull policy {value:?} for image {image}: expected always, if-not-present or never"
    )]
    PullPolicy {
        /// The image.
        image: String,
        /// The policy given.
        value: String,
    },

    /// The job has no image and the executor no default one.
    #[error(
        "no image to run job {job_id} in: the job names none and the docker executor has no default image"
    )]
    NoImage {
        /// The job.
        job_id: String,
    },

    /// A host path the job needs is outside the directory shared with the
    /// containers.
    #[error("{} is outside the builds dir {}, the only host directory containers see", .path.display(), .builds_dir.display())]
    OutsideBuildsDir {
        /// The path.
        path: PathBuf,
        /// The builds dir (bind-mounted into every container, or copied).
        builds_dir: PathBuf,
    },

    /// Copying the builds dir into or out of a step's container failed
    /// (Docker, when the builds dir is copied rather than bind-mounted).
    /// Out of the container, the host's builds dir is left as it was
    /// before the step.
    #[error(
        "failed to copy the builds dir {} {direction} container {container}: {message}",
        .builds_dir.display()
    )]
    BuildsCopy {
        /// The host's builds dir.
        builds_dir: PathBuf,
        /// The step's container.
        container: String,
        /// Which way the copy went.
        direction: CopyDirection,
        /// What went wrong: the daemon's answer or the file system's.
        message: String,
    },

    /// A container kept running after SIGKILL for longer than the kill wait.
    #[error("container {container} did not stop {waited:?} after SIGKILL")]
    ContainerUnkillable {
        /// The container's name.
        container: String,
        /// How long the runner waited after SIGKILL.
        waited: std::time::Duration,
    },

    /// A `volumes` entry of the Docker options is malformed.
    #[error("invalid docker volume {spec:?}: {reason}")]
    Volume {
        /// The entry.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The job's image, or one of its services, is not on the list the
    /// runner allows (`allowed_images`, `allowed_services`).
    #[error("the {image:?} image is not present on list of allowed {list}: {}", .allowed.join(", "))]
    ImageNotAllowed {
        /// The image, as the job named it.
        image: String,
        /// `images` or `services`: which list it was checked against.
        list: String,
        /// The list's patterns.
        allowed: Vec<String>,
    },

    /// None of the pull policies the job asked for is allowed by the
    /// runner (`allowed_pull_policies`).
    #[error(
        "pull_policy ([{}]) defined in the job is not one of the allowed_pull_policies ([{}])",
        join_policies(.requested),
        join_policies(.allowed)
    )]
    PullPolicyNotAllowed {
        /// The policies the job asked for.
        requested: Vec<String>,
        /// The policies the runner allows.
        allowed: Vec<String>,
    },

    /// The job has more services than the runner allows (`services_limit`).
    #[error("too many services requested: {requested}, only {allowed} allowed (services_limit)")]
    TooManyServices {
        /// How many services the job has.
        requested: usize,
        /// The limit.
        allowed: usize,
    },

    /// A setting of the Docker executor has a value it cannot use.
    #[error("invalid docker setting {key} {value:?}: {reason}")]
    InvalidSetting {
        /// The setting, by its `[runners.docker]` name (`devices`).
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A job prepared by one kind of executor was handed to another.
    #[error("the job was prepared by another kind of executor")]
    WrongExecutor,
}

impl ExecutorError {
    /// One line telling the user how to get past the error, for the few
    /// errors with an obvious way: an image that is not on the machine
    /// and cannot be pulled because no registry is reachable.
    pub fn hint(&self) -> Option<&str> {
        match self {
            ExecutorError::ImagePull { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// Whether the runner's configuration, rather than the environment,
    /// refused the job: an image or service not allowed, a pull policy
    /// not allowed, too many services, a setting that cannot be used.
    /// GitLab reports such jobs as `runner_configuration_error`.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            ExecutorError::ImageNotAllowed { .. }
                | ExecutorError::PullPolicyNotAllowed { .. }
                | ExecutorError::TooManyServices { .. }
                | ExecutorError::InvalidSetting { .. }
                | ExecutorError::Volume { .. }
        )
    }

    /// The longer account gitlab-runner gives of some errors in the job
    /// log, before the job's final line: for an image that is not
    /// allowed, the list of what is.
    pub fn report(&self) -> Option<ErrorReport> {
        match self {
            ExecutorError::ImageNotAllowed {
                image,
                list,
                allowed,
            } => {
                let mut lines: Vec<String> = allowed.iter().map(|a| format!("- {a}")).collect();
                lines.push(String::new());
                lines.push(
                    "Please check runner's allowed_images configuration: \
                     https://docs.gitlab.com/runner/configuration/advanced-configuration.html"
                        .to_owned(),
                );
                Some(ErrorReport {
                    headline: format!(
                        "The {image:?} image is not present on list of allowed {list}:"
                    ),
                    lines,
                })
            }
            _ => None,
        }
    }
}

/// What the job log shows of an error besides its one-line message (see
/// [`ExecutorError::report`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// The first line, an error (`ERROR: ...` in the log).
    pub headline: String,
    /// The lines after it, plain.
    pub lines: Vec<String>,
}

/// Policies as gitlab-runner prints a list of them: separated by spaces.
fn join_policies(policies: &[String]) -> String {
    policies.join(" ")
}

/// Which way a copy of the builds dir went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyDirection {
    /// From the host into the step's container, before the step.
    IntoContainer,
    /// From the step's container back onto the host, after the step.
    OutOfContainer,
}

impl std::fmt::Display for CopyDirection {
    /// The words between the builds dir and the container in
    /// [`ExecutorError::BuildsCopy`]'s message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CopyDirection::IntoContainer => "into",
            CopyDirection::OutOfContainer => "back from",
        })
    }
}
