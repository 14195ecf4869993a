//! `runner exec JOB` as a user runs it: one job in a real repository, with
//! the shell executor, checked by what the job printed and left behind.

use std::os::unix::fs::PermissionsExt;

use crate::support::{LocalProject, processes_with};

#[test]
fn a_job_runs_its_script_and_succeeds() {
    let p = LocalProject::new("hello:\n  script:\n    - echo \"hi from $CI_JOB_NAME\"\n");
    p.run(&["exec", "hello"])
        .assert_code(0)
        .assert_stdout_has("$ echo \"hi from $CI_JOB_NAME\"")
        .assert_stdout_has("hi from hello")
        .assert_stdout_has("Job succeeded")
        .assert_stdout_lacks("section_start");
    // The log file keeps GitLab's section markers.
    assert!(p.logs().contains("section_start:"), "{}", p.logs());
}

#[test]
fn rule_169_before_script_and_script_share_one_shell() {
    let p = LocalProject::new(
        "default:\n  before_script: [export FROM_BEFORE=yes]\njob:\n  script:\n    - echo \"before=$FROM_BEFORE\"\n",
    );
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_has("before=yes");
}

#[test]
fn a_failing_command_fails_the_job_with_its_exit_code() {
    let p = LocalProject::new("job:\n  script:\n    - echo one\n    - exit 3\n    - echo never\n");
    p.run(&["exec", "job"])
        .assert_code(1)
        .assert_stdout_has("ERROR: Job failed: exit code 3")
        .assert_stdout_lacks("\nnever");
}

#[test]
fn an_unknown_job_names_the_nearest_one() {
    let p = LocalProject::new("build:\n  script: [echo ok]\n");
    let r = p.run(&["exec", "biuld"]);
    r.assert_code(2);
    assert!(r.stderr.contains("did you mean `build`?"), "{}", r.stderr);
}

#[test]
fn a_job_left_out_by_rules_says_why() {
    let p = LocalProject::new("deploy:\n  script: [echo ok]\n  rules:\n    - if: $CI_COMMIT_TAG\n");
    let r = p.run(&["exec", "deploy"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("job `deploy` is not in this pipeline"),
        "{}",
        r.stderr
    );
}

#[test]
fn rule_171_after_script_sees_the_job_status_and_cannot_change_it() {
    let ci = "ok:\n  script: [echo ok]\n  after_script: [\"echo status=$CI_JOB_STATUS\", exit 7]\n\
              bad:\n  script: [exit 2]\n  after_script: [\"echo status=$CI_JOB_STATUS\"]\n";
    let p = LocalProject::new(ci);
    p.run(&["exec", "ok"])
        .assert_code(0)
        .assert_stdout_has("status=success")
        .assert_stdout_has("after_script failed, but job will continue unaffected");
    p.run(&["exec", "bad"])
        .assert_code(1)
        .assert_stdout_has("status=failed")
        .assert_stdout_has("exit code 2");
}

#[test]
fn rule_170_after_script_does_not_see_script_exports() {
    let p = LocalProject::new("job:\n  script: [export X=1]\n  after_script: [\"echo x=[$X]\"]\n");
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_has("x=[]");
}

#[test]
fn variables_from_yaml_command_line_and_var_file_with_masking_and_files() {
    let p = LocalProject::new(
        "variables:\n  A: yaml\n  B: yaml\njob:\n  script:\n    - echo \"A=$A B=$B\"\n    - echo \"token=$TOKEN\"\n    - echo \"key file=$KEY\"\n    - cat \"$KEY\"\n    - stat -c %a \"$KEY\"\n",
    );
    let var_file = p.state.path().join("vars.yml");
    std::fs::write(
        &var_file,
        "B: from-file\nTOKEN:\n  value: sup3r-s3cret-t0ken\n  masked: true\nKEY:\n  value: key-content\n  file: true\n",
    )
    .unwrap();
    let r = p.run(&[
        "exec",
        "job",
        "--var",
        "A=cli",
        "--var-file",
        var_file.to_str().unwrap(),
    ]);
    r.assert_code(0)
        .assert_stdout_has("A=cli B=from-file")
        .assert_stdout_has("token=[MASKED]")
        .assert_stdout_has("key-content")
        .assert_stdout_has("600")
        .assert_stdout_lacks("sup3r-s3cret-t0ken");
    assert!(!p.logs().contains("sup3r-s3cret-t0ken"));
    assert!(p.logs().contains("token=[MASKED]"));
}

#[test]
fn a_secret_split_across_output_writes_is_still_masked() {
    let p = LocalProject::new(
        "job:\n  script:\n    - printf 'x sup3r-s3'; sleep 0.2; printf 'cret-t0ken y\\n'\n",
    );
    let var_file = p.state.path().join("vars.yml");
    std::fs::write(
        &var_file,
        "TOKEN:\n  value: sup3r-s3cret-t0ken\n  masked: true\n",
    )
    .unwrap();
    p.run(&["exec", "job", "--var-file", var_file.to_str().unwrap()])
        .assert_code(0)
        .assert_stdout_has("x [MASKED] y")
        .assert_stdout_lacks("sup3r-s3cret");
}

#[test]
fn a_bad_var_file_is_a_one_line_error_naming_file_line_and_key() {
    let p = LocalProject::new("job:\n  script: [echo ok]\n");
    let var_file = p.state.path().join("vars.yml");
    std::fs::write(&var_file, "A:\n  value: x\n  masked: perhaps\n").unwrap();
    let r = p.run(&["exec", "job", "--var-file", var_file.to_str().unwrap()]);
    r.assert_code(2);
    assert!(
        r.stderr
            .contains("vars.yml:3:11: A: `masked` must be true or false"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_working_tree_is_used_as_it_is_with_git_working_inside() {
    let p = LocalProject::new(
        "job:\n  script:\n    - cat tracked.txt\n    - cat new.txt\n    - test ! -e ignored.log && echo no-ignored\n    - git rev-parse HEAD\n    - git status --short\n",
    );
    p.repo
        .write(".gitignore", "*.log\n")
        .write("tracked.txt", "committed\n")
        .commit_all("more");
    p.repo
        .write("tracked.txt", "edited\n")
        .write("new.txt", "untracked\n")
        .write("ignored.log", "x\n");
    let head = p.repo.git(&["rev-parse", "HEAD"]);
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_has("edited")
        .assert_stdout_has("untracked")
        .assert_stdout_has("no-ignored")
        .assert_stdout_has(head.trim())
        .assert_stdout_has("M tracked.txt");
}

#[test]
fn source_commit_clones_what_gitlab_would_with_git_depth() {
    let p = LocalProject::new(
        "variables:\n  GIT_DEPTH: \"1\"\njob:\n  script:\n    - git rev-list --count HEAD\n    - cat tracked.txt\n",
    );
    p.repo.write("tracked.txt", "v1\n").commit_all("two");
    p.repo.write("tracked.txt", "v2\n").commit_all("three");
    p.repo.write("tracked.txt", "uncommitted\n");
    let r = p.run(&["exec", "job", "--source", "commit"]);
    r.assert_code(0)
        .assert_stdout_has("v2")
        .assert_stdout_lacks("uncommitted");
    assert!(r.stdout.lines().any(|l| l.trim() == "1"), "{}", r.stdout);
}

#[test]
fn git_strategy_none_gives_no_sources() {
    let p = LocalProject::new(
        "job:\n  variables:\n    GIT_STRATEGY: none\n  script:\n    - test ! -e .gitlab-ci.yml && echo no-sources\n",
    );
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_has("no-sources");
}

#[test]
fn the_job_timeout_kills_every_process_of_the_job() {
    let token = format!("{}", 900_000 + std::process::id() % 90_000);
    let ci = format!(
        "job:\n  script:\n    - sleep {token} &\n    - setsid sleep {token} &\n    - sleep {token}\n  after_script: [echo after-ran]\n"
    );
    let p = LocalProject::new(&ci);
    let started = std::time::Instant::now();
    let r = p.run(&["exec", "job", "--timeout", "1s"]);
    r.assert_code(1)
        .assert_stdout_has("execution took longer than 1 seconds")
        .assert_stdout_lacks("after-ran");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    let left = processes_with(&format!("sleep {token}"));
    assert!(left.is_empty(), "processes survived: {left:?}");
}

#[test]
fn runner_script_timeout_stops_the_script_but_after_script_runs() {
    let ci = "job:\n  variables:\n    RUNNER_SCRIPT_TIMEOUT: 1s\n  script: [sleep 30]\n  after_script: [\"echo status=$CI_JOB_STATUS\"]\n";
    let p = LocalProject::new(ci);
    p.run(&["exec", "job"])
        .assert_code(1)
        .assert_stdout_has("status=timedout");
}

#[test]
fn rule_217_cache_is_saved_and_restored_between_runs() {
    let ci = "job:\n  cache:\n    key: deps-$CI_COMMIT_REF_SLUG\n    paths: [deps/]\n  script:\n    - cat deps/stamp || echo no-cache\n    - mkdir -p deps && echo cached-$RUN > deps/stamp\n";
    let p = LocalProject::new(ci);
    p.run(&["exec", "job", "--var", "RUN=1"])
        .assert_code(0)
        .assert_stdout_has("no-cache")
        .assert_stdout_has("Creating cache deps-main-non_protected...");
    p.run(&["exec", "job", "--var", "RUN=2"])
        .assert_code(0)
        .assert_stdout_has("Checking cache for deps-main-non_protected...")
        .assert_stdout_has("cached-1");
}

#[test]
fn rule_219_a_pull_cache_is_never_saved() {
    let ci = "job:\n  cache:\n    key: k\n    policy: pull\n    paths: [deps/]\n  script:\n    - cat deps/stamp || echo no-cache\n    - mkdir -p deps && echo x > deps/stamp\n";
    let p = LocalProject::new(ci);
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_lacks("Creating cache");
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_has("no-cache");
}

#[test]
fn exec_with_needs_runs_the_needed_jobs_first_and_gets_their_artifacts() {
    let ci = "stages: [build, test]\nbuild:\n  stage: build\n  script: [mkdir -p out, echo built > out/bin]\n  artifacts:\n    paths: [out/]\ntest:\n  stage: test\n  needs: [build]\n  script: [cat out/bin]\n";
    let p = LocalProject::new(ci);
    p.run(&["exec", "test", "--needs"])
        .assert_code(0)
        .assert_stdout_has("built");
    // Without --needs, the artifacts of the last run of `build` are used.
    p.run(&["exec", "test"])
        .assert_code(0)
        .assert_stdout_has("built");
}

#[test]
fn an_artifact_path_outside_the_project_is_refused_clearly() {
    let ci = "job:\n  script: [echo ok]\n  artifacts:\n    paths: [../outside]\n";
    let p = LocalProject::new(ci);
    let r = p.run(&["exec", "job"]);
    assert!(
        r.stdout.contains("is not a subpath of project directory") || r.stdout.contains("outside"),
        "{}",
        r.stdout
    );
}

#[test]
fn file_variables_are_removed_when_the_job_ends() {
    let p = LocalProject::new("job:\n  script:\n    - echo \"path=$KEY\"\n");
    let var_file = p.state.path().join("vars.yml");
    std::fs::write(&var_file, "KEY:\n  value: secret\n  file: true\n").unwrap();
    let r = p.run(&["exec", "job", "--var-file", var_file.to_str().unwrap()]);
    r.assert_code(0);
    let path = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("path="))
        .expect("path printed")
        .to_owned();
    assert!(
        !std::path::Path::new(&path).exists(),
        "{path} is still there"
    );
    // The state directory holds no world-readable secret either.
    for entry in walkdir::WalkDir::new(p.state.path()) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() && std::fs::read(entry.path()).unwrap() == b"secret" {
            let mode = entry.metadata().unwrap().permissions().mode();
            panic!("secret left in {} (mode {mode:o})", entry.path().display());
        }
    }
}

#[test]
fn ctrl_c_cancels_the_job_runs_after_script_and_leaves_no_process() {
    let token = format!("{}", 800_000 + std::process::id() % 90_000);
    let ci = format!(
        "job:\n  script:\n    - echo started\n    - setsid sleep {token} &\n    - sleep {token}\n  after_script: [\"echo after=$CI_JOB_STATUS\"]\n"
    );
    let p = LocalProject::new(&ci);
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("runner"))
        .args(["exec", "job"])
        .current_dir(p.path())
        .env("RUNNER_STATE_DIR", p.state.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the script runs, then interrupt as a terminal would.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while processes_with(&format!("sleep {token}")).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("after=canceled"), "{stdout}");
    assert!(stdout.contains("ERROR: Job failed: canceled"), "{stdout}");
    let left = processes_with(&format!("sleep {token}"));
    assert!(left.is_empty(), "processes survived: {left:?}");
}

#[test]
fn gitlab_tokens_are_masked_by_their_prefix() {
    let p =
        LocalProject::new("job:\n  script:\n    - printf 'pat=glpat-%s%s\\n' Abc123 XyzToken\n");
    p.run(&["exec", "job"])
        .assert_code(0)
        .assert_stdout_has("pat=glpat-[MASKED]")
        .assert_stdout_lacks("Abc123XyzToken");
    assert!(!p.logs().contains("Abc123XyzToken"));
}
