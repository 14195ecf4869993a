//! How the Docker executor is configured (`[runners.docker]`).

use std::collections::BTreeMap;
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
    /// `wait_for_services_timeout`, 30 seconds). Zero does not wait at
    /// all (GitLab's `-1`).
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

    // What step containers (the job's scripts) run with.
    /// Run step containers privileged (`privileged`): every capability
    /// and every device of the host. Default false.
    pub privileged: bool,
    /// The user step containers run as (`user`): a name or uid, with an
    /// optional `:group`. `None` (the default) keeps the image's.
    pub user: Option<String>,
    /// Memory and CPU limits of step containers (`memory`, `memory_swap`,
    /// `memory_reservation`, `cpus`, `cpu_shares`, `cpuset_cpus`).
    /// Default: none.
    pub limits: ResourceLimits,
    /// Size of `/dev/shm` in bytes, for step and service containers
    /// (`shm_size`). `None` (the default) is the daemon's, 64 MiB.
    pub shm_size: Option<i64>,
    /// `host:ip` entries added to `/etc/hosts` of step and service
    /// containers (`extra_hosts`).
    pub extra_hosts: Vec<String>,
    /// DNS servers of step and service containers (`dns`); empty is the
    /// daemon's.
    pub dns: Vec<String>,
    /// DNS search domains of step and service containers (`dns_search`).
    pub dns_search: Vec<String>,
    /// The network step containers join when the job has no services
    /// (`network_mode`: `bridge`, `host`, `none`, or a network's name).
    /// `None` (the default) is the daemon's default bridge.
    ///
    /// A job with services always runs its steps and services on a
    /// network of its own, whatever this says, so that the services are
    /// reachable by their host names: what gitlab-runner does with its
    /// `FF_NETWORK_PER_BUILD` flag (which the runner always follows, as
    /// it has no legacy links).
    pub network_mode: Option<String>,
    /// Capabilities added to step containers (`cap_add`, e.g. `NET_ADMIN`).
    pub cap_add: Vec<String>,
    /// Capabilities dropped from step containers (`cap_drop`, e.g.
    /// `NET_RAW`, or `ALL`).
    pub cap_drop: Vec<String>,
    /// Security options of step containers (`security_opt`, e.g.
    /// `seccomp=unconfined`).
    pub security_opt: Vec<String>,
    /// Host devices given to step containers (`devices`), as
    /// `host_path[:container_path[:permissions]]` (permissions default
    /// `rwm`).
    pub devices: Vec<String>,
    /// tmpfs mounts of step containers (`tmpfs`): container path to mount
    /// options (`rw,noexec,size=64m`; empty for the defaults).
    pub tmpfs: BTreeMap<String, String>,
    /// Kernel parameters of step containers (`sysctls`, e.g.
    /// `net.ipv4.ip_forward = "1"`).
    pub sysctls: BTreeMap<String, String>,
    /// Keep the kernel's OOM killer away from step containers
    /// (`oom_kill_disable`); only with a `memory` limit. Default false.
    pub oom_kill_disable: bool,
    /// Extra groups of the step containers' user (`group_add`), by name
    /// or gid.
    pub group_add: Vec<String>,

    // What service containers run with.
    /// Run service containers privileged (`services_privileged`); `None`
    /// (the default) follows `privileged`.
    pub services_privileged: Option<bool>,
    /// Memory and CPU limits of service containers (`service_memory`,
    /// `service_memory_swap`, `service_memory_reservation`,
    /// `service_cpus`, `service_cpu_shares`, `service_cpuset_cpus`).
    pub service_limits: ResourceLimits,
    /// Security options of service containers (`services_security_opt`).
    pub services_security_opt: Vec<String>,
    /// Host devices given to service containers (`services_devices`), in
    /// the syntax of `devices`.
    pub services_devices: Vec<String>,
    /// tmpfs mounts of service containers (`services_tmpfs`).
    pub services_tmpfs: BTreeMap<String, String>,

    // What jobs may ask for. A refusal fails the job in `prepare`, before
    // anything is pulled or started, with an error that
    // `ExecutorError::is_configuration`.
    /// Glob patterns of the images jobs may name (`allowed_images`); empty
    /// (the default) allows every image. `*` stops at `/`, `**` crosses
    /// it (doublestar, as gitlab-runner matches). `default_image` is
    /// always allowed.
    pub allowed_images: Vec<String>,
    /// Glob patterns of the service images jobs may name
    /// (`allowed_services`); empty (the default) allows every one.
    pub allowed_services: Vec<String>,
    /// The pull policies jobs may use (`allowed_pull_policies`): of the
    /// policies a job (or `pull_policy`) asks for, only these are tried,
    /// in the job's order; a job left with none fails. Empty (the
    /// default) allows them all. gitlab-runner treats an empty list as
    /// "only `pull_policy`'s"; the agent passes that list explicitly.
    pub allowed_pull_policies: Vec<PullPolicy>,
    /// Ignore the entrypoints jobs give their image and services
    /// (`disable_entrypoint_overwrite`): the image's own entrypoint runs,
    /// and the job log says `Entrypoint override disabled`. Default false.
    pub disable_entrypoint_overwrite: bool,
    /// Most services a job may have (`services_limit`); `None` (the
    /// default) is no limit.
    pub services_limit: Option<usize>,
}

/// Memory and CPU limits of a container, in the Docker Engine's units.
/// `None` leaves a limit to the daemon (none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceLimits {
    /// Memory limit in bytes (see [`parse_memory`](super::parse_memory)).
    pub memory: Option<i64>,
    /// Memory plus swap limit in bytes; Docker's `-1` is unlimited swap.
    pub memory_swap: Option<i64>,
    /// Soft memory limit in bytes.
    pub memory_reservation: Option<i64>,
    /// CPU quota in billionths of a CPU (see
    /// [`parse_cpus`](super::parse_cpus)).
    pub nano_cpus: Option<i64>,
    /// Relative CPU weight (Docker's default is 1024).
    pub cpu_shares: Option<i64>,
    /// The CPUs the container may run on (`0-3`, `0,2`).
    pub cpuset_cpus: Option<String>,
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
            privileged: false,
            user: None,
            limits: ResourceLimits::default(),
            shm_size: None,
            extra_hosts: Vec::new(),
            dns: Vec::new(),
            dns_search: Vec::new(),
            network_mode: None,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            security_opt: Vec::new(),
            devices: Vec::new(),
            tmpfs: BTreeMap::new(),
            sysctls: BTreeMap::new(),
            oom_kill_disable: false,
            group_add: Vec::new(),
            services_privileged: None,
            service_limits: ResourceLimits::default(),
            services_security_opt: Vec::new(),
            services_devices: Vec::new(),
            services_tmpfs: BTreeMap::new(),
            allowed_images: Vec::new(),
            allowed_services: Vec::new(),
            allowed_pull_policies: Vec::new(),
            disable_entrypoint_overwrite: false,
            services_limit: None,
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
        assert!(!o.privileged, "privileged is off unless asked for");
        assert_eq!(o.services_privileged, None);
        assert!(o.allowed_images.is_empty() && o.allowed_pull_policies.is_empty());
        assert_eq!(o.services_limit, None);
        // The tests run as root: files keep the image's umask.
        if rustix::process::geteuid().is_root() {
            assert_eq!(o.umask, None);
        } else {
            assert_eq!(o.umask, Some(0));
        }
    }
}
