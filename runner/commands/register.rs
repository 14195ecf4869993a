//! `runner register`: makes this machine a runner of a GitLab instance and
//! appends it to `config.toml`.
//!
//! Two kinds of token, as GitLab has them:
//! - a runner authentication token (`glrt-…`): the runner was created in
//!   GitLab's UI; it is only verified (`POST /runners/verify`), and its
//!   settings (tags, locked, ...) stay GitLab's business;
//! - a registration token (deprecated): `POST /runners` creates the runner
//!   and answers with its authentication token.
//!
//! What is missing from the command line is asked for on standard input,
//! unless `--non-interactive`.

use std::io::{BufRead, Write};
use std::time::SystemTime;

use crate::cli::RegisterArgs;
use crate::config::{
    ExecutorKind, NewRunner, RunnerShell, Timestamp, add_runner, resolve_config_path, system_id,
};
use crate::errors::{RunnerError, exit};
use crate::gitlab::{ApiClient, ApiError, Info, RegisterParams};

/// What the command line and the answers give.
struct Answers {
    url: String,
    token: Token,
    name: String,
    executor: ExecutorKind,
    shell: Option<RunnerShell>,
    docker_image: Option<String>,
}

enum Token {
    Authentication(String),
    Registration(String),
}

pub fn run(args: &RegisterArgs) -> Result<i32, RunnerError> {
    let path = resolve_config_path(args.config.config.as_deref());
    let answers = match gather(args) {
        Ok(a) => a,
        Err(message) => return Err(RunnerError::Usage(message)),
    };
    let system_id = system_id(&path).map_err(|e| RunnerError::Other(e.to_string()))?;
    let runtime = super::common::current_thread_runtime()?;
    let client = ApiClient::new(&answers.url).map_err(|e| RunnerError::Usage(e.to_string()))?;
    let info = Info::new(answers.executor.as_str(), shell_name(answers.shell));
    let obtained = SystemTime::now();

    let (id, token, expires, created) = match &answers.token {
        Token::Authentication(token) => {
            if has_runner_settings(args) {
                return Err(RunnerError::Usage(
                    "--description, --tag-list, --run-untagged, --locked, --access-level, \
                     --maximum-timeout and --paused belong to GitLab for a runner created with \
                     an authentication token: set them in GitLab's runner settings"
                        .to_owned(),
                ));
            }
            let verified = runtime
                .block_on(client.verify(token, &system_id, &info))
                .map_err(|e| api_failure("verifying the runner", &e))?;
            let token = verified.token.clone().unwrap_or_else(|| token.clone());
            (verified.id, token, verified.token_expires_at, false)
        }
        Token::Registration(registration) => {
            let params = RegisterParams {
                description: args
                    .description
                    .clone()
                    .unwrap_or_else(|| answers.name.clone()),
                tag_list: args
                    .tag_list
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect(),
                run_untagged: args.run_untagged,
                locked: args.locked,
                access_level: args.access_level.clone().unwrap_or_default(),
                maximum_timeout: args.maximum_timeout.unwrap_or(0),
                paused: args.paused,
                ..RegisterParams::default()
            };
            let registered = runtime
                .block_on(client.register(registration, &params, &info))
                .map_err(|e| api_failure("registering the runner", &e))?;
            (
                Some(registered.id),
                registered.token,
                registered.token_expires_at,
                true,
            )
        }
    };

    let runner = NewRunner {
        name: answers.name.clone(),
        url: answers.url.clone(),
        id,
        token: token.clone(),
        token_obtained_at: obtained,
        token_expires_at: Timestamp::token_expiry(expires.as_deref()),
        executor: answers.executor,
        shell: answers.shell,
        docker_image: answers.docker_image.clone(),
    };
    if let Err(e) = add_runner(&path, &runner) {
        // A runner GitLab created for nothing would wait there forever.
        if created {
            let _ = runtime.block_on(client.unregister(&token));
        }
        return Err(RunnerError::Other(e.to_string()));
    }
    println!(
        "Runner registered successfully: {} ({}) in {}",
        answers.name,
        crate::gitlab::short_token(&token),
        path.display()
    );
    println!("Start it with `runner run --config {}`.", path.display());
    Ok(exit::OK)
}

fn has_runner_settings(args: &RegisterArgs) -> bool {
    args.description.is_some()
        || args.tag_list.is_some()
        || args.run_untagged
        || args.locked
        || args.access_level.is_some()
        || args.maximum_timeout.is_some()
        || args.paused
}

fn api_failure(action: &str, e: &ApiError) -> RunnerError {
    let hint = match e {
        ApiError::Forbidden { .. } => " (is the token right, and the runner not deleted?)",
        ApiError::Gone { .. } => {
            " (registration tokens are disabled on this instance: create the runner in GitLab and use its glrt- token with --token)"
        }
        _ => "",
    };
    RunnerError::Other(format!("{action} failed: {e}{hint}"))
}

fn shell_name(shell: Option<RunnerShell>) -> &'static str {
    match shell {
        Some(RunnerShell::Sh) => "sh",
        _ => "bash",
    }
}

/// The answers: flags first, then questions for what is missing.
fn gather(args: &RegisterArgs) -> Result<Answers, String> {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut ask = |question: &str, default: Option<&str>| -> Result<String, String> {
        if args.non_interactive {
            return match default {
                Some(d) => Ok(d.to_owned()),
                None => Err(format!("{question} is missing (--non-interactive)")),
            };
        }
        let mut out = std::io::stderr();
        match default {
            Some(d) => {
                let _ = write!(out, "Enter {question} [{d}]: ");
            }
            None => {
                let _ = write!(out, "Enter {question}: ");
            }
        }
        let _ = out.flush();
        let mut line = String::new();
        let read = input
            .read_line(&mut line)
            .map_err(|e| format!("cannot read {question}: {e}"))?;
        let line = line.trim();
        match (read, line.is_empty(), default) {
            (_, false, _) => Ok(line.to_owned()),
            (_, true, Some(d)) => Ok(d.to_owned()),
            (0, true, None) => Err(format!("{question} is missing")),
            (_, true, None) => Err(format!("{question} is required")),
        }
    };

    let url = match &args.url {
        Some(u) => u.clone(),
        None => ask(
            "the GitLab instance URL (for example, https://gitlab.com/)",
            None,
        )?,
    };
    let token = match (&args.token, &args.registration_token) {
        (Some(t), _) => Token::Authentication(t.clone()),
        (None, Some(r)) => Token::Registration(r.clone()),
        (None, None) => {
            let t = ask("the runner authentication token (glrt-...)", None)?;
            if t.starts_with("glrt-") {
                Token::Authentication(t)
            } else {
                Token::Registration(t)
            }
        }
    };
    let host = crate::job::engine::hostname();
    let name = match &args.name {
        Some(n) => n.clone(),
        None => ask("a name for the runner", Some(&host))?,
    };
    let executor_text = match &args.executor {
        Some(e) => e.clone(),
        None => ask("an executor (shell, docker)", Some("shell"))?,
    };
    let executor = match executor_text.trim() {
        "shell" => ExecutorKind::Shell,
        "docker" => ExecutorKind::Docker,
        other => {
            return Err(format!(
                "executor {other:?} is not supported here: use shell or docker"
            ));
        }
    };
    let shell = match args.shell.as_deref().map(str::trim) {
        None => None,
        Some("bash") => Some(RunnerShell::Bash),
        Some("sh") => Some(RunnerShell::Sh),
        Some(other) => {
            return Err(format!(
                "shell {other:?} is not supported here: use bash or sh"
            ));
        }
    };
    let docker_image = match (executor, &args.docker_image) {
        (ExecutorKind::Docker, Some(i)) => Some(i.clone()),
        (ExecutorKind::Docker, None) => Some(ask(
            "the default Docker image (for example, ruby:3.3)",
            None,
        )?),
        _ => None,
    };
    Ok(Answers {
        url,
        token,
        name,
        executor,
        shell,
        docker_image,
    })
}
