//! Loading a pipeline configuration from disk, the way GitLab builds one:
//! read the file, resolve its includes, `extends`, `!reference` tags and
//! `default:`, then decode every keyword.
//!
//! This is the one entry point `lint`, `plan` and the local pipeline runner
//! share; each later stage only sees a fully validated [`Pipeline`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::compose;
use super::diag::Diagnostics;
use super::expr::Expr;
use super::fragment;
use super::include::{ConditionEvaluator, IncludeContext, load_config};
use super::model::{Pipeline, decode_fragment, decode_pipeline};
use super::source::Sources;
use super::variables::{
    Availability, GitError, GitFacts, PipelineOptions, VarSource, Variables, availability,
    pipeline_variables,
};
use super::yaml::{Node, parse_documents};

/// What to load and for which pipeline.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The repository root: local includes and `exists` are relative to it.
    pub project_dir: PathBuf,
    /// The root configuration file, relative to `project_dir` unless absolute.
    pub file: PathBuf,
    /// Never touch the network; remote includes come from the cache only.
    pub offline: bool,
    /// Where fetched includes are cached.
    pub cache_dir: PathBuf,
    /// Pipeline variables given on the command line (`--var`).
    pub vars: Vec<(String, String)>,
    /// The branch or tag to evaluate for (`--ref`).
    pub git_ref: Option<String>,
    /// `CI_PIPELINE_SOURCE`.
    pub pipeline_source: String,
    /// Values for the root file's `spec:inputs` (`--input`).
    pub inputs: Vec<(String, String)>,
    /// Check a file meant to be included, on its own (see [`super::fragment`]).
    pub fragment: bool,
}

impl LoadOptions {
    pub fn new(project_dir: PathBuf, file: PathBuf) -> LoadOptions {
        LoadOptions {
            project_dir,
            file,
            offline: false,
            cache_dir: default_cache_dir(),
            vars: Vec::new(),
            git_ref: None,
            pipeline_source: "push".to_string(),
            inputs: Vec::new(),
            fragment: false,
        }
    }
}

/// The cache of fetched includes: `$RUNNER_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/runner`, else `~/.cache/runner`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUNNER_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("runner");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/runner"),
        None => std::env::temp_dir().join("runner-cache"),
    }
}

/// A loaded, valid configuration and what it was evaluated against.
pub struct Loaded {
    pub sources: Sources,
    pub pipeline: Pipeline,
    /// The repository's state (synthetic when the project is not a git
    /// repository, see [`GitFacts::without_repository`]).
    pub git: GitFacts,
    /// True when `git` was read from a real repository.
    pub git_is_real: bool,
    /// Predefined pipeline variables plus the command line's `--var`s.
    pub pipeline_variables: Variables,
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The root file itself could not be read: a problem of the runner's
    /// invocation, not of the configuration.
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration is invalid; every problem found is listed.
    Invalid(LoadFailure),
}

/// An invalid configuration: the diagnostics and the files they point into.
#[derive(Debug)]
pub struct LoadFailure {
    pub sources: Sources,
    pub diagnostics: Diagnostics,
}

/// Loads and validates the configuration named by `opts`.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    load_with(opts, |_| {})
}

/// [`load`], with a chance to adjust how includes are resolved (a different
/// fetcher, for example) before anything is read.
pub fn load_with(
    opts: &LoadOptions,
    adjust: impl FnOnce(&mut IncludeContext),
) -> Result<Loaded, LoadError> {
    let path = if opts.file.is_absolute() {
        opts.file.clone()
    } else {
        opts.project_dir.join(&opts.file)
    };
    let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Unreadable {
        path: path.clone(),
        source,
    })?;

    let (git, git_is_real) = match GitFacts::read(&opts.project_dir) {
        Ok(facts) => (facts, true),
        Err(GitError::NotARepository(_) | GitError::NoCommit(_)) => {
            (GitFacts::without_repository(&opts.project_dir), false)
        }
        // git itself is broken or missing: still lint, without its facts.
        Err(_) => (GitFacts::without_repository(&opts.project_dir), false),
    };
    let pipeline_opts = PipelineOptions {
        ref_override: opts.git_ref.clone(),
        source: opts.pipeline_source.clone(),
        config_path: display_name(&opts.project_dir, &path),
        ..PipelineOptions::default()
    };
    let mut pipeline_variables = pipeline_variables(&git, &pipeline_opts);
    for (key, value) in &opts.vars {
        pipeline_variables.set(key.clone(), value.clone(), VarSource::Pipeline);
    }

    let mut sources = Sources::new();
    let root = sources.add(display_name(&opts.project_dir, &path), text);
    let mut ctx = include_context(opts, &pipeline_variables);
    adjust(&mut ctx);

    let invalid = |sources: Sources, diagnostics: Diagnostics| {
        LoadError::Invalid(LoadFailure {
            sources,
            diagnostics,
        })
    };
    let mut config = match load_config(root, &mut sources, &ctx) {
        Ok(config) => config,
        Err(diags) => return Err(invalid(sources, diags)),
    };
    let stubs = if opts.fragment {
        fragment::stub_missing_parents(&mut config)
    } else {
        Vec::new()
    };
    if let Err(diags) = compose::resolve_extends(&mut config) {
        return Err(invalid(sources, diags));
    }
    if opts.fragment {
        fragment::remove_stubs(&mut config, &stubs);
        fragment::drop_unresolvable_references(&mut config);
    }
    if let Err(diags) = compose::resolve_references(&mut config) {
        return Err(invalid(sources, diags));
    }
    if opts.fragment {
        fragment::stub_missing_scripts(&mut config);
    }
    if let Err(diags) = compose::apply_defaults(&mut config) {
        return Err(invalid(sources, diags));
    }
    let decoded = if opts.fragment {
        decode_fragment(&config)
    } else {
        decode_pipeline(&config)
    };
    match decoded {
        Ok(pipeline) => Ok(Loaded {
            sources,
            pipeline,
            git,
            git_is_real,
            pipeline_variables,
        }),
        Err(diags) => Err(invalid(sources, diags)),
    }
}

/// The file's name in messages: relative to the project when inside it.
fn display_name(project_dir: &Path, path: &Path) -> String {
    path.strip_prefix(project_dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// The include context: only the variables GitLab allows in `include`
/// (rule 51: predefined variables known before the pipeline exists, and
/// pipeline variables; never YAML variables).
fn include_context(opts: &LoadOptions, pipeline_variables: &Variables) -> IncludeContext {
    let server_url = pipeline_variables
        .lookup("CI_SERVER_URL")
        .unwrap_or("https://gitlab.com")
        .to_string();
    let mut ctx = IncludeContext::new(opts.project_dir.clone(), server_url, opts.cache_dir.clone());
    ctx.offline = opts.offline;
    ctx.placeholder_inputs = opts.fragment;
    ctx.root_inputs = opts
        .inputs
        .iter()
        .map(|(k, v)| (k.clone(), input_value(v)))
        .collect();
    let mut variables = BTreeMap::new();
    for var in pipeline_variables.effective() {
        let allowed = var.source == VarSource::Pipeline
            || matches!(
                availability(&var.key),
                Some(Availability::PrePipeline | Availability::Pipeline)
            );
        if allowed {
            variables.insert(var.key.clone(), var.value.clone());
        }
    }
    ctx.variables = variables;
    ctx.conditions = Some(Box::new(ExpressionConditions));
    ctx
}

/// A command-line input value, typed as YAML would type it (`3` is a
/// number, `true` a boolean, `[a, b]` an array), so typed inputs can be
/// given from the shell.
fn input_value(text: &str) -> Node {
    let source = super::source::SourceId(0);
    match parse_documents(text, source) {
        Ok(mut docs) if docs.len() == 1 => docs.remove(0),
        _ => Node::string(text, super::source::Span::synthetic()),
    }
}

/// `include:rules:if` through the CI/CD variable expression engine.
struct ExpressionConditions;

impl ConditionEvaluator for ExpressionConditions {
    fn if_true(&self, expr: &str, vars: &BTreeMap<String, String>) -> Result<bool, String> {
        let parsed = Expr::parse(expr).map_err(|e| e.to_string())?;
        Ok(parsed.evaluate(vars))
    }
}
