//! Asking for jobs (§3) and the retry layer (§1).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_job_returns_last_update_and_sends_it_back() {
    let gitlab = FakeGitLab::start().await;
    let api = client(&gitlab);
    let token = gitlab.create_runner();
    let info = info();
    let first = api
        .request_job(JobRequest {
            token: &token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info,
        })
        .await
        .expect("poll");
    assert!(matches!(first.outcome, JobRequestOutcome::NoJob));
    let seen = first.last_update.expect("X-GitLab-Last-Update");
    assert_eq!(seen, gitlab.last_update());

    gitlab.push_job(fixture_job(77, JOB_TOKEN));
    let second = api
        .request_job(JobRequest {
            token: &token,
            system_id: SYSTEM_ID,
            last_update: Some(&seen),
            info: &info,
        })
        .await
        .expect("poll");
    let JobRequestOutcome::Job(job) = second.outcome else {
        panic!("no job: {:?}", second.outcome);
    };
    assert_eq!(job.payload.id, 77);
    assert_eq!(job.payload.token, JOB_TOKEN);
    assert_eq!(job.payload.job_info.name, "test:unit");
    assert_eq!(job.raw["job_info"]["namespace_id"], 310);
    assert_eq!(
        second.last_update.as_deref(),
        Some(gitlab.last_update().as_str())
    );

    let requests = gitlab.requests_to(Endpoint::RequestJob);
    assert!(requests[0].json().get("last_update").is_none());
    assert_eq!(requests[1].json()["last_update"], seen.as_str());
    assert_eq!(requests[1].json()["system_id"], SYSTEM_ID);
    assert_eq!(requests[1].json()["token"], token.as_str());
    assert_eq!(requests[1].header("runner-token"), Some(token.as_str()));
    assert_eq!(
        requests[1].json()["info"]["features"]
            .as_object()
            .map(|f| f.len()),
        Some(31)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_poll_is_the_one_unhealthy_answer() {
    let gitlab = FakeGitLab::start().await;
    let response = client(&gitlab)
        .request_job(JobRequest {
            token: "glrt-t1_removed",
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await
        .expect("answered");
    assert!(matches!(
        response.outcome,
        JobRequestOutcome::Forbidden { .. }
    ));
    assert!(!response.outcome.is_healthy());
    assert!(JobRequestOutcome::NoJob.is_healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_held_by_the_server_is_waited_for() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    gitlab.set_long_poll(Duration::from_millis(1500));
    let started = Instant::now();
    let response = client(&gitlab)
        .request_job(JobRequest {
            token: &token,
            system_id: SYSTEM_ID,
            last_update: Some("queue-0"),
            info: &info(),
        })
        .await
        .expect("answered");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(matches!(response.outcome, JobRequestOutcome::NoJob));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_502_is_retried_until_gitlab_answers() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    gitlab.fail_next(Endpoint::RequestJob, 2, Fault::status(502));
    let response = client(&gitlab)
        .request_job(JobRequest {
            token: &token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await
        .expect("answered");
    assert!(matches!(response.outcome, JobRequestOutcome::NoJob));
    let requests = gitlab.requests_to(Endpoint::RequestJob);
    assert_eq!(requests.len(), 3);
    // Every attempt is its own request, with its own id.
    assert_ne!(
        requests[0].header("x-request-id"),
        requests[1].header("x-request-id")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_after_five_attempts() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    gitlab.fail_next(Endpoint::RequestJob, 10, Fault::status(503));
    let response = client(&gitlab)
        .request_job(JobRequest {
            token: &token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await
        .expect("answered");
    assert!(matches!(
        response.outcome,
        JobRequestOutcome::ServerError { status: 503, .. }
    ));
    assert!(response.outcome.is_healthy());
    assert_eq!(gitlab.requests_to(Endpoint::RequestJob).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_as_long_as_retry_after_says() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    gitlab.fail_next(
        Endpoint::RequestJob,
        1,
        Fault::status(429).with_header("Retry-After", "1"),
    );
    let started = Instant::now();
    let response = client(&gitlab)
        .request_job(JobRequest {
            token: &token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await
        .expect("answered");
    // The client's own back-off would have been 10 ms.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(response.outcome, JobRequestOutcome::NoJob));
    assert_eq!(gitlab.requests_to(Endpoint::RequestJob).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_errors_are_not_retried_by_the_client() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    gitlab.fail_next(Endpoint::RequestJob, 1, Fault::Drop);
    let result = client(&gitlab)
        .request_job(JobRequest {
            token: &token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await;
    assert!(
        matches!(result, Err(ApiError::Transport { .. })),
        "{result:?}"
    );
    assert_eq!(gitlab.requests_to(Endpoint::RequestJob).len(), 1);
}
