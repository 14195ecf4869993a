//! Starting the shell of one step.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::Path;
use std::process::Stdio;

use rustix::fs::{MemfdFlags, memfd_create};
use rustix::pipe::{PipeFlags, pipe_with};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use super::unix::STEP_ID_VAR;
use crate::{ExecutorError, StepRequest};

/// A running shell and its plumbing.
pub(crate) struct Spawned {
    pub child: Child,
    /// The shell's pid, which is also the id of the step's process group.
    pub pid: i32,
    /// The read end of the pipe that carries stdout AND stderr.
    pub output: pipe::Receiver,
}

/// Starts `shell` for `request`, tagged with `step_id`.
///
/// Must be called within a tokio runtime with I/O enabled.
pub(crate) fn spawn_shell(
    shell: &Path,
    login: bool,
    request: &StepRequest,
    step_id: &str,
) -> Result<Spawned, ExecutorError> {
    // The shell inherits the cwd, so a bad one fails the spawn with the
    // same ENOENT as a missing binary; check it first to say which.
    check_workdir(&request.workdir)?;
    let script = script_file(&request.script).map_err(|source| ExecutorError::Spawn {
        shell: shell.to_owned(),
        source: io::Error::new(
            source.kind(),
            format!("cannot keep the script in memory: {source}"),
        ),
    })?;

    // ONE pipe for both stdout and stderr: the kernel then orders every
    // byte by the time it was written, so the trace shows exactly the
    // interleaving a terminal would. Two pipes read separately cannot.
    //
    // O_CLOEXEC matters: other jobs spawn their shells from other threads
    // of this process at any time, and a child that inherited our write
    // end would keep our pipe open (no EOF) for as long as it lives. The
    // child's own stdout/stderr are dup2()ed copies, which do not inherit
    // the flag.
    let (read_end, write_end) =
        pipe_with(PipeFlags::CLOEXEC).map_err(|e| ExecutorError::Pipe(e.into()))?;
    // The pipe keeps the kernel's default capacity (64 KiB): a larger one
    // measured no faster (50 MiB stream in well under 0.2 s either way),
    // and it would eat into the user's pipe budget (`pipe-user-pages-soft`),
    // past which every new pipe of the user, including the jobs' own, is
    // cut to one page.
    let write_end2 = write_end.try_clone().map_err(ExecutorError::Pipe)?;
    // Registered with the runtime before the spawn, so that a failure here
    // cannot leave a shell running unread. This sets O_NONBLOCK on the
    // read end only; the write end stays blocking, as programs expect of
    // their stdout.
    let output = pipe::Receiver::from_owned_fd(read_end).map_err(ExecutorError::Pipe)?;

    let mut cmd = Command::new(shell);
    if login {
        // Both bash and POSIX shells found in practice (dash, busybox)
        // accept -l; GitLab's shell executor starts `bash -l`.
        cmd.arg("-l");
    }
    cmd.current_dir(&request.workdir)
        // The runner's environment is inherited; the step's variables win.
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        // Set last so that no variable of the job can change it: the sweep
        // finds escaped processes by this exact entry.
        .env(STEP_ID_VAR, step_id)
        // The script arrives on stdin, as GitLab feeds it.
        .stdin(Stdio::from(script))
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(write_end2))
        // A new process group, led by the shell: one kill(-pgid) reaches
        // everything the script started that did not leave the group, and
        // a Ctrl-C at the runner's terminal (SIGINT to the terminal's
        // foreground group) does not hit the job behind the runner's back.
        .process_group(0)
        // Killing is the step's business (group, grace, sweep), not a
        // single SIGKILL to the shell when a handle is dropped.
        .kill_on_drop(false);

    let child = cmd.spawn().map_err(|source| ExecutorError::Spawn {
        shell: shell.to_owned(),
        source,
    })?;
    // The Command still holds our copies of the pipe's write end; while
    // they are open the pipe can never reach EOF. Drop them now.
    drop(cmd);

    match child.id().and_then(|p| i32::try_from(p).ok()) {
        Some(pid) => Ok(Spawned { child, pid, output }),
        // Cannot happen right after a successful spawn; report rather
        // than panic.
        None => Err(ExecutorError::Spawn {
            shell: shell.to_owned(),
            source: io::Error::other("spawned shell has no pid"),
        }),
    }
}

/// The script in an anonymous in-memory file, read from its start.
///
/// Not a pipe: a shell reads a script from a pipe one byte per `read`
/// (it must not take input meant for the commands it starts), which made
/// the few KiB of variable exports in front of every job's script cost
/// thousands of system calls per step, several milliseconds of CPU. From a
/// file it reads whole blocks, and seeks back before each command it
/// starts, so a command that reads stdin still sees the rest of the
/// script, as from a pipe. Close-on-exec: other jobs' shells, spawned from
/// other threads, must not inherit it; the shell's own stdin is a copy.
fn script_file(script: &str) -> io::Result<File> {
    let mut file = File::from(memfd_create("runner-script", MemfdFlags::CLOEXEC)?);
    file.write_all(script.as_bytes())?;
    file.rewind()?;
    Ok(file)
}

fn check_workdir(dir: &Path) -> Result<(), ExecutorError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(ExecutorError::Directory {
            path: dir.to_owned(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        }),
        Err(source) => Err(ExecutorError::Directory {
            path: dir.to_owned(),
            source,
        }),
    }
}
