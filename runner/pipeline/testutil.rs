//! Helpers for the scheduler tests: pipelines from YAML or built by hand,
//! and a driver that plays a pipeline through with given results.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::Instant;

use super::retry::{AttemptResult, FailureReason};
use super::schedule::Scheduler;
use super::status::{JobState, SkipReason};
use crate::ci::model::pipeline::decode_pipeline;
use crate::ci::model::when::When;
use crate::ci::plan::{DecidedBy, Plan, PlanContext, PlannedJob, PlannedStage, SCHEMA_VERSION};
use crate::ci::plan::{WorkflowOutcome, plan};
use crate::ci::source::SourceId;
use crate::ci::variables::{VarSource, Variables};
use crate::ci::yaml::parse_documents;

/// Plans `yaml` for a push to branch `main`, as GitLab would.
pub(super) fn plan_yaml(yaml: &str) -> Plan {
    let docs = parse_documents(yaml, SourceId(1)).expect("valid YAML");
    let root = docs.into_iter().next().expect("one document");
    let pipeline = decode_pipeline(&root).unwrap_or_else(|d| panic!("invalid: {d:?}"));
    let mut vars = Variables::new();
    for (k, v) in [
        ("CI_PIPELINE_SOURCE", "push"),
        ("CI_COMMIT_REF_NAME", "main"),
        ("CI_COMMIT_BRANCH", "main"),
        ("CI_DEFAULT_BRANCH", "main"),
    ] {
        vars.set(k, v, VarSource::Predefined);
    }
    let ctx = PlanContext::new(vars, Path::new("/nonexistent/project"), "push");
    let plan = plan(&pipeline, &ctx).unwrap_or_else(|d| panic!("pipeline errors: {d:?}"));
    assert!(plan.created, "no pipeline: {:?}", plan.reason);
    plan
}

/// A plain `on_success` job, to adjust field by field.
pub(super) fn job(name: &str, stage: &str) -> PlannedJob {
    PlannedJob {
        name: name.into(),
        stage: stage.into(),
        when: When::OnSuccess,
        start_in: None,
        allow_failure: false,
        allow_failure_exit_codes: None,
        needs: None,
        dependencies: None,
        image: None,
        tags: vec![],
        variables: vec![],
        decided_by: DecidedBy::default_with("test"),
        parallel: None,
        matrix: None,
        trigger: false,
        interruptible: None,
        retry: None,
        timeout: None,
        source_index: 0,
    }
}

/// A plan of `jobs`, which must be in stage order; the stages are those
/// of the jobs, in that order.
pub(super) fn plan_of(jobs: Vec<PlannedJob>) -> Plan {
    let mut stages: Vec<PlannedStage> = Vec::new();
    for j in &jobs {
        match stages.last_mut() {
            Some(s) if s.name == j.stage => s.jobs.push(j.name.clone()),
            _ => stages.push(PlannedStage {
                name: j.stage.clone(),
                jobs: vec![j.name.clone()],
            }),
        }
    }
    Plan {
        schema_version: SCHEMA_VERSION,
        created: true,
        reason: None,
        workflow: WorkflowOutcome {
            name: None,
            decided_by: DecidedBy::default_with("test"),
        },
        git_ref: "main".into(),
        pipeline_source: "push".into(),
        stages,
        jobs,
        skipped: vec![],
        warnings: vec![],
    }
}

pub(super) const OK: AttemptResult = AttemptResult::Success;
pub(super) const CANCELED: AttemptResult = AttemptResult::Canceled;

/// The state of a job skipped for `reason`.
pub(super) fn skipped(reason: SkipReason) -> JobState {
    JobState::Skipped(reason)
}

/// The state of a job whose script failed with exit code `code`.
pub(super) fn failed(code: i32) -> JobState {
    JobState::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(code),
    }
}

/// A script failure with exit code `code`.
pub(super) fn fail(code: i32) -> AttemptResult {
    AttemptResult::Failed {
        reason: FailureReason::ScriptFailure,
        exit_code: Some(code),
    }
}

/// A played-through pipeline.
pub(super) struct Run {
    /// `+job` when an attempt starts (`+job#2` for a retry), `-job` when
    /// it ends, `~30s` when the clock moves on to a delayed job.
    pub events: Vec<String>,
    pub scheduler: Scheduler,
}

impl Run {
    /// The state of the job called `name`.
    pub fn state(&self, name: &str) -> &JobState {
        &self
            .scheduler
            .jobs()
            .iter()
            .find(|j| j.name == name)
            .unwrap_or_else(|| panic!("no job {name}"))
            .state
    }
}

/// Plays `plan` through: every job handed out is queued, and the queue's
/// first job finishes next, one at a time, with the next of its `results`
/// (success once they run out). When nothing runs, the clock jumps to the
/// next delayed job.
pub(super) fn run(plan: &Plan, manual: &[&str], results: &[(&str, &[AttemptResult])]) -> Run {
    let manual: Vec<String> = manual.iter().map(|s| s.to_string()).collect();
    let mut scheduler = Scheduler::new(plan, &manual).expect("valid scheduler input");
    let mut results: HashMap<&str, VecDeque<AttemptResult>> = results
        .iter()
        .map(|(name, r)| (*name, r.iter().copied().collect()))
        .collect();
    let start = Instant::now();
    let mut now = start;
    let mut running: VecDeque<(usize, String)> = VecDeque::new();
    let mut events = Vec::new();
    for _ in 0..10_000 {
        for s in scheduler.ready(now) {
            events.push(match s.attempt {
                1 => format!("+{}", s.name),
                n => format!("+{}#{n}", s.name),
            });
            running.push_back((s.index, s.name));
        }
        if let Some((index, name)) = running.pop_front() {
            let result = results
                .get_mut(name.as_str())
                .and_then(VecDeque::pop_front)
                .unwrap_or(AttemptResult::Success);
            events.push(format!("-{name}"));
            scheduler
                .finished(index, result)
                .expect("finishing a running job");
            continue;
        }
        if scheduler.is_done() {
            return Run { events, scheduler };
        }
        let wake = scheduler
            .next_wakeup()
            .expect("not done and nothing runs: a delayed job must wait");
        assert!(wake > now, "a due job was not released");
        events.push(format!("~{}s", (wake - now).as_secs()));
        now = wake;
    }
    panic!("the pipeline did not finish: {events:?}");
}
