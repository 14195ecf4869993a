//! `runner verify`: asks GitLab whether each configured runner still
//! exists; with `--delete`, removes those it no longer knows.

use crate::cli::VerifyArgs;
use crate::config::{RunnerSelector, load_config, remove_runners, resolve_config_path, system_id};
use crate::errors::{RunnerError, exit};
use crate::gitlab::{ApiClient, ApiError, Info};

pub fn run(args: &VerifyArgs) -> Result<i32, RunnerError> {
    let path = resolve_config_path(args.config.config.as_deref());
    let loaded = load_config(&path).map_err(|e| RunnerError::Other(e.to_string()))?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let system_id = system_id(&path).map_err(|e| RunnerError::Other(e.to_string()))?;
    let runtime = super::common::current_thread_runtime()?;
    let runners: Vec<_> = loaded
        .config
        .runners
        .iter()
        .filter(|r| args.name.as_ref().is_none_or(|n| *n == r.name))
        .collect();
    if let Some(name) = &args.name
        && runners.is_empty()
    {
        return Err(RunnerError::Usage(format!(
            "no runner named {name:?} in {}",
            path.display()
        )));
    }
    let mut invalid = Vec::new();
    let mut failed = false;
    for runner in runners {
        let label = format!("{} ({})", runner.name, runner.short_token());
        let executor = runner.executor.map_or("shell", |e| e.as_str());
        let shell = runner.shell_or_default().as_str();
        let result = match ApiClient::new(&runner.url) {
            Ok(client) => runtime.block_on(client.verify(
                &runner.token,
                &system_id,
                &Info::new(executor, shell),
            )),
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => println!("Verifying runner... is valid: {label}"),
            Err(ApiError::Forbidden { .. }) => {
                println!("Verifying runner... is removed: {label}");
                invalid.push(runner.token.clone());
            }
            Err(e) => {
                println!("Verifying runner... failed: {label}: {e}");
                failed = true;
            }
        }
    }
    if args.delete {
        for token in &invalid {
            let removed = remove_runners(&path, RunnerSelector::Token(token))
                .map_err(|e| RunnerError::Other(e.to_string()))?;
            for name in removed {
                println!("Removed runner {name} from {}", path.display());
            }
        }
    }
    Ok(if failed || (!invalid.is_empty() && !args.delete) {
        exit::FAILED
    } else {
        exit::OK
    })
}
