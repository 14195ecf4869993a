//! The container settings of `DockerOptions` as the Engine API takes
//! them: one `HostConfig` for step containers and one for services, made
//! once per executor, so that a malformed setting is an error when the
//! executor is made rather than in every job.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{DeviceMapping, HostConfig};

use super::options::{DockerOptions, ResourceLimits};
use crate::ExecutorError;

/// What every step and service container of this executor's jobs gets,
/// before the job's own mounts and network.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerSettings {
    /// The host config of step containers.
    pub step: HostConfig,
    /// The user step containers run as.
    pub user: Option<String>,
    /// The host config of service containers.
    pub service: HostConfig,
}

impl ContainerSettings {
    pub(crate) fn new(o: &DockerOptions) -> Result<Self, ExecutorError> {
        let step = HostConfig {
            privileged: Some(o.privileged),
            cap_add: non_empty(&o.cap_add),
            cap_drop: non_empty(&o.cap_drop),
            security_opt: non_empty(&o.security_opt),
            devices: devices("devices", &o.devices)?,
            tmpfs: map(&o.tmpfs),
            sysctls: map(&o.sysctls),
            oom_kill_disable: o.oom_kill_disable.then_some(true),
            group_add: non_empty(&o.group_add),
            ..shared(o, &o.limits)
        };
        let service = HostConfig {
            privileged: Some(o.services_privileged.unwrap_or(o.privileged)),
            security_opt: non_empty(&o.services_security_opt),
            devices: devices("services_devices", &o.services_devices)?,
            tmpfs: map(&o.services_tmpfs),
            ..shared(o, &o.service_limits)
        };
        Ok(ContainerSettings {
            step,
            user: o.user.clone().filter(|u| !u.is_empty()),
            service,
        })
    }
}

/// What step and service containers have in common, as in gitlab-runner:
/// name resolution, `/dev/shm`, and limits of their own kind.
fn shared(o: &DockerOptions, limits: &ResourceLimits) -> HostConfig {
    HostConfig {
        memory: limits.memory,
        memory_swap: limits.memory_swap,
        memory_reservation: limits.memory_reservation,
        nano_cpus: limits.nano_cpus,
        cpu_shares: limits.cpu_shares,
        cpuset_cpus: limits.cpuset_cpus.clone().filter(|c| !c.is_empty()),
        shm_size: o.shm_size,
        extra_hosts: non_empty(&o.extra_hosts),
        dns: non_empty(&o.dns),
        dns_search: non_empty(&o.dns_search),
        ..HostConfig::default()
    }
}

fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

fn map(m: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn devices(key: &str, specs: &[String]) -> Result<Option<Vec<DeviceMapping>>, ExecutorError> {
    if specs.is_empty() {
        return Ok(None);
    }
    specs
        .iter()
        .map(|spec| parse_device(spec).map_err(|reason| invalid(key, spec, reason)))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn invalid(key: &str, value: &str, reason: &str) -> ExecutorError {
    ExecutorError::InvalidSetting {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// `host_path[:container_path[:permissions]]`, gitlab-runner's syntax:
/// the container path defaults to the host's, the permissions to `rwm`.
fn parse_device(spec: &str) -> Result<DeviceMapping, &'static str> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, permissions) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, container] => (*host, *container, "rwm"),
        [host, container, permissions] => (*host, *container, *permissions),
        _ => return Err("expected host_path[:container_path[:permissions]]"),
    };
    if !host.starts_with('/') || !container.starts_with('/') {
        return Err("device paths must be absolute");
    }
    if permissions.is_empty() || !permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err("permissions are letters of rwm");
    }
    Ok(DeviceMapping {
        path_on_host: Some(host.to_owned()),
        path_in_container: Some(container.to_owned()),
        cgroup_permissions: Some(permissions.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_default_their_container_path_and_permissions() {
        let d = parse_device("/dev/fuse").unwrap();
        assert_eq!(d.path_on_host.as_deref(), Some("/dev/fuse"));
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/fuse"));
        assert_eq!(d.cgroup_permissions.as_deref(), Some("rwm"));
        let d = parse_device("/dev/sda:/dev/xvda:r").unwrap();
        assert_eq!(d.path_in_container.as_deref(), Some("/dev/xvda"));
        assert_eq!(d.cgroup_permissions.as_deref(), Some("r"));
        for bad in ["fuse", "/a:/b:r:x", "/a:/b:rx", "/a:b", "/a:/b:"] {
            assert!(parse_device(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_device_is_an_error_naming_its_setting() {
        let o = DockerOptions {
            services_devices: vec!["/dev/x:/dev/y:q".into()],
            ..DockerOptions::default()
        };
        let err = ContainerSettings::new(&o).unwrap_err();
        assert!(err.is_configuration());
        assert_eq!(
            err.to_string(),
            "invalid docker setting services_devices \"/dev/x:/dev/y:q\": permissions are letters of rwm"
        );
    }

    #[test]
    fn services_follow_privileged_unless_told_otherwise() {
        let mut o = DockerOptions {
            privileged: true,
            ..DockerOptions::default()
        };
        let s = ContainerSettings::new(&o).unwrap();
        assert_eq!(s.step.privileged, Some(true));
        assert_eq!(s.service.privileged, Some(true));
        o.services_privileged = Some(false);
        let s = ContainerSettings::new(&o).unwrap();
        assert_eq!(s.step.privileged, Some(true));
        assert_eq!(s.service.privileged, Some(false));
        let s = ContainerSettings::new(&DockerOptions::default()).unwrap();
        assert_eq!(s.step.privileged, Some(false));
        assert_eq!(s.service.privileged, Some(false));
    }

    #[test]
    fn limits_go_to_their_own_kind_of_container() {
        let mut o = DockerOptions::default();
        o.limits.memory = Some(1 << 30);
        o.service_limits.nano_cpus = Some(500_000_000);
        o.cap_drop = vec!["NET_RAW".into()];
        o.dns = vec!["10.0.0.2".into()];
        let s = ContainerSettings::new(&o).unwrap();
        assert_eq!(s.step.memory, Some(1 << 30));
        assert_eq!(s.step.nano_cpus, None);
        assert_eq!(s.service.memory, None);
        assert_eq!(s.service.nano_cpus, Some(500_000_000));
        // Capabilities are the job's; name resolution is everyone's.
        assert_eq!(s.step.cap_drop, Some(vec!["NET_RAW".to_owned()]));
        assert_eq!(s.service.cap_drop, None);
        assert_eq!(s.service.dns, Some(vec!["10.0.0.2".to_owned()]));
    }
}
