//! Scenario tests of the scheduler's job control: manual and delayed
//! jobs, `allow_failure`, `retry`, canceled and trigger jobs.

use std::time::{Duration, Instant};

use super::retry::{AttemptResult, FailureReason};
use super::schedule::{AfterAttempt, ScheduleError, Scheduler};
use super::status::{JobState, PipelineStatus, SkipReason};
use super::testutil::{CANCELED, OK, fail, failed, job, plan_of, plan_yaml, run, skipped};
use crate::ci::model::when::When;

#[test]
fn rule_132_a_blocking_manual_job_holds_back_the_later_stages() {
    let yaml = "
stages: [build, deploy, verify]
build: {stage: build, script: x}
deploy:
  stage: deploy
  script: x
  rules: [{when: manual}]
other: {stage: deploy, script: x}
verify: {stage: verify, script: x}
";
    let plan = plan_yaml(yaml);
    assert!(!plan.job("deploy").unwrap().allow_failure, "rule 86");
    let r = run(&plan, &[], &[]);
    assert_eq!(r.events, ["+build", "-build", "+other", "-other"]);
    assert_eq!(*r.state("deploy"), JobState::Manual);
    assert_eq!(*r.state("verify"), JobState::Created);
    assert!(r.scheduler.is_done());
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Blocked);
    assert!(!r.scheduler.pipeline_status().passed());
    // Chosen to run, it runs once its stage comes, and the rest follows.
    let r = run(&plan, &["deploy"], &[]);
    assert_eq!(
        r.events,
        [
            "+build", "-build", "+deploy", "+other", "-deploy", "-other", "+verify", "-verify"
        ]
    );
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Success);
}

#[test]
fn rule_132_a_job_that_needs_a_blocking_manual_job_waits_for_it() {
    let yaml = "
stages: [build, deploy]
approve:
  stage: build
  script: x
  rules: [{when: manual}]
ship: {stage: deploy, script: x, needs: [approve]}
";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert!(r.events.is_empty());
    assert_eq!(*r.state("ship"), JobState::Created);
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Blocked);
}

#[test]
fn rule_132_blocked_beats_failed_and_holds_on_failure_jobs_too() {
    let yaml = "
stages: [test, deploy]
unit: {stage: test, script: x}
approve:
  stage: test
  script: x
  rules: [{when: manual}]
cleanup: {stage: deploy, script: x, when: on_failure}
";
    let r = run(&plan_yaml(yaml), &[], &[("unit", &[fail(1)])]);
    assert_eq!(r.events, ["+unit", "-unit"]);
    assert_eq!(*r.state("cleanup"), JobState::Created);
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Blocked);
}

#[test]
fn rule_131_an_optional_manual_job_lets_the_later_stages_run() {
    let yaml = "
stages: [deploy, verify]
deploy: {stage: deploy, script: x, when: manual}
verify: {stage: verify, script: x}
";
    let plan = plan_yaml(yaml);
    assert!(plan.job("deploy").unwrap().allow_failure);
    let r = run(&plan, &[], &[]);
    assert_eq!(r.events, ["+verify", "-verify"]);
    assert_eq!(*r.state("deploy"), JobState::Manual);
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Success);
}

#[test]
fn a_pipeline_of_only_optional_manual_jobs_is_skipped_and_has_not_passed() {
    let yaml = "deploy: {script: x, when: manual}\n";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert!(r.events.is_empty());
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Skipped);
    assert!(!r.scheduler.pipeline_status().passed());
}

#[test]
fn a_chosen_manual_job_is_skipped_like_any_other_when_an_earlier_stage_failed() {
    let yaml = "
stages: [build, deploy]
build: {stage: build, script: x}
deploy: {stage: deploy, script: x, when: manual}
";
    let r = run(&plan_yaml(yaml), &["deploy"], &[("build", &[fail(1)])]);
    assert_eq!(r.events, ["+build", "-build"]);
    assert_eq!(
        *r.state("deploy"),
        skipped(SkipReason::UpstreamFailed { needs: false })
    );
}

#[test]
fn a_parallel_manual_job_is_chosen_by_its_name_for_all_its_copies() {
    let yaml = "
deploy: {script: x, when: manual, parallel: 2}
matrix:
  script: x
  when: manual
  parallel:
    matrix: [{CLOUD: [aws, gcp]}]
";
    let plan = plan_yaml(yaml);
    let r = run(&plan, &["deploy"], &[]);
    assert_eq!(
        r.events,
        ["+deploy 1/2", "+deploy 2/2", "-deploy 1/2", "-deploy 2/2"]
    );
    let r = run(&plan, &["matrix: [gcp]", "matrix"], &[]);
    assert_eq!(
        r.events,
        [
            "+matrix: [aws]",
            "+matrix: [gcp]",
            "-matrix: [aws]",
            "-matrix: [gcp]"
        ]
    );
}

#[test]
fn choosing_an_unknown_or_non_manual_job_is_an_error() {
    let yaml = "
build: {script: x}
deploy: {script: x, when: manual}
";
    let plan = plan_yaml(yaml);
    let err = Scheduler::new(&plan, &["nope".to_string()]).unwrap_err();
    assert_eq!(err, ScheduleError::UnknownManualJob("nope".into()));
    assert_eq!(
        err.to_string(),
        "manual job `nope`: no job or parallel group of that name in the pipeline"
    );
    let err = Scheduler::new(&plan, &["build".to_string()]).unwrap_err();
    assert_eq!(err, ScheduleError::NotManual("build".into()));
}

const DELAYED: &str = "
stages: [build, rollout, verify]
build: {stage: build, script: x}
rollout: {stage: rollout, script: x, when: delayed, start_in: 30 minutes}
quick: {stage: rollout, script: x}
verify: {stage: verify, script: x}
";

#[test]
fn rule_135_a_delayed_job_starts_start_in_after_the_earlier_stages_and_holds_the_next() {
    let r = run(&plan_yaml(DELAYED), &[], &[]);
    assert_eq!(
        r.events,
        [
            "+build", "-build", "+quick", "-quick", "~1800s", "+rollout", "-rollout", "+verify",
            "-verify"
        ]
    );
}

#[test]
fn rule_135_the_timer_starts_when_the_earlier_stage_is_over() {
    let plan = plan_yaml(DELAYED);
    let mut s = Scheduler::new(&plan, &[]).unwrap();
    let t0 = Instant::now();
    assert_eq!(s.ready(t0)[0].name, "build");
    assert_eq!(s.next_wakeup(), None);
    let t1 = t0 + Duration::from_secs(100);
    s.finished(0, OK).unwrap();
    let started: Vec<String> = s.ready(t1).into_iter().map(|j| j.name).collect();
    assert_eq!(started, ["quick"]);
    assert_eq!(s.jobs()[1].state, JobState::Scheduled);
    let due = t1 + Duration::from_secs(1800);
    assert_eq!(s.next_wakeup(), Some(due));
    s.finished(2, OK).unwrap();
    assert!(!s.is_done());
    assert!(s.ready(due - Duration::from_secs(1)).is_empty());
    assert_eq!(s.ready(due)[0].name, "rollout");
    assert_eq!(s.next_wakeup(), None);
    // A delayed job whose earlier stage failed never starts its timer.
    let r = run(&plan, &[], &[("build", &[fail(1)])]);
    assert_eq!(r.events, ["+build", "-build"]);
    assert_eq!(
        *r.state("rollout"),
        skipped(SkipReason::UpstreamFailed { needs: false })
    );
}

#[test]
fn a_start_in_that_is_not_a_duration_does_not_delay_the_job() {
    let mut rollout = job("rollout", "deploy");
    rollout.when = When::Delayed;
    rollout.start_in = Some("$DELAY".into());
    let r = run(&plan_of(vec![rollout]), &[], &[]);
    assert_eq!(r.events, ["+rollout", "-rollout"]);
}

#[test]
fn rule_133_a_start_in_past_a_week_waits_a_week() {
    let mut rollout = job("rollout", "deploy");
    rollout.when = When::Delayed;
    rollout.start_in = Some("1000000000000 years".into());
    let mut s = Scheduler::new(&plan_of(vec![rollout]), &[]).unwrap();
    let now = Instant::now();
    assert!(s.ready(now).is_empty());
    let week = Duration::from_secs(7 * 24 * 3600);
    assert_eq!(s.next_wakeup(), Some(now + week));
}

#[test]
fn rule_138_allow_failure_exit_codes_allow_only_the_listed_codes() {
    let yaml = "
stages: [test, deploy]
a: {stage: test, script: x, allow_failure: {exit_codes: [3, 137]}}
deploy: {stage: deploy, script: x}
";
    let plan = plan_yaml(yaml);
    let r = run(&plan, &[], &[("a", &[fail(137)])]);
    assert_eq!(r.events, ["+a", "-a", "+deploy", "-deploy"]);
    assert_eq!(
        r.scheduler.pipeline_status(),
        PipelineStatus::SuccessWithWarnings
    );
    let r = run(&plan, &[], &[("a", &[fail(1)])]);
    assert_eq!(r.events, ["+a", "-a"]);
    assert_eq!(*r.state("a"), failed(1));
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Failed);
    // A failure without an exit code is not in the list.
    let system = AttemptResult::Failed {
        reason: FailureReason::RunnerSystemFailure,
        exit_code: None,
    };
    let r = run(&plan, &[], &[("a", &[system])]);
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Failed);
}

const RETRIED: &str = "
stages: [test, deploy]
test: {stage: test, script: x, retry: 2}
deploy: {stage: deploy, script: x}
";

#[test]
fn rule_239_a_failed_job_is_retried_before_anything_after_it_is_decided() {
    let r = run(&plan_yaml(RETRIED), &[], &[("test", &[fail(1), fail(1)])]);
    assert_eq!(
        r.events,
        [
            "+test", "-test", "+test#2", "-test", "+test#3", "-test", "+deploy", "-deploy"
        ]
    );
    assert_eq!(*r.state("test"), JobState::Success);
    assert_eq!(r.scheduler.jobs()[0].attempts, 3);
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Success);
}

#[test]
fn rule_239_retries_stop_at_max() {
    let r = run(
        &plan_yaml(RETRIED),
        &[],
        &[("test", &[fail(1), fail(2), fail(3)])],
    );
    assert_eq!(
        r.events,
        ["+test", "-test", "+test#2", "-test", "+test#3", "-test"]
    );
    assert_eq!(*r.state("test"), failed(3));
    assert_eq!(r.scheduler.jobs()[0].attempts, 3);
}

#[test]
fn rule_239_finished_says_whether_the_job_is_retried() {
    let plan = plan_yaml(RETRIED);
    let mut s = Scheduler::new(&plan, &[]).unwrap();
    let now = Instant::now();
    s.ready(now);
    assert_eq!(
        s.finished(0, fail(1)),
        Ok(AfterAttempt::Retry { attempt: 2 })
    );
    assert_eq!(s.jobs()[0].state, JobState::Pending { attempt: 2 });
    assert_eq!(s.ready(now)[0].attempt, 2);
    assert_eq!(s.finished(0, OK), Ok(AfterAttempt::Final));
}

#[test]
fn rule_240_retry_when_retries_only_the_listed_reasons() {
    let yaml = "
test:
  script: x
  retry: {max: 2, when: runner_system_failure}
";
    let system = AttemptResult::Failed {
        reason: FailureReason::RunnerSystemFailure,
        exit_code: None,
    };
    let r = run(&plan_yaml(yaml), &[], &[("test", &[system, fail(1)])]);
    assert_eq!(r.events, ["+test", "-test", "+test#2", "-test"]);
    assert_eq!(*r.state("test"), failed(1));
}

#[test]
fn rule_239_retry_exit_codes_alone_retry_only_those_codes() {
    let yaml = "
test:
  script: x
  retry: {max: 1, exit_codes: 137}
";
    let plan = plan_yaml(yaml);
    let r = run(&plan, &[], &[("test", &[fail(137), fail(137)])]);
    assert_eq!(r.events, ["+test", "-test", "+test#2", "-test"]);
    let r = run(&plan, &[], &[("test", &[fail(1)])]);
    assert_eq!(r.events, ["+test", "-test"]);
}

#[test]
fn a_retried_delayed_job_starts_again_at_once() {
    let yaml = "
rollout: {script: x, when: delayed, start_in: 10 seconds, retry: 1}
";
    let r = run(&plan_yaml(yaml), &[], &[("rollout", &[fail(1)])]);
    assert_eq!(
        r.events,
        ["~10s", "+rollout", "-rollout", "+rollout#2", "-rollout"]
    );
}

#[test]
fn a_canceled_job_is_not_retried_and_no_job_after_it_runs() {
    let yaml = "
stages: [build, test]
build: {stage: build, script: x, retry: 2}
test: {stage: test, script: x}
always: {stage: test, script: x, when: always}
";
    let r = run(&plan_yaml(yaml), &[], &[("build", &[CANCELED])]);
    assert_eq!(r.events, ["+build", "-build"]);
    let canceled = skipped(SkipReason::UpstreamCanceled { needs: false });
    assert_eq!(*r.state("always"), canceled);
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Canceled);
}

#[test]
fn a_canceled_job_whose_failure_is_allowed_is_a_warning() {
    let yaml = "
stages: [build, test]
build: {stage: build, script: x, allow_failure: true}
test: {stage: test, script: x}
";
    let r = run(&plan_yaml(yaml), &[], &[("build", &[CANCELED])]);
    assert_eq!(r.events, ["+build", "-build", "+test", "-test"]);
    assert_eq!(
        r.scheduler.pipeline_status(),
        PipelineStatus::SuccessWithWarnings
    );
}

#[test]
fn trigger_jobs_are_skipped_and_count_as_skipped_for_the_jobs_after_them() {
    let yaml = "
stages: [build, deploy, verify]
build: {stage: build, script: x}
downstream: {stage: deploy, trigger: group/other}
verify: {stage: verify, script: x}
check: {stage: verify, script: x, needs: [downstream]}
";
    let r = run(&plan_yaml(yaml), &[], &[]);
    assert_eq!(r.events, ["+build", "-build", "+verify", "-verify"]);
    let JobState::Skipped(reason) = r.state("downstream") else {
        panic!("{:?}", r.state("downstream"));
    };
    assert_eq!(
        reason.to_string(),
        "trigger jobs run a downstream pipeline, which a local run does not create"
    );
    assert_eq!(
        *r.state("check"),
        skipped(SkipReason::NeedNotRun {
            job: "downstream".into()
        })
    );
    assert_eq!(r.scheduler.pipeline_status(), PipelineStatus::Success);
}
