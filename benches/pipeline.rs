//! How long `runner pipeline` and `runner exec` take on five fixture
//! projects, and how much memory they use, next to gitlab-ci-local running
//! the same pipelines with its shell executor. Prints figures; asserts
//! nothing about them.
//!
//! Run with `cargo bench --bench pipeline`. It runs `scripts/bench-setup`
//! first, which installs gitlab-ci-local when npm is present; without it the
//! runner is measured alone.
//!
//! Environment:
//! - `RUNNER_BIN`: the runner binary to measure (default: the release
//!   binary cargo built for this bench).
//! - `RUNNER_BENCH_ONLY=runner` or `RUNNER_BENCH_ONLY=gitlab-ci-local`:
//!   measure one side only.
//! - `RUNNER_BENCH_FILTER=TEXT`: only the scenarios whose name holds TEXT
//!   (e.g. `docker`).

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The flags gitlab-ci-local runs with. `--quiet` is its quietest mode (job
/// output goes only to its log files). `--shell-isolation` gives each job a
/// directory of its own and hands artifacts to later stages, as GitLab does;
/// without it every shell job shares the project directory, so artifacts
/// would need no handling at all. `--no-artifacts-to-source` stops it from
/// also copying artifacts back into the project, which GitLab never does.
const GCL_FLAGS: &[&str] = &["--quiet", "--shell-isolation", "--no-artifacts-to-source"];

/// The image of the Docker scenario, built locally by `scripts/docker-setup`.
const DOCKER_IMAGE: &str = "local/busybox:runner-test";

/// 100 MiB of incompressible data in 2000 files of about 51 KiB: one read of
/// the random device, then `split` into equal parts.
const GENERATE: &[&str] = &[
    "head -c 104857600 /dev/urandom > blob",
    "mkdir out",
    "split -d -a 4 -n 2000 blob out/f",
    "rm blob",
];
const CHECK: &[&str] = &["test \"$(ls out | wc -l)\" -eq 2000"];
/// 50 MiB of log: 524,288 lines of 100 `a`s (plus their newlines).
const PRINT: &[&str] = &["head -c 52428800 /dev/zero | tr '\\0' a | fold -w 100"];

/// One fixture project and how to measure it.
struct Scenario {
    name: &'static str,
    yaml: String,
    /// `None`: the whole pipeline; `Some(job)`: that job alone (`runner exec`).
    job: Option<&'static str>,
    /// More arguments for the runner.
    runner_flags: &'static [&'static str],
    runner_runs: usize,
    gcl_runs: usize,
    goal: &'static str,
    /// The jobs' scripts, run by bash directly in one directory, so that
    /// what the runner adds to them shows.
    alone: Option<Vec<&'static str>>,
    /// Whether the jobs run in Docker (the scenario needs the daemon and
    /// the local test image; `scripts/docker-setup` provides both).
    docker: bool,
}

fn scenarios() -> Vec<Scenario> {
    let trivial = "hi:\n  script: [echo hi]\n".to_string();
    let mut ten = String::from("stages: [build, test, deploy]\n");
    let stages = ["build", "build", "build", "test", "test", "test", "test"];
    for (i, stage) in stages.iter().chain(&["deploy"; 3]).enumerate() {
        let n = i + 1;
        ten.push_str(&format!("job{n}:\n  stage: {stage}\n  script: [echo hi]\n"));
    }
    let artifacts = format!(
        "stages: [build, test]\ngenerate:\n  stage: build\n  script:\n{}  artifacts:\n    paths: [out/]\n\
         check:\n  stage: test\n  script:\n{}",
        script_lines(GENERATE),
        script_lines(CHECK)
    );
    let log = format!("print:\n  script:\n{}", script_lines(PRINT));
    vec![
        Scenario {
            name: "1. one trivial job (pipeline)",
            yaml: trivial.clone(),
            job: None,
            runner_flags: &[],
            runner_runs: 20,
            gcl_runs: 5,
            goal: "≤ 30 ms, ≤ 15 MiB",
            alone: None,
            docker: false,
        },
        Scenario {
            name: "1. one trivial job (exec)",
            yaml: trivial,
            job: Some("hi"),
            runner_flags: &[],
            runner_runs: 20,
            gcl_runs: 5,
            goal: "≤ 30 ms, ≤ 15 MiB",
            alone: None,
            docker: false,
        },
        Scenario {
            name: "2. ten trivial jobs, 3 stages",
            yaml: ten,
            job: None,
            runner_flags: &[],
            runner_runs: 20,
            gcl_runs: 5,
            goal: "≤ 60 ms",
            alone: None,
            docker: false,
        },
        Scenario {
            name: "3. 100 MiB artifacts, 2000 files",
            yaml: artifacts,
            job: None,
            runner_flags: &[],
            runner_runs: 5,
            gcl_runs: 3,
            goal: "≤ 1.5 s",
            alone: Some(GENERATE.iter().chain(CHECK).copied().collect()),
            docker: false,
        },
        Scenario {
            name: "4. 50 MiB of job log",
            yaml: log.clone(),
            job: None,
            runner_flags: &[],
            runner_runs: 5,
            gcl_runs: 3,
            goal: "≤ 0.5 s, flat memory",
            alone: Some(PRINT.to_vec()),
            docker: false,
        },
        // gitlab-ci-local shows no job output with --quiet; the runner's own
        // --quiet shows what printing the log costs it.
        Scenario {
            name: "4. 50 MiB of job log, runner --quiet",
            yaml: log,
            job: None,
            runner_flags: &["--quiet"],
            runner_runs: 5,
            gcl_runs: 0,
            goal: "≤ 0.5 s, flat memory",
            alone: None,
            docker: false,
        },
        // The same trivial job in a container of the local busybox image:
        // what the Docker executor adds to a container's lifecycle (the
        // `docker_lifecycle` example of the executors crate measures the
        // bare lifecycle through the API for the ratio).
        Scenario {
            name: "5. one trivial job in local/busybox (exec, docker)",
            yaml: format!("hi:\n  image: {DOCKER_IMAGE}\n  script: [echo hi]\n"),
            job: Some("hi"),
            runner_flags: &[],
            runner_runs: 10,
            gcl_runs: 3,
            goal: "≤ 1.3× the bare container lifecycle",
            alone: None,
            docker: true,
        },
    ]
}

/// Lines of a YAML block sequence, as items of a job's `script`. Each
/// command is single-quoted for YAML, so `$`, `"` and `:` stay as they are.
fn script_lines(commands: &[&str]) -> String {
    commands
        .iter()
        .map(|c| format!("    - '{}'\n", c.replace('\'', "''")))
        .collect()
}

/// A git repository holding `yaml` as its `.gitlab-ci.yml`, committed.
fn fixture(yaml: &str) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("runner-bench-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(dir.path().join(".gitlab-ci.yml"), yaml).expect("write .gitlab-ci.yml");
    std::fs::write(dir.path().join("README"), "bench fixture\n").expect("write README");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "-m",
            "fixture",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?} failed in the fixture");
    }
    dir
}

/// What one process did.
struct Run {
    wall: Duration,
    /// `ru_maxrss` from `wait4`: the largest resident set of the process and
    /// of every descendant it waited for, in KiB.
    peak_rss_kib: u64,
    status: ExitStatus,
    output_bytes: u64,
    /// The end of stdout and stderr, to explain a failure.
    tail: String,
}

/// Reads a pipe to its end, counting bytes and keeping the last few KiB.
fn drain(mut pipe: impl Read) -> (u64, Vec<u8>) {
    const KEEP: usize = 4096;
    let mut buf = vec![0u8; 1 << 16];
    let (mut total, mut tail) = (0u64, Vec::new());
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * KEEP {
                    tail.drain(..tail.len() - KEEP);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let cut = tail.len().saturating_sub(KEEP);
    (total, tail.split_off(cut))
}

/// Waits for `pid` with `wait4`, which also returns its resource usage: the
/// only way to read a child's peak memory once it has exited.
fn wait4(pid: u32) -> io::Result<(ExitStatus, libc::rusage)> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    let mut status = 0;
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live locals of the right types.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Runs `cmd` to its end with its output drained through pipes, as a
/// terminal would read it.
fn run(mut cmd: Command) -> io::Result<Run> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().map(|p| thread::spawn(move || drain(p)));
    let err = child.stderr.take().map(|p| thread::spawn(move || drain(p)));
    // The child is reaped here, not by `Child::wait`, which would discard
    // the resource usage.
    let (status, usage) = wait4(child.id())?;
    let wall = start.elapsed();
    let mut output_bytes = 0;
    let mut tail = String::new();
    for reader in [out, err].into_iter().flatten() {
        let (n, bytes) = reader.join().unwrap_or_default();
        output_bytes += n;
        tail.push_str(&String::from_utf8_lossy(&bytes));
    }
    Ok(Run {
        wall,
        peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        status,
        output_bytes,
        tail,
    })
}

/// The figures of `n` runs, after one run that is not counted (it warms the
/// page cache and whatever state the tool keeps in the project).
struct Figures {
    min: Duration,
    median: Duration,
    peak_rss_kib: u64,
    output_bytes: u64,
}

/// Measures `n` runs of the command `make` builds; the value it returns
/// beside the command (a temp dir) lives until that run has ended. A failed
/// run ends the measurement with its exit status and the end of its output.
fn measure<G>(n: usize, mut make: impl FnMut() -> (Command, G)) -> Result<Figures, String> {
    let mut walls = Vec::with_capacity(n);
    let (mut peak_rss_kib, mut output_bytes) = (0, 0);
    for i in 0..=n {
        let (cmd, guard) = make();
        let program = cmd.get_program().to_string_lossy().into_owned();
        let r = run(cmd).map_err(|e| format!("{program} did not start: {e}"))?;
        drop(guard);
        if !r.status.success() {
            let tail: Vec<&str> = r.tail.lines().rev().take(12).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!("{}\n    {}", r.status, tail.join("\n    ")));
        }
        if i > 0 {
            walls.push(r.wall);
            peak_rss_kib = peak_rss_kib.max(r.peak_rss_kib);
            output_bytes = r.output_bytes;
        }
    }
    walls.sort();
    Ok(Figures {
        min: walls[0],
        median: walls[n / 2],
        peak_rss_kib,
        output_bytes,
    })
}

/// gitlab-ci-local, as `scripts/bench-setup` installed it.
struct Gcl {
    launcher: PathBuf,
    /// PATH with Node 22 first, which the launcher's `env node` needs.
    path: OsString,
    version: String,
}

/// Runs `scripts/bench-setup`; `Err` says why gitlab-ci-local is missing.
fn setup_gcl() -> Result<Gcl, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-setup");
    eprintln!("running {} ...", script.display());
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{} did not run: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed ({})", script.display(), out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(PathBuf::from)
            .ok_or_else(|| format!("{} printed no {key}=", script.display()))
    };
    let (node_bin, launcher) = (field("node-bin")?, field("gitlab-ci-local")?);
    let mut dirs = vec![node_bin.clone()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(dirs).map_err(|e| e.to_string())?;
    let version = |program: &Path| {
        Command::new(program)
            .arg("--version")
            .env("PATH", &path)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let version = format!(
        "gitlab-ci-local {} on Node.js {}",
        version(&launcher),
        version(&node_bin.join("node"))
    );
    Ok(Gcl {
        launcher,
        path,
        version,
    })
}

fn runner_bin() -> PathBuf {
    std::env::var_os("RUNNER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runner")))
}

fn measure_runner(s: &Scenario, bin: &Path) -> Result<Figures, String> {
    let project = fixture(&s.yaml);
    // The runner keeps builds, artifacts and logs of local runs in its state
    // directory; one of its own per scenario keeps them off the user's cache
    // and removes them afterwards.
    let state = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    measure(s.runner_runs, || {
        let mut cmd = Command::new(bin);
        match s.job {
            Some(job) => cmd.args(["exec", job]),
            None => cmd.arg("pipeline"),
        };
        cmd.args(s.runner_flags)
            .arg("--project-dir")
            .arg(project.path())
            .env("RUNNER_STATE_DIR", state.path());
        (cmd, ())
    })
}

fn measure_gcl(s: &Scenario, gcl: &Gcl) -> Result<Figures, String> {
    let project = fixture(&s.yaml);
    measure(s.gcl_runs, || {
        let mut cmd = Command::new(&gcl.launcher);
        // gitlab-ci-local takes only a relative --cwd; it runs where it starts.
        cmd.args(GCL_FLAGS)
            .args(s.job)
            .current_dir(project.path())
            .env("PATH", &gcl.path);
        (cmd, ())
    })
}

fn measure_alone(s: &Scenario, commands: &[&str]) -> Result<Figures, String> {
    let script = commands.join("\n");
    measure(s.runner_runs, || {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new("bash");
        // How GitLab's runner runs a script: stop at the first failure,
        // including inside a pipe.
        cmd.args(["-eo", "pipefail", "-c", &script])
            .current_dir(dir.path());
        (cmd, dir)
    })
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

fn times(f: &Figures) -> String {
    format!("{} / {}", time(f.min), time(f.median))
}

/// A measurement's cells: time, memory; or why there is none.
fn cells(r: Option<&Result<Figures, String>>) -> (String, String) {
    match r {
        Some(Ok(f)) => (times(f), mib(f.peak_rss_kib)),
        Some(Err(_)) => ("failed".into(), "–".into()),
        None => ("–".into(), "–".into()),
    }
}

struct Row<'a> {
    scenario: &'a Scenario,
    runner: Option<Result<Figures, String>>,
    gcl: Option<Result<Figures, String>>,
    alone: Option<Result<Figures, String>>,
}

/// The load averages, which say how busy the machine was while measuring.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn print_report(rows: &[Row], runner: Option<&Path>, gcl: &Result<Gcl, String>, load_before: &str) {
    println!();
    println!(
        "{} cores; load average {load_before} before, {} after",
        thread::available_parallelism().map_or(0, |n| n.get()),
        load()
    );
    match runner {
        Some(bin) => println!("runner: {}", bin.display()),
        None => println!("runner: not measured (RUNNER_BENCH_ONLY)"),
    }
    match gcl {
        Ok(g) => println!("gitlab-ci-local: {} ({})", g.version, GCL_FLAGS.join(" ")),
        Err(why) => println!("gitlab-ci-local: not measured: {why}"),
    }
    let runs = |f: fn(&Scenario) -> usize| {
        let n: Vec<String> = rows.iter().map(|r| f(r.scenario).to_string()).collect();
        n.join("/")
    };
    println!(
        "times: min / median wall time, each scenario run once uncounted, then counted \
         runner {} times, gitlab-ci-local {} times",
        runs(|s| s.runner_runs),
        runs(|s| s.gcl_runs),
    );
    println!(
        "peak RSS is wait4's ru_maxrss: the largest of the process and the job processes it waited for"
    );
    println!();
    println!(
        "| scenario | runner min / median | runner peak RSS | gitlab-ci-local min / median | gitlab-ci-local peak RSS | gitlab-ci-local ÷ runner (median) | goal |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let (rt, rm) = cells(row.runner.as_ref());
        let (gt, gm) = cells(row.gcl.as_ref());
        let ratio = match (&row.runner, &row.gcl) {
            (Some(Ok(r)), Some(Ok(g))) => {
                format!("{:.1}×", g.median.as_secs_f64() / r.median.as_secs_f64())
            }
            _ => "–".into(),
        };
        println!(
            "| {} | {rt} | {rm} | {gt} | {gm} | {ratio} | {} |",
            row.scenario.name, row.scenario.goal
        );
    }

    println!();
    println!("the job scripts alone, run by `bash -eo pipefail -c` in a fresh directory:");
    println!();
    println!("| scenario | script alone min / median | peak RSS | runner median − script median |");
    println!("|---|---|---|---|");
    for row in rows {
        let Some(alone) = &row.alone else { continue };
        let (at, am) = cells(Some(alone));
        let overhead = match (&row.runner, alone) {
            (Some(Ok(r)), Ok(a)) => time(r.median.saturating_sub(a.median)),
            _ => "–".into(),
        };
        println!("| {} | {at} | {am} | {overhead} |", row.scenario.name);
    }

    println!();
    for row in rows {
        for (who, r) in [
            ("runner", &row.runner),
            ("gitlab-ci-local", &row.gcl),
            ("script alone", &row.alone),
        ] {
            match r {
                Some(Ok(f)) if f.output_bytes > 1 << 20 => println!(
                    "{}: {who} wrote {} to stdout and stderr",
                    row.scenario.name,
                    mib(f.output_bytes / 1024)
                ),
                Some(Err(e)) => println!("{}: {who} failed: {e}", row.scenario.name),
                _ => {}
            }
        }
    }
}

/// Runs `scripts/docker-setup` (starts the daemon, imports the image).
fn docker_ready() -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/docker-setup");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn main() {
    let only = std::env::var("RUNNER_BENCH_ONLY").unwrap_or_default();
    let (with_runner, with_gcl) = match only.as_str() {
        "runner" => (true, false),
        "gitlab-ci-local" => (false, true),
        _ => (true, true),
    };
    let runner = runner_bin();
    let gcl = if with_gcl {
        setup_gcl()
    } else {
        Err("RUNNER_BENCH_ONLY=runner".into())
    };
    if let Err(why) = &gcl {
        eprintln!("gitlab-ci-local is not measured: {why}");
    }

    let load_before = load();
    let docker = docker_ready();
    if let Err(why) = &docker {
        eprintln!("the Docker scenario is not measured: {why}");
    }
    let filter = std::env::var("RUNNER_BENCH_FILTER").unwrap_or_default();
    let all: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| s.name.contains(&filter))
        .filter(|s| !s.docker || docker.is_ok())
        .collect();
    let mut rows = Vec::new();
    for s in &all {
        eprintln!("measuring {} ...", s.name);
        let runner_figures = with_runner.then(|| measure_runner(s, &runner));
        let gcl_figures = (gcl.as_ref().ok())
            .filter(|_| s.gcl_runs > 0)
            .map(|g| measure_gcl(s, g));
        let alone = s.alone.as_ref().map(|c| measure_alone(s, c));
        rows.push(Row {
            scenario: s,
            runner: runner_figures,
            gcl: gcl_figures,
            alone,
        });
    }
    print_report(
        &rows,
        with_runner.then_some(runner.as_path()),
        &gcl,
        &load_before,
    );
}
