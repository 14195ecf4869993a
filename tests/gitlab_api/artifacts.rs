//! Artifact uploads and dependency downloads (§7).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_sends_the_file_and_its_parameters() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("packed.zip");
    std::fs::write(&archive, b"PK\x03\x04 pretend zip").unwrap();
    let transport = transport(&gitlab, &JobPayload::default());
    // As the engine calls it: synchronously, from a blocking section.
    let line = tokio::task::block_in_place(|| {
        transport.upload(&upload(&job, &archive, "webshop-test-main.zip"))
    })
    .expect("uploaded");

    let stored = gitlab.artifacts(30);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].file_name, "webshop-test-main.zip");
    assert_eq!(stored[0].content, b"PK\x03\x04 pretend zip");
    let request = &gitlab.requests_to(Endpoint::UploadArtifacts)[0];
    assert_eq!(
        request.query_param("artifact_format").as_deref(),
        Some("zip")
    );
    assert_eq!(
        request.query_param("artifact_type").as_deref(),
        Some("archive")
    );
    assert_eq!(request.query_param("expire_in").as_deref(), Some("1 week"));
    assert_eq!(request.header("job-token"), Some(JOB_TOKEN));
    assert_eq!(
        line,
        format!(
            "Uploading artifacts as \"archive\" to coordinator... 201 Created  id=30 responseStatus=201 Created token={}",
            short_token(JOB_TOKEN)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_upload_fails_at_once() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 31).await;
    gitlab.set_max_artifact_size(Some(100));
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("big.zip");
    std::fs::write(&archive, vec![7u8; 4096]).unwrap();
    let transport = transport(&gitlab, &JobPayload::default());
    let error =
        tokio::task::block_in_place(|| transport.upload(&upload(&job, &archive, "big.zip")))
            .expect_err("refused");
    let text = error.to_string();
    assert!(text.contains("too large"), "{text}");
    assert!(text.contains("413"), "{text}");
    assert_eq!(gitlab.requests_to(Endpoint::UploadArtifacts).len(), 1);
    assert!(gitlab.artifacts(31).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_gitlab_gets_six_upload_tries() {
    let gitlab = FakeGitLab::start().await;
    let job = running_job(&gitlab, 32).await;
    gitlab.fail_next(Endpoint::UploadArtifacts, 10, Fault::status(503));
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.zip");
    std::fs::write(&archive, b"zip").unwrap();
    let transport = transport(&gitlab, &JobPayload::default());
    let error = tokio::task::block_in_place(|| transport.upload(&upload(&job, &archive, "a.zip")))
        .expect_err("gave up");
    assert!(error.to_string().contains("503"), "{error}");
    assert_eq!(gitlab.requests_to(Endpoint::UploadArtifacts).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_follows_the_redirect_without_the_token() {
    let gitlab = FakeGitLab::start().await;
    let dep_token = "glcbt-64_dependencyToken0002";
    gitlab.add_finished_job(40, dep_token, b"PK archive of job 40");
    gitlab.set_object_storage(true);
    let dependency = Dependency {
        id: 40,
        name: "build".into(),
        token: dep_token.into(),
        artifacts_file: Some(ArtifactsFile {
            filename: "artifacts.zip".into(),
            size: 20,
        }),
    };
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("artifacts-40.zip");
    let transport = transport(&gitlab, &JobPayload::default());
    let line =
        tokio::task::block_in_place(|| transport.download(&dependency, &dest)).expect("downloaded");

    assert_eq!(std::fs::read(&dest).unwrap(), b"PK archive of job 40");
    let api_request = &gitlab.requests_to(Endpoint::DownloadArtifacts)[0];
    assert_eq!(api_request.header("job-token"), Some(dep_token));
    assert_eq!(
        api_request.query_param("direct_download").as_deref(),
        Some("true")
    );
    let storage_request = &gitlab.requests_to(Endpoint::ObjectStorage)[0];
    assert_eq!(storage_request.header("job-token"), None);
    assert!(line.starts_with("Downloading artifacts from coordinator... ok  host=127.0.0.1 id=40 responseStatus=200 OK"), "{line}");
    assert!(
        line.ends_with(&format!("token={}", short_token(dep_token))),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_download_is_retried_without_direct_download() {
    let gitlab = FakeGitLab::start().await;
    let dep_token = "glcbt-64_dependencyToken0003";
    gitlab.add_finished_job(41, dep_token, b"archive 41");
    gitlab.fail_next(Endpoint::DownloadArtifacts, 2, Fault::status(500));
    let dependency = Dependency {
        id: 41,
        token: dep_token.into(),
        ..Dependency::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.zip");
    let transport = transport(&gitlab, &JobPayload::default());
    tokio::task::block_in_place(|| transport.download(&dependency, &dest)).expect("downloaded");
    let requests = gitlab.requests_to(Endpoint::DownloadArtifacts);
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].query_param("direct_download").as_deref(),
        Some("true")
    );
    assert_eq!(requests[1].query_param("direct_download"), None);
    assert_eq!(std::fs::read(&dest).unwrap(), b"archive 41");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_download_attempts_repeat_the_whole_download() {
    let gitlab = FakeGitLab::start().await;
    let dep_token = "glcbt-64_dependencyToken0004";
    gitlab.add_finished_job(42, dep_token, b"archive 42");
    gitlab.fail_next(Endpoint::DownloadArtifacts, 3, Fault::status(502));
    let mut payload = JobPayload::default();
    payload
        .variables
        .push(runner::job::payload::JobVariable::public(
            "ARTIFACT_DOWNLOAD_ATTEMPTS",
            "2",
        ));
    let dependency = Dependency {
        id: 42,
        token: dep_token.into(),
        ..Dependency::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.zip");
    let single = transport(&gitlab, &JobPayload::default());
    assert!(tokio::task::block_in_place(|| single.download(&dependency, &dest)).is_err());
    gitlab.fail_next(Endpoint::DownloadArtifacts, 3, Fault::status(502));
    let twice = transport(&gitlab, &payload);
    tokio::task::block_in_place(|| twice.download(&dependency, &dest)).expect("second attempt");
    assert_eq!(gitlab.requests_to(Endpoint::DownloadArtifacts).len(), 3 + 4);
    assert_eq!(std::fs::read(&dest).unwrap(), b"archive 42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_forbidden_downloads_are_not_retried() {
    let gitlab = FakeGitLab::start().await;
    gitlab.add_finished_job(43, "glcbt-64_dependencyToken0005", b"x");
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.zip");
    let transport = transport(&gitlab, &JobPayload::default());
    let missing = Dependency {
        id: 999,
        token: "glcbt-64_dependencyToken0005".into(),
        ..Dependency::default()
    };
    let error = tokio::task::block_in_place(|| transport.download(&missing, &dest)).unwrap_err();
    assert!(
        matches!(error, TransportError::NotFound { job_id: 999 }),
        "{error}"
    );
    let forbidden = Dependency {
        id: 43,
        token: "glcbt-64_notTheToken".into(),
        ..Dependency::default()
    };
    let error = tokio::task::block_in_place(|| transport.download(&forbidden, &dest)).unwrap_err();
    assert!(error.to_string().contains("403"), "{error}");
    assert_eq!(gitlab.requests_to(Endpoint::DownloadArtifacts).len(), 2);
}

#[test]
fn the_transport_works_outside_a_runtime_too() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let gitlab = runtime.block_on(FakeGitLab::start());
    gitlab.add_finished_job(44, "glcbt-64_dependencyToken0006", b"archive 44");
    let transport = ApiArtifactTransport::new(
        ApiClient::new(&gitlab.url()).unwrap(),
        &JobPayload::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("a.zip");
    let dependency = Dependency {
        id: 44,
        token: "glcbt-64_dependencyToken0006".into(),
        ..Dependency::default()
    };
    // The server runs on a current-thread runtime that is not driven while
    // this blocks; a second runtime thread drives it meanwhile.
    let server = std::thread::spawn(move || {
        runtime.block_on(async { tokio::time::sleep(Duration::from_secs(3)).await });
        drop(gitlab);
    });
    transport.download(&dependency, &dest).expect("downloaded");
    assert_eq!(std::fs::read(&dest).unwrap(), b"archive 44");
    server.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_redirected_with_307_goes_to_the_named_host() {
    let gitlab = FakeGitLab::start().await;
    let other = FakeGitLab::start().await;
    let job = running_job(&gitlab, 33).await;
    other.push_job(fixture_job(33, JOB_TOKEN));
    gitlab.fail_next(
        Endpoint::UploadArtifacts,
        1,
        Fault::status(307).with_header("Location", &format!("{}/somewhere/else", other.url())),
    );
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.zip");
    std::fs::write(&archive, b"zip bytes").unwrap();
    let transport = transport(&gitlab, &JobPayload::default());
    tokio::task::block_in_place(|| transport.upload(&upload(&job, &archive, "a.zip")))
        .expect("uploaded");
    assert!(gitlab.artifacts(33).is_empty());
    assert_eq!(other.artifacts(33)[0].content, b"zip bytes");
    // The same path and parameters, on the other host.
    let moved = &other.requests_to(Endpoint::UploadArtifacts)[0];
    assert_eq!(moved.path, "/api/v4/jobs/33/artifacts");
    assert_eq!(moved.query_param("expire_in").as_deref(), Some("1 week"));
}
