//! A `[[runners]]` entry made ready to take jobs: its API client, its
//! executor, and where its jobs' files live on this host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runner_executors::docker::{
    DockerExecutor, DockerOptions, PullPolicy, parse_cpus, parse_memory,
};
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

/// The Docker executor's options for an entry: its `[runners.docker]`
/// settings, with gitlab-runner's defaults where it says nothing. A value
/// that cannot be used (a memory size that does not parse) is an error
/// naming the entry and the key.
pub(crate) fn docker_options(config: &RunnerConfig, short: &str) -> Result<DockerOptions, String> {
    let mut options = DockerOptions::default();
    // Objects of this entry carry its own owner label, so cleaning up one
    // entry's leftovers never touches another's running jobs.
    options.owner = format!("agent-{short}");
    options.builds_mount =
        PathBuf::from(config.builds_dir.as_deref().unwrap_or(CONTAINER_BUILDS_DIR));
    // gitlab-runner's default for a registered runner: pull every time.
    options.pull_policy = vec![PullPolicy::Always];
    let Some(docker) = &config.docker else {
        return Ok(options);
    };
    let fail = |key: &str, e: &dyn std::fmt::Display| {
        format!("runner {}: [runners.docker] {key}: {e}", entry_name(config))
    };
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    if !docker.host.is_empty() {
        options.host = Some(docker.host.clone());
    }
    options.default_image = text(&docker.image);
    options.pull_policy = docker.effective_pull_policies();
    // gitlab-runner: no `allowed_pull_policies` allows only the runner's
    // own; the executor's empty list would allow every policy.
    options.allowed_pull_policies = docker.allowed_pull_policies();
    options.allowed_images = docker.allowed_images.clone();
    options.allowed_services = docker.allowed_services.clone();
    options.disable_entrypoint_overwrite = docker.disable_entrypoint_overwrite;
    options.services_limit = docker
        .services_limit
        .and_then(|limit| usize::try_from(limit).ok());
    options.volumes = docker.volumes.clone();
    match docker.wait_for_services_timeout {
        Some(wait) if wait > 0 => options.service_wait = Duration::from_secs(wait.unsigned_abs()),
        // gitlab-runner's -1: services are not waited for.
        Some(wait) if wait < 0 => options.service_wait = Duration::ZERO,
        _ => {}
    }

    options.privileged = docker.privileged;
    options.services_privileged = docker.services_privileged;
    options.user = text(&docker.user);
    options.group_add = docker.group_add.clone();
    options.network_mode = text(&docker.network_mode);
    options.extra_hosts = docker.extra_hosts.clone();
    options.dns = docker.dns.clone();
    options.dns_search = docker.dns_search.clone();
    options.shm_size = i64::try_from(docker.shm_size).ok().filter(|size| *size > 0);
    options.cap_add = docker.cap_add.clone();
    options.cap_drop = docker.cap_drop.clone();
    options.security_opt = docker.security_opt.clone();
    options.services_security_opt = docker.services_security_opt.clone();
    options.devices = docker.devices.clone();
    options.services_devices = docker.services_devices.clone();
    options.tmpfs = docker.tmpfs.clone();
    options.services_tmpfs = docker.services_tmpfs.clone();
    options.sysctls = docker.sysctls.clone();
    options.oom_kill_disable = docker.oom_kill_disable;

    let memory = |key: &str, value: &str| -> Result<Option<i64>, String> {
        if value.is_empty() {
            return Ok(None);
        }
        parse_memory(value).map(Some).map_err(|e| fail(key, &e))
    };
    let cpus = |key: &str, value: &str| -> Result<Option<i64>, String> {
        if value.is_empty() {
            return Ok(None);
        }
        parse_cpus(value).map(Some).map_err(|e| fail(key, &e))
    };
    let limits = &mut options.limits;
    limits.memory = memory("memory", &docker.memory)?;
    limits.memory_swap = memory("memory_swap", &docker.memory_swap)?;
    limits.memory_reservation = memory("memory_reservation", &docker.memory_reservation)?;
    limits.nano_cpus = cpus("cpus", &docker.cpus)?;
    limits.cpu_shares = (docker.cpu_shares != 0).then_some(docker.cpu_shares);
    limits.cpuset_cpus = text(&docker.cpuset_cpus);
    let limits = &mut options.service_limits;
    limits.memory = memory("service_memory", &docker.service_memory)?;
    limits.memory_swap = memory("service_memory_swap", &docker.service_memory_swap)?;
    limits.memory_reservation = memory(
        "service_memory_reservation",
        &docker.service_memory_reservation,
    )?;
    limits.nano_cpus = cpus("service_cpus", &docker.service_cpus)?;
    limits.cpu_shares = (docker.service_cpu_shares != 0).then_some(docker.service_cpu_shares);
    limits.cpuset_cpus = text(&docker.service_cpuset_cpus);
    Ok(options)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::parse_config;

    fn entry(docker: &str) -> RunnerConfig {
        let text = format!(
            "concurrent = 1\n[[runners]]\nname = \"box\"\nurl = \"u\"\ntoken = \"t\"\nexecutor = \"docker\"\n[runners.docker]\n{docker}"
        );
        parse_config(Path::new("config.toml"), &text)
            .unwrap()
            .config
            .runners
            .remove(0)
    }

    #[test]
    fn docker_settings_reach_the_executor_options() {
        let config = entry(
            "image = \"alpine:3\"\nprivileged = true\nuser = \"1000\"\nmemory = \"4g\"\n\
             memory_swap = \"6g\"\nmemory_reservation = \"512m\"\ncpus = \"1.5\"\ncpu_shares = 512\n\
             cpuset_cpus = \"0-1\"\nshm_size = 67108864\nextra_hosts = [\"h:10.0.0.1\"]\n\
             dns = [\"10.0.0.2\"]\ndns_search = [\"corp\"]\nnetwork_mode = \"host\"\n\
             cap_add = [\"NET_ADMIN\"]\ncap_drop = [\"NET_RAW\"]\nsecurity_opt = [\"no-new-privileges\"]\n\
             devices = [\"/dev/fuse\"]\noom_kill_disable = true\ngroup_add = [\"42\"]\n\
             service_memory = \"1g\"\nservice_cpus = \"0.5\"\n\
             allowed_images = [\"alpine:*\"]\nallowed_services = [\"postgres:*\"]\n\
             pull_policy = \"if-not-present\"\ndisable_entrypoint_overwrite = true\n\
             services_limit = 3\nwait_for_services_timeout = -1\n\
             [runners.docker.tmpfs]\n\"/scratch\" = \"size=1m\"\n\
             [runners.docker.sysctls]\n\"kernel.shm_rmid_forced\" = \"1\"\n",
        );
        let o = docker_options(&config, "abc").unwrap();
        assert_eq!(o.default_image.as_deref(), Some("alpine:3"));
        assert!(o.privileged);
        assert_eq!(o.services_privileged, None);
        assert_eq!(o.user.as_deref(), Some("1000"));
        assert_eq!(o.limits.memory, Some(4 << 30));
        assert_eq!(o.limits.memory_swap, Some(6 << 30));
        assert_eq!(o.limits.memory_reservation, Some(512 << 20));
        assert_eq!(o.limits.nano_cpus, Some(1_500_000_000));
        assert_eq!(o.limits.cpu_shares, Some(512));
        assert_eq!(o.limits.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(o.service_limits.memory, Some(1 << 30));
        assert_eq!(o.service_limits.nano_cpus, Some(500_000_000));
        assert_eq!(o.shm_size, Some(64 << 20));
        assert_eq!(o.extra_hosts, ["h:10.0.0.1"]);
        assert_eq!(
            (o.dns.clone(), o.dns_search.clone()),
            (vec!["10.0.0.2".to_owned()], vec!["corp".to_owned()])
        );
        assert_eq!(o.network_mode.as_deref(), Some("host"));
        assert_eq!(
            (o.cap_add.clone(), o.cap_drop.clone()),
            (vec!["NET_ADMIN".to_owned()], vec!["NET_RAW".to_owned()])
        );
        assert_eq!(o.security_opt, ["no-new-privileges"]);
        assert_eq!(o.devices, ["/dev/fuse"]);
        assert!(o.oom_kill_disable);
        assert_eq!(o.group_add, ["42"]);
        assert_eq!(o.tmpfs["/scratch"], "size=1m");
        assert_eq!(o.sysctls["kernel.shm_rmid_forced"], "1");
        assert_eq!(o.allowed_images, ["alpine:*"]);
        assert_eq!(o.allowed_services, ["postgres:*"]);
        // No allowed_pull_policies: only the runner's own.
        assert_eq!(o.pull_policy, [PullPolicy::IfNotPresent]);
        assert_eq!(o.allowed_pull_policies, [PullPolicy::IfNotPresent]);
        assert!(o.disable_entrypoint_overwrite);
        assert_eq!(o.services_limit, Some(3));
        assert_eq!(o.service_wait, Duration::ZERO, "-1 does not wait");
    }

    #[test]
    fn unset_docker_settings_keep_gitlabs_defaults() {
        let o = docker_options(&entry(""), "abc").unwrap();
        assert!(!o.privileged);
        assert_eq!(o.user, None);
        assert_eq!(o.limits, Default::default());
        assert_eq!(o.shm_size, None);
        assert_eq!(o.network_mode, None);
        assert_eq!(o.pull_policy, [PullPolicy::Always]);
        assert_eq!(o.allowed_pull_policies, [PullPolicy::Always]);
        assert_eq!(o.services_limit, None);
        assert_eq!(o.service_wait, Duration::from_secs(30));
        let o = docker_options(
            &entry("services_limit = -1\nwait_for_services_timeout = 5\n"),
            "abc",
        )
        .unwrap();
        assert_eq!(o.services_limit, None, "-1 is no limit");
        assert_eq!(o.service_wait, Duration::from_secs(5));
    }

    #[test]
    fn a_bad_size_or_cpu_count_is_an_error_naming_entry_and_key() {
        let err = docker_options(&entry("memory = \"4x\"\n"), "abc").unwrap_err();
        assert_eq!(
            err,
            "runner box: [runners.docker] memory: invalid size \"4x\": expected a number with an optional unit b, k, m, g, t or p, such as 512m or 4g"
        );
        let err = docker_options(&entry("service_cpus = \"lots\"\n"), "abc").unwrap_err();
        assert!(
            err.starts_with(
                "runner box: [runners.docker] service_cpus: invalid number of CPUs \"lots\""
            ),
            "{err}"
        );
    }
}
