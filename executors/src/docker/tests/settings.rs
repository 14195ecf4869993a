//! The container settings of `DockerOptions` (`[runners.docker]`), seen
//! from inside the step containers (what the kernel applied) and through
//! the daemon's API while a step runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::ContainerInspectResponse;
use tokio_util::sync::CancellationToken;

use super::services::greeter;
use super::support::{DockerTarget, docker, labelled, request, test_options};
use crate::conformance::Target;
use crate::docker::DockerOptions;
use crate::{Executor, ExecutorError, ExitKind, JobEnv, OutputSink};

/// What a step prints once its probe is done.
const DONE: &str = "probe-done";

/// Output shared between the step and the test watching it.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl OutputSink for Shared {
    fn output(&mut self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

/// Runs `script` in one step of a fresh job of `t`; what it printed. The
/// step must succeed.
async fn output_of(t: &DockerTarget, env: &JobEnv, script: &str) -> String {
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
        .await;
    t.executor.cleanup(prepared).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(outcome.unwrap().exit, ExitKind::Code(0), "{text}");
    text
}

/// Runs `probe` in a step of a fresh job of `t`, and inspects the step's
/// container through the API once the probe is done, while the step is
/// still running; then cancels the step. The inspection, and what the
/// probe printed.
async fn inspect_running(
    t: &DockerTarget,
    env: &JobEnv,
    probe: &str,
) -> (ContainerInspectResponse, String) {
    let mut prepared = t.executor.prepare(env).await.unwrap();
    let out = Shared::default();
    let mut sink = out.clone();
    let cancel = CancellationToken::new();
    let script = format!("{probe}\necho {DONE}\nsleep 60\n");
    let step = t.executor.run_step(
        &mut prepared,
        request(env, &script),
        &mut sink,
        cancel.clone(),
    );
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !out.text().contains(DONE) {
            assert!(
                Instant::now() < deadline,
                "the probe never finished: {}",
                out.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (containers, _, _) = labelled(t.owner()).await;
        let name = containers
            .iter()
            .find(|n| n.contains("step_script"))
            .unwrap_or_else(|| panic!("no step container among {containers:?}"))
            .trim_start_matches('/')
            .to_owned();
        let inspected = docker().await.inspect_container(&name, None).await.unwrap();
        cancel.cancel();
        inspected
    };
    let (outcome, inspected) = tokio::join!(step, watch);
    assert_eq!(outcome.unwrap().exit, ExitKind::Cancelled);
    t.executor.cleanup(prepared).await.unwrap();
    let text = out.text();
    let printed = text.split(DONE).next().unwrap_or_default().to_owned();
    (inspected, printed)
}

/// The hex value of `field` (`CapEff`) in a `/proc/self/status` dump.
fn status_bits(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;

/// Whether `err` is the daemon failing to start a privileged container
/// because the host itself lacks a capability (a daemon running in a
/// container that is not fully privileged). It shows the daemon was asked
/// for a privileged container: an ordinary one starts there.
fn host_cannot_run_privileged(err: &ExecutorError) -> bool {
    matches!(err, ExecutorError::Docker { message, .. } if message.contains("unable to apply caps"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileged_steps_run_privileged_with_every_capability() {
    let t = DockerTarget::new().await;
    let env = t.job_env();
    let (inspected, plain) = inspect_running(&t, &env, "cat /proc/self/status").await;
    let host_config = inspected.host_config.unwrap();
    assert_eq!(host_config.privileged, Some(false), "off by default");
    let default_caps = status_bits(&plain, "CapEff");

    let t = DockerTarget::with_options(DockerOptions {
        privileged: true,
        ..test_options()
    })
    .await;
    let env = t.job_env();
    let mut prepared = t.executor.prepare(&env).await.unwrap();
    let mut out = Vec::new();
    let result = t
        .executor
        .run_step(
            &mut prepared,
            request(&env, "cat /proc/self/status\n"),
            &mut out,
            CancellationToken::new(),
        )
        .await;
    t.executor.cleanup(prepared).await.unwrap();
    match result {
        Ok(outcome) => {
            assert_eq!(outcome.exit, ExitKind::Code(0));
            let status = String::from_utf8_lossy(&out);
            let caps = status_bits(&status, "CapEff");
            assert_eq!(caps, status_bits(&status, "CapBnd"), "{status}");
            assert!(
                caps & default_caps == default_caps
                    && caps.count_ones() > default_caps.count_ones() + 10,
                "privileged {caps:x}, default {default_caps:x}"
            );
        }
        Err(err) => assert!(host_cannot_run_privileged(&err), "{err}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_privileged_overrides_privileged_for_services() {
    for (privileged, services_privileged, expected) in [
        (true, None, true),
        (true, Some(false), false),
        (false, Some(true), true),
        (false, None, false),
    ] {
        let t = DockerTarget::with_options(DockerOptions {
            privileged,
            services_privileged,
            service_wait: Duration::from_secs(5),
            ..test_options()
        })
        .await;
        let env = t.job_env().with_service(greeter());
        let case = format!("privileged {privileged}, services_privileged {services_privileged:?}");
        let prepared = match t.executor.prepare(&env).await {
            Ok(prepared) => prepared,
            Err(err) if expected && host_cannot_run_privileged(&err) => continue,
            Err(err) => panic!("{case}: {err}"),
        };
        let container = prepared.services()[0].container.clone();
        let inspected = docker()
            .await
            .inspect_container(&container, None)
            .await
            .unwrap();
        t.executor.cleanup(prepared).await.unwrap();
        assert_eq!(
            inspected.host_config.unwrap().privileged,
            Some(expected),
            "{case}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_runs_the_steps_as_that_user_with_its_extra_groups() {
    let t = DockerTarget::with_options(DockerOptions {
        user: Some("1234:1234".into()),
        group_add: vec!["4242".into()],
        ..test_options()
    })
    .await;
    let out = output_of(&t, &t.job_env(), "id -u; id -G\n").await;
    assert_eq!(out, "1234\n1234 4242\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_cpus_limit_the_step_container() {
    let mut options = test_options();
    options.limits.memory = Some(64 << 20);
    options.limits.memory_reservation = Some(32 << 20);
    options.limits.nano_cpus = Some(1_500_000_000);
    options.limits.cpu_shares = Some(512);
    let t = DockerTarget::with_options(options).await;
    // cgroup v2 files first, then v1's: what the kernel enforces.
    let probe = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes\n\
                 cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo \"$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)\"";
    let (inspected, out) = inspect_running(&t, &t.job_env(), probe).await;
    assert_eq!(out, "67108864\n150000 100000\n");
    let host_config = inspected.host_config.unwrap();
    assert_eq!(host_config.memory, Some(64 << 20));
    assert_eq!(host_config.memory_reservation, Some(32 << 20));
    assert_eq!(host_config.nano_cpus, Some(1_500_000_000));
    assert_eq!(host_config.cpu_shares, Some(512));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shm_size_sets_the_size_of_dev_shm() {
    let t = DockerTarget::with_options(DockerOptions {
        shm_size: Some(8 << 20),
        ..test_options()
    })
    .await;
    let out = output_of(&t, &t.job_env(), "df -k /dev/shm | tail -n 1\n").await;
    let blocks: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(blocks.get(1), Some(&"8192"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_hosts_and_dns_reach_etc_hosts_and_resolv_conf() {
    let t = DockerTarget::with_options(DockerOptions {
        extra_hosts: vec!["gitlab.internal:10.1.2.3".into()],
        dns: vec!["10.9.9.9".into()],
        dns_search: vec!["corp.example".into()],
        ..test_options()
    })
    .await;
    let out = output_of(
        &t,
        &t.job_env(),
        "grep gitlab.internal /etc/hosts; grep -E '^(nameserver|search)' /etc/resolv.conf\n",
    )
    .await;
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "10.1.2.3\tgitlab.internal",
            "nameserver 10.9.9.9",
            "search corp.example"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_drop_and_cap_add_change_the_steps_capabilities() {
    let t = DockerTarget::new().await;
    let status = output_of(&t, &t.job_env(), "cat /proc/self/status\n").await;
    let default = status_bits(&status, "CapEff");
    assert!(default & (1 << CAP_NET_RAW) != 0, "{default:x}");
    assert!(default & (1 << CAP_NET_ADMIN) == 0, "{default:x}");

    let t = DockerTarget::with_options(DockerOptions {
        cap_drop: vec!["NET_RAW".into()],
        cap_add: vec!["NET_ADMIN".into()],
        ..test_options()
    })
    .await;
    let status = output_of(&t, &t.job_env(), "cat /proc/self/status\n").await;
    let caps = status_bits(&status, "CapEff");
    assert_eq!(caps, default & !(1 << CAP_NET_RAW) | (1 << CAP_NET_ADMIN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_opt_reaches_the_step_container() {
    let t = DockerTarget::with_options(DockerOptions {
        security_opt: vec!["no-new-privileges".into()],
        ..test_options()
    })
    .await;
    let status = output_of(&t, &t.job_env(), "cat /proc/self/status\n").await;
    assert_eq!(status_bits(&status, "NoNewPrivs"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmpfs_mounts_a_tmpfs_with_its_options() {
    let mut options = test_options();
    options
        .tmpfs
        .insert("/scratch".into(), "rw,noexec,size=1m".into());
    let t = DockerTarget::with_options(options).await;
    let out = output_of(&t, &t.job_env(), "grep ' /scratch ' /proc/mounts\n").await;
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[..3], ["tmpfs", "/scratch", "tmpfs"], "{out}");
    let mount_options: Vec<&str> = fields[3].split(',').collect();
    assert!(mount_options.contains(&"noexec"), "{out}");
    assert!(mount_options.contains(&"size=1024k"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysctls_and_devices_reach_the_step_container() {
    let mut options = test_options();
    options
        .sysctls
        .insert("kernel.shm_rmid_forced".into(), "1".into());
    options.devices = vec!["/dev/null:/dev/runner-null:rw".into()];
    let t = DockerTarget::with_options(options).await;
    let out = output_of(
        &t,
        &t.job_env(),
        "cat /proc/sys/kernel/shm_rmid_forced; test -c /dev/runner-null && echo char-device\n",
    )
    .await;
    assert_eq!(out, "1\nchar-device\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_mode_applies_without_services_and_the_job_network_with_them() {
    let t = DockerTarget::with_options(DockerOptions {
        network_mode: Some("none".into()),
        service_wait: Duration::from_secs(5),
        ..test_options()
    })
    .await;
    let (inspected, out) = inspect_running(&t, &t.job_env(), "ls /sys/class/net").await;
    assert_eq!(out, "lo\n", "no interface but loopback");
    assert_eq!(
        inspected.host_config.unwrap().network_mode.as_deref(),
        Some("none")
    );

    // With services the steps join the job's network, where the services
    // answer to their names.
    let env = t.job_env().with_service(greeter());
    let (inspected, out) = inspect_running(&t, &env, "nc db 8080 </dev/null").await;
    assert_eq!(out, "from-service \n");
    let network = inspected.host_config.unwrap().network_mode.unwrap();
    assert!(network.starts_with("runner-"), "{network}");
}
