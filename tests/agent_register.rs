//! `runner register`, `verify`, `unregister` against the fake GitLab:
//! the real binary writing a real `config.toml`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use crate::support::fake_gitlab::{Endpoint, FakeGitLab, REGISTRATION_TOKEN};

/// Runs `runner ARGS` off the runtime's threads (the fake GitLab answers
/// on them meanwhile).
async fn runner(args: Vec<String>, stdin: &str) -> Output {
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("runner")
            .expect("runner binary")
            .args(&args)
            .env_remove("RUNNER_CONFIG")
            .write_stdin(stdin)
            .output()
            .expect("runner runs")
    })
    .await
    .expect("join")
}

fn args(list: &[&str], config: &Path) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.push("--config".into());
    v.push(config.display().to_string());
    v
}

const HAND_WRITTEN: &str =
    "# Our build host.\nconcurrent = 2   # two at once\n\n# Poll often.\ncheck_interval = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_an_authentication_token_verifies_and_keeps_the_files_comments() {
    let gitlab = FakeGitLab::start().await;
    let token = gitlab.create_runner();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, HAND_WRITTEN).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();

    let out = runner(
        args(
            &[
                "register",
                "--non-interactive",
                "--url",
                &gitlab.url(),
                "--token",
                &token,
                "--executor",
                "shell",
                "--name",
                "host-1",
            ],
            &config,
        ),
        "",
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The runner was verified, not created: this host is now a manager.
    assert_eq!(gitlab.requests_to(Endpoint::Verify).len(), 1);
    assert!(gitlab.requests_to(Endpoint::Register).is_empty());
    assert_eq!(gitlab.runner(&token).unwrap().managers.len(), 1);

    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with(HAND_WRITTEN), "{text}");
    assert!(text.contains("name = \"host-1\""), "{text}");
    assert!(text.contains(&format!("token = \"{token}\"")), "{text}");
    assert!(text.contains("executor = \"shell\""), "{text}");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The token is a secret: the command only shows its short form.
    assert!(!stdout.contains(&token), "{stdout}");
    // The system id sits beside the file.
    assert!(dir.path().join(".runner_system_id").is_file());

    // `list` and `verify` see it.
    let out = runner(args(&["verify"], &config), "").await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid: host-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_with_a_registration_token_creates_the_runner_with_its_settings() {
    let gitlab = FakeGitLab::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sub/config.toml");
    // Interactive: the answers come on standard input.
    let answers = format!(
        "{}\n{REGISTRATION_TOKEN}\nbuilder\ndocker\nalpine:3.20\n",
        gitlab.url()
    );
    let out = runner(
        args(
            &["register", "--tag-list", "linux, docker", "--locked"],
            &config,
        ),
        &answers,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runners = gitlab.runners();
    assert_eq!(runners.len(), 1);
    let body = runners[0].registration.clone().expect("registered");
    assert_eq!(body["tag_list"], "linux,docker");
    assert_eq!(body["locked"], true);
    assert_eq!(body["info"]["executor"], "docker");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("token = \"{}\"", runners[0].token)),
        "{text}"
    );
    assert!(text.contains("image = \"alpine:3.20\""), "{text}");
    let dir_mode = std::fs::metadata(config.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);

    // Unregistering removes this host from the runner in GitLab (its token
    // is a `glrt-` one, as gitlab-runner decides) and the entry from the
    // file.
    let out = runner(args(&["unregister", "--name", "builder"], &config), "").await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gitlab.requests_to(Endpoint::UnregisterManager).len(), 1);
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains("builder"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_changes_nothing_and_says_why() {
    let gitlab = FakeGitLab::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, HAND_WRITTEN).unwrap();
    let out = runner(
        args(
            &[
                "register",
                "--non-interactive",
                "--url",
                &gitlab.url(),
                "--token",
                "glrt-unknown-token-value",
                "--executor",
                "shell",
            ],
            &config,
        ),
        "",
    )
    .await;
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("verifying the runner failed"), "{stderr}");
    assert!(!stderr.contains("glrt-unknown-token-value"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), HAND_WRITTEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_delete_removes_runners_gitlab_no_longer_knows() {
    let gitlab = FakeGitLab::start().await;
    let known = gitlab.create_runner();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "concurrent = 1\n\n[[runners]]\n  name = \"kept\"\n  url = \"{0}\"\n  token = \"{known}\"\n  executor = \"shell\"\n\n[[runners]]\n  name = \"gone\"\n  url = \"{0}\"\n  token = \"glrt-deleted-in-gitlab\"\n  executor = \"shell\"\n",
            gitlab.url()
        ),
    )
    .unwrap();
    let out = runner(args(&["verify"], &config), "").await;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("is removed: gone"), "{stdout}");
    let out = runner(args(&["verify", "--delete"], &config), "").await;
    assert!(out.status.success());
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("\"kept\"") && !text.contains("\"gone\""),
        "{text}"
    );
}
