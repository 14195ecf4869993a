//! `GIT_SUBMODULE_STRATEGY: normal | recursive` (§9.3): gitlab-runner's
//! sequence, including its one retry of a failed update.

use std::ffi::OsString;
use std::path::Path;

use crate::job::log::JobLog;
use crate::job::script::quote_posix;

use super::SourcesError;
use super::commit::lfs_pull_wanted;
use super::git::{Git, args};
use super::process::Output;
use super::settings::SubmoduleStrategy;
use super::stage::Ctx;

/// Initialises and updates the submodules as the settings ask, or says it
/// skips them.
pub(super) async fn update(
    ctx: &Ctx<'_>,
    git: &Git<'_>,
    ext_config: &Path,
    log: &mut JobLog,
) -> Result<(), SourcesError> {
    let settings = ctx.settings;
    let recursive = match settings.submodule_strategy {
        SubmoduleStrategy::None => {
            log.notice("Skipping Git submodules setup");
            return Ok(());
        }
        SubmoduleStrategy::Normal => false,
        SubmoduleStrategy::Recursive => true,
    };
    let depth = settings.submodule_depth;
    log.notice(&match (recursive, depth > 0) {
        (true, true) => {
            format!("Updating/initializing submodules recursively with git depth set to {depth}...")
        }
        (true, false) => "Updating/initializing submodules recursively...".to_owned(),
        (false, true) => {
            format!("Updating/initializing submodules with git depth set to {depth}...")
        }
        (false, false) => "Updating/initializing submodules...".to_owned(),
    });
    let dir = ctx.req.project_dir;

    let mut paths: Vec<OsString> = Vec::new();
    if !settings.submodule_paths.is_empty() {
        paths.push("--".into());
        paths.extend(settings.submodule_paths.iter().map(OsString::from));
    }
    let mut foreach = args!["submodule", "foreach"];
    let mut sync = args!["submodule", "sync"];
    // Submodule commands do not read the superproject's config, so the
    // credentials file is included explicitly.
    let mut update = args![
        "-c",
        format!("include.path={}", ext_config.display()),
        "submodule",
        "update",
        "--init"
    ];
    if recursive {
        foreach.push("--recursive".into());
        sync.push("--recursive".into());
        update.push("--recursive".into());
    }
    sync.extend(paths.iter().cloned());
    if depth > 0 {
        update.extend(args!["--depth", depth.to_string()]);
    }
    update.extend(settings.submodule_update_flags.iter().map(OsString::from));
    update.extend(paths.iter().cloned());

    // `none` turns cleaning off in the project, not in submodules: there
    // gitlab-runner falls back to -ffdx.
    let clean_flags = if settings.clean_flags.is_empty() {
        "-ffdx".to_owned()
    } else {
        settings.clean_flags.join(" ")
    };
    let with = |extra: &str| {
        let mut a = foreach.clone();
        a.push(extra.into());
        a
    };
    let clean = with(&format!("git clean {clean_flags}"));
    let reset = with("git reset --hard");

    git.run(log, dir, &args!["submodule", "init"]).await?;
    git.run(log, dir, &sync).await?;
    git.run(log, dir, &clean).await?;
    git.run(log, dir, &reset).await?;
    let first = git.status(Some(log), dir, &update, Output::Log).await?;
    if first.status.success() {
        log.notice("Updated submodules");
        git.run(log, dir, &sync).await?;
    } else {
        log.warning("Updating submodules failed. Retrying...");
        let remote = settings
            .submodule_update_flags
            .iter()
            .any(|f| f.eq_ignore_ascii_case("--remote"));
        if remote {
            // A branch named in .gitmodules that is not the submodule's
            // default is only found once all remote heads are fetched.
            let mut fetch_heads = args!["-c", format!("include.path={}", ext_config.display())];
            fetch_heads.extend(with("git fetch origin +refs/heads/*:refs/remotes/origin/*"));
            git.run(log, dir, &fetch_heads).await?;
        }
        git.run(log, dir, &sync).await?;
        git.run(log, dir, &update).await?;
        git.run(log, dir, &reset).await?;
    }
    git.run(log, dir, &clean).await?;

    log.notice("Configuring submodules to use parent git credentials...");
    // All levels, even for `normal`, as gitlab-runner does.
    let include = format!(
        "git config --replace-all include.path {}",
        quote_posix(&ext_config.to_string_lossy())
    );
    git.run(
        log,
        dir,
        &args!["submodule", "foreach", "--recursive", include],
    )
    .await?;

    if lfs_pull_wanted(ctx) {
        log.notice("Pulling LFS files...");
        let mut lfs = args!["-c", format!("include.path={}", ext_config.display())];
        lfs.extend(with("git lfs pull"));
        git.run(log, dir, &lfs).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;

    use crate::job::sources::testutil::{Fixture, SharedLog, UserRepo};
    use crate::job::sources::{SourceMode, get_sources};

    /// top → middle → leaf, each a submodule of the one before.
    fn nested() -> (UserRepo, UserRepo, UserRepo) {
        let leaf = UserRepo::with_files(&[("leaf.txt", "leaf")]);
        let middle = UserRepo::with_files(&[("middle.txt", "middle")]);
        middle.git(&[
            "submodule",
            "add",
            "-q",
            &leaf.path.to_string_lossy(),
            "leaf",
        ]);
        middle.commit("add leaf");
        let top = UserRepo::with_files(&[("top.txt", "top")]);
        top.git(&[
            "submodule",
            "add",
            "-q",
            &middle.path.to_string_lossy(),
            "middle",
        ]);
        top.commit("add middle");
        (top, middle, leaf)
    }

    async fn run(f: &Fixture) -> String {
        let (shared, mut log) = SharedLog::new();
        get_sources(
            &f.request(SourceMode::Commit),
            &mut log,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
        shared.plain()
    }

    #[tokio::test]
    async fn normal_updates_one_level() {
        let (top, _middle, _leaf) = nested();
        let f = Fixture::for_repo(&top, &[("GIT_SUBMODULE_STRATEGY", "normal")]);
        let text = run(&f).await;
        assert!(
            text.contains("Updating/initializing submodules...\n"),
            "{text}"
        );
        assert!(text.contains("Updated submodules\n"), "{text}");
        assert!(f.project_dir.join("middle/middle.txt").exists());
        assert!(f.project_dir.join("middle/leaf").is_dir());
        assert!(!f.project_dir.join("middle/leaf/leaf.txt").exists());
    }

    #[tokio::test]
    async fn recursive_updates_every_level_and_cleans_submodules() {
        let (top, _middle, _leaf) = nested();
        let f = Fixture::for_repo(&top, &[("GIT_SUBMODULE_STRATEGY", "recursive")]);
        let text = run(&f).await;
        assert!(
            text.contains("Updating/initializing submodules recursively...\n"),
            "{text}"
        );
        assert!(f.project_dir.join("middle/leaf/leaf.txt").exists());
        // Every submodule reads the credentials file.
        let include = crate::job::sources::testutil::git(
            &f.project_dir.join("middle/leaf"),
            &["config", "--local", "include.path"],
        );
        assert!(include.ends_with(".gitlab-runner.ext.conf"), "{include}");

        // The next fetch cleans untracked files inside submodules.
        std::fs::write(f.project_dir.join("middle/leaf/junk.txt"), "x").unwrap();
        run(&f).await;
        assert!(!f.project_dir.join("middle/leaf/junk.txt").exists());
    }

    #[tokio::test]
    async fn submodule_depth_and_paths_are_honoured() {
        let (top, _middle, _leaf) = nested();
        let other = UserRepo::with_files(&[("o.txt", "o")]);
        for i in 0..3 {
            other.write("o.txt", &i.to_string());
            other.commit("more");
        }
        // A file:// URL: git ignores --depth when cloning a plain path.
        let url = format!("file://{}", other.path.display());
        top.git(&["submodule", "add", "-q", &url, "other"]);
        top.commit("add other");
        let f = Fixture::for_repo(
            &top,
            &[
                ("GIT_SUBMODULE_STRATEGY", "normal"),
                ("GIT_SUBMODULE_DEPTH", "1"),
                ("GIT_SUBMODULE_PATHS", ":(exclude)middle"),
            ],
        );
        let text = run(&f).await;
        assert!(
            text.contains("Updating/initializing submodules with git depth set to 1...\n"),
            "{text}"
        );
        assert!(!f.project_dir.join("middle/middle.txt").exists());
        let count = crate::job::sources::testutil::git(
            &f.project_dir.join("other"),
            &["rev-list", "--count", "HEAD"],
        );
        assert_eq!(count, "1");
    }
}
