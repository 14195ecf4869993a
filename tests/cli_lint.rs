//! `runner lint` as a user runs it: exit codes, and errors that name the
//! file, line and key.

use predicates::prelude::*;

use crate::support::{TempRepo, runner};

#[test]
fn a_valid_pipeline_exits_0_and_says_so() {
    let repo = TempRepo::new();
    repo.write(".gitlab-ci.yml", "build:\n  script: make\n")
        .commit_all("init");
    runner(repo.path())
        .arg("lint")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            ".gitlab-ci.yml: valid (1 job, 1 file read)",
        ));
}

#[test]
fn rule_10_wrong_script_type_names_file_line_and_key_in_gitlab_wording() {
    let repo = TempRepo::new();
    repo.write(
        ".gitlab-ci.yml",
        "build:\n  stage: build\n  script:\n    - echo: hi\n",
    );
    runner(repo.path()).arg("lint").assert().code(1).stderr(
        predicate::str::contains(
            ".gitlab-ci.yml:4:5: jobs:build:script config should be a string or a nested array of strings up to 10 levels deep",
        )
        .and(predicate::str::contains("4 |     - echo: hi")),
    );
}

#[test]
fn unknown_keys_are_reported_with_their_position() {
    let repo = TempRepo::new();
    repo.write(".gitlab-ci.yml", "test:\n  script: make\n  scritp: typo\n");
    runner(repo.path())
        .arg("lint")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            ".gitlab-ci.yml:3:3: jobs:test config contains unknown keys: scritp",
        ));
}

#[test]
fn a_yaml_syntax_error_has_a_position_and_no_panic() {
    let repo = TempRepo::new();
    repo.write(
        ".gitlab-ci.yml",
        "build:\n  script: [make\n  stage: build\n",
    );
    runner(repo.path())
        .arg("lint")
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(".gitlab-ci.yml:")
                .and(predicate::str::contains("invalid YAML")),
        )
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn errors_in_included_files_name_the_included_file() {
    let repo = TempRepo::new();
    repo.write(
        ".gitlab-ci.yml",
        "include: ci/jobs.yml\nbuild:\n  script: make\n",
    );
    repo.write("ci/jobs.yml", "test:\n  script: make\n  when: sometimes\n");
    runner(repo.path())
        .arg("lint")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ci/jobs.yml:3:"))
        .stderr(predicate::str::contains("jobs:test when should be one of"));
}

#[test]
fn rule_44_include_that_cannot_be_fetched_offline_is_named() {
    let repo = TempRepo::new();
    repo.write(
        ".gitlab-ci.yml",
        "include:\n  - remote: https://example.com/ci/base.yml\nbuild:\n  script: make\n",
    );
    runner(repo.path())
        .args(["lint", "--offline"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            ".gitlab-ci.yml:2:5: Remote file `https://example.com/ci/base.yml`",
        ))
        .stderr(predicate::str::contains("1 error found"));
}

#[test]
fn a_missing_configuration_file_is_a_runner_error() {
    let repo = TempRepo::new();
    runner(repo.path())
        .arg("lint")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot read"));
}

#[test]
fn usage_errors_exit_2() {
    let repo = TempRepo::new();
    runner(repo.path())
        .args(["lint", "--no-such-flag"])
        .assert()
        .code(2);
    runner(repo.path())
        .args(["plan", "--var", "novalue"])
        .assert()
        .code(2);
}

#[test]
fn fragment_mode_accepts_what_the_including_file_provides() {
    let repo = TempRepo::new();
    repo.write(
        "templates/job.yml",
        "spec:\n  inputs:\n    stage:\n---\nlint:\n  extends: .from-includer\n  stage: $[[ inputs.stage ]]\n  needs: [build]\n",
    );
    // As a pipeline it is incomplete...
    runner(repo.path())
        .args(["lint", "--file", "templates/job.yml"])
        .assert()
        .code(1);
    // ...as a file meant to be included, everything it says is valid.
    runner(repo.path())
        .args(["lint", "--fragment", "--file", "templates/job.yml"])
        .assert()
        .code(0);
    // Fragment mode still checks every keyword the file sets.
    repo.write(
        "templates/bad.yml",
        "lint:\n  extends: .from-includer\n  retry: ten\n",
    );
    runner(repo.path())
        .args(["lint", "--fragment", "--file", "templates/bad.yml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("templates/bad.yml:3:"));
}

#[test]
fn inputs_can_be_given_on_the_command_line() {
    let repo = TempRepo::new();
    repo.write(
        ".gitlab-ci.yml",
        "spec:\n  inputs:\n    jobs:\n      type: number\n---\nbuild:\n  script: make\n  parallel: $[[ inputs.jobs ]]\n",
    );
    runner(repo.path())
        .arg("lint")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("`jobs` input"));
    runner(repo.path())
        .args(["lint", "--input", "jobs=3"])
        .assert()
        .code(0);
}
