//! The global keys and `[[runners]]` entries of `config.toml`.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::docker::DockerConfig;

/// A `config.toml` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The TOML parser's message already holds the line, column, key and
    /// a snippet; the file name is put in front.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    /// Most jobs running at once, over every runner; required, above 0.
    pub concurrent: NonZeroU32,
    /// Seconds between job requests; 0 means the default, 3.
    #[serde(default)]
    pub check_interval: u64,
    #[serde(default)]
    pub log_level: Option<LogLevel>,
    #[serde(default)]
    pub log_format: Option<LogFormat>,
    /// `host:port` of the metrics and health endpoints.
    #[serde(default)]
    pub listen_address: Option<String>,
    /// Seconds running jobs get when the agent stops; 0 means 30.
    #[serde(default)]
    pub shutdown_timeout: u64,
    #[serde(default)]
    pub session_server: Option<SessionServer>,
    #[serde(default)]
    pub runners: Vec<RunnerConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Runner,
    Text,
    Json,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SessionServer {
    pub listen_address: String,
    pub advertise_address: String,
    pub session_timeout: u64,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerShell {
    Bash,
    Sh,
    Pwsh,
    Powershell,
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
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Shared")]
    pub shared: bool,
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
    /// Most job requests in flight; 0 means 1.
    pub request_concurrency: u32,
    /// The largest job log sent, in KiB; 0 means 4096.
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
    /// Wait `check_interval` even after a request brought a job.
    pub strict_check_interval: bool,
    pub unhealthy_requests_limit: Option<u32>,
    pub unhealthy_interval: Option<String>,
    pub job_status_final_update_retry_limit: Option<u32>,
    pub prepare_timeout: Option<String>,
    pub get_sources_timeout: Option<String>,
    pub debug_trace_disabled: bool,
    pub custom_build_dir: CustomBuildDir,
    pub feature_flags: BTreeMap<String, bool>,
    pub cache: Option<CacheConfig>,
    pub docker: Option<DockerConfig>,
}

/// gitlab-runner's default output limit, in KiB.
const DEFAULT_OUTPUT_LIMIT_KIB: u32 = 4096;

impl RunnerConfig {
    /// The output limit in bytes.
    pub fn output_limit_bytes(&self) -> usize {
        let kib = if self.output_limit == 0 {
            DEFAULT_OUTPUT_LIMIT_KIB
        } else {
            self.output_limit
        };
        kib as usize * 1024
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

fn short_token(token: &str) -> String {
    let partition = |t: &str| -> Option<usize> {
        let b = t.as_bytes();
        (b.len() >= 3 && b[0] == b't' && matches!(b[1], b'1'..=b'3') && b[2] == b'_').then_some(3)
    };
    let mut rest = token;
    if let Some(r) = rest.strip_prefix("glrt-") {
        rest = partition(r).map_or(r, |n| &r[n..]);
    } else if let Some(n) = partition(rest) {
        rest = &rest[n..];
    } else if let Some(r) = rest
        .strip_prefix("glrtr-")
        .or_else(|| rest.strip_prefix("glcbt-"))
    {
        rest = r;
    } else if rest.len() >= 9
        && rest.starts_with("GR")
        && rest.as_bytes()[2..9].iter().all(|b| b.is_ascii_hexdigit())
    {
        rest = &rest[9..];
    }
    rest.chars().take(9).collect()
}

/// Reads and checks `path`.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_config(path, &text)
}

/// Parses the text of a `config.toml`; `path` names it in errors.
pub fn parse_config(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    for (i, runner) in config.runners.iter().enumerate() {
        if runner.url.is_empty() || runner.token.is_empty() {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "runners[{i}] ({}): `url` and `token` are required",
                    if runner.name.is_empty() {
                        "unnamed"
                    } else {
                        &runner.name
                    }
                ),
            });
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PullPolicy;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_config(Path::new("config.toml"), text)
    }

    #[test]
    fn the_spec_fixture_loads_with_its_docker_settings() {
        let path = crate::ci::test_corpus::shared_dir().join("spec/fixtures/config.toml");
        let config = load_config(&path).unwrap();
        assert_eq!(config.concurrent.get(), 4);
        assert_eq!(config.log_format, Some(LogFormat::Runner));
        let runner = &config.runners[0];
        assert_eq!(runner.executor, Some(ExecutorKind::Docker));
        assert_eq!(runner.output_limit_bytes(), 8192 * 1024);
        assert_eq!(runner.custom_build_dir.enabled, Some(true));
        assert_eq!(runner.feature_flags.get("FF_TIMESTAMPS"), Some(&false));
        assert_eq!(runner.cache.as_ref().unwrap().kind, "s3");
        let docker = runner.docker.as_ref().unwrap();
        assert_eq!(docker.image, "alpine:3.20");
        assert_eq!(
            docker.pull_policy,
            [PullPolicy::Always, PullPolicy::IfNotPresent]
        );
        assert_eq!(docker.wait_for_services_timeout, Some(30));
        assert_eq!(
            runner.environment_pairs()[0],
            ("LANG".into(), "C.UTF-8".into())
        );
    }

    #[test]
    fn the_example_in_the_repository_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let config = load_config(&path).unwrap();
        assert!(!config.runners.is_empty());
    }

    #[test]
    fn a_bad_value_names_the_file_line_and_key() {
        let err = parse(
            "concurrent = 1\n[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[runners.docker]\npull_policy = \"sometimes\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("config.toml: "), "{err}");
        assert!(err.contains("line 6"), "{err}");
        assert!(err.contains("pull_policy"), "{err}");
        let err = parse("concurrent = 0\n").unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("concurrent"),
            "{err}"
        );
        let err =
            parse("concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\nexecutor = \"lxc\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("line 5") && err.contains("executor"), "{err}");
        let err = parse("").unwrap_err().to_string();
        assert!(err.contains("concurrent"), "{err}");
    }

    #[test]
    fn a_runner_needs_a_url_and_a_token() {
        let err = parse("concurrent = 1\n[[runners]]\nname = \"a\"\nurl = \"https://x\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config.toml: runners[0] (a): `url` and `token` are required"
        );
    }

    #[test]
    fn pull_policy_takes_one_or_many_and_jobs_choose_among_the_allowed() {
        let config = parse(
            "concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\n[runners.docker]\npull_policy = \"if-not-present\"\nallowed_pull_policies = [\"if-not-present\", \"never\"]\n",
        )
        .unwrap();
        let docker = config.runners[0].docker.clone().unwrap();
        assert_eq!(docker.pull_policy, [PullPolicy::IfNotPresent]);
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

    #[test]
    fn keys_gitlab_runner_knows_but_this_runner_ignores_still_load() {
        let config = parse(
            "concurrent = 2\nsentry_dsn = \"x\"\n[[runners]]\nurl = \"u\"\ntoken = \"glrt-t1_abcdefghijkl\"\n[runners.kubernetes]\nnamespace = \"ci\"\n[runners.docker]\ngpus = \"all\"\n",
        )
        .unwrap();
        assert_eq!(config.runners[0].short_token(), "abcdefghi");
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
