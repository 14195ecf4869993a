//! Running one step: start the shell on the script, stream the output,
//! enforce the timeout and cancellation, then make sure nothing of the
//! step survives.
//!
//! The phases, in order:
//! 1. the shell runs, reading the script from its stdin (see
//!    `process::script_file`); its output streams to the sink; the step
//!    waits for the first of: the shell's exit, the timeout, the
//!    cancellation;
//! 2. on timeout or cancellation: SIGTERM to the group and every escaped
//!    process, a grace period (output still flowing), then SIGKILL;
//! 3. once the shell has exited, the output pipe gets a bounded time to
//!    reach EOF (background processes may hold it open);
//! 4. the sweep: anything of the step still alive is terminated, and the
//!    zombies it leaves are reaped.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::locate::Located;
use super::output::{OutputPump, sleep_until_opt};
use super::process::{Spawned, spawn_shell};
use super::sweep::{StepProcesses, kill_now_blocking};
use super::unix::{Sig, new_step_id};
use crate::{ExecutorError, ExitKind, OutputSink, StepOutcome, StepRequest};

/// The timing knobs of a step (see `ShellOptions`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub term_grace: Duration,
    pub output_leak_wait: Duration,
    pub kill_wait: Duration,
}

/// Runs `request` with the shell at `shell`.
pub(crate) async fn run_step(
    shell: Located,
    login: bool,
    timing: Timing,
    request: StepRequest,
    sink: &mut dyn OutputSink,
    cancel: CancellationToken,
) -> Result<StepOutcome, ExecutorError> {
    let started = Instant::now();
    if cancel.is_cancelled() {
        // Cancelled before it started (the job was cancelled between two
        // steps): nothing to run, nothing to kill.
        return Ok(StepOutcome {
            exit: ExitKind::Cancelled,
            duration: started.elapsed(),
            warnings: Vec::new(),
        });
    }
    let mut warnings: Vec<String> = shell.warning.into_iter().collect();
    let step_id = new_step_id();
    let Spawned {
        mut child,
        pid,
        output,
    } = spawn_shell(&shell.path, login, &request, &step_id)?;
    let mut guard = KillGuard {
        step_id: step_id.clone(),
        shell_pid: pid,
        shell_reaped: false,
        armed: true,
    };
    let mut procs = StepProcesses::new(&step_id, pid);
    let mut pump = OutputPump::new(output, sink);
    let wait_err = |source| ExecutorError::Wait {
        pid: pid as u32,
        source,
    };

    // Phase 1.
    let deadline = request.timeout.map(|t| started + t);
    let mut stop: Option<ExitKind> = None;
    let mut status: Option<ExitStatus> = None;
    {
        let mut timer = std::pin::pin!(sleep_until_opt(deadline));
        loop {
            tokio::select! {
                // Exit first, then timeout, then cancellation: when they
                // race, the script's own result is the truest one. Output
                // last, so a job that never stops printing cannot starve
                // the other events.
                biased;
                res = child.wait() => {
                    status = Some(res.map_err(wait_err)?);
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
                () = pump.read_once() => {}
            }
        }
    }

    // Phase 2.
    let term_sent = match stop {
        None => None,
        Some(_) => {
            let term_at = Instant::now();
            procs.signal_all(Sig::Term, true).await;
            status = pump
                .pump_until(child.wait(), Some(term_at + timing.term_grace))
                .await
                .transpose()
                .map_err(wait_err)?;
            if status.is_none() {
                procs.signal_all(Sig::Kill, true).await;
                let killed_at = Instant::now();
                status = pump
                    .pump_until(child.wait(), Some(killed_at + timing.kill_wait))
                    .await
                    .transpose()
                    .map_err(wait_err)?;
                if status.is_none() {
                    return Err(ExecutorError::Unkillable {
                        pid: pid as u32,
                        waited: timing.kill_wait,
                    });
                }
            }
            Some(term_at)
        }
    };
    // From here on the shell is reaped and its pid may be recycled: the
    // group is only signalled through the processes found in it.
    guard.shell_reaped = true;

    // Phase 3.
    if !pump
        .until_eof(Instant::now() + timing.output_leak_wait)
        .await
    {
        warnings.push(format!(
            "output pipe held open by a background process {:?} after the shell exited",
            timing.output_leak_wait
        ));
    }

    // Phase 4.
    let report = procs
        .sweep(term_sent, timing.term_grace, timing.kill_wait, &mut pump)
        .await;
    if stop.is_none() && !report.found.is_empty() {
        warnings.push(format!(
            "background processes still running when the step ended were killed: {}",
            describe(&report.found)
        ));
    }
    if !report.unkillable.is_empty() {
        warnings.push(format!(
            "processes of the step survived SIGKILL: {}",
            describe(&report.unkillable)
        ));
    }
    if procs.stalled {
        warnings.push("reading /proc stalled; processes of the step may have survived".to_owned());
    }
    // The holders of the pipe are dead now, so EOF is due; but a holder
    // the sweep could not find (see `sweep` for which) would keep it open.
    if !pump.is_eof()
        && !pump
            .until_eof(Instant::now() + timing.output_leak_wait)
            .await
    {
        warnings.push("stopped reading the output: the pipe is still held open".to_owned());
    }
    if let Some(e) = pump.take_error() {
        warnings.push(format!("reading the output failed: {e}"));
    }
    guard.armed = false;

    let exit = match (stop, status) {
        (Some(kind), _) => kind,
        (None, Some(status)) => exit_kind(status),
        // Phase 1 only ends without a stop by recording the status.
        (None, None) => ExitKind::Code(-1),
    };
    Ok(StepOutcome {
        exit,
        duration: started.elapsed(),
        warnings,
    })
}

fn exit_kind(status: ExitStatus) -> ExitKind {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitKind::Code(code),
        (None, Some(sig)) => ExitKind::Signal(sig),
        // wait() only reports exits and deaths by signal.
        (None, None) => ExitKind::Code(status.into_raw()),
    }
}

fn describe(procs: &[(i32, String)]) -> String {
    procs
        .iter()
        .map(|(pid, comm)| format!("{pid} ({comm})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Kills the step's processes if its future is dropped (the caller gave
/// up on it, or an error returned early): nothing can be awaited then, so
/// SIGKILL goes out at once, without grace.
struct KillGuard {
    step_id: String,
    shell_pid: i32,
    shell_reaped: bool,
    armed: bool,
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if !self.shell_reaped {
            // The unreaped shell still holds the group id, so this cannot
            // hit anybody else's group.
            super::unix::signal_group(self.shell_pid, Sig::Kill);
        }
        // Escaped processes need a /proc scan, which may block (see the
        // sweep); a drop must not, so it runs on a thread of its own.
        let step_id = std::mem::take(&mut self.step_id);
        let shell_pid = self.shell_pid;
        let _ = std::thread::Builder::new()
            .name("runner-step-kill".to_owned())
            .spawn(move || kill_now_blocking(&step_id, shell_pid));
    }
}
