//! `runner run` and `runner run-single`: the agent in the foreground.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::agent::daemon::{Daemon, DaemonError, DaemonOptions};
use crate::cli::{AgentRunArgs, RunSingleArgs};
use crate::config::{resolve_config_path, system_id};
use crate::errors::{RunnerError, exit};
use crate::gitlab::TraceConfig;

pub fn run(args: &AgentRunArgs) -> Result<i32, RunnerError> {
    let config_path = resolve_config_path(args.config.config.as_deref());
    let working_dir = working_dir(args.working_directory.as_deref())?;
    let system_id = system_id(&config_path).map_err(|e| RunnerError::Other(e.to_string()))?;
    serve(DaemonOptions {
        config_path,
        working_dir,
        listen_address: args.listen_address.clone(),
        system_id,
        trace: TraceConfig::default(),
        max_builds: None,
        wait_timeout: None,
    })
}

pub fn run_single(args: &RunSingleArgs) -> Result<i32, RunnerError> {
    let working_dir = working_dir(args.working_directory.as_deref())?;
    // The daemon reads a configuration file; this one lives as long as
    // the command, in a private directory (it holds the token).
    let dir = tempfile::Builder::new()
        .prefix("runner-single-")
        .tempdir()
        .map_err(|e| RunnerError::Other(format!("cannot create a temporary directory: {e}")))?;
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, single_config(args))
        .map_err(|e| RunnerError::Other(format!("cannot write {}: {e}", config_path.display())))?;
    // The system id belongs to the host, not to the temporary file.
    let id_home = crate::config::default_config_path();
    let system_id = system_id(&id_home)
        .or_else(|_| system_id(&config_path))
        .map_err(|e| RunnerError::Other(e.to_string()))?;
    serve(DaemonOptions {
        config_path,
        working_dir,
        listen_address: None,
        system_id,
        trace: TraceConfig::default(),
        max_builds: args.max_builds,
        wait_timeout: args.wait_timeout.map(Duration::from_secs),
    })
}

/// A one-runner `config.toml`, with every value quoted by the TOML writer.
fn single_config(args: &RunSingleArgs) -> String {
    let mut runner = toml::Table::new();
    runner.insert("name".into(), args.name.clone().into());
    runner.insert("url".into(), args.url.clone().into());
    runner.insert("token".into(), args.token.clone().into());
    runner.insert("executor".into(), args.executor.clone().into());
    if let Some(shell) = &args.shell {
        runner.insert("shell".into(), shell.clone().into());
    }
    if let Some(image) = &args.docker_image {
        let mut docker = toml::Table::new();
        docker.insert("image".into(), image.clone().into());
        runner.insert("docker".into(), docker.into());
    }
    let mut config = toml::Table::new();
    config.insert("concurrent".into(), 1.into());
    config.insert(
        "runners".into(),
        toml::Value::Array(vec![toml::Value::Table(runner)]),
    );
    config.to_string()
}

fn working_dir(given: Option<&Path>) -> Result<PathBuf, RunnerError> {
    let dir = match given {
        Some(d) => d.to_owned(),
        None => std::env::current_dir()
            .map_err(|e| RunnerError::Other(format!("cannot read the current directory: {e}")))?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| RunnerError::Other(format!("cannot create {}: {e}", dir.display())))?;
    std::path::absolute(&dir).map_err(|e| RunnerError::Other(e.to_string()))
}

fn serve(options: DaemonOptions) -> Result<i32, RunnerError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunnerError::Other(format!("cannot start the runtime: {e}")))?;
    let result = runtime.block_on(async {
        let daemon = match Daemon::start(options).await {
            Ok(d) => d,
            Err(DaemonError::Config(message)) => {
                eprintln!("error: {message}");
                return Ok(exit::INVALID_CONFIG);
            }
            Err(e) => return Err(RunnerError::Other(e.to_string())),
        };
        let signals = tokio::spawn(handle_signals(Arc::clone(&daemon)));
        let result = daemon.run().await;
        signals.abort();
        match result {
            Ok(()) => Ok(exit::OK),
            Err(e) => Err(RunnerError::Other(e.to_string())),
        }
    });
    // Jobs left running after the shutdown timeout must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// SIGQUIT stops gracefully, SIGTERM and SIGINT forcefully (a second one
/// exits at once), SIGHUP reloads.
async fn handle_signals(daemon: Arc<Daemon>) {
    let (Ok(mut quit), Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::quit()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        daemon.log().error(
            "cannot watch for signals; stop the runner with SIGKILL",
            &[],
        );
        return;
    };
    loop {
        tokio::select! {
            _ = quit.recv() => daemon.stop_gracefully(),
            _ = term.recv() => forceful(&daemon),
            _ = int.recv() => forceful(&daemon),
            _ = hup.recv() => daemon.reload().await,
        }
    }
}

fn forceful(daemon: &Daemon) {
    if !daemon.stop_forcefully() {
        daemon.log().error("Second stop signal: exiting now", &[]);
        // Containers of aborted jobs carry labels; the next start removes
        // them.
        std::process::exit(exit::FAILED);
    }
}
