//! What `lint` and `plan` share: turning arguments into load options and
//! printing diagnostics.

use std::path::PathBuf;

use anstyle::{AnsiColor, Style};

use crate::ci::diag::Diagnostics;
use crate::ci::load::{LoadError, LoadFailure, LoadOptions};
use crate::ci::source::Sources;
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
        LoadError::Invalid(LoadFailure {
            sources,
            diagnostics,
        }) => {
            print_diagnostics(&sources, &diagnostics);
            Ok(crate::errors::exit::INVALID_CONFIG)
        }
    }
}

/// Prints each diagnostic with its location and source line, then a count.
pub(crate) fn print_diagnostics(sources: &Sources, diagnostics: &Diagnostics) {
    let red = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    for diag in diagnostics.iter() {
        anstream::eprintln!("{red}error{red:#}: {}", diag.render(sources));
    }
    let n = diagnostics.len();
    anstream::eprintln!("{n} error{} found", if n == 1 { "" } else { "s" });
}

/// Whether to colour standard output: only on a terminal, and never when
/// `NO_COLOR` is set (to anything but the empty string).
pub(crate) fn stdout_colored() -> bool {
    use std::io::IsTerminal as _;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// The closest of `names` to `wanted`, for "did you mean" hints: the one
/// with the smallest edit distance, if it is close enough to be a typo.
pub(crate) fn nearest<'a>(
    wanted: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (wanted.chars().count() / 3).max(2);
    names
        .into_iter()
        .map(|name| (edit_distance(wanted, name), name))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// The runtime of a command that only makes a few calls (the Docker API,
/// GitLab's API) and runs no jobs.
pub(crate) fn current_thread_runtime() -> Result<tokio::runtime::Runtime, RunnerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunnerError::Other(format!("cannot start the async runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_name_suggests_typos_only() {
        let names = ["build", "test:unit", "deploy"];
        assert_eq!(nearest("biuld", names), Some("build"));
        assert_eq!(nearest("test:unti", names), Some("test:unit"));
        assert_eq!(nearest("release", names), None);
    }
}
