//! What the runner's configuration allows a job (`allowed_images`,
//! `allowed_services`, `allowed_pull_policies`, `services_limit`,
//! `disable_entrypoint_overwrite`, `wait_for_services_timeout = -1`),
//! against a real daemon: a refusal fails `prepare` before anything
//! exists, an allowed job runs.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::services::greeter;
use super::support::{BUSYBOX, DockerTarget, WITH_ENTRYPOINT, labelled, request, test_options};
use crate::conformance::Target;
use crate::docker::{DockerOptions, PullPolicy};
use crate::{Executor, ExecutorError, ExitKind, ImageSpec, JobEnv, ServiceSpec};

/// Options whose default image is not the test image, so that the test
/// image is not allowed merely for being the runner's default.
fn options() -> DockerOptions {
    DockerOptions {
        default_image: Some("other/default:1".into()),
        ..test_options()
    }
}

/// Runs `script` in one step of `env`; the exit, the output and the
/// step's warnings.
async fn run(t: &DockerTarget, env: &JobEnv, script: &str) -> (ExitKind, String, Vec<String>) {
    let mut prepared = t.executor.prepare(env).await.unwrap();
    let mut out = Vec::new();
    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            request(env, script),
            &mut out,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    t.executor.cleanup(prepared).await.unwrap();
    (
        outcome.exit,
        String::from_utf8_lossy(&out).into_owned(),
        outcome.warnings,
    )
}

/// `prepare` fails; the daemon holds nothing of the job.
async fn refused(t: &DockerTarget, env: &JobEnv) -> ExecutorError {
    let err = t.executor.prepare(env).await.unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
    assert_eq!(
        labelled(t.owner()).await,
        Default::default(),
        "nothing was created for a refused job"
    );
    err
}

#[tokio::test]
async fn allowed_images_refuse_an_image_off_the_list_before_anything_starts() {
    let t = DockerTarget::with_options(DockerOptions {
        allowed_images: vec!["other/*".into()],
        ..options()
    })
    .await;
    let env = t.job_env().with_image(ImageSpec::new(BUSYBOX));
    let err = refused(&t, &env).await;
    assert_eq!(
        err.to_string(),
        format!("the \"{BUSYBOX}\" image is not present on list of allowed images: other/*")
    );
    let report = err.report().unwrap();
    assert_eq!(
        report.headline,
        format!("The \"{BUSYBOX}\" image is not present on list of allowed images:")
    );
    assert_eq!(report.lines[0], "- other/*");
}

#[tokio::test]
async fn allowed_images_let_a_matching_image_run() {
    let t = DockerTarget::with_options(DockerOptions {
        allowed_images: vec!["other/*".into(), "local/busybox:*".into()],
        ..options()
    })
    .await;
    let env = t.job_env().with_image(ImageSpec::new(BUSYBOX));
    let (exit, out, _) = run(&t, &env, "echo allowed\n").await;
    assert_eq!((exit, out.as_str()), (ExitKind::Code(0), "allowed\n"));
}

#[tokio::test]
async fn allowed_services_refuse_a_service_off_the_list() {
    let t = DockerTarget::with_options(DockerOptions {
        allowed_services: vec!["postgres:*".into()],
        ..options()
    })
    .await;
    let env = t
        .job_env()
        .with_image(ImageSpec::new(BUSYBOX))
        .with_service(greeter());
    let err = refused(&t, &env).await;
    assert_eq!(
        err.to_string(),
        format!("the \"{BUSYBOX}\" image is not present on list of allowed services: postgres:*")
    );
}

#[tokio::test]
async fn allowed_pull_policies_refuse_a_job_policy_off_the_list_and_allow_one_on_it() {
    let t = DockerTarget::with_options(DockerOptions {
        pull_policy: vec![PullPolicy::IfNotPresent],
        allowed_pull_policies: vec![PullPolicy::IfNotPresent, PullPolicy::Never],
        ..test_options()
    })
    .await;
    let env = t
        .job_env()
        .with_image(ImageSpec::new(BUSYBOX).with_pull_policy(["always"]));
    let err = refused(&t, &env).await;
    assert_eq!(
        err.to_string(),
        "pull_policy ([always]) defined in the job is not one of the allowed_pull_policies ([if-not-present never])"
    );
    // `never` is allowed, and the test image is local: it runs.
    let env = t
        .job_env()
        .with_image(ImageSpec::new(BUSYBOX).with_pull_policy(["never"]));
    let (exit, _, _) = run(&t, &env, "true\n").await;
    assert_eq!(exit, ExitKind::Code(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_limit_fails_a_job_with_more_services() {
    let t = DockerTarget::with_options(DockerOptions {
        services_limit: Some(1),
        service_wait: Duration::from_secs(5),
        ..test_options()
    })
    .await;
    let env = t
        .job_env()
        .with_service(greeter())
        .with_service(ServiceSpec::new(BUSYBOX).with_alias("second"));
    let err = refused(&t, &env).await;
    assert!(
        matches!(
            err,
            ExecutorError::TooManyServices {
                requested: 2,
                allowed: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "too many services requested: 2, only 1 allowed (services_limit)"
    );
    // One service is within the limit.
    let env = t.job_env().with_service(greeter());
    let (exit, out, _) = run(&t, &env, "nc db 8080 </dev/null\n").await;
    assert_eq!((exit, out.as_str()), (ExitKind::Code(0), "from-service \n"));
}

#[tokio::test]
async fn disable_entrypoint_overwrite_keeps_the_image_entrypoint_with_a_warning() {
    super::support::ensure_derived_images();
    let t = DockerTarget::with_options(DockerOptions {
        disable_entrypoint_overwrite: true,
        ..test_options()
    })
    .await;
    let image = ImageSpec::new(WITH_ENTRYPOINT).with_entrypoint([
        "/bin/sh",
        "-c",
        "echo job-entrypoint; exec \"$@\"",
        "ep",
    ]);
    let env = t.job_env().with_image(image);
    let (exit, out, warnings) = run(&t, &env, "echo script\n").await;
    assert_eq!(exit, ExitKind::Code(0));
    assert_eq!(
        out, "image-entrypoint\nscript\n",
        "the job's entrypoint is refused"
    );
    assert_eq!(
        warnings,
        [
            "Entrypoint override disabled: disable_entrypoint_overwrite keeps the image's own entrypoint for the job's image"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_service_wait_does_not_wait_for_ports() {
    let t = DockerTarget::with_options(DockerOptions {
        service_wait: Duration::ZERO,
        ..test_options()
    })
    .await;
    // Its port never opens: waited for, this would take the whole bound.
    let silent = ServiceSpec::new(BUSYBOX)
        .with_alias("silent")
        .with_command(["sleep", "1000"])
        .with_port(9999);
    let env = t.job_env().with_service(silent);
    let began = Instant::now();
    let prepared = t.executor.prepare(&env).await.unwrap();
    let took = began.elapsed();
    let services = prepared.services().to_vec();
    let notes = prepared.notes().to_vec();
    t.executor.cleanup(prepared).await.unwrap();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].ports, [], "nothing was waited for");
    assert_eq!(notes, Vec::<String>::new());
}
