//! Services: a network per job, a container per service reachable there
//! by its host names, and the wait for its TCP ports.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::time::Instant;

use super::client::{JobLabels, api_error, error_text, name_safe};
use super::image::{ensure_image, service_hostnames};
use super::options::PullPolicy;
use crate::{ExecutorError, ServiceSpec};

/// A service of a job, as started by `prepare`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceStatus {
    /// The service's image, as the job named it.
    pub name: String,
    /// Every host name it answers to on the job's network: those derived
    /// from the image name, then the job's aliases.
    pub hostnames: Vec<String>,
    /// The container's name.
    pub container: String,
    /// The wait for each TCP port it exposes; empty when waiting is off
    /// (`DockerOptions::service_wait` zero).
    pub ports: Vec<PortWait>,
}

/// How waiting for one port of a service went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PortWait {
    /// The TCP port.
    pub port: u16,
    /// True when it accepted a connection before the wait ran out.
    pub open: bool,
    /// How long the runner waited.
    pub waited: Duration,
}

/// Creates the job's network, for its services and steps to share.
pub(crate) async fn create_network(
    docker: &Docker,
    labels: &JobLabels,
) -> Result<String, ExecutorError> {
    let name = labels.name_prefix();
    docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".to_owned()),
            labels: Some(labels.with_role("network", &[])),
            ..NetworkCreateRequest::default()
        })
        .await
        .map_err(|e| api_error(format!("create network {name}"), &e))?;
    Ok(name)
}

/// What starting the services needs besides the specs.
pub(crate) struct ServiceContext<'a> {
    pub docker: &'a Docker,
    pub network: &'a str,
    pub labels: &'a JobLabels,
    pub env: &'a [(String, String)],
    /// The settings of service containers (see `settings`).
    pub host_config: &'a HostConfig,
    /// Zero: do not wait for the ports at all.
    pub wait: Duration,
}

/// Starts every service (`specs[i]` pulled as `policies[i]` allow), then
/// waits (at most `ctx.wait`, all at once) for their TCP ports. Notes for
/// the job log go to `notes`: a port that never opened does not fail the
/// job, as in GitLab.
pub(crate) async fn start_services(
    ctx: &ServiceContext<'_>,
    specs: &[ServiceSpec],
    policies: &[Vec<PullPolicy>],
    notes: &mut Vec<String>,
) -> Result<Vec<ServiceStatus>, ExecutorError> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut started = Vec::new();
    for (index, (spec, policies)) in specs.iter().zip(policies).enumerate() {
        let image = ensure_image(ctx.docker, &spec.name, policies, notes).await?;
        let mut hostnames = Vec::new();
        let wanted = service_hostnames(&spec.name)
            .into_iter()
            .chain(spec.alias_names().map(str::to_owned));
        for name in wanted {
            if taken.insert(name.clone()) {
                hostnames.push(name);
            } else if !hostnames.contains(&name) {
                notes.push(format!(
                    "service {}: host name {name} is already used by another service; skipped",
                    spec.name
                ));
            }
        }
        let container = format!(
            "{}-svc-{index}-{}",
            ctx.labels.name_prefix(),
            name_safe(&hostnames.first().cloned().unwrap_or_default())
        );
        let body = service_body(ctx, spec, &image.id, &hostnames);
        ctx.docker
            .create_container(
                Some(
                    CreateContainerOptionsBuilder::default()
                        .name(&container)
                        .build(),
                ),
                body,
            )
            .await
            .map_err(|e| {
                api_error(
                    format!("create container {container} for service {}", spec.name),
                    &e,
                )
            })?;
        ctx.docker
            .start_container(&container, None)
            .await
            .map_err(|e| api_error(format!("start service {}", spec.name), &e))?;
        let mut ports = image.tcp_ports.clone();
        ports.extend(&spec.ports);
        ports.sort_unstable();
        ports.dedup();
        started.push((spec.name.clone(), hostnames, container, ports));
    }

    if ctx.wait.is_zero() {
        // Waiting is off (`wait_for_services_timeout = -1`): nothing is
        // known of the ports, and nothing is noted.
        return Ok(started
            .into_iter()
            .map(|(name, hostnames, container, _)| ServiceStatus {
                name,
                hostnames,
                container,
                ports: Vec::new(),
            })
            .collect());
    }
    let began = Instant::now();
    let deadline = began + ctx.wait;
    let waits = started.iter().map(|(_, _, container, ports)| async move {
        let ip = container_ip(ctx.docker, container, ctx.network).await;
        let mut results = Vec::new();
        for &port in ports {
            let open = match ip {
                Some(ip) => wait_for_port(SocketAddr::new(ip, port), deadline).await,
                None => false,
            };
            results.push(PortWait {
                port,
                open,
                waited: began.elapsed(),
            });
        }
        results
    });
    let waited = join_all(waits).await;
    let mut statuses = Vec::new();
    for ((name, hostnames, container, ports), results) in started.into_iter().zip(waited) {
        if ports.is_empty() {
            notes.push(format!(
                "service {name} exposes no TCP port; not waiting for it to be ready"
            ));
        }
        for w in results.iter().filter(|w| !w.open) {
            notes.push(format!(
                "service {name} ({}) did not open TCP port {} within {:?}; its logs may say why",
                hostnames.join(", "),
                w.port,
                ctx.wait
            ));
        }
        statuses.push(ServiceStatus {
            name,
            hostnames,
            container,
            ports: results,
        });
    }
    Ok(statuses)
}

fn service_body(
    ctx: &ServiceContext<'_>,
    spec: &ServiceSpec,
    image_id: &str,
    hostnames: &[String],
) -> ContainerCreateBody {
    // The job's variables, then the service's own, which win.
    let mut env: Vec<(String, String)> = Vec::new();
    for (k, v) in ctx.env.iter().chain(&spec.variables) {
        match env.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    ContainerCreateBody {
        image: Some(image_id.to_owned()),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.command.clone(),
        env: Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(ctx.labels.with_role("service", &[("service", &spec.name)])),
        host_config: Some(HostConfig {
            network_mode: Some(ctx.network.to_owned()),
            ..ctx.host_config.clone()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                ctx.network.to_owned(),
                EndpointSettings {
                    aliases: Some(hostnames.to_vec()),
                    ..EndpointSettings::default()
                },
            )])),
        }),
        ..ContainerCreateBody::default()
    }
}

/// The container's address on `network`.
async fn container_ip(docker: &Docker, container: &str, network: &str) -> Option<IpAddr> {
    let inspected = docker.inspect_container(container, None).await.ok()?;
    let networks = inspected.network_settings?.networks?;
    networks.get(network)?.ip_address.as_deref()?.parse().ok()
}

/// Tries to connect to `addr` until it accepts or `deadline` passes.
///
/// The runner connects from the host, to the container's address on the
/// job's bridge network: that works with a daemon on the same Linux host
/// (the case the builds-dir bind mount already requires). GitLab instead
/// runs a helper container on the network, which needs its helper image.
async fn wait_for_port(addr: SocketAddr, deadline: Instant) -> bool {
    loop {
        let attempt = tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(addr)).await;
        match attempt {
            Ok(Ok(_)) => return true,
            Err(_) => return false,
            Ok(Err(_)) => {}
        }
        let next = Instant::now() + Duration::from_millis(100);
        if next >= deadline {
            // Waited the whole bound, so that the report says so.
            tokio::time::sleep_until(deadline).await;
            return false;
        }
        tokio::time::sleep_until(next).await;
    }
}

/// The last `tail` lines of a container's output (stdout and stderr).
pub(crate) async fn container_logs(
    docker: &Docker,
    container: &str,
    tail: usize,
) -> Result<String, ExecutorError> {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&tail.to_string())
        .build();
    let mut logs = docker.logs(container, Some(options));
    let mut text = Vec::new();
    while let Some(item) = logs.next().await {
        match item {
            Ok(chunk) => text.extend_from_slice(&chunk.into_bytes()),
            Err(e) => {
                return Err(ExecutorError::Docker {
                    action: format!("read the logs of {container}"),
                    message: error_text(&e),
                });
            }
        }
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}
