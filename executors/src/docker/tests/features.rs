//! What only the Docker executor has: images and entrypoints, pull
//! policies, paths, the wrapper's reports, clean-up by labels.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::support::{
    BUSYBOX, DockerTarget, NO_SHELL, WITH_ENTRYPOINT, ensure_derived_images, labelled, request,
    test_options,
};
use crate::conformance::Target;
use crate::docker::{DockerExecutor, DockerOptions, PullPolicy};
use crate::{
    AnyExecutor, Executor, ExecutorError, ExitKind, ImageSpec, JobEnv, StepOutcome, StepRequest,
};

/// Prepares `env`, runs `script` in it, cleans up; returns the outcome
/// and the output.
async fn run_in(
    executor: &DockerExecutor,
    env: &JobEnv,
    script: &str,
) -> Result<(StepOutcome, String), ExecutorError> {
    let mut prepared = executor.prepare(env).await?;
    let mut out = Vec::new();
    let res = executor
        .run_step(
            &mut prepared,
            request(env, script),
            &mut out,
            CancellationToken::new(),
        )
        .await;
    executor.cleanup(prepared).await?;
    res.map(|o| (o, String::from_utf8_lossy(&out).into_owned()))
}

#[tokio::test]
async fn the_image_entrypoint_runs_and_can_be_replaced_or_cleared() {
    let t = DockerTarget::new().await;
    let env = t.job_env().with_image(ImageSpec::new(WITH_ENTRYPOINT));
    let (outcome, out) = run_in(&t.executor, &env, "echo script\n").await.unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(
        out, "image-entrypoint\nscript\n",
        "the image's entrypoint runs first"
    );

    let replaced = ImageSpec::new(WITH_ENTRYPOINT).with_entrypoint([
        "/bin/sh",
        "-c",
        "echo job-entrypoint; exec \"$@\"",
        "ep",
    ]);
    let env = t.job_env().with_image(replaced);
    let (_, out) = run_in(&t.executor, &env, "echo script\n").await.unwrap();
    assert_eq!(
        out, "job-entrypoint\nscript\n",
        "the job's entrypoint replaces it"
    );

    let cleared = ImageSpec::new(WITH_ENTRYPOINT).with_entrypoint([""]);
    let env = t.job_env().with_image(cleared);
    let (_, out) = run_in(&t.executor, &env, "echo script\n").await.unwrap();
    assert_eq!(out, "script\n", "[\"\"] clears it");
}

#[tokio::test]
async fn pull_policy_never_on_a_missing_image_fails_clearly() {
    let t = DockerTarget::new().await;
    let image = "local/never-built:runner-test";
    let env = t
        .job_env()
        .with_image(ImageSpec::new(image).with_pull_policy(["never"]));
    let err = t.executor.prepare(&env).await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::ImageNotPresent { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("image {image} is not present locally and the pull policy is never")
    );
    assert_eq!(
        labelled(t.owner()).await,
        Default::default(),
        "nothing left"
    );
}

#[tokio::test]
async fn pull_policy_never_and_if_not_present_use_the_local_image_offline() {
    let t = DockerTarget::new().await;
    for policy in ["never", "if-not-present"] {
        let env = t
            .job_env()
            .with_image(ImageSpec::new(BUSYBOX).with_pull_policy([policy]));
        let (outcome, out) = run_in(&t.executor, &env, "echo local\n").await.unwrap();
        assert_eq!(outcome.exit, ExitKind::Code(0), "{policy}");
        assert_eq!(out, "local\n", "{policy}");
    }
}

/// `always` pulls even a local image: the test image exists in no
/// registry, so the pull fails (whether the machine is online or not),
/// and the error names the image and carries the registry's answer.
#[tokio::test]
async fn pull_policy_always_pulls_and_reports_the_registry_answer() {
    let t = DockerTarget::new().await;
    let env = t
        .job_env()
        .with_image(ImageSpec::new(BUSYBOX).with_pull_policy(["always"]));
    let err = t.executor.prepare(&env).await.unwrap_err();
    let ExecutorError::ImagePull {
        image,
        message,
        hint,
    } = &err
    else {
        panic!("expected a pull error: {err:?}");
    };
    assert_eq!(image, BUSYBOX);
    assert!(!message.is_empty());
    // `always` asked for a pull: the local image was never an option.
    assert_eq!(hint, &None);
    assert!(
        err.to_string()
            .starts_with(&format!("failed to pull image {BUSYBOX}: ")),
        "{err}"
    );
}

/// `if-not-present` on an image that is not there, from a registry that
/// cannot be reached: the error names the image and carries the daemon's
/// answer, and hints at making the image locally.
#[tokio::test]
async fn an_unreachable_registry_hints_at_a_local_image() {
    let t = DockerTarget::new().await;
    // Nothing listens on port 1: unreachable, online or not.
    let image = "127.0.0.1:1/never-built:runner-test";
    let env = t
        .job_env()
        .with_image(ImageSpec::new(image).with_pull_policy(["if-not-present"]));
    let err = t.executor.prepare(&env).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("failed to pull image {image}: ")),
        "{err}"
    );
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    let hint = err.hint().unwrap_or_else(|| panic!("no hint: {err:?}"));
    assert_eq!(
        hint,
        format!(
            "image {image} is not on this machine and no registry is reachable: \
             make it locally with `docker load`, `docker import` or `docker build`"
        )
    );
}

/// Policies are tried in order: a failed `always` falls back to the local
/// copy with `if-not-present`, and says so.
#[tokio::test]
async fn pull_policies_are_tried_in_order() {
    let t = DockerTarget::new().await;
    let env = t
        .job_env()
        .with_image(ImageSpec::new(BUSYBOX).with_pull_policy(["always", "if-not-present"]));
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let notes = prepared.notes().to_vec();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!("failed to pull image {BUSYBOX}: "))
            && notes[0].ends_with("attempt #2: trying \"if-not-present\" pull policy"),
        "{notes:?}"
    );
    let mut out = Vec::new();
    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "echo ran\n"),
            &mut out,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(out, b"ran\n");
    assert_eq!(outcome.warnings, notes, "the first step reports the notes");
}

#[tokio::test]
async fn executor_default_policy_applies_when_the_job_gives_none() {
    let mut options = test_options();
    options.pull_policy = vec![PullPolicy::Never];
    let t = DockerTarget::with_options(options).await;
    let env = t
        .job_env()
        .with_image(ImageSpec::new("local/never-built:runner-test"));
    let err = t.executor.prepare(&env).await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::ImageNotPresent { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_pull_policy_is_an_error() {
    let t = DockerTarget::new().await;
    let env = t
        .job_env()
        .with_image(ImageSpec::new(BUSYBOX).with_pull_policy(["sometimes"]));
    let err = t.executor.prepare(&env).await.unwrap_err();
    assert!(matches!(err, ExecutorError::PullPolicy { .. }), "{err:?}");
}

#[tokio::test]
async fn no_shell_in_the_image_is_a_clear_error() {
    ensure_derived_images();
    let t = DockerTarget::new().await;
    let env = t.job_env().with_image(ImageSpec::new(NO_SHELL));
    let err = run_in(&t.executor, &env, "echo never\n").await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::NoShellInImage { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "no shell found in image {NO_SHELL}: tried /usr/local/bin/bash, "
        )),
        "{err}"
    );
    assert_eq!(
        labelled(t.owner()).await,
        Default::default(),
        "nothing left"
    );
}

#[tokio::test]
async fn no_image_at_all_is_a_clear_error() {
    let mut options = test_options();
    options.default_image = None;
    let executor = super::support::executor(options).await;
    let dir = tempfile::tempdir().unwrap();
    let env = JobEnv::new("77", dir.path().join("b"), dir.path().join("b/p"));
    let err = executor.prepare(&env).await.unwrap_err();
    assert!(
        err.to_string().starts_with("no image to run job 77 in"),
        "{err}"
    );
}

#[tokio::test]
async fn the_daemon_not_answering_is_one_error_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let options = DockerOptions {
        host: Some(format!("unix://{}", socket.display())),
        ..DockerOptions::default()
    };
    let err = DockerExecutor::new(options).await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::DockerUnreachable { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "cannot reach the docker daemon at unix://{} ",
            socket.display()
        )),
        "{err}"
    );
}

/// The host's builds dir is `/builds` in the container, and the step
/// starts in the container path of its (host) workdir.
#[tokio::test]
async fn host_paths_are_seen_under_the_builds_mount() {
    let t = DockerTarget::new().await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let mapped = t.executor.job_path(&prepared, &env.project_dir);
    assert_eq!(mapped.as_deref(), Some(Path::new("/builds/group/project")));
    assert_eq!(
        t.executor.container_path(&prepared, &env.builds_dir),
        Some("/builds".into())
    );
    assert_eq!(t.executor.job_path(&prepared, Path::new("/etc")), None);

    let mut out = Vec::new();
    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "pwd\necho from-container > made-inside\n"),
            &mut out,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(out, b"/builds/group/project\n");
    let written = std::fs::read_to_string(env.project_dir.join("made-inside")).unwrap();
    assert_eq!(written, "from-container\n", "the host sees the file");

    let outside = StepRequest::new("step_script", "true\n", "/etc");
    let err = t
        .executor
        .run_step(
            &mut prepared,
            outside,
            &mut Vec::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExecutorError::OutsideBuildsDir { .. }),
        "{err:?}"
    );
    t.executor.cleanup(prepared).await.unwrap();
}

#[tokio::test]
async fn a_missing_workdir_is_an_environment_error() {
    let t = DockerTarget::new().await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let req = StepRequest::new("step_script", "true\n", env.project_dir.join("nope"));
    let err = t
        .executor
        .run_step(
            &mut prepared,
            req,
            &mut Vec::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    t.executor.cleanup(prepared).await.unwrap();
    assert!(matches!(err, ExecutorError::Directory { .. }), "{err:?}");
}

#[tokio::test]
async fn a_project_dir_outside_the_builds_dir_is_refused() {
    let t = DockerTarget::new().await;
    let root = t.temp_dir();
    let env = JobEnv::new("1", root.join("builds"), root.join("elsewhere/project"));
    let err = t.executor.prepare(&env).await.unwrap_err();
    assert!(
        matches!(err, ExecutorError::OutsideBuildsDir { .. }),
        "{err:?}"
    );
}

/// Each step gets a fresh container: only the builds dir carries over.
#[tokio::test]
async fn steps_share_the_builds_dir_and_nothing_else() {
    let t = DockerTarget::new().await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    for (script, expected) in [
        ("echo a > /tmp/in-container\necho b > kept\n", ""),
        (
            "test -e /tmp/in-container && echo leaked\ncat kept\n",
            "b\n",
        ),
    ] {
        let mut out = Vec::new();
        let outcome = t
            .executor
            .run_step(
                &mut prepared,
                request(&env, script),
                &mut out,
                CancellationToken::new(),
            )
            .await
            .unwrap();
        assert_eq!(outcome.exit, ExitKind::Code(0), "{script}");
        assert_eq!(String::from_utf8_lossy(&out), expected, "{script}");
    }
    t.executor.cleanup(prepared).await.unwrap();
}

/// The wrapper's report names the background processes it killed.
#[tokio::test]
async fn background_warning_names_the_processes() {
    let t = DockerTarget::new().await;
    let env = t.job_env();
    let (outcome, out) = run_in(
        &t.executor,
        &env,
        "sleep 1000 >/dev/null 2>&1 &\nsleep 0.3\necho done\n",
    )
    .await
    .unwrap();
    assert_eq!(out, "done\n");
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    let w = &outcome.warnings[0];
    assert!(
        w.starts_with("background processes still running when the step ended were killed: ")
            && w.ends_with(" (sleep)"),
        "{w}"
    );
}

/// A successful step with nothing left behind has no warning at all.
#[tokio::test]
async fn a_clean_step_has_no_warning() {
    let t = DockerTarget::new().await;
    let (outcome, _) = run_in(&t.executor, &t.job_env(), "echo ok\n")
        .await
        .unwrap();
    assert_eq!(outcome.warnings, Vec::<String>::new());
}

/// The script's shell gets the TERM and can react (GitLab's scripts
/// start with `trap 'exit 1' TERM`); what it prints meanwhile is kept.
#[tokio::test]
async fn output_during_the_grace_is_kept() {
    let t = DockerTarget::new().await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let req = request(
        &env,
        "trap 'echo bye; exit 1' TERM\necho ready\nsleep 1000 & wait\n",
    );
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut out = Vec::new();
    let mut sink = |bytes: &[u8]| {
        out.extend_from_slice(bytes);
        if out.starts_with(b"ready") {
            trigger.cancel();
        }
    };
    let outcome = t
        .executor
        .run_step(&mut prepared, req, &mut sink, cancel)
        .await
        .unwrap();
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(outcome.exit, ExitKind::Cancelled);
    // `bye` proves the TERM reached the script's shell: a KILL after the
    // grace would have left no time for the trap.
    assert_eq!(String::from_utf8_lossy(&out), "ready\nbye\n");
}

/// Timed out, cancelled, or dropped: the step's container is gone when
/// `run_step` returns (or soon after the drop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_steps_leave_no_container() {
    let t = DockerTarget::new().await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();

    let mut req = request(&env, "echo ready\nsleep 1000\n");
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
        labelled(t.owner()).await.0,
        Vec::<String>::new(),
        "after timeout"
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
            request(&env, "echo ready\nsleep 1000\n"),
            &mut sink,
            cancel,
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::Cancelled);
    assert_eq!(
        labelled(t.owner()).await.0,
        Vec::<String>::new(),
        "after cancel"
    );

    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let mut sink = move |bytes: &[u8]| {
        if bytes.windows(5).any(|w| w == b"ready") {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        }
    };
    tokio::select! {
        _ = t.executor.run_step(&mut prepared, request(&env, "echo ready\nsleep 1000\n"), &mut sink, CancellationToken::new()) => {
            panic!("the step ended")
        }
        r = rx => r.unwrap(),
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !labelled(t.owner()).await.0.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped step's container stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.executor.cleanup(prepared).await.unwrap();
}

/// With `umask: Some(0)` everything a job creates in the builds dir is
/// writable by anyone, so a runner that is not root can remove it.
#[tokio::test]
async fn umask_zero_makes_job_files_writable_by_anyone() {
    let mut options = test_options();
    options.umask = Some(0);
    let t = DockerTarget::with_options(options).await;
    let env = t.job_env();
    let (outcome, _) = run_in(&t.executor, &env, "touch file\nmkdir dir\n")
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    let mode = |p: &str| {
        std::fs::metadata(env.project_dir.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("file"), 0o666);
    assert_eq!(mode("dir"), 0o777);
}

/// `AnyExecutor::Docker` forwards everything, path mapping included.
#[tokio::test]
async fn any_executor_forwards_to_docker() {
    let t = DockerTarget::new().await;
    let any = AnyExecutor::Docker(t.executor.clone());
    let env = t.job_env();
    let mut prepared = any.prepare(&env).await.unwrap();
    assert_eq!(
        any.job_path(&prepared, &env.project_dir),
        Some("/builds/group/project".into())
    );
    let mut out = Vec::new();
    let outcome = any
        .run_step(
            &mut prepared,
            request(&env, "echo any\nexit 9\n"),
            &mut out,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    any.cleanup(prepared).await.unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(9));
    assert_eq!(out, b"any\n");
}
