//! `runner plan`: the pipeline GitLab would create, and why.

use std::sync::Arc;

use super::common::{load_options, nearest, print_diagnostics, report_load_error, stdout_colored};
use crate::ci::load::load;
use crate::ci::plan::{PlanContext, explain, plan, render_text};
use crate::cli::PlanArgs;
use crate::errors::{RunnerError, exit};

pub fn run(args: &PlanArgs) -> Result<i32, RunnerError> {
    let opts = load_options(&args.config, &args.context)?;
    let loaded = match load(&opts) {
        Ok(loaded) => loaded,
        Err(err) => return report_load_error(err),
    };
    let sources = Arc::new(loaded.sources);
    let mut ctx = PlanContext::new(
        loaded.pipeline_variables,
        opts.project_dir.clone(),
        opts.pipeline_source.clone(),
    );
    ctx.git = loaded.git_is_real.then_some(loaded.git);
    ctx.sources = Some(Arc::clone(&sources));
    ctx.changes_base = args.changes_base.clone();

    if let Some(job) = &args.why {
        return match explain(&loaded.pipeline, &ctx, job) {
            Some(lines) => {
                for line in lines {
                    println!("{line}");
                }
                Ok(exit::OK)
            }
            None => {
                let names = loaded.pipeline.jobs.iter().map(|j| j.name.as_str());
                let hint = match nearest(job, names) {
                    Some(name) => format!("; did you mean `{name}`?"),
                    None => String::new(),
                };
                Err(RunnerError::Usage(format!(
                    "no job named `{job}` in the pipeline{hint}"
                )))
            }
        };
    }

    match plan(&loaded.pipeline, &ctx) {
        Ok(plan) => {
            if args.json {
                let json = serde_json::to_string_pretty(&plan).map_err(|e| {
                    RunnerError::Other(format!("cannot write the plan as JSON: {e}"))
                })?;
                println!("{json}");
            } else {
                print!("{}", render_text(&plan, stdout_colored()));
            }
            Ok(exit::OK)
        }
        Err(diagnostics) => {
            print_diagnostics(&sources, &diagnostics);
            Ok(exit::INVALID_CONFIG)
        }
    }
}
