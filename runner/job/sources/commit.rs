//! Commit mode: gitlab-runner's `fetch` and `clone` strategies (§9.2),
//! run as real git commands with their output in the job log.
//!
//! gitlab-runner's script never echoes these git commands; the log shows
//! its notices ("Fetching changes...", "Created fresh repository.", ...)
//! and whatever git prints, exactly as here.

use std::ffi::OsString;
use std::path::Path;

use crate::job::log::JobLog;

use super::SourcesError;
use super::git::{Git, args};
use super::gitconfig::{self, EXT_CONFIG_PATTERN, RemoteUrl};
use super::process::{Output, find_on_path};
use super::settings::{GitStrategy, SubmoduleStrategy};
use super::stage::{Ctx, remove_dir};
use super::submodules;

/// How the fetch introduces itself to an HTTP remote.
const USER_AGENT: &str = concat!("runner/", env!("CARGO_PKG_VERSION"));

/// Fetches `git_info.sha` into the project directory and checks it out.
pub(super) async fn fetch(ctx: &Ctx<'_>, log: &mut JobLog) -> Result<(), SourcesError> {
    let req = ctx.req;
    let settings = ctx.settings;
    let info = &req.payload.git_info;
    let dir = req.project_dir;

    remove_stale_locks(dir, settings.submodule_strategy != SubmoduleStrategy::None);
    let remote = RemoteUrl::parse(&info.repo_url);
    let prepared = gitconfig::prepare(req.tmp_dir, &remote)?;
    if settings.strategy == GitStrategy::Clone {
        remove_dir(dir).await?;
    }

    let mut git = Git::new(ctx.env, ctx.cancel);
    if gitconfig::is_local(&info.repo_url) {
        git = git.with_config("protocol.file.allow=always");
    }

    if info.depth > 0 {
        log.notice(&format!(
            "Fetching changes with git depth set to {}...",
            info.depth
        ));
    } else {
        log.notice("Fetching changes...");
    }
    let mut init = args!["init", dir, "--template", prepared.template_dir];
    let format = info.repo_object_format.as_str();
    if !format.is_empty() && format != "sha1" {
        init.extend(args!["--object-format", format]);
    }
    // git creates the project directory; run it from the tmp dir, which
    // exists.
    git.run(log, req.tmp_dir, &init).await?;

    let added = git
        .status(
            Some(log),
            dir,
            &args!["remote", "add", "origin", remote.plain],
            Output::Discard,
        )
        .await?;
    if added.status.success() {
        log.notice("Created fresh repository.");
    } else {
        git.run(
            log,
            dir,
            &args!["remote", "set-url", "origin", remote.plain],
        )
        .await?;
        // The template only reaches new repositories: an existing one is
        // pointed at the credentials file explicitly.
        let config = dir.join(".git/config");
        git.run(
            log,
            dir,
            &args![
                "config",
                "--file",
                config,
                "--replace-all",
                "include.path",
                prepared.ext_config,
                EXT_CONFIG_PATTERN
            ],
        )
        .await?;
    }

    let mut fetch = args![
        "-c",
        format!(
            "http.userAgent={USER_AGENT} {}/{}",
            std::env::consts::OS,
            std::env::consts::ARCH
        ),
        "fetch",
        "origin",
        "--no-recurse-submodules"
    ];
    fetch.extend(refspecs(ctx).into_iter().map(OsString::from));
    if info.depth > 0 {
        fetch.extend(args!["--depth", info.depth.to_string()]);
    }
    fetch.extend(settings.fetch_flags.iter().map(OsString::from));
    if info.depth == 0 && dir.join(".git/shallow").exists() {
        fetch.push("--unshallow".into());
    }
    git.run(log, dir, &fetch).await?;

    if settings.checkout {
        let short: String = info.sha.chars().take(8).collect();
        log.notice(&format!(
            "Checking out {short} as detached HEAD (ref is {})...",
            info.git_ref
        ));
        git.run(
            log,
            dir,
            &args![
                "-c",
                "submodule.recurse=false",
                "checkout",
                "-f",
                "-q",
                info.sha
            ],
        )
        .await?;
        if !settings.clean_flags.is_empty() {
            let mut clean = args!["clean"];
            clean.extend(settings.clean_flags.iter().map(OsString::from));
            git.run(log, dir, &clean).await?;
        }
        if lfs_pull_wanted(ctx) {
            git.run(log, dir, &args!["lfs", "pull"]).await?;
        }
    } else {
        log.notice("Skipping Git checkout");
    }

    submodules::update(ctx, &git, &prepared.ext_config, log).await
}

/// What to fetch: the payload's refspecs. A payload built locally may have
/// none; then the commit itself and the job's branch or tag, so the
/// checkout works and `origin/<branch>` exists as in a GitLab job.
fn refspecs(ctx: &Ctx<'_>) -> Vec<String> {
    let info = &ctx.req.payload.git_info;
    if !info.refspecs.is_empty() {
        return info.refspecs.clone();
    }
    let mut specs = Vec::new();
    if !info.sha.is_empty() {
        specs.push(format!("+{}", info.sha));
    }
    let name = info.git_ref.as_str();
    if name.is_empty() || name == "HEAD" || name == info.sha {
        return specs;
    }
    specs.push(if name.starts_with("refs/") {
        format!("+{name}:{name}")
    } else if info.ref_type == "tag" {
        format!("+refs/tags/{name}:refs/tags/{name}")
    } else {
        format!("+refs/heads/{name}:refs/remotes/origin/{name}")
    });
    specs
}

/// `git lfs pull` runs after checkout unless the job turned smudging off,
/// and only where git-lfs is installed (gitlab-runner asks `git lfs
/// version`; looking on `PATH` answers the same without a process).
pub(super) fn lfs_pull_wanted(ctx: &Ctx<'_>) -> bool {
    !ctx.settings.lfs_skip_smudge && find_on_path("git-lfs").is_some()
}

/// Removes what an interrupted git leaves behind and would fail the next
/// command: lock files, and the `post-checkout` hook (a previous job could
/// have planted it). With submodules, the same inside `.git/modules`.
fn remove_stale_locks(dir: &Path, with_submodules: bool) {
    const FILES: [&str; 5] = [
        "index.lock",
        "shallow.lock",
        "HEAD.lock",
        "hooks/post-checkout",
        "config.lock",
    ];
    let git_dir = dir.join(".git");
    if !git_dir.is_dir() {
        return;
    }
    for file in FILES {
        let _ = std::fs::remove_file(git_dir.join(file));
    }
    remove_named(&git_dir.join("refs"), &|name| name.ends_with(".lock"));
    if with_submodules {
        let names: Vec<&str> = FILES
            .iter()
            .map(|f| f.rsplit('/').next().unwrap_or(f))
            .collect();
        remove_named(&git_dir.join("modules"), &|name| names.contains(&name));
    }
}

/// Removes, under `root`, every file whose name `matches` (`find -type f
/// -name … -delete`).
fn remove_named(root: &Path, matches: &dyn Fn(&str) -> bool) {
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() && entry.file_name().to_str().is_some_and(matches) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use crate::job::sources::testutil::{Fixture, SharedLog, UserRepo, git};
    use crate::job::sources::{SourceMode, SourcesError, get_sources};

    async fn run(f: &Fixture) -> (String, Result<(), SourcesError>) {
        let (shared, mut log) = SharedLog::new();
        let result = get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await;
        (shared.plain(), result)
    }

    #[tokio::test]
    async fn clone_checks_out_the_commit_with_gitlab_runner_messages() {
        let repo = UserRepo::with_files(&[("a.txt", "one"), ("dir/b.txt", "two")]);
        let f = Fixture::for_repo(&repo, &[("GIT_STRATEGY", "clone")]);
        let (text, result) = run(&f).await;
        result.unwrap();
        assert_eq!(
            std::fs::read_to_string(f.project_dir.join("dir/b.txt")).unwrap(),
            "two"
        );
        assert_eq!(f.git(&["rev-parse", "HEAD"]), repo.head());
        assert_eq!(f.git(&["status", "--porcelain"]), "");
        assert_eq!(f.git(&["rev-parse", "origin/main"]), repo.head());
        let short = &repo.head()[..8];
        let expected = format!(
            "Fetching changes...\n\
             Initialized empty Git repository in {}/.git/\n\
             Created fresh repository.\n\
             Checking out {short} as detached HEAD (ref is main)...\n\
             Skipping Git submodules setup\n",
            f.project_dir.display()
        );
        assert_eq!(text, expected);
        // The template's settings reached the new repository.
        assert_eq!(f.git(&["config", "fetch.recurseSubmodules"]), "false");
    }

    #[tokio::test]
    async fn clone_removes_what_was_there() {
        let repo = UserRepo::with_files(&[("a.txt", "one")]);
        let f = Fixture::for_repo(
            &repo,
            &[("GIT_STRATEGY", "clone"), ("GIT_CLEAN_FLAGS", "none")],
        );
        run(&f).await.1.unwrap();
        std::fs::write(f.project_dir.join("leftover.txt"), "x").unwrap();
        let (text, result) = run(&f).await;
        result.unwrap();
        assert!(!f.project_dir.join("leftover.txt").exists());
        assert!(text.contains("Created fresh repository."), "{text}");
    }

    #[tokio::test]
    async fn fetch_reuses_the_checkout_and_cleans_it() {
        let repo = UserRepo::with_files(&[("a.txt", "one")]);
        let mut f = Fixture::for_repo(&repo, &[("GIT_STRATEGY", "fetch")]);
        run(&f).await.1.unwrap();
        std::fs::write(f.project_dir.join("untracked.txt"), "x").unwrap();
        std::fs::write(f.project_dir.join("a.txt"), "edited").unwrap();
        // A lock left by an interrupted git would fail the next fetch.
        std::fs::write(f.project_dir.join(".git/index.lock"), "").unwrap();
        let marker = f.project_dir.join(".git/reused-marker");
        std::fs::write(&marker, "").unwrap();

        repo.write("a.txt", "two");
        f.payload.git_info.sha = repo.commit("second");
        let (text, result) = run(&f).await;
        result.unwrap();
        assert!(marker.exists(), "the repository was not reused");
        assert!(
            text.contains("Reinitialized existing Git repository"),
            "{text}"
        );
        assert!(!text.contains("Created fresh repository."), "{text}");
        assert!(text.contains("Removing untracked.txt"), "{text}");
        assert!(!f.project_dir.join("untracked.txt").exists());
        assert_eq!(
            std::fs::read_to_string(f.project_dir.join("a.txt")).unwrap(),
            "two"
        );
        assert_eq!(f.git(&["rev-parse", "HEAD"]), repo.head());

        // With cleaning turned off, untracked files stay.
        f.set_var("GIT_CLEAN_FLAGS", "none");
        std::fs::write(f.project_dir.join("untracked.txt"), "x").unwrap();
        run(&f).await.1.unwrap();
        assert!(f.project_dir.join("untracked.txt").exists());
    }

    #[tokio::test]
    async fn depth_gives_a_shallow_clone_with_exactly_that_many_commits() {
        let repo = UserRepo::with_files(&[("a.txt", "1")]);
        for i in 2..=5 {
            repo.write("a.txt", &i.to_string());
            repo.commit(&format!("commit {i}"));
        }
        let mut f = Fixture::for_repo(&repo, &[("GIT_STRATEGY", "fetch")]);
        f.payload.git_info.depth = 2;
        let (text, result) = run(&f).await;
        result.unwrap();
        assert!(
            text.starts_with("Fetching changes with git depth set to 2...\n"),
            "{text}"
        );
        assert!(f.project_dir.join(".git/shallow").exists());
        assert_eq!(f.git(&["rev-list", "--count", "HEAD"]), "2");

        // Depth 0 on the same checkout unshallows it.
        f.payload.git_info.depth = 0;
        run(&f).await.1.unwrap();
        assert!(!f.project_dir.join(".git/shallow").exists());
        assert_eq!(f.git(&["rev-list", "--count", "HEAD"]), "5");
    }

    #[tokio::test]
    async fn payload_refspecs_are_fetched_as_given() {
        let repo = UserRepo::with_files(&[("a.txt", "1")]);
        repo.git(&["tag", "v1"]);
        let mut f = Fixture::for_repo(&repo, &[]);
        f.payload.git_info.refspecs = vec![
            "+refs/heads/*:refs/remotes/origin/*".into(),
            "+refs/tags/*:refs/tags/*".into(),
        ];
        run(&f).await.1.unwrap();
        assert_eq!(f.git(&["rev-parse", "v1"]), repo.head());
    }

    #[tokio::test]
    async fn git_checkout_false_fetches_without_checking_out() {
        let repo = UserRepo::with_files(&[("a.txt", "1")]);
        let f = Fixture::for_repo(&repo, &[("GIT_CHECKOUT", "false")]);
        let (text, result) = run(&f).await;
        result.unwrap();
        assert!(text.contains("Skipping Git checkout\n"), "{text}");
        assert!(!text.contains("Checking out"), "{text}");
        assert!(!f.project_dir.join("a.txt").exists());
        // The commit was fetched all the same.
        assert_eq!(f.git(&["rev-parse", "origin/main"]), repo.head());
    }

    #[tokio::test]
    async fn fetch_extra_flags_replace_the_default() {
        let repo = UserRepo::with_files(&[("a.txt", "1")]);
        let f = Fixture::for_repo(&repo, &[("GIT_FETCH_EXTRA_FLAGS", "--no-such-flag")]);
        let (_, result) = run(&f).await;
        let err = result.unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("git -c protocol.file.allow=always -c http.userAgent="),
            "{message}"
        );
        assert!(
            message.contains("fetch origin --no-recurse-submodules"),
            "{message}"
        );
        assert!(
            message.contains("--no-such-flag failed with exit code 129"),
            "{message}"
        );
        assert_eq!(err.exit_code(), Some(129));
    }

    #[tokio::test]
    async fn credentials_stay_out_of_the_repository_config() {
        let repo = UserRepo::with_files(&[("a.txt", "1")]);
        let mut f = Fixture::for_repo(&repo, &[]);
        // Nothing listens there: the fetch fails, but only after the
        // repository and its remote are set up.
        let url = "http://gitlab-ci-token:s3cr3t-t0ken@127.0.0.1:9/group/project.git";
        f.payload.git_info.repo_url = url.into();
        f.set_var("GIT_FETCH_EXTRA_FLAGS", "none");
        let (shared, mut log) = SharedLog::with_secrets(&["s3cr3t-t0ken".into()]);
        let result = get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await;
        log.finish();
        assert!(
            matches!(result, Err(SourcesError::Command { .. })),
            "{result:?}"
        );
        let config = std::fs::read_to_string(f.project_dir.join(".git/config")).unwrap();
        assert!(!config.contains("s3cr3t"), "{config}");
        assert_eq!(
            f.git(&["config", "remote.origin.url"]),
            "http://127.0.0.1:9/group/project.git"
        );
        // git itself still connects with the credentials.
        assert_eq!(f.git(&["ls-remote", "--get-url", "origin"]), url);
        assert!(!shared.text().contains("s3cr3t"));
    }

    #[tokio::test]
    async fn a_moved_remote_is_updated_on_fetch() {
        let old = UserRepo::with_files(&[("a.txt", "old")]);
        let new = UserRepo::with_files(&[("a.txt", "new")]);
        let mut f = Fixture::for_repo(&old, &[("GIT_STRATEGY", "fetch")]);
        run(&f).await.1.unwrap();
        f.payload.git_info.repo_url = new.path.to_string_lossy().into_owned();
        f.payload.git_info.sha = new.head();
        run(&f).await.1.unwrap();
        assert_eq!(
            f.git(&["config", "remote.origin.url"]),
            new.path.to_string_lossy()
        );
        assert_eq!(
            std::fs::read_to_string(f.project_dir.join("a.txt")).unwrap(),
            "new"
        );
        let includes = f.git(&["config", "--get-all", "include.path"]);
        assert_eq!(includes.lines().count(), 1, "{includes}");
    }

    #[test]
    fn stale_locks_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        let git_dir = dir.path().join(".git");
        std::fs::create_dir_all(git_dir.join("refs/heads/feature")).unwrap();
        std::fs::create_dir_all(git_dir.join("modules/sub/hooks")).unwrap();
        for f in [
            "index.lock",
            "HEAD.lock",
            "refs/heads/feature/x.lock",
            "modules/sub/index.lock",
            "modules/sub/hooks/post-checkout",
            "hooks/post-checkout",
        ] {
            std::fs::write(git_dir.join(f), "").unwrap();
        }
        super::remove_stale_locks(dir.path(), true);
        for f in [
            "index.lock",
            "HEAD.lock",
            "refs/heads/feature/x.lock",
            "modules/sub/index.lock",
            "modules/sub/hooks/post-checkout",
            "hooks/post-checkout",
        ] {
            assert!(!git_dir.join(f).exists(), "{f}");
        }
        assert!(git_dir.join("HEAD").exists());
    }
}
