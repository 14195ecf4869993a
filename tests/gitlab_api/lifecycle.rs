//! Registration, verification, unregistering and token reset (§2).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_sends_every_field_and_returns_the_new_token() {
    let gitlab = FakeGitLab::start().await;
    let params = RegisterParams {
        description: "rust-runner-01".into(),
        maintenance_note: "owned by the platform team".into(),
        tag_list: vec!["linux".into(), "docker".into()],
        run_untagged: false,
        locked: true,
        access_level: "not_protected".into(),
        maximum_timeout: 7200,
        paused: false,
    };
    let runner = client(&gitlab)
        .register(REGISTRATION_TOKEN, &params, &Info::new("docker", "bash"))
        .await
        .expect("registered");
    assert!(runner.token.starts_with("glrt-"));
    assert_eq!(gitlab.runner(&runner.token).expect("known").id, runner.id);

    let request = &gitlab.requests_to(Endpoint::Register)[0];
    let body = request.json();
    assert_eq!(body["token"], REGISTRATION_TOKEN);
    assert_eq!(body["description"], "rust-runner-01");
    assert_eq!(body["maintenance_note"], "owned by the platform team");
    assert_eq!(body["tag_list"], "linux,docker");
    assert_eq!(body["run_untagged"], false);
    assert_eq!(body["locked"], true);
    assert_eq!(body["access_level"], "not_protected");
    assert_eq!(body["maximum_timeout"], 7200);
    assert_eq!(body["paused"], false);
    assert_eq!(body["info"]["executor"], "docker");
    assert_eq!(body["info"]["features"]["image"], true);
    assert_eq!(request.header("content-type"), Some("application/json"));
    let agent = request.header("user-agent").unwrap_or_default();
    assert!(agent.starts_with("runner "), "{agent}");
    assert_eq!(request.header("x-request-id").map(str::len), Some(32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_a_wrong_or_disabled_registration_token_fails_typed() {
    let gitlab = FakeGitLab::start().await;
    let api = client(&gitlab);
    let params = RegisterParams::default();
    let wrong = api
        .register("GR1348941WrongWrongWrong", &params, &info())
        .await;
    assert!(
        matches!(wrong, Err(ApiError::Forbidden { .. })),
        "{wrong:?}"
    );
    gitlab.set_registration_disabled(true);
    let gone = api.register(REGISTRATION_TOKEN, &params, &info()).await;
    assert!(matches!(gone, Err(ApiError::Gone { .. })), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_the_json_answer_and_records_the_manager() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let verified = client(&gitlab)
        .verify(&token, SYSTEM_ID, &info())
        .await
        .expect("verified");
    assert_eq!(verified.id, Some(gitlab.runner(&token).unwrap().id));
    assert_eq!(verified.token.as_deref(), Some(token.as_str()));
    assert!(verified.token_expires_at.is_some());
    assert_eq!(gitlab.runner(&token).unwrap().managers, [SYSTEM_ID]);
    let request = &gitlab.requests_to(Endpoint::Verify)[0];
    assert_eq!(request.header("runner-token"), Some(token.as_str()));
    assert_eq!(request.json()["system_id"], SYSTEM_ID);
    assert!(request.json()["info"]["features"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_accepts_the_plain_200_of_older_gitlab() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    gitlab.set_verify_plain_text(true);
    let verified = client(&gitlab)
        .verify(&token, SYSTEM_ID, &info())
        .await
        .expect("verified");
    assert_eq!((verified.id, verified.token), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_tells_unknown_and_orphaned_runners_apart() {
    let gitlab = FakeGitLab::start().await;
    let api = client(&gitlab);
    let unknown = api.verify("glrt-t1_unknown", SYSTEM_ID, &info()).await;
    assert!(
        matches!(unknown, Err(ApiError::Forbidden { .. })),
        "{unknown:?}"
    );
    let token = gitlab.create_runner();
    gitlab.set_orphaned(&token, true);
    let orphaned = api.verify(&token, SYSTEM_ID, &info()).await;
    assert!(
        matches!(orphaned, Err(ApiError::Orphaned { .. })),
        "{orphaned:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregister_manager_then_runner() {
    let gitlab = FakeGitLab::start().await;
    let api = client(&gitlab);
    let token = gitlab.create_runner();
    api.verify(&token, SYSTEM_ID, &info())
        .await
        .expect("verify");
    api.unregister_manager(&token, SYSTEM_ID)
        .await
        .expect("manager removed");
    assert!(gitlab.runner(&token).unwrap().managers.is_empty());
    let again = api.unregister_manager(&token, SYSTEM_ID).await;
    assert!(matches!(again, Err(ApiError::NotFound { .. })), "{again:?}");

    api.unregister(&token).await.expect("runner removed");
    assert!(gitlab.runner(&token).is_none());
    let again = api.unregister(&token).await;
    assert!(
        matches!(again, Err(ApiError::Forbidden { .. })),
        "{again:?}"
    );
    let request = &gitlab.requests_to(Endpoint::Unregister)[0];
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.json()["token"], token.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_token_replaces_the_runner_token() {
    let gitlab = FakeGitLab::start().await;
    let api = client(&gitlab);
    let token = gitlab.create_runner();
    let reset = api.reset_token(&token).await.expect("reset");
    assert_ne!(reset.token, token);
    assert!(reset.token_expires_at.is_some());
    assert!(gitlab.runner(&reset.token).is_some());
    let old = api.verify(&token, SYSTEM_ID, &info()).await;
    assert!(matches!(old, Err(ApiError::Forbidden { .. })));
}
