//! Services, and the clean-up of everything a job creates.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::support::{BUSYBOX, DockerTarget, labelled, request, test_options};
use crate::conformance::Target;
use crate::docker::DockerOptions;
use crate::{Executor, ExitKind, ServiceSpec};

/// A busybox service answering every TCP connection on 8080 with the
/// value of `$GREETING`.
pub(super) fn greeter() -> ServiceSpec {
    ServiceSpec::new(BUSYBOX)
        .with_alias("db, cache")
        .with_command([
            "sh",
            "-c",
            // `-ll`: keep listening (busybox builds without `-k`).
            "exec nc -ll -p 8080 -e sh -c 'echo \"$GREETING $OTHER\"'",
        ])
        .with_variable("GREETING", "from-service")
        .with_port(8080)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_reachable_by_its_aliases_and_derived_names() {
    let t = DockerTarget::new().await;
    let env = t
        .job_env()
        .with_service(greeter())
        .with_service_env([("GREETING", "from-job"), ("OTHER", "job-var")]);
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let services = prepared.services().to_vec();
    assert_eq!(services.len(), 1);
    assert_eq!(
        services[0].hostnames,
        ["local__busybox", "local-busybox", "db", "cache"]
    );
    assert_eq!(services[0].ports.len(), 1);
    assert!(services[0].ports[0].open, "{:?}", services[0].ports);
    assert!(prepared.network().is_some());

    // `</dev/null`: the script itself is on the shell's stdin.
    let script = "for h in db cache local__busybox local-busybox; do nc $h 8080 </dev/null; done\n";
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
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    // The service's own variable wins over the job's; the job's others
    // reach it too.
    assert_eq!(
        String::from_utf8_lossy(&out),
        "from-service job-var\n".repeat(4)
    );
    assert_eq!(labelled(t.owner()).await, Default::default());
}

/// A port that never opens is waited for (boundedly), noted, and does not
/// fail the job; the service's logs are there for the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_that_never_opens_is_a_note_and_the_logs_are_kept() {
    let t = DockerTarget::with_options(DockerOptions {
        service_wait: Duration::from_secs(2),
        ..test_options()
    })
    .await;
    let silent = ServiceSpec::new(BUSYBOX)
        .with_alias("silent")
        .with_command(["sh", "-c", "echo service-started; exec sleep 1000"])
        .with_port(9999);
    let env = t.job_env().with_service(silent);
    let began = std::time::Instant::now();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "the wait is bounded"
    );
    let status = prepared.services()[0].clone();
    assert!(!status.ports[0].open);
    assert!(status.ports[0].waited >= Duration::from_secs(2));
    let notes = prepared.notes().to_vec();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!(
            "service {BUSYBOX} (local__busybox, local-busybox, silent) did not open TCP port 9999 within "
        )),
        "{notes:?}"
    );
    let logs = t.executor.service_logs(&status, 100).await.unwrap();
    assert_eq!(logs, "service-started\n");

    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "true\n"),
            &mut Vec::new(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(outcome.warnings, notes, "the first step carries the notes");
    t.executor.cleanup(prepared).await.unwrap();
}

/// Two services may not share a host name: the second one's is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_host_names_are_skipped_with_a_note() {
    let t = DockerTarget::new().await;
    let sleeper = |alias: &str| {
        ServiceSpec::new(BUSYBOX)
            .with_alias(alias)
            .with_command(["sleep", "1000"])
    };
    let env = t
        .job_env()
        .with_service(sleeper("one"))
        .with_service(sleeper("two"));
    let prepared = t.executor.prepare(&env).await.unwrap();
    let services = prepared.services().to_vec();
    let notes = prepared.notes().to_vec();
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(
        services[0].hostnames,
        ["local__busybox", "local-busybox", "one"]
    );
    assert_eq!(services[1].hostnames, ["two"]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("host name local__busybox is already used by another service")),
        "{notes:?}"
    );
}

/// Only jobs with services get a network of their own.
#[tokio::test]
async fn no_network_without_services() {
    let t = DockerTarget::new().await;
    let prepared = t.executor.prepare(&t.job_env()).await.unwrap();
    assert_eq!(prepared.network(), None);
    assert_eq!(labelled(t.owner()).await, Default::default());
    t.executor.cleanup(prepared).await.unwrap();
}

/// `cleanup` removes the job's service containers, its network and its
/// temporary volumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_containers_network_and_volumes() {
    let t = DockerTarget::with_options(DockerOptions {
        volumes: vec!["/scratch".to_owned()],
        ..test_options()
    })
    .await;
    let env = t.job_env().with_service(greeter());
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let mut out = Vec::new();
    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "echo kept > /scratch/f\n"),
            &mut out,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        outcome.exit,
        ExitKind::Code(0),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // The volume outlives the step's container, for the next step.
    let outcome = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "cat /scratch/f\n"),
            &mut out,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(out, b"kept\n");

    let (containers, networks, volumes) = labelled(t.owner()).await;
    assert_eq!((containers.len(), networks.len(), volumes.len()), (1, 1, 1));
    t.executor.cleanup(prepared).await.unwrap();
    assert_eq!(labelled(t.owner()).await, Default::default());
}

/// After a crash (no `cleanup`, no drop handlers: the process died),
/// `remove_leftovers` of a new executor with the same owner removes
/// everything the old one created, and nothing of other owners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_leftovers_after_a_crash() {
    let options = DockerOptions {
        volumes: vec!["/scratch".to_owned()],
        ..test_options()
    };
    let crashed = DockerTarget::with_options(options.clone()).await;
    let env = crashed.job_env().with_service(greeter());
    let prepared = crashed.executor.prepare(&env).await.unwrap();
    // The state of a job whose runner was killed: never cleaned up.
    std::mem::forget(prepared);
    let owner = crashed.owner().to_owned();
    crashed.keep_objects();

    let bystander = DockerTarget::new().await;
    let kept = bystander
        .executor
        .prepare(&bystander.job_env().with_service(greeter()))
        .await
        .unwrap();

    let (containers, networks, volumes) = labelled(&owner).await;
    assert_eq!((containers.len(), networks.len(), volumes.len()), (1, 1, 1));
    let fresh = DockerTarget::with_options(options).await;
    let report = fresh.executor.remove_leftovers().await.unwrap();
    assert_eq!(
        (
            report.containers.len(),
            report.networks.len(),
            report.volumes.len()
        ),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!(labelled(&owner).await, Default::default());
    assert!(fresh.executor.remove_leftovers().await.unwrap().is_empty());

    // Another owner's job is untouched.
    assert_eq!(labelled(bystander.owner()).await.0.len(), 1);
    bystander.executor.cleanup(kept).await.unwrap();
}
