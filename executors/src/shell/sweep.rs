//! Finding and killing every process a step started, wherever it went.
//!
//! A process group catches most of a script's processes, but not those
//! that leave it: `setsid cmd &`, daemons that double-fork and call
//! `setsid`, `set -m` job control. The runner promises that once a step is
//! over, no process of it is alive, so the sweep also looks for processes
//! by the step's environment marker (`RUNNER_STEP_ID=<unique id>`), which
//! every process inherits unless it deliberately clears its environment.
//!
//! Attribution rules, and why each is safe:
//! - a live process whose environment holds the step's marker;
//! - a live process with no marker at all (it cleared its environment)
//!   that is in the step's process group, or in a group or session a step
//!   process was seen in (a `setsid` escapee leads its own session and its
//!   children stay in it), AND whose parent is us or a step process. A
//!   process carrying ANOTHER step's marker is never ours;
//! - a zombie only if it is our own child (re-parented to us, the child
//!   subreaper), is not the shell (tokio reaps that one), and either was
//!   seen alive as a step process, or is in a step session, or is a
//!   non-leader member of a step group. A zombie's environment is empty so
//!   these ids are all we have; a zombie child of ours keeps its pid until
//!   we reap it. Other jobs' shells are never matched: they lead their own
//!   group in our session. Zombies of other parents are theirs to reap.
//!
//! All of this assumes that a pid, group id or session id seen during a
//! step is not recycled by the kernel within that step's sweep (seconds);
//! ids are handed out in increasing order up to `pid_max` (4 million on
//! current 64-bit systems) before any is reused.
//!
//! Limits: a process that clears its environment AND leaves the step's
//! groups and sessions is invisible; so is one that changed its user (its
//! environment is unreadable, and we could not signal it anyway). Under
//! systemd, the service's control group catches those when it stops.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::output::OutputPump;
use super::procfs::{self, EnvVar, ProcStat};
use super::unix::{self, STEP_ID_VAR, SelfIds, Sig};

/// How often /proc is rescanned while waiting for processes to die.
const POLL: Duration = Duration::from_millis(50);

/// Bound on one /proc scan. Reading `/proc/<pid>/environ` takes the
/// target's memory-map lock, and can block for as long as a process stuck
/// in the kernel (a hung NFS mount) holds it; the scan then gives up
/// rather than hang the step forever.
const SCAN_TIMEOUT: Duration = Duration::from_secs(30);

/// One scan's result: the step's processes alive, and its zombies that we
/// may reap.
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub live: Vec<ProcStat>,
    pub zombies: Vec<ProcStat>,
}

/// What is known about a step's processes: the ids the attribution rules
/// of this module work from.
#[derive(Debug, Clone)]
struct Seen {
    /// The step's id, the value of `RUNNER_STEP_ID` in its processes.
    step_id: Arc<[u8]>,
    /// The shell's pid: owned by tokio, never reaped here.
    shell_pid: i32,
    me: SelfIds,
    /// Pids seen alive as step processes.
    known: HashSet<i32>,
    /// Process groups and sessions seen holding step processes, without
    /// ours (the shell is started in our session).
    groups: HashSet<i32>,
    sessions: HashSet<i32>,
}

impl Seen {
    fn new(step_id: &str, shell_pid: i32) -> Self {
        Seen {
            step_id: step_id.as_bytes().into(),
            shell_pid,
            me: SelfIds::current(),
            known: HashSet::new(),
            // The shell leads the step's group (process_group(0)).
            groups: HashSet::from([shell_pid]),
            sessions: HashSet::new(),
        }
    }

    /// Walks /proc once and applies the attribution rules. Blocking.
    ///
    /// Every process of a step descends from this one: the shell is our
    /// child, and as a child subreaper (see `shell::unix`) we inherit any
    /// of its descendants orphaned on the way. So only our descendants'
    /// environments are read. Reading every process's environment, at the
    /// end of every step, was most of what a trivial job cost this process;
    /// and a process with an empty environment costs retries (see
    /// `procfs::environ_var`).
    fn scan(&self) -> Found {
        let mut found = Found::default();
        let stats: Vec<ProcStat> = procfs::all_pids()
            .into_iter()
            .filter(|&pid| pid != self.me.pid)
            .filter_map(procfs::read_stat)
            .collect();
        let parents: HashMap<i32, i32> = stats.iter().map(|s| (s.pid, s.ppid)).collect();
        for stat in stats {
            if stat.is_kernel_thread() {
                continue;
            }
            if stat.is_zombie() {
                if self.owns_zombie(&stat) {
                    found.zombies.push(stat);
                }
            } else if may_descend_from(self.me.pid, stat.ppid, &parents) && self.owns_live(&stat) {
                found.live.push(stat);
            }
        }
        found
    }

    fn owns_zombie(&self, z: &ProcStat) -> bool {
        z.ppid == self.me.pid
            && z.pid != self.shell_pid
            && (self.known.contains(&z.pid)
                || self.sessions.contains(&z.sid)
                || (self.groups.contains(&z.pgid) && z.pgid != z.pid))
    }

    fn owns_live(&self, p: &ProcStat) -> bool {
        match procfs::environ_var(p.pid, STEP_ID_VAR.as_bytes()) {
            EnvVar::Value(id) => *id == *self.step_id,
            EnvVar::Absent => {
                (self.groups.contains(&p.pgid) || self.sessions.contains(&p.sid))
                    && (p.ppid == self.me.pid || self.known.contains(&p.ppid))
            }
            EnvVar::Unreadable => false,
        }
    }

    /// Remembers the ids of the live processes found.
    fn learn(&mut self, found: &Found) {
        for p in &found.live {
            self.known.insert(p.pid);
            if p.pgid != self.me.pgid {
                self.groups.insert(p.pgid);
            }
            if p.sid != self.me.sid {
                self.sessions.insert(p.sid);
            }
        }
    }
}

/// Whether a process whose parent is `ppid` may descend from `me`, going
/// up through `parents` (pid to parent pid, as one scan saw them). Only a
/// line of ancestors that ends at pid 0, the parent of init and of
/// processes whose parent lies outside our pid namespace, rules it out.
/// A parent missing from the scan (it exited meanwhile, its children may
/// be ours now) or a loop (pids reused during the scan) keeps it in.
fn may_descend_from(me: i32, ppid: i32, parents: &HashMap<i32, i32>) -> bool {
    let mut pid = ppid;
    for _ in 0..=parents.len() {
        if pid == me {
            return true;
        }
        match parents.get(&pid) {
            Some(&parent) => pid = parent,
            None => return pid != 0,
        }
    }
    true
}

fn reap(found: &Found) {
    for z in &found.zombies {
        unix::reap(z.pid);
    }
}

fn signal_live(found: &Found, sig: Sig) {
    for p in &found.live {
        unix::signal_process(p.pid, sig);
    }
}

/// Tracks the processes of one running step.
#[derive(Debug)]
pub(crate) struct StepProcesses {
    seen: Seen,
    /// Set when a scan had to be abandoned.
    pub stalled: bool,
}

/// What a sweep found and did.
#[derive(Debug, Default)]
pub(crate) struct SweepReport {
    /// Processes found alive, in order of discovery (pid, command name).
    pub found: Vec<(i32, String)>,
    /// Processes still alive when the sweep gave up.
    pub unkillable: Vec<(i32, String)>,
}

impl StepProcesses {
    pub fn new(step_id: &str, shell_pid: i32) -> Self {
        StepProcesses {
            seen: Seen::new(step_id, shell_pid),
            stalled: false,
        }
    }

    /// Lists the step's processes now, and reaps its zombies.
    async fn scan(&mut self) -> Found {
        let seen = self.seen.clone();
        // /proc reads are blocking calls; see SCAN_TIMEOUT for why they may
        // even block for long.
        let task = tokio::task::spawn_blocking(move || seen.scan());
        let found = match tokio::time::timeout(SCAN_TIMEOUT, task).await {
            Ok(Ok(found)) => found,
            // A panicked or abandoned scan found nothing we can act on.
            Ok(Err(_)) | Err(_) => {
                self.stalled = true;
                Found::default()
            }
        };
        self.seen.learn(&found);
        reap(&found);
        found
    }

    /// Sends `sig` to the step's group (only while the shell is unreaped:
    /// its pid then still holds the group id) and to every step process
    /// found now. Used when the step is timed out or cancelled.
    pub async fn signal_all(&mut self, sig: Sig, shell_unreaped: bool) {
        if shell_unreaped {
            unix::signal_group(self.seen.shell_pid, sig);
        }
        let found = self.scan().await;
        signal_live(&found, sig);
    }

    /// Kills whatever is left of the step after its shell has exited:
    /// SIGTERM, then SIGKILL once `grace` has passed since `term_sent` (or
    /// since now), then waits up to `kill_wait` for them to be gone.
    /// Output keeps being read meanwhile: a dying process may be blocked
    /// writing to a full pipe, and its last words belong in the trace.
    pub async fn sweep(
        &mut self,
        term_sent: Option<Instant>,
        grace: Duration,
        kill_wait: Duration,
        pump: &mut OutputPump<'_>,
    ) -> SweepReport {
        let mut report = SweepReport::default();
        let mut termed: HashSet<i32> = HashSet::new();
        let term_at = term_sent.unwrap_or_else(Instant::now);
        let mut kill_deadline: Option<Instant> = None;
        let mut confirming = false;
        loop {
            let found = self.scan().await;
            for p in &found.live {
                if !report.found.iter().any(|(pid, _)| *pid == p.pid) {
                    report.found.push((p.pid, p.comm.clone()));
                }
            }
            if found.live.is_empty() {
                // A scan reads one process after the other: a step process
                // that forked and exited between our reads of its child's
                // slot and its own would leave the child unseen. That
                // needs step processes still at work, so one more scan is
                // taken only when some were found.
                if report.found.is_empty() || confirming {
                    break;
                }
                confirming = true;
                pump.pump_for(POLL).await;
                continue;
            }
            confirming = false;
            let now = Instant::now();
            match kill_deadline {
                None if now < term_at + grace => {
                    // Processes that appear during the grace (forked by
                    // dying ones) get their SIGTERM too.
                    for p in found.live.iter().filter(|p| termed.insert(p.pid)) {
                        unix::signal_process(p.pid, Sig::Term);
                    }
                }
                None => {
                    kill_deadline = Some(now + kill_wait);
                    signal_live(&found, Sig::Kill);
                }
                Some(deadline) if now < deadline => signal_live(&found, Sig::Kill),
                Some(_) => {
                    report.unkillable =
                        found.live.iter().map(|p| (p.pid, p.comm.clone())).collect();
                    break;
                }
            }
            pump.pump_for(POLL).await;
        }
        // A zombie seen with a live parent a moment ago may have been
        // re-parented to us since, as its parent died: reap it now. With
        // nothing found alive, no such parent existed.
        if !report.found.is_empty() {
            self.scan().await;
        }
        report
    }
}

/// Kills every process of a step right away, without grace, on the
/// calling thread. For a step whose future was dropped mid-way, when
/// nothing can be awaited any more.
pub(crate) fn kill_now_blocking(step_id: &str, shell_pid: i32) {
    let mut seen = Seen::new(step_id, shell_pid);
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = seen.scan();
        reap(&found);
        if found.live.is_empty() || std::time::Instant::now() > give_up {
            return;
        }
        signal_live(&found, Sig::Kill);
        seen.learn(&found);
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lines_of_ancestors_that_miss_us_are_ruled_out() {
        const ME: i32 = 100;
        // init (1) ← sshd (10) ← us (100) ← bash (200) ← sleep (300);
        // init ← cron (20) ← job (30); 400's parent is gone; 500 and 501
        // are each other's parent (pids reused during the scan).
        let parents: HashMap<i32, i32> = [
            (1, 0),
            (10, 1),
            (ME, 10),
            (200, ME),
            (300, 200),
            (20, 1),
            (30, 20),
            (400, 399),
            (500, 501),
            (501, 500),
        ]
        .into_iter()
        .collect();
        assert!(may_descend_from(ME, ME, &parents), "our child");
        assert!(may_descend_from(ME, 200, &parents), "our grandchild");
        assert!(may_descend_from(ME, 300, &parents));
        assert!(!may_descend_from(ME, 20, &parents), "cron's child");
        assert!(!may_descend_from(ME, 10, &parents), "our sibling");
        assert!(!may_descend_from(ME, 0, &parents), "init");
        assert!(!may_descend_from(ME, 1, &parents), "init's child");
        assert!(may_descend_from(ME, 399, &parents), "an orphan in transit");
        assert!(may_descend_from(ME, 500, &parents), "a loop");
    }
}
