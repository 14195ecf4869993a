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
    /// Run one job of the pipeline on this machine.
    Exec(ExecArgs),
    /// Run the whole pipeline on this machine: stages, needs, artifacts, cache.
    Pipeline(PipelineArgs),
    /// Remove the Docker containers, networks and volumes that jobs of a
    /// runner that was killed left behind.
    Cleanup(CleanupArgs),
    /// Register this machine with a GitLab instance and add the runner to
    /// `config.toml`.
    Register(RegisterArgs),
    /// Check that every configured runner is still known to GitLab.
    Verify(VerifyArgs),
    /// Remove runners from GitLab and from `config.toml`.
    Unregister(UnregisterArgs),
    /// Run the agent: take jobs from GitLab and run them (SIGQUIT: finish
    /// running jobs and stop; SIGTERM/SIGINT: abort them and stop; SIGHUP:
    /// reload `config.toml`).
    Run(AgentRunArgs),
    /// Run one runner given on the command line, without `config.toml`.
    RunSingle(RunSingleArgs),
    /// List the runners of the agent's configuration (tokens shortened).
    List(ListArgs),
    /// Install the agent as a systemd service that starts at boot.
    Install(InstallArgs),
    /// Disable and remove the agent's systemd service.
    Uninstall(ServiceArgs),
    /// Start the agent's service (`systemctl start`).
    Start(ServiceArgs),
    /// Stop the agent's service; running jobs finish first.
    Stop(ServiceArgs),
    /// Restart the agent's service; running jobs finish first.
    Restart(ServiceArgs),
    /// Show the state of the agent's service (`systemctl status`).
    Status(ServiceArgs),
}

/// Where the agent's `config.toml` is.
#[derive(Debug, Args)]
pub struct AgentConfigArgs {
    /// The agent's configuration file (default: /etc/runner/config.toml as
    /// root, ~/.runner/config.toml otherwise).
    #[arg(long, short = 'c', value_name = "PATH", env = "RUNNER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
    /// Do not ask for anything missing; fail instead.
    #[arg(long, env = "REGISTER_NON_INTERACTIVE")]
    pub non_interactive: bool,
    /// The GitLab instance, e.g. https://gitlab.example.com.
    #[arg(long, short = 'u', value_name = "URL", env = "CI_SERVER_URL")]
    pub url: Option<String>,
    /// A runner authentication token (glrt-...), from GitLab's "New runner"
    /// page: the runner already exists in GitLab and is only verified.
    #[arg(
        long,
        short = 't',
        value_name = "TOKEN",
        env = "CI_SERVER_TOKEN",
        conflicts_with = "registration_token"
    )]
    pub token: Option<String>,
    /// A registration token (deprecated in GitLab): a new runner is created.
    #[arg(long, short = 'r', value_name = "TOKEN", env = "REGISTRATION_TOKEN")]
    pub registration_token: Option<String>,
    /// The name of this runner in `config.toml` (default: the host name).
    #[arg(long, value_name = "NAME", env = "RUNNER_NAME")]
    pub name: Option<String>,
    /// Where jobs run: shell or docker.
    #[arg(long, value_name = "EXECUTOR", env = "RUNNER_EXECUTOR")]
    pub executor: Option<String>,
    /// The shell jobs' scripts are written for: bash (default) or sh.
    #[arg(long, value_name = "SHELL", env = "RUNNER_SHELL")]
    pub shell: Option<String>,
    /// The image of jobs that name none (docker executor).
    #[arg(long, value_name = "IMAGE", env = "DOCKER_IMAGE")]
    pub docker_image: Option<String>,
    /// With a registration token: the runner's description in GitLab.
    #[arg(long, value_name = "TEXT", env = "RUNNER_DESCRIPTION")]
    pub description: Option<String>,
    /// With a registration token: comma-separated tags.
    #[arg(long, value_name = "TAGS", env = "RUNNER_TAG_LIST")]
    pub tag_list: Option<String>,
    /// With a registration token: also take jobs without tags.
    #[arg(long, env = "REGISTER_RUN_UNTAGGED")]
    pub run_untagged: bool,
    /// With a registration token: lock the runner to its project.
    #[arg(long, env = "REGISTER_LOCKED")]
    pub locked: bool,
    /// With a registration token: not_protected or ref_protected.
    #[arg(long, value_name = "LEVEL", env = "REGISTER_ACCESS_LEVEL")]
    pub access_level: Option<String>,
    /// With a registration token: the longest job timeout, in seconds.
    #[arg(long, value_name = "SECONDS", env = "REGISTER_MAXIMUM_TIMEOUT")]
    pub maximum_timeout: Option<u64>,
    /// With a registration token: create the runner paused.
    #[arg(long, env = "REGISTER_PAUSED")]
    pub paused: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
    /// Remove the runners GitLab no longer knows from `config.toml`.
    #[arg(long)]
    pub delete: bool,
    /// Only the runner of this name.
    #[arg(long, short = 'n', value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnregisterArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
    /// The runner of this name.
    #[arg(
        long,
        short = 'n',
        value_name = "NAME",
        required_unless_present = "all_runners"
    )]
    pub name: Option<String>,
    /// Every runner of `config.toml`.
    #[arg(long, conflicts_with = "name")]
    pub all_runners: bool,
}

#[derive(Debug, Args)]
pub struct AgentRunArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
    /// Where builds and caches go when `config.toml` names no directory
    /// (default: the current directory).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub working_directory: Option<PathBuf>,
    /// Serve /metrics and /health here, over the file's `listen_address`.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen_address: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunSingleArgs {
    /// The GitLab instance.
    #[arg(long, short = 'u', value_name = "URL", env = "CI_SERVER_URL")]
    pub url: String,
    /// The runner authentication token (glrt-...).
    #[arg(long, short = 't', value_name = "TOKEN", env = "CI_SERVER_TOKEN")]
    pub token: String,
    /// Where jobs run: shell or docker.
    #[arg(
        long,
        value_name = "EXECUTOR",
        env = "RUNNER_EXECUTOR",
        default_value = "shell"
    )]
    pub executor: String,
    /// The shell jobs' scripts are written for: bash (default) or sh.
    #[arg(long, value_name = "SHELL", env = "RUNNER_SHELL")]
    pub shell: Option<String>,
    /// A name for logs.
    #[arg(
        long,
        value_name = "NAME",
        env = "RUNNER_NAME",
        default_value = "single"
    )]
    pub name: String,
    /// The image of jobs that name none (docker executor).
    #[arg(long, value_name = "IMAGE", env = "DOCKER_IMAGE")]
    pub docker_image: Option<String>,
    /// Where builds and caches go (default: the current directory).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub working_directory: Option<PathBuf>,
    /// Stop after this many jobs.
    #[arg(long, value_name = "N")]
    pub max_builds: Option<u32>,
    /// Stop after this many seconds without a job.
    #[arg(long, value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub config: AgentConfigArgs,
}

/// Which systemd service.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service's name: the unit is `<NAME>.service`.
    #[arg(long, short = 'n', value_name = "NAME", default_value = "runner")]
    pub service: String,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The user the service runs as (default: root).
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,
    #[command(flatten)]
    pub config: AgentConfigArgs,
    /// The agent's working directory, where shell jobs' builds and caches
    /// go by default (default: the current directory).
    #[arg(long, short = 'd', value_name = "DIR")]
    pub working_directory: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// Every project's leftovers, not only the current one's.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub context: PipelineContextArgs,
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

/// How local jobs run; shared by `exec` and `pipeline`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Variables from a YAML file: `KEY: value` or `KEY: {value, masked,
    /// file, raw}`. Keeps secrets off the command line. Repeatable.
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Where jobs run: `auto` runs jobs that name an `image:` in Docker and
    /// the others in the shell; `shell` and `docker` run every job there.
    #[arg(long, value_enum, default_value_t = ExecutorChoice::Auto)]
    pub executor: ExecutorChoice,
    /// With `--executor docker`: the image of jobs that name none.
    #[arg(long, value_name = "IMAGE")]
    pub docker_image: Option<String>,
    /// How the job gets its sources: `worktree` (default) is the working
    /// tree as it is, uncommitted edits included, over a checkout of HEAD;
    /// `commit` is exactly what GitLab does (`GIT_STRATEGY`, `GIT_DEPTH`, ...)
    /// with this repository as the remote.
    #[arg(long, value_enum, default_value_t = SourceChoice::Worktree)]
    pub source: SourceChoice,
    /// Print only the summary, not the jobs' output (the full logs are
    /// still written to files).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorChoice {
    Auto,
    Shell,
    Docker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceChoice {
    Worktree,
    Commit,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The job to run (for `parallel` jobs: `name 1/3`, or the name alone
    /// for every instance).
    pub job: String,
    /// First run the jobs JOB needs, and theirs, so their artifacts reach it.
    #[arg(long)]
    pub needs: bool,
    /// The job timeout, overriding the job's `timeout:` (e.g. `10m`, `1h`).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub context: PipelineContextArgs,
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// How many jobs run at once (default: the number of CPU cores).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Run this manual job too (a job name, or a parallel job's base name).
    /// Repeatable.
    #[arg(long, value_name = "JOB")]
    pub manual: Vec<String>,
    /// Run only the jobs of this stage (and none before it). Repeatable.
    #[arg(long, value_name = "STAGE")]
    pub stage: Vec<String>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub context: PipelineContextArgs,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}
