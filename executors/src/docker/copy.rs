//! The builds dir copied rather than bind-mounted
//! ([`BuildsTransfer::Copy`](super::BuildsTransfer)): each step gets a
//! fresh volume at the builds mount, the host's builds dir is copied in
//! through the Engine's archive API before the step starts, and copied
//! back, replacing the host's, once its container has stopped.
//!
//! Why a fresh volume per step rather than one per job: the volume then
//! starts as exactly the host's tree, so what the runner deleted on the
//! host between two steps (an old artifact, a cache it replaced) cannot
//! come back; one volume kept across steps would need every deletion
//! found and replayed, and a missed one would reappear. A volume costs a
//! directory on the daemon's disk, created and removed in milliseconds.
//!
//! Both directions stream: the tar is written on the blocking pool into
//! a small in-memory pipe that feeds the request body, and the response
//! body is read from there as it arrives. A builds dir of any size passes
//! through a few buffers of [`CHUNK`] bytes.

use std::io;
use std::path::Path;

use bollard::Docker;
use bollard::models::{Mount, MountType, MountVolumeOptions, VolumeCreateRequest};
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::TryStreamExt;
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

use super::client::{JobLabels, api_error, error_text, is_not_found};
use super::executor::PathMap;
use super::tree;
use crate::{CopyDirection, ExecutorError};

/// The size of the buffers between the file system and the daemon.
const CHUNK: usize = 256 * 1024;

/// The `io.runner.role` of the volumes that hold a step's builds dir.
pub(crate) const BUILDS_ROLE: &str = "builds";

/// Creates the volume that holds the builds dir of the step whose
/// container is named `container`, labelled like everything of the job
/// so that `cleanup` finds it.
pub(crate) async fn create_builds_volume(
    docker: &Docker,
    labels: &JobLabels,
    container: &str,
) -> Result<String, ExecutorError> {
    let name = format!("{container}-builds");
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(labels.with_role(BUILDS_ROLE, &[])),
            ..VolumeCreateRequest::default()
        })
        .await
        .map_err(|e| api_error(format!("create volume {name}"), &e))?;
    Ok(name)
}

/// The mount of the step's builds volume at `target`.
pub(crate) fn builds_mount(volume: &str, target: &Path) -> Mount {
    Mount {
        typ: Some(MountType::VOLUME),
        source: Some(volume.to_owned()),
        target: Some(target.to_string_lossy().into_owned()),
        // Docker fills a new volume with what the image holds at the
        // mount point; the builds dir must be the host's and nothing else.
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..MountVolumeOptions::default()
        }),
        ..Mount::default()
    }
}

/// Removes a step's builds volume (after its container).
pub(crate) async fn remove_volume(docker: &Docker, name: &str) -> Result<(), ExecutorError> {
    let options = RemoveVolumeOptionsBuilder::default().force(true).build();
    match docker.remove_volume(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api_error(format!("remove volume {name}"), &e)),
    }
}

/// Copies the host's builds dir into the created (not yet started)
/// container `id`, named `container`, at the builds mount.
pub(crate) async fn upload(
    docker: &Docker,
    id: &str,
    container: &str,
    paths: &PathMap,
) -> Result<(), ExecutorError> {
    let fail = |message: String| ExecutorError::BuildsCopy {
        builds_dir: paths.host_root().to_owned(),
        container: container.to_owned(),
        direction: CopyDirection::IntoContainer,
        message,
    };
    let (writer, reader) = tokio::io::duplex(CHUNK);
    let root = paths.host_root().to_owned();
    let mut bridge = SyncIoBridge::new(writer);
    let producer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        tree::write_tree(&root, io::BufWriter::with_capacity(CHUNK, &mut bridge))?;
        // The end of the body: the daemon's extraction finishes.
        bridge.shutdown()
    });
    let options = UploadToContainerOptionsBuilder::default()
        .path(&paths.container_root().to_string_lossy())
        .build();
    let body = bollard::body_try_stream(ReaderStream::with_capacity(reader, CHUNK));
    let sent = docker.upload_to_container(id, Some(options), body).await;
    let produced = producer
        .await
        .unwrap_or_else(|e| Err(io::Error::other(format!("the tar writer failed: {e}"))));
    match (sent, produced) {
        (Ok(()), Ok(())) => Ok(()),
        // A file that could not be read cut the stream short, which the
        // daemon may report as a bare EOF (or even accept): the real
        // cause is the file. The half-filled volume is the step's own and
        // is removed with it.
        (_, Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => Err(fail(tree::describe(&e))),
        // The daemon refused the body, and the writer then found its pipe
        // closed: the daemon's answer says why.
        (Err(e), _) => Err(fail(error_text(&e))),
        (Ok(()), Err(e)) => Err(fail(tree::describe(&e))),
    }
}

/// Copies the builds mount of the stopped container `id`, named
/// `container`, back onto the host, making the host's builds dir equal to
/// it (see [`tree::replace_from_tar`]). A failure leaves the host's
/// builds dir as it was before the step.
pub(crate) async fn download(
    docker: &Docker,
    id: &str,
    container: &str,
    paths: &PathMap,
) -> Result<(), ExecutorError> {
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(&paths.container_root().to_string_lossy())
        .build();
    let stream = docker
        .download_from_container(id, Some(options))
        .map_err(|e| io::Error::other(error_text(&e)));
    let reader = SyncIoBridge::new(StreamReader::new(Box::pin(stream)));
    let target = paths.host_root().to_owned();
    // When this future is dropped (the caller gave up on the step), the
    // blocking copy finishes reading but does not touch the host.
    let abandoned = CancellationToken::new();
    let _on_drop = abandoned.clone().drop_guard();
    let result = tokio::task::spawn_blocking(move || {
        tree::replace_from_tar(&target, io::BufReader::with_capacity(CHUNK, reader), || {
            !abandoned.is_cancelled()
        })
    })
    .await
    .unwrap_or_else(|e| Err(io::Error::other(format!("the tar reader failed: {e}"))));
    result.map_err(|e| ExecutorError::BuildsCopy {
        builds_dir: paths.host_root().to_owned(),
        container: container.to_owned(),
        direction: CopyDirection::OutOfContainer,
        message: tree::describe(&e),
    })
}
