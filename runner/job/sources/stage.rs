//! The stage itself: read the settings, pick the strategy, run the hooks
//! around the source mode's work.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::job::log::JobLog;
use crate::job::payload::JobPayload;
use crate::job::vars::JobVars;

use super::git::{StageEnv, write_file_variables};
use super::gitconfig::EXT_CONFIG;
use super::settings::{GitSettings, GitStrategy};
use super::{SourcesError, commit, hooks, worktree};

/// Where the sources come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMode {
    /// GitLab's behaviour exactly, driven by the job's variables, fetching
    /// from `payload.git_info.repo_url` (for local use a filesystem path or
    /// `file://` URL of the user's repository).
    Commit,
    /// The local default: a git checkout of `payload.git_info.sha` with the
    /// user's working tree laid over it as it is: uncommitted edits,
    /// untracked files that are not ignored, deleted files gone. See
    /// [`worktree`](super::worktree) for exactly what the job sees.
    WorkingTree {
        /// The user's repository (its work tree, or any directory in it).
        repo: PathBuf,
    },
}

/// Everything the stage needs.
#[derive(Debug, Clone)]
pub struct SourcesRequest<'a> {
    pub payload: &'a JobPayload,
    /// The job's variables: `GIT_STRATEGY` and friends, and the
    /// environment of git and the hooks.
    pub vars: &'a JobVars,
    pub builds_dir: &'a Path,
    /// `CI_PROJECT_DIR`, as [`resolve_project_dir`](super::resolve_project_dir)
    /// gives it.
    pub project_dir: &'a Path,
    /// `<project_dir>.tmp`: git template, credentials file, file variables.
    pub tmp_dir: &'a Path,
    pub mode: SourceMode,
}

/// What the steps of the stage share.
pub(super) struct Ctx<'a> {
    pub req: &'a SourcesRequest<'a>,
    pub settings: &'a GitSettings,
    pub env: &'a StageEnv,
    pub cancel: &'a CancellationToken,
}

/// Runs the `get_sources` stage: fills `req.project_dir` as the job's
/// settings ask, writing what gitlab-runner prints into `log`.
///
/// The caller opens and closes the stage's log section ("Getting source
/// from Git repository") and decides about retries
/// (`GET_SOURCES_ATTEMPTS`). Every process the stage starts is killed when
/// `cancel` fires, and the stage then returns [`SourcesError::Cancelled`].
pub async fn get_sources(
    req: &SourcesRequest<'_>,
    log: &mut JobLog,
    cancel: &CancellationToken,
) -> Result<(), SourcesError> {
    let settings = GitSettings::read(req.vars, req.payload);
    for warning in &settings.warnings {
        log.warning(warning);
    }
    if let Some(message) = &settings.invalid {
        return Err(SourcesError::InvalidConfig(message.clone()));
    }
    match settings.strategy {
        GitStrategy::None => {
            log.notice("Skipping Git repository setup");
            create_dir(req.project_dir)?;
            skipped_checkout(log);
            return Ok(());
        }
        GitStrategy::Empty => {
            log.notice("Skipping Git repository setup and creating an empty build directory");
            remove_dir(req.project_dir).await?;
            create_dir(req.project_dir)?;
            skipped_checkout(log);
            return Ok(());
        }
        GitStrategy::Clone | GitStrategy::Fetch => {}
    }

    write_file_variables(req.vars, req.tmp_dir)?;
    let mut env = StageEnv::new(req.vars);
    {
        let ctx = Ctx {
            req,
            settings: &settings,
            env: &env,
            cancel,
        };
        hooks::run(&ctx, hooks::PRE, log).await?;
    }
    // gitlab-runner exports these after the pre hooks: git must not
    // download LFS objects while checking out (it pulls them afterwards),
    // and submodule commands find the credentials file through the path.
    if !settings.lfs_skip_smudge {
        env.push("GIT_LFS_SKIP_SMUDGE", "1");
    }
    if req.mode == SourceMode::Commit {
        env.push(
            "GLR_EXT_GIT_CONFIG_PATH",
            req.tmp_dir.join(EXT_CONFIG).to_string_lossy(),
        );
    }
    let ctx = Ctx {
        req,
        settings: &settings,
        env: &env,
        cancel,
    };
    match &req.mode {
        SourceMode::Commit => commit::fetch(&ctx, log).await?,
        SourceMode::WorkingTree { repo } => worktree::overlay(&ctx, repo, log).await?,
    }
    hooks::run(&ctx, hooks::POST, log).await
}

/// What `none` and `empty` print after setting up the directory.
fn skipped_checkout(log: &mut JobLog) {
    log.notice("Skipping Git checkout");
    log.notice("Skipping Git submodules setup");
}

pub(super) fn create_dir(path: &Path) -> Result<(), SourcesError> {
    std::fs::create_dir_all(path).map_err(|e| SourcesError::io("cannot create", path, e))
}

/// `rm -rf`, off the async threads: a project directory can be large.
pub(super) async fn remove_dir(path: &Path) -> Result<(), SourcesError> {
    let owned = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || match std::fs::symlink_metadata(&owned) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(meta) if !meta.is_dir() => std::fs::remove_file(&owned),
        _ => match std::fs::remove_dir_all(&owned) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    result.map_err(|e| SourcesError::io("cannot remove", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::sources::testutil::{Fixture, SharedLog};

    #[tokio::test]
    async fn none_leaves_the_directory_as_it_is() {
        let f = Fixture::new(&[("GIT_STRATEGY", "none")]);
        std::fs::create_dir_all(&f.project_dir).unwrap();
        std::fs::write(f.project_dir.join("kept.txt"), "x").unwrap();
        let (shared, mut log) = SharedLog::new();
        get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(f.project_dir.join("kept.txt").exists());
        assert!(!f.project_dir.join(".git").exists());
        assert_eq!(
            shared.plain(),
            "Skipping Git repository setup\nSkipping Git checkout\nSkipping Git submodules setup\n"
        );
        // A directory that does not exist yet is created.
        let g = Fixture::new(&[("GIT_STRATEGY", "none")]);
        let (_, mut log) = SharedLog::new();
        get_sources(
            &g.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        assert!(g.project_dir.is_dir());
    }

    #[tokio::test]
    async fn empty_gives_an_empty_directory_and_skips_the_hooks() {
        let mut f = Fixture::new(&[("GIT_STRATEGY", "empty")]);
        f.payload.hooks = vec![crate::job::payload::Hook {
            name: hooks::PRE.into(),
            script: vec!["touch hooked".into()],
        }];
        std::fs::create_dir_all(f.project_dir.join("sub")).unwrap();
        std::fs::write(f.project_dir.join("sub/old.txt"), "x").unwrap();
        let (shared, mut log) = SharedLog::new();
        get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        let entries: Vec<_> = std::fs::read_dir(&f.project_dir).unwrap().collect();
        assert!(entries.is_empty(), "{entries:?}");
        assert!(
            shared.plain().starts_with(
                "Skipping Git repository setup and creating an empty build directory\n"
            )
        );
    }

    #[tokio::test]
    async fn an_unknown_submodule_strategy_fails_after_its_warning() {
        let f = Fixture::new(&[("GIT_SUBMODULE_STRATEGY", "everything")]);
        let (shared, mut log) = SharedLog::new();
        let err = get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, SourcesError::InvalidConfig(_)), "{err}");
        assert!(
            shared
                .plain()
                .starts_with("WARNING: GIT_SUBMODULE_STRATEGY: expected")
        );
    }
}
