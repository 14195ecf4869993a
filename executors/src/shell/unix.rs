//! Thin wrappers over the Unix calls the shell executor makes.
//!
//! Errors that only mean "the process is already gone" (ESRCH, ECHILD) are
//! swallowed here: the process dying on its own is the outcome we wanted.

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::process::{self, Pid, Signal, WaitOptions};

/// Name of the environment variable that tags every process of a step.
pub(crate) const STEP_ID_VAR: &str = "RUNNER_STEP_ID";

/// Makes this process the "child subreaper" of its descendants.
///
/// Without it, a process whose parent exits is re-parented to init (pid 1),
/// which leaves the runner's process tree for good. With it, such orphans
/// (double forks, `setsid cmd &` after its shell exited) become children
/// of the runner. That matters for killing them safely: a dead child of
/// ours stays a zombie, holding its pid, until WE reap it, so a pid found
/// in `/proc` cannot be recycled for an unrelated process between our scan
/// and our `kill`. It also means the runner must reap those orphans, which
/// the sweep does for each step (never with `waitpid(-1)`, which would
/// steal the exit status of other jobs' shells from tokio).
///
/// The flag is per process and idempotent, so every executor may set it.
pub(crate) fn become_child_subreaper() -> io::Result<()> {
    // Any non-zero value sets the flag; rustix takes it as a pid.
    process::set_child_subreaper(Some(process::getpid())).map_err(io::Error::from)
}

/// Our own pid, process group and session, never to be signalled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SelfIds {
    pub pid: i32,
    pub pgid: i32,
    pub sid: i32,
}

impl SelfIds {
    /// Read from `/proc/self/stat`, not from `getpgid`/`getsid`: inside a
    /// container whose session (or group) leader lives outside our pid
    /// namespace the kernel reports id 0, which is a real answer here and
    /// which the typed pid wrappers refuse to hold.
    pub fn current() -> Self {
        let pid = process::getpid().as_raw_nonzero().get();
        match super::procfs::read_stat(pid) {
            Some(stat) => SelfIds {
                pid,
                pgid: stat.pgid,
                sid: stat.sid,
            },
            // No /proc: then nothing is swept either, and our own pid is a
            // safe stand-in for ids that are never compared against.
            None => SelfIds {
                pid,
                pgid: pid,
                sid: pid,
            },
        }
    }
}

/// The signals the executor sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sig {
    Term,
    Kill,
}

impl Sig {
    fn to_rustix(self) -> Signal {
        match self {
            Sig::Term => Signal::TERM,
            Sig::Kill => Signal::KILL,
        }
    }
}

/// Signals every process of group `pgid`; a group that no longer exists
/// is not an error.
pub(crate) fn signal_group(pgid: i32, sig: Sig) {
    if let Some(pid) = Pid::from_raw(pgid) {
        // ESRCH (empty group) and EPERM (a member changed its uid, e.g.
        // sudo) leave nothing we could do; the sweep reports survivors.
        let _ = process::kill_process_group(pid, sig.to_rustix());
    }
}

/// Signals one process; a process that no longer exists is not an error.
pub(crate) fn signal_process(pid: i32, sig: Sig) {
    if let Some(pid) = Pid::from_raw(pid) {
        // Same reasoning as `signal_group`.
        let _ = process::kill_process(pid, sig.to_rustix());
    }
}

/// Reaps `pid` if it is a zombie child of ours, without blocking.
///
/// Only ever called for a specific pid that the sweep attributed to its
/// step; ECHILD (not our child, or already reaped) is fine.
pub(crate) fn reap(pid: i32) {
    if let Some(pid) = Pid::from_raw(pid) {
        let _ = process::waitpid(Some(pid), WaitOptions::NOHANG);
    }
}

/// A fresh, unguessable step id, unique among the runner's steps and
/// across runners on the same host.
///
/// `RandomState` is seeded from the OS's random source once per thread and
/// advanced for every new value, so two calls never repeat; the time and
/// pid make the id unique across runner processes too.
pub(crate) fn new_step_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let a = RandomState::new().hash_one(now);
    let b = RandomState::new().hash_one(std::process::id());
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_do_not_repeat() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_step_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 32));
    }

    #[test]
    fn signalling_a_missing_process_is_silent() {
        // pid_max is at most 2^22, so this pid cannot exist.
        signal_process(i32::MAX - 1, Sig::Term);
        signal_group(i32::MAX - 1, Sig::Kill);
        reap(i32::MAX - 1);
    }

    #[test]
    fn self_ids_are_consistent() {
        let me = SelfIds::current();
        assert_eq!(me.pid, std::process::id() as i32);
        let stat = super::super::procfs::read_stat(me.pid).unwrap();
        assert_eq!((stat.pgid, stat.sid), (me.pgid, me.sid));
    }
}
