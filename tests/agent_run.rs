//! `runner run` against the fake GitLab: the real binary as a daemon, real
//! jobs in the shell executor, real signals.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::TempRepo;
use crate::support::fake_gitlab::{Endpoint, FakeGitLab, Fault, add_variable, shell_job_payload};

/// Ids (and tokens) unique in this test binary.
static NEXT_JOB: AtomicU64 = AtomicU64::new(5000);

/// The fixture job, made to run on a shell executor without git.
fn shell_job(script: &[&str], after_script: &[&str]) -> Value {
    let id = NEXT_JOB.fetch_add(1, Ordering::SeqCst);
    shell_job_payload(id, &format!("glcbt-agentjob{id}"), script, after_script)
}

/// A `runner run` process and its files.
struct Agent {
    child: Child,
    dir: tempfile::TempDir,
}

impl Agent {
    /// Starts the agent with `config` (the whole file) in a fresh dir.
    fn start(config: &str) -> Agent {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("config.toml"), config).expect("config");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_runner"))
            .arg("run")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .arg("--working-directory")
            .arg(dir.path().join("work"))
            .env("RUNNER_CONFIG", "/nonexistent")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("runner starts");
        Agent { child, dir }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn log(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(self.dir.path().join("agent.log"))
            .and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit; its status code.
    async fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(gitlab: &FakeGitLab, token: &str, concurrent: u32, extra: &str) -> String {
    format!(
        "concurrent = {concurrent}\ncheck_interval = 1\n\n[[runners]]\n  name = \"test\"\n  url = \"{}\"\n  token = \"{token}\"\n  executor = \"shell\"\n{extra}",
        gitlab.url()
    )
}

/// Polls `check` every 50 ms until it holds or `within` passes.
async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn is_final(gitlab: &FakeGitLab, id: u64) -> bool {
    gitlab.job(id).is_some_and(|j| j.final_update.is_some())
}

async fn wait_final(gitlab: &FakeGitLab, agent: &Agent, id: u64, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(update) = gitlab.job(id).and_then(|j| j.final_update) {
            return update;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} never finished; agent log:\n{}", agent.log());
}

fn trace_text(gitlab: &FakeGitLab, id: u64) -> String {
    String::from_utf8_lossy(&gitlab.trace(id)).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_succeed_or_fail_with_their_exit_code_and_a_matching_checksum() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let ok = gitlab.push_job(shell_job(&["echo hello from the agent"], &[]));
    let failing = gitlab.push_job(shell_job(&["echo about to fail", "exit 3"], &[]));
    let agent = Agent::start(&config(&gitlab, &token, 2, ""));

    let update = wait_final(&gitlab, &agent, ok, Duration::from_secs(30)).await;
    assert_eq!(update["state"], "success");
    let trace = trace_text(&gitlab, ok);
    assert!(trace.contains("hello from the agent"), "{trace}");
    assert!(trace.contains("Job succeeded"), "{trace}");
    assert!(trace.contains("  on test "), "{trace}");
    assert_eq!(gitlab.job(ok).unwrap().checksum_matched, Some(true));

    let update = wait_final(&gitlab, &agent, failing, Duration::from_secs(30)).await;
    assert_eq!(update["state"], "failed");
    assert_eq!(update["failure_reason"], "script_failure");
    assert_eq!(update["exit_code"], 3);
    assert_eq!(gitlab.job(failing).unwrap().status, "failed");
    assert_eq!(gitlab.job(failing).unwrap().checksum_matched, Some(true));
    // The acknowledgement came first: state running, before any trace.
    let updates = gitlab.job(ok).unwrap().updates;
    assert_eq!(updates[0]["state"], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masked_secret_never_reaches_the_trace() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let mut job = shell_job(
        &[
            "printf 'secret: %s' \"$DEPLOY_KEY\"",
            // Written in two pieces: masking must work across writes.
            "printf 'again: hunter2-'; sleep 0.2; printf 'correct-horse\\n'",
        ],
        &[],
    );
    add_variable(&mut job, "DEPLOY_KEY", "hunter2-correct-horse", true);
    let id = gitlab.push_job(job);
    let agent = Agent::start(&config(&gitlab, &token, 1, ""));
    wait_final(&gitlab, &agent, id, Duration::from_secs(30)).await;
    let trace = trace_text(&gitlab, id);
    assert!(!trace.contains("hunter2-correct-horse"), "{trace}");
    assert!(trace.contains("secret: [MASKED]"), "{trace}");
    assert!(trace.contains("again: [MASKED]"), "{trace}");
    assert!(!agent.log().contains("hunter2"), "{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_uploaded_as_a_zip_that_unpacks_and_dependencies_are_downloaded() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    // A finished job of the pipeline with an archive of its own.
    let dep_archive = zip_with(&[("dep/from-build.txt", "built earlier\n")]);
    gitlab.add_finished_job(900, "glcbt-dependencytoken", &dep_archive);
    let mut job = shell_job(
        &[
            "cat dep/from-build.txt",
            "mkdir -p out",
            "echo artifact body > out/result.txt",
        ],
        &[],
    );
    job["dependencies"] = json!([{
        "id": 900, "name": "build", "token": "glcbt-dependencytoken",
        "artifacts_file": { "filename": "artifacts.zip", "size": dep_archive.len() }
    }]);
    job["artifacts"] = json!([{
        "name": "result", "untracked": false, "paths": ["out/"], "when": "on_success",
        "expire_in": "1 week", "artifact_type": "archive", "artifact_format": "zip",
    }]);
    let id = gitlab.push_job(job);
    let agent = Agent::start(&config(&gitlab, &token, 1, ""));
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(30)).await;
    let trace = trace_text(&gitlab, id);
    assert_eq!(update["state"], "success", "{trace}");
    assert!(trace.contains("built earlier"), "{trace}");

    let stored = gitlab.artifacts(id);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].file_name, "result.zip");
    assert_eq!(stored[0].expire_in.as_deref(), Some("1 week"));
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(stored[0].content.clone())).expect("a zip");
    let mut body = String::new();
    archive
        .by_name("out/result.txt")
        .expect("entry")
        .read_to_string(&mut body)
        .expect("read");
    assert_eq!(body, "artifact body\n");
    // The dependency was fetched with its own token.
    let downloads = gitlab.requests_to(Endpoint::DownloadArtifacts);
    assert_eq!(
        downloads[0].header("JOB-TOKEN"),
        Some("glcbt-dependencytoken")
    );
}

fn zip_with(files: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, text) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("entry");
            zip.write_all(text.as_bytes()).expect("write");
        }
        zip.finish().expect("finish");
    }
    out.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_come_from_the_jobs_repository_with_git() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let repo = TempRepo::new();
    repo.write("hello.txt", "from the repository\n")
        .commit_all("first");
    let sha = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let mut job = shell_job(&["cat hello.txt", "git log --format=%s -1"], &[]);
    if let Some(vars) = job["variables"].as_array_mut() {
        vars.retain(|v| v["key"] != "GIT_STRATEGY");
    }
    add_variable(&mut job, "GIT_STRATEGY", "fetch", false);
    job["git_info"]["repo_url"] = format!("file://{}", repo.path().display()).into();
    job["git_info"]["sha"] = sha.into();
    job["git_info"]["ref"] = "main".into();
    job["git_info"]["refspecs"] = json!(["+refs/heads/*:refs/remotes/origin/*"]);
    job["git_info"]["depth"] = 0.into();
    let id = gitlab.push_job(job);
    let agent = Agent::start(&config(&gitlab, &token, 1, ""));
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(30)).await;
    let trace = trace_text(&gitlab, id);
    assert_eq!(update["state"], "success", "{trace}");
    assert!(trace.contains("from the repository"), "{trace}");
    assert!(trace.contains("\nfirst"), "{trace}");
    // The checkout sits in the shared layout: <builds>/<short token>/<project id>/<path>.
    let checkout = agent
        .dir
        .path()
        .join("work/builds")
        .join(runner::gitlab::short_token(&token))
        .join("0");
    assert!(checkout.is_dir(), "{} missing", checkout.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_its_timeout_fails_with_job_execution_timeout() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let mut job = shell_job(&["echo started", "sleep 60"], &["echo after"]);
    job["runner_info"]["timeout"] = 2.into();
    let id = gitlab.push_job(job);
    let agent = Agent::start(&config(&gitlab, &token, 1, ""));
    let started = Instant::now();
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(40)).await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(update["state"], "failed");
    assert_eq!(update["failure_reason"], "job_execution_timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_stops_the_script_and_runs_after_script_but_canceled_aborts_everything() {
    let gitlab = FakeGitLab::start().await;
    gitlab.set_trace_update_interval(Some(1));
    let token = gitlab.create_runner();
    // GitLab's cancellation arrives in the answers to trace patches: the
    // jobs keep printing so that patches keep going (a silent job hears
    // of it at its next keep-alive, 30 s later, as with gitlab-runner).
    let ticking = "for i in $(seq 1 120); do echo tick; sleep 0.5; done";
    let graceful = gitlab.push_job(shell_job(
        &["echo started", ticking, "echo never printed"],
        &["echo after_script ran with $CI_JOB_STATUS"],
    ));
    let abort = gitlab.push_job(shell_job(
        &["echo started", ticking],
        &["echo after_script must not run"],
    ));
    let agent = Agent::start(&config(&gitlab, &token, 2, ""));
    eventually(Duration::from_secs(30), "both jobs to start", || {
        trace_text(&gitlab, graceful).contains("started")
            && trace_text(&gitlab, abort).contains("started")
    })
    .await;
    let asked = Instant::now();
    gitlab.set_job_status(graceful, "canceling");
    gitlab.set_job_status(abort, "canceled");

    wait_final(&gitlab, &agent, graceful, Duration::from_secs(30)).await;
    let trace = trace_text(&gitlab, graceful);
    assert!(trace.contains("after_script ran with canceled"), "{trace}");
    assert!(!trace.contains("never printed"), "{trace}");
    assert_eq!(gitlab.job(graceful).unwrap().status, "canceled");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );

    // An aborted job's final update is refused (the job is over for
    // GitLab); what matters is that nothing more ran.
    eventually(Duration::from_secs(30), "the aborted job to stop", || {
        agent.log().contains(&format!("job={abort} state=failed"))
    })
    .await;
    assert!(!trace_text(&gitlab, abort).contains("after_script must not run"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_mismatches_and_server_errors_lose_no_byte_of_the_trace() {
    let gitlab = FakeGitLab::start().await;
    gitlab.set_trace_update_interval(Some(1));
    let token = gitlab.create_runner();
    let id = gitlab.push_job(shell_job(
        &["for i in $(seq 1 40); do echo line-$i; sleep 0.1; done"],
        &[],
    ));
    let agent = Agent::start(&config(&gitlab, &token, 1, ""));
    eventually(Duration::from_secs(30), "the first lines", || {
        trace_text(&gitlab, id).contains("line-5")
    })
    .await;
    // GitLab loses the end of what it had (416 on the next patch), then
    // fails a few requests.
    gitlab.truncate_trace(id, 10);
    gitlab.fail_next(Endpoint::PatchTrace, 2, Fault::status(502));
    gitlab.fail_next(Endpoint::UpdateJob, 1, Fault::status(503));
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(60)).await;
    assert_eq!(update["state"], "success");
    let trace = trace_text(&gitlab, id);
    for i in 1..=40 {
        assert!(
            trace.contains(&format!("line-{i}\n")),
            "line-{i} lost:\n{trace}"
        );
    }
    let record = gitlab.job(id).unwrap();
    assert_eq!(record.checksum_matched, Some(true));
    assert_eq!(
        update["output"]["bytesize"].as_u64(),
        Some(record.trace.len() as u64)
    );
    let patches = gitlab.requests_to(Endpoint::PatchTrace);
    assert!(
        patches.iter().any(|p| p.path.contains(&id.to_string())),
        "no patches recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_lets_the_running_job_finish_and_report_then_exits() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    gitlab.set_trace_update_interval(Some(1));
    let id = gitlab.push_job(shell_job(
        &["echo started", "sleep 4", "echo finished"],
        &[],
    ));
    let waiting = gitlab.push_job(shell_job(&["echo must wait for the next agent"], &[]));
    let mut agent = Agent::start(&config(&gitlab, &token, 1, ""));
    eventually(Duration::from_secs(30), "the job to start", || {
        trace_text(&gitlab, id).contains("started")
    })
    .await;
    agent.signal(libc::SIGQUIT);
    assert!(!is_final(&gitlab, id), "the job ended before the signal");
    let code = agent.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{}", agent.log());
    let record = gitlab.job(id).unwrap();
    assert_eq!(record.status, "success");
    assert!(trace_text(&gitlab, id).contains("finished"));
    // No new job was taken after the signal.
    assert_eq!(
        gitlab.job_status(waiting).as_deref(),
        Some("pending"),
        "{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_aborts_running_jobs_as_runner_interrupted() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let id = gitlab.push_job(shell_job(
        &["echo started", "sleep 60"],
        &["echo no after_script"],
    ));
    let mut agent = Agent::start(&config(&gitlab, &token, 1, "  \n"));
    eventually(Duration::from_secs(30), "the job to start", || {
        trace_text(&gitlab, id).contains("started")
    })
    .await;
    let stopped = Instant::now();
    agent.signal(libc::SIGTERM);
    let code = agent.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{}", agent.log());
    assert!(stopped.elapsed() < Duration::from_secs(20));
    let update = gitlab.job(id).unwrap().final_update.expect("reported");
    assert_eq!(update["state"], "failed");
    assert_eq!(update["failure_reason"], "runner_interrupted");
    assert!(!trace_text(&gitlab, id).contains("no after_script\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_configuration() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let id = gitlab.push_job(shell_job(&["echo picked up after reload"], &[]));
    // No runner at first: nothing may be taken.
    let agent = Agent::start("concurrent = 1\ncheck_interval = 1\n");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(gitlab.job_status(id).as_deref(), Some("pending"));
    // A rename keeps the file whole for the reader; the watcher would see
    // it too, the signal makes it immediate.
    let staged = agent.dir.path().join("staged.toml");
    std::fs::write(&staged, config(&gitlab, &token, 1, "")).unwrap();
    std::fs::rename(&staged, agent.config_path()).unwrap();
    agent.signal(libc::SIGHUP);
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(30)).await;
    assert_eq!(update["state"], "success");
    assert!(
        agent.log().contains("Configuration loaded"),
        "{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bounds_the_running_jobs_of_twenty_queued() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let ids: Vec<u64> = (0..20)
        .map(|_| gitlab.push_job(shell_job(&["sleep 0.5"], &[])))
        .collect();
    let agent = Agent::start(&config(&gitlab, &token, 4, ""));
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ids.iter().all(|id| is_final(&gitlab, *id)) {
        assert!(Instant::now() < deadline, "not done: {}", agent.log());
        let running = ids
            .iter()
            .filter(|id| gitlab.job_status(**id).as_deref() == Some("running"))
            .count();
        most = most.max(running);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(most <= 4, "{most} jobs ran at once");
    assert!(most >= 3, "only {most} at once: concurrency is not used");
    for id in ids {
        assert_eq!(gitlab.job_status(id).as_deref(), Some("success"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_are_served_on_the_listen_address() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let id = gitlab.push_job(shell_job(&["true"], &[]));
    let port = free_port();
    let text = format!(
        "listen_address = \"127.0.0.1:{port}\"\n{}",
        config(&gitlab, &token, 1, "")
    );
    let agent = Agent::start(&text);
    wait_final(&gitlab, &agent, id, Duration::from_secs(30)).await;
    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gitlab_runner_concurrent 1"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gitlab_runner_jobs_total{") && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(metrics.contains("process_resident_memory_bytes"));
    // Every API call is counted by endpoint, method and status.
    for series in [
        "endpoint=\"request_job\",method=\"POST\",status=\"201\"",
        "endpoint=\"update_job\",method=\"PUT\",status=\"200\"",
    ] {
        assert!(
            metrics.lines().any(
                |l| l.starts_with("gitlab_runner_api_request_statuses_total{")
                    && l.contains(series)
            ),
            "{series} missing:\n{metrics}"
        );
    }
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_token_is_rested_not_hammered() {
    let gitlab = FakeGitLab::start().await;
    let agent = Agent::start(&config(
        &gitlab,
        "glrt-not-a-known-token",
        1,
        "  unhealthy_requests_limit = 2\n",
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let polls = gitlab.requests_to(Endpoint::RequestJob).len();
    // Two 403s, then the entry rests for the unhealthy interval (1 h).
    assert_eq!(polls, 2, "{}", agent.log());
    assert!(agent.log().contains("not healthy"), "{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_entry_runs_the_job_in_its_image_at_gitlabs_project_path() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let mut job = shell_job(
        &[
            "echo \"dir=$CI_PROJECT_DIR disposable=$CI_DISPOSABLE_ENVIRONMENT\"",
            "cat /etc/hostname >/dev/null",
            "mkdir -p out && echo from-container > out/x.txt",
        ],
        &[],
    );
    job["image"] = json!({ "name": "local/busybox:runner-test" });
    job["artifacts"] = json!([{
        "name": "x", "untracked": false, "paths": ["out/"], "when": "on_success",
        "artifact_type": "archive", "artifact_format": "zip",
    }]);
    let id = gitlab.push_job(job);
    let text = format!(
        "concurrent = 1\ncheck_interval = 1\n\n[[runners]]\n  name = \"docker\"\n  url = \"{}\"\n  token = \"{token}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"local/busybox:runner-test\"\n    pull_policy = \"if-not-present\"\n",
        gitlab.url()
    );
    let agent = Agent::start(&text);
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(60)).await;
    let trace = trace_text(&gitlab, id);
    assert_eq!(update["state"], "success", "{trace}");
    // `-empty`: GIT_STRATEGY empty never reuses a checkout directory.
    assert!(
        trace.contains("dir=/builds/acme/backend/webshop-empty disposable=true"),
        "{trace}"
    );
    assert!(
        !trace.contains("\\e[32;1m"),
        "escape codes printed raw: {trace}"
    );
    assert!(trace.contains("Using Docker executor with image local/busybox:runner-test"));
    assert_eq!(gitlab.artifacts(id).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_near_its_expiry_is_rotated_into_the_file_and_used() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let extra = "  # the token's times, as register wrote them\n  token_obtained_at = 2026-01-01T00:00:00Z\n  token_expires_at = 2026-01-02T00:00:00Z\n";
    let agent = Agent::start(&config(&gitlab, &token, 1, extra));
    eventually(Duration::from_secs(20), "the new token in the file", || {
        std::fs::read_to_string(agent.config_path())
            .is_ok_and(|t| !t.contains(&token) && t.contains("glrt-t1_fakeResetToken"))
    })
    .await;
    let text = std::fs::read_to_string(agent.config_path()).unwrap();
    assert!(
        text.contains("# the token's times, as register wrote them"),
        "{text}"
    );
    assert!(text.contains("token_expires_at = 2099-12-31"), "{text}");
    // The reloaded entry polls with the new token and runs jobs.
    let id = gitlab.push_job(shell_job(&["echo after rotation"], &[]));
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(30)).await;
    assert_eq!(update["state"], "success");
    assert!(
        agent.log().contains("Runner token rotated"),
        "{}",
        agent.log()
    );
    assert_eq!(gitlab.requests_to(Endpoint::ResetToken).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_entry_refuses_an_image_off_allowed_images_as_a_configuration_error() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let mut job = shell_job(&["echo should-not-run"], &[]);
    job["image"] = json!({ "name": "local/busybox:runner-test" });
    let id = gitlab.push_job(job);
    // The default image is not the job's: the runner's own image would be
    // allowed whatever the list says.
    let text = format!(
        "concurrent = 1\ncheck_interval = 1\n\n[[runners]]\n  name = \"docker\"\n  url = \"{}\"\n  token = \"{token}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"other/default:1\"\n    pull_policy = \"if-not-present\"\n    allowed_images = [\"other/*\"]\n",
        gitlab.url()
    );
    let agent = Agent::start(&text);
    let update = wait_final(&gitlab, &agent, id, Duration::from_secs(60)).await;
    let trace = trace_text(&gitlab, id);
    assert_eq!(update["state"], "failed", "{trace}");
    assert_eq!(update["failure_reason"], "runner_configuration_error");
    assert!(
        trace.contains(
            "ERROR: The \"local/busybox:runner-test\" image is not present on list of allowed images:"
        ),
        "{trace}"
    );
    assert!(trace.contains("- other/*"), "{trace}");
    assert!(
        trace.contains("Job failed: the \"local/busybox:runner-test\" image is not present on list of allowed images: other/*"),
        "{trace}"
    );
    assert!(!trace.contains("should-not-run"), "{trace}");
}
