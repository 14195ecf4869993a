//! The builds dir copied in and out of each step (`BuildsTransfer::Copy`):
//! the host's files after a step are exactly what the step left, what the
//! host deleted stays deleted, stopped steps still copy back, no bind
//! mount is involved, nothing is left on the daemon, and a daemon reached
//! over TCP gets copies by itself.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder};
use tokio_util::sync::CancellationToken;

use super::forward::{Fault, Forwarder};
use super::services::greeter;
use super::support::{DockerTarget, copy_options, docker, labelled, request, test_options};
use crate::conformance::Target;
use crate::docker::client::{LABEL_OWNER, LABEL_ROLE, label_filter};
use crate::docker::{BuildsTransfer, DockerExecutor, DockerOptions, DockerPrepared};
use crate::{CopyDirection, Executor, ExecutorError, ExitKind, JobEnv, StepOutcome};

/// Runs `script` as the next step of `prepared`.
async fn step(
    executor: &DockerExecutor,
    prepared: &mut DockerPrepared,
    env: &JobEnv,
    script: &str,
) -> (StepOutcome, String) {
    let mut out = Vec::new();
    let outcome = executor
        .run_step(
            prepared,
            request(env, script),
            &mut out,
            CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("run_step: {e}\n{script}"));
    (outcome, String::from_utf8_lossy(&out).into_owned())
}

/// Every path under `root` with what it is: `dir`, `link -> target`, or
/// the file's content.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let what = if entry.path_is_symlink() {
            format!("link -> {}", fs::read_link(entry.path()).unwrap().display())
        } else if entry.file_type().is_dir() {
            "dir".to_owned()
        } else {
            fs::read_to_string(entry.path()).unwrap()
        };
        found.insert(rel, what);
    }
    found
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// What a step creates, changes and deletes is exactly what the host has
/// afterwards: symlinks as symlinks, empty directories, modes and times.
#[tokio::test]
async fn a_step_creates_changes_and_deletes_files_on_the_host() {
    let t = DockerTarget::with_options(copy_options()).await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let p = &env.project_dir;
    fs::write(p.join("kept"), "kept\n").unwrap();
    fs::write(p.join("changed"), "before\n").unwrap();
    fs::write(p.join("deleted"), "gone soon\n").unwrap();
    fs::create_dir_all(p.join("old-dir/sub")).unwrap();
    fs::write(p.join("old-dir/sub/file"), "x").unwrap();

    let script = "\
cat kept
echo after > changed
rm deleted
rm -r old-dir
echo new > created
ln -s created link
mkdir -p empty/nested
printf '#!/bin/sh\\necho from-script\\n' > run.sh
chmod 0755 run.sh
touch -d '2020-01-02 03:04:05' created
";
    let (outcome, out) = step(&t.executor, &mut prepared, &env, script).await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "{out}");
    assert_eq!(out, "kept\n", "the step saw the host's file");
    assert_eq!(
        tree(p),
        map(&[
            ("changed", "after\n"),
            ("created", "new\n"),
            ("empty", "dir"),
            ("empty/nested", "dir"),
            ("kept", "kept\n"),
            ("link", "link -> created"),
            ("run.sh", "#!/bin/sh\necho from-script\n"),
        ])
    );
    let mode = fs::metadata(p.join("run.sh")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let mtime = fs::metadata(p.join("created")).unwrap().modified().unwrap();
    assert_eq!(
        mtime,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_934_245)
    );

    // The next step runs what the last one left, as the host has it.
    let (outcome, out) = step(&t.executor, &mut prepared, &env, "./run.sh\n").await;
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(out, "from-script\n");
    t.executor.cleanup(prepared).await.unwrap();
}

/// A file the runner removes on the host between two steps (an old
/// artifact, a replaced cache) does not come back in the next step.
#[tokio::test]
async fn what_the_host_removed_between_steps_is_gone_in_the_next() {
    let t = DockerTarget::with_options(copy_options()).await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let (outcome, _) = step(
        &t.executor,
        &mut prepared,
        &env,
        "echo a > a\nmkdir d\necho b > d/b\n",
    )
    .await;
    assert_eq!(outcome.exit, ExitKind::Code(0));
    fs::remove_file(env.project_dir.join("a")).unwrap();
    fs::remove_dir_all(env.project_dir.join("d")).unwrap();
    fs::write(env.project_dir.join("from-host"), "h\n").unwrap();

    let (outcome, out) = step(&t.executor, &mut prepared, &env, "ls -A\n").await;
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(out, "from-host\n");
    t.executor.cleanup(prepared).await.unwrap();
}

/// A step stopped by its timeout or by a cancel still hands back what it
/// wrote before it was stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_steps_still_copy_back() {
    let t = DockerTarget::with_options(copy_options()).await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();

    let mut req = request(&env, "echo partial > timed-out\necho ready\nsleep 1000\n");
    req.timeout = Some(Duration::from_secs(2));
    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            req,
            &mut Vec::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::TimedOut);
    assert_eq!(
        fs::read_to_string(env.project_dir.join("timed-out")).unwrap(),
        "partial\n"
    );

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut sink = move |bytes: &[u8]| {
        if bytes.windows(5).any(|w| w == b"ready") {
            trigger.cancel();
        }
    };
    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "echo partial > cancelled\necho ready\nsleep 1000\n"),
            &mut sink,
            cancel,
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::Cancelled);
    assert_eq!(
        fs::read_to_string(env.project_dir.join("cancelled")).unwrap(),
        "partial\n"
    );
    t.executor.cleanup(prepared).await.unwrap();
}

/// While a step runs, its container mounts a labelled volume at /builds
/// and nothing of the host's builds dir; after `cleanup` no container or
/// volume of the job is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_step_container_has_a_volume_not_a_bind_and_cleanup_removes_it() {
    let t = DockerTarget::with_options(copy_options()).await;
    let env = t.job_env();
    let host_builds = env.builds_dir.clone();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let cancel = CancellationToken::new();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let mut sink = move |bytes: &[u8]| {
        if bytes.windows(5).any(|w| w == b"ready") {
            if let Some(tx) = ready_tx.take() {
                let _ = tx.send(());
            }
        }
    };
    let owner = t.owner().to_owned();
    let stop = cancel.clone();
    let look = async move {
        ready_rx.await.unwrap();
        let docker = docker().await;
        let filter = label_filter(&[(LABEL_OWNER, &owner), (LABEL_ROLE, "step")]);
        let steps = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
            .unwrap();
        let filter = label_filter(&[(LABEL_OWNER, &owner), (LABEL_ROLE, "builds")]);
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
            .unwrap()
            .volumes
            .unwrap_or_default();
        let mut mounts = Vec::new();
        for c in &steps {
            let inspected = docker
                .inspect_container(c.id.as_deref().unwrap(), None)
                .await
                .unwrap();
            mounts.extend(inspected.mounts.unwrap_or_default());
        }
        stop.cancel();
        (steps.len(), volumes, mounts)
    };
    let run = t.executor.run_step(
        &mut prepared,
        request(&env, "echo ready\nsleep 1000\n"),
        &mut sink,
        cancel.clone(),
    );
    let (outcome, (steps, volumes, mounts)) = tokio::join!(run, look);
    assert_eq!(outcome.unwrap().exit, ExitKind::Cancelled);
    assert_eq!(steps, 1, "one step container was running");
    assert_eq!(volumes.len(), 1, "one builds volume: {volumes:?}");
    let binds: Vec<_> = mounts
        .iter()
        .filter(|m| m.typ.as_deref() == Some("bind"))
        .collect();
    assert!(binds.is_empty(), "bind mounts in copy mode: {binds:?}");
    assert!(
        !mounts.iter().any(|m| m
            .source
            .as_deref()
            .is_some_and(|s| Path::new(s).starts_with(&host_builds))),
        "the host's builds dir is mounted: {mounts:?}"
    );
    let builds = mounts
        .iter()
        .find(|m| m.destination.as_deref() == Some("/builds"))
        .unwrap_or_else(|| panic!("nothing at /builds: {mounts:?}"));
    assert_eq!(builds.name.as_deref(), Some(volumes[0].name.as_str()));

    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(labelled(t.owner()).await, Default::default(), "left over");
}

/// A daemon reached over TCP may be another machine: `Auto` copies, and
/// a job's steps work end to end through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_over_tcp_gets_copies_by_itself() {
    let forwarder = Forwarder::start(Fault::None).await;
    let options = DockerOptions {
        host: Some(forwarder.host()),
        ..test_options()
    };
    assert_eq!(options.builds_transfer, BuildsTransfer::Auto);
    let t = DockerTarget::with_options(options).await;
    assert_eq!(t.executor.builds_transfer(), BuildsTransfer::Copy);
    assert_eq!(t.executor.host(), forwarder.host());

    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    assert_eq!(
        t.executor.job_path(&prepared, &env.project_dir),
        Some("/builds/group/project".into())
    );
    fs::write(env.project_dir.join("input"), "from the host\n").unwrap();
    let (outcome, out) = step(
        &t.executor,
        &mut prepared,
        &env,
        "pwd\ncat input\necho from the container > output\n",
    )
    .await;
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(out, "/builds/group/project\nfrom the host\n");
    assert_eq!(
        fs::read_to_string(env.project_dir.join("output")).unwrap(),
        "from the container\n"
    );
    assert!(
        forwarder.connections() > 0,
        "the daemon was reached over TCP"
    );
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(labelled(t.owner()).await, Default::default(), "left over");
}

/// A connection that breaks while the builds dir goes in is an error
/// naming the container and the direction; nothing stays behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_in_that_breaks_is_a_clear_error() {
    let forwarder = Forwarder::start(Fault::DropUpload).await;
    let t = DockerTarget::with_options(DockerOptions {
        host: Some(forwarder.host()),
        ..test_options()
    })
    .await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    fs::write(env.project_dir.join("input"), vec![b'x'; 1 << 20]).unwrap();
    let err = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "echo never\n"),
            &mut Vec::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let ExecutorError::BuildsCopy {
        container,
        direction,
        ..
    } = &err
    else {
        panic!("expected a copy error: {err:?}");
    };
    assert_eq!(*direction, CopyDirection::IntoContainer);
    assert!(container.ends_with("-step_script-1"), "{container}");
    assert!(
        err.to_string().starts_with(&format!(
            "failed to copy the builds dir {} into container {container}: ",
            prepared.paths().host_root().display()
        )),
        "{err}"
    );
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(labelled(t.owner()).await, Default::default(), "left over");
}

/// A download that breaks half-way leaves the host's builds dir exactly
/// as it was before the step, and no staging directory beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_back_that_breaks_leaves_the_host_as_it_was() {
    let forwarder = Forwarder::start(Fault::CutDownload(256 * 1024)).await;
    let t = DockerTarget::with_options(DockerOptions {
        host: Some(forwarder.host()),
        ..test_options()
    })
    .await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    fs::write(env.project_dir.join("before"), "host\n").unwrap();
    let err = t
        .executor
        .run_step(
            &mut prepared,
            request(
                &env,
                "rm before\nhead -c 4000000 /dev/zero > big\necho made > small\n",
            ),
            &mut Vec::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let ExecutorError::BuildsCopy {
        container,
        direction,
        ..
    } = &err
    else {
        panic!("expected a copy error: {err:?}");
    };
    assert_eq!(*direction, CopyDirection::OutOfContainer);
    assert!(
        err.to_string()
            .contains(&format!(" back from container {container}: ")),
        "{err}"
    );
    assert_eq!(
        tree(&env.project_dir),
        map(&[("before", "host\n")]),
        "the host is as before the step"
    );
    let beside: Vec<String> = fs::read_dir(env.builds_dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, ["builds"], "nothing staged is left");
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(labelled(t.owner()).await, Default::default(), "left over");
}

/// The job's volumes and services work as with a bind mount: a temporary
/// volume outlives each step's container, a service answers by alias,
/// and `cleanup` removes them with the builds volumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_services_work_as_with_a_bind_mount() {
    let t = DockerTarget::with_options(DockerOptions {
        volumes: vec!["/scratch".to_owned()],
        ..copy_options()
    })
    .await;
    let env = t.job_env().with_service(greeter());
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let (outcome, out) = step(
        &t.executor,
        &mut prepared,
        &env,
        "echo kept > /scratch/f\nnc db 8080 </dev/null\n",
    )
    .await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "{out}");
    assert_eq!(out, "from-service \n");
    let (outcome, out) = step(&t.executor, &mut prepared, &env, "cat /scratch/f\n").await;
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(out, "kept\n");
    assert!(
        !env.project_dir.join("f").exists() && tree(&env.builds_dir).len() == 2,
        "only the builds dir comes back: {:?}",
        tree(&env.builds_dir)
    );
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(labelled(t.owner()).await, Default::default(), "left over");
}

/// A runner that died mid-step (nothing dropped, nothing cleaned up)
/// leaves a step container and its builds volume; `remove_leftovers`
/// finds both by their labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_leftovers_removes_builds_volumes_of_a_crashed_runner() {
    let crashed = DockerTarget::with_options(copy_options()).await;
    let env = crashed.job_env();
    let mut prepared = crashed.executor.prepare(&env).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let mut sink = move |bytes: &[u8]| {
        if bytes.windows(5).any(|w| w == b"ready") {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        }
    };
    let mut running = Box::pin(crashed.executor.run_step(
        &mut prepared,
        request(&env, "echo ready\nsleep 1000\n"),
        &mut sink,
        CancellationToken::new(),
    ));
    tokio::select! {
        _ = &mut running => panic!("the step ended"),
        r = rx => r.unwrap(),
    }
    // What a SIGKILL leaves: no destructor runs.
    std::mem::forget(running);
    let owner = crashed.owner().to_owned();
    crashed.keep_objects();

    let (containers, _, volumes) = labelled(&owner).await;
    assert_eq!((containers.len(), volumes.len()), (1, 1), "{volumes:?}");
    assert!(volumes[0].ends_with("-builds"), "{volumes:?}");
    let fresh = DockerTarget::with_options(DockerOptions {
        owner: owner.clone(),
        ..copy_options()
    })
    .await;
    let report = fresh.executor.remove_leftovers().await.unwrap();
    assert_eq!(report.volumes, volumes, "{report:?}");
    assert_eq!(labelled(&owner).await, Default::default());
}
