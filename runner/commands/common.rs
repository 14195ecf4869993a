//! What `lint` and `plan` share: turning arguments into load options and
//! printing diagnostics.

use std::path::PathBuf;

use anstyle::{AnsiColor, Style};

use crate::ci::load::{LoadError, LoadFailure, LoadOptions};
use crate::cli::{ConfigArgs, PipelineContextArgs};
use crate::errors::RunnerError;

/// Load options from the command line. Without `--project-dir`, the
/// project is the git work tree around the current directory (or the
/// current directory itself outside git).
pub(crate) fn load_options(
    config: &ConfigArgs,
    context: &PipelineContextArgs,
) -> Result<LoadOptions, RunnerError> {
    let project_dir = match &config.project_dir {
        Some(dir) => dir.clone(),
        None => find_project_root()?,
    };
    let mut opts = LoadOptions::new(project_dir, config.file.clone());
    opts.offline = config.offline;
    opts.inputs = config.inputs.clone();
    opts.vars = context.vars.clone();
    opts.git_ref = context.git_ref.clone();
    opts.pipeline_source = context.pipeline_source.clone();
    Ok(opts)
}

fn find_project_root() -> Result<PathBuf, RunnerError> {
    let cwd = std::env::current_dir()
        .map_err(|e| RunnerError::Other(format!("cannot read the current directory: {e}")))?;
    let root = cwd
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(&cwd);
    Ok(root.to_path_buf())
}

/// Turns a load error into the command's exit: diagnostics are printed and
/// give status 1; an unreadable root file is a runner error.
pub(crate) fn report_load_error(err: LoadError) -> Result<i32, RunnerError> {
    match err {
        LoadError::Unreadable { path, source } => Err(RunnerError::Read { path, source }),
        LoadError::Invalid(failure) => {
            print_diagnostics(&failure);
            Ok(crate::errors::exit::INVALID_CONFIG)
        }
    }
}

pub(crate) fn print_diagnostics(failure: &LoadFailure) {
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    for diag in failure.diagnostics.iter() {
        anstream::eprintln!("{red}error{red:#}: {}", diag.render(&failure.sources));
    }
    let n = failure.diagnostics.len();
    anstream::eprintln!("{n} error{} found", if n == 1 { "" } else { "s" });
}
