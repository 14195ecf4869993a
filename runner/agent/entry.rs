//! A `[[runners]]` entry made ready to take jobs: its API client, its
//! executor, and where its jobs' files live on this host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use runner_executors::docker::{DockerExecutor, DockerOptions, PullPolicy};
use runner_executors::shell::{ShellExecutor, ShellOptions};
use runner_executors::{AnyExecutor, ShellKind};

use crate::config::{ExecutorKind, RunnerConfig, RunnerShell};
use crate::gitlab::{ApiClient, Info, short_token};

use super::job::EntryContext;
use super::metrics::RunnerLabels;

/// Where containers see the builds dir when `builds_dir` is not set.
const CONTAINER_BUILDS_DIR: &str = "/builds";

/// Makes an entry ready. An entry that cannot run jobs (an executor this
/// runner does not have, a Docker daemon that does not answer) is an
/// error naming the entry; the other entries still run.
///
/// `at_start`: the agent is starting, so no job of this entry can be
/// running and what a killed agent left behind (labelled containers,
/// networks, volumes) is removed. Never on a reload: the entry's running
/// jobs own such objects then.
pub async fn prepare_entry(
    config: &RunnerConfig,
    working_dir: &Path,
    system_id: &str,
    at_start: bool,
) -> Result<EntryContext, String> {
    let name = entry_name(config);
    let fail = |what: String| format!("runner {name}: {what}");
    let kind = config
        .executor
        .ok_or_else(|| fail("no `executor` set (shell or docker)".to_owned()))?;
    let (shell, shell_name) = match (config.shell, kind) {
        // For Docker, bash means "bash if the image has it, else sh"; the
        // engine writes container scripts that both run.
        (None | Some(RunnerShell::Bash), _) => (ShellKind::Bash, "bash"),
        (Some(RunnerShell::Sh), _) => (ShellKind::Sh, "sh"),
        (Some(other), _) => {
            return Err(fail(format!(
                "shell {other:?} is not supported here; use bash or sh"
            )));
        }
    };
    let client = ApiClient::new(&config.url).map_err(|e| fail(e.to_string()))?;
    let short = short_token(&config.token);
    let in_working_dir = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            working_dir.join(p)
        }
    };
    let (executor, executor_name, builds_dir, cache_dir) = match kind {
        ExecutorKind::Shell => {
            let executor =
                ShellExecutor::new(ShellOptions::default()).map_err(|e| fail(e.to_string()))?;
            (
                AnyExecutor::Shell(executor),
                "shell",
                in_working_dir(config.builds_dir.as_deref().unwrap_or("builds")),
                in_working_dir(config.cache_dir.as_deref().unwrap_or("cache")),
            )
        }
        ExecutorKind::Docker => {
            // The runner prepares sources, cache and artifacts on this
            // host, in the working directory; `builds_dir` is where the
            // containers see the builds (GitLab's meaning for Docker).
            let options = docker_options(config, &short)?;
            let executor = DockerExecutor::new(options)
                .await
                .map_err(|e| fail(e.to_string()))?;
            if at_start {
                match executor.remove_leftovers().await {
                    Ok(_) => {}
                    Err(e) => {
                        return Err(fail(format!("removing leftover containers: {e}")));
                    }
                }
            }
            (
                AnyExecutor::Docker(executor),
                "docker",
                working_dir.join("builds"),
                working_dir.join("cache"),
            )
        }
        other => {
            return Err(fail(format!(
                "the {other:?} executor is not supported here; use shell or docker"
            )));
        }
    };
    Ok(EntryContext {
        config: config.clone(),
        client,
        info: Info::new(executor_name, shell_name),
        executor: Arc::new(executor),
        executor_name,
        shell,
        system_id: system_id.to_owned(),
        labels: RunnerLabels {
            runner: short.clone(),
            runner_name: config.name.clone(),
            system_id: system_id.to_owned(),
        },
        short_token: short,
        builds_dir,
        cache_dir,
    })
}

/// The entry's name for messages: its `name`, else its short token.
pub fn entry_name(config: &RunnerConfig) -> String {
    if config.name.is_empty() {
        short_token(&config.token)
    } else {
        config.name.clone()
    }
}

fn docker_options(config: &RunnerConfig, short: &str) -> Result<DockerOptions, String> {
    let mut options = DockerOptions::default();
    // Objects of this entry carry its own owner label, so cleaning up one
    // entry's leftovers never touches another's running jobs.
    options.owner = format!("agent-{short}");
    options.builds_mount =
        PathBuf::from(config.builds_dir.as_deref().unwrap_or(CONTAINER_BUILDS_DIR));
    // gitlab-runner's default for a registered runner: pull every time.
    options.pull_policy = vec![PullPolicy::Always];
    if let Some(docker) = &config.docker {
        if !docker.host.is_empty() {
            options.host = Some(docker.host.clone());
        }
        if !docker.image.is_empty() {
            options.default_image = Some(docker.image.clone());
        }
        options.pull_policy = docker
            .effective_pull_policies()
            .iter()
            .map(|p| {
                p.as_str()
                    .parse::<PullPolicy>()
                    .map_err(|e| format!("runner {}: {e}", entry_name(config)))
            })
            .collect::<Result<_, _>>()?;
        options.volumes = docker.volumes.clone();
        if let Some(wait) = docker.wait_for_services_timeout.filter(|w| *w > 0) {
            options.service_wait = std::time::Duration::from_secs(wait as u64);
        }
    }
    Ok(options)
}
