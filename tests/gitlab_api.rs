//! The runner API client, trace streamer and artifact transport against
//! the fake GitLab: one behaviour per test. This file holds what the
//! tests share.

mod artifacts;
mod engine;
mod fake;
mod lifecycle;
mod polling;
mod secrets;
mod trace;

use std::path::Path;
use std::time::{Duration, Instant};

use runner::gitlab::{
    ApiArtifactTransport, ApiClient, ApiError, ArtifactTiming, FinalOutcome, FinalState, Info,
    JobCredentials, JobRequest, JobRequestOutcome, JobState, JobUpdate, PatchOutcome,
    RegisterParams, RetryPolicy, TraceConfig, TraceStreamer, UpdateOutcome, short_token,
};
use runner::job::artifacts_stage::{
    ArtifactFormat, ArtifactTransport, ArtifactUpload, TransportError,
};
use runner::job::log::JobLog;
use runner::job::outcome::{FailureReason, JobStatus};
use runner::job::payload::{ArtifactsFile, Dependency, JobPayload};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::support::fake_gitlab::{Endpoint, FakeGitLab, Fault, REGISTRATION_TOKEN, fixture_job};

const JOB_TOKEN: &str = "glcbt-64_jobTokenForTests0001";
const SYSTEM_ID: &str = "s_0123456789ab";

/// A client retrying quickly.
fn client(gitlab: &FakeGitLab) -> ApiClient {
    ApiClient::new(&gitlab.url())
        .expect("client")
        .with_retry_policy(RetryPolicy {
            max_attempts: 5,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(5),
        })
}

fn info() -> Info {
    Info::new("shell", "bash")
}

/// gitlab-runner's timings, shortened.
fn fast_trace() -> TraceConfig {
    TraceConfig {
        update_interval: Duration::from_millis(20),
        force_send_interval: Duration::from_secs(60),
        max_patch_bytes: 1 << 20,
        final_update_retry_limit: 10,
        final_retry_backoff: Duration::from_millis(20),
        final_retry_backoff_max: Duration::from_millis(200),
        debug_trace: false,
        memory_bytes: 1 << 20,
        spool_dir: None,
    }
}

fn fast_artifacts() -> ArtifactTiming {
    ArtifactTiming {
        upload_backoff_min: Duration::from_millis(10),
        upload_backoff_max: Duration::from_millis(50),
        download_retry_wait: Duration::from_millis(10),
        stage_retry_wait: Duration::from_millis(10),
        stage_retry_wait_max: Duration::from_millis(50),
    }
}

/// A job GitLab has handed out, running on the fake server.
async fn running_job(gitlab: &FakeGitLab, id: u64) -> JobCredentials {
    let runner_token = gitlab.create_runner();
    gitlab.push_job(fixture_job(id, JOB_TOKEN));
    let response = client(gitlab)
        .request_job(JobRequest {
            token: &runner_token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await
        .expect("poll");
    match response.outcome {
        JobRequestOutcome::Job(job) => JobCredentials::of(&job.payload),
        other => panic!("no job: {other:?}"),
    }
}

struct Streamer {
    streamer: TraceStreamer,
    cancel: CancellationToken,
    abort: CancellationToken,
}

fn stream(gitlab: &FakeGitLab, job: &JobCredentials, config: TraceConfig) -> Streamer {
    let cancel = CancellationToken::new();
    let abort = CancellationToken::new();
    let streamer = TraceStreamer::start(
        client(gitlab),
        job.clone(),
        info(),
        config,
        cancel.clone(),
        abort.clone(),
    );
    Streamer {
        streamer,
        cancel,
        abort,
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn crc(bytes: &[u8]) -> String {
    format!("crc32:{:08x}", crc32fast::hash(bytes))
}

fn final_updates(gitlab: &FakeGitLab) -> Vec<Value> {
    gitlab
        .requests_to(Endpoint::UpdateJob)
        .iter()
        .map(|r| r.json())
        .filter(|b| matches!(b["state"].as_str(), Some("success" | "failed")))
        .collect()
}

/// An upload of `archive` as job `job`'s `archive` artifacts.
fn upload<'a>(
    job: &'a JobCredentials,
    archive: &'a Path,
    file_name: &'a str,
) -> ArtifactUpload<'a> {
    ArtifactUpload {
        job_id: job.id,
        job_token: &job.token,
        artifact_type: "archive",
        format: ArtifactFormat::Zip,
        file_name,
        expire_in: Some("1 week"),
        archive,
    }
}

/// The API transport of `payload`, retrying quickly.
fn transport(gitlab: &FakeGitLab, payload: &JobPayload) -> ApiArtifactTransport {
    ApiArtifactTransport::new(client(gitlab), payload).with_timing(fast_artifacts())
}
