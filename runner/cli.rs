//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A GitLab-compatible CI runner: runs `.gitlab-ci.yml` pipelines on this
/// machine, or takes jobs from a GitLab instance.
#[derive(Debug, Parser)]
#[command(name = "runner", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a `.gitlab-ci.yml` (and everything it includes) as GitLab would.
    Lint(LintArgs),
    /// Show the pipeline GitLab would create: stages, jobs and why each runs.
    Plan(PlanArgs),
}

/// Where the configuration is and how includes are fetched.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The pipeline file, relative to the repository root unless absolute.
    #[arg(
        long,
        short = 'f',
        value_name = "PATH",
        default_value = ".gitlab-ci.yml"
    )]
    pub file: PathBuf,
    /// The repository the pipeline belongs to (default: the git repository
    /// around the current directory).
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// Use only cached copies of remote, project, template and component
    /// includes; never touch the network.
    #[arg(long)]
    pub offline: bool,
    /// A value for one of the root file's `spec:inputs`, typed as YAML
    /// types it (`3`, `true`, `[a, b]`). Repeatable.
    #[arg(long = "input", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub inputs: Vec<(String, String)>,
}

/// What the pipeline is evaluated for: the variables and ref GitLab would
/// have when it creates the pipeline.
#[derive(Debug, Args)]
pub struct PipelineContextArgs {
    /// A pipeline variable (highest precedence, like a variable given when
    /// running a pipeline by hand). Repeatable.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub vars: Vec<(String, String)>,
    /// The branch or tag to evaluate for (default: the checked-out branch, or
    /// the tag at HEAD when detached).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// `CI_PIPELINE_SOURCE`: push, web, schedule, merge_request_event, api,
    /// trigger, pipeline, parent_pipeline, ...
    #[arg(long, value_name = "SOURCE", default_value = "push")]
    pub pipeline_source: String,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Check a file meant to be included (a template or component) on its
    /// own: what it leaves to the including file (`extends` parents,
    /// `!reference` targets, stages, needed jobs, required inputs) is not
    /// reported.
    #[arg(long)]
    pub fragment: bool,
    #[command(flatten)]
    pub context: PipelineContextArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub context: PipelineContextArgs,
    /// Print the plan as JSON (schema in the README).
    #[arg(long)]
    pub json: bool,
    /// Explain step by step why JOB is in the pipeline or not.
    #[arg(long, value_name = "JOB")]
    pub why: Option<String>,
    /// Compare `changes` with this ref instead of the automatic base (see
    /// the README).
    #[arg(long, value_name = "REF")]
    pub changes_base: Option<String>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}
