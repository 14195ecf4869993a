//! The command each step container starts with: find a shell, run the
//! script it reads on stdin, and report what the runner cannot see from
//! outside.
//!
//! GitLab starts build containers with `sh -c '<detect>'`, where the
//! detection `exec`s the first of a list of shells. This wrapper finds the
//! shell the same way, but runs it as a child instead of `exec`ing it, so
//! that it can:
//!
//! - send the script's stderr into the same pipe as its stdout
//!   (`2>&1`): Docker carries the two streams over separate pipes, which it
//!   reads independently, so their interleaving would otherwise be lost;
//!   with one pipe the kernel keeps every byte in the order it was written;
//! - forward SIGTERM to every process of the container: it is PID 1 there
//!   (Docker signals only PID 1, and a shell does not pass signals on), as
//!   GitLab does with a script that signals every PID;
//! - list the processes still alive when the script's shell exited, kill
//!   them and say so: their death would otherwise go unnoticed, since the
//!   kernel kills them silently when PID 1 exits.
//!
//! Its own messages go to the container's stderr, which then carries
//! nothing of the script's; each is one line starting with [`MARKER`].
//! Anything else on stderr (an image entrypoint's messages) is output.

use crate::ShellKind;

/// Starts every line the wrapper writes for the runner.
pub(crate) const MARKER: &str = "runner-wrapper:";

/// Where the wrapper looks for bash, then sh, in GitLab's order.
const BASH_PATHS: [&str; 3] = ["/usr/local/bin/bash", "/usr/bin/bash", "/bin/bash"];
const SH_PATHS: [&str; 4] = ["/usr/local/bin/sh", "/usr/bin/sh", "/bin/sh", "/busybox/sh"];

/// The shells tried for `kind`, in order.
pub(crate) fn candidates(kind: ShellKind) -> Vec<&'static str> {
    match kind {
        ShellKind::Bash => BASH_PATHS.iter().chain(SH_PATHS.iter()).copied().collect(),
        ShellKind::Sh => SH_PATHS.to_vec(),
    }
}

/// The wrapper for a script written for `kind`; `umask` is applied before
/// the shell starts.
///
/// A bash script runs with sh, silently, when the image has no bash: as
/// in GitLab, for most images (alpine's, busybox's) have none, and the
/// runner's scripts are written to work with both.
///
/// Why the lines read as they do:
/// - `exec 4>&2 2>/dev/null`: fd 4 carries the reports; the wrapper's own
///   shell messages (a job-status `Terminated` when the script is
///   stopped) are not output of the script, so they go nowhere;
/// - `exec 3<&0 0</dev/null` then `0<&3`: a background command's stdin
///   is /dev/null unless redirected explicitly; the script's shell gets
///   the container's stdin (the script), and the wrapper keeps no copy;
/// - `while kill -0`: the TERM trap interrupts `wait`, which must then
///   be resumed for the shell's real status;
/// - every command after the shell exits is a builtin of every POSIX
///   shell, so that the wrapper's own children never show up in the list
///   of left-over processes.
pub(crate) fn script(kind: ShellKind, umask: Option<u32>) -> String {
    let shells = candidates(kind).join(" ");
    let umask = umask.map_or(String::new(), |u| format!("  umask {u:04o}\n"));
    format!(
        r#"M={MARKER}
exec 4>&2 2>/dev/null
for s in {shells}; do
  [ -x "$s" ] || continue
{umask}  trap 'kill -TERM -1' TERM
  exec 3<&0 0</dev/null
  "$s" 0<&3 3<&- 4>&- 2>&1 &
  p=$!
  exec 3<&-
  wait "$p"; c=$?
  while kill -0 "$p"; do wait "$p"; c=$?; done
  l=
  for d in /proc/[0-9]*; do
    n=${{d#/proc/}}
    if [ "$n" = 1 ] || [ "$n" = "$$" ]; then continue; fi
    t=
    read -r t 0<"$d/stat"
    r=${{t##*) }}
    case $r in ""|Z*|X*) continue;; esac
    t=${{t#*(}}
    l="$l $n (${{t%)*}})"
  done
  if [ -n "$l" ]; then echo "$M leftover$l" >&4; kill -KILL -1; fi
  exit "$c"
done
echo "$M no-shell" >&4
exit 127
"#
    )
}

/// What the wrapper told the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    /// Processes alive when the shell exited, which were killed:
    /// `12 (sleep), 13 (sleep)`.
    Leftover(String),
    /// No shell at all.
    NoShell,
}

/// Splits the container's stderr into the wrapper's reports and the
/// output that is not the wrapper's.
#[derive(Debug, Default)]
pub(crate) struct StderrSplitter {
    partial: Vec<u8>,
    pub reports: Vec<Report>,
}

impl StderrSplitter {
    /// Takes a chunk of stderr; returns what is output, not reports.
    ///
    /// Only whole lines can be told apart, so bytes are held until their
    /// line ends (or [`finish`](Self::finish)).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.partial.extend_from_slice(bytes);
        let Some(last_nl) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(last_nl + 1);
        let lines = std::mem::replace(&mut self.partial, rest);
        let mut out = Vec::new();
        for line in lines.split_inclusive(|&b| b == b'\n') {
            match parse_report(line) {
                Some(r) => self.reports.push(r),
                None => out.extend_from_slice(line),
            }
        }
        out
    }

    /// Whatever is held back (a last line without newline).
    pub fn finish(&mut self) -> Vec<u8> {
        let line = std::mem::take(&mut self.partial);
        match parse_report(&line) {
            Some(r) => {
                self.reports.push(r);
                Vec::new()
            }
            None => line,
        }
    }
}

fn parse_report(line: &[u8]) -> Option<Report> {
    let text = std::str::from_utf8(line).ok()?.trim_end_matches('\n');
    let rest = text.strip_prefix(MARKER)?.trim_start();
    let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    match word {
        // `12 (sleep) 13 (sh)` reads better as `12 (sleep), 13 (sh)`.
        "leftover" => Some(Report::Leftover(arg.trim().replace(") ", "), "))),
        "no-shell" => Some(Report::NoShell),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn reports_are_split_from_output() {
        let mut s = StderrSplitter::default();
        let mut out = s.push(b"entry");
        out.extend(s.push(b"point says hi\nrunner-wr"));
        out.extend(s.push(b"apper: leftover 12 (sleep) 13 (my prog)\n"));
        out.extend(s.push(b"runner-wrapper: no-shell"));
        out.extend(s.finish());
        assert_eq!(out, b"entrypoint says hi\n");
        assert_eq!(
            s.reports,
            [
                Report::Leftover("12 (sleep), 13 (my prog)".into()),
                Report::NoShell,
            ]
        );
    }

    #[test]
    fn unknown_marker_lines_are_output() {
        let mut s = StderrSplitter::default();
        assert_eq!(
            s.push(b"runner-wrapper: other\n"),
            b"runner-wrapper: other\n"
        );
        assert!(s.reports.is_empty());
    }

    #[test]
    fn sh_scripts_skip_bash() {
        assert!(candidates(ShellKind::Sh).iter().all(|s| s.ends_with("/sh")));
        assert_eq!(candidates(ShellKind::Bash)[0], "/usr/local/bin/bash");
        assert!(!script(ShellKind::Sh, None).contains("bash"));
        assert!(script(ShellKind::Bash, Some(0)).contains("umask 0000\n"));
    }

    /// Runs the wrapper with `shell` as PID 1 of a new pid namespace (as in
    /// a container), feeding it `stdin`; returns (stdout, stderr, code).
    fn run_as_pid1(shell: &str, stdin: &str) -> (String, String, i32) {
        let mut child = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", shell, "-c"])
            .arg(script(ShellKind::Bash, None))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("`unshare` (util-linux) must be installed to run this test");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    }

    /// The wrapper is plain POSIX sh: it works under every shell an image
    /// may call `sh`.
    #[test]
    fn wrapper_runs_under_dash_bash_and_busybox() {
        for shell in ["dash", "bash", "busybox"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {shell}")])
                .output()
                .unwrap();
            assert!(
                found.status.success(),
                "{shell} must be installed for this test"
            );
            let argv0 = if shell == "busybox" {
                "/bin/busybox"
            } else {
                shell
            };
            let (out, err, code) = if shell == "busybox" {
                // `busybox sh -c`: unshare cannot pass an applet name, so
                // go through a symlink named sh.
                let dir = tempfile::tempdir().unwrap();
                let link = dir.path().join("sh");
                std::os::unix::fs::symlink(which(argv0), &link).unwrap();
                run_as_pid1(link.to_str().unwrap(), SCRIPT)
            } else {
                run_as_pid1(shell, SCRIPT)
            };
            assert_eq!(out, "out\nerr\n", "{shell}: output");
            assert_eq!(code, 5, "{shell}: exit code");
            let mut split = StderrSplitter::default();
            let mut rest = split.push(err.as_bytes());
            rest.extend(split.finish());
            assert!(rest.is_empty(), "{shell}: stray stderr {rest:?}");
            let leftover = split.reports.iter().find_map(|r| match r {
                Report::Leftover(l) => Some(l.clone()),
                _ => None,
            });
            let leftover =
                leftover.unwrap_or_else(|| panic!("{shell}: no leftover report: {err:?}"));
            assert!(leftover.contains("(sleep)"), "{shell}: {leftover}");
        }
    }

    // The pause lets the background shell exec `sleep` before the scan.
    const SCRIPT: &str =
        "echo out\necho err >&2\nsleep 1000 >/dev/null 2>&1 &\nsleep 0.3\nexit 5\n";

    fn which(name: &str) -> String {
        if name.starts_with('/') && std::path::Path::new(name).exists() {
            return name.to_owned();
        }
        let out = Command::new("sh")
            .args([
                "-c",
                &format!("command -v {}", name.trim_start_matches("/bin/")),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}
