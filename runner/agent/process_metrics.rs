//! The standard `process_*` series of Prometheus clients, read from
//! `/proc/self` at scrape time.

use std::fmt::Write as _;

/// The series this process can report; missing files (not Linux) give
/// an empty string, not an error: metrics must never fail a scrape.
pub fn render() -> String {
    let mut out = String::new();
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold
    // spaces: split after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // With the state at index 0: utime 11, stime 12, starttime 19,
    // vsize 20, rss (pages) 21.
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let ticks = CLOCK_TICKS;
    let page = page_size();

    if let (Some(utime), Some(stime)) = (field(11), field(12)) {
        metric(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            (utime + stime) as f64 / ticks,
        );
    }
    if let Some(rss) = field(21) {
        metric(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            (rss * page) as f64,
        );
    }
    if let Some(vsize) = field(20) {
        metric(
            &mut out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            vsize as f64,
        );
    }
    if let (Some(start), Some(boot)) = (field(19), boot_time()) {
        metric(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            boot as f64 + start as f64 / ticks,
        );
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        metric(
            &mut out,
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            entries.count() as f64,
        );
    }
    if let Some(max) = max_fds() {
        metric(
            &mut out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max as f64,
        );
    }
    out
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// Clock ticks per second: 100 on every Linux there is (`USER_HZ`).
const CLOCK_TICKS: f64 = 100.0;

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

fn max_fds() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_reports_memory_cpu_and_fds() {
        let text = super::render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ] {
            let value: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in {text}"));
            assert!(value >= 0.0, "{name}");
        }
    }
}
