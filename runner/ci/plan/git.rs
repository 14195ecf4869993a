//! The few read-only `git` queries planning needs: resolving refs, merge
//! bases, changed files and the file list of a tree.
//!
//! Every query runs the `git` binary in the project directory and returns
//! `None` when git fails (no repository, unknown ref, git not installed);
//! callers turn that into a warning, never into a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A git working tree, addressed by a directory inside it.
#[derive(Clone, Debug)]
pub(crate) struct Git {
    dir: PathBuf,
}

impl Git {
    /// The repository containing `dir`, if `dir` is inside a git work tree.
    pub(crate) fn open(dir: &Path) -> Option<Git> {
        let git = Git {
            dir: dir.to_path_buf(),
        };
        let inside = git.run(&["rev-parse", "--is-inside-work-tree"])?;
        (inside.trim() == "true").then_some(git)
    }

    /// Runs `git <args>` and returns its standard output when it succeeds.
    fn run(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        String::from_utf8(output.stdout).ok()
    }

    /// `-z` output as a list of paths.
    fn run_paths(&self, args: &[&str]) -> Option<Vec<String>> {
        let out = self.run(args)?;
        Some(
            out.split('\0')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    /// The commit a branch, tag or SHA names, as a full SHA.
    pub(crate) fn resolve_commit(&self, rev: &str) -> Option<String> {
        // `--end-of-options` keeps a ref that starts with `-` from being
        // read as an option.
        let spec = format!("{rev}^{{commit}}");
        let out = self.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ])?;
        let sha = out.trim();
        (!sha.is_empty()).then(|| sha.to_string())
    }

    /// The best common ancestor of two commits.
    pub(crate) fn merge_base(&self, a: &str, b: &str) -> Option<String> {
        let out = self.run(&["merge-base", "--end-of-options", a, b])?;
        let sha = out.trim();
        (!sha.is_empty()).then(|| sha.to_string())
    }

    /// The upstream of the checked-out branch (`origin/main`), if it has one.
    pub(crate) fn upstream(&self) -> Option<String> {
        let out = self.run(&[
            "rev-parse",
            "--abbrev-ref",
            "--symbolic-full-name",
            "@{upstream}",
        ])?;
        let name = out.trim();
        (!name.is_empty()).then(|| name.to_string())
    }

    /// Files that differ between commit `base` and the working tree (staged
    /// and unstaged edits included), plus untracked files that are not
    /// ignored. A rename counts as both its old and its new path, as in
    /// GitLab's list of modified paths.
    pub(crate) fn changed_since(&self, base: &str) -> Option<Vec<String>> {
        let mut files = self.run_paths(&[
            "diff",
            "--name-only",
            "--no-renames",
            "--relative",
            "-z",
            "--end-of-options",
            base,
        ])?;
        files.extend(self.untracked()?);
        files.sort();
        files.dedup();
        Some(files)
    }

    /// True when the working tree has no staged, unstaged or untracked
    /// changes.
    pub(crate) fn is_clean(&self) -> Option<bool> {
        let out = self.run(&["status", "--porcelain", "-z"])?;
        Some(out.is_empty())
    }

    fn untracked(&self) -> Option<Vec<String>> {
        self.run_paths(&["ls-files", "--others", "--exclude-standard", "-z"])
    }

    /// Every file of the working tree that git knows or would add: tracked
    /// files still present plus untracked files that are not ignored.
    /// Sorted, so callers can binary-search exact names.
    pub(crate) fn worktree_files(&self) -> Option<Vec<String>> {
        let mut files = self.run_paths(&["ls-files", "--cached", "-z"])?;
        let deleted = self.run_paths(&["ls-files", "--deleted", "-z"])?;
        if !deleted.is_empty() {
            let deleted: std::collections::HashSet<&str> =
                deleted.iter().map(String::as_str).collect();
            files.retain(|f| !deleted.contains(f.as_str()));
        }
        files.extend(self.untracked()?);
        files.sort();
        files.dedup();
        Some(files)
    }

    /// Every file in the tree of commit `rev`, sorted.
    pub(crate) fn tree_files(&self, rev: &str) -> Option<Vec<String>> {
        let mut files = self.run_paths(&[
            "ls-tree",
            "-r",
            "--name-only",
            "-z",
            "--end-of-options",
            rev,
        ])?;
        files.sort();
        Some(files)
    }
}

/// Helpers for tests that need a real repository.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;
    use std::process::Command;

    /// Runs git in `dir` with a fixed identity; panics on failure (tests only).
    pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `text` to `dir/path`, creating parent directories.
    pub(crate) fn write(dir: &Path, path: &str, text: &str) {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(full, text).expect("write");
    }

    /// Stages everything and commits.
    pub(crate) fn commit_all(dir: &Path, message: &str) {
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", message]);
    }

    /// A new repository on branch `main`.
    pub(crate) fn init(dir: &Path) {
        git(dir, &["init", "-q", "-b", "main"]);
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn changed_since_lists_committed_uncommitted_and_untracked_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir);
        write(dir, "a.txt", "1");
        write(dir, "b.txt", "1");
        commit_all(dir, "one");
        write(dir, "a.txt", "2");
        commit_all(dir, "two");
        write(dir, "b.txt", "2");
        write(dir, "new/c.txt", "x");
        let git = Git::open(dir).unwrap();
        let base = git.resolve_commit("HEAD~1").unwrap();
        assert_eq!(
            git.changed_since(&base).unwrap(),
            ["a.txt", "b.txt", "new/c.txt"]
        );
        assert_eq!(git.is_clean(), Some(false));
    }

    #[test]
    fn renames_count_both_paths_and_deleted_files_leave_the_worktree_list() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir);
        write(dir, "old.txt", "same content here");
        write(dir, "gone.txt", "x");
        commit_all(dir, "one");
        git(dir, &["mv", "old.txt", "renamed.txt"]);
        std::fs::remove_file(dir.join("gone.txt")).unwrap();
        let git = Git::open(dir).unwrap();
        assert_eq!(
            git.changed_since("HEAD").unwrap(),
            ["gone.txt", "old.txt", "renamed.txt"]
        );
        assert_eq!(git.worktree_files().unwrap(), ["renamed.txt"]);
        assert_eq!(git.tree_files("HEAD").unwrap(), ["gone.txt", "old.txt"]);
    }

    #[test]
    fn unknown_refs_and_non_repositories_give_none() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(Git::open(tmp.path()).is_none());
        init(tmp.path());
        write(tmp.path(), "a", "1");
        commit_all(tmp.path(), "one");
        let git = Git::open(tmp.path()).unwrap();
        assert!(git.resolve_commit("no-such-branch").is_none());
        assert!(git.resolve_commit("--help").is_none());
        assert!(git.upstream().is_none());
        assert!(git.resolve_commit("main").is_some());
    }
}
