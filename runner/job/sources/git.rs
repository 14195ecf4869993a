//! Running git for the stage: the environment gitlab-runner's get_sources
//! script gives it, and failures turned into [`SourcesError`]s.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::job::log::JobLog;
use crate::job::vars::JobVars;

use super::SourcesError;
use super::process::{self, Finished, Output, RunError};

/// Builds a `Vec<OsString>` of git arguments from strings and paths alike.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        ::std::vec::Vec::<::std::ffi::OsString>::from([
            $(::std::ffi::OsString::from(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$arg))),*
        ])
    };
}
pub(crate) use args;

/// Variables that tell git which repository to use. Inherited from the
/// runner's own environment (a runner started from a git hook or alias has
/// them), they would point every command at the wrong repository.
const REPOSITORY_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CONFIG_PARAMETERS",
    "GIT_QUARANTINE_PATH",
];

/// The environment of every process of the stage: the runner's own, the
/// job's variables (as the get_sources script exports them), then what
/// gitlab-runner sets for git.
#[derive(Debug, Clone, Default)]
pub(crate) struct StageEnv {
    set: Vec<(String, String)>,
}

impl StageEnv {
    pub fn new(vars: &JobVars) -> StageEnv {
        let mut set: Vec<(String, String)> = vars
            .iter()
            .filter(|v| is_env_name(&v.key))
            .filter_map(|v| {
                let value = vars.get(&v.key)?;
                // The environment cannot hold a NUL; the variable is left
                // out rather than failing the spawn.
                (!value.contains('\0')).then(|| (v.key.clone(), value))
            })
            .collect();
        // Never ask for credentials on a terminal the job does not have.
        set.push(("GIT_TERMINAL_PROMPT".into(), "0".into()));
        set.push(("GCM_INTERACTIVE".into(), "Never".into()));
        StageEnv { set }
    }

    /// Adds (or overrides) one variable.
    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        self.set.push((key.to_owned(), value.into()));
    }

    /// Applies the environment to `command`.
    pub fn apply(&self, command: &mut Command) {
        for key in REPOSITORY_ENV {
            command.env_remove(key);
        }
        // Later entries win, as a later `export` does.
        for (key, value) in &self.set {
            command.env(key, value);
        }
    }
}

fn is_env_name(key: &str) -> bool {
    !key.is_empty() && !key.contains('=') && !key.contains('\0')
}

/// Writes the job's file variables into `tmp_dir`, readable by the owner
/// only, so `GIT_SSL_CAINFO: $MY_CA_FILE` and friends name a real file
/// while git runs, as they do in gitlab-runner's get_sources script.
pub(crate) fn write_file_variables(vars: &JobVars, tmp_dir: &Path) -> Result<(), SourcesError> {
    let mut made = false;
    for var in vars.iter().filter(|v| v.file && is_env_name(&v.key)) {
        if var.key.contains('/') {
            continue;
        }
        if !made {
            std::fs::create_dir_all(tmp_dir)
                .map_err(|e| SourcesError::io("cannot create", tmp_dir, e))?;
            made = true;
        }
        let path = tmp_dir.join(&var.key);
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(var.value.as_bytes())
        };
        write().map_err(|e| SourcesError::io("cannot write", &path, e))?;
    }
    Ok(())
}

/// Runs git commands with the stage's environment and options.
pub(crate) struct Git<'a> {
    /// git, found on `PATH` once rather than by every spawn.
    program: PathBuf,
    env: &'a StageEnv,
    /// `-c` options every command gets.
    config: Vec<OsString>,
    cancel: &'a CancellationToken,
}

impl<'a> Git<'a> {
    pub fn new(env: &'a StageEnv, cancel: &'a CancellationToken) -> Self {
        Git {
            program: process::find_on_path("git").unwrap_or_else(|| "git".into()),
            env,
            config: Vec::new(),
            cancel,
        }
    }

    /// Adds `-c key=value` to every command.
    pub fn with_config(mut self, key_value: &str) -> Self {
        self.config.push("-c".into());
        self.config.push(key_value.into());
        self
    }

    fn command(&self, dir: &Path, args: &[OsString]) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.config).args(args).current_dir(dir);
        self.env.apply(&mut command);
        command
    }

    /// Runs git in `dir`; its output goes to `output`, whatever its exit
    /// status.
    pub async fn status(
        &self,
        log: Option<&mut JobLog>,
        dir: &Path,
        args: &[OsString],
        output: Output,
    ) -> Result<Finished, SourcesError> {
        let command = self.command(dir, args);
        process::run(command, None, output, log, self.cancel)
            .await
            .map_err(|e| match e {
                RunError::Cancelled => SourcesError::Cancelled,
                RunError::Spawn(source) => SourcesError::io("cannot run git in", dir, source),
            })
    }

    /// Runs git in `dir` with its output in the log; a failure fails the
    /// stage.
    pub async fn run(
        &self,
        log: &mut JobLog,
        dir: &Path,
        args: &[OsString],
    ) -> Result<(), SourcesError> {
        let done = self.status(Some(log), dir, args, Output::Log).await?;
        self.check(done, args).map(drop)
    }

    /// Runs git in `dir` and returns its stdout; a failure fails the stage.
    pub async fn capture(
        &self,
        log: Option<&mut JobLog>,
        dir: &Path,
        args: &[OsString],
    ) -> Result<Vec<u8>, SourcesError> {
        let done = self.status(log, dir, args, Output::Capture).await?;
        self.check(done, args).map(|d| d.stdout)
    }

    /// The finished command, or the error naming it as it was run.
    pub fn check(&self, done: Finished, args: &[OsString]) -> Result<Finished, SourcesError> {
        if done.status.success() {
            return Ok(done);
        }
        let full: Vec<OsString> = self.config.iter().chain(args).cloned().collect();
        Err(SourcesError::Command {
            command: command_line("git", &full),
            status: process::describe(done.status),
            exit_code: done.status.code(),
            stderr: done.stderr_tail,
        })
    }
}

/// `program args…` for messages.
fn command_line(program: &str, args: &[OsString]) -> String {
    let mut line = program.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(&OsStr::to_string_lossy(arg));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::payload::JobVariable;
    use crate::job::sources::testutil::SharedLog;

    #[tokio::test]
    async fn git_sees_the_job_variables_and_no_inherited_repository() {
        let dir = tempfile::tempdir().unwrap();
        let file_var = JobVariable {
            file: true,
            ..JobVariable::public("CA_FILE", "pem")
        };
        let vars = JobVars::resolve(
            &[],
            &[
                JobVariable::public("GIT_CONFIG_COUNT", "1"),
                JobVariable::public("GIT_CONFIG_KEY_0", "job.marker"),
                JobVariable::public("GIT_CONFIG_VALUE_0", "from-the-job"),
                file_var,
            ],
            &[],
            &dir.path().join("tmp"),
        );
        write_file_variables(&vars, &dir.path().join("tmp")).unwrap();
        let written = dir.path().join("tmp/CA_FILE");
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "pem");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&written).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let env = StageEnv::new(&vars);
        let cancel = CancellationToken::new();
        let git = Git::new(&env, &cancel);
        let (_shared, mut log) = SharedLog::new();
        let out = git
            .capture(Some(&mut log), dir.path(), &args!["config", "job.marker"])
            .await
            .unwrap();
        assert_eq!(out, b"from-the-job\n");
        let err = git
            .run(
                &mut log,
                dir.path(),
                &args!["rev-parse", "--verify", "HEAD"],
            )
            .await
            .unwrap_err();
        let SourcesError::Command {
            command, exit_code, ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(command, "git rev-parse --verify HEAD");
        assert_eq!(*exit_code, Some(128));
    }
}
