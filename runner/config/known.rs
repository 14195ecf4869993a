//! The keys gitlab-runner knows, and the walk that warns about the others.
//!
//! serde ignores keys a struct does not name, so a typo (`imagee`) would
//! load silently and do nothing. The typed model only covers what this
//! runner acts on; this table also lists what gitlab-runner reads, so a
//! file written for gitlab-runner loads without noise while a key neither
//! knows is reported with its line and full path.

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// What may stand under a key.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// A value, or a table whose keys are not checked (maps such as
    /// `labels`, and sections of executors this runner does not run).
    Any,
    /// A table, or an array of tables, with these keys.
    Table(&'static [(&'static str, Shape)]),
}

use Shape::{Any, Table};

pub(super) const ROOT: Shape = Table(GLOBAL);

const GLOBAL: &[(&str, Shape)] = &[
    ("concurrent", Any),
    ("check_interval", Any),
    ("log_level", Any),
    ("log_format", Any),
    ("listen_address", Any),
    ("shutdown_timeout", Any),
    ("connection_max_age", Any),
    ("sentry_dsn", Any),
    ("user", Any),
    ("labels", Any),
    ("session_server", Table(SESSION_SERVER)),
    ("runners", Table(RUNNER)),
    ("machine", Any),
    ("experimental", Any),
];

const SESSION_SERVER: &[(&str, Shape)] = &[
    ("listen_address", Any),
    ("advertise_address", Any),
    ("session_timeout", Any),
];

const RUNNER: &[(&str, Shape)] = &[
    ("name", Any),
    ("url", Any),
    ("id", Any),
    ("token", Any),
    ("token_obtained_at", Any),
    ("token_expires_at", Any),
    ("tls-ca-file", Any),
    ("tls-cert-file", Any),
    ("tls-key-file", Any),
    ("limit", Any),
    ("output_limit", Any),
    ("request_concurrency", Any),
    ("strict_check_interval", Any),
    ("unhealthy_requests_limit", Any),
    ("unhealthy_interval", Any),
    ("job_status_final_update_retry_limit", Any),
    ("executor", Any),
    ("shell", Any),
    ("builds_dir", Any),
    ("cache_dir", Any),
    ("clone_url", Any),
    ("environment", Any),
    ("pre_get_sources_script", Any),
    ("post_get_sources_script", Any),
    // The older names of the two above.
    ("pre_clone_script", Any),
    ("post_clone_script", Any),
    ("pre_build_script", Any),
    ("post_build_script", Any),
    ("prepare_timeout", Any),
    ("get_sources_timeout", Any),
    ("debug_trace_disabled", Any),
    ("safe_directory_checkout", Any),
    ("clean_git_config", Any),
    ("labels", Any),
    ("feature_flags", Any),
    ("custom_build_dir", Table(CUSTOM_BUILD_DIR)),
    ("cache", Table(CACHE)),
    ("docker", Table(DOCKER)),
    ("artifact", Any),
    ("referees", Any),
    ("monitoring", Any),
    ("autoscaler", Any),
    ("custom", Any),
    ("instance", Any),
    ("kubernetes", Any),
    ("machine", Any),
    ("parallels", Any),
    ("ssh", Any),
    ("virtualbox", Any),
];

const CUSTOM_BUILD_DIR: &[(&str, Shape)] = &[("enabled", Any)];

const CACHE: &[(&str, Shape)] = &[
    ("Type", Any),
    ("Path", Any),
    ("Shared", Any),
    ("MaxUploadedArchiveSize", Any),
    ("s3", Any),
    ("gcs", Any),
    ("azure", Any),
];

const DOCKER: &[(&str, Shape)] = &[
    ("host", Any),
    ("tls_verify", Any),
    ("tls_cert_path", Any),
    ("hostname", Any),
    ("image", Any),
    ("runtime", Any),
    ("isolation", Any),
    ("privileged", Any),
    ("services_privileged", Any),
    ("allowed_privileged_images", Any),
    ("allowed_privileged_services", Any),
    ("user", Any),
    ("allowed_users", Any),
    ("group_add", Any),
    ("userns_mode", Any),
    ("disable_entrypoint_overwrite", Any),
    ("volumes", Any),
    ("volumes_from", Any),
    ("volume_driver", Any),
    ("volume_driver_ops", Any),
    ("volume_keep", Any),
    ("cache_dir", Any),
    ("disable_cache", Any),
    ("network_mode", Any),
    ("network_mtu", Any),
    ("enable_ipv6", Any),
    ("dns", Any),
    ("dns_search", Any),
    ("extra_hosts", Any),
    ("links", Any),
    ("mac_address", Any),
    ("pull_policy", Any),
    ("allowed_pull_policies", Any),
    ("allowed_images", Any),
    ("allowed_services", Any),
    ("services", Table(DOCKER_SERVICE)),
    ("services_limit", Any),
    ("wait_for_services_timeout", Any),
    ("memory", Any),
    ("memory_swap", Any),
    ("memory_reservation", Any),
    ("cpus", Any),
    ("cpu_shares", Any),
    ("cpuset_cpus", Any),
    ("cpuset_mems", Any),
    ("gpus", Any),
    ("shm_size", Any),
    ("ulimit", Any),
    ("oom_kill_disable", Any),
    ("oom_score_adjust", Any),
    ("cgroup_parent", Any),
    ("service_memory", Any),
    ("service_memory_swap", Any),
    ("service_memory_reservation", Any),
    ("service_cpus", Any),
    ("service_cpu_shares", Any),
    ("service_cpuset_cpus", Any),
    ("service_gpus", Any),
    ("service_cgroup_parent", Any),
    ("cap_add", Any),
    ("cap_drop", Any),
    ("security_opt", Any),
    ("services_security_opt", Any),
    ("devices", Any),
    ("device_cgroup_rules", Any),
    ("services_devices", Any),
    ("pid_mode", Any),
    ("ipcmode", Any),
    ("sysctls", Any),
    ("tmpfs", Any),
    ("services_tmpfs", Any),
    ("helper_image", Any),
    ("helper_image_flavor", Any),
    ("helper_image_autoset_arch_and_os", Any),
    ("container_labels", Any),
    ("log_options", Any),
];

const DOCKER_SERVICE: &[(&str, Shape)] = &[
    ("name", Any),
    ("alias", Any),
    ("command", Any),
    ("entrypoint", Any),
    ("environment", Any),
];

/// A key in `config.toml` that neither gitlab-runner nor this runner
/// knows: most likely a typo, and certainly without effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// The full dotted path, without array indexes
    /// (`runners.docker.imagee`).
    pub key: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: unknown key {}",
            self.file.display(),
            self.line,
            self.key
        )
    }
}

/// Every key of `table` (and below) that `shape` does not list.
pub(super) fn unknown_keys(file: &Path, text: &str, table: &DeTable<'_>) -> Vec<ConfigWarning> {
    let mut found = Vec::new();
    if let Table(keys) = ROOT {
        walk_table(table, keys, "", &mut |key, offset| {
            found.push(ConfigWarning {
                file: file.to_owned(),
                line: line_of(text, offset),
                key,
            });
        });
    }
    found.sort_by_key(|w| w.line);
    found
}

fn walk_table(
    table: &DeTable<'_>,
    keys: &[(&str, Shape)],
    prefix: &str,
    report: &mut dyn FnMut(String, usize),
) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let path = join(prefix, name);
        match keys.iter().find(|(known, _)| *known == name) {
            None => report(path, key.span().start),
            Some((_, Any)) => {}
            Some((_, Table(inner))) => walk_value(value, inner, &path, report),
        }
    }
}

fn walk_value(
    value: &Spanned<DeValue<'_>>,
    keys: &[(&str, Shape)],
    path: &str,
    report: &mut dyn FnMut(String, usize),
) {
    match value.get_ref() {
        DeValue::Table(table) => walk_table(table, keys, path, report),
        DeValue::Array(items) => {
            for item in items.iter() {
                walk_value(item, keys, path, report);
            }
        }
        // A wrong type; deserialization reports it.
        _ => {}
    }
}

fn join(prefix: &str, name: &str) -> String {
    // Keys that are not bare words are quoted, as TOML writes them.
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let name = if bare {
        name.to_owned()
    } else {
        format!("{name:?}")
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}.{name}")
    }
}

/// The 1-based line of a byte offset.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted path of the key whose value holds `offset`: where a type
/// error happened. A table's span is only its header, so the search goes
/// through every table rather than down the one that contains the offset.
pub(super) fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    find_key(table, offset, "")
}

fn find_key(table: &DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let path = join(prefix, key.get_ref());
        let here = value.span().contains(&offset) || key.span().contains(&offset);
        match value.get_ref() {
            DeValue::Table(inner) => {
                if let Some(found) = find_key(inner, offset, &path) {
                    return Some(found);
                }
            }
            DeValue::Array(items) => {
                for item in items.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        if let Some(found) = find_key(inner, offset, &path) {
                            return Some(found);
                        }
                        if item.span().contains(&offset) {
                            return Some(path);
                        }
                    }
                }
            }
            _ => {}
        }
        if here {
            return Some(path);
        }
    }
    None
}
