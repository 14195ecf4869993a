//! Removing what the runner created, found by its labels: a job's objects
//! after the job, or everything of a runner after it crashed.

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveVolumeOptionsBuilder,
};
use futures_util::future::join_all;

use super::client::{api_error, error_text, is_not_found, label_filter};
use super::step::remove_container;
use crate::ExecutorError;

/// What a clean-up removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Names of the removed containers.
    pub containers: Vec<String>,
    /// Names of the removed networks.
    pub networks: Vec<String>,
    /// Names of the removed volumes.
    pub volumes: Vec<String>,
}

impl CleanupReport {
    /// True when nothing was there to remove.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

/// Removes every container, network and volume carrying all of `labels`
/// (`key=value` pairs), in that order: a network or volume in use by a
/// container cannot go before it.
///
/// Tries everything before failing: one object that cannot be removed
/// must not keep the others alive. The error then lists every failure.
pub(crate) async fn remove_labelled(
    docker: &Docker,
    labels: &[(&str, &str)],
) -> Result<CleanupReport, ExecutorError> {
    let mut report = CleanupReport::default();
    let mut failures = Vec::new();

    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&label_filter(labels))
                .build(),
        ))
        .await
        .map_err(|e| api_error("list the runner's containers", &e))?;
    let removals = containers.into_iter().filter_map(|c| {
        let id = c.id?;
        // Names come with a leading `/`.
        let name = c
            .names
            .and_then(|n| n.into_iter().next())
            .map_or_else(|| id.clone(), |n| n.trim_start_matches('/').to_owned());
        Some(async move { (name, remove_container(docker, &id).await) })
    });
    for (name, result) in join_all(removals).await {
        match result {
            Ok(()) => report.containers.push(name),
            Err(e) => failures.push(e.to_string()),
        }
    }

    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&label_filter(labels))
                .build(),
        ))
        .await
        .map_err(|e| api_error("list the runner's networks", &e))?;
    for network in networks {
        let Some(id) = network.id else { continue };
        let name = network.name.unwrap_or_else(|| id.clone());
        match docker.remove_network(&id).await {
            Ok(()) => report.networks.push(name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => failures.push(format!("remove network {name}: {}", error_text(&e))),
        }
    }

    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&label_filter(labels))
                .build(),
        ))
        .await
        .map_err(|e| api_error("list the runner's volumes", &e))?;
    for volume in volumes.volumes.unwrap_or_default() {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match docker.remove_volume(&volume.name, Some(options)).await {
            Ok(()) => report.volumes.push(volume.name),
            Err(e) if is_not_found(&e) => {}
            Err(e) => failures.push(format!("remove volume {}: {}", volume.name, error_text(&e))),
        }
    }

    if failures.is_empty() {
        Ok(report)
    } else {
        Err(ExecutorError::Docker {
            action: "clean up".to_owned(),
            message: failures.join("; "),
        })
    }
}
