//! The pipeline scheduler: which jobs of a planned pipeline start when,
//! which are skipped and why, and what the pipeline's status is, decided
//! the way GitLab's pipeline processing decides it.
//!
//! It is a pure state machine: the caller starts the jobs [`Scheduler::
//! ready`] hands out, reports each attempt with [`Scheduler::finished`],
//! sleeps until [`Scheduler::next_wakeup`] for delayed jobs, and stops
//! when [`Scheduler::is_done`].
//!
//! GitLab decides a job once what it waits for is complete: a job with
//! `needs` waits for those jobs, any other job for every job of the
//! earlier stages. The statuses of those jobs add up to one composite
//! status (see `status`), and the job's `when` accepts it or the job is
//! skipped (`Ci::ProcessBuildService`): `on_success`, `manual` and
//! `delayed` accept `success`, and `skipped` too for a job without
//! `needs`; `on_failure` accepts `failed`; `always` accepts `success`,
//! `failed` and `skipped`. No `when` accepts `canceled`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::retry::{AttemptResult, failure_allowed, retry_allowed};
use super::status::{Composite, JobState, PipelineStatus, SkipReason, StatusSet};
use crate::ci::model::duration::parse_duration;
use crate::ci::model::parallel::matrix_job_name;
use crate::ci::model::when::{Retry, START_IN_LIMIT, When};
use crate::ci::plan::{Plan, PlannedJob};

/// A problem with the scheduler's input or with how it is driven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("manual job `{0}`: no job or parallel group of that name in the pipeline")]
    UnknownManualJob(String),
    #[error("manual job `{0}`: the job is not a manual job")]
    NotManual(String),
    #[error("jobs wait for each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("no job number {0} in the pipeline")]
    NoSuchJob(usize),
    #[error("job `{0}` is not running")]
    NotRunning(String),
}

/// A job to start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStart {
    /// The job's index in `Plan::jobs` (and in [`Scheduler::jobs`]).
    pub index: usize,
    pub name: String,
    /// 1 for the first run, 2 and 3 for retries.
    pub attempt: u32,
}

/// What happens after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAttempt {
    /// The job is retried: this attempt comes out of the next `ready()`.
    Retry { attempt: u32 },
    /// The job has its final state.
    Final,
}

/// One job of the pipeline and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobStatus {
    pub name: String,
    pub stage: String,
    pub state: JobState,
    /// How many attempts were started.
    pub attempts: u32,
}

/// What the scheduler keeps of a planned job.
#[derive(Clone, Debug)]
struct Spec {
    stage_pos: usize,
    when: When,
    allow_failure: bool,
    exit_codes: Option<Vec<i64>>,
    /// `None`: waits for the earlier stages; `Some`: for these jobs.
    needs: Option<Vec<usize>>,
    /// `start_in` of a delayed job.
    delay: Option<Duration>,
    trigger: bool,
    /// A manual job the user chose to run.
    selected: bool,
    retry: Option<Retry>,
    /// When a scheduled job starts; set by the first `ready()` after its
    /// timer started.
    due: Option<Instant>,
}

/// Decides, for a planned pipeline, which jobs start when.
#[derive(Clone, Debug)]
pub struct Scheduler {
    jobs: Vec<JobStatus>,
    specs: Vec<Spec>,
    stage_count: usize,
    canceled: bool,
}

impl Scheduler {
    /// A scheduler for `plan`'s jobs. `manual_selected` names the manual
    /// jobs to run (a job's name, or a `parallel` job's name for all its
    /// copies); the other manual jobs stay manual. Jobs with no
    /// prerequisites are decided at once.
    pub fn new(plan: &Plan, manual_selected: &[String]) -> Result<Scheduler, ScheduleError> {
        let stage_of = stage_positions(plan);
        let mut by_name: HashMap<&str, usize> = HashMap::with_capacity(plan.jobs.len());
        for (i, job) in plan.jobs.iter().enumerate() {
            by_name.entry(job.name.as_str()).or_insert(i);
        }
        let mut specs: Vec<Spec> = plan
            .jobs
            .iter()
            .map(|job| spec_of(job, &stage_of, &by_name))
            .collect();
        for wanted in manual_selected {
            select_manual(plan, &mut specs, wanted)?;
        }
        let mut scheduler = Scheduler {
            jobs: plan
                .jobs
                .iter()
                .map(|job| JobStatus {
                    name: job.name.clone(),
                    stage: job.stage.clone(),
                    state: JobState::Created,
                    attempts: 0,
                })
                .collect(),
            stage_count: stage_of.len(),
            specs,
            canceled: false,
        };
        if let Some(cycle) = scheduler.find_cycle() {
            let names = cycle.iter().map(|&i| scheduler.jobs[i].name.clone());
            return Err(ScheduleError::Cycle(names.collect()));
        }
        scheduler.process();
        Ok(scheduler)
    }

    /// The jobs to start now, each handed out once, in stage order and
    /// then file order; they count as running from here on. Starts the
    /// timers of delayed jobs whose turn came since the last call, and
    /// releases those whose time is up at `now`.
    pub fn ready(&mut self, now: Instant) -> Vec<JobStart> {
        if !self.canceled {
            let mut released = false;
            for i in 0..self.jobs.len() {
                if self.jobs[i].state != JobState::Scheduled {
                    continue;
                }
                let spec = &mut self.specs[i];
                let delay = spec.delay.unwrap_or_default();
                let due = *spec
                    .due
                    .get_or_insert(now.checked_add(delay).unwrap_or(now));
                if due <= now {
                    self.enqueue(i);
                    released = true;
                }
            }
            if released {
                // A released trigger job is skipped, which may decide others.
                self.process();
            }
        }
        let mut starts = Vec::new();
        for (index, job) in self.jobs.iter_mut().enumerate() {
            if let JobState::Pending { attempt } = job.state {
                job.state = JobState::Running { attempt };
                job.attempts += 1;
                starts.push(JobStart {
                    index,
                    name: job.name.clone(),
                    attempt,
                });
            }
        }
        starts
    }

    /// When the next delayed job is due, if one waits. A delayed job's
    /// timer starts at the first `ready()` after its turn came, so ask
    /// after calling `ready()`.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.jobs
            .iter()
            .zip(&self.specs)
            .filter(|(job, _)| job.state == JobState::Scheduled)
            .filter_map(|(_, spec)| spec.due)
            .min()
    }

    /// Reports how a running attempt ended. A failure is retried when the
    /// job's `retry` allows it; otherwise the job gets its final state and
    /// the jobs waiting for it are decided.
    pub fn finished(
        &mut self,
        index: usize,
        result: AttemptResult,
    ) -> Result<AfterAttempt, ScheduleError> {
        let job = self
            .jobs
            .get(index)
            .ok_or(ScheduleError::NoSuchJob(index))?;
        let JobState::Running { attempt } = job.state else {
            return Err(ScheduleError::NotRunning(job.name.clone()));
        };
        let spec = &self.specs[index];
        let state = match result {
            AttemptResult::Success => JobState::Success,
            AttemptResult::Canceled => JobState::Canceled,
            AttemptResult::Failed { reason, exit_code } => {
                let retries_done = attempt.saturating_sub(1);
                if !self.canceled
                    && retry_allowed(spec.retry.as_ref(), reason, exit_code, retries_done)
                {
                    // GitLab replaces the failed job with a new one that
                    // starts at once (a manual or delayed one too), so the
                    // jobs after it never see the failure.
                    let attempt = attempt + 1;
                    self.jobs[index].state = JobState::Pending { attempt };
                    return Ok(AfterAttempt::Retry { attempt });
                }
                if failure_allowed(spec.allow_failure, spec.exit_codes.as_deref(), exit_code) {
                    JobState::FailedAllowed { reason, exit_code }
                } else {
                    JobState::Failed { reason, exit_code }
                }
            }
        };
        self.jobs[index].state = state;
        self.process();
        Ok(AfterAttempt::Final)
    }

    /// Cancels the pipeline: jobs not started yet are canceled, running
    /// ones keep running until reported (a failure is not retried), and
    /// nothing starts any more. Manual jobs stay manual, as in GitLab.
    pub fn cancel(&mut self) {
        self.canceled = true;
        for job in &mut self.jobs {
            if matches!(
                job.state,
                JobState::Created | JobState::Scheduled | JobState::Pending { .. }
            ) {
                job.state = JobState::Canceled;
            }
        }
    }

    /// True when nothing runs, waits for its time or is about to start:
    /// the jobs left `Created` are held back by a blocking manual job.
    pub fn is_done(&self) -> bool {
        !self.jobs.iter().any(|job| {
            matches!(
                job.state,
                JobState::Scheduled | JobState::Pending { .. } | JobState::Running { .. }
            )
        })
    }

    /// Every job, in the plan's order.
    pub fn jobs(&self) -> &[JobStatus] {
        &self.jobs
    }

    /// The pipeline's status: GitLab's composite of all its jobs.
    pub fn pipeline_status(&self) -> PipelineStatus {
        let mut set = StatusSet::default();
        for (job, spec) in self.jobs.iter().zip(&self.specs) {
            set.add(&job.state, spec.allow_failure);
        }
        set.pipeline_status()
    }

    /// Decides every created job whose prerequisites are complete, until
    /// no decision is left to make (one decision can allow the next).
    fn process(&mut self) {
        if self.canceled {
            return;
        }
        loop {
            let prior = self.prior_stage_sets();
            let mut changed = false;
            for i in 0..self.jobs.len() {
                if self.jobs[i].state == JobState::Created && self.decide(i, &prior) {
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// For each stage position, the statuses of the jobs of the stages
    /// before it.
    fn prior_stage_sets(&self) -> Vec<StatusSet> {
        let mut per_stage = vec![StatusSet::default(); self.stage_count];
        for (job, spec) in self.jobs.iter().zip(&self.specs) {
            per_stage[spec.stage_pos].add(&job.state, spec.allow_failure);
        }
        let mut prior = Vec::with_capacity(self.stage_count);
        let mut acc = StatusSet::default();
        for set in per_stage {
            prior.push(acc);
            acc = acc.union(set);
        }
        prior
    }

    /// Decides job `i` if what it waits for is complete; true if it did.
    fn decide(&mut self, i: usize, prior: &[StatusSet]) -> bool {
        let spec = &self.specs[i];
        let (status, via_needs) = match &spec.needs {
            Some(needs) => {
                let mut set = StatusSet::default();
                for &j in needs {
                    set.add(&self.jobs[j].state, self.specs[j].allow_failure);
                }
                (set.status(true), true)
            }
            None => (prior[spec.stage_pos].status(false), false),
        };
        // Nothing to wait for counts as success (`status_for_array`).
        let status = status.unwrap_or(Composite::Success);
        if !status.is_complete() {
            return false;
        }
        let accepted = match spec.when {
            When::OnSuccess | When::Manual | When::Delayed => {
                status == Composite::Success || (status == Composite::Skipped && !via_needs)
            }
            When::OnFailure => status == Composite::Failed,
            When::Always => status != Composite::Canceled,
            When::Never => false,
        };
        if !accepted {
            let reason = self.skip_reason(i, status, via_needs);
            self.jobs[i].state = JobState::Skipped(reason);
            return true;
        }
        // GitLab calls the needs skipped as soon as one is, even while
        // others still run, and would start an `always` job then; it
        // starts here once they are all over, so their artifacts exist.
        let needs_active = spec
            .needs
            .iter()
            .flatten()
            .any(|&j| self.jobs[j].state.is_active());
        if needs_active {
            return false;
        }
        match spec.when {
            When::Delayed if spec.delay.is_some() => self.jobs[i].state = JobState::Scheduled,
            When::Manual if !spec.selected => self.jobs[i].state = JobState::Manual,
            _ => self.enqueue(i),
        }
        true
    }

    /// Why job `i`'s `when` does not accept what it waited for.
    fn skip_reason(&self, i: usize, status: Composite, needs: bool) -> SkipReason {
        match status {
            Composite::Failed => SkipReason::UpstreamFailed { needs },
            Composite::Canceled => SkipReason::UpstreamCanceled { needs },
            Composite::Skipped if needs => {
                let not_run = self.specs[i].needs.iter().flatten().find(|&&j| {
                    matches!(self.jobs[j].state, JobState::Skipped(_) | JobState::Manual)
                });
                match not_run {
                    Some(&j) => SkipReason::NeedNotRun {
                        job: self.jobs[j].name.clone(),
                    },
                    None => SkipReason::NothingFailed { needs },
                }
            }
            _ => SkipReason::NothingFailed { needs },
        }
    }

    /// Job `i` starts: its first attempt is pending, unless it is a
    /// trigger job, which never runs locally.
    fn enqueue(&mut self, i: usize) {
        self.jobs[i].state = if self.specs[i].trigger {
            JobState::Skipped(SkipReason::Trigger)
        } else {
            JobState::Pending { attempt: 1 }
        };
    }

    /// A chain of jobs each waiting for the next and the last for the
    /// first, if there is one: such jobs would never start.
    fn find_cycle(&self) -> Option<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            OnPath,
            Done,
        }
        let n = self.jobs.len();
        let waits_on = |i: usize| -> Vec<usize> {
            match &self.specs[i].needs {
                Some(needs) => needs.clone(),
                None => (0..n)
                    .filter(|&j| self.specs[j].stage_pos < self.specs[i].stage_pos)
                    .collect(),
            }
        };
        let mut mark = vec![Mark::New; n];
        for start in 0..n {
            if mark[start] != Mark::New {
                continue;
            }
            // Depth-first, with an explicit stack of (job, its prerequisites, next one).
            let mut stack: Vec<(usize, Vec<usize>, usize)> = vec![(start, waits_on(start), 0)];
            mark[start] = Mark::OnPath;
            while let Some((job, next, pos)) = stack.last_mut() {
                let Some(&to) = next.get(*pos) else {
                    mark[*job] = Mark::Done;
                    stack.pop();
                    continue;
                };
                *pos += 1;
                match mark[to] {
                    Mark::Done => {}
                    Mark::OnPath => {
                        let from = stack.iter().position(|(j, _, _)| *j == to).unwrap_or(0);
                        return Some(stack[from..].iter().map(|(j, _, _)| *j).collect());
                    }
                    Mark::New => {
                        mark[to] = Mark::OnPath;
                        let prerequisites = waits_on(to);
                        stack.push((to, prerequisites, 0));
                    }
                }
            }
        }
        None
    }
}

/// The position of each stage: the plan's stages in order, then any stage
/// a job names that the plan does not list, in order of appearance.
fn stage_positions(plan: &Plan) -> HashMap<&str, usize> {
    let mut positions: HashMap<&str, usize> = HashMap::new();
    let named = plan.stages.iter().map(|s| s.name.as_str());
    for name in named.chain(plan.jobs.iter().map(|j| j.stage.as_str())) {
        let next = positions.len();
        positions.entry(name).or_insert(next);
    }
    positions
}

fn spec_of(
    job: &PlannedJob,
    stage_of: &HashMap<&str, usize>,
    by_name: &HashMap<&str, usize>,
) -> Spec {
    // Needs the plan left without a job (optional ones, rule 145) are
    // not waited for.
    let needs = job.needs.as_ref().map(|needs| {
        let mut indices: Vec<usize> = needs
            .iter()
            .filter_map(|n| by_name.get(n.job.as_str()).copied())
            .collect();
        indices.sort_unstable();
        indices.dedup();
        indices
    });
    Spec {
        stage_pos: stage_of.get(job.stage.as_str()).copied().unwrap_or(0),
        when: job.when,
        allow_failure: job.allow_failure,
        exit_codes: job.allow_failure_exit_codes.clone(),
        needs,
        // A `start_in` that does not parse (it may hold a variable) does
        // not delay the job; one past GitLab's limit (rule 133, unchecked
        // when it holds a variable) waits as long as the limit.
        delay: job
            .start_in
            .as_deref()
            .and_then(parse_duration)
            .map(|d| d.min(START_IN_LIMIT)),
        trigger: job.trigger,
        selected: false,
        retry: job.retry.clone(),
        due: None,
    }
}

/// Marks the manual jobs called `wanted`, or the copies of the `parallel`
/// job called `wanted`, to run.
fn select_manual(plan: &Plan, specs: &mut [Spec], wanted: &str) -> Result<(), ScheduleError> {
    let matching: Vec<usize> = plan
        .jobs
        .iter()
        .enumerate()
        .filter(|(_, job)| job.name == wanted || group_name(job).as_deref() == Some(wanted))
        .map(|(i, _)| i)
        .collect();
    if matching.is_empty() {
        return Err(ScheduleError::UnknownManualJob(wanted.to_string()));
    }
    let mut any_manual = false;
    for i in matching {
        if specs[i].when == When::Manual {
            specs[i].selected = true;
            any_manual = true;
        }
    }
    if any_manual {
        Ok(())
    } else {
        Err(ScheduleError::NotManual(wanted.to_string()))
    }
}

/// The name of the `parallel` job a copy was made from (`test` for
/// `test 2/3` and for `test: [aws, prod]`).
fn group_name(job: &PlannedJob) -> Option<String> {
    let suffix = match (&job.matrix, job.parallel) {
        (Some(combo), _) => matrix_job_name("", combo),
        (None, Some(p)) => format!(" {}/{}", p.index, p.total),
        (None, None) => return None,
    };
    job.name.strip_suffix(&suffix).map(str::to_string)
}
