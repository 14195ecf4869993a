//! What the Docker tests share: the target of the conformance suite, the
//! test images, and views of what the daemon holds.
//!
//! The tests need a daemon and the image `local/busybox:runner-test`;
//! `scripts/docker-setup` provides both. Without them a test FAILS, with
//! a message saying so: a skipped test would pass silently on a machine
//! that never ran it. The other images are derived here with the docker
//! CLI, from the busybox one.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};

use crate::conformance::{PROBE_VAR, Target};
use crate::docker::client::{LABEL_OWNER, label_filter, new_instance_id};
use crate::docker::{BuildsTransfer, DockerExecutor, DockerOptions};
use crate::shell::procfs::{self, EnvVar};
use crate::{JobEnv, StepRequest};

/// The image every test runs in: busybox and nothing else.
pub(crate) const BUSYBOX: &str = "local/busybox:runner-test";
/// An image with one static binary and no shell.
pub(crate) const NO_SHELL: &str = "local/noshell:runner-test";
/// Busybox with an `ENTRYPOINT` that announces itself, then runs its
/// arguments.
pub(crate) const WITH_ENTRYPOINT: &str = "local/busybox-entrypoint:runner-test";

const SETUP_HINT: &str =
    "the Docker tests need a running daemon and the test image: run scripts/docker-setup";

/// Options that keep tests quick, with an owner of the test's own so that
/// what one test finds by label is its own, whatever runs beside it.
pub(crate) fn test_options() -> DockerOptions {
    DockerOptions {
        default_image: Some(BUSYBOX.to_owned()),
        term_grace: Duration::from_secs(2),
        output_leak_wait: Duration::from_secs(1),
        service_wait: Duration::from_secs(20),
        owner: format!("test-{}", new_instance_id()),
        ..DockerOptions::default()
    }
}

/// [`test_options`] with the builds dir copied in and out of every step
/// instead of bind-mounted.
pub(crate) fn copy_options() -> DockerOptions {
    DockerOptions {
        builds_transfer: BuildsTransfer::Copy,
        ..test_options()
    }
}

/// An executor with `options`; fails the test, saying what to do, when
/// there is no daemon or no test image.
pub(crate) async fn executor(options: DockerOptions) -> DockerExecutor {
    let executor = DockerExecutor::new(options)
        .await
        .unwrap_or_else(|e| panic!("{SETUP_HINT}\n({e})"));
    let present = docker().await.inspect_image(BUSYBOX).await.is_ok();
    assert!(present, "{SETUP_HINT}\n(image {BUSYBOX} is missing)");
    executor
}

/// A client of the test daemon, for looking behind the executor's back.
pub(crate) async fn docker() -> Docker {
    Docker::connect_with_defaults()
        .expect(SETUP_HINT)
        .negotiate_version()
        .await
        .unwrap_or_else(|e| panic!("{SETUP_HINT}\n({e})"))
}

/// Makes the derived test images (once per process; concurrent processes
/// racing to tag the same image do no harm).
pub(crate) fn ensure_derived_images() {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    if !image_exists(NO_SHELL) {
        // One static binary (busybox, under a name that is no applet),
        // no /bin/sh: `docker import` of a tar holding just that.
        let busybox = host_busybox();
        sh(&format!(
            "set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; cp '{busybox}' \"$d/probe\"; \
             tar -C \"$d\" -c . | docker import - {NO_SHELL} >/dev/null"
        ));
    }
    if !image_exists(WITH_ENTRYPOINT) {
        sh(&format!(
            "set -e; c=$(docker create {BUSYBOX} true); \
             docker commit --change 'ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo image-entrypoint; exec \\\"$@\\\"\", \"ep\"]' \
             \"$c\" {WITH_ENTRYPOINT} >/dev/null; docker rm \"$c\" >/dev/null"
        ));
    }
    *done = true;
}

fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn host_busybox() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v busybox"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(!path.is_empty(), "{SETUP_HINT}\n(busybox is not installed)");
    path
}

fn sh(script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{SETUP_HINT}\nimage set-up failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the daemon holds with `owner`'s label: (containers, networks,
/// volumes), by name.
pub(crate) async fn labelled(owner: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let docker = docker().await;
    let filter = label_filter(&[(LABEL_OWNER, owner)]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect();
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .unwrap()
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    (containers, networks, volumes)
}

/// The conformance suite's view of the Docker executor.
pub(crate) struct DockerTarget {
    pub executor: DockerExecutor,
    without_shell: DockerExecutor,
    dirs: Mutex<Vec<tempfile::TempDir>>,
    sweep: bool,
}

impl DockerTarget {
    pub async fn new() -> Self {
        Self::with_options(test_options()).await
    }

    pub async fn with_options(options: DockerOptions) -> Self {
        ensure_derived_images();
        let main = executor(options.clone()).await;
        let without_shell = executor(DockerOptions {
            default_image: Some(NO_SHELL.to_owned()),
            ..options
        })
        .await;
        DockerTarget {
            executor: main,
            without_shell,
            dirs: Mutex::new(Vec::new()),
            sweep: true,
        }
    }

    pub fn temp_dir(&self) -> PathBuf {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        self.dirs.lock().unwrap().push(dir);
        path
    }

    pub fn owner(&self) -> &str {
        &self.executor.options().owner
    }

    /// Leaves whatever the daemon holds for this target when it is
    /// dropped, as a runner killed with SIGKILL would.
    pub fn keep_objects(mut self) {
        self.sweep = false;
    }
}

/// A test that fails half-way leaves containers behind; remove them, so
/// that one failure does not litter the daemon (or fail other tests).
impl Drop for DockerTarget {
    fn drop(&mut self) {
        if !self.sweep {
            return;
        }
        let executor = self.executor.clone();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?
                .block_on(executor.remove_leftovers())
                .ok()
        })
        .join();
    }
}

impl Target for DockerTarget {
    type Exec = DockerExecutor;

    fn executor(&self) -> &DockerExecutor {
        &self.executor
    }

    fn job_env(&self) -> JobEnv {
        let root = self.temp_dir();
        JobEnv::new("1", root.join("builds"), root.join("builds/group/project"))
    }

    /// Processes carrying the token anywhere on the host (containers'
    /// processes are the host's too, in their own pid namespaces), and
    /// containers of this test whose environment holds it.
    fn survivors(&self, token: &str) -> Vec<String> {
        let mut found: Vec<String> = procfs::all_pids()
            .into_iter()
            .filter_map(|pid| {
                let stat = procfs::read_stat(pid)?;
                let tagged = procfs::environ_var(pid, PROBE_VAR.as_bytes())
                    == EnvVar::Value(token.as_bytes().to_vec());
                (tagged && !stat.is_zombie()).then(|| format!("{pid} ({})", stat.comm))
            })
            .collect();
        // The trait is synchronous and runs inside the test's runtime,
        // which must not be blocked on: ask the daemon from a thread with
        // a runtime of its own.
        let owner = self.owner().to_owned();
        let probe = format!("{PROBE_VAR}={token}");
        let containers = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(containers_with_env(&owner, &probe))
        })
        .join()
        .unwrap();
        found.extend(containers.into_iter().map(|c| format!("container {c}")));
        found
    }

    fn executor_without_shell(&self) -> DockerExecutor {
        self.without_shell.clone()
    }
}

async fn containers_with_env(owner: &str, entry: &str) -> Vec<String> {
    let docker = docker().await;
    let (names, _, _) = labelled(owner).await;
    let mut found = Vec::new();
    for name in names {
        let Ok(c) = docker
            .inspect_container(name.trim_start_matches('/'), None)
            .await
        else {
            continue;
        };
        let env = c.config.and_then(|c| c.env).unwrap_or_default();
        if env.iter().any(|e| e == entry) {
            found.push(name);
        }
    }
    found
}

/// A request for `script` in the job's project dir, bounded so that a
/// hanging executor fails the test instead of hanging it.
pub(crate) fn request(env: &JobEnv, script: &str) -> StepRequest {
    let mut req = StepRequest::new("step_script", script, &env.project_dir);
    req.timeout = Some(Duration::from_secs(120));
    req
}
