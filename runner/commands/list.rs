//! `runner list`: the configuration file and its runners, one per line.
//! Tokens are secrets, so only their short form is shown (the one GitLab
//! shows in its runner list and job logs).

use crate::cli::ListArgs;
use crate::config::{ConfigError, Loaded, load_config, resolve_config_path};
use crate::errors::{RunnerError, exit};

pub fn run(args: &ListArgs) -> Result<i32, RunnerError> {
    let path = resolve_config_path(args.config.config.as_deref());
    let Loaded { config, warnings } = match load_config(&path) {
        Ok(loaded) => loaded,
        Err(ConfigError::Read { path, source }) => return Err(RunnerError::Read { path, source }),
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(exit::INVALID_CONFIG);
        }
    };
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    const HEADER: &str = "Listing configured runners";
    let width = config
        .runners
        .iter()
        .map(|r| r.name.chars().count())
        .chain([HEADER.len()])
        .max()
        .unwrap_or(0)
        + 2;
    println!("{HEADER:<width$}ConfigFile={}", path.display());
    for runner in &config.runners {
        println!(
            "{:<width$}Executor={} Token={} URL={}",
            runner.name,
            runner.executor.map_or("", |e| e.as_str()),
            runner.short_token(),
            runner.url,
        );
    }
    Ok(exit::OK)
}
