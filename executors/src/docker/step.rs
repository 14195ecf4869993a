//! One step in a container of its own: create it, attach, start, feed the
//! script on stdin, stream the output, wait for the exit, stop it on
//! timeout or cancellation, and remove it, always.
//!
//! GitLab creates a container per stage too; a fresh one per step means
//! nothing but the files of the builds dir and the job's volumes carries
//! over from one step to the next, as with the shell executor.
//!
//! When the builds dir is copied rather than bind-mounted, the step also
//! gets a fresh volume for it, filled before the start and copied back
//! after the stop (see `copy`).

use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{JobLabels, api_error, error_text, is_not_found, name_safe};
use super::copy;
use super::executor::PathMap;
use super::wrapper::{self, Report, StderrSplitter};
use crate::{ExecutorError, ExitKind, OutputSink, StepOutcome, StepRequest};

/// What every step container of a job shares, fixed by `prepare`.
#[derive(Debug, Clone)]
pub(crate) struct StepSetup {
    /// The image as the job named it, for messages.
    pub image: String,
    /// The image id containers are created from.
    pub image_id: String,
    /// The entrypoint override (`[""]` clears the image's).
    pub entrypoint: Option<Vec<String>>,
    /// Where the host's builds dir is in the containers.
    pub paths: PathMap,
    /// How it gets there.
    pub builds: Builds,
    /// The job's volumes.
    pub mounts: Vec<Mount>,
    /// `host:container[:mode]` binds from the options, passed through.
    pub binds: Vec<String>,
    /// The job's network, when it has services.
    pub network: Option<String>,
    /// The container settings of the options (privileges, limits, name
    /// resolution...) with the network the steps join; the step's mounts
    /// are added to it.
    pub host_config: HostConfig,
    /// The user the steps run as; `None` is the image's.
    pub user: Option<String>,
    pub labels: JobLabels,
    pub umask: Option<u32>,
    pub timing: Timing,
}

/// How a step's container sees the builds dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builds {
    /// The host's builds dir, bind-mounted.
    Bind,
    /// Copied into a fresh volume at the mount point before the step, and
    /// back onto the host after it.
    Copy,
}

/// The timing knobs of a step (see `DockerOptions`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub term_grace: Duration,
    pub kill_wait: Duration,
    pub output_leak_wait: Duration,
}

/// Runs `request` in a new container, `seq` being the step's number in
/// the job (for the container's name).
pub(crate) async fn run_step(
    docker: &Docker,
    setup: &StepSetup,
    seq: u32,
    request: StepRequest,
    workdir: PathBuf,
    sink: &mut dyn OutputSink,
    cancel: CancellationToken,
) -> Result<StepOutcome, ExecutorError> {
    let started = Instant::now();
    if cancel.is_cancelled() {
        // Cancelled between two steps: nothing to start.
        return Ok(StepOutcome {
            exit: ExitKind::Cancelled,
            duration: started.elapsed(),
            warnings: Vec::new(),
        });
    }
    let name = format!(
        "{}-{}-{seq}",
        setup.labels.name_prefix(),
        name_safe(&request.stage)
    );
    let mut guard = RemoveGuard {
        docker: docker.clone(),
        name,
        id: None,
        volume: None,
        armed: true,
    };
    let result = in_container(docker, setup, request, workdir, sink, cancel, &mut guard).await;
    // Removed here rather than by the guard, so that they are gone when
    // the step returns; the job's cleanup finds by label what this misses.
    let mut removal_errors = Vec::new();
    if let Some(id) = &guard.id {
        if let Err(e) = remove_container(docker, id).await {
            removal_errors.push(e.to_string());
        }
    }
    if let Some(volume) = &guard.volume {
        if let Err(e) = copy::remove_volume(docker, volume).await {
            removal_errors.push(e.to_string());
        }
    }
    guard.armed = false;
    let mut outcome = result?;
    outcome.warnings.extend(removal_errors);
    outcome.duration = started.elapsed();
    Ok(outcome)
}

/// Creates the step's container, named `guard.name` (and its builds
/// volume, when copying), fills it, runs it and copies back; records
/// what it created in `guard` for the caller to remove.
async fn in_container(
    docker: &Docker,
    setup: &StepSetup,
    request: StepRequest,
    workdir: PathBuf,
    sink: &mut dyn OutputSink,
    cancel: CancellationToken,
    guard: &mut RemoveGuard,
) -> Result<StepOutcome, ExecutorError> {
    let started = Instant::now();
    let name = guard.name.clone();
    let name = name.as_str();
    let paths = &setup.paths;
    let builds_mount = match setup.builds {
        Builds::Bind => Mount {
            typ: Some(MountType::BIND),
            source: Some(paths.host_root().to_string_lossy().into_owned()),
            target: Some(paths.container_root().to_string_lossy().into_owned()),
            ..Mount::default()
        },
        Builds::Copy => {
            let volume = copy::create_builds_volume(docker, &setup.labels, name).await?;
            guard.volume = Some(volume.clone());
            copy::builds_mount(&volume, paths.container_root())
        }
    };
    let body = container_body(setup, &request, workdir, builds_mount);
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(name).build()),
            body,
        )
        .await
        .map_err(|e| {
            api_error(
                format!("create container {name} for step {}", request.stage),
                &e,
            )
        })?;
    guard.id = Some(created.id.clone());
    if setup.builds == Builds::Copy {
        // A big builds dir takes a while to copy: a cancel meanwhile ends
        // the step before it starts, the host's files untouched.
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                return Ok(StepOutcome {
                    exit: ExitKind::Cancelled,
                    duration: started.elapsed(),
                    warnings: Vec::new(),
                });
            }
            res = copy::upload(docker, &created.id, name, paths) => res?,
        }
    }
    let outcome = drive(docker, setup, &created.id, name, request, sink, cancel).await?;
    if setup.builds == Builds::Copy {
        // The container has stopped, however the step ended (its exit,
        // a timeout, a cancel): what it left is the job's to keep.
        copy::download(docker, &created.id, name, paths).await?;
    }
    Ok(outcome)
}

fn container_body(
    setup: &StepSetup,
    request: &StepRequest,
    workdir: PathBuf,
    builds_mount: Mount,
) -> ContainerCreateBody {
    let mut mounts = Vec::with_capacity(setup.mounts.len() + 1);
    mounts.push(builds_mount);
    mounts.extend(setup.mounts.iter().cloned());
    ContainerCreateBody {
        image: Some(setup.image_id.clone()),
        entrypoint: setup.entrypoint.clone(),
        cmd: Some(vec![
            "sh".to_owned(),
            "-c".to_owned(),
            wrapper::script(request.shell, setup.umask),
        ]),
        env: Some(
            request
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        working_dir: Some(workdir.to_string_lossy().into_owned()),
        labels: Some(setup.labels.with_role("step", &[("stage", &request.stage)])),
        // The script arrives on stdin, which closes once it is written:
        // a command that reads stdin sees its end, not a hang.
        open_stdin: Some(true),
        stdin_once: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        user: setup.user.clone(),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            binds: (!setup.binds.is_empty()).then(|| setup.binds.clone()),
            ..setup.host_config.clone()
        }),
        ..ContainerCreateBody::default()
    }
}

/// Attach, start, and see the container to its end.
async fn drive(
    docker: &Docker,
    setup: &StepSetup,
    id: &str,
    name: &str,
    request: StepRequest,
    sink: &mut dyn OutputSink,
    cancel: CancellationToken,
) -> Result<StepOutcome, ExecutorError> {
    let started = Instant::now();
    // Attached before the start, so that no output is missed.
    let attached = docker
        .attach_container(
            id,
            Some(
                AttachContainerOptionsBuilder::default()
                    .stream(true)
                    .stdin(true)
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        )
        .await
        .map_err(|e| api_error(format!("attach to container {name}"), &e))?;
    if let Err(e) = docker.start_container(id, None).await {
        let message = error_text(&e);
        // The wrapper runs as `sh -c`: an image with no `sh` at all fails
        // right here, before any script runs.
        if message.contains("\"sh\"")
            && (message.contains("not found") || message.contains("no such file"))
        {
            return Err(no_shell(setup, &request));
        }
        return Err(ExecutorError::Docker {
            action: format!("start container {name}"),
            message,
        });
    }
    let wait_error = |message: String| ExecutorError::Docker {
        action: format!("wait for container {name}"),
        message,
    };
    let mut wait = Box::pin(exit_code(docker, id));
    let mut pump = Pump {
        output: attached.output,
        sink,
        stderr: StderrSplitter::default(),
        eof: false,
        error: None,
    };
    let mut warnings = Vec::new();

    let deadline = request.timeout.map(|t| started + t);
    let mut stop: Option<ExitKind> = None;
    let mut code: Option<i64> = None;
    {
        let mut feed = std::pin::pin!(feed_script(attached.input, request.script.as_bytes()));
        let mut feeding = true;
        let mut timer = std::pin::pin!(sleep_until_opt(deadline));
        loop {
            tokio::select! {
                // The same priorities as the shell executor: the script's
                // own end first, output last so that a job printing
                // without pause cannot starve the other events.
                biased;
                res = &mut wait => {
                    code = Some(res.map_err(wait_error)?);
                    break;
                }
                () = &mut timer => {
                    stop = Some(ExitKind::TimedOut);
                    break;
                }
                () = cancel.cancelled() => {
                    stop = Some(ExitKind::Cancelled);
                    break;
                }
                res = &mut feed, if feeding => {
                    feeding = false;
                    if let Err(e) = res {
                        warnings.push(format!("failed to write the script to the container: {e}"));
                    }
                }
                () = pump.read_once() => {}
            }
        }
    }

    if stop.is_some() {
        // SIGTERM reaches the wrapper (PID 1), which passes it to every
        // process of the container; SIGKILL after the grace ends them all.
        kill(docker, id, name, "SIGTERM").await?;
        let grace_end = Instant::now() + setup.timing.term_grace;
        code = pump
            .pump_until(&mut wait, grace_end)
            .await
            .transpose()
            .map_err(wait_error)?;
        if code.is_none() {
            kill(docker, id, name, "SIGKILL").await?;
            let kill_end = Instant::now() + setup.timing.kill_wait;
            code = pump
                .pump_until(&mut wait, kill_end)
                .await
                .transpose()
                .map_err(wait_error)?;
            if code.is_none() {
                return Err(ExecutorError::ContainerUnkillable {
                    container: name.to_owned(),
                    waited: setup.timing.kill_wait,
                });
            }
        }
    }

    // The container has stopped, so every process that held its output
    // is dead and the end of the stream is due.
    if !pump
        .until_eof(Instant::now() + setup.timing.output_leak_wait)
        .await
    {
        warnings.push(format!(
            "the output of container {name} stayed open {:?} after it stopped",
            setup.timing.output_leak_wait
        ));
    }
    let rest = pump.stderr.finish();
    if !rest.is_empty() {
        pump.sink.output(&rest);
    }
    if let Some(e) = pump.error.take() {
        warnings.push(format!("reading the output failed: {e}"));
    }
    for report in std::mem::take(&mut pump.stderr.reports) {
        match report {
            Report::NoShell => return Err(no_shell(setup, &request)),
            // A stopped step's processes are expected to be there.
            Report::Leftover(list) if stop.is_none() => warnings.push(format!(
                "background processes still running when the step ended were killed: {list}"
            )),
            Report::Leftover(_) => {}
        }
    }

    let exit = match (stop, code) {
        (Some(kind), _) => kind,
        // Exit codes are 0..=255; anything else would be a daemon oddity.
        (None, Some(code)) => ExitKind::Code(i32::try_from(code).unwrap_or(-1)),
        (None, None) => ExitKind::Code(-1),
    };
    Ok(StepOutcome {
        exit,
        duration: started.elapsed(),
        warnings,
    })
}

fn no_shell(setup: &StepSetup, request: &StepRequest) -> ExecutorError {
    ExecutorError::NoShellInImage {
        image: setup.image.clone(),
        tried: wrapper::candidates(request.shell)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// The container's exit code, once it has stopped.
async fn exit_code(docker: &Docker, id: &str) -> Result<i64, String> {
    let mut stream = docker.wait_container(id, None);
    match stream.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        // bollard turns a non-zero exit into an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(error_text(&e)),
        None => Err("the daemon closed the wait without a status".to_owned()),
    }
}

/// Sends `signal` to the container's PID 1. A container that already
/// stopped is not an error: that is what the signal was for.
async fn kill(docker: &Docker, id: &str, name: &str, signal: &str) -> Result<(), ExecutorError> {
    let options = KillContainerOptionsBuilder::default()
        .signal(signal)
        .build();
    match docker.kill_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) || is_not_running(&e) => Ok(()),
        Err(e) => Err(api_error(format!("send {signal} to container {name}"), &e)),
    }
}

fn is_not_running(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

/// Removes a container and its anonymous volumes (an image's `VOLUME`s
/// get one per container), whatever its state.
pub(crate) async fn remove_container(docker: &Docker, id: &str) -> Result<(), ExecutorError> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(api_error(format!("remove container {id}"), &e)),
    }
}

/// Writes the script to the container's stdin, then closes it so that
/// the shell sees the end of the script.
async fn feed_script(
    mut input: Pin<Box<dyn AsyncWrite + Send>>,
    script: &[u8],
) -> std::io::Result<()> {
    let written = input.write_all(script).await;
    let closed = input.shutdown().await;
    match written.and(closed) {
        // The shell exited before reading everything (`exit 3` early in
        // the script) and the daemon dropped the stream: its status says
        // what happened.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

type OutputStream = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// Reads the attached output into the sink.
struct Pump<'s> {
    output: OutputStream,
    sink: &'s mut dyn OutputSink,
    stderr: StderrSplitter,
    eof: bool,
    error: Option<String>,
}

impl Pump<'_> {
    /// Reads one chunk; never completes after the end. Cancel safe, as
    /// `StreamExt::next` is.
    async fn read_once(&mut self) {
        if self.eof {
            return std::future::pending().await;
        }
        match self.output.next().await {
            None => self.eof = true,
            // The wrapper sends everything of the script to stdout.
            Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                self.sink.output(&message)
            }
            Some(Ok(LogOutput::StdErr { message })) => {
                let rest = self.stderr.push(&message);
                if !rest.is_empty() {
                    self.sink.output(&rest);
                }
            }
            Some(Ok(LogOutput::StdIn { .. })) => {}
            Some(Err(e)) => {
                self.eof = true;
                self.error = Some(error_text(&e));
            }
        }
    }

    /// Keeps the output flowing until `fut` completes (`Some`) or
    /// `deadline` passes (`None`): a process blocked on a full output
    /// pipe would never reach the exit we wait for.
    async fn pump_until<F: Future + Unpin>(
        &mut self,
        fut: &mut F,
        deadline: Instant,
    ) -> Option<F::Output> {
        let mut timer = std::pin::pin!(tokio::time::sleep_until(deadline));
        loop {
            tokio::select! {
                biased;
                out = &mut *fut => return Some(out),
                () = &mut timer => return None,
                () = self.read_once() => {}
            }
        }
    }

    /// Reads until the end or `deadline`; true if the end was reached.
    async fn until_eof(&mut self, deadline: Instant) -> bool {
        let mut timer = std::pin::pin!(tokio::time::sleep_until(deadline));
        while !self.eof {
            tokio::select! {
                biased;
                () = &mut timer => break,
                () = self.read_once() => {}
            }
        }
        self.eof
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Removes the step's container and builds volume if the step's future
/// is dropped (the caller gave up on it): nothing can be awaited in a
/// drop, so the removal runs as a task of its own.
struct RemoveGuard {
    docker: Docker,
    /// The container's name, chosen before it exists.
    name: String,
    id: Option<String>,
    volume: Option<String>,
    armed: bool,
}

impl Drop for RemoveGuard {
    fn drop(&mut self) {
        if !self.armed || (self.id.is_none() && self.volume.is_none()) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let docker = self.docker.clone();
            let id = self.id.take();
            let volume = self.volume.take();
            runtime.spawn(async move {
                // The volume is in use until its container is gone.
                if let Some(id) = id {
                    let _ = remove_container(&docker, &id).await;
                }
                if let Some(volume) = volume {
                    let _ = copy::remove_volume(&docker, &volume).await;
                }
            });
        }
    }
}
