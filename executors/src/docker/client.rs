//! The connection to the Docker daemon, and what every call needs: labels,
//! names, and errors that say what was being done.

use std::collections::HashMap;

use bollard::Docker;

use crate::ExecutorError;

/// The daemon address used when neither the options nor `DOCKER_HOST`
/// name one.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The prefix of every label the runner puts on what it creates.
pub(crate) const LABEL_PREFIX: &str = "io.runner.";
/// `true` on everything the runner created: what `remove_leftovers` looks for.
pub(crate) const LABEL_MANAGED: &str = "io.runner.managed";
/// The runner that created it (`DockerOptions::owner`).
pub(crate) const LABEL_OWNER: &str = "io.runner.owner";
/// The job's id (`CI_JOB_ID`); jobs run locally may share one.
pub(crate) const LABEL_JOB: &str = "io.runner.job";
/// Unique per `prepare`: what `cleanup` removes.
pub(crate) const LABEL_INSTANCE: &str = "io.runner.instance";
/// `step` or `service`.
pub(crate) const LABEL_ROLE: &str = "io.runner.role";

/// Where the daemon address came from, for the error when it does not
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostOrigin {
    Options,
    Env,
    Default,
}

impl HostOrigin {
    fn describe(self) -> &'static str {
        match self {
            HostOrigin::Options => "from the runner's docker host setting",
            HostOrigin::Env => "from DOCKER_HOST",
            HostOrigin::Default => "the default socket; set DOCKER_HOST to use another daemon",
        }
    }
}

/// The daemon address to use: the options', else `DOCKER_HOST`'s, else
/// the default socket. `env_host` is `DOCKER_HOST` as read by the caller.
pub(crate) fn resolve_host(option: Option<&str>, env_host: Option<String>) -> (String, HostOrigin) {
    match (option, env_host) {
        (Some(h), _) if !h.is_empty() => (normalize_host(h), HostOrigin::Options),
        (_, Some(h)) if !h.is_empty() => (normalize_host(&h), HostOrigin::Env),
        _ => (DEFAULT_HOST.to_owned(), HostOrigin::Default),
    }
}

/// A bare socket path is taken as `unix://<path>`, as the docker CLI does.
fn normalize_host(host: &str) -> String {
    if host.starts_with('/') {
        format!("unix://{host}")
    } else {
        host.to_owned()
    }
}

/// Connects to the daemon at `host` and agrees on an API version.
///
/// The version check is also the liveness check: a daemon that does not
/// answer fails here, once, with an error naming the address, instead of
/// failing every job later with a less clear one.
pub(crate) async fn connect(host: &str, origin: HostOrigin) -> Result<Docker, ExecutorError> {
    let unreachable = |message: String| ExecutorError::DockerUnreachable {
        host: host.to_owned(),
        origin: origin.describe().to_owned(),
        message,
    };
    let docker = Docker::connect_with_host(host).map_err(|e| unreachable(e.to_string()))?;
    // bollard speaks the newest API version it knows; an older daemon
    // refuses requests above its own, so step down to the daemon's.
    docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(error_text(&e)))
}

/// The daemon's message for a failed call, without bollard's wrapping.
pub(crate) fn error_text(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        E::DockerStreamError { error } => error.trim().to_owned(),
        // Transport errors say "client error" on top and what happened
        // (a connection closed, refused) underneath.
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let line = cause.to_string();
                if !text.contains(&line) {
                    text.push_str(": ");
                    text.push_str(&line);
                }
                source = cause.source();
            }
            text
        }
    }
}

/// True when the daemon answered 404 (no such container, image, network...).
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// An [`ExecutorError::Docker`] for `action`.
pub(crate) fn api_error(action: impl Into<String>, e: &bollard::errors::Error) -> ExecutorError {
    ExecutorError::Docker {
        action: action.into(),
        message: error_text(e),
    }
}

/// The labels of everything one job creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobLabels {
    pub owner: String,
    pub job_id: String,
    pub instance: String,
}

impl JobLabels {
    /// The labels of an object with `role`, plus `extra`.
    pub fn with_role(&self, role: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut labels = HashMap::from([
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
            (LABEL_OWNER.to_owned(), self.owner.clone()),
            (LABEL_JOB.to_owned(), self.job_id.clone()),
            (LABEL_INSTANCE.to_owned(), self.instance.clone()),
            (LABEL_ROLE.to_owned(), role.to_owned()),
        ]);
        for (k, v) in extra {
            labels.insert(format!("{LABEL_PREFIX}{k}"), (*v).to_owned());
        }
        labels
    }

    /// The prefix of the names of the job's objects:
    /// `runner-<job id>-<instance>`.
    pub fn name_prefix(&self) -> String {
        format!("runner-{}-{}", name_safe(&self.job_id), self.instance)
    }
}

/// `s` with every character Docker refuses in names replaced by `-`
/// (names match `[a-zA-Z0-9][a-zA-Z0-9_.-]*`), shortened to keep the
/// whole name readable.
pub(crate) fn name_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// A fresh random token of 12 hex digits: the instance label of a job.
pub(crate) fn new_instance_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    // RandomState is seeded randomly per process and per instance; the
    // counter and the time make two calls differ even within one state.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = RandomState::new().hash_one((nanos, n, std::process::id()));
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

/// The label filter `key=value`, as the list endpoints take it.
pub(crate) fn label_filter(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_comes_from_options_then_env_then_default() {
        assert_eq!(
            resolve_host(Some("tcp://h:2375"), Some("unix:///x.sock".into())),
            ("tcp://h:2375".to_owned(), HostOrigin::Options)
        );
        assert_eq!(
            resolve_host(None, Some("unix:///x.sock".into())),
            ("unix:///x.sock".to_owned(), HostOrigin::Env)
        );
        assert_eq!(
            resolve_host(None, Some(String::new())),
            (DEFAULT_HOST.to_owned(), HostOrigin::Default)
        );
        assert_eq!(
            resolve_host(Some("/run/d.sock"), None),
            ("unix:///run/d.sock".to_owned(), HostOrigin::Options)
        );
    }

    #[tokio::test]
    async fn an_absent_daemon_is_one_error_naming_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let host = format!("unix://{}/docker.sock", dir.path().display());
        let err = connect(&host, HostOrigin::Env).await.unwrap_err();
        assert!(
            matches!(err, ExecutorError::DockerUnreachable { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot reach the docker daemon at {host} (from DOCKER_HOST): "
            )),
            "{text}"
        );
        let err = connect(&host, HostOrigin::Default).await.unwrap_err();
        assert!(err.to_string().contains("set DOCKER_HOST"), "{err}");
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(name_safe("job 12/a:b"), "job-12-a-b");
        assert_eq!(name_safe(""), "x");
        assert_eq!(name_safe(&"a".repeat(100)).len(), 40);
    }

    #[test]
    fn instance_ids_differ() {
        let a = new_instance_id();
        let b = new_instance_id();
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
    }
}
