//! How fast the registered agent is: the release `runner run` against the
//! fake GitLab of the integration tests, on loopback, with shell jobs.
//! Prints figures; asserts nothing about them.
//!
//! - jobs per second: 200 trivial jobs (`true`, `GIT_STRATEGY=empty`, no
//!   artifacts) queued before the agent starts, `concurrent = 4`, one
//!   `[[runners]]` entry; completed jobs over the time from the first job
//!   request to the last final update the fake received;
//! - live trace: one job printing 100 MiB of log lines, a masked
//!   variable's value in every 50th, with `output_limit` raised so nothing
//!   is cut; the trace bytes the fake received while the job ran (from its
//!   acknowledgement to the end of its script) over that time, and the time
//!   until the final update. The stored trace is checked: the whole log,
//!   masked, and the checksum GitLab compares;
//! - idle memory: the agent's VmRSS after 5 s of polling an empty queue.
//!
//! Run with `cargo bench --bench agent`. Environment:
//! - `RUNNER_BIN`: the runner binary to measure (default: the release
//!   binary cargo built for this bench);
//! - `RUNNER_BENCH_FILTER=TEXT`: only the measurements whose name holds
//!   TEXT (`jobs`, `trace`, `idle`).

#[allow(dead_code)]
#[path = "../tests/support/fake_gitlab.rs"]
mod fake_gitlab;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use fake_gitlab::{Endpoint, FakeGitLab, RecordedRequest, add_variable, shell_job_payload};

/// Trivial jobs per round of the jobs-per-second measurement.
const JOBS: u64 = 200;
const JOB_ROUNDS: usize = 5;
const TRACE_ROUNDS: usize = 3;
const IDLE_ROUNDS: usize = 3;
/// The live trace's log: 1,048,576 lines of 100 bytes.
const LOG_LINES: usize = 1 << 20;
const LINE_BYTES: usize = 100;
/// Every this many lines, one holds the secret.
const SECRET_EVERY: usize = 50;
/// The masked variable's value (GitLab masks values of 8 characters or
/// more).
const SECRET: &str = "Bench-Secret-Value-42";
/// `output_limit` (KiB) of the live trace run: 200 MiB, twice the log.
const OUTPUT_LIMIT_KIB: u64 = 200 * 1024;

fn runner_bin() -> PathBuf {
    std::env::var_os("RUNNER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runner")))
}

/// A `runner run` process with its own config and working directory.
struct Agent {
    child: Child,
    dir: TempDir,
}

impl Agent {
    fn start(bin: &Path, config: &str) -> Result<Agent, String> {
        let dir = tempfile::Builder::new()
            .prefix("runner-agent-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, config).map_err(|e| format!("config: {e}"))?;
        let log = File::create(dir.path().join("agent.log")).map_err(|e| format!("log: {e}"))?;
        let child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .arg("--working-directory")
            .arg(dir.path().join("work"))
            .env("RUNNER_CONFIG", "/nonexistent")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{} did not start: {e}", bin.display()))?;
        Ok(Agent { child, dir })
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    fn memory_kib(&self, field: &str) -> Option<u64> {
        proc_status_kib(self.child.id(), field)
    }

    /// The last lines of the agent's log, to explain a failure.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n    ")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time of `pid` (`utime + stime`) and of the children it has reaped
/// (`cutime + cstime`), from `/proc/<pid>/stat`.
fn cpu_times(pid: u32) -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it do not.
    let fields: Vec<u64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let time = |a: usize, b: usize| -> Option<Duration> {
        Some(Duration::from_secs_f64(
            (fields.get(a)? + fields.get(b)?) as f64 / ticks,
        ))
    };
    // utime, stime, cutime, cstime are fields 14 to 17; `fields` starts at
    // field 3.
    Some((time(11, 12)?, time(13, 14)?))
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn config(gitlab: &FakeGitLab, token: &str, concurrent: u32, extra: &str) -> String {
    format!(
        "concurrent = {concurrent}\ncheck_interval = 3\n\n[[runners]]\n  name = \"bench\"\n  url = \"{}\"\n  token = \"{token}\"\n  executor = \"shell\"\n{extra}",
        gitlab.url()
    )
}

fn is_final(status: Option<String>) -> bool {
    matches!(status.as_deref(), Some("success" | "failed" | "canceled"))
}

fn is_final_update(request: &RecordedRequest) -> bool {
    request.endpoint == Some(Endpoint::UpdateJob)
        && matches!(request.json()["state"].as_str(), Some("success" | "failed"))
}

/// Waits until every job in `ids` has ended on the fake, or `within`.
async fn wait_all_final(
    gitlab: &FakeGitLab,
    agent: &Agent,
    ids: &[u64],
    within: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let done = ids
            .iter()
            .filter(|id| is_final(gitlab.job_status(**id)))
            .count();
        if done == ids.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{done} of {} jobs ended within {within:?}\n    {}",
                ids.len(),
                agent.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// --- jobs per second ---

struct JobsFigures {
    /// From the first job request to the last final update.
    wall: Duration,
    /// The median job from its acknowledgement to its final update.
    job: Duration,
    /// CPU time per job: the agent's own, and its job processes'.
    cpu_agent: Duration,
    cpu_jobs: Duration,
}

async fn jobs_round(bin: &Path) -> Result<JobsFigures, String> {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let ids: Vec<u64> = (1..=JOBS)
        .map(|id| {
            gitlab.push_job(shell_job_payload(
                id,
                &format!("glcbt-b{id}"),
                &["true"],
                &[],
            ))
        })
        .collect();
    let agent = Agent::start(bin, &config(&gitlab, &token, 4, ""))?;
    wait_all_final(&gitlab, &agent, &ids, Duration::from_secs(300)).await?;
    let (cpu_agent, cpu_jobs) = cpu_times(agent.child.id()).ok_or("the agent has exited")?;
    let failed: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|id| gitlab.job_status(*id).as_deref() != Some("success"))
        .collect();
    if !failed.is_empty() {
        return Err(format!("jobs {failed:?} did not succeed"));
    }
    let requests = gitlab.requests();
    let first = requests
        .iter()
        .filter(|r| r.endpoint == Some(Endpoint::RequestJob))
        .map(|r| r.at)
        .min()
        .ok_or("no job request")?;
    let last = requests
        .iter()
        .filter(|r| is_final_update(r))
        .map(|r| r.at)
        .max()
        .ok_or("no final update")?;
    let mut jobs: Vec<Duration> = ids
        .iter()
        .filter_map(|id| {
            let path = format!("/api/v4/jobs/{id}");
            let mut updates = requests
                .iter()
                .filter(|r| r.endpoint == Some(Endpoint::UpdateJob) && r.path == path);
            let acked = updates.next()?.at;
            Some(updates.next_back()?.at - acked)
        })
        .collect();
    jobs.sort();
    Ok(JobsFigures {
        wall: last - first,
        job: jobs.get(jobs.len() / 2).copied().unwrap_or_default(),
        cpu_agent: cpu_agent / JOBS as u32,
        cpu_jobs: cpu_jobs / JOBS as u32,
    })
}

// --- live trace ---

/// The log the trace job prints and what GitLab must end up with.
struct TraceLog {
    _dir: TempDir,
    path: PathBuf,
    /// The log with the secret masked.
    masked: Vec<u8>,
}

fn write_trace_log() -> Result<TraceLog, String> {
    let dir = tempfile::Builder::new()
        .prefix("runner-agent-bench-log-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let path = dir.path().join("log.txt");
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut masked = Vec::with_capacity(LOG_LINES * LINE_BYTES);
    let filler = "the quick brown fox jumps over the lazy dog ".repeat(3);
    for i in 0..LOG_LINES {
        let mut line = if i % SECRET_EVERY == 0 {
            format!("line {i:08} password={SECRET} ")
        } else {
            format!("line {i:08} ")
        };
        line.push_str(&filler);
        line.truncate(LINE_BYTES - 1);
        line.push('\n');
        out.write_all(line.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        masked.extend_from_slice(line.replace(SECRET, "[MASKED]").as_bytes());
    }
    out.flush()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(TraceLog {
        _dir: dir,
        path,
        masked,
    })
}

struct TraceFigures {
    /// Trace bytes received while the job ran, over that time.
    live_bytes: u64,
    running: Duration,
    /// From the acknowledgement to the final update.
    total: Duration,
    trace_bytes: u64,
    patches: usize,
    /// The agent's peak resident memory (VmHWM).
    peak_rss_kib: u64,
}

impl TraceFigures {
    fn live_mib_s(&self) -> f64 {
        self.live_bytes as f64 / (1 << 20) as f64 / self.running.as_secs_f64()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn trace_round(
    bin: &Path,
    log: &TraceLog,
    printing: Printing,
) -> Result<TraceFigures, String> {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let marker = log.path.with_file_name("script-ended");
    let _ = std::fs::remove_file(&marker);
    let print = printing.command(&log.path);
    // The script's last command writes when it ran, in nanoseconds since
    // the epoch: the end of the job's running time.
    let mark = format!("date +%s%N > '{}'", marker.display());
    let mut job = shell_job_payload(1, "glcbt-tracebench", &[&print, &mark], &[]);
    add_variable(&mut job, "BENCH_SECRET", SECRET, true);
    let id = gitlab.push_job(job);
    let anchor = (Instant::now(), SystemTime::now());
    let agent = Agent::start(
        bin,
        &config(
            &gitlab,
            &token,
            1,
            &format!("  output_limit = {OUTPUT_LIMIT_KIB}\n"),
        ),
    )?;
    wait_all_final(&gitlab, &agent, &[id], Duration::from_secs(900)).await?;
    let peak_rss_kib = agent.memory_kib("VmHWM").unwrap_or(0);

    let ended_ns: u128 = std::fs::read_to_string(&marker)
        .map_err(|e| format!("{}: {e}", marker.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", marker.display()))?;
    let anchor_ns = anchor
        .1
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos();
    let script_ended = anchor.0 + Duration::from_nanos((ended_ns - anchor_ns) as u64);

    let requests = gitlab.requests();
    let job_path = format!("/api/v4/jobs/{id}");
    let acked = requests
        .iter()
        .find(|r| r.endpoint == Some(Endpoint::UpdateJob) && r.path == job_path)
        .map(|r| r.at)
        .ok_or("no acknowledgement")?;
    let final_at = requests
        .iter()
        .filter(|r| is_final_update(r))
        .map(|r| r.at)
        .max()
        .ok_or("no final update")?;
    let patches: Vec<&RecordedRequest> = requests
        .iter()
        .filter(|r| r.endpoint == Some(Endpoint::PatchTrace))
        .collect();
    let live_bytes = patches
        .iter()
        .filter(|r| r.at <= script_ended)
        .map(|r| r.body.len() as u64)
        .sum();

    let record = gitlab.job(id).ok_or("the job is gone")?;
    let update = record.final_update.as_ref().ok_or("no final update")?;
    if update["state"] != "success" {
        return Err(format!("the job ended {}", update["state"]));
    }
    if record.checksum_matched != Some(true) {
        return Err("the trace's checksum did not match".into());
    }
    if update["output"]["bytesize"].as_u64() != Some(record.trace.len() as u64) {
        return Err(format!(
            "the final update says {} bytes, GitLab has {}",
            update["output"]["bytesize"],
            record.trace.len()
        ));
    }
    let first_line = &log.masked[..LINE_BYTES];
    let start = find(&record.trace, first_line).ok_or("the log is not in the trace")?;
    if record.trace.get(start..start + log.masked.len()) != Some(&log.masked[..]) {
        return Err("the trace does not hold the whole log, masked".into());
    }
    if find(&record.trace, SECRET.as_bytes()).is_some() {
        return Err("the secret reached the trace".into());
    }
    Ok(TraceFigures {
        live_bytes,
        running: script_ended.saturating_duration_since(acked),
        total: final_at.saturating_duration_since(acked),
        trace_bytes: record.trace.len() as u64,
        patches: patches.len(),
        peak_rss_kib,
    })
}

// --- idle memory ---

/// VmRSS, and the part of it that is the agent's own memory (RssAnon);
/// the rest is pages of the binary and libraries it has touched.
async fn idle_round(bin: &Path) -> Result<(u64, u64), String> {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let agent = Agent::start(bin, &config(&gitlab, &token, 1, ""))?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let polls = gitlab.requests_to(Endpoint::RequestJob).len();
    if polls == 0 {
        return Err(format!("the agent never polled\n    {}", agent.log_tail()));
    }
    match (agent.memory_kib("VmRSS"), agent.memory_kib("RssAnon")) {
        (Some(rss), Some(anon)) => Ok((rss, anon)),
        _ => Err("no VmRSS: the agent has exited".to_string()),
    }
}

// --- report ---

/// The load averages, which say how busy the machine was while measuring.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The best and the median of `values` by `key` (best = smallest key).
fn best_and_median<T>(values: &mut [T], key: impl Fn(&T) -> f64) -> (&T, &T) {
    values.sort_by(|a, b| key(a).total_cmp(&key(b)));
    (&values[0], &values[values.len() / 2])
}

struct Report {
    rows: Vec<[String; 4]>,
    notes: Vec<String>,
}

impl Report {
    fn failed(&mut self, what: &str, goal: &str, error: String) {
        self.rows
            .push([what.into(), goal.into(), "failed".into(), "–".into()]);
        self.notes.push(format!("{what}: {error}"));
    }
}

async fn measure_jobs(bin: &Path, report: &mut Report) {
    let what = format!("jobs per second ({JOBS} trivial jobs, concurrent = 4)");
    let goal = "≥ 100/s";
    let mut rounds = Vec::new();
    for round in 1..=JOB_ROUNDS {
        eprintln!("jobs per second, round {round} of {JOB_ROUNDS} ...");
        match jobs_round(bin).await {
            Ok(figures) => rounds.push(figures),
            Err(e) => return report.failed(&what, goal, e),
        }
    }
    let (best, median) = best_and_median(&mut rounds, |f| f.wall.as_secs_f64());
    let rate = |f: &JobsFigures| JOBS as f64 / f.wall.as_secs_f64();
    report.rows.push([
        what,
        goal.into(),
        format!("{:.0}/s / {:.0}/s", rate(best), rate(median)),
        format!(
            "{} / {} for all {JOBS}; one job {} from its acknowledgement to its final update (median of the median round)",
            time(best.wall),
            time(median.wall),
            time(median.job)
        ),
    ]);
    // CPU time depends less on what else the machine does than wall time.
    let (least, typical) =
        best_and_median(&mut rounds, |f| (f.cpu_agent + f.cpu_jobs).as_secs_f64());
    let cpu = |f: &JobsFigures| {
        format!(
            "{} ({} agent + {} job processes)",
            time(f.cpu_agent + f.cpu_jobs),
            time(f.cpu_agent),
            time(f.cpu_jobs)
        )
    };
    report.rows.push([
        "jobs per second: CPU time per job".into(),
        "–".into(),
        format!("{} / {}", cpu(least), cpu(typical)),
        "utime + stime of the agent, and of the processes it reaped, over the jobs".into(),
    ]);
}

/// How the trace job prints its log.
#[derive(Clone, Copy)]
enum Printing {
    /// `cat`: as fast as the runner takes it.
    AtOnce,
    /// Ten parts of 10 MiB, half a second apart: about 20 MiB/s.
    Paced,
}

impl Printing {
    fn name(self) -> &'static str {
        match self {
            Printing::AtOnce => "live trace: 100 MiB printed at once (`cat`)",
            Printing::Paced => "live trace: 100 MiB printed in ten parts 0.5 s apart",
        }
    }

    fn goal(self) -> &'static str {
        match self {
            Printing::AtOnce => "≥ 10 MiB/s while running",
            Printing::Paced => "–",
        }
    }

    fn command(self, log: &Path) -> String {
        match self {
            Printing::AtOnce => format!("cat '{}'", log.display()),
            Printing::Paced => format!(
                "for i in 0 1 2 3 4 5 6 7 8 9; do dd if='{}' bs=1M skip=$((i * 10)) count=10 status=none; sleep 0.5; done",
                log.display()
            ),
        }
    }
}

async fn measure_trace(bin: &Path, log: &TraceLog, printing: Printing, report: &mut Report) {
    let (what, goal) = (printing.name(), printing.goal());
    let mut runs = Vec::new();
    for round in 1..=TRACE_ROUNDS {
        eprintln!("{what}, round {round} of {TRACE_ROUNDS} ...");
        match trace_round(bin, log, printing).await {
            Ok(figures) => runs.push(figures),
            Err(e) => return report.failed(what, goal, e),
        }
    }
    let peak = runs.iter().map(|f| f.peak_rss_kib).max().unwrap_or(0);
    let patches = runs.iter().map(|f| f.patches).max().unwrap_or(0);
    let (quickest, _) = best_and_median(&mut runs, |f| f.total.as_secs_f64());
    let quickest = quickest.total;
    // Best = the highest rate.
    let (best, median) = best_and_median(&mut runs, |f| -f.live_mib_s());
    report.rows.push([
        what.into(),
        goal.into(),
        format!(
            "{:.1} MiB/s / {:.1} MiB/s",
            best.live_mib_s(),
            median.live_mib_s()
        ),
        format!(
            "median run: {} of {} received while the job ran ({}), final update {} after the acknowledgement (quickest {}); agent peak RSS (VmHWM) {}, at most {patches} patches",
            mib(median.live_bytes / 1024),
            mib(median.trace_bytes / 1024),
            time(median.running),
            time(median.total),
            time(quickest),
            mib(peak)
        ),
    ]);
}

async fn measure_idle(bin: &Path, report: &mut Report) {
    let what = "idle RSS (one entry, empty queue, after 5 s)";
    let goal = "≤ 10 MiB";
    let mut rss = Vec::new();
    for round in 1..=IDLE_ROUNDS {
        eprintln!("idle memory, round {round} of {IDLE_ROUNDS} ...");
        match idle_round(bin).await {
            Ok(kib) => rss.push(kib),
            Err(e) => return report.failed(what, goal, e),
        }
    }
    let (best, median) = best_and_median(&mut rss, |(total, _)| *total as f64);
    report.rows.push([
        what.into(),
        goal.into(),
        format!("{} / {}", mib(best.0), mib(median.0)),
        format!(
            "VmRSS from /proc/<pid>/status; of it the agent's own memory (RssAnon) {} / {}, the rest pages of the binary and libraries",
            mib(best.1),
            mib(median.1)
        ),
    ]);
}

fn main() {
    let bin = runner_bin();
    let filter = std::env::var("RUNNER_BENCH_FILTER").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let load_before = load();
    let mut report = Report {
        rows: Vec::new(),
        notes: Vec::new(),
    };
    let wanted = |name: &str| name.contains(filter.as_str());
    runtime.block_on(async {
        if wanted("jobs") {
            measure_jobs(&bin, &mut report).await;
        }
        if wanted("trace") {
            eprintln!("writing the 100 MiB log ...");
            match write_trace_log() {
                Ok(log) => {
                    for printing in [Printing::AtOnce, Printing::Paced] {
                        measure_trace(&bin, &log, printing, &mut report).await;
                    }
                }
                Err(e) => report.failed("live trace", "–", e),
            }
        }
        if wanted("idle") {
            measure_idle(&bin, &mut report).await;
        }
    });

    println!();
    println!(
        "{} cores; load average {load_before} before, {} after",
        thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    println!("runner: {}", bin.display());
    println!(
        "rounds: jobs {JOB_ROUNDS}, trace {TRACE_ROUNDS}, idle {IDLE_ROUNDS}; the fake GitLab runs in this process, on loopback, and names no update interval (the runner's 3 s applies)"
    );
    println!();
    println!("| measurement | goal | best / median | detail |");
    println!("|---|---|---|---|");
    for [what, goal, figures, detail] in &report.rows {
        println!("| {what} | {goal} | {figures} | {detail} |");
    }
    if !report.notes.is_empty() {
        println!();
        for note in &report.notes {
            println!("{note}");
        }
    }
}
