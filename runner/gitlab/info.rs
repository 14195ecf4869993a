//! The `info` object every runner-level call and job update carries
//! (runner-api.md §3.2): who the runner is and what it can do.
//!
//! GitLab shapes the jobs it hands out by the `features` claimed here
//! (refspecs, masked variables, graceful cancel, ...), so a feature is
//! claimed only where this runner really does it. Every key is sent, true
//! or false, as gitlab-runner does.

use serde::Serialize;

/// The runner's description of itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Go's `GOOS` name (`linux`, `darwin`, ...).
    pub platform: String,
    /// Go's `GOARCH` name (`amd64`, `arm64`, ...).
    pub architecture: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub executor: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub shell: String,
    pub features: FeaturesInfo,
    pub config: InfoConfig,
}

/// `info.config`: runner settings GitLab shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InfoConfig {
    pub gpus: String,
}

/// What the runner supports, key by key as GitLab knows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeaturesInfo {
    pub variables: bool,
    pub image: bool,
    pub services: bool,
    pub artifacts: bool,
    pub cache: bool,
    pub fallback_cache_keys: bool,
    pub shared: bool,
    pub upload_multiple_artifacts: bool,
    pub upload_raw_artifacts: bool,
    pub session: bool,
    pub terminal: bool,
    pub refspecs: bool,
    pub masking: bool,
    pub proxy: bool,
    pub raw_variables: bool,
    pub artifacts_exclude: bool,
    pub multi_build_steps: bool,
    pub trace_reset: bool,
    pub trace_checksum: bool,
    pub trace_size: bool,
    pub vault_secrets: bool,
    pub cancelable: bool,
    pub return_exit_code: bool,
    pub service_variables: bool,
    pub service_multiple_aliases: bool,
    pub image_executor_opts: bool,
    pub service_executor_opts: bool,
    pub cancel_gracefully: bool,
    pub native_steps_integration: bool,
    pub two_phase_job_commit: bool,
    pub job_inputs: bool,
}

impl FeaturesInfo {
    /// What this runner does with `executor` (`shell`, `docker`).
    ///
    /// Every executor: the engine exports variables (raw ones unexpanded),
    /// masks, fetches the payload's refspecs, runs every step in order,
    /// restores caches with fallback keys, uploads each artifact entry
    /// (with `exclude`, raw reports) and reports the exit code; the trace
    /// streamer resends from 0 on request and sends checksum and size; a
    /// `canceling` job stops its script and still runs after_script; the
    /// agent acknowledges a job with `PUT state=running` before running it
    /// (two-phase commit).
    ///
    /// Not claimed: interactive sessions and terminals, the proxy, secret
    /// providers, job inputs, CI steps, and `executor_opts` (the payload's
    /// image options are not read, so a job that needs them must not be
    /// handed to this runner).
    pub fn for_executor(executor: &str) -> FeaturesInfo {
        let mut features = FeaturesInfo {
            variables: true,
            artifacts: true,
            cache: true,
            fallback_cache_keys: true,
            upload_multiple_artifacts: true,
            upload_raw_artifacts: true,
            refspecs: true,
            masking: true,
            raw_variables: true,
            artifacts_exclude: true,
            multi_build_steps: true,
            trace_reset: true,
            trace_checksum: true,
            trace_size: true,
            cancelable: true,
            return_exit_code: true,
            cancel_gracefully: true,
            two_phase_job_commit: true,
            ..FeaturesInfo::default()
        };
        match executor {
            "docker" => {
                features.image = true;
                features.services = true;
                features.service_variables = true;
                features.service_multiple_aliases = true;
            }
            // Jobs of a shell runner share the host.
            "shell" => features.shared = true,
            _ => {}
        }
        features
    }
}

impl Info {
    /// The `info` of this runner running jobs with `executor` in `shell`
    /// (either may be empty, for registration before they are known).
    pub fn new(executor: &str, shell: &str) -> Info {
        Info {
            name: "runner".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: option_env!("RUNNER_REVISION")
                .unwrap_or_default()
                .to_owned(),
            platform: go_os().to_owned(),
            architecture: go_arch().to_owned(),
            executor: executor.to_owned(),
            shell: shell.to_owned(),
            features: FeaturesInfo::for_executor(executor),
            config: InfoConfig::default(),
        }
    }
}

/// The operating system as Go's `GOOS` names it.
pub fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// The architecture as Go's `GOARCH` names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "loongarch64" => "loong64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of GitLab's `features` list (runner-api.md §3.2).
    const ALL_KEYS: [&str; 31] = [
        "variables",
        "image",
        "services",
        "artifacts",
        "cache",
        "fallback_cache_keys",
        "shared",
        "upload_multiple_artifacts",
        "upload_raw_artifacts",
        "session",
        "terminal",
        "refspecs",
        "masking",
        "proxy",
        "raw_variables",
        "artifacts_exclude",
        "multi_build_steps",
        "trace_reset",
        "trace_checksum",
        "trace_size",
        "vault_secrets",
        "cancelable",
        "return_exit_code",
        "service_variables",
        "service_multiple_aliases",
        "image_executor_opts",
        "service_executor_opts",
        "cancel_gracefully",
        "native_steps_integration",
        "two_phase_job_commit",
        "job_inputs",
    ];

    fn features_json(executor: &str) -> serde_json::Map<String, serde_json::Value> {
        let value = serde_json::to_value(Info::new(executor, "bash")).unwrap();
        value["features"].as_object().unwrap().clone()
    }

    #[test]
    fn every_feature_key_is_sent() {
        let features = features_json("shell");
        assert_eq!(features.len(), ALL_KEYS.len());
        for key in ALL_KEYS {
            assert!(features[key].is_boolean(), "{key}");
        }
    }

    #[test]
    fn docker_claims_images_and_services_and_shell_claims_shared() {
        let docker = features_json("docker");
        let shell = features_json("shell");
        for key in [
            "image",
            "services",
            "service_variables",
            "service_multiple_aliases",
        ] {
            assert_eq!(docker[key], true, "{key}");
            assert_eq!(shell[key], false, "{key}");
        }
        assert_eq!(shell["shared"], true);
        assert_eq!(docker["shared"], false);
    }

    #[test]
    fn what_the_runner_does_not_do_is_not_claimed() {
        for executor in ["docker", "shell"] {
            let features = features_json(executor);
            for key in [
                "session",
                "terminal",
                "proxy",
                "vault_secrets",
                "job_inputs",
                "native_steps_integration",
                "image_executor_opts",
                "service_executor_opts",
            ] {
                assert_eq!(features[key], false, "{executor}: {key}");
            }
            for key in [
                "masking",
                "refspecs",
                "cancel_gracefully",
                "trace_checksum",
                "return_exit_code",
                "upload_raw_artifacts",
            ] {
                assert_eq!(features[key], true, "{executor}: {key}");
            }
        }
    }

    #[test]
    fn platform_and_version_use_go_and_crate_names() {
        let info = Info::new("shell", "bash");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(
                (info.platform.as_str(), info.architecture.as_str()),
                ("linux", "amd64")
            );
        }
        let value = serde_json::to_value(Info::new("", "")).unwrap();
        assert!(value.get("executor").is_none() && value.get("shell").is_none());
    }
}
