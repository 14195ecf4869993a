//! What `exec` and `pipeline` share: loading and planning the pipeline,
//! running a selection of its jobs, and the summary.

use std::collections::BTreeSet;
use std::time::Duration;

use super::common::{load_options, nearest, print_diagnostics, report_load_error, stdout_colored};
use crate::ci::load::{Loaded, load};
use crate::ci::plan::{Plan, PlanContext, plan};
use crate::ci::variables::job_group_name;
use crate::cli::{
    ConfigArgs, ExecutorChoice, PipelineContextArgs, RunArgs, SourceChoice as CliSource,
};
use crate::errors::{RunnerError, exit};
use crate::local::output::TerminalStyle;
use crate::local::run::{
    DependencyNames, ExecutorMode, RunOptions, RunReport, SourceChoice, dependency_names, run_plan,
};
use crate::local::var_file::read_var_file;

/// A loaded and planned pipeline, or the exit status of why there is none.
pub(crate) struct Planned {
    pub loaded: Loaded,
    pub plan: Plan,
}

pub(crate) fn load_and_plan(
    config: &ConfigArgs,
    context: &PipelineContextArgs,
) -> Result<Result<Planned, i32>, RunnerError> {
    let opts = load_options(config, context)?;
    let mut loaded = match load(&opts) {
        Ok(loaded) => loaded,
        Err(err) => return report_load_error(err).map(Err),
    };
    // Only planning reports against the sources; running does not.
    let sources = std::sync::Arc::new(std::mem::replace(
        &mut loaded.sources,
        crate::ci::source::Sources::new(),
    ));
    let mut ctx = PlanContext::new(
        loaded.pipeline_variables.clone(),
        opts.project_dir.clone(),
        opts.pipeline_source.clone(),
    );
    ctx.git = loaded.git_is_real.then(|| loaded.git.clone());
    ctx.sources = Some(std::sync::Arc::clone(&sources));
    match plan(&loaded.pipeline, &ctx) {
        Ok(plan) => Ok(Ok(Planned { loaded, plan })),
        Err(diagnostics) => {
            print_diagnostics(&sources, &diagnostics);
            Ok(Err(exit::INVALID_CONFIG))
        }
    }
}

/// Keeps only the jobs named in `keep`. Which jobs' artifacts each kept
/// job receives is decided on the whole plan first (they come from
/// earlier local runs of the jobs left out); needs on jobs left out become
/// optional, so the scheduler does not wait for jobs that will not run.
pub(crate) fn restrict_plan(plan: &mut Plan, keep: &BTreeSet<String>) -> DependencyNames {
    let names = dependency_names(plan);
    plan.jobs.retain(|j| keep.contains(&j.name));
    for job in &mut plan.jobs {
        for need in job.needs.iter_mut().flatten() {
            if !keep.contains(&need.job) {
                need.optional = true;
            }
        }
    }
    for stage in &mut plan.stages {
        stage.jobs.retain(|j| keep.contains(j));
    }
    names
}

/// The planned jobs called `name`: the job itself, or every instance of a
/// `parallel` job given by its base name.
pub(crate) fn jobs_named(plan: &Plan, name: &str) -> Vec<String> {
    if plan.job(name).is_some() {
        return vec![name.to_owned()];
    }
    plan.jobs
        .iter()
        .filter(|j| job_group_name(&j.name) == name)
        .map(|j| j.name.clone())
        .collect()
}

/// The error for a job name that selects nothing: why the job is not in
/// the pipeline, or the nearest existing name.
pub(crate) fn unknown_job(planned: &Planned, name: &str) -> RunnerError {
    if let Some(skipped) = planned.plan.skipped.iter().find(|s| s.name == name) {
        return RunnerError::Usage(format!(
            "job `{name}` is not in this pipeline: {} (see `runner plan --why {name}`)",
            skipped.reason
        ));
    }
    let names = planned
        .loaded
        .pipeline
        .jobs
        .iter()
        .map(|j| j.name.as_str())
        .chain(planned.plan.jobs.iter().map(|j| j.name.as_str()));
    let hint = match nearest(name, names) {
        Some(near) => format!("; did you mean `{near}`?"),
        None => String::new(),
    };
    RunnerError::Usage(format!("no job named `{name}` in the pipeline{hint}"))
}

/// Run options from the command line.
pub(crate) fn run_options(
    run: &RunArgs,
    context: &PipelineContextArgs,
    concurrency: usize,
    manual: Vec<String>,
    prefix_lines: bool,
    timeout: Option<Duration>,
    dependencies: Option<DependencyNames>,
) -> Result<RunOptions, RunnerError> {
    let mut file_variables = Vec::new();
    for path in &run.var_files {
        file_variables.extend(read_var_file(path).map_err(RunnerError::Usage)?);
    }
    Ok(RunOptions {
        concurrency,
        manual,
        source: match run.source {
            CliSource::Worktree => SourceChoice::Worktree,
            CliSource::Commit => SourceChoice::Commit,
        },
        style: TerminalStyle {
            color: stdout_colored(),
            quiet: run.quiet,
        },
        prefix_lines,
        file_variables,
        cli_variables: context.vars.clone(),
        timeout,
        dependencies,
        executor: match run.executor {
            ExecutorChoice::Auto => ExecutorMode::Auto,
            ExecutorChoice::Shell => ExecutorMode::Shell,
            ExecutorChoice::Docker => ExecutorMode::Docker,
        },
        docker_image: run.docker_image.clone(),
    })
}

/// Runs the planned jobs on a runtime of our own and prints the summary;
/// returns the exit status.
pub(crate) fn run_and_summarize(
    planned: Planned,
    options: RunOptions,
    summary: bool,
) -> Result<i32, RunnerError> {
    if options.executor == ExecutorMode::Docker && options.docker_image.is_none() {
        let imageless: Vec<&str> = planned
            .plan
            .jobs
            .iter()
            .filter(|j| !j.trigger && j.image.is_none())
            .map(|j| j.name.as_str())
            .collect();
        if !imageless.is_empty() {
            let names: Vec<String> = imageless.iter().map(|n| format!("`{n}`")).collect();
            let (who, verb) = if names.len() == 1 {
                ("job", "names")
            } else {
                ("jobs", "name")
            };
            return Err(RunnerError::Usage(format!(
                "--executor docker: {who} {} {verb} no image; give one with --docker-image IMAGE, \
                 or use --executor auto to run them in the shell",
                names.join(", ")
            )));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RunnerError::Other(format!("cannot start the async runtime: {e}")))?;
    let report = runtime
        .block_on(run_plan(planned.loaded, planned.plan, options))
        .map_err(RunnerError::Other)?;
    if summary {
        print_summary(&report);
    }
    Ok(if report.passed {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn print_summary(report: &RunReport) {
    let color = stdout_colored();
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let name_width = report
        .jobs
        .iter()
        .map(|j| j.name.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let stage_width = report
        .jobs
        .iter()
        .map(|j| j.stage.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!();
    println!(
        "{:<name_width$}  {:<stage_width$}  {:<16}  {:>8}  log",
        "job", "stage", "status", "time"
    );
    for job in &report.jobs {
        let status_code = match job.status.as_str() {
            "success" => "32",
            s if s.starts_with("failed") => "31",
            s if s.starts_with("allowed") || s.contains("warning") => "33",
            _ => "2",
        };
        let mut status = job.status.clone();
        if job.attempts > 1 {
            status.push_str(&format!(" ({} tries)", job.attempts));
        }
        let time = job
            .duration
            .map(|d| format!("{:.2}s", d.as_secs_f64()))
            .unwrap_or_else(|| "-".to_owned());
        let log = job
            .log_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        println!(
            "{:<name_width$}  {:<stage_width$}  {}  {:>8}  {}",
            job.name,
            job.stage,
            paint(&format!("{status:<16}"), status_code),
            time,
            log
        );
    }
    let verdict = if report.passed {
        paint(&report.status, "32")
    } else {
        paint(&report.status, "31")
    };
    println!(
        "\nPipeline #{} {verdict} in {:.2}s",
        report.pipeline_id,
        report.duration.as_secs_f64()
    );
}
