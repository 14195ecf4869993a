//! How the Docker executor is configured (`[runners.docker]`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// How the Docker executor runs jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerOptions {
    /// The daemon's address (`unix:///path`, `tcp://host:port`,
    /// `http://host:port`); `None` for `DOCKER_HOST`, else the default
    /// socket `unix:///var/run/docker.sock`.
    pub host: Option<String>,
    /// The image of jobs that name none (`[runners.docker] image`).
    pub default_image: Option<String>,
    /// Pull policies tried in order when a job's image names none.
    /// Default `[if-not-present]`: images built or imported locally are
    /// used as they are, and a machine without network keeps working
    /// (GitLab's default is `always`).
    pub pull_policy: Vec<PullPolicy>,
    /// Where containers see the host's builds dir (`JobEnv::builds_dir`).
    /// Default `/builds`, GitLab's path, so a job's `CI_PROJECT_DIR` reads
    /// `/builds/<namespace>/<project>`, whichever way the files get there
    /// (see `builds_transfer`).
    pub builds_mount: PathBuf,
    /// How the builds dir reaches the containers: a bind mount, or copies
    /// in and out of a volume around every step. Default
    /// [`BuildsTransfer::Auto`].
    pub builds_transfer: BuildsTransfer,
    /// Extra mounts of every job container, as in `[runners.docker]
    /// volumes`: `host:container[:mode]` binds a host path; a bare
    /// `/container/path` gets a fresh volume per job, removed by
    /// `cleanup`.
    pub volumes: Vec<String>,
    /// Time between SIGTERM and SIGKILL when a step is timed out or
    /// cancelled. GitLab waits 10 minutes; the local default is 10 seconds.
    pub term_grace: Duration,
    /// How long to wait for a container to stop after SIGKILL before
    /// reporting it. Default 10 seconds.
    pub kill_wait: Duration,
    /// How long the output may stay open after the container stopped.
    /// Default 2 seconds.
    pub output_leak_wait: Duration,
    /// Bound on waiting for a service's TCP ports to open (GitLab's
    /// `wait_for_services_timeout`, 30 seconds).
    pub service_wait: Duration,
    /// A umask the scripts run with; `None` keeps the image's.
    ///
    /// The builds dir is shared with the host, and containers run as root
    /// by default: what a job creates there is root-owned. A runner that
    /// is not root could then not clean or update the checkout. With
    /// `Some(0)` (the default when the runner is not root, as GitLab's
    /// helper does) every file and directory a job creates is writable by
    /// anyone, so the runner can still remove and replace them.
    pub umask: Option<u32>,
    /// A name that tells this runner's containers, networks and volumes
    /// from other runners' on the same daemon: the value of their
    /// `io.runner.owner` label. `remove_leftovers` only removes objects
    /// with this owner. Default `default`.
    pub owner: String,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            host: None,
            default_image: None,
            pull_policy: vec![PullPolicy::IfNotPresent],
            builds_mount: PathBuf::from("/builds"),
            builds_transfer: BuildsTransfer::Auto,
            volumes: Vec::new(),
            term_grace: Duration::from_secs(10),
            kill_wait: Duration::from_secs(10),
            output_leak_wait: Duration::from_secs(2),
            service_wait: Duration::from_secs(30),
            umask: (!rustix::process::geteuid().is_root()).then_some(0),
            owner: "default".to_owned(),
        }
    }
}

/// How the host's builds dir reaches a job's containers.
///
/// The runner does its file work (sources, cache, artifacts) on its own
/// host, in `JobEnv::builds_dir`, between the steps. A daemon on the same
/// machine can bind-mount that directory; a daemon on another machine
/// cannot: a bind mount there shows the other machine's directory of that
/// name. Copying works with both, at the cost of moving the whole builds
/// dir twice per step.
///
/// The rule of [`Auto`](BuildsTransfer::Auto): a daemon reached through a
/// unix socket (`unix://...`, which includes the default socket) runs on
/// this machine, so bind; any other address (`tcp://`, `http://`,
/// `https://`, `ssh://`) may be another machine, so copy. Set `Bind` for
/// a daemon that is local but reached over TCP, or `Copy` for a remote
/// daemon behind a forwarded unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BuildsTransfer {
    /// Bind for a unix socket, copy for anything else.
    #[default]
    Auto,
    /// Bind-mount the host's builds dir: every step sees it live.
    Bind,
    /// Copy the builds dir into a fresh volume before each step starts,
    /// and back onto the host, replacing it, once the step has stopped
    /// (whatever its end). Give each job a builds dir of its own: jobs
    /// sharing one would overwrite each other's files.
    Copy,
}

impl BuildsTransfer {
    /// The name used in settings: `auto`, `bind` or `copy`.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildsTransfer::Auto => "auto",
            BuildsTransfer::Bind => "bind",
            BuildsTransfer::Copy => "copy",
        }
    }

    /// `Bind` or `Copy` for a daemon at `host` (a `DOCKER_HOST`-style
    /// address): `Auto` decided by the rule above, the others as they are.
    pub fn for_host(self, host: &str) -> BuildsTransfer {
        match self {
            BuildsTransfer::Auto if host.trim_start().starts_with("unix://") => {
                BuildsTransfer::Bind
            }
            BuildsTransfer::Auto => BuildsTransfer::Copy,
            chosen => chosen,
        }
    }
}

impl fmt::Display for BuildsTransfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A builds transfer name that is not `auto`, `bind` or `copy`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown builds transfer {0:?}: expected auto, bind or copy")]
pub struct UnknownBuildsTransfer(pub String);

impl FromStr for BuildsTransfer {
    type Err = UnknownBuildsTransfer;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(BuildsTransfer::Auto),
            "bind" => Ok(BuildsTransfer::Bind),
            "copy" => Ok(BuildsTransfer::Copy),
            _ => Err(UnknownBuildsTransfer(s.to_owned())),
        }
    }
}

/// When to pull an image from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PullPolicy {
    /// Pull for every job; a pull failure fails the policy (a later one
    /// in the list may still accept the local copy).
    Always,
    /// Use the local image; pull only when there is none.
    IfNotPresent,
    /// Use the local image; fail when there is none.
    Never,
}

impl PullPolicy {
    /// The name used in `.gitlab-ci.yml` and `config.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::IfNotPresent => "if-not-present",
            PullPolicy::Never => "never",
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pull policy name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pull policy {0:?}: expected always, if-not-present or never")]
pub struct UnknownPullPolicy(pub String);

impl FromStr for PullPolicy {
    type Err = UnknownPullPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // GitLab accepts the names in any case and with surrounding
        // blanks (they come from YAML and TOML written by hand).
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(PullPolicy::Always),
            "if-not-present" => Ok(PullPolicy::IfNotPresent),
            "never" => Ok(PullPolicy::Never),
            _ => Err(UnknownPullPolicy(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_parse_and_print() {
        for p in [
            PullPolicy::Always,
            PullPolicy::IfNotPresent,
            PullPolicy::Never,
        ] {
            assert_eq!(p.as_str().parse::<PullPolicy>(), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(" Never ".parse::<PullPolicy>(), Ok(PullPolicy::Never));
        assert_eq!(
            "sometimes".parse::<PullPolicy>(),
            Err(UnknownPullPolicy("sometimes".into()))
        );
    }

    #[test]
    fn auto_binds_for_unix_sockets_and_copies_otherwise() {
        let auto = BuildsTransfer::Auto;
        assert_eq!(
            auto.for_host("unix:///var/run/docker.sock"),
            BuildsTransfer::Bind
        );
        for remote in [
            "tcp://127.0.0.1:2375",
            "http://docker:2375",
            "https://docker:2376",
            "ssh://user@builder",
        ] {
            assert_eq!(auto.for_host(remote), BuildsTransfer::Copy, "{remote}");
        }
        // A choice made by hand wins over the address.
        assert_eq!(
            BuildsTransfer::Bind.for_host("tcp://h:2375"),
            BuildsTransfer::Bind
        );
        assert_eq!(
            BuildsTransfer::Copy.for_host("unix:///var/run/docker.sock"),
            BuildsTransfer::Copy
        );
    }

    #[test]
    fn builds_transfers_parse_and_print() {
        for t in [
            BuildsTransfer::Auto,
            BuildsTransfer::Bind,
            BuildsTransfer::Copy,
        ] {
            assert_eq!(t.as_str().parse::<BuildsTransfer>(), Ok(t));
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(" COPY ".parse::<BuildsTransfer>(), Ok(BuildsTransfer::Copy));
        let err = "volume".parse::<BuildsTransfer>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown builds transfer \"volume\": expected auto, bind or copy"
        );
    }

    #[test]
    fn defaults_are_local_friendly() {
        let o = DockerOptions::default();
        assert_eq!(o.pull_policy, [PullPolicy::IfNotPresent]);
        assert_eq!(o.builds_mount, PathBuf::from("/builds"));
        assert_eq!(o.builds_transfer, BuildsTransfer::Auto);
        assert_eq!(o.service_wait, Duration::from_secs(30));
        // The tests run as root: files keep the image's umask.
        if rustix::process::geteuid().is_root() {
            assert_eq!(o.umask, None);
        } else {
            assert_eq!(o.umask, Some(0));
        }
    }
}
