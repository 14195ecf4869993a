//! The behaviour every executor must show, as a suite of checks.
//!
//! Each executor's tests implement [`Target`] and call every check (or
//! [`run_all`]); a check panics, with a message naming the behaviour, when
//! the executor gets it wrong. The scripts are plain bash, given straight
//! to `run_step` (not wrapped the way the runner wraps job scripts), and
//! use only `sleep`, `setsid`, `yes` and `head` besides the shell.
//!
//! "No process survives" is asked of the target ([`Target::survivors`]),
//! because only the executor knows where its processes live (the host's
//! /proc, a container). Every step of the suite carries a unique
//! `CONFORMANCE_PROBE=<token>` variable for that purpose.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Executor, ExecutorError, ExitKind, JobEnv, OutputSink, StepOutcome, StepRequest};

/// The variable that tags every process a check starts.
pub const PROBE_VAR: &str = "CONFORMANCE_PROBE";

/// A bound on any step of the suite that is expected to end by itself,
/// so that a hanging executor fails the check instead of hanging it.
/// Generous: the suite must pass on a loaded machine.
const NO_HANG: Duration = Duration::from_secs(120);

/// The executor under test, and what the suite needs around it.
pub trait Target: Sync {
    /// The executor's type.
    type Exec: Executor;

    /// The executor under test.
    fn executor(&self) -> &Self::Exec;

    /// A fresh job environment with directories of its own; every check
    /// asks for its own.
    fn job_env(&self) -> JobEnv;

    /// Processes still running (zombies do not count) whose environment
    /// holds `CONFORMANCE_PROBE=<token>`, described for the failure
    /// message (e.g. `"1234 (sleep)"`).
    fn survivors(&self, token: &str) -> Vec<String>;

    /// An executor of the same kind that can find no shell at all.
    fn executor_without_shell(&self) -> Self::Exec;
}

/// Runs every check, one after the other.
pub async fn run_all<T: Target>(t: &T) {
    output_order(t).await;
    exit_code_kept(t).await;
    env_visible(t).await;
    workdir_honoured(t).await;
    stdin_is_closed(t).await;
    long_script_and_early_exit(t).await;
    timeout_kills_everything(t).await;
    cancel_kills_everything(t).await;
    term_ignored_escalates(t).await;
    background_holding_output_is_bounded(t).await;
    background_without_output_is_killed(t).await;
    large_output_streams(t).await;
    concurrent_steps(t).await;
    missing_shell(t).await;
}

/// Standard output and standard error arrive in ONE stream, in the order
/// they were written, partial lines included.
pub async fn output_order<T: Target>(t: &T) {
    let script =
        "echo out1\necho err1 >&2\nprintf o2\nprintf e2 >&2\necho\necho err3 >&2\necho out3\n";
    let (outcome, out, _) = run(t, script, |_| {}).await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "output_order: exit");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "out1\nerr1\no2e2\nerr3\nout3\n",
        "output_order: stdout and stderr must interleave exactly"
    );
}

/// The script's exit code is the step's.
pub async fn exit_code_kept<T: Target>(t: &T) {
    let (outcome, _, _) = run(t, "echo before\nexit 42\necho after\n", |_| {}).await;
    assert_eq!(
        outcome.exit,
        ExitKind::Code(42),
        "exit_code_kept: `exit 42`"
    );
    let (outcome, _, _) = run(t, "true\n", |_| {}).await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "exit_code_kept: success");
    assert!(outcome.exit.is_success());
}

/// The request's variables reach the script verbatim.
pub async fn env_visible<T: Target>(t: &T) {
    let tricky = "quote ' \" $HOME `x` \\ and\nnewline";
    let (outcome, out, _) = run(
        t,
        "printf '%s|%s' \"$CONFORMANCE_A\" \"$CONFORMANCE_B\"\n",
        |r| {
            r.env.push(("CONFORMANCE_A".into(), "hello world".into()));
            r.env.push(("CONFORMANCE_B".into(), tricky.into()));
        },
    )
    .await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "env_visible: exit");
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!("hello world|{tricky}"),
        "env_visible: values"
    );
}

/// The shell starts in the request's working directory.
pub async fn workdir_honoured<T: Target>(t: &T) {
    let env = t.job_env();
    let ex = t.executor();
    let mut prepared = ex.prepare(&env).await.expect("workdir_honoured: prepare");
    let sub = env.project_dir.join("sub dir");
    let mut steps = vec![
        (env.project_dir.clone(), "mkdir -p 'sub dir'\n"),
        (sub.clone(), "touch here\npwd\n"),
        (env.project_dir.clone(), "test -f 'sub dir/here'\n"),
    ];
    let mut outputs = Vec::new();
    for (workdir, script) in steps.drain(..) {
        let mut req = StepRequest::new("step_script", script, workdir);
        req.timeout = Some(NO_HANG);
        let mut out = Vec::new();
        let outcome = ex
            .run_step(&mut prepared, req, &mut out, CancellationToken::new())
            .await
            .expect("workdir_honoured: run_step");
        assert_eq!(
            outcome.exit,
            ExitKind::Code(0),
            "workdir_honoured: {script:?}"
        );
        outputs.push(out);
    }
    let pwd = String::from_utf8_lossy(&outputs[1]).into_owned();
    assert!(
        pwd.ends_with("/sub dir\n"),
        "workdir_honoured: pwd printed {pwd:?}"
    );
    ex.cleanup(prepared)
        .await
        .expect("workdir_honoured: cleanup");
}

/// A command that reads stdin sees end-of-file instead of waiting for
/// input forever: the shell's stdin is closed once the script is written.
pub async fn stdin_is_closed<T: Target>(t: &T) {
    let (outcome, _, _) = run(t, "cat >/dev/null\n", |_| {}).await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "stdin_is_closed");
}

/// A script larger than any pipe buffer is delivered whole, and a script
/// that exits before the shell has read all of it ends normally.
pub async fn long_script_and_early_exit<T: Target>(t: &T) {
    let filler = ": filler line to make the script larger than a pipe buffer\n".repeat(20_000);
    let (outcome, out, _) = run(t, &format!("{filler}echo end\nexit 7\n"), |_| {}).await;
    assert_eq!(outcome.exit, ExitKind::Code(7), "long_script: exit");
    assert_eq!(out, b"end\n", "long_script: output");
    let (outcome, _, _) = run(t, &format!("exit 3\n{filler}"), |_| {}).await;
    assert_eq!(outcome.exit, ExitKind::Code(3), "early_exit: exit");
}

/// The processes a "stuck" script leaves behind, in every way a process
/// can escape a shell: its process group, a new session, a double fork,
/// output redirected away from the pipe.
const ESCAPEES: &str = "\
setsid sleep 1000 &
( (sleep 1000 &) & )
( (setsid sleep 1000 >/dev/null 2>&1 &) & )
sleep 1000 >/dev/null 2>&1 &
echo ready
sleep 1000
";

/// A step that outlives its timeout ends as `TimedOut`, and none of its
/// processes survive it.
pub async fn timeout_kills_everything<T: Target>(t: &T) {
    let (outcome, out, token) =
        run(t, ESCAPEES, |r| r.timeout = Some(Duration::from_secs(5))).await;
    assert_eq!(outcome.exit, ExitKind::TimedOut, "timeout: exit");
    assert!(
        contains(&out, b"ready"),
        "timeout: the script did not get going within 5 s"
    );
    assert_no_survivors(t, &token, "timeout");
}

/// A cancelled step ends as `Cancelled`, and none of its processes
/// survive it.
pub async fn cancel_kills_everything<T: Target>(t: &T) {
    let (outcome, token) = run_until_ready_then_cancel(t, ESCAPEES).await;
    assert_eq!(outcome.exit, ExitKind::Cancelled, "cancel: exit");
    assert_no_survivors(t, &token, "cancel");
}

/// Processes that ignore SIGTERM are killed anyway.
pub async fn term_ignored_escalates<T: Target>(t: &T) {
    let script =
        "trap '' TERM\nsetsid sh -c 'trap \"\" TERM; sleep 1000' &\necho ready\nsleep 1000\n";
    let (outcome, token) = run_until_ready_then_cancel(t, script).await;
    assert_eq!(outcome.exit, ExitKind::Cancelled, "term_ignored: exit");
    assert_no_survivors(t, &token, "term_ignored");
}

/// A background process that keeps the output open after the script
/// ended does not keep the step running; it is reported and killed.
pub async fn background_holding_output_is_bounded<T: Target>(t: &T) {
    let (outcome, out, token) = run(t, "sleep 1000 &\necho done\n", |_| {}).await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "held_output: exit");
    assert_eq!(out, b"done\n", "held_output: output");
    assert!(!outcome.warnings.is_empty(), "held_output: no warning");
    assert_no_survivors(t, &token, "held_output");
}

/// A background process left by a successful script is killed, with a
/// warning, even when it does not hold the output open.
pub async fn background_without_output_is_killed<T: Target>(t: &T) {
    let script = "setsid sleep 1000 >/dev/null 2>&1 &\nsleep 1000 >/dev/null 2>&1 &\necho done\n";
    let (outcome, out, token) = run(t, script, |_| {}).await;
    assert_eq!(outcome.exit, ExitKind::Code(0), "background: exit");
    assert_eq!(out, b"done\n", "background: output");
    assert!(!outcome.warnings.is_empty(), "background: no warning");
    assert_no_survivors(t, &token, "background");
}

/// 50 MiB of output reach the sink whole and in order.
pub async fn large_output_streams<T: Target>(t: &T) {
    const LINE: &[u8] = b"conformance line 0123456789\n";
    const TOTAL: usize = 50 * 1024 * 1024;
    let mut expected = Digest::default();
    let mut left = TOTAL;
    while left > 0 {
        let n = left.min(LINE.len());
        expected.output(&LINE[..n]);
        left -= n;
    }
    let env = t.job_env();
    let ex = t.executor();
    let mut prepared = ex.prepare(&env).await.expect("large_output: prepare");
    let script = format!(
        "yes '{}' | head -c {TOTAL}\n",
        std::str::from_utf8(&LINE[..LINE.len() - 1]).unwrap_or("")
    );
    let mut req = StepRequest::new("step_script", script, &env.project_dir);
    req.timeout = Some(NO_HANG);
    let mut got = Digest::default();
    let outcome = ex
        .run_step(&mut prepared, req, &mut got, CancellationToken::new())
        .await
        .expect("large_output: run_step");
    ex.cleanup(prepared).await.expect("large_output: cleanup");
    assert_eq!(outcome.exit, ExitKind::Code(0), "large_output: exit");
    assert_eq!(got.len, TOTAL as u64, "large_output: byte count");
    assert_eq!(got.hash, expected.hash, "large_output: checksum");
}

/// Steps of several jobs run side by side without mixing their outputs or
/// their exit codes, and cancelling one leaves the others alone.
pub async fn concurrent_steps<T: Target>(t: &T) {
    let one = |code: i32, cancel: CancellationToken| async move {
        let env = t.job_env();
        let ex = t.executor();
        let mut prepared = ex.prepare(&env).await.expect("concurrent: prepare");
        let script = format!("echo job{code}\nsleep 1\necho job{code} again >&2\nexit {code}\n");
        let mut req = StepRequest::new("step_script", script, &env.project_dir);
        req.timeout = Some(NO_HANG);
        let mut out = Vec::new();
        let outcome = ex
            .run_step(&mut prepared, req, &mut out, cancel)
            .await
            .expect("concurrent: run_step");
        ex.cleanup(prepared).await.expect("concurrent: cleanup");
        (outcome, out)
    };
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let (a, b, c, d) = tokio::join!(
        one(3, CancellationToken::new()),
        one(4, CancellationToken::new()),
        one(5, cancelled),
        one(0, CancellationToken::new()),
    );
    for (code, (outcome, out)) in [(3, a), (4, b), (0, d)] {
        assert_eq!(
            outcome.exit,
            ExitKind::Code(code),
            "concurrent: exit of job{code}"
        );
        assert_eq!(
            out,
            format!("job{code}\njob{code} again\n").into_bytes(),
            "concurrent: output of job{code}"
        );
    }
    assert_eq!(
        c.0.exit,
        ExitKind::Cancelled,
        "concurrent: the cancelled job"
    );
}

/// No shell at all is an environment error that says so, not a failed
/// script.
pub async fn missing_shell<T: Target>(t: &T) {
    let ex = t.executor_without_shell();
    let env = t.job_env();
    let err = match ex.prepare(&env).await {
        Err(e) => e,
        Ok(mut prepared) => {
            let req = StepRequest::new("step_script", "true\n", &env.project_dir);
            let res = ex
                .run_step(
                    &mut prepared,
                    req,
                    &mut Vec::new(),
                    CancellationToken::new(),
                )
                .await;
            let _ = ex.cleanup(prepared).await;
            match res {
                Err(e) => e,
                Ok(outcome) => panic!("missing_shell: the step ran: {outcome:?}"),
            }
        }
    };
    assert!(
        matches!(
            err,
            ExecutorError::NoShell { .. } | ExecutorError::NoShellInImage { .. }
        ),
        "missing_shell: wrong error {err:?}"
    );
    // `no shell found: tried ...`, or `no shell found in image X: tried
    // ...` from an executor that runs scripts in an image.
    let text = err.to_string();
    assert!(
        text.starts_with("no shell found") && text.contains(": tried "),
        "missing_shell: message {err}"
    );
}

// ---------------------------------------------------------------------------
// Helpers

/// Runs `script` in a fresh job, tagged with a fresh probe token; returns
/// the outcome, the output and the token.
async fn run<T: Target>(
    t: &T,
    script: &str,
    configure: impl FnOnce(&mut StepRequest),
) -> (StepOutcome, Vec<u8>, String) {
    let env = t.job_env();
    let ex = t.executor();
    let mut prepared = ex.prepare(&env).await.expect("prepare");
    let token = new_token();
    let mut req = StepRequest::new("step_script", script, &env.project_dir);
    req.env.push((PROBE_VAR.into(), token.clone()));
    req.timeout = Some(NO_HANG);
    configure(&mut req);
    let mut out = Vec::new();
    let outcome = ex
        .run_step(&mut prepared, req, &mut out, CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("run_step failed: {e}\nscript:\n{script}"));
    ex.cleanup(prepared).await.expect("cleanup");
    (outcome, out, token)
}

/// Runs `script`, and cancels it once it printed `ready`.
async fn run_until_ready_then_cancel<T: Target>(t: &T, script: &str) -> (StepOutcome, String) {
    let env = t.job_env();
    let ex = t.executor();
    let mut prepared = ex.prepare(&env).await.expect("prepare");
    let token = new_token();
    let mut req = StepRequest::new("step_script", script, &env.project_dir);
    req.env.push((PROBE_VAR.into(), token.clone()));
    // A script that never prints `ready` would otherwise hang the check.
    req.timeout = Some(NO_HANG);
    let cancel = CancellationToken::new();
    let mut sink = CancelOn {
        seen: Vec::new(),
        needle: b"ready",
        cancel: cancel.clone(),
    };
    let outcome = ex
        .run_step(&mut prepared, req, &mut sink, cancel)
        .await
        .expect("run_step");
    ex.cleanup(prepared).await.expect("cleanup");
    assert!(
        contains(&sink.seen, b"ready"),
        "the script never got going:\n{}",
        String::from_utf8_lossy(&sink.seen)
    );
    (outcome, token)
}

fn assert_no_survivors<T: Target>(t: &T, token: &str, check: &str) {
    let left = t.survivors(token);
    assert!(
        left.is_empty(),
        "{check}: processes survived the step: {left:?}"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn new_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:016x}", RandomState::new().hash_one(nanos))
}

/// Collects output and cancels `cancel` once `needle` appears in it.
struct CancelOn {
    seen: Vec<u8>,
    needle: &'static [u8],
    cancel: CancellationToken,
}

impl OutputSink for CancelOn {
    fn output(&mut self, bytes: &[u8]) {
        self.seen.extend_from_slice(bytes);
        if contains(&self.seen, self.needle) {
            self.cancel.cancel();
        }
    }
}

/// Counts and hashes output (64-bit FNV-1a) without keeping it, so the
/// large-output check runs in constant memory.
struct Digest {
    len: u64,
    hash: u64,
}

impl Default for Digest {
    fn default() -> Self {
        Digest {
            len: 0,
            hash: 0xcbf2_9ce4_8422_2325,
        }
    }
}

impl OutputSink for Digest {
    fn output(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        for &b in bytes {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}
