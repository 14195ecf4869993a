//! The few `git` commands the archive module needs: untracked files for
//! `untracked: true`, and the tree of a commit for `cache:key:files`.

use std::path::Path;
use std::process::{Command, Stdio};

use super::ArchiveError;

/// A `git` command run in `dir`, isolated from the caller's environment
/// variables that would point it at another repository, and never asking
/// for credentials.
fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .arg("--no-optional-locks")
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `git <args>` in `dir` and returns its standard output.
pub(crate) fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>, ArchiveError> {
    let out = git(dir)
        .args(args)
        .output()
        .map_err(ArchiveError::GitSpawn)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        let stderr = if stderr.is_empty() {
            out.status.to_string()
        } else {
            stderr
        };
        return Err(ArchiveError::Git {
            args: args.join(" "),
            stderr,
        });
    }
    Ok(out.stdout)
}

/// Splits NUL-terminated `-z` output into its records.
pub(crate) fn nul_records(out: &[u8]) -> impl Iterator<Item = &[u8]> {
    out.split(|b| *b == 0).filter(|r| !r.is_empty())
}

/// The files in `dir` that git does not track, as paths relative to `dir`.
///
/// Like gitlab-runner this is `git ls-files -o` without
/// `--exclude-standard`, so files matched by `.gitignore` are included: a
/// build's outputs are usually ignored, and they are what `untracked: true`
/// is meant to collect.
pub(crate) fn untracked_files(dir: &Path) -> Result<Vec<Vec<u8>>, ArchiveError> {
    let out = run(dir, &["ls-files", "-o", "-z"])?;
    Ok(nul_records(&out).map(<[u8]>::to_vec).collect())
}

#[cfg(test)]
pub(crate) mod testing {
    //! A throwaway repository for tests.

    use std::fs;
    use std::path::{Path, PathBuf};

    pub(crate) struct Repo {
        dir: tempfile::TempDir,
    }

    impl Repo {
        pub(crate) fn new() -> Repo {
            let repo = Repo {
                dir: tempfile::tempdir().expect("tempdir"),
            };
            repo.git(&["-c", "init.defaultBranch=main", "init", "-q"]);
            repo.git(&["config", "user.name", "Ada Lovelace"]);
            repo.git(&["config", "user.email", "ada@example.com"]);
            repo.git(&["config", "commit.gpgsign", "false"]);
            repo
        }

        pub(crate) fn path(&self) -> &Path {
            self.dir.path()
        }

        pub(crate) fn git(&self, args: &[&str]) -> String {
            let out = super::git(self.path())
                .args(args)
                .env("GIT_COMMITTER_DATE", "2024-01-31T16:47:55+01:00")
                .env("GIT_AUTHOR_DATE", "2024-01-31T16:47:55+01:00")
                .output()
                .expect("git runs");
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }

        pub(crate) fn write(&self, path: &str, text: &str) -> PathBuf {
            let p = self.path().join(path);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).expect("mkdir");
            }
            fs::write(&p, text).expect("write");
            p
        }

        /// Stages everything and commits; returns the new commit's SHA.
        pub(crate) fn commit_all(&self, message: &str) -> String {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "-m", message]);
            self.git(&["rev-parse", "HEAD"])
        }
    }
}
