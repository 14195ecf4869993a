//! `runner pipeline`: the whole pipeline, on this machine.

use std::collections::BTreeSet;

use super::local_run::{load_and_plan, restrict_plan, run_and_summarize, run_options};
use crate::cli::PipelineArgs;
use crate::errors::RunnerError;

pub fn run(args: &PipelineArgs) -> Result<i32, RunnerError> {
    let mut planned = match load_and_plan(&args.config, &args.context)? {
        Ok(planned) => planned,
        Err(code) => return Ok(code),
    };
    let mut dependencies = None;
    if !args.stage.is_empty() {
        for stage in &args.stage {
            if !planned.plan.stages.iter().any(|s| &s.name == stage) {
                let names: Vec<&str> = planned
                    .plan
                    .stages
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect();
                return Err(RunnerError::Usage(format!(
                    "no stage `{stage}` in the pipeline (stages: {})",
                    names.join(", ")
                )));
            }
        }
        let keep: BTreeSet<String> = planned
            .plan
            .jobs
            .iter()
            .filter(|j| args.stage.contains(&j.stage))
            .map(|j| j.name.clone())
            .collect();
        dependencies = Some(restrict_plan(&mut planned.plan, &keep));
    }
    for name in &args.manual {
        let known = planned
            .plan
            .jobs
            .iter()
            .any(|j| &j.name == name || crate::ci::variables::job_group_name(&j.name) == *name);
        if !known {
            return Err(super::local_run::unknown_job(&planned, name));
        }
    }
    let concurrency = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = run_options(
        &args.run,
        &args.context,
        concurrency,
        args.manual.clone(),
        true,
        None,
        dependencies,
    )?;
    run_and_summarize(planned, options, true)
}
