//! The job engine running a job the fake GitLab handed out, with the
//! trace streamer as its log and the API as its artifact transport: the
//! parts fit as the agent will put them together.

use runner::job::engine::{EngineSettings, JobRun, job_secrets, run_job};
use runner::job::sources::SourceMode;
use runner_executors::ShellKind;
use runner_executors::shell::{ShellExecutor, ShellOptions};
use serde_json::json;

use super::*;

/// The fixture job, made to run on a shell executor without git.
fn shell_job(id: u64, script: &[&str], after_script: &[&str]) -> Value {
    let mut job = fixture_job(id, JOB_TOKEN);
    job["image"] = Value::Null;
    job["services"] = json!([]);
    job["cache"] = json!([]);
    job["dependencies"] = json!([]);
    job["hooks"] = json!([]);
    job["steps"] = json!([
        { "name": "script", "script": script, "timeout": 3600, "when": "on_success", "allow_failure": false },
        { "name": "after_script", "script": after_script, "timeout": 3600, "when": "always", "allow_failure": true },
    ]);
    job["artifacts"] = json!([{
        "name": "out", "untracked": false, "paths": ["out/"], "when": "on_success",
        "expire_in": "1 day", "artifact_type": "archive", "artifact_format": "zip",
    }]);
    if let Some(variables) = job["variables"].as_array_mut() {
        variables.push(json!({ "key": "GIT_STRATEGY", "value": "empty", "public": true }));
    }
    job
}

struct Agent {
    api: ApiClient,
    payload: JobPayload,
    builds: tempfile::TempDir,
}

/// Polls the job and acknowledges it, as the agent does.
async fn take_job(gitlab: &FakeGitLab) -> Agent {
    let api = client(gitlab);
    let runner_token = gitlab.create_runner();
    let response = api
        .request_job(JobRequest {
            token: &runner_token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await
        .expect("poll");
    let JobRequestOutcome::Job(job) = response.outcome else {
        panic!("no job: {:?}", response.outcome);
    };
    let ack = api
        .update_job(
            &JobCredentials::of(&job.payload),
            &info(),
            &JobUpdate::running(),
        )
        .await
        .expect("ack");
    assert_eq!(ack.outcome, UpdateOutcome::Succeeded);
    Agent {
        api,
        payload: job.payload,
        builds: tempfile::tempdir().expect("builds dir"),
    }
}

impl Agent {
    /// Runs the job to its end and sends the final update.
    async fn run(
        &self,
        config: TraceConfig,
        during: impl Future<Output = ()>,
    ) -> (JobStatus, FinalOutcome) {
        let cancel = CancellationToken::new();
        let abort = CancellationToken::new();
        let streamer = TraceStreamer::start(
            self.api.clone(),
            JobCredentials::of(&self.payload),
            info(),
            config,
            cancel.clone(),
            abort.clone(),
        );
        let mut log = JobLog::new(streamer.log_target(), &job_secrets(&self.payload), 4 << 20)
            .with_token_prefixes(&self.payload.features.token_mask_prefixes);
        let transport = ApiArtifactTransport::new(self.api.clone(), &self.payload)
            .with_timing(fast_artifacts());
        let settings = EngineSettings {
            builds_dir: self.builds.path().to_owned(),
            cache_dir: self.builds.path().join("cache"),
            source_mode: SourceMode::Commit,
            custom_build_dir_enabled: false,
            runner_variables: Vec::new(),
            runner_identity: Some("test-runner abcdefghi, system ID: s_0123456789ab".to_owned()),
        };
        let executor = ShellExecutor::new(ShellOptions::default()).expect("shell executor");
        let job = JobRun {
            payload: &self.payload,
            project_dir: self.builds.path().join("acme/backend/webshop"),
            transport: &transport,
            cancel,
            abort,
            executor_name: "shell",
            shell: ShellKind::Bash,
        };
        let (outcome, ()) = tokio::join!(run_job(&settings, &executor, job, &mut log), during);
        let state = FinalState::of(&outcome.status, &self.payload.features.failure_reasons);
        let report = streamer
            .finish(state.state, state.failure_reason, state.exit_code)
            .await;
        (outcome.status, report.outcome)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_job_streams_its_masked_log_and_uploads_its_artifacts() {
    let gitlab = FakeGitLab::start().await;
    gitlab.push_job(shell_job(
        60,
        &[
            "echo hello from the job",
            "echo \"password: $DB_PASSWORD\"",
            "mkdir -p out && echo data > out/f.txt",
        ],
        &["echo after_script ran"],
    ));
    let agent = take_job(&gitlab).await;
    let (status, outcome) = agent.run(fast_trace(), async {}).await;

    assert_eq!(status, JobStatus::Success);
    assert_eq!(outcome, FinalOutcome::Completed);
    let trace = String::from_utf8_lossy(&gitlab.trace(60)).into_owned();
    assert!(trace.contains("hello from the job"), "{trace}");
    assert!(
        trace.contains("  on test-runner abcdefghi, system ID: s_0123456789ab"),
        "{trace}"
    );
    assert!(trace.contains("password: [MASKED]"), "{trace}");
    assert!(!trace.contains("s3cr3t-Passw0rd!"), "{trace}");
    assert!(trace.contains("after_script ran"), "{trace}");
    assert!(
        trace.contains("Uploading artifacts as \"archive\" to coordinator... 201 Created"),
        "{trace}"
    );
    assert!(trace.contains("Job succeeded"), "{trace}");
    let job = gitlab.job(60).unwrap();
    assert_eq!(job.checksum_matched, Some(true));
    assert_eq!(job.status, "success");
    let stored = gitlab.artifacts(60);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].file_name, "out.zip");
    assert_eq!(stored[0].expire_in.as_deref(), Some("1 day"));
    assert!(stored[0].content.starts_with(b"PK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_canceled_in_gitlab_stops_its_script_and_still_runs_after_script() {
    let gitlab = FakeGitLab::start().await;
    gitlab.push_job(shell_job(
        61,
        &["echo started", "sleep 60", "echo never printed"],
        &["echo \"after_script sees $CI_JOB_STATUS\""],
    ));
    let agent = take_job(&gitlab).await;
    let config = TraceConfig {
        // The script is silent while it sleeps: only a touch can carry the
        // news.
        force_send_interval: Duration::from_millis(200),
        ..fast_trace()
    };
    let started = Instant::now();
    let (status, outcome) = agent
        .run(config, async {
            wait_until("the script to start", || {
                String::from_utf8_lossy(&gitlab.trace(61)).contains("started")
            })
            .await;
            gitlab.set_job_status(61, "canceling");
        })
        .await;

    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, JobStatus::Canceled);
    assert_eq!(outcome, FinalOutcome::Completed);
    let trace = String::from_utf8_lossy(&gitlab.trace(61)).into_owned();
    assert!(trace.contains("after_script sees canceled"), "{trace}");
    assert!(!trace.contains("never printed"), "{trace}");
    let job = gitlab.job(61).unwrap();
    assert_eq!(job.status, "canceled");
    let last = job.final_update.unwrap();
    assert_eq!(last["state"], "failed");
    assert_eq!(last["failure_reason"], "unknown_failure");
}
