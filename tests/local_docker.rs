//! `runner exec`/`pipeline` with jobs in Docker containers, against the
//! real daemon and the locally built `local/busybox:runner-test` image
//! (`scripts/docker-setup` installs and builds both).

use std::process::Command;

use crate::support::{LocalProject, RunResult, processes_with};

const IMAGE: &str = "local/busybox:runner-test";

/// The runner's containers, networks and volumes still there for the
/// project `p` (other tests run beside this one).
fn leftovers(p: &LocalProject) -> Vec<String> {
    let state = std::fs::read_dir(p.state.path().join("projects"))
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .unwrap_or_default();
    let owner = format!("label=io.runner.owner=local-{state}");
    let mut found = Vec::new();
    for kind in ["container", "network", "volume"] {
        let mut args = vec![kind, "ls", "-q", "--filter", owner.as_str()];
        if kind == "container" {
            args.insert(2, "-a");
        }
        let out = Command::new("docker")
            .args(&args)
            .output()
            .expect("the docker CLI runs (scripts/docker-setup installs it)");
        assert!(
            out.status.success(),
            "docker {kind} ls failed; run scripts/docker-setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        found.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|id| format!("{kind} {id}")),
        );
    }
    found
}

#[test]
fn a_job_with_an_image_runs_in_a_container_at_gitlabs_path() {
    let p = LocalProject::new(&format!(
        "job:\n  image: {IMAGE}\n  script:\n    - echo \"dir=$CI_PROJECT_DIR\"\n    - pwd\n    - head -n 1 .gitlab-ci.yml\n"
    ));
    let r = p.run(&["exec", "job"]);
    r.assert_code(0)
        .assert_stdout_has(&format!("Using Docker executor with image {IMAGE} ..."))
        // GitLab's layout: /builds/<namespace>/<project>, no job segment.
        .assert_stdout_has("dir=/builds/local/")
        .assert_stdout_has("job:");
}

#[test]
fn auto_runs_jobs_without_an_image_in_the_shell() {
    let p = LocalProject::new(&format!(
        "in-docker:\n  image: {IMAGE}\n  script: [echo from-docker]\nin-shell:\n  script: [echo from-shell]\n"
    ));
    let r = p.run(&["pipeline"]);
    r.assert_code(0)
        .assert_stdout_has("Using Shell (bash) executor...")
        .assert_stdout_has("Using Docker executor with image")
        .assert_stdout_has("from-docker")
        .assert_stdout_has("from-shell");
}

#[test]
fn artifacts_and_cache_written_as_root_in_a_container_reach_the_next_job() {
    let ci = format!(
        r#"
stages: [build, test]
build:
  stage: build
  image: {IMAGE}
  cache:
    key: c
    paths: [cache-dir/]
  script:
    - mkdir -p out cache-dir && echo built > out/file && echo cached > cache-dir/x
    - chmod 600 out/file
  artifacts:
    paths: [out/]
test:
  stage: test
  image: {IMAGE}
  script: [cat out/file]
"#
    );
    let p = LocalProject::new(&ci);
    p.run(&["pipeline"])
        .assert_code(0)
        .assert_stdout_has("Created cache")
        .assert_stdout_has("│ built");
    // A second run starts from the root-owned files of the first.
    p.run(&["pipeline"])
        .assert_code(0)
        .assert_stdout_has("│ built");
    assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));
}

#[test]
fn a_service_is_reached_by_its_alias() {
    let ci = format!(
        r#"
job:
  image: {IMAGE}
  services:
    - name: {IMAGE}
      alias: echo-server
      command: ["nc", "-ll", "-p", "8080", "-e", "echo", "pong"]
  script:
    - for i in 1 2 3 4 5 6 7 8 9 10; do nc echo-server 8080 </dev/null && break; sleep 0.5; done
"#
    );
    let p = LocalProject::new(&ci);
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_has(&format!("Starting service {IMAGE} ..."))
        .assert_stdout_has("pong");
    assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));
}

#[test]
fn a_timeout_leaves_no_container_behind() {
    let p = LocalProject::new(&format!("job:\n  image: {IMAGE}\n  script: [sleep 300]\n"));
    p.run(&["exec", "job", "--timeout", "2s"])
        .assert_code(1)
        .assert_stdout_has("execution took longer than 2 seconds");
    assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));
}

#[test]
fn a_daemon_that_does_not_answer_is_one_clear_error() {
    let p = LocalProject::new(&format!("job:\n  image: {IMAGE}\n  script: [echo hi]\n"));
    let out = crate::support::runner(p.path())
        .env("RUNNER_STATE_DIR", p.state.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["exec", "job"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "cannot reach the docker daemon at unix:///nonexistent/docker.sock (from DOCKER_HOST)"
        ),
        "{stderr}"
    );
    // A pipeline without images needs no daemon at all.
    let p = LocalProject::new("job:\n  script: [echo hi]\n");
    let out = crate::support::runner(p.path())
        .env("RUNNER_STATE_DIR", p.state.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["exec", "job"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn cleanup_removes_what_a_killed_runner_left() {
    let token = format!("{}", 700_000 + std::process::id() % 90_000);
    let ci = format!(
        "job:\n  image: {IMAGE}\n  services:\n    - name: {IMAGE}\n      alias: svc\n      command: [sleep, \"{token}\"]\n  script: [sleep {token}]\n"
    );
    let p = LocalProject::new(&ci);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("runner"))
        .args(["exec", "job", "-q"])
        .current_dir(p.path())
        .env("RUNNER_STATE_DIR", p.state.path())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while processes_with(&format!("sleep {token}")).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !leftovers(&p).is_empty(),
        "the kill should leave the job's objects"
    );
    let out = crate::support::runner(p.path())
        .env("RUNNER_STATE_DIR", p.state.path())
        .args(["cleanup"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed container"));
    assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));
    assert!(processes_with(&format!("sleep {token}")).is_empty());
}

#[test]
fn a_failed_job_shows_its_services_logs_and_knows_its_network() {
    let ci = format!(
        r#"
job:
  image: {IMAGE}
  services:
    - name: {IMAGE}
      alias: chatty
      command: ["sh", "-c", "echo service-says-hello; sleep 300"]
  script:
    - echo "network=$CI_BUILD_NETWORK_NAME"
    - sleep 1
    - exit 4
"#
    );
    let p = LocalProject::new(&ci);
    let r = p.run(&["exec", "job"]);
    r.assert_code(1)
        .assert_stdout_has(&format!("Service {IMAGE} logs"))
        .assert_stdout_has("service-says-hello")
        .assert_stdout_has("ERROR: Job failed: exit code 4");
    assert!(!r.stdout.contains("network=\n"), "{}", r.stdout);
    assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));
}

#[test]
fn executor_docker_without_an_image_says_how_to_give_one() {
    let p = LocalProject::new("a:\n  script: [echo a]\nb:\n  script: [echo b]\n");
    let r = p.run(&["pipeline", "--executor", "docker"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains(
            "--executor docker: jobs `a`, `b` name no image; give one with --docker-image IMAGE"
        ),
        "{}",
        r.stderr
    );
    p.run(&["exec", "a", "--executor", "docker", "--docker-image", IMAGE])
        .assert_code(0)
        .assert_stdout_has("Preparing the \"docker\" executor")
        .assert_stdout_has("Job succeeded");
}

/// `runner <args>` in `p` with `RUNNER_DOCKER_BUILDS` set to `builds`.
fn run_with_builds(p: &LocalProject, builds: &str, args: &[&str]) -> RunResult {
    let out = crate::support::runner(p.path())
        .env("RUNNER_STATE_DIR", p.state.path())
        .env("RUNNER_DOCKER_BUILDS", builds)
        .args(args)
        .output()
        .unwrap();
    RunResult {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// With the builds dir copied in and out of the containers (as for a
/// remote daemon), what a job writes still becomes its artifacts and its
/// cache, and both come back into later jobs' containers.
#[test]
fn copied_builds_carry_artifacts_and_cache_both_ways() {
    let ci = format!(
        r#"
stages: [build, test]
build:
  stage: build
  image: {IMAGE}
  cache:
    key: c
    paths: [cache-dir/]
  script:
    - echo "mounted=$(grep ' /builds ' /proc/self/mountinfo | cut -d' ' -f4)"
    - cat cache-dir/x || echo no-cache
    - mkdir -p out cache-dir && echo built-$RUN > out/file && echo cached-$RUN > cache-dir/x
  artifacts:
    paths: [out/]
test:
  stage: test
  image: {IMAGE}
  script: [cat out/file]
"#
    );
    let p = LocalProject::new(&ci);
    let r = run_with_builds(&p, "copy", &["exec", "build", "--var", "RUN=1"]);
    r.assert_code(0)
        .assert_stdout_has("no-cache")
        .assert_stdout_has("Creating cache c-non_protected...")
        .assert_stdout_has("Uploading artifacts");
    // The container's /builds is a volume of the daemon's, not this
    // machine's directory.
    let mounted = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("mounted=").map(|m| m.trim().to_owned()))
        .unwrap_or_default();
    assert!(mounted.ends_with("-builds/_data"), "{}", r.stdout);

    run_with_builds(&p, "copy", &["exec", "test"])
        .assert_code(0)
        .assert_stdout_has("built-1");
    run_with_builds(&p, "copy", &["exec", "build", "--var", "RUN=2"])
        .assert_code(0)
        .assert_stdout_has("cached-1");
    assert!(leftovers(&p).is_empty(), "{:?}", leftovers(&p));
}

#[test]
fn an_unknown_builds_transfer_is_one_clear_error() {
    let p = LocalProject::new(&format!("job:\n  image: {IMAGE}\n  script: [echo hi]\n"));
    let r = run_with_builds(&p, "nfs", &["exec", "job"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "RUNNER_DOCKER_BUILDS: unknown builds transfer \"nfs\": expected auto, bind or copy"
        ),
        "{}",
        r.stderr
    );
}

/// An image that is not here, from a registry that cannot be reached:
/// the log says which image, what the daemon answered, and how to make
/// the image locally.
#[test]
fn an_unpullable_image_names_itself_and_hints_at_a_local_one() {
    let image = "127.0.0.1:1/never-built:runner-test";
    let p = LocalProject::new(&format!("job:\n  image: {image}\n  script: [echo hi]\n"));
    p.run(&["exec", "job"])
        .assert_code(1)
        .assert_stdout_has(&format!(
            "WARNING: image {image} is not on this machine and no registry is reachable: make it locally with `docker load`, `docker import` or `docker build`"
        ))
        .assert_stdout_has(&format!("failed to pull image {image}: "))
        .assert_stdout_has("127.0.0.1:1");
}

#[test]
fn an_image_with_bash_runs_the_script_in_bash_and_one_without_in_sh() {
    // `local/bash:runner-test` is the busybox image plus bash, built by
    // scripts/docker-setup.
    let p = LocalProject::new(&format!(
        "with_bash:\n  image: local/bash:runner-test\n  script:\n    - echo \"bash=${{BASH_VERSION:-none}}\"\n    - '[[ a == a ]] && echo double brackets work'\n    - printf 'raw\\tescapes\\n'\n\
         without_bash:\n  image: {IMAGE}\n  script:\n    - echo \"bash=${{BASH_VERSION:-none}}\"\n"
    ));
    let r = p.run(&["exec", "with_bash"]);
    r.assert_code(0)
        .assert_stdout_has("double brackets work")
        .assert_stdout_lacks("bash=none")
        // The echoed commands are printed as they are, not garbled by the
        // shell's quoting.
        .assert_stdout_has("$ [[ a == a ]] && echo double brackets work");
    assert!(
        r.stdout.contains("bash=5") || r.stdout.contains("bash=4"),
        "{}",
        r.stdout
    );
    let r = p.run(&["exec", "without_bash"]);
    r.assert_code(0).assert_stdout_has("bash=none");
}
