//! `runner cleanup`: removes what jobs left in Docker when the runner
//! running them was killed. Every object a local job creates carries
//! labels naming its project, so this removes the current project's
//! leftovers only (or every project's with `--all`). Run it when none of
//! those jobs is running: it removes running jobs' containers too.

use runner_executors::docker::{DockerExecutor, DockerOptions};

use super::common::load_options;
use crate::cli::CleanupArgs;
use crate::errors::{RunnerError, exit};
use crate::local::state::ProjectState;

pub fn run(args: &CleanupArgs) -> Result<i32, RunnerError> {
    let owners = if args.all {
        ProjectState::all_docker_owners()
    } else {
        let opts = load_options(&args.config, &args.context)?;
        let toplevel = crate::ci::variables::GitFacts::read(&opts.project_dir)
            .map(|facts| facts.toplevel)
            .unwrap_or(opts.project_dir);
        vec![ProjectState::for_project(&toplevel).docker_owner()]
    };
    let runtime = super::common::current_thread_runtime()?;
    let mut removed = 0;
    for owner in owners {
        let report = runtime.block_on(async {
            let mut options = DockerOptions::default();
            options.owner = owner;
            let docker = DockerExecutor::new(options)
                .await
                .map_err(|e| RunnerError::Other(e.to_string()))?;
            docker
                .remove_leftovers()
                .await
                .map_err(|e| RunnerError::Other(e.to_string()))
        })?;
        for (kind, names) in [
            ("container", &report.containers),
            ("network", &report.networks),
            ("volume", &report.volumes),
        ] {
            for name in names {
                println!("removed {kind} {name}");
                removed += 1;
            }
        }
    }
    if removed == 0 {
        println!("Nothing to remove.");
    }
    Ok(exit::OK)
}
