//! Job updates, the trace streamer and the final update (§5).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acknowledgement_and_patches_use_the_job_token() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 11).await;
    let api = client(&gitlab);
    let ack = api
        .update_job(&job, &info(), &JobUpdate::running())
        .await
        .expect("ack");
    assert_eq!(ack.outcome, UpdateOutcome::Succeeded);
    assert_eq!(ack.job_status.as_deref(), Some("running"));
    let patch = api
        .patch_trace(&job, b"hello", 0, false)
        .await
        .expect("patch");
    assert_eq!(patch.outcome, PatchOutcome::Accepted { next_offset: 5 });

    let wrong = JobCredentials {
        id: job.id,
        token: "glcbt-wrong".into(),
    };
    let denied = api
        .patch_trace(&wrong, b"x", 5, false)
        .await
        .expect("answered");
    assert_eq!(denied.outcome, PatchOutcome::Abort);
    let request = &gitlab.requests_to(Endpoint::PatchTrace)[0];
    assert_eq!(request.header("job-token"), Some(JOB_TOKEN));
    assert_eq!(request.header("content-range"), Some("0-4"));
    assert_eq!(request.header("content-type"), Some("text/plain"));
    assert_eq!(request.query_param("debug_trace").as_deref(), Some("false"));
    let ack_body = gitlab.requests_to(Endpoint::UpdateJob)[0].json();
    assert_eq!(ack_body["state"], "running");
    assert_eq!(ack_body["token"], JOB_TOKEN);
    assert_eq!(ack_body["output"], serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_goes_in_several_patches_with_contiguous_ranges() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 12).await;
    let s = stream(
        &gitlab,
        &job,
        TraceConfig {
            max_patch_bytes: 10,
            ..fast_trace()
        },
    );
    let buffer = s.streamer.buffer().clone();
    buffer.write(b"0123456789abcdefghij");
    wait_until("two patches", || gitlab.trace(12).len() == 20).await;
    buffer.write(b"klmnopqrstuvwxy");
    let report = s.streamer.finish(JobState::Success, None, None).await;

    let all = b"0123456789abcdefghijklmnopqrstuvwxy";
    assert_eq!(gitlab.trace(12), all);
    let ranges: Vec<String> = gitlab
        .requests_to(Endpoint::PatchTrace)
        .iter()
        .map(|r| r.header("content-range").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ranges, ["0-9", "10-19", "20-29", "30-34"]);
    assert!(
        gitlab
            .requests_to(Endpoint::PatchTrace)
            .iter()
            .all(|r| !r.body.is_empty() && r.body.len() <= 10)
    );
    assert_eq!(report.outcome, FinalOutcome::Completed);
    assert_eq!(report.output.checksum, crc(all));
    assert_eq!(gitlab.job(12).unwrap().checksum_matched, Some(true));
    let body = gitlab.job(12).unwrap().final_update.unwrap();
    assert_eq!(body["state"], "success");
    assert_eq!(body["output"]["bytesize"], all.len());
    assert_eq!(body["output"]["checksum"], crc(all));
    assert_eq!(body["checksum"], crc(all));
    assert!(body.get("exit_code").is_none());
    assert!(body.get("failure_reason").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_416_moves_the_offset_to_the_server_size() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 13).await;
    let s = stream(&gitlab, &job, fast_trace());
    let buffer = s.streamer.buffer().clone();
    buffer.write(b"first part, ");
    wait_until("the first patch", || gitlab.trace(13).len() == 12).await;
    // The server loses the end of what it had.
    gitlab.truncate_trace(13, 6);
    buffer.write(b"second part");
    wait_until("the resent bytes", || gitlab.trace(13).len() == 23).await;
    let report = s.streamer.finish(JobState::Success, None, None).await;

    assert_eq!(gitlab.trace(13), b"first part, second part");
    let patches = gitlab.requests_to(Endpoint::PatchTrace);
    assert!(
        patches
            .iter()
            .any(|r| r.header("content-range") == Some("6-22")),
        "{:?}",
        patches
            .iter()
            .map(|r| r.header("content-range"))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.outcome, FinalOutcome::Completed);
    assert_eq!(gitlab.job(13).unwrap().checksum_matched, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_fires_the_cancel_token_only() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 14).await;
    gitlab.status_after_trace_bytes(14, 8, "canceling");
    let s = stream(&gitlab, &job, fast_trace());
    s.streamer.buffer().write(b"step one\n");
    tokio::time::timeout(Duration::from_secs(10), s.cancel.cancelled())
        .await
        .expect("cancel requested");
    assert!(!s.abort.is_cancelled());
    // The job goes on: after_script output still reaches GitLab.
    s.streamer.buffer().write(b"after_script\n");
    let report = s
        .streamer
        .finish(JobState::Failed, Some("unknown_failure"), None)
        .await;
    assert_eq!(report.outcome, FinalOutcome::Completed);
    assert_eq!(gitlab.trace(14), b"step one\nafter_script\n");
    assert_eq!(gitlab.job_status(14).as_deref(), Some("canceled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceled_fires_abort_and_cancel() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 15).await;
    gitlab.status_after_trace_bytes(15, 1, "canceled");
    let s = stream(&gitlab, &job, fast_trace());
    s.streamer.buffer().write(b"output\n");
    tokio::time::timeout(Duration::from_secs(10), s.abort.cancelled())
        .await
        .expect("abort requested");
    assert!(s.cancel.is_cancelled());
    let report = s
        .streamer
        .finish(JobState::Failed, Some("unknown_failure"), None)
        .await;
    // GitLab ended the job: the final update meets a 403.
    assert_eq!(report.outcome, FinalOutcome::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_job_is_touched_and_hears_of_cancellation() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 16).await;
    let s = stream(
        &gitlab,
        &job,
        TraceConfig {
            force_send_interval: Duration::from_millis(150),
            ..fast_trace()
        },
    );
    s.streamer.buffer().write(b"quiet now\n");
    wait_until("a touch", || {
        gitlab
            .requests_to(Endpoint::UpdateJob)
            .iter()
            .any(|r| r.json()["state"] == "running")
    })
    .await;
    let touch = gitlab
        .requests_to(Endpoint::UpdateJob)
        .into_iter()
        .find(|r| r.json()["state"] == "running")
        .unwrap()
        .json();
    assert_eq!(touch["output"]["checksum"], crc(b"quiet now\n"));
    assert_eq!(touch["output"]["bytesize"], 10);
    assert!(touch.get("checksum").is_none());
    // Only the touch can bring the news: nothing more is written.
    assert!(!s.cancel.is_cancelled());
    gitlab.set_job_status(16, "canceling");
    tokio::time::timeout(Duration::from_secs(10), s.cancel.cancelled())
        .await
        .expect("cancel requested through a touch");
    assert!(!s.abort.is_cancelled());
    assert_eq!(gitlab.requests_to(Endpoint::PatchTrace).len(), 1);
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_interval_follows_gitlab() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 17).await;
    gitlab.set_trace_update_interval(Some(1));
    let s = stream(&gitlab, &job, fast_trace());
    s.streamer.buffer().write(b"a");
    wait_until("the first patch", || gitlab.trace(17).len() == 1).await;
    let first = Instant::now();
    s.streamer.buffer().write(b"b");
    wait_until("the second patch", || gitlab.trace(17).len() == 2).await;
    // 20 ms before GitLab named its interval; about a second after.
    assert!(
        first.elapsed() >= Duration::from_millis(700),
        "{:?}",
        first.elapsed()
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_update_is_resent_after_three_202s() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 18).await;
    gitlab.accept_final_after(18, 3);
    let s = stream(&gitlab, &job, fast_trace());
    s.streamer.buffer().write(b"$ make\nfailed\n");
    let report = s
        .streamer
        .finish(JobState::Failed, Some("script_failure"), Some(2))
        .await;
    assert_eq!(report.outcome, FinalOutcome::Completed);
    let finals = final_updates(&gitlab);
    assert_eq!(finals.len(), 4);
    assert!(finals.iter().all(|b| b == &finals[0]));
    assert_eq!(finals[0]["failure_reason"], "script_failure");
    assert_eq!(finals[0]["exit_code"], 2);
    assert_eq!(gitlab.job_status(18).as_deref(), Some("failed"));
    assert_eq!(gitlab.trace(18), b"$ make\nfailed\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_412_resends_the_trace_from_the_start() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 19).await;
    let s = stream(&gitlab, &job, fast_trace());
    s.streamer.buffer().write(b"whole trace");
    wait_until("the trace", || gitlab.trace(19).len() == 11).await;
    gitlab.fail_next(Endpoint::UpdateJob, 1, Fault::status(412));
    let report = s.streamer.finish(JobState::Success, None, None).await;
    assert_eq!(report.outcome, FinalOutcome::Completed);
    let ranges: Vec<_> = gitlab
        .requests_to(Endpoint::PatchTrace)
        .iter()
        .map(|r| r.header("content-range").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ranges, ["0-10", "0-10"]);
    assert_eq!(final_updates(&gitlab).len(), 2);
    assert_eq!(gitlab.trace(19), b"whole trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gitlab_restart_mid_trace_loses_no_byte() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 20).await;
    let s = stream(&gitlab, &job, fast_trace());
    let buffer = s.streamer.buffer().clone();
    let mut written = Vec::new();
    let write = |written: &mut Vec<u8>, bytes: &[u8]| {
        buffer.write(bytes);
        written.extend_from_slice(bytes);
    };
    write(&mut written, b"before the restart\n");
    wait_until("the first bytes", || gitlab.trace(20).len() == 19).await;
    gitlab.stop().await;
    for i in 0..20 {
        write(
            &mut written,
            format!("while GitLab is down {i}\n").as_bytes(),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused_before = gitlab.requests_to(Endpoint::PatchTrace).len();
    gitlab.restart().await;
    write(&mut written, b"after the restart\n");
    wait_until("everything", || gitlab.trace(20).len() == written.len()).await;
    // Down again as the job ends; back while the final update retries.
    gitlab.stop().await;
    write(&mut written, b"the last line\n");
    let finishing = tokio::spawn(s.streamer.finish(JobState::Success, None, None));
    tokio::time::sleep(Duration::from_millis(300)).await;
    gitlab.restart().await;
    let report = finishing.await.expect("finished");

    assert!(refused_before >= 1);
    assert_eq!(report.outcome, FinalOutcome::Completed);
    assert!(report.attempts > 1, "{report:?}");
    assert_eq!(gitlab.trace(20), written);
    assert_eq!(report.output.checksum, crc(&written));
    assert_eq!(gitlab.job(20).unwrap().checksum_matched, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_and_invalid_utf8_reach_gitlab_repaired() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 21).await;
    let s = stream(&gitlab, &job, fast_trace());
    let mut log = JobLog::new(s.streamer.log_target(), &[], 1 << 20);
    let euro = "€".as_bytes();
    log.write(b"price: ");
    log.write(&euro[..2]);
    log.write(&euro[2..]);
    log.write(b" then junk \xff\xfe and a cut \xe2\x82");
    log.finish();
    let report = s.streamer.finish(JobState::Success, None, None).await;
    let expected = "price: € then junk \u{FFFD}\u{FFFD} and a cut \u{FFFD}".as_bytes();
    assert_eq!(gitlab.trace(21), expected);
    assert_eq!(report.output.bytesize, expected.len() as u64);
    assert_eq!(gitlab.job(21).unwrap().checksum_matched, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_reason_is_one_the_server_lists() {
    let gitlab = FakeGitLab::start().await;
    let payload: JobPayload = serde_json::from_value(fixture_job(22, JOB_TOKEN)).expect("payload");
    let listed = &payload.features.failure_reasons;
    let pull_failed = JobStatus::Failed {
        reason: FailureReason::ImagePullFailure,
        exit_code: None,
        message: "image pull failed".into(),
    };
    // The fixture's server does not list `image_pull_failure`.
    assert_eq!(
        FinalState::of(&pull_failed, listed).failure_reason,
        Some("runner_system_failure")
    );
    let config_error = JobStatus::Failed {
        reason: FailureReason::RunnerConfigurationError,
        exit_code: Some(3),
        message: "bad".into(),
    };
    assert_eq!(
        FinalState::of(&config_error, listed).failure_reason,
        Some("runner_configuration_error")
    );
    // An older server that lists nothing.
    let state = FinalState::of(&config_error, &[]);
    assert_eq!(state.failure_reason, Some("script_failure"));

    let job = running_job(&gitlab, 22).await;
    let s = stream(&gitlab, &job, fast_trace());
    s.streamer.buffer().write(b"x");
    s.streamer
        .finish(state.state, state.failure_reason, state.exit_code)
        .await;
    let body = gitlab.job(22).unwrap().final_update.unwrap();
    assert_eq!(body["state"], "failed");
    assert_eq!(body["failure_reason"], "script_failure");
    assert_eq!(body["exit_code"], 3);
}

/// `len` bytes of numbered lines of 10 bytes: any misplaced range shows.
fn numbered(len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len.div_ceil(10))
        .flat_map(|i| format!("{i:09}\n").into_bytes())
        .collect();
    bytes.truncate(len);
    bytes
}

fn ranges(gitlab: &FakeGitLab) -> Vec<String> {
    gitlab
        .requests_to(Endpoint::PatchTrace)
        .iter()
        .map(|r| r.header("content-range").unwrap_or_default().to_owned())
        .collect()
}

/// The `Content-Range`s of whole patches of `size` bytes from `from` on.
fn whole_patches(from: usize, count: usize, size: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{}-{}", from + i * size, from + (i + 1) * size - 1))
        .collect()
}

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_several_mib_goes_out_in_consecutive_patches_without_waiting() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 23).await;
    let interval = Duration::from_secs(20);
    let s = stream(
        &gitlab,
        &job,
        TraceConfig {
            update_interval: interval,
            ..fast_trace()
        },
    );
    // 5 MiB and 100 bytes, in one go, as a job printing fast leaves it.
    let all = numbered(5 * MIB + 100);
    let started = Instant::now();
    s.streamer.buffer().write(&all);
    wait_until("five whole patches", || gitlab.trace(23).len() == 5 * MIB).await;
    assert!(
        started.elapsed() < interval / 4,
        "{:?}: an interval was waited",
        started.elapsed()
    );
    // Less than a patch is left: it waits for the interval.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gitlab.trace(23).len(), 5 * MIB);
    assert_eq!(ranges(&gitlab), whole_patches(0, 5, MIB));
    let patches = gitlab.requests_to(Endpoint::PatchTrace);
    assert!(patches.iter().all(|p| p.body.len() == MIB));
    for pair in patches.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap < interval / 4, "{gap:?} between two patches");
    }

    let report = s.streamer.finish(JobState::Success, None, None).await;
    let mut expected = whole_patches(0, 5, MIB);
    expected.push(format!("{}-{}", 5 * MIB, all.len() - 1));
    assert_eq!(ranges(&gitlab), expected);
    assert_eq!(gitlab.trace(23), all);
    assert_eq!(report.outcome, FinalOutcome::Completed);
    assert_eq!(report.output.bytesize, all.len() as u64);
    assert_eq!(gitlab.job(23).unwrap().checksum_matched, Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_patch_the_backlog_waits_an_interval() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 24).await;
    let interval = Duration::from_millis(800);
    // 501 is not retried by the client: the patch fails once.
    gitlab.fail_next(Endpoint::PatchTrace, 1, Fault::status(501));
    let s = stream(
        &gitlab,
        &job,
        TraceConfig {
            update_interval: interval,
            ..fast_trace()
        },
    );
    let all = numbered(3 * MIB);
    s.streamer.buffer().write(&all);
    wait_until("the whole backlog", || gitlab.trace(24).len() == all.len()).await;
    let patches = gitlab.requests_to(Endpoint::PatchTrace);
    assert_eq!(patches.len(), 4, "{:?}", ranges(&gitlab));
    let mut expected = whole_patches(0, 1, MIB);
    expected.extend(whole_patches(0, 3, MIB));
    assert_eq!(ranges(&gitlab), expected);
    let retry_gap = patches[1].at - patches[0].at;
    assert!(
        retry_gap >= interval * 9 / 10,
        "{retry_gap:?} after a failure"
    );
    for pair in patches[1..].windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap < interval / 2, "{gap:?} between two good patches");
    }
    let report = s.streamer.finish(JobState::Success, None, None).await;
    assert_eq!(report.outcome, FinalOutcome::Completed);
    assert_eq!(gitlab.trace(24), all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlabs_answers_in_the_middle_of_a_backlog_are_obeyed() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 25).await;
    // Canceled once the second MiB is in: no third patch may follow.
    gitlab.status_after_trace_bytes(25, 2 * MIB, "canceled");
    let s = stream(
        &gitlab,
        &job,
        TraceConfig {
            update_interval: Duration::from_secs(20),
            ..fast_trace()
        },
    );
    s.streamer.buffer().write(&numbered(4 * MIB));
    tokio::time::timeout(Duration::from_secs(10), s.abort.cancelled())
        .await
        .expect("abort requested");
    assert!(s.cancel.is_cancelled());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ranges(&gitlab), whole_patches(0, 2, MIB));
    let report = s
        .streamer
        .finish(JobState::Failed, Some("unknown_failure"), None)
        .await;
    assert_eq!(report.outcome, FinalOutcome::Aborted);
    assert_eq!(gitlab.trace(25).len(), 2 * MIB);
}

/// Open descriptors of this process on files in `dir`.
fn open_files_in(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_trace_kept_in_a_file_is_exact_resent_from_it_and_removed_at_the_end() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 26).await;
    let spool = tempfile::tempdir().expect("temp dir");
    let s = stream(
        &gitlab,
        &job,
        TraceConfig {
            // Also the pause after the 412 below.
            update_interval: Duration::from_secs(1),
            memory_bytes: 64 << 10,
            spool_dir: Some(spool.path().to_owned()),
            ..fast_trace()
        },
    );
    let mut log = JobLog::new(
        s.streamer.log_target(),
        &["hunter2-secret".to_owned()],
        8 * MIB,
    );
    let mut expected = Vec::new();
    for i in 0..30_000 {
        let line = if i % 100 == 0 {
            format!("line {i:06} password=hunter2-secret €\n")
        } else {
            format!("line {i:06} some output of the job, ünïcödé\n")
        };
        log.write(line.as_bytes());
        expected.extend_from_slice(line.replace("hunter2-secret", "[MASKED]").as_bytes());
    }
    log.finish();
    drop(log);
    assert!(s.streamer.buffer().is_spooled());
    assert_eq!(open_files_in(spool.path()), 1);
    // The file is nameless: nothing shows in the directory.
    assert_eq!(std::fs::read_dir(spool.path()).unwrap().count(), 0);
    wait_until("a whole patch", || gitlab.trace(26).len() >= MIB).await;

    // GitLab's copy does not match: everything again, from the file.
    gitlab.fail_next(Endpoint::UpdateJob, 1, Fault::status(412));
    let report = s.streamer.finish(JobState::Success, None, None).await;
    assert_eq!(report.outcome, FinalOutcome::Completed);
    assert_eq!(report.output.bytesize, expected.len() as u64);
    assert_eq!(report.output.checksum, crc(&expected));
    let resent = ranges(&gitlab)
        .iter()
        .filter(|r| r.starts_with("0-"))
        .count();
    assert_eq!(resent, 2, "{:?}", ranges(&gitlab));
    assert_eq!(gitlab.trace(26), expected);
    assert_eq!(gitlab.job(26).unwrap().checksum_matched, Some(true));
    assert_eq!(open_files_in(spool.path()), 0, "the file outlived the job");
}
