//! `runner pipeline` as a user runs it: stage order, the `needs` graph,
//! artifacts and dotenv between jobs, and GitLab's rules for when jobs run
//! and whether the pipeline passed.

use crate::support::{LocalProject, RunResult};

/// The summary line of `job`: `name  stage  status ...`.
fn summary_status(r: &RunResult, job: &str) -> String {
    let line = r
        .stdout
        .lines()
        .rev()
        .find(|l| l.split("  ").next() == Some(job))
        .unwrap_or_else(|| panic!("no summary line for {job}:\n{}", r.stdout));
    line.split_whitespace().nth(2).unwrap_or("").to_owned()
}

#[test]
fn jobs_run_in_stage_order_and_hand_artifacts_on() {
    let ci = r#"
stages: [build, test]
build:
  stage: build
  script:
    - mkdir -p out/sub && echo lib > out/sub/lib.txt && echo log > out/build.log
    - ln -s sub/lib.txt out/link
  artifacts:
    paths: [out/]
    exclude: [out/*.log]
test:
  stage: test
  script:
    - cat out/sub/lib.txt
    - test -L out/link && echo link-kept
    - test ! -e out/build.log && echo log-excluded
"#;
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline"]);
    r.assert_code(0)
        .assert_stdout_has("│ lib")
        .assert_stdout_has("link-kept")
        .assert_stdout_has("log-excluded")
        .assert_stdout_has("passed");
    assert_eq!(summary_status(&r, "build"), "success");
    assert_eq!(summary_status(&r, "test"), "success");
}

#[test]
fn rule_153_empty_dependencies_download_nothing_and_rule_146_needs_artifacts_false() {
    let ci = r#"
stages: [build, test]
build:
  stage: build
  script: [echo x > file.txt]
  artifacts: {paths: [file.txt]}
none:
  stage: test
  dependencies: []
  script: [test ! -e file.txt && echo none-ok]
no-artifacts:
  stage: test
  needs: [{job: build, artifacts: false}]
  script: [test ! -e file.txt && echo needs-ok]
"#;
    let p = LocalProject::new(ci);
    p.run(&["pipeline"])
        .assert_code(0)
        .assert_stdout_has("none-ok")
        .assert_stdout_has("needs-ok");
}

#[test]
fn rule_152_dotenv_variables_reach_dependent_jobs() {
    let ci = r#"
stages: [build, test]
build:
  stage: build
  script: [echo "VERSION=1.2.3" > build.env]
  artifacts:
    reports:
      dotenv: build.env
test:
  stage: test
  script: [echo "version=$VERSION"]
"#;
    let p = LocalProject::new(ci);
    p.run(&["pipeline"])
        .assert_code(0)
        .assert_stdout_has("version=1.2.3");
}

#[test]
fn a_failed_job_skips_later_stages_and_on_failure_jobs_run() {
    let ci = r#"
stages: [build, test, cleanup]
build:
  stage: build
  script: [exit 1]
test:
  stage: test
  script: [echo test-ran]
report:
  stage: cleanup
  when: on_failure
  script: [echo report-ran]
always:
  stage: cleanup
  when: always
  script: [echo always-ran]
"#;
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline"]);
    r.assert_code(1)
        .assert_stdout_lacks("test-ran")
        .assert_stdout_has("report-ran")
        .assert_stdout_has("always-ran");
    assert_eq!(summary_status(&r, "build"), "failed");
    assert_eq!(summary_status(&r, "test"), "skipped");
}

#[test]
fn rule_138_allow_failure_exit_codes_allow_only_the_listed_codes() {
    let ci = r#"
allowed:
  script: [exit 3]
  allow_failure: {exit_codes: [3]}
"#;
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline"]);
    r.assert_code(0);
    let ci = r#"
not-allowed:
  script: [exit 4]
  allow_failure: {exit_codes: [3]}
"#;
    let p = LocalProject::new(ci);
    p.run(&["pipeline"]).assert_code(1);
}

#[test]
fn retry_runs_a_failed_job_again() {
    let ci = r#"
flaky:
  retry: 2
  script:
    - n=$(cat "$COUNTER" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$COUNTER"
    - echo attempt-$n
    - test $n -ge 2
"#;
    let p = LocalProject::new(ci);
    let counter = p.state.path().join("counter");
    let r = p.run(&[
        "pipeline",
        "--var",
        &format!("COUNTER={}", counter.display()),
    ]);
    r.assert_code(0)
        .assert_stdout_has("attempt-2")
        .assert_stdout_has("(2 tries)");
}

#[test]
fn rule_221_parallel_instances_get_their_node_index() {
    let ci = "test:\n  parallel: 3\n  script: [echo \"node $CI_NODE_INDEX of $CI_NODE_TOTAL\"]\n\
              matrix:\n  parallel:\n    matrix:\n      - OS: [linux, mac]\n  script: [echo \"os=$OS\"]\n";
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline"]);
    r.assert_code(0)
        .assert_stdout_has("node 1 of 3")
        .assert_stdout_has("node 3 of 3")
        .assert_stdout_has("os=linux")
        .assert_stdout_has("os=mac");
    assert!(r.stdout.contains("test 2/3"), "{}", r.stdout);
    assert!(r.stdout.contains("matrix: [mac]"), "{}", r.stdout);
}

#[test]
fn rule_131_manual_jobs_wait_for_the_user_unless_named() {
    let ci = "build:\n  script: [echo build-ran]\ndeploy:\n  when: manual\n  script: [echo deploy-ran]\n";
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline"]);
    r.assert_code(0).assert_stdout_lacks("deploy-ran");
    assert_eq!(summary_status(&r, "deploy"), "manual");
    p.run(&["pipeline", "--manual", "deploy"])
        .assert_code(0)
        .assert_stdout_has("deploy-ran");
}

#[test]
fn rule_135_a_delayed_job_starts_after_its_delay() {
    let ci = "later:\n  when: delayed\n  start_in: 1 second\n  script: [echo delayed-ran]\n";
    let p = LocalProject::new(ci);
    let started = std::time::Instant::now();
    p.run(&["pipeline"])
        .assert_code(0)
        .assert_stdout_has("delayed-ran");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
}

#[test]
fn rule_141_needs_start_a_job_before_its_stage() {
    let ci = r#"
stages: [build, test, deploy]
slow:
  stage: build
  script: [sleep 1, echo slow-done]
fast:
  stage: build
  script: [echo fast-done]
early:
  stage: deploy
  needs: [fast]
  script: [echo early-ran]
"#;
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline", "--jobs", "3"]);
    r.assert_code(0);
    let early = r.stdout.find("early-ran").expect("early ran");
    let slow = r.stdout.find("slow-done").expect("slow ran");
    assert!(early < slow, "`early` waited for `slow`:\n{}", r.stdout);
}

#[test]
fn trigger_jobs_are_shown_as_skipped() {
    let ci = "build:\n  script: [echo ok]\ndownstream:\n  trigger: group/other\n";
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline"]);
    r.assert_code(0);
    assert_eq!(summary_status(&r, "downstream"), "skipped");
}

#[test]
fn every_job_keeps_its_full_log_in_a_file_the_summary_names() {
    let ci = "a:\n  script: [echo from-a]\nb:\n  script: [echo from-b]\n";
    let p = LocalProject::new(ci);
    let r = p.run(&["pipeline", "--quiet"]);
    r.assert_code(0).assert_stdout_lacks("from-a");
    let log = r
        .stdout
        .lines()
        .find(|l| l.starts_with("a "))
        .and_then(|l| l.split_whitespace().last())
        .expect("log path in the summary")
        .to_owned();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("from-a") && text.contains("Job succeeded"),
        "{text}"
    );
}

#[test]
fn stage_filter_runs_only_that_stage() {
    let ci = "stages: [build, test]\nbuild:\n  stage: build\n  script: [echo build-ran]\ntest:\n  stage: test\n  script: [echo test-ran]\n";
    let p = LocalProject::new(ci);
    p.run(&["pipeline", "--stage", "test"])
        .assert_code(0)
        .assert_stdout_has("test-ran")
        .assert_stdout_lacks("build-ran");
    let r = p.run(&["pipeline", "--stage", "nope"]);
    r.assert_code(2);
    assert!(r.stderr.contains("no stage `nope`"), "{}", r.stderr);
}
