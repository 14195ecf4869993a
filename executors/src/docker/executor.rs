//! The Docker executor: each step of a job in a container of the job's
//! image, the host's builds dir shared with every container (bound or
//! copied).

use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::models::{Mount, MountType, VolumeCreateRequest};
use tokio_util::sync::CancellationToken;

use super::cleanup::{CleanupReport, remove_labelled};
use super::client::{
    self, JobLabels, LABEL_INSTANCE, LABEL_MANAGED, LABEL_OWNER, api_error, new_instance_id,
};
use super::image::ensure_image;
use super::options::{BuildsTransfer, DockerOptions};
use super::policy::check_job;
use super::services::{
    ServiceContext, ServiceStatus, container_logs, create_network, start_services,
};
use super::settings::ContainerSettings;
use super::step::{Builds, StepSetup, Timing, run_step};
use crate::{Executor, ExecutorError, JobEnv, OutputSink, ServiceSpec, StepOutcome, StepRequest};

/// Runs each step in a container, through the Docker Engine API.
///
/// Paths: the runner works on the host (sources, cache, artifacts live in
/// `JobEnv::builds_dir`), and every container sees that directory at
/// `DockerOptions::builds_mount` (`/builds`). A job whose `project_dir`
/// is `<builds_dir>/group/project` on the host thus finds its checkout at
/// `/builds/group/project`, GitLab's `CI_PROJECT_DIR`.
/// `StepRequest::workdir` is given as a HOST path and mapped; paths the
/// runner writes into scripts must be mapped the same way, with
/// [`Executor::job_path`] (or [`PathMap`]).
///
/// How the directory gets there is [`BuildsTransfer`]: bind-mounted for
/// a daemon on this machine, or, for one that cannot see this machine's
/// files, copied into a volume of the step's before it starts and back
/// onto the host, replacing it, after it stops. The paths are the same
/// either way.
///
/// Files a job creates in a bind-mounted builds dir belong to the
/// container's user, root by default. When the runner itself is not
/// root, set `DockerOptions::umask` (the default then) so that it can
/// still remove and replace them. Copied back, they belong to the
/// runner.
#[derive(Debug, Clone)]
pub struct DockerExecutor {
    docker: Docker,
    host: String,
    /// `options.builds_transfer` decided for `host`: `Bind` or `Copy`.
    transfer: BuildsTransfer,
    options: DockerOptions,
    /// The container settings of `options`, checked.
    settings: ContainerSettings,
}

impl DockerExecutor {
    /// Connects to the daemon (`options.host`, else `DOCKER_HOST`, else
    /// `unix:///var/run/docker.sock`) and checks that it answers: a
    /// daemon that does not is one error naming the address. A container
    /// setting the executor cannot use (a malformed `devices` entry) is
    /// an error too, before the daemon is asked.
    ///
    /// Async, unlike `ShellExecutor::new`: asking the daemon is I/O.
    pub async fn new(options: DockerOptions) -> Result<Self, ExecutorError> {
        let settings = ContainerSettings::new(&options)?;
        let env_host = std::env::var("DOCKER_HOST").ok();
        let (host, origin) = client::resolve_host(options.host.as_deref(), env_host);
        let docker = client::connect(&host, origin).await?;
        Ok(DockerExecutor {
            docker,
            transfer: options.builds_transfer.for_host(&host),
            host,
            options,
            settings,
        })
    }

    /// The options this executor was made with.
    pub fn options(&self) -> &DockerOptions {
        &self.options
    }

    /// The daemon's address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How this executor's jobs get their builds dir: `Bind` or `Copy`
    /// (`Auto` decided for [`host`](Self::host)).
    pub fn builds_transfer(&self) -> BuildsTransfer {
        self.transfer
    }

    /// Where the job's containers see `host_path` (see [`PathMap`]).
    pub fn container_path(&self, prepared: &DockerPrepared, host_path: &Path) -> Option<PathBuf> {
        prepared.paths().to_container(host_path)
    }

    /// The last `tail` lines a service printed, for a failure report.
    pub async fn service_logs(
        &self,
        service: &ServiceStatus,
        tail: usize,
    ) -> Result<String, ExecutorError> {
        container_logs(&self.docker, &service.container, tail).await
    }

    /// Removes every container, network and volume this runner (its
    /// `owner`) ever created and did not remove: what a runner killed
    /// with SIGKILL leaves behind.
    ///
    /// Only for when no job of this runner is running (e.g. `runner
    /// cleanup`): it removes the containers of running jobs too.
    pub async fn remove_leftovers(&self) -> Result<CleanupReport, ExecutorError> {
        remove_labelled(
            &self.docker,
            &[(LABEL_MANAGED, "true"), (LABEL_OWNER, &self.options.owner)],
        )
        .await
    }

    /// Everything after the labels are chosen; on failure the caller
    /// removes what was created.
    async fn prepare_labelled(
        &self,
        env: &JobEnv,
        labels: JobLabels,
    ) -> Result<DockerPrepared, ExecutorError> {
        let image = match &env.image {
            Some(spec) if !spec.name.is_empty() => spec.clone(),
            _ => match &self.options.default_image {
                Some(name) => crate::ImageSpec::new(name.clone()),
                None => {
                    return Err(ExecutorError::NoImage {
                        job_id: env.job_id.clone(),
                    });
                }
            },
        };
        // What the runner's configuration refuses fails the job before
        // anything is pulled or started.
        let policies = check_job(&self.options, &image, &env.services)?;
        let paths = PathMap::new(absolute(&env.builds_dir), self.options.builds_mount.clone());
        let mut notes = Vec::new();
        let (entrypoint, services) = self.entrypoints(image.entrypoint, &env.services, &mut notes);
        let local = ensure_image(&self.docker, &image.name, &policies.image, &mut notes).await?;

        let builds = match self.transfer {
            BuildsTransfer::Copy => Builds::Copy,
            // `transfer` is decided in `new`: never `Auto` here.
            BuildsTransfer::Bind | BuildsTransfer::Auto => Builds::Bind,
        };
        let mut mounts = Vec::new();
        let mut binds = Vec::new();
        for (index, spec) in self.options.volumes.iter().enumerate() {
            match parse_volume(spec)? {
                Volume::Bind(bind) => binds.push(bind),
                Volume::Temporary(target) => {
                    let name = format!("{}-vol-{index}", labels.name_prefix());
                    self.docker
                        .create_volume(VolumeCreateRequest {
                            name: Some(name.clone()),
                            labels: Some(labels.with_role("volume", &[])),
                            ..VolumeCreateRequest::default()
                        })
                        .await
                        .map_err(|e| api_error(format!("create volume {name}"), &e))?;
                    mounts.push(Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(name),
                        target: Some(target),
                        ..Mount::default()
                    });
                }
            }
        }

        let (network, services) = if services.is_empty() {
            // No network of its own without services: the default bridge
            // (or `network_mode`) costs nothing to join, a new network does.
            (None, Vec::new())
        } else {
            let network = create_network(&self.docker, &labels).await?;
            let ctx = ServiceContext {
                docker: &self.docker,
                network: &network,
                labels: &labels,
                env: &env.service_env,
                host_config: &self.settings.service,
                wait: self.options.service_wait,
            };
            let services = start_services(&ctx, &services, &policies.services, &mut notes).await?;
            (Some(network), services)
        };
        let mut host_config = self.settings.step.clone();
        host_config.network_mode = network
            .clone()
            .or_else(|| self.options.network_mode.clone());

        Ok(DockerPrepared {
            job_id: env.job_id.clone(),
            setup: StepSetup {
                image: image.name,
                image_id: local.id,
                entrypoint,
                paths,
                builds,
                mounts,
                binds,
                network,
                host_config,
                user: self.settings.user.clone(),
                labels,
                umask: self.options.umask,
                timing: Timing {
                    term_grace: self.options.term_grace,
                    kill_wait: self.options.kill_wait,
                    output_leak_wait: self.options.output_leak_wait,
                },
            },
            services,
            unreported: notes.clone(),
            notes,
            steps: 0,
        })
    }
}

impl DockerExecutor {
    /// The entrypoints of the job's image and services as the containers
    /// get them: the job's, or, with `disable_entrypoint_overwrite`, the
    /// images' own, with gitlab-runner's warning.
    fn entrypoints(
        &self,
        image: Option<Vec<String>>,
        services: &[ServiceSpec],
        notes: &mut Vec<String>,
    ) -> (Option<Vec<String>>, Vec<ServiceSpec>) {
        let mut services = services.to_vec();
        if !self.options.disable_entrypoint_overwrite {
            return (image, services);
        }
        let mut ignored = Vec::new();
        let image = match image {
            Some(entrypoint) if !entrypoint.is_empty() => {
                ignored.push("the job's image".to_owned());
                None
            }
            other => other,
        };
        for service in &mut services {
            if service.entrypoint.as_ref().is_some_and(|e| !e.is_empty()) {
                service.entrypoint = None;
                ignored.push(format!("service {}", service.name));
            }
        }
        if !ignored.is_empty() {
            notes.push(format!(
                "Entrypoint override disabled: disable_entrypoint_overwrite keeps the image's own entrypoint for {}",
                ignored.join(", ")
            ));
        }
        (image, services)
    }
}

/// A Docker job's state between `prepare` and `cleanup`.
#[derive(Debug)]
pub struct DockerPrepared {
    job_id: String,
    setup: StepSetup,
    services: Vec<ServiceStatus>,
    notes: Vec<String>,
    /// Notes not yet given to a step's outcome.
    unreported: Vec<String>,
    steps: u32,
}

impl DockerPrepared {
    /// The job's id.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// How host paths map to container paths.
    pub fn paths(&self) -> &PathMap {
        &self.setup.paths
    }

    /// The job's image, as named.
    pub fn image(&self) -> &str {
        &self.setup.image
    }

    /// The job's network (`CI_BUILD_NETWORK_NAME`), when it has services.
    pub fn network(&self) -> Option<&str> {
        self.setup.network.as_deref()
    }

    /// The services and how waiting for them went.
    pub fn services(&self) -> &[ServiceStatus] {
        &self.services
    }

    /// What `prepare` has to tell the job log: pull policies that fell
    /// through, services that never opened their ports. The first step's
    /// outcome carries them as warnings too.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

impl Executor for DockerExecutor {
    type Prepared = DockerPrepared;

    /// Creates the builds and project directories on the host, makes the
    /// image present as the pull policies allow, creates the job's
    /// temporary volumes, and starts the services on a network of the
    /// job's (only when there are services).
    async fn prepare(&self, env: &JobEnv) -> Result<DockerPrepared, ExecutorError> {
        let builds = absolute(&env.builds_dir);
        let project = absolute(&env.project_dir);
        if !project.starts_with(&builds) {
            return Err(ExecutorError::OutsideBuildsDir {
                path: project,
                builds_dir: builds,
            });
        }
        create_dirs(vec![builds, project]).await?;
        let labels = JobLabels {
            owner: self.options.owner.clone(),
            job_id: env.job_id.clone(),
            instance: new_instance_id(),
        };
        let instance = labels.instance.clone();
        match self.prepare_labelled(env, labels).await {
            Ok(prepared) => Ok(prepared),
            Err(e) => {
                // Services may have started before the failure.
                let _ = remove_labelled(
                    &self.docker,
                    &[
                        (LABEL_INSTANCE, &instance),
                        (LABEL_OWNER, &self.options.owner),
                    ],
                )
                .await;
                Err(e)
            }
        }
    }

    async fn run_step(
        &self,
        prepared: &mut DockerPrepared,
        request: StepRequest,
        sink: &mut dyn OutputSink,
        cancel: CancellationToken,
    ) -> Result<StepOutcome, ExecutorError> {
        let workdir = prepared
            .paths()
            .to_container(&request.workdir)
            .ok_or_else(|| ExecutorError::OutsideBuildsDir {
                path: request.workdir.clone(),
                builds_dir: prepared.paths().host_root().to_owned(),
            })?;
        // Docker would create a missing working directory (as root);
        // the shell executor refuses one, and so does this. One stat: too
        // quick to be worth a blocking-pool thread.
        if !std::fs::metadata(&request.workdir).is_ok_and(|m| m.is_dir()) {
            return Err(ExecutorError::Directory {
                path: request.workdir.clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        prepared.steps += 1;
        let mut outcome = run_step(
            &self.docker,
            &prepared.setup,
            prepared.steps,
            request,
            workdir,
            sink,
            cancel,
        )
        .await?;
        if !prepared.unreported.is_empty() {
            let mut warnings = std::mem::take(&mut prepared.unreported);
            warnings.append(&mut outcome.warnings);
            outcome.warnings = warnings;
        }
        Ok(outcome)
    }

    /// Removes every container, network and temporary volume of the job
    /// (builds volumes included), found by the job's labels, whatever
    /// happened to it. The host's builds dir stays, as with the shell
    /// executor.
    async fn cleanup(&self, prepared: DockerPrepared) -> Result<(), ExecutorError> {
        remove_labelled(
            &self.docker,
            &[
                (LABEL_INSTANCE, &prepared.setup.labels.instance),
                (LABEL_OWNER, &self.options.owner),
            ],
        )
        .await
        .map(drop)
    }

    fn job_path(&self, prepared: &DockerPrepared, host_path: &Path) -> Option<PathBuf> {
        prepared.paths().to_container(host_path)
    }

    fn job_variables(&self, prepared: &DockerPrepared) -> Vec<(String, String)> {
        prepared
            .network()
            .map(|n| vec![("CI_BUILD_NETWORK_NAME".to_owned(), n.to_owned())])
            .unwrap_or_default()
    }

    async fn failure_report(&self, prepared: &DockerPrepared) -> Vec<(String, String)> {
        let mut report = Vec::new();
        for service in prepared.services() {
            let text = match self.service_logs(service, SERVICE_LOG_LINES).await {
                Ok(text) => text,
                Err(err) => format!("(its logs cannot be read: {err})"),
            };
            report.push((format!("Service {} logs", service.name), text));
        }
        report
    }
}

/// How much of each service's log a failed job shows.
const SERVICE_LOG_LINES: usize = 50;

/// How the host's builds dir maps into containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    host: PathBuf,
    container: PathBuf,
}

impl PathMap {
    /// `host` (absolute) is seen as `container` in containers.
    pub fn new(host: impl Into<PathBuf>, container: impl Into<PathBuf>) -> Self {
        PathMap {
            host: host.into(),
            container: container.into(),
        }
    }

    /// The host's builds dir.
    pub fn host_root(&self) -> &Path {
        &self.host
    }

    /// Where containers see it.
    pub fn container_root(&self) -> &Path {
        &self.container
    }

    /// Where containers see `host_path`; `None` when it is outside the
    /// builds dir, which containers do not see.
    pub fn to_container(&self, host_path: &Path) -> Option<PathBuf> {
        let rel = absolute(host_path)
            .strip_prefix(&self.host)
            .ok()?
            .to_owned();
        Some(if rel.as_os_str().is_empty() {
            self.container.clone()
        } else {
            self.container.join(rel)
        })
    }

    /// The host path of `container_path`; `None` outside the mount.
    pub fn to_host(&self, container_path: &Path) -> Option<PathBuf> {
        let rel = container_path.strip_prefix(&self.container).ok()?;
        Some(if rel.as_os_str().is_empty() {
            self.host.clone()
        } else {
            self.host.join(rel)
        })
    }
}

/// `path` made absolute against the current directory, lexically.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

async fn create_dirs(dirs: Vec<PathBuf>) -> Result<(), ExecutorError> {
    // File system calls block; keep them off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        for dir in dirs {
            std::fs::create_dir_all(&dir)
                .map_err(|source| ExecutorError::Directory { path: dir, source })?;
        }
        Ok(())
    })
    .await
    .map_err(|e| ExecutorError::Directory {
        path: PathBuf::new(),
        source: e.into(),
    })?
}

/// One entry of `DockerOptions::volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Volume {
    /// `host:container[:mode]` (or `name:container`), passed to Docker.
    Bind(String),
    /// A bare container path: a fresh volume for the job.
    Temporary(String),
}

fn parse_volume(spec: &str) -> Result<Volume, ExecutorError> {
    let invalid = |reason: &str| ExecutorError::Volume {
        spec: spec.to_owned(),
        reason: reason.to_owned(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [target] if target.starts_with('/') => Ok(Volume::Temporary((*target).to_owned())),
        [_] => Err(invalid("a container path must be absolute")),
        [source, target] | [source, target, _] => {
            if source.is_empty() || !target.starts_with('/') {
                Err(invalid(
                    "expected host:container[:mode] with an absolute container path",
                ))
            } else {
                Ok(Volume::Bind(spec.to_owned()))
            }
        }
        _ => Err(invalid("expected host:container[:mode] or /container/path")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_map_into_the_builds_mount() {
        let map = PathMap::new("/srv/runner/builds", "/builds");
        assert_eq!(
            map.to_container(Path::new("/srv/runner/builds/group/project")),
            Some(PathBuf::from("/builds/group/project"))
        );
        assert_eq!(
            map.to_container(Path::new("/srv/runner/builds")),
            Some(PathBuf::from("/builds"))
        );
        // A sibling whose name only starts the same is outside.
        assert_eq!(map.to_container(Path::new("/srv/runner/builds2/x")), None);
        assert_eq!(map.to_container(Path::new("/etc")), None);
        assert_eq!(
            map.to_host(Path::new("/builds/group/project/sub dir")),
            Some(PathBuf::from("/srv/runner/builds/group/project/sub dir"))
        );
        assert_eq!(map.to_host(Path::new("/tmp")), None);
    }

    #[test]
    fn volumes_are_binds_or_temporary() {
        assert_eq!(
            parse_volume("/cache").unwrap(),
            Volume::Temporary("/cache".into())
        );
        assert_eq!(
            parse_volume("/host/dir:/data:ro").unwrap(),
            Volume::Bind("/host/dir:/data:ro".into())
        );
        assert_eq!(
            parse_volume("named:/data").unwrap(),
            Volume::Bind("named:/data".into())
        );
        for bad in ["cache", ":/x", "/a:rel", "a:/b:c:d"] {
            let err = parse_volume(bad).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid docker volume {bad:?}: ")),
                "{err}"
            );
        }
    }
}
