//! Property test of the scheduler on random pipelines: whatever the jobs
//! report, every job ends in a final state (or is held back by a blocking
//! manual job), no job starts before what it waits for is over, a job's
//! `when` agrees with what it waited for, and the pipeline finishes.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::retry::{AttemptResult, FailureReason};
use super::schedule::{JobStart, Scheduler};
use super::status::{JobState, PipelineStatus};
use super::testutil::{job, plan_of};
use crate::ci::model::when::{Retry, When};
use crate::ci::plan::{Plan, PlannedJob, PlannedNeed};

/// The random choices for one job.
#[derive(Clone, Debug)]
struct JobSeed {
    stage: u8,
    when: u8,
    allow_failure: bool,
    /// 0: no `needs`; otherwise a mask over the earlier jobs.
    needs: Option<u16>,
    retry: u8,
    trigger: bool,
    selected: bool,
}

fn job_seed() -> impl Strategy<Value = JobSeed> {
    (
        0u8..4,
        0u8..8,
        any::<bool>(),
        prop::option::weighted(0.4, any::<u16>()),
        0u8..3,
        prop::bool::weighted(0.1),
        any::<bool>(),
    )
        .prop_map(
            |(stage, when, allow_failure, needs, retry, trigger, selected)| JobSeed {
                stage,
                when,
                allow_failure,
                needs,
                retry,
                trigger,
                selected,
            },
        )
}

/// Builds the pipeline: jobs sorted by stage, needs only on earlier jobs
/// (so of an earlier or the same stage), and the manual jobs to run.
fn build(mut seeds: Vec<JobSeed>) -> (Plan, Vec<String>) {
    seeds.sort_by_key(|s| s.stage);
    let mut jobs: Vec<PlannedJob> = Vec::new();
    let mut manual = Vec::new();
    for (i, seed) in seeds.iter().enumerate() {
        let mut j = job(&format!("j{i}"), &format!("s{}", seed.stage));
        j.when = match seed.when {
            0..=2 => When::OnSuccess,
            3 => When::OnFailure,
            4 => When::Always,
            5 | 6 => When::Manual,
            _ => When::Delayed,
        };
        if j.when == When::Delayed {
            j.start_in = Some(format!("{} seconds", 1 + i));
        }
        j.allow_failure = seed.allow_failure;
        if !seed.allow_failure && i % 3 == 0 {
            j.allow_failure_exit_codes = Some(vec![3]);
        }
        j.needs = seed.needs.map(|mask| {
            (0..i.min(16))
                .filter(|k| mask & (1 << k) != 0)
                .map(|k| PlannedNeed {
                    job: format!("j{k}"),
                    artifacts: true,
                    optional: false,
                })
                .collect()
        });
        j.retry = (seed.retry > 0).then(|| Retry {
            max: seed.retry,
            when: (i % 2 == 0).then(|| vec!["script_failure".to_string()]),
            exit_codes: (i % 4 == 1).then(|| vec![137]),
        });
        j.trigger = seed.trigger && j.when != When::Delayed;
        if j.when == When::Manual && seed.selected {
            manual.push(j.name.clone());
        }
        jobs.push(j);
    }
    (plan_of(jobs), manual)
}

fn result_of(code: u8) -> AttemptResult {
    match code % 6 {
        0 | 1 => AttemptResult::Success,
        2 => AttemptResult::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(1),
        },
        3 => AttemptResult::Failed {
            reason: FailureReason::ScriptFailure,
            exit_code: Some(if code % 2 == 0 { 3 } else { 137 }),
        },
        4 => AttemptResult::Failed {
            reason: FailureReason::RunnerSystemFailure,
            exit_code: None,
        },
        _ => AttemptResult::Canceled,
    }
}

/// The jobs `i` waits for.
fn waits_on(plan: &Plan, i: usize) -> Vec<usize> {
    let stage = |k: usize| plan.jobs[k].stage.clone();
    match &plan.jobs[i].needs {
        Some(needs) => needs
            .iter()
            .filter_map(|n| plan.jobs.iter().position(|j| j.name == n.job))
            .collect(),
        None => (0..plan.jobs.len())
            .filter(|&k| stage(k) < stage(i))
            .collect(),
    }
}

fn is_failure(state: &JobState) -> bool {
    matches!(state, JobState::Failed { .. })
}

/// Checks a batch of starts against the states of the jobs they wait for.
fn check_starts(plan: &Plan, s: &Scheduler, starts: &[JobStart], attempts: &mut [u32]) {
    for start in starts {
        attempts[start.index] += 1;
        assert_eq!(start.attempt, attempts[start.index], "{}", start.name);
        for k in waits_on(plan, start.index) {
            let state = &s.jobs()[k].state;
            assert!(
                state.is_final(),
                "{} started while {} is {state:?}",
                start.name,
                plan.jobs[k].name
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_pipelines_finish_in_order(
        seeds in prop::collection::vec(job_seed(), 1..12),
        results in prop::collection::vec(any::<u8>(), 1..40),
    ) {
        let (plan, manual) = build(seeds);
        let mut s = Scheduler::new(&plan, &manual).expect("a valid pipeline");
        let mut now = Instant::now();
        let mut attempts = vec![0u32; plan.jobs.len()];
        let mut running: Vec<usize> = Vec::new();
        let mut step = 0usize;
        loop {
            step += 1;
            prop_assert!(step < 1000, "the pipeline does not finish");
            let starts = s.ready(now);
            check_starts(&plan, &s, &starts, &mut attempts);
            running.extend(starts.iter().map(|j| j.index));
            if running.is_empty() {
                if s.is_done() {
                    break;
                }
                let wake = s.next_wakeup().expect("a delayed job waits");
                prop_assert!(wake > now);
                now = wake + Duration::from_millis(1);
                continue;
            }
            prop_assert!(!s.is_done());
            let code = results[step % results.len()];
            let index = running.remove(usize::from(code) % running.len());
            s.finished(index, result_of(code / 7)).expect("a running job");
        }

        let status = s.pipeline_status();
        prop_assert_ne!(status, PipelineStatus::Running);
        for (i, job) in s.jobs().iter().enumerate() {
            let spec = &plan.jobs[i];
            if job.state == JobState::Created {
                prop_assert_eq!(status, PipelineStatus::Blocked, "{} never decided", &job.name);
            } else {
                prop_assert!(job.state.is_final(), "{}: {:?}", &job.name, &job.state);
            }
            let max = spec.retry.as_ref().map_or(0, |r| u32::from(r.max));
            prop_assert!(job.attempts <= max + 1, "{} ran {} times", &job.name, job.attempts);
            if spec.trigger {
                prop_assert_eq!(job.attempts, 0);
            }
            // What ran agrees with its `when` and what it waited for.
            if job.attempts > 0 {
                let before: Vec<(&JobState, bool)> = waits_on(&plan, i)
                    .into_iter()
                    .map(|k| (&s.jobs()[k].state, plan.jobs[k].allow_failure))
                    .collect();
                let failed = before.iter().any(|(st, _)| is_failure(st));
                let canceled = before
                    .iter()
                    .any(|(st, allowed)| **st == JobState::Canceled && !allowed);
                let not_run = before.iter().any(|(st, allowed)| {
                    matches!(st, JobState::Skipped(_)) || (**st == JobState::Manual && *allowed)
                });
                let dag = spec.needs.is_some();
                match spec.when {
                    When::OnFailure => prop_assert!(failed && !(dag && not_run)),
                    When::OnSuccess | When::Manual | When::Delayed => {
                        prop_assert!(!(failed || canceled || (dag && not_run)));
                    }
                    // A failure beside a cancel adds up to `failed`; with
                    // needs, one that did not run makes them `skipped`.
                    _ => prop_assert!(!canceled || failed || (dag && not_run)),
                }
            }
            if spec.when == When::Manual && !manual.contains(&spec.name) {
                prop_assert_eq!(job.attempts, 0);
            }
        }
    }
}
