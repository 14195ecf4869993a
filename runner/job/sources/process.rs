//! Running one process of the stage (a git command, a hook's shell) with
//! its output streamed into the job log and the job's cancellation obeyed.
//!
//! Each process leads its own process group, so cancelling kills what it
//! started as well (a hook's `sleep`, git's `upload-pack`), not just the
//! direct child: an orphan holding our pipes would otherwise keep the stage
//! waiting, and one left running would outlive the job.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::job::log::JobLog;

/// Where a process's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// stdout and stderr into the job log.
    Log,
    /// Neither shown (gitlab-runner sends some probes to `/dev/null`);
    /// stderr is still kept for the error message.
    Discard,
    /// stdout returned to the caller, stderr into the job log.
    Capture,
}

/// How a process ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub status: ExitStatus,
    /// stdout, with [`Output::Capture`].
    pub stdout: Vec<u8>,
    /// The last lines of stderr, on one line.
    pub stderr_tail: String,
}

/// Why a process could not be run to its end.
#[derive(Debug)]
pub(crate) enum RunError {
    Cancelled,
    Spawn(std::io::Error),
}

/// How long the pipes may stay open after the process exited: a background
/// process it left behind may hold them. After that the group is killed.
const LEFTOVER_GRACE: Duration = Duration::from_secs(2);
/// How much of stderr is kept for the error message.
const TAIL_BYTES: usize = 4096;
/// How many of stderr's last lines the error message quotes.
const TAIL_LINES: usize = 3;

/// Runs `command` to its end. The command's stdio is set up here; `stdin`,
/// when given, is written to the process and then closed. Without a `log`
/// nothing is shown (two processes running side by side cannot share it).
pub(crate) async fn run(
    mut command: Command,
    stdin: Option<Vec<u8>>,
    output: Output,
    mut log: Option<&mut JobLog>,
    cancel: &CancellationToken,
) -> Result<Finished, RunError> {
    if cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(RunError::Spawn)?;
    let pid = child.id().and_then(|id| i32::try_from(id).ok());
    // Should this future be dropped midway (the caller gave up on the
    // stage), the whole group goes, not just the direct child.
    let mut guard = GroupGuard(pid);
    let (Some(mut out), Some(mut err)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(RunError::Spawn(std::io::Error::other("no output pipes")));
    };
    let writer = child.stdin.take();
    let feed = async move {
        if let (Some(mut pipe), Some(bytes)) = (writer, stdin) {
            // A shell that exits early closes its stdin: not our failure,
            // its exit status tells.
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        }
    };

    let mut captured = Vec::new();
    let mut tail = Vec::new();
    let pump = async {
        let mut out_buf = vec![0u8; 16 * 1024];
        let mut err_buf = vec![0u8; 8 * 1024];
        let (mut out_open, mut err_open) = (true, true);
        let mut status: Option<ExitStatus> = None;
        // Armed when the process exits; until then it never fires.
        let grace = tokio::time::sleep(Duration::from_secs(86400 * 365));
        tokio::pin!(grace);
        loop {
            if status.is_some() && !out_open && !err_open {
                break;
            }
            tokio::select! {
                _ = cancel.cancelled() => {
                    kill_group(pid);
                    let _ = child.wait().await;
                    return Err(RunError::Cancelled);
                }
                n = read_some(&mut out, &mut out_buf), if out_open => match n {
                    0 => out_open = false,
                    n => match (output, log.as_deref_mut()) {
                        (Output::Log, Some(log)) => log.write(&out_buf[..n]),
                        (Output::Capture, _) => captured.extend_from_slice(&out_buf[..n]),
                        _ => {}
                    },
                },
                n = read_some(&mut err, &mut err_buf), if err_open => match n {
                    0 => err_open = false,
                    n => {
                        if let (true, Some(log)) = (output != Output::Discard, log.as_deref_mut()) {
                            log.write(&err_buf[..n]);
                        }
                        keep_tail(&mut tail, &err_buf[..n]);
                    }
                },
                st = child.wait(), if status.is_none() => {
                    status = Some(st.map_err(RunError::Spawn)?);
                    grace.as_mut().reset(tokio::time::Instant::now() + LEFTOVER_GRACE);
                }
                _ = &mut grace, if status.is_some() => {
                    kill_group(pid);
                    break;
                }
            }
        }
        Ok(status)
    };
    let (status, ()) = tokio::join!(pump, feed);
    // From here the group has been dealt with: killed on cancel, or ended
    // on its own, where what it left running in the background (with its
    // output redirected) may go on, as in gitlab-runner.
    guard.0 = None;
    let status = status?.ok_or_else(|| RunError::Spawn(std::io::Error::other("no exit status")))?;
    Ok(Finished {
        status,
        stdout: captured,
        stderr_tail: tail_lines(&tail),
    })
}

/// Reads what is there; an error counts as the end of the stream.
async fn read_some<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> usize {
    reader.read(buf).await.unwrap_or(0)
}

/// Kills the process group when dropped while armed.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

fn kill_group(pid: Option<i32>) {
    if let Some(pid) = pid.and_then(rustix::process::Pid::from_raw) {
        // The group may already be gone; nothing to do then.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn keep_tail(tail: &mut Vec<u8>, bytes: &[u8]) {
    tail.extend_from_slice(bytes);
    if tail.len() > TAIL_BYTES {
        tail.drain(..tail.len() - TAIL_BYTES);
    }
}

fn tail_lines(tail: &[u8]) -> String {
    let text = String::from_utf8_lossy(tail);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join(" ")
}

/// `exit code <n>` or `signal <n>`, as the error message says it.
pub(crate) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "an unknown status".to_owned(),
    }
}

/// The first executable called `name` on `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path: OsString = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::sources::testutil::SharedLog;
    use std::time::Instant;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[tokio::test]
    async fn output_goes_to_the_log_and_stderr_tail_is_kept() {
        let (shared, mut log) = SharedLog::new();
        let done = run(
            sh("echo out; echo one >&2; echo two >&2; exit 3"),
            None,
            Output::Log,
            Some(&mut log),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert_eq!(describe(done.status), "exit code 3");
        assert_eq!(done.stderr_tail, "one two");
        let text = shared.text();
        assert!(text.contains("out\n") && text.contains("two\n"), "{text}");
    }

    #[tokio::test]
    async fn capture_returns_stdout_and_stdin_is_fed() {
        let (shared, mut log) = SharedLog::new();
        let done = run(
            Command::new("cat"),
            Some(b"hello\0world".to_vec()),
            Output::Capture,
            Some(&mut log),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(done.status.success());
        assert_eq!(done.stdout, b"hello\0world");
        assert_eq!(shared.text(), "");
    }

    #[tokio::test]
    async fn cancel_kills_the_whole_group_promptly() {
        let (_shared, mut log) = SharedLog::new();
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            trigger.cancel();
        });
        let started = Instant::now();
        // The grandchild writes the marker only if it outlives the kill.
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let err = run(sh(&script), None, Output::Log, Some(&mut log), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Cancelled));
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!marker.exists(), "a process of the group survived");
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_group_too() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("survived");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let (_shared, mut log) = SharedLog::new();
        let cancel = CancellationToken::new();
        let running = run(sh(&script), None, Output::Log, Some(&mut log), &cancel);
        let timed_out = tokio::time::timeout(Duration::from_millis(200), running).await;
        assert!(timed_out.is_err());
        tokio::time::sleep(Duration::from_millis(1300)).await;
        assert!(!marker.exists(), "a process of the group survived the drop");
    }

    #[test]
    fn path_lookup_finds_executables_only() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("no-such-program-here").is_none());
    }
}
