//! One `[[runners]]` entry, with gitlab-runner's defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::docker::DockerConfig;
use super::values::{self, GoDuration, Timestamp};

/// gitlab-runner's defaults for `[[runners]]` keys.
pub mod defaults {
    use std::time::Duration;

    /// Job requests in flight at once.
    pub const REQUEST_CONCURRENCY: u32 = 1;
    /// The largest job log sent, in KiB.
    pub const OUTPUT_LIMIT_KIB: u32 = 4096;
    /// Failed job requests in a row before the runner pauses.
    pub const UNHEALTHY_REQUESTS_LIMIT: u32 = 3;
    /// How long an unhealthy runner pauses.
    pub const UNHEALTHY_INTERVAL: Duration = Duration::from_secs(3600);
    /// Attempts at sending a job's final state.
    pub const JOB_STATUS_FINAL_UPDATE_RETRY_LIMIT: u32 = 10;
    /// `builds_dir` and `cache_dir` inside Docker job containers.
    pub const DOCKER_BUILDS_DIR: &str = "/builds";
    pub const DOCKER_CACHE_DIR: &str = "/cache";
}

/// Every executor gitlab-runner knows. Only `shell` and `docker` run jobs
/// here; the others are read so that a file written for gitlab-runner
/// loads, and refused when a job would need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    Shell,
    Docker,
    DockerWindows,
    #[serde(rename = "docker+machine")]
    DockerMachine,
    DockerAutoscaler,
    Instance,
    Kubernetes,
    Custom,
    Ssh,
    Parallels,
    Virtualbox,
}

impl ExecutorKind {
    /// Whether this runner can run jobs with it.
    pub fn is_supported(self) -> bool {
        matches!(self, ExecutorKind::Shell | ExecutorKind::Docker)
    }

    /// The name written in `config.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::Shell => "shell",
            ExecutorKind::Docker => "docker",
            ExecutorKind::DockerWindows => "docker-windows",
            ExecutorKind::DockerMachine => "docker+machine",
            ExecutorKind::DockerAutoscaler => "docker-autoscaler",
            ExecutorKind::Instance => "instance",
            ExecutorKind::Kubernetes => "kubernetes",
            ExecutorKind::Custom => "custom",
            ExecutorKind::Ssh => "ssh",
            ExecutorKind::Parallels => "parallels",
            ExecutorKind::Virtualbox => "virtualbox",
        }
    }

    /// Whether jobs run in containers whose paths are not the host's (so
    /// directories default to `/builds` and `/cache`).
    fn is_container(self) -> bool {
        matches!(
            self,
            ExecutorKind::Docker
                | ExecutorKind::DockerWindows
                | ExecutorKind::DockerMachine
                | ExecutorKind::DockerAutoscaler
                | ExecutorKind::Kubernetes
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerShell {
    Bash,
    Sh,
    Pwsh,
    Powershell,
}

impl RunnerShell {
    /// The name written in `config.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerShell::Bash => "bash",
            RunnerShell::Sh => "sh",
            RunnerShell::Pwsh => "pwsh",
            RunnerShell::Powershell => "powershell",
        }
    }
}

/// `[runners.custom_build_dir]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CustomBuildDir {
    /// Whether `GIT_CLONE_PATH` may be used; unset means the executor's
    /// default (off for shell, on for docker).
    pub enabled: Option<bool>,
}

/// `[runners.cache]`: only the local cache is implemented; the keys of the
/// distributed cache are read so files written for gitlab-runner load.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// `s3`, `gcs`, `azure`; empty keeps caches on this machine.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Shared")]
    pub shared: bool,
    /// Bigger archives are not uploaded; 0 is no limit.
    #[serde(rename = "MaxUploadedArchiveSize")]
    pub max_uploaded_archive_size: u64,
}

/// One `[[runners]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RunnerConfig {
    pub name: String,
    pub url: String,
    pub id: Option<u64>,
    /// The runner authentication token; a secret.
    pub token: String,
    /// When the token was obtained; `None` when unknown.
    #[serde(deserialize_with = "values::optional_timestamp")]
    pub token_obtained_at: Option<Timestamp>,
    /// When the token expires; `None` when it does not.
    #[serde(deserialize_with = "values::optional_timestamp")]
    pub token_expires_at: Option<Timestamp>,
    #[serde(rename = "tls-ca-file")]
    pub tls_ca_file: Option<String>,
    #[serde(rename = "tls-cert-file")]
    pub tls_cert_file: Option<String>,
    #[serde(rename = "tls-key-file")]
    pub tls_key_file: Option<String>,
    pub executor: Option<ExecutorKind>,
    pub shell: Option<RunnerShell>,
    /// Most jobs of this runner at once; 0 leaves it to `concurrent`.
    pub limit: u32,
    /// Most job requests in flight; 0 means the default. See
    /// [`RunnerConfig::request_concurrency`].
    pub request_concurrency: u32,
    /// Wait the full `check_interval` between this runner's requests,
    /// even right after it received a job.
    pub strict_check_interval: bool,
    /// The largest job log sent, in KiB; 0 means the default. See
    /// [`RunnerConfig::output_limit_bytes`].
    pub output_limit: u32,
    pub builds_dir: Option<String>,
    pub cache_dir: Option<String>,
    pub clone_url: Option<String>,
    /// `KEY=VALUE` variables added to every job.
    pub environment: Vec<String>,
    pub pre_get_sources_script: String,
    pub post_get_sources_script: String,
    pub pre_build_script: String,
    pub post_build_script: String,
    pub unhealthy_requests_limit: Option<u32>,
    pub unhealthy_interval: Option<GoDuration>,
    pub job_status_final_update_retry_limit: Option<u32>,
    pub prepare_timeout: Option<GoDuration>,
    pub get_sources_timeout: Option<GoDuration>,
    pub debug_trace_disabled: bool,
    pub safe_directory_checkout: Option<bool>,
    pub clean_git_config: Option<bool>,
    /// Labels reported with this runner's metrics.
    pub labels: BTreeMap<String, String>,
    pub custom_build_dir: CustomBuildDir,
    pub feature_flags: BTreeMap<String, bool>,
    pub cache: Option<CacheConfig>,
    pub docker: Option<DockerConfig>,
}

impl RunnerConfig {
    /// Job requests in flight at once: `request_concurrency`, 1 when 0.
    pub fn request_concurrency(&self) -> u32 {
        match self.request_concurrency {
            0 => defaults::REQUEST_CONCURRENCY,
            n => n,
        }
    }

    /// The output limit in bytes: `output_limit` KiB, 4096 KiB when 0.
    pub fn output_limit_bytes(&self) -> usize {
        let kib = match self.output_limit {
            0 => defaults::OUTPUT_LIMIT_KIB,
            n => n,
        };
        kib as usize * 1024
    }

    /// Failed requests in a row before the runner pauses; 3 when unset or 0.
    pub fn unhealthy_requests_limit(&self) -> u32 {
        match self.unhealthy_requests_limit {
            None | Some(0) => defaults::UNHEALTHY_REQUESTS_LIMIT,
            Some(n) => n,
        }
    }

    /// How long an unhealthy runner pauses; 1 hour when unset or 0.
    pub fn unhealthy_interval(&self) -> Duration {
        match self.unhealthy_interval {
            Some(GoDuration(d)) if !d.is_zero() => d,
            _ => defaults::UNHEALTHY_INTERVAL,
        }
    }

    /// Attempts at sending a job's final state; 10 when unset or 0.
    pub fn job_status_final_update_retry_limit(&self) -> u32 {
        match self.job_status_final_update_retry_limit {
            None | Some(0) => defaults::JOB_STATUS_FINAL_UPDATE_RETRY_LIMIT,
            Some(n) => n,
        }
    }

    /// The limit of the prepare stage; `None` (unset or 0) leaves only the
    /// job timeout.
    pub fn prepare_timeout(&self) -> Option<Duration> {
        self.prepare_timeout
            .map(GoDuration::get)
            .filter(|d| !d.is_zero())
    }

    /// The limit of the get_sources stage; `None` (unset or 0) leaves only
    /// the job timeout.
    pub fn get_sources_timeout(&self) -> Option<Duration> {
        self.get_sources_timeout
            .map(GoDuration::get)
            .filter(|d| !d.is_zero())
    }

    /// `bash` unless `shell` says otherwise (gitlab-runner's default on
    /// Linux).
    pub fn shell_or_default(&self) -> RunnerShell {
        self.shell.unwrap_or(RunnerShell::Bash)
    }

    fn in_container(&self) -> bool {
        self.executor.is_some_and(ExecutorKind::is_container)
    }

    /// Where jobs are checked out: `builds_dir`, else `/builds` for Docker
    /// (inside the container) and `<working_dir>/builds` for the shell.
    pub fn builds_dir(&self, working_dir: &Path) -> PathBuf {
        match &self.builds_dir {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ if self.in_container() => PathBuf::from(defaults::DOCKER_BUILDS_DIR),
            _ => working_dir.join("builds"),
        }
    }

    /// Where local caches are kept: `cache_dir`, else `/cache` for Docker
    /// (inside the container) and `<working_dir>/cache` for the shell.
    pub fn cache_dir(&self, working_dir: &Path) -> PathBuf {
        match &self.cache_dir {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ if self.in_container() => PathBuf::from(defaults::DOCKER_CACHE_DIR),
            _ => working_dir.join("cache"),
        }
    }

    /// Whether jobs may choose their directory with `GIT_CLONE_PATH`: the
    /// `[runners.custom_build_dir]` setting, else on for Docker (each job
    /// has its own volume) and off for the shell.
    pub fn custom_build_dir_enabled(&self) -> bool {
        self.custom_build_dir
            .enabled
            .unwrap_or_else(|| self.in_container())
    }

    /// Whether git's configuration in the project is cleaned after
    /// get_sources; default on except for the shell executor.
    pub fn clean_git_config(&self) -> bool {
        self.clean_git_config
            .unwrap_or(self.executor != Some(ExecutorKind::Shell))
    }

    /// Whether the project directory is added to git's `safe.directory`;
    /// default on for Docker.
    pub fn safe_directory_checkout(&self) -> bool {
        self.safe_directory_checkout
            .unwrap_or_else(|| self.in_container())
    }

    /// A feature flag as this runner's configuration sets it; `None` leaves
    /// the flag's own default.
    pub fn feature_flag(&self, name: &str) -> Option<bool> {
        self.feature_flags.get(name).copied()
    }

    /// When the token was obtained, if known.
    pub fn token_obtained_at(&self) -> Option<SystemTime> {
        self.token_obtained_at.map(Timestamp::to_system_time)
    }

    /// When the token expires; `None` for a token that does not.
    pub fn token_expires_at(&self) -> Option<SystemTime> {
        self.token_expires_at.map(Timestamp::to_system_time)
    }

    /// `tls-ca-file`; `None` when unset or empty.
    pub fn tls_ca_file(&self) -> Option<&Path> {
        non_empty_path(&self.tls_ca_file)
    }

    /// `tls-cert-file`; `None` when unset or empty.
    pub fn tls_cert_file(&self) -> Option<&Path> {
        non_empty_path(&self.tls_cert_file)
    }

    /// `tls-key-file`; `None` when unset or empty.
    pub fn tls_key_file(&self) -> Option<&Path> {
        non_empty_path(&self.tls_key_file)
    }

    /// `clone_url`; `None` when unset or empty.
    pub fn clone_url(&self) -> Option<&str> {
        self.clone_url.as_deref().filter(|u| !u.is_empty())
    }

    /// `environment` as pairs; an entry without `=` is a variable set to
    /// the empty string, as gitlab-runner reads it.
    pub fn environment_pairs(&self) -> Vec<(String, String)> {
        self.environment
            .iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (e.clone(), String::new()),
            })
            .collect()
    }

    /// `CI_RUNNER_SHORT_TOKEN`, used in directory names and logs: the
    /// token without its kind prefix (`glrt-`, `glrt-t1_`, `t1_`,
    /// `glrtr-`, `glcbt-`, `GR` plus 7 hex digits), first 9 characters.
    pub fn short_token(&self) -> String {
        short_token(&self.token)
    }
}

fn non_empty_path(value: &Option<String>) -> Option<&Path> {
    value.as_deref().filter(|v| !v.is_empty()).map(Path::new)
}

/// See [`RunnerConfig::short_token`]; the one definition lives with the
/// API's token rules.
pub use crate::gitlab::short_token;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;

    fn runner(keys: &str) -> RunnerConfig {
        let text =
            format!("concurrent = 1\n[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n{keys}");
        parse_config(Path::new("config.toml"), &text)
            .unwrap()
            .config
            .runners
            .remove(0)
    }

    #[test]
    fn unset_runner_keys_take_gitlab_runners_defaults() {
        let r = runner("executor = \"shell\"\n");
        assert_eq!(r.request_concurrency(), 1);
        assert_eq!(r.output_limit_bytes(), 4096 * 1024);
        assert_eq!(r.unhealthy_requests_limit(), 3);
        assert_eq!(r.unhealthy_interval(), Duration::from_secs(3600));
        assert_eq!(r.job_status_final_update_retry_limit(), 10);
        assert_eq!(r.prepare_timeout(), None);
        assert_eq!(r.get_sources_timeout(), None);
        assert_eq!(r.shell_or_default(), RunnerShell::Bash);
        assert_eq!(r.token_expires_at(), None);
        assert!(!r.strict_check_interval);
        assert_eq!(r.tls_ca_file(), None);
        assert_eq!(runner("tls-ca-file = \"\"\n").tls_ca_file(), None);
        assert_eq!(
            runner("tls-ca-file = \"/ca.pem\"\n").tls_ca_file(),
            Some(Path::new("/ca.pem"))
        );
        // Zeros mean "the default" too, as in gitlab-runner.
        let r = runner(
            "request_concurrency = 0\noutput_limit = 0\nunhealthy_requests_limit = 0\nunhealthy_interval = \"0s\"\njob_status_final_update_retry_limit = 0\nprepare_timeout = \"0\"\n",
        );
        assert_eq!(r.request_concurrency(), 1);
        assert_eq!(r.output_limit_bytes(), 4096 * 1024);
        assert_eq!(r.unhealthy_requests_limit(), 3);
        assert_eq!(r.unhealthy_interval(), Duration::from_secs(3600));
        assert_eq!(r.job_status_final_update_retry_limit(), 10);
        assert_eq!(r.prepare_timeout(), None);
    }

    #[test]
    fn set_runner_keys_override_the_defaults() {
        let r = runner(
            "request_concurrency = 4\noutput_limit = 100\nunhealthy_requests_limit = 5\nunhealthy_interval = \"90s\"\njob_status_final_update_retry_limit = 2\nprepare_timeout = \"10m\"\nget_sources_timeout = 5000000000\nstrict_check_interval = true\ntoken_expires_at = 2030-01-01T00:00:00Z\n",
        );
        assert_eq!(r.request_concurrency(), 4);
        assert_eq!(r.output_limit_bytes(), 100 * 1024);
        assert_eq!(r.unhealthy_requests_limit(), 5);
        assert_eq!(r.unhealthy_interval(), Duration::from_secs(90));
        assert_eq!(r.job_status_final_update_retry_limit(), 2);
        assert_eq!(r.prepare_timeout(), Some(Duration::from_secs(600)));
        // An integer is nanoseconds, as gitlab-runner reads it.
        assert_eq!(r.get_sources_timeout(), Some(Duration::from_secs(5)));
        assert!(r.strict_check_interval);
        assert_eq!(
            r.token_expires_at(),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000))
        );
    }

    #[test]
    fn directories_default_per_executor_under_the_working_directory() {
        let wd = Path::new("/srv/runner");
        let shell = runner("executor = \"shell\"\n");
        assert_eq!(shell.builds_dir(wd), Path::new("/srv/runner/builds"));
        assert_eq!(shell.cache_dir(wd), Path::new("/srv/runner/cache"));
        assert!(!shell.custom_build_dir_enabled());
        assert!(!shell.clean_git_config());
        let docker = runner("executor = \"docker\"\n");
        assert_eq!(docker.builds_dir(wd), Path::new("/builds"));
        assert_eq!(docker.cache_dir(wd), Path::new("/cache"));
        assert!(docker.custom_build_dir_enabled());
        assert!(docker.clean_git_config());
        assert!(docker.safe_directory_checkout());
        let set = runner(
            "executor = \"docker\"\nbuilds_dir = \"/b\"\ncache_dir = \"/c\"\n[runners.custom_build_dir]\nenabled = false\n",
        );
        assert_eq!(set.builds_dir(wd), Path::new("/b"));
        assert_eq!(set.cache_dir(wd), Path::new("/c"));
        assert!(!set.custom_build_dir_enabled());
    }

    #[test]
    fn short_tokens_drop_the_kind_prefix() {
        assert_eq!(short_token("glrt-t2_ABCDEFGHIJK"), "ABCDEFGHI");
        assert_eq!(short_token("glrt-ABCDEFGHIJK"), "ABCDEFGHI");
        assert_eq!(short_token("t3_ABCDEFGHIJK"), "ABCDEFGHI");
        assert_eq!(short_token("glcbt-ABCDEFGHIJK"), "ABCDEFGHI");
        assert_eq!(short_token("GR1348941ABCDEFGHIJK"), "ABCDEFGHI");
        assert_eq!(short_token("plain-token-here"), "plain-tok");
    }
}
