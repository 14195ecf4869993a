//! Scenario tests of the scheduler's order: stages, `needs` and `when`.
//! Each plays a pipeline (mostly planned from YAML, as GitLab would
//! create it) through with the results its jobs report, and checks the
//! exact order in which jobs start and end, their final states and the
//! pipeline's status.

use std::time::Instant;

use super::retry::FailureReason;
use super::schedule::{AfterAttempt, ScheduleError, Scheduler};
use super::status::{JobState, PipelineStatus, SkipReason};
use super::testutil::{CANCELED, OK, fail, failed, job, plan_of, plan_yaml, run, skipped};
use crate::ci::plan::PlannedNeed;

const THREE_STAGES: &str = "
stages: [build, test, deploy]
build: {stage: build, script: x}
test1: {stage: test, script: x}
test2: {stage: test, script: x}
deploy: {stage: deploy, script: x}
cleanup: {stage: deploy, script: x, when: always}
notify: {stage: deploy, script: x, when: on_failure}
";

#[test]
fn rule_26_a_stage_starts_once_every_job_of_the_earlier_stages_is_over() {
    let r = run(&plan_yaml(THREE_STAGES), &[], &[]);
    assert_eq!(
        r.events,
        [
            "+build", "-build", "+test1", "+test2", "-test1", "-test2", "+deploy", "+cleanup",
            "-deploy", "-cleanup"
        ]
    );
    assert_eq!(
        *r.state("notify"),
        skipped(SkipReason::NothingFailed { needs: false })
    );
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Success);
    assert!(r.scheduler.pipeline_status().passed());
}

#[test]
fn rule_26_a_failure_skips_later_on_success_jobs_but_lets_running_ones_finish() {
    let r = run(&plan_yaml(THREE_STAGES), &[], &[("test1", &[fail(1)])]);
    // test2 was running when test1 failed: it is not canceled.
    assert_eq!(
        r.events,
        [
            "+build", "-build", "+test1", "+test2", "-test1", "-test2", "+cleanup", "+notify",
            "-cleanup", "-notify"
        ]
    );
    assert_eq!(*r.state("test1"), failed(1));
    assert_eq!(*r.state("test2"), JobState::Success);
    assert_eq!(
        *r.state("deploy"),
        skipped(SkipReason::UpstreamFailed { needs: false })
    );
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Failed);
    assert!(!r.scheduler.pipeline_status().passed());
}

#[test]
fn rule_141_needs_nothing_starts_at_once_even_in_the_last_stage() {
    let yaml = "
stages: [build, test, deploy]
build: {stage: build, script: x}
test: {stage: test, script: x}
lint: {stage: deploy, script: x, needs: []}
";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert_eq!(
        r.events,
        ["+build", "+lint", "-build", "+test", "-lint", "-test"]
    );
}

#[test]
fn rule_142_a_job_with_needs_waits_only_for_them() {
    let yaml = "
stages: [build, test]
build_a: {stage: build, script: x}
build_b: {stage: build, script: x}
test_a: {stage: test, script: x, needs: [build_a]}
test_all: {stage: test, script: x}
";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert_eq!(
        r.events,
        [
            "+build_a",
            "+build_b",
            "-build_a",
            "+test_a",
            "-build_b",
            "+test_all",
            "-test_a",
            "-test_all"
        ]
    );
}

#[test]
fn rule_142_a_job_may_need_a_job_of_its_own_stage() {
    let yaml = "
stages: [test]
package: {stage: test, script: x, needs: [unit]}
unit: {stage: test, script: x}
";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert_eq!(r.events, ["+unit", "-unit", "+package", "-package"]);
}

#[test]
fn rule_145_an_optional_need_left_out_of_the_pipeline_is_not_waited_for() {
    let yaml = "
stages: [build, test]
build: {stage: build, script: x}
maybe:
  stage: build
  script: x
  rules: [{when: never}]
test:
  stage: test
  script: x
  needs: [{job: maybe, optional: true}]
wait:
  stage: test
  script: x
  needs: [{job: build, optional: true}]
";
    let plan = plan_yaml(yaml);
    assert!(plan.job("maybe").is_none());
    let r = run(&plan, &[], &[]);
    assert_eq!(
        r.events,
        ["+build", "+test", "-build", "+wait", "-test", "-wait"]
    );
}

#[test]
fn rule_145_a_need_naming_no_planned_job_is_ignored() {
    let mut test = job("test", "test");
    test.needs = Some(vec![PlannedNeed {
        job: "gone".into(),
        artifacts: true,
        optional: true,
    }]);
    let plan = plan_of(vec![job("build", "build"), test]);
    let r = run(&plan, &[], &[]);
    assert_eq!(r.events, ["+build", "+test", "-build", "-test"]);
}

#[test]
fn a_job_with_needs_decides_on_its_needs_alone() {
    let yaml = "
stages: [build, test]
build_a: {stage: build, script: x}
build_b: {stage: build, script: x}
test_b: {stage: test, script: x, needs: [build_b]}
report_a: {stage: test, script: x, needs: [build_a], when: on_failure}
report_b: {stage: test, script: x, needs: [build_b], when: on_failure}
test_all: {stage: test, script: x}
";
    let r = run(&plan_yaml(yaml), &[], &[("build_a", &[fail(2)])]);
    assert_eq!(
        r.events,
        [
            "+build_a",
            "+build_b",
            "-build_a",
            "+report_a",
            "-build_b",
            "+test_b",
            "-report_a",
            "-test_b"
        ]
    );
    assert_eq!(
        *r.state("report_b"),
        skipped(SkipReason::NothingFailed { needs: true })
    );
    assert_eq!(
        *r.state("test_all"),
        skipped(SkipReason::UpstreamFailed { needs: false })
    );
}

#[test]
fn rule_129_on_failure_runs_only_after_a_failure_and_always_runs_anyway() {
    let yaml = "
stages: [build, test]
build: {stage: build, script: x}
rollback: {stage: test, script: x, when: on_failure}
always: {stage: test, script: x, when: always}
";
    let passed = run(&plan_yaml(yaml), &[], &[]);
    assert_eq!(passed.events, ["+build", "-build", "+always", "-always"]);
    let failed = run(&plan_yaml(yaml), &[], &[("build", &[fail(1)])]);
    assert_eq!(
        failed.events,
        [
            "+build",
            "-build",
            "+rollback",
            "+always",
            "-rollback",
            "-always"
        ]
    );
    assert_eq!(failed.scheduler.pipeline_status(), PipelineStatus::Failed);
}

#[test]
fn rule_130_allowed_failures_skipped_and_optional_manual_jobs_count_as_success() {
    let yaml = "
stages: [build, test]
flaky: {stage: build, script: x, allow_failure: true}
optional: {stage: build, script: x, when: manual}
recover: {stage: build, script: x, when: on_failure}
deploy: {stage: test, script: x}
notify: {stage: test, script: x, when: on_failure}
";
    let r = run(&plan_yaml(yaml), &[], &[("flaky", &[fail(1)])]);
    assert_eq!(r.events, ["+flaky", "-flaky", "+deploy", "-deploy"]);
    assert_eq!(
        *r.state("flaky"),
        JobState::FailedAllowed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(1)
        }
    );
    assert_eq!(*r.state("optional"), JobState::Manual);
    assert_eq!(
        *r.state("recover"),
        skipped(SkipReason::NothingFailed { needs: false })
    );
    // Rule 139: an allowed failure does not start on_failure jobs.
    assert_eq!(
        *r.state("notify"),
        skipped(SkipReason::NothingFailed { needs: false })
    );
    assert_eq!(
        r.scheduler.pipeline_status(),
        PipelineStatus::SuccessWithWarnings
    );
    assert!(r.scheduler.pipeline_status().passed());
}

#[test]
fn rule_130_after_stages_of_only_skipped_jobs_on_success_runs_and_on_failure_does_not() {
    let yaml = "
stages: [build, test]
recover: {stage: build, script: x, when: on_failure}
test: {stage: test, script: x}
notify: {stage: test, script: x, when: on_failure}
always: {stage: test, script: x, when: always}
";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert_eq!(r.events, ["+test", "+always", "-test", "-always"]);
    assert_eq!(
        *r.state("notify"),
        skipped(SkipReason::NothingFailed { needs: false })
    );
}

#[test]
fn a_need_that_was_skipped_or_is_an_unplayed_manual_job_skips_the_job_unless_always() {
    let yaml = "
stages: [build, test]
recover: {stage: build, script: x, when: on_failure}
optional: {stage: build, script: x, when: manual}
after_skip: {stage: test, script: x, needs: [recover]}
after_manual: {stage: test, script: x, needs: [optional]}
manual_after_manual: {stage: test, script: x, needs: [optional], when: manual}
always: {stage: test, script: x, needs: [recover, optional], when: always}
";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert_eq!(r.events, ["+always", "-always"]);
    let not_run = |job: &str| skipped(SkipReason::NeedNotRun { job: job.into() });
    assert_eq!(*r.state("after_skip"), not_run("recover"));
    assert_eq!(*r.state("after_manual"), not_run("optional"));
    assert_eq!(*r.state("manual_after_manual"), not_run("optional"));
    // Playing the manual job lets the job that needs it run.
    let r = run(&plan_yaml(yaml), &["optional"], &[]);
    assert_eq!(
        r.events,
        [
            "+optional",
            "-optional",
            "+after_manual",
            "+always",
            "-after_manual",
            "-always"
        ]
    );
}

#[test]
fn a_need_that_failed_with_allow_failure_counts_as_success() {
    let yaml = "
stages: [build, test]
flaky: {stage: build, script: x, allow_failure: true}
test: {stage: test, script: x, needs: [flaky]}
";
    let r = run(&plan_yaml(yaml), &[], &[("flaky", &[fail(1)])]);
    assert_eq!(r.events, ["+flaky", "-flaky", "+test", "-test"]);
}

#[test]
fn with_a_skipped_need_an_on_success_job_is_skipped_at_once_and_always_waits_for_the_rest() {
    let yaml = "
stages: [build, test]
slow: {stage: build, script: x}
recover: {stage: build, script: x, when: on_failure}
dependent: {stage: test, script: x, needs: [slow, recover]}
always: {stage: test, script: x, needs: [slow, recover], when: always}
";
    let plan = plan_yaml(yaml);
    let s = Scheduler::new(&plan, &[]).unwrap();
    // As in GitLab, the skip is decided while `slow` has not even started.
    assert_eq!(
        s.jobs()[2].state,
        skipped(SkipReason::NeedNotRun {
            job: "recover".into()
        })
    );
    assert_eq!(s.jobs()[3].state, JobState::Created);
    // GitLab would start `always` at once; it waits for `slow` here.
    let r = run(&plan, &[], &[]);
    assert_eq!(r.events, ["+slow", "-slow", "+always", "-always"]);
}

#[test]
fn ready_hands_out_jobs_in_stage_order_then_file_order() {
    let yaml = "
stages: [build, test]
z: {stage: test, script: x, needs: []}
a: {stage: build, script: x}
m: {stage: test, script: x, needs: []}
b: {stage: build, script: x}
";
    let plan = plan_yaml(yaml);
    let mut s = Scheduler::new(&plan, &[]).unwrap();
    let names: Vec<String> = s
        .ready(Instant::now())
        .into_iter()
        .map(|j| j.name)
        .collect();
    assert_eq!(names, ["a", "b", "z", "m"]);
    assert!(s.ready(Instant::now()).is_empty(), "each job once");
}

#[test]
fn finishing_a_job_that_is_not_running_is_an_error() {
    let plan = plan_yaml(THREE_STAGES);
    let mut s = Scheduler::new(&plan, &[]).unwrap();
    assert_eq!(
        s.finished(1, OK),
        Err(ScheduleError::NotRunning("test1".into()))
    );
    assert_eq!(s.finished(99, OK), Err(ScheduleError::NoSuchJob(99)));
    s.ready(Instant::now());
    assert_eq!(s.finished(0, OK), Ok(AfterAttempt::Final));
    assert_eq!(
        s.finished(0, OK),
        Err(ScheduleError::NotRunning("build".into()))
    );
}

#[test]
fn cancel_cancels_what_has_not_started_and_starts_nothing_more() {
    let plan = plan_yaml(THREE_STAGES);
    let mut s = Scheduler::new(&plan, &[]).unwrap();
    let now = Instant::now();
    s.ready(now);
    s.cancel();
    assert!(!s.is_done(), "build still runs");
    assert_eq!(s.finished(0, CANCELED), Ok(AfterAttempt::Final));
    assert!(s.ready(now).is_empty());
    assert!(s.is_done());
    assert!(s.jobs().iter().all(|j| j.state == JobState::Canceled));
    assert_eq!(s.pipeline_status(), PipelineStatus::Canceled);
}

#[test]
fn jobs_waiting_for_each_other_in_a_cycle_are_an_error() {
    let need = |name: &str| {
        Some(vec![PlannedNeed {
            job: name.into(),
            artifacts: true,
            optional: false,
        }])
    };
    let mut a = job("a", "test");
    a.needs = need("b");
    let mut b = job("b", "test");
    b.needs = need("a");
    let err = Scheduler::new(&plan_of(vec![a, b]), &[]).unwrap_err();
    assert_eq!(err, ScheduleError::Cycle(vec!["a".into(), "b".into()]));
    // A need on a later stage's job that waits for the earlier stages.
    let mut early = job("early", "build");
    early.needs = need("late");
    let err = Scheduler::new(&plan_of(vec![early, job("late", "test")]), &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "jobs wait for each other in a cycle: early -> late"
    );
}
