//! `runner exec JOB`: one job of the pipeline, on this machine.

use std::collections::BTreeSet;

use super::local_run::{
    jobs_named, load_and_plan, restrict_plan, run_and_summarize, run_options, unknown_job,
};
use crate::ci::model::when::When;
use crate::ci::plan::Plan;
use crate::cli::ExecArgs;
use crate::errors::RunnerError;
use crate::job::engine::parse_go_duration;

pub fn run(args: &ExecArgs) -> Result<i32, RunnerError> {
    let timeout = match &args.timeout {
        Some(text) => Some(
            parse_go_duration(text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    RunnerError::Usage(format!(
                        "--timeout {text:?} is not a duration such as 90s, 10m or 1h30m"
                    ))
                })?,
        ),
        None => None,
    };
    let mut planned = match load_and_plan(&args.config, &args.context)? {
        Ok(planned) => planned,
        Err(code) => return Ok(code),
    };
    let targets = jobs_named(&planned.plan, &args.job);
    if targets.is_empty() {
        return Err(unknown_job(&planned, &args.job));
    }
    let mut keep: BTreeSet<String> = targets.iter().cloned().collect();
    if args.needs {
        for target in &targets {
            add_prerequisites(&planned.plan, target, &mut keep);
        }
    }
    let dependencies = restrict_plan(&mut planned.plan, &keep);
    // The job asked for runs now, whatever its `when`: a manual job needs
    // no extra confirmation, a delayed one no wait, and an `on_failure`
    // job runs although nothing failed.
    for job in &mut planned.plan.jobs {
        if targets.contains(&job.name) {
            job.when = When::OnSuccess;
            job.start_in = None;
        }
    }
    let several = keep.len() > 1;
    let options = run_options(
        &args.run,
        &args.context,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        // The targets were made ordinary jobs above: nothing is manual.
        Vec::new(),
        several,
        timeout,
        Some(dependencies),
    )?;
    run_and_summarize(planned, options, several)
}

/// Adds the jobs `job` waits for, transitively: its `needs`, or without
/// `needs` every job of the earlier stages, as GitLab orders them.
fn add_prerequisites(plan: &Plan, job: &str, keep: &mut BTreeSet<String>) {
    let Some(planned) = plan.job(job) else { return };
    let before: Vec<String> = match &planned.needs {
        Some(needs) => needs.iter().map(|n| n.job.clone()).collect(),
        None => {
            let index = |stage: &str| plan.stages.iter().position(|s| s.name == stage);
            let mine = index(&planned.stage);
            plan.jobs
                .iter()
                .filter(|j| index(&j.stage) < mine)
                .map(|j| j.name.clone())
                .collect()
        }
    };
    for name in before {
        if plan.job(&name).is_some() && keep.insert(name.clone()) {
            add_prerequisites(plan, &name, keep);
        }
    }
}
