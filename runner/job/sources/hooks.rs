//! `hooks:pre_get_sources_script` and `hooks:post_get_sources_script`.
//!
//! In gitlab-runner the hook commands are lines of the get_sources script,
//! echoed as `$ cmd` and stopped by the first failure. Here each hook is
//! one shell script written by the job's script generator (the same
//! exports, the same echo, `cd` into the project directory), so a hook
//! behaves as it would in the job's own script.

use tokio::process::Command;

use crate::job::log::JobLog;
use crate::job::script::{Dialect, ScriptSpec, generate};

use super::SourcesError;
use super::process::{self, Output, RunError, find_on_path};
use super::stage::{Ctx, create_dir};

/// The hook run before the repository is set up.
pub(super) const PRE: &str = "pre_get_sources_script";
/// The hook run after checkout and submodules.
pub(super) const POST: &str = "post_get_sources_script";

/// Runs the payload's hook `name`, if it has one.
pub(super) async fn run(ctx: &Ctx<'_>, name: &str, log: &mut JobLog) -> Result<(), SourcesError> {
    let commands = ctx.req.payload.hook(name);
    if commands.is_empty() {
        return Ok(());
    }
    let req = ctx.req;
    // The script starts with `cd` into the project directory, which a
    // fresh clone has not created yet.
    create_dir(req.project_dir)?;
    let (shell, dialect) = match find_on_path("bash") {
        Some(bash) => (bash, Dialect::Bash),
        None => ("sh".into(), Dialect::Posix),
    };
    let spec = ScriptSpec {
        project_dir: req.project_dir.to_string_lossy().into_owned(),
        tmp_dir: req.tmp_dir.to_string_lossy().into_owned(),
        variables: req.vars.script_vars(),
        commands: commands.to_vec(),
        dialect,
        debug_trace: is_true(req.vars.setting("CI_DEBUG_TRACE").as_deref()),
    };
    let mut command = Command::new(&shell);
    command.current_dir(req.project_dir);
    ctx.env.apply(&mut command);
    let script = generate(&spec).into_bytes();
    let done = process::run(command, Some(script), Output::Log, Some(log), ctx.cancel)
        .await
        .map_err(|e| match e {
            RunError::Cancelled => SourcesError::Cancelled,
            RunError::Spawn(source) => SourcesError::io("cannot run", shell, source),
        })?;
    if done.status.success() {
        return Ok(());
    }
    Err(SourcesError::Command {
        command: name.to_owned(),
        status: process::describe(done.status),
        exit_code: done.status.code(),
        stderr: done.stderr_tail,
    })
}

fn is_true(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio_util::sync::CancellationToken;

    use crate::job::payload::Hook;
    use crate::job::sources::testutil::{Fixture, SharedLog, UserRepo};
    use crate::job::sources::{SourceMode, SourcesError, get_sources};

    fn hook(name: &str, script: &[&str]) -> Hook {
        Hook {
            name: name.into(),
            script: script.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[tokio::test]
    async fn hooks_run_before_and_after_in_the_project_dir_with_the_job_vars() {
        let repo = UserRepo::with_files(&[("a.txt", "a")]);
        let mut f = Fixture::for_repo(&repo, &[("GREETING", "hello")]);
        f.payload.hooks = vec![
            hook(super::PRE, &["echo \"pre $GREETING\" > ../pre.txt", "ls"]),
            hook(
                super::POST,
                &["cat a.txt > post.txt", "echo \"$GIT_TERMINAL_PROMPT\""],
            ),
        ];
        let (shared, mut log) = SharedLog::new();
        get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let pre = f.project_dir.parent().unwrap().join("pre.txt");
        assert_eq!(std::fs::read_to_string(pre).unwrap(), "pre hello\n");
        assert_eq!(
            std::fs::read_to_string(f.project_dir.join("post.txt")).unwrap(),
            "a"
        );
        let text = shared.plain();
        let pre_at = text.find("$ echo \"pre $GREETING\" > ../pre.txt").unwrap();
        let fetch_at = text.find("Fetching changes").unwrap();
        let post_at = text.find("$ cat a.txt > post.txt").unwrap();
        assert!(pre_at < fetch_at && fetch_at < post_at, "{text}");
        assert!(
            text.contains("$ echo \"$GIT_TERMINAL_PROMPT\"\n0\n"),
            "{text}"
        );
        // The echo is the runner's bold green.
        assert!(shared.text().contains("\x1b[32;1m$ ls\x1b[0;m"));
    }

    #[tokio::test]
    async fn a_failing_hook_fails_the_stage_with_its_exit_code() {
        let repo = UserRepo::with_files(&[("a.txt", "a")]);
        let mut f = Fixture::for_repo(&repo, &[]);
        f.payload.hooks = vec![hook(super::PRE, &["echo before", "exit 7", "echo after"])];
        let (shared, mut log) = SharedLog::new();
        let err = get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.exit_code(), Some(7));
        assert_eq!(
            err.to_string(),
            "pre_get_sources_script failed with exit code 7"
        );
        let text = shared.plain();
        assert!(
            text.contains("before\n") && !text.contains("after\n"),
            "{text}"
        );
        assert!(
            !text.contains("Fetching changes"),
            "the fetch must not run: {text}"
        );
    }

    #[tokio::test]
    async fn cancel_kills_a_sleeping_hook_promptly() {
        let repo = UserRepo::with_files(&[("a.txt", "a")]);
        let mut f = Fixture::for_repo(&repo, &[]);
        f.payload.hooks = vec![hook(super::PRE, &["sleep 30"])];
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            trigger.cancel();
        });
        let (_shared, mut log) = SharedLog::new();
        let started = Instant::now();
        let err = get_sources(&f.request(SourceMode::Commit), &mut log, &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, SourcesError::Cancelled), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }
}
