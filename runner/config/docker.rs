//! `[runners.docker]`: how the Docker executor runs a runner's jobs.

use serde::Deserialize;

/// When an image is pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Pull before every job.
    Always,
    /// Use a local image when there is one.
    IfNotPresent,
    /// Only ever use local images.
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::IfNotPresent => "if-not-present",
            PullPolicy::Never => "never",
        }
    }
}

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
            PullPolicy::deserialize(serde::de::value::StrDeserializer::<E>::new(v)).map(|p| vec![p])
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut policies = Vec::new();
            while let Some(p) = seq.next_element()? {
                policies.push(p);
            }
            Ok(policies)
        }
    }
    d.deserialize_any(OneOrMany)
}

/// The keys of `[runners.docker]` the runner reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DockerConfig {
    /// The image of jobs that name none.
    pub image: String,
    /// `DOCKER_HOST`-style address of the daemon; empty uses the default.
    pub host: String,
    pub privileged: bool,
    /// The user job containers run as.
    pub user: String,
    /// `/container` (a fresh volume) or `/host:/container[:ro]`.
    pub volumes: Vec<String>,
    /// Empty: a network per job when it has services.
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
    pub allowed_services: Vec<String>,
    /// Memory limit of job containers (`512m`, `4g`).
    pub memory: String,
    /// CPUs job containers may use (`1.5`).
    pub cpus: String,
    /// `host:ip` entries added to `/etc/hosts`.
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    /// Size of `/dev/shm` in bytes; 0 is the daemon's default.
    pub shm_size: u64,
    /// Do not mount a cache volume.
    pub disable_cache: bool,
    /// Where caches live inside the container.
    pub cache_dir: String,
    pub disable_entrypoint_overwrite: bool,
    /// Seconds to wait for services' ports; -1 does not wait.
    pub wait_for_services_timeout: Option<i64>,
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

    /// The policies a job asked for, limited to what this runner allows
    /// (gitlab-runner's rule: a job may only choose among
    /// `allowed_pull_policies`, or the runner's own policies when that is
    /// empty). `Err` names the refused policies.
    pub fn job_pull_policies(&self, job: &[PullPolicy]) -> Result<Vec<PullPolicy>, String> {
        if job.is_empty() {
            return Ok(self.effective_pull_policies());
        }
        let allowed = if self.allowed_pull_policies.is_empty() {
            self.effective_pull_policies()
        } else {
            self.allowed_pull_policies.clone()
        };
        let refused: Vec<&str> = job
            .iter()
            .filter(|p| !allowed.contains(p))
            .map(|p| p.as_str())
            .collect();
        if refused.is_empty() {
            Ok(job.to_vec())
        } else {
            let allowed: Vec<&str> = allowed.iter().map(|p| p.as_str()).collect();
            Err(format!(
                "pull_policy ([{}]) defined in the job is not one of the allowed_pull_policies ([{}])",
                refused.join(" "),
                allowed.join(" ")
            ))
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
        assert_eq!(
            DockerConfig::default().effective_pull_policies(),
            [PullPolicy::Always]
        );
    }
}
