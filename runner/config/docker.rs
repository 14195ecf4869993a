//! `[runners.docker]`: how the Docker executor runs a runner's jobs.

use std::collections::BTreeMap;

use serde::Deserialize;

/// When an image is pulled: the executor's own type, so the settings
/// reach it as they are.
pub use runner_executors::docker::PullPolicy;

/// One policy or a list of them, tried in order (gitlab-runner accepts
/// both forms). A visitor rather than an untagged enum, so a bad policy is
/// named in the error instead of "did not match any variant".
fn pull_policies<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PullPolicy>, D::Error> {
    struct OneOrMany;
    impl<'de> serde::de::Visitor<'de> for OneOrMany {
        type Value = Vec<PullPolicy>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a pull policy or a list of them")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            policy(v).map(|p| vec![p])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut policies = Vec::new();
            while let Some(name) = seq.next_element::<String>()? {
                policies.push(policy(&name)?);
            }
            Ok(policies)
        }
    }
    d.deserialize_any(OneOrMany)
}

/// A policy written exactly as gitlab-runner's file has it.
fn policy<E: serde::de::Error>(name: &str) -> Result<PullPolicy, E> {
    const NAMES: &[&str] = &["always", "if-not-present", "never"];
    match name {
        "always" => Ok(PullPolicy::Always),
        "if-not-present" => Ok(PullPolicy::IfNotPresent),
        "never" => Ok(PullPolicy::Never),
        other => Err(E::unknown_variant(other, NAMES)),
    }
}

/// The keys of `[runners.docker]` the runner reads. Sizes and CPU counts
/// stay text here, as written; the agent parses them when it prepares the
/// entry, so that a bad value is an error naming the entry and the key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DockerConfig {
    /// The image of jobs that name none; always allowed, whatever
    /// `allowed_images` says.
    pub image: String,
    /// `DOCKER_HOST`-style address of the daemon; empty uses the default.
    pub host: String,
    /// Run job containers privileged (and services, unless
    /// `services_privileged` says otherwise).
    pub privileged: bool,
    /// Run service containers privileged; unset follows `privileged`.
    pub services_privileged: Option<bool>,
    /// The user job containers run as.
    pub user: String,
    /// Extra groups of that user.
    pub group_add: Vec<String>,
    /// `/container` (a fresh volume) or `/host:/container[:ro]`.
    pub volumes: Vec<String>,
    /// The network of job containers when the job has no services; a job
    /// with services always gets a network of its own.
    pub network_mode: String,
    /// The runner's pull policies; empty means gitlab-runner's default,
    /// `always`.
    #[serde(deserialize_with = "pull_policies")]
    pub pull_policy: Vec<PullPolicy>,
    /// The policies a job's `image:pull_policy` may choose from; empty
    /// allows only the runner's own.
    #[serde(deserialize_with = "pull_policies")]
    pub allowed_pull_policies: Vec<PullPolicy>,
    /// Globs of the images jobs may use; empty allows every image.
    pub allowed_images: Vec<String>,
    /// Globs of the service images jobs may use; empty allows every one.
    pub allowed_services: Vec<String>,
    /// Memory limit of job containers (`512m`, `4g`).
    pub memory: String,
    /// Memory plus swap limit of job containers.
    pub memory_swap: String,
    /// Soft memory limit of job containers.
    pub memory_reservation: String,
    /// CPUs job containers may use (`1.5`).
    pub cpus: String,
    /// Relative CPU weight of job containers; 0 is Docker's default.
    pub cpu_shares: i64,
    /// The CPUs job containers may run on (`0-3`).
    pub cpuset_cpus: String,
    /// Keep the OOM killer away from job containers.
    pub oom_kill_disable: bool,
    /// The `memory` family for service containers.
    pub service_memory: String,
    pub service_memory_swap: String,
    pub service_memory_reservation: String,
    pub service_cpus: String,
    pub service_cpu_shares: i64,
    pub service_cpuset_cpus: String,
    /// `host:ip` entries added to `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    /// Size of `/dev/shm` in bytes; 0 is the daemon's default.
    pub shm_size: u64,
    /// Capabilities added to and dropped from job containers.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Security options of job containers (`seccomp=unconfined`).
    pub security_opt: Vec<String>,
    /// Security options of service containers.
    pub services_security_opt: Vec<String>,
    /// Host devices of job containers, `host[:container[:permissions]]`.
    pub devices: Vec<String>,
    /// Host devices of service containers.
    pub services_devices: Vec<String>,
    /// tmpfs mounts of job containers: path to mount options.
    pub tmpfs: BTreeMap<String, String>,
    /// tmpfs mounts of service containers.
    pub services_tmpfs: BTreeMap<String, String>,
    /// Kernel parameters of job containers.
    pub sysctls: BTreeMap<String, String>,
    /// In gitlab-runner: make the bare container paths of `volumes` (such
    /// as `/cache`) per-job volumes instead of volumes kept from job to
    /// job. This runner always gives them a fresh volume per job, so the
    /// key changes nothing; the `cache:` of jobs, kept on the runner's
    /// host, is not affected in either.
    pub disable_cache: bool,
    /// Where caches live inside the container.
    pub cache_dir: String,
    /// Ignore the entrypoints jobs give their image and services.
    pub disable_entrypoint_overwrite: bool,
    /// Seconds to wait for services' ports; -1 does not wait.
    pub wait_for_services_timeout: Option<i64>,
    /// Most services a job may have; negative is no limit.
    pub services_limit: Option<i64>,
}

impl DockerConfig {
    /// The pull policies in force: the runner's, or `always`.
    pub fn effective_pull_policies(&self) -> Vec<PullPolicy> {
        if self.pull_policy.is_empty() {
            vec![PullPolicy::Always]
        } else {
            self.pull_policy.clone()
        }
    }

    /// The policies a job may choose from: `allowed_pull_policies`, or
    /// the runner's own policies when that is empty (gitlab-runner's
    /// rule).
    pub fn allowed_pull_policies(&self) -> Vec<PullPolicy> {
        if self.allowed_pull_policies.is_empty() {
            self.effective_pull_policies()
        } else {
            self.allowed_pull_policies.clone()
        }
    }

    /// The policies a job asked for (the runner's own when it asked for
    /// none), limited to what this runner allows: the allowed ones, in
    /// the job's order, as gitlab-runner filters them. `Err` when none is
    /// left. The Docker executor applies the same rule to every job.
    pub fn job_pull_policies(&self, job: &[PullPolicy]) -> Result<Vec<PullPolicy>, String> {
        let requested = if job.is_empty() {
            self.effective_pull_policies()
        } else {
            job.to_vec()
        };
        let allowed = self.allowed_pull_policies();
        let kept: Vec<PullPolicy> = requested
            .iter()
            .copied()
            .filter(|p| allowed.contains(p))
            .collect();
        if kept.is_empty() {
            let names = |list: &[PullPolicy]| -> String {
                list.iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            Err(format!(
                "pull_policy ([{}]) defined in the job is not one of the allowed_pull_policies ([{}])",
                names(&requested),
                names(&allowed)
            ))
        } else {
            Ok(kept)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_config;

    #[test]
    fn pull_policy_takes_one_or_many_and_jobs_choose_among_the_allowed() {
        let config = parse_config(
            Path::new("config.toml"),
            "concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\n[runners.docker]\npull_policy = \"if-not-present\"\nallowed_pull_policies = [\"if-not-present\", \"never\"]\n",
        )
        .unwrap()
        .config;
        let docker = config.runners[0].docker.clone().unwrap();
        assert_eq!(docker.pull_policy, [PullPolicy::IfNotPresent]);
        assert_eq!(
            docker.allowed_pull_policies,
            [PullPolicy::IfNotPresent, PullPolicy::Never]
        );
        assert_eq!(
            docker.job_pull_policies(&[]).unwrap(),
            [PullPolicy::IfNotPresent]
        );
        assert_eq!(
            docker.job_pull_policies(&[PullPolicy::Never]).unwrap(),
            [PullPolicy::Never]
        );
        let err = docker.job_pull_policies(&[PullPolicy::Always]).unwrap_err();
        assert_eq!(
            err,
            "pull_policy ([always]) defined in the job is not one of the allowed_pull_policies ([if-not-present never])"
        );
        // The allowed ones are kept, in the job's order.
        assert_eq!(
            docker
                .job_pull_policies(&[PullPolicy::Always, PullPolicy::Never])
                .unwrap(),
            [PullPolicy::Never]
        );
        assert_eq!(
            DockerConfig::default().effective_pull_policies(),
            [PullPolicy::Always]
        );
    }

    #[test]
    fn container_settings_and_policies_load() {
        let config = parse_config(
            Path::new("config.toml"),
            "concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\n[runners.docker]\n\
             privileged = true\nservices_privileged = false\nmemory = \"4g\"\ncpus = \"1.5\"\n\
             cpu_shares = 512\nservice_memory = \"1g\"\ncap_drop = [\"NET_RAW\"]\n\
             services_limit = 2\nwait_for_services_timeout = -1\n\
             [runners.docker.tmpfs]\n\"/scratch\" = \"rw,size=64m\"\n\
             [runners.docker.sysctls]\n\"net.ipv4.ip_forward\" = \"1\"\n",
        )
        .unwrap();
        assert_eq!(config.warnings, [], "every key is known");
        let docker = config.config.runners[0].docker.clone().unwrap();
        assert!(docker.privileged);
        assert_eq!(docker.services_privileged, Some(false));
        assert_eq!(
            (docker.memory.as_str(), docker.cpus.as_str()),
            ("4g", "1.5")
        );
        assert_eq!(docker.cpu_shares, 512);
        assert_eq!(docker.service_memory, "1g");
        assert_eq!(docker.cap_drop, ["NET_RAW"]);
        assert_eq!(docker.services_limit, Some(2));
        assert_eq!(docker.wait_for_services_timeout, Some(-1));
        assert_eq!(docker.tmpfs["/scratch"], "rw,size=64m");
        assert_eq!(docker.sysctls["net.ipv4.ip_forward"], "1");
    }
}
