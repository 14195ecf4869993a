//! `runner unregister`: removes runners from GitLab, then from
//! `config.toml`.
//!
//! A runner created in GitLab (its token starts with `glrt-`) may run on
//! several hosts; only this host's manager is
//! removed from it (`DELETE /runners/managers`), as gitlab-runner does. A
//! runner this host created with a registration token is deleted
//! (`DELETE /runners`). GitLab already forgetting the runner (403) is not
//! an error: the entry is removed from the file all the same.

use crate::cli::UnregisterArgs;
use crate::config::{RunnerSelector, load_config, remove_runners, resolve_config_path, system_id};
use crate::errors::{RunnerError, exit};
use crate::gitlab::{ApiClient, ApiError};

pub fn run(args: &UnregisterArgs) -> Result<i32, RunnerError> {
    let path = resolve_config_path(args.config.config.as_deref());
    let loaded = load_config(&path).map_err(|e| RunnerError::Other(e.to_string()))?;
    let system_id = system_id(&path).map_err(|e| RunnerError::Other(e.to_string()))?;
    let runners: Vec<_> = loaded
        .config
        .runners
        .iter()
        .filter(|r| args.all_runners || args.name.as_ref() == Some(&r.name))
        .collect();
    if runners.is_empty() {
        return Err(RunnerError::Usage(match &args.name {
            Some(name) => format!("no runner named {name:?} in {}", path.display()),
            None => format!("no runners in {}", path.display()),
        }));
    }
    let runtime = super::common::current_thread_runtime()?;
    let mut failed = false;
    for runner in runners {
        let label = format!("{} ({})", runner.name, runner.short_token());
        let result = ApiClient::new(&runner.url).and_then(|client| {
            runtime.block_on(async {
                // `glrt-` tokens belong to runners created in GitLab;
                // tokens from a registration token have no such prefix.
                if runner.token.starts_with("glrt-") {
                    client.unregister_manager(&runner.token, &system_id).await
                } else {
                    client.unregister(&runner.token).await
                }
            })
        });
        match result {
            Ok(()) | Err(ApiError::Forbidden { .. } | ApiError::NotFound { .. }) => {
                remove_runners(&path, RunnerSelector::Token(&runner.token))
                    .map_err(|e| RunnerError::Other(e.to_string()))?;
                println!("Unregistering runner from GitLab succeeded: {label}");
            }
            Err(e) => {
                eprintln!("error: unregistering runner {label} failed: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { exit::FAILED } else { exit::OK })
}
