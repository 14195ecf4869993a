//! The fake GitLab holds to the protocol it stands for: a client that
//! breaks it is told so, as GitLab would.

use super::*;

/// A raw trace patch, bypassing the client's own rules.
async fn raw_patch(
    gitlab: &FakeGitLab,
    id: u64,
    range: Option<&str>,
    body: &'static [u8],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .patch(format!("{}/api/v4/jobs/{id}/trace", gitlab.url()))
        .header("JOB-TOKEN", JOB_TOKEN)
        .body(body);
    if let Some(range) = range {
        request = request.header("Content-Range", range);
    }
    request.send().await.expect("answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_refuses_patches_without_a_matching_range() {
    let gitlab = FakeGitLab::start().await;
    running_job(&gitlab, 90).await;
    assert_eq!(raw_patch(&gitlab, 90, None, b"abc").await.status(), 400);
    let ok = raw_patch(&gitlab, 90, Some("0-2"), b"abc").await;
    assert_eq!(ok.status(), 202);
    assert_eq!(ok.headers()["range"], "0-3");
    assert_eq!(ok.headers()["job-status"], "running");
    let gap = raw_patch(&gitlab, 90, Some("10-12"), b"def").await;
    assert_eq!(gap.status(), 416);
    assert_eq!(gap.headers()["range"], "0-3");
    assert_eq!(gitlab.trace(90), b"abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_records_whether_the_final_checksum_matches() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 91).await;
    let api = client(&gitlab);
    api.patch_trace(&job, b"log", 0, false)
        .await
        .expect("patch");
    let update = JobUpdate {
        state: Some(JobState::Success),
        output: Some(runner::gitlab::TraceOutput {
            checksum: "crc32:00000000".into(),
            bytesize: 3,
        }),
        ..JobUpdate::default()
    };
    let answer = api
        .update_job(&job, &info(), &update)
        .await
        .expect("update");
    assert_eq!(answer.status, 200);
    assert_eq!(gitlab.job(91).unwrap().checksum_matched, Some(false));
    // The job is over: GitLab takes no more trace for it.
    let late = api
        .patch_trace(&job, b"more", 3, false)
        .await
        .expect("answer");
    assert_eq!(late.outcome, PatchOutcome::Abort);
    assert_eq!(late.job_status.as_deref(), Some("success"));
}
