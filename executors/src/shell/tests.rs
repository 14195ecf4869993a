//! The shell executor against the conformance suite, and its own checks.

use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::procfs::{self, EnvVar};
use super::{ShellExecutor, ShellOptions};
use crate::conformance::{self, PROBE_VAR, Target};
use crate::{Executor, ExecutorError, ExitKind, JobEnv, ShellKind, StepOutcome, StepRequest};

/// Options that keep the suite quick: the grace only matters to processes
/// that ignore SIGTERM.
fn test_options() -> ShellOptions {
    ShellOptions {
        term_grace: Duration::from_secs(2),
        output_leak_wait: Duration::from_secs(1),
        ..ShellOptions::default()
    }
}

struct ShellTarget {
    executor: ShellExecutor,
    dirs: Mutex<Vec<tempfile::TempDir>>,
}

impl ShellTarget {
    fn new() -> Self {
        ShellTarget {
            executor: ShellExecutor::new(test_options()).unwrap(),
            dirs: Mutex::new(Vec::new()),
        }
    }

    fn temp_dir(&self) -> std::path::PathBuf {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        self.dirs.lock().unwrap().push(dir);
        path
    }
}

impl Target for ShellTarget {
    type Exec = ShellExecutor;

    fn executor(&self) -> &ShellExecutor {
        &self.executor
    }

    fn job_env(&self) -> JobEnv {
        let root = self.temp_dir();
        JobEnv::new("1", root.join("builds"), root.join("builds/group/project"))
    }

    fn survivors(&self, token: &str) -> Vec<String> {
        probe_survivors(token)
    }

    fn executor_without_shell(&self) -> ShellExecutor {
        let mut options = test_options();
        options.search_path = Some(self.temp_dir().into_os_string());
        ShellExecutor::new(options).unwrap()
    }
}

/// Live processes carrying the probe token.
fn probe_survivors(token: &str) -> Vec<String> {
    procfs::all_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = procfs::read_stat(pid)?;
            let tagged = procfs::environ_var(pid, PROBE_VAR.as_bytes())
                == EnvVar::Value(token.as_bytes().to_vec());
            (tagged && !stat.is_zombie()).then(|| format!("{pid} ({})", stat.comm))
        })
        .collect()
}

mod suite {
    use super::*;

    macro_rules! checks {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                conformance::$name(&ShellTarget::new()).await;
            }
        )*};
    }

    checks!(
        output_order,
        exit_code_kept,
        env_visible,
        workdir_honoured,
        stdin_is_closed,
        long_script_and_early_exit,
        timeout_kills_everything,
        cancel_kills_everything,
        term_ignored_escalates,
        background_holding_output_is_bounded,
        background_without_output_is_killed,
        large_output_streams,
        concurrent_steps,
        missing_shell,
    );

    /// The suite must also pass on a current-thread runtime, where the
    /// /proc scans and the output pump share one thread.
    #[tokio::test(flavor = "current_thread")]
    async fn cancel_kills_everything_on_one_thread() {
        conformance::cancel_kills_everything(&ShellTarget::new()).await;
    }
}

/// Runs `script` with `options`, after `configure`.
async fn run_with(
    options: ShellOptions,
    script: &str,
    configure: impl FnOnce(&mut StepRequest),
) -> (Result<StepOutcome, ExecutorError>, String) {
    let target = ShellTarget::new();
    let executor = ShellExecutor::new(options).unwrap();
    let env = target.job_env();
    let mut prepared = executor.prepare(&env).await.unwrap();
    let mut req = StepRequest::new("step_script", script, &env.project_dir);
    req.timeout = Some(Duration::from_secs(120));
    configure(&mut req);
    let mut out = Vec::new();
    let res = executor
        .run_step(&mut prepared, req, &mut out, CancellationToken::new())
        .await;
    (res, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn death_by_signal_is_reported() {
    let (res, _) = run_with(test_options(), "kill -KILL $$\n", |_| {}).await;
    assert_eq!(res.unwrap().exit, ExitKind::Signal(9));
}

#[tokio::test]
async fn bash_is_not_a_login_shell_by_default() {
    let script = "shopt -q login_shell && echo login || echo plain\n";
    let (res, out) = run_with(test_options(), script, |_| {}).await;
    assert_eq!(res.unwrap().exit, ExitKind::Code(0));
    assert_eq!(out, "plain\n");
}

#[tokio::test]
async fn login_option_starts_a_login_shell() {
    let mut options = test_options();
    options.login = true;
    let script = "shopt -q login_shell && echo login || echo plain\n";
    let (res, out) = run_with(options, script, |_| {}).await;
    assert_eq!(res.unwrap().exit, ExitKind::Code(0));
    // Profile files may print things of their own; the answer is last.
    assert!(out.ends_with("login\n"), "{out:?}");
}

#[tokio::test]
async fn sh_kind_runs_sh_not_bash() {
    let (res, out) = run_with(test_options(), "echo \"${BASH_VERSION:-none}\"\n", |r| {
        r.shell = ShellKind::Sh
    })
    .await;
    assert_eq!(res.unwrap().exit, ExitKind::Code(0));
    // /bin/sh may be bash itself on some systems; then it runs in POSIX
    // mode but still sets BASH_VERSION. Only check when it is not.
    if !std::fs::canonicalize("/bin/sh").unwrap().ends_with("bash") {
        assert_eq!(out, "none\n");
    }
}

#[tokio::test]
async fn bash_missing_falls_back_to_sh_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/bin/sh", dir.path().join("sh")).unwrap();
    let mut options = test_options();
    options.search_path = Some(dir.path().as_os_str().to_owned());
    let (res, out) = run_with(options, "echo fine\n", |_| {}).await;
    let outcome = res.unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(out, "fine\n");
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(outcome.warnings[0].starts_with("bash not found; running the script with"));
}

#[tokio::test]
async fn request_env_wins_over_the_runner_env() {
    let (res, out) = run_with(test_options(), "printf '%s' \"$PATH\"\n", |r| {
        r.env
            .push(("PATH".into(), "/usr/bin:/bin:/from-request".into()));
    })
    .await;
    assert_eq!(res.unwrap().exit, ExitKind::Code(0));
    assert_eq!(out, "/usr/bin:/bin:/from-request");
}

#[tokio::test]
async fn runner_env_is_inherited() {
    // PATH: set in any realistic environment, and left alone by bash.
    let expected = std::env::var("PATH").expect("the tests need PATH set");
    let (res, out) = run_with(test_options(), "printf '%s' \"$PATH\"\n", |_| {}).await;
    assert_eq!(res.unwrap().exit, ExitKind::Code(0));
    assert_eq!(out, expected);
}

#[tokio::test]
async fn the_step_marker_cannot_be_overridden() {
    let (res, out) = run_with(test_options(), "printf '%s' \"$RUNNER_STEP_ID\"\n", |r| {
        r.env.push(("RUNNER_STEP_ID".into(), "fake".into()));
    })
    .await;
    assert_eq!(res.unwrap().exit, ExitKind::Code(0));
    assert_eq!(out.len(), 32, "{out:?}");
}

#[tokio::test]
async fn missing_workdir_is_an_environment_error() {
    let (res, _) = run_with(test_options(), "true\n", |r| {
        r.workdir = "/nonexistent/dir".into()
    })
    .await;
    let err = res.unwrap_err();
    assert!(matches!(err, ExecutorError::Directory { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot use directory /nonexistent/dir: "),
        "{err}"
    );
}

#[tokio::test]
async fn background_warning_names_the_processes() {
    let target = ShellTarget::new();
    let pid_file = target.temp_dir().join("pid");
    let script = format!(
        "setsid sleep 1000 >/dev/null 2>&1 &\necho $! > '{}'\n",
        pid_file.display()
    );
    let (res, _) = run_with(test_options(), &script, |_| {}).await;
    let outcome = res.unwrap();
    assert_eq!(outcome.exit, ExitKind::Code(0));
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    let w = &outcome.warnings[0];
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    // The name is whatever the process was running when found (`setsid`
    // before it execs `sleep`, `sleep` after).
    assert!(
        w.starts_with(&format!(
            "background processes still running when the step ended were killed: {} (",
            pid.trim()
        )),
        "{w}"
    );
}

#[tokio::test]
async fn held_output_warning_says_so() {
    let (res, _) = run_with(test_options(), "sleep 1000 &\n", |_| {}).await;
    let outcome = res.unwrap();
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.starts_with("output pipe held open by a background process")),
        "{:?}",
        outcome.warnings
    );
}

/// What the script prints while it dies (a TERM trap) reaches the sink.
#[tokio::test]
async fn output_during_the_grace_is_kept() {
    let target = ShellTarget::new();
    let env = target.job_env();
    let executor = target.executor();
    let mut prepared = executor.prepare(&env).await.unwrap();
    let script = "trap 'echo bye; exit 1' TERM\necho ready\nsleep 1000\n";
    let req = StepRequest::new("step_script", script, &env.project_dir);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let mut out = Vec::new();
    let mut sink = |bytes: &[u8]| {
        out.extend_from_slice(bytes);
        if out.starts_with(b"ready") {
            trigger.cancel();
        }
    };
    let outcome = executor
        .run_step(&mut prepared, req, &mut sink, cancel)
        .await
        .unwrap();
    assert_eq!(outcome.exit, ExitKind::Cancelled);
    // bash reports the foreground `sleep` dying ("Terminated") in between.
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with("ready\n") && out.ends_with("bye\n"),
        "{out:?}"
    );
}

/// Escaped processes are reaped, not left as zombies of the runner.
#[tokio::test]
async fn no_zombie_is_left_behind() {
    let target = ShellTarget::new();
    let pid_file = target.temp_dir().join("pids");
    let script = format!(
        "( (sleep 1000 & echo $! >> '{p}') & )\n\
         ( (sleep 0 & echo $! >> '{p}') & )\n\
         setsid sleep 1000 >/dev/null 2>&1 & echo $! >> '{p}'\n\
         sleep 1\n",
        p = pid_file.display()
    );
    let (res, _) = run_with(test_options(), &script, |_| {}).await;
    assert_eq!(res.unwrap().exit, ExitKind::Code(0));
    let pids: Vec<i32> = std::fs::read_to_string(&pid_file)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    let me = std::process::id() as i32;
    for pid in pids {
        if let Some(stat) = procfs::read_stat(pid) {
            // Gone is expected; a pid still listed must at least not be a
            // child of ours (a leaked zombie, or a survivor).
            assert_ne!(stat.ppid, me, "pid {pid} left behind: {stat:?}");
        }
    }
}

/// Dropping a running step (the caller gave up on it) kills its processes.
#[tokio::test]
async fn dropping_the_step_kills_its_processes() {
    let target = ShellTarget::new();
    let env = target.job_env();
    let executor = target.executor();
    let mut prepared = executor.prepare(&env).await.unwrap();
    let token = "dropped-step-probe";
    let mut req = StepRequest::new(
        "step_script",
        "setsid sleep 1000 &\necho ready\nsleep 1000\n",
        &env.project_dir,
    );
    req.env.push((PROBE_VAR.into(), token.into()));
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
        _ = executor.run_step(&mut prepared, req, &mut sink, CancellationToken::new()) => panic!("the step ended"),
        r = rx => r.unwrap(),
    }
    // The kill runs on a thread of its own; give it (generous) time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !probe_survivors(token).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "survivors: {:?}",
            probe_survivors(token)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A runner spawns one task per job: the step futures must be `Send`, also
/// through `AnyExecutor`, and the executor shareable between tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_run_in_spawned_tasks_through_any_executor() {
    let target = std::sync::Arc::new(ShellTarget::new());
    let executor = std::sync::Arc::new(crate::AnyExecutor::Shell(
        ShellExecutor::new(test_options()).unwrap(),
    ));
    let tasks: Vec<_> = (0..3)
        .map(|code| {
            let (target, executor) = (target.clone(), executor.clone());
            tokio::spawn(async move {
                let env = target.job_env();
                let mut prepared = executor.prepare(&env).await.unwrap();
                let script = format!("echo task{code}\nexit {code}\n");
                let req = StepRequest::new("step_script", script, &env.project_dir);
                let mut out = Vec::new();
                let outcome = executor
                    .run_step(&mut prepared, req, &mut out, CancellationToken::new())
                    .await
                    .unwrap();
                executor.cleanup(prepared).await.unwrap();
                (code, outcome.exit, out)
            })
        })
        .collect();
    for task in tasks {
        let (code, exit, out) = task.await.unwrap();
        assert_eq!(exit, ExitKind::Code(code));
        assert_eq!(out, format!("task{code}\n").into_bytes());
    }
}

/// In a container whose session leader lives outside its pid namespace the
/// kernel reports our session id as 0. The executor once refused that id
/// and panicked; this reruns steps that start, time out and sweep
/// processes in such a namespace.
#[test]
fn steps_work_when_the_session_leader_is_outside_the_pid_namespace() {
    if std::env::var_os("RUNNER_TEST_IN_PID_NAMESPACE").is_some() {
        // We are the child: prove the premise, the rest is the filter.
        let me = procfs::read_stat(std::process::id() as i32).unwrap();
        assert_eq!(me.sid, 0, "expected a session led outside the namespace");
        return;
    }
    let test_binary = std::env::current_exe().unwrap();
    let output = std::process::Command::new("unshare")
        // `sh` stays pid 1 so the tests run as an ordinary process, as
        // the runner does inside a container.
        .args(["--pid", "--fork", "--mount-proc", "--", "sh", "-c"])
        .arg(r#""$@"; status=$?; exit $status"#)
        .arg("sh")
        .arg(&test_binary)
        .args([
            "--exact",
            "--test-threads=1",
            "shell::tests::steps_work_when_the_session_leader_is_outside_the_pid_namespace",
            "shell::tests::suite::exit_code_kept",
            "shell::tests::suite::timeout_kills_everything",
            "shell::tests::background_warning_names_the_processes",
        ])
        .env("RUNNER_TEST_IN_PID_NAMESPACE", "1")
        .output()
        .expect("`unshare` (util-linux) must be installed to run this test");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tests in a new pid namespace failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("4 passed"), "not all four ran:\n{text}");
}
