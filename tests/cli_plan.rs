//! `runner plan` as a user runs it, in real git repositories: which jobs
//! GitLab would create for a ref and source, and why.

use predicates::prelude::*;
use serde_json::Value;

use crate::support::{TempRepo, runner};

const PIPELINE: &str = r#"
stages: [build, test, deploy]
variables:
  APP: hello
  GREETING: "hi from $APP"
  WHERE: "on $CI_COMMIT_REF_NAME"
default:
  image: alpine:3.20
build:
  stage: build
  script: make
test:
  stage: test
  needs: [build]
  parallel:
    matrix:
      - OS: [linux, mac]
        MODE: [debug]
  script: make test
deploy:
  stage: deploy
  script: make deploy
  rules:
    - if: $CI_COMMIT_TAG
    - if: $CI_COMMIT_BRANCH == "main"
      when: manual
    - when: never
"#;

fn repo() -> TempRepo {
    let repo = TempRepo::new();
    repo.write(".gitlab-ci.yml", PIPELINE).commit_all("init");
    repo
}

fn plan_json(repo: &TempRepo, extra: &[&str]) -> Value {
    let out = runner(repo.path())
        .arg("plan")
        .arg("--json")
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn job<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .unwrap_or_else(|| panic!("no job {name}"))
}

#[test]
fn rule_83_branch_pipeline_on_main_makes_deploy_manual() {
    let plan = plan_json(&repo(), &[]);
    assert_eq!(plan["schema_version"], 1);
    assert_eq!(plan["created"], true);
    let stages: Vec<&str> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["build", "test", "deploy"]);
    let deploy = job(&plan, "deploy");
    assert_eq!(deploy["when"], "manual");
    // Rule 131: `when: manual` inside rules makes a blocking job.
    assert_eq!(deploy["allow_failure"], false);
    assert_eq!(deploy["decided_by"]["kind"], "rule");
    assert_eq!(deploy["decided_by"]["index"], 1);
}

#[test]
fn rule_83_tag_pipeline_runs_deploy_on_success() {
    let repo = repo();
    repo.git(&["tag", "v1.0"]);
    let plan = plan_json(&repo, &["--ref", "v1.0"]);
    assert_eq!(job(&plan, "deploy")["when"], "on_success");
    assert_eq!(job(&plan, "deploy")["decided_by"]["index"], 0);
}

#[test]
fn rule_80_no_matching_rule_leaves_the_job_out() {
    let repo = repo();
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let plan = plan_json(&repo, &[]);
    assert!(
        plan["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["name"] != "deploy")
    );
    let skipped: Vec<&str> = plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["deploy"]);
}

#[test]
fn rule_225_matrix_jobs_are_named_as_gitlab_names_them() {
    let plan = plan_json(&repo(), &[]);
    let linux = job(&plan, "test: [linux, debug]");
    assert_eq!(linux["variables"]["OS"], "linux");
    assert_eq!(job(&plan, "test: [mac, debug]")["stage"], "test");
    assert_eq!(linux["needs"][0]["job"], "build");
}

#[test]
fn rule_36_defaults_and_rule_180_expanded_variables_reach_each_job() {
    let plan = plan_json(&repo(), &[]);
    let build = job(&plan, "build");
    assert_eq!(build["image"], "alpine:3.20");
    assert_eq!(build["variables"]["GREETING"], "hi from hello");
    // Predefined variables are expanded where the YAML uses them.
    assert_eq!(build["variables"]["WHERE"], "on main");
}

#[test]
fn rule_123_jobs_without_rules_are_not_in_merge_request_pipelines() {
    let plan = plan_json(&repo(), &["--pipeline-source", "merge_request_event"]);
    assert!(
        plan["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["name"] != "build")
    );
}

#[test]
fn rule_182_command_line_variables_win() {
    let plan = plan_json(&repo(), &["--var", "APP=override"]);
    assert_eq!(
        job(&plan, "build")["variables"]["GREETING"],
        "hi from override"
    );
}

#[test]
fn rule_72_workflow_rules_can_prevent_the_pipeline() {
    let repo = TempRepo::new();
    repo.write(
        ".gitlab-ci.yml",
        "workflow:\n  rules:\n    - if: $CI_COMMIT_TAG\nbuild:\n  script: make\n",
    )
    .commit_all("init");
    let plan = plan_json(&repo, &[]);
    assert_eq!(plan["created"], false);
    assert!(plan["jobs"].as_array().unwrap().is_empty());
}

#[test]
fn why_explains_each_rule_and_expression() {
    let repo = repo();
    runner(repo.path())
        .args(["plan", "--why", "deploy"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("$CI_COMMIT_BRANCH == \"main\""))
        .stdout(predicate::str::contains(".gitlab-ci.yml:"))
        .stdout(predicate::str::contains("manual"));
}

#[test]
fn why_an_unknown_job_suggests_the_nearest_name() {
    runner(repo().path())
        .args(["plan", "--why", "deplyo"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `deploy`"));
}

#[test]
fn text_output_lists_stages_in_order() {
    let out = runner(repo().path()).arg("plan").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let build = text.find("build").unwrap();
    let deploy = text.find("deploy").unwrap();
    assert!(build < deploy, "{text}");
    assert!(!text.contains('\u{1b}'), "no colour when not a terminal");
}

#[test]
fn rule_144_needing_a_job_left_out_by_rules_is_an_error() {
    let repo = TempRepo::new();
    repo.write(
        ".gitlab-ci.yml",
        "a:\n  script: x\n  rules:\n    - if: $NOPE\nb:\n  script: y\n  needs: [a]\n",
    )
    .commit_all("init");
    runner(repo.path())
        .arg("plan")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("'b' job needs 'a' job"));
}
