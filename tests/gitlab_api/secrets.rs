//! Tokens stay out of errors.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_appears_in_any_error() {
    let gitlab = FakeGitLab::start().await;
    let api = client(&gitlab);
    let runner_token = gitlab.create_runner();
    let mut errors: Vec<String> = Vec::new();
    let mut record = |e: &dyn std::fmt::Debug, d: String| {
        errors.push(d);
        errors.push(format!("{e:?}"));
    };

    let e = api
        .register(
            "GR1348941SecretRegistration",
            &RegisterParams::default(),
            &info(),
        )
        .await
        .unwrap_err();
    record(&e, e.to_string());
    gitlab.fail_next(
        Endpoint::Verify,
        5,
        Fault::status(500).with_body(&format!(r#"{{"message":"token {runner_token} broke"}}"#)),
    );
    let e = api
        .verify(&runner_token, SYSTEM_ID, &info())
        .await
        .unwrap_err();
    record(&e, e.to_string());
    let job = running_job(&gitlab, 50).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.zip");
    std::fs::write(&archive, vec![0u8; 500]).unwrap();
    gitlab.set_max_artifact_size(Some(10));
    let t = transport(&gitlab, &JobPayload::default());
    let e = tokio::task::block_in_place(|| t.upload(&upload(&job, &archive, "a.zip"))).unwrap_err();
    record(&e, e.to_string());
    let bad = Dependency {
        id: 50,
        token: "glcbt-64_SecretWrongToken".into(),
        ..Dependency::default()
    };
    let e = tokio::task::block_in_place(|| t.download(&bad, &dir.path().join("x"))).unwrap_err();
    record(&e, e.to_string());

    gitlab.stop().await;
    let e = api
        .request_job(JobRequest {
            token: &runner_token,
            system_id: SYSTEM_ID,
            last_update: None,
            info: &info(),
        })
        .await
        .unwrap_err();
    assert!(e.is_transport());
    record(&e, e.to_string());
    let e = api
        .update_job(&job, &info(), &JobUpdate::running())
        .await
        .unwrap_err();
    record(&e, e.to_string());
    record(&job, String::new());

    assert!(errors.len() >= 12);
    for text in &errors {
        for secret in [
            runner_token.as_str(),
            JOB_TOKEN,
            "GR1348941SecretRegistration",
            "SecretRegistration",
            "glcbt-64_SecretWrongToken",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
