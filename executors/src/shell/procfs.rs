//! Reading processes from `/proc` (Linux).
//!
//! Used to find a step's processes that escaped its process group. Every
//! read here can fail because the process exited in the meantime; such a
//! process is simply skipped, never an error.

use std::fs;
use std::io::Read;

/// What `/proc/<pid>/stat` says about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: i32,
    /// The command name (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`...
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// The kernel's `PF_*` flags.
    pub flags: u64,
}

impl ProcStat {
    /// A zombie has exited and only waits to be reaped by its parent.
    pub fn is_zombie(&self) -> bool {
        // `X` (dead) is only ever seen transiently, but it is no more alive.
        matches!(self.state, 'Z' | 'X')
    }

    /// Kernel threads have no user memory, hence no environment.
    pub fn is_kernel_thread(&self) -> bool {
        const PF_KTHREAD: u64 = 0x0020_0000;
        self.flags & PF_KTHREAD != 0
    }
}

/// Parses the text of `/proc/<pid>/stat`.
///
/// The command name sits between the first `(` and the LAST `)`, and may
/// itself contain spaces and parentheses (`prctl(PR_SET_NAME)` lets a
/// process call itself anything), so the fields after it are found from
/// the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text.get(..open)?.trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_owned();
    let mut rest = text.get(close + 1..)?.split_ascii_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    let sid = rest.next()?.parse().ok()?;
    let _tty_nr = rest.next()?;
    let _tpgid = rest.next()?;
    let flags = rest.next()?.parse().ok()?;
    Some(ProcStat {
        pid,
        comm,
        state,
        ppid,
        pgid,
        sid,
        flags,
    })
}

/// Reads `/proc/<pid>/stat`; `None` if the process is gone.
///
/// The sweep reads this for every process of the host at the end of every
/// step, so it costs no more than open, read, close: the line (a few
/// hundred bytes) goes into a buffer on the stack, where reading it into a
/// `String` would also ask for the file's size and allocate. A name that
/// is not UTF-8 is read lossily rather than hiding its process.
pub(crate) fn read_stat(pid: i32) -> Option<ProcStat> {
    let mut file = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(&String::from_utf8_lossy(&buf[..len]))
}

/// What `/proc/<pid>/environ` says about one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvVar {
    /// The environment cannot be read: another user's process, or gone.
    Unreadable,
    /// The variable is not set.
    Absent,
    /// The variable's value.
    Value(Vec<u8>),
}

/// Looks up variable `name` in the environment `pid` was started with.
///
/// `/proc/<pid>/environ` holds NUL-terminated `NAME=value` entries. It is
/// readable only for processes of the same user, and empty for zombies
/// and kernel threads (callers skip those).
///
/// It is also empty for a moment during `execve`: the parent of a
/// `vfork`/`posix_spawn` child resumes, and the new program may be
/// listed, before the kernel has recorded where the new environment
/// lies. A process in that window would look untagged and escape the
/// sweep, so an empty read is retried briefly; only a process that
/// really has no environment at all pays for the retries.
pub(crate) fn environ_var(pid: i32, name: &[u8]) -> EnvVar {
    const RETRIES: u32 = 10;
    let mut bytes = Vec::new();
    for attempt in 0..=RETRIES {
        let Ok(mut file) = fs::File::open(format!("/proc/{pid}/environ")) else {
            return EnvVar::Unreadable;
        };
        bytes.clear();
        if file.read_to_end(&mut bytes).is_err() {
            return EnvVar::Unreadable;
        }
        if !bytes.is_empty() || attempt == RETRIES {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    bytes
        .split(|&b| b == 0)
        .find_map(|entry| {
            let value = entry.strip_prefix(name)?.strip_prefix(b"=")?;
            Some(EnvVar::Value(value.to_vec()))
        })
        .unwrap_or(EnvVar::Absent)
}

/// The ids of all processes (thread-group leaders) currently listed.
pub(crate) fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_plain_name() {
        let s = parse_stat("1234 (sleep) S 1 1234 1234 0 -1 4194560 100 0").unwrap();
        assert!(!s.is_kernel_thread());
        assert_eq!(
            s,
            ProcStat {
                pid: 1234,
                comm: "sleep".into(),
                state: 'S',
                ppid: 1,
                pgid: 1234,
                sid: 1234,
                flags: 4194560,
            }
        );
        assert!(!s.is_zombie());
    }

    #[test]
    fn stat_with_parentheses_and_spaces_in_name() {
        let s = parse_stat("77 (a) b (c) Z 5 6 7 0 -1 2097216").unwrap();
        assert!(s.is_kernel_thread());
        assert_eq!(s.comm, "a) b (c");
        assert_eq!((s.state, s.ppid, s.pgid, s.sid), ('Z', 5, 6, 7));
        assert!(s.is_zombie());
    }

    #[test]
    fn a_name_that_is_not_utf8_does_not_hide_its_process() {
        // The shell renames itself, then waits for its stdin to close.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "printf '\\377\\376' > /proc/self/comm; read line"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let renamed = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c == b"\xff\xfe\n")
        });
        let stat = read_stat(pid);
        drop(child.stdin.take());
        child.wait().unwrap();
        assert!(renamed, "the shell did not rename itself");
        let stat = stat.expect("the process was found");
        assert_eq!(stat.ppid, std::process::id() as i32);
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert_eq!(parse_stat("77 (a) S 5 6 7 0 -1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn child_process_is_found_with_its_environment() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .env("PROCFS_TEST", "a=b")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let s = read_stat(pid).unwrap();
        assert_eq!((s.pid, s.ppid), (pid, std::process::id() as i32));
        assert!(all_pids().contains(&pid));
        assert_eq!(
            environ_var(pid, b"PROCFS_TEST"),
            EnvVar::Value(b"a=b".to_vec())
        );
        // The name must match whole, not as a prefix.
        assert_eq!(environ_var(pid, b"PROCFS_TES"), EnvVar::Absent);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(read_stat(pid), None);
        assert_eq!(environ_var(pid, b"PROCFS_TEST"), EnvVar::Unreadable);
    }
}
