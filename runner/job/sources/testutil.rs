//! Test helpers: real repositories in temp dirs, a job around them, and a
//! log whose text the test can read.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tempfile::TempDir;

use crate::job::log::{JobLog, LogTarget};
use crate::job::payload::{GitInfo, JobPayload, JobVariable};
use crate::job::vars::JobVars;

use super::{SourceMode, SourcesRequest};

/// A log target the test keeps a handle on.
#[derive(Clone, Default)]
pub(crate) struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl LogTarget for SharedLog {
    fn write(&mut self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

impl SharedLog {
    pub fn new() -> (SharedLog, JobLog) {
        SharedLog::with_secrets(&[])
    }

    pub fn with_secrets(secrets: &[String]) -> (SharedLog, JobLog) {
        let shared = SharedLog::default();
        let log = JobLog::new(Box::new(shared.clone()), secrets, 1 << 20).without_sections();
        (shared, log)
    }

    /// The log as written, colours included.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The log without ANSI colour sequences.
    pub fn plain(&self) -> String {
        let text = self.text();
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' && chars.peek() == Some(&'[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// Runs git in `dir` (with a test identity) and returns its stdout without
/// the trailing newline; panics when it fails.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "protocol.file.allow=always",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// A user's repository with a `main` branch.
pub(crate) struct UserRepo {
    _dir: TempDir,
    pub path: PathBuf,
}

impl UserRepo {
    /// A repository whose one commit holds `files`.
    pub fn with_files(files: &[(&str, &str)]) -> UserRepo {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("repo");
        std::fs::create_dir(&path).unwrap();
        git(&path, &["init", "-q"]);
        let repo = UserRepo { _dir: dir, path };
        for (name, content) in files {
            repo.write(name, content);
        }
        repo.commit("initial");
        repo
    }

    pub fn write(&self, name: &str, content: &str) {
        let path = self.path.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Commits everything and returns the new HEAD.
    pub fn commit(&self, message: &str) -> String {
        git(&self.path, &["add", "-A"]);
        git(
            &self.path,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        self.head()
    }

    pub fn head(&self) -> String {
        git(&self.path, &["rev-parse", "HEAD"])
    }

    pub fn git(&self, args: &[&str]) -> String {
        git(&self.path, args)
    }
}

/// A job: its directories and payload.
pub(crate) struct Fixture {
    _root: TempDir,
    pub builds_dir: PathBuf,
    pub project_dir: PathBuf,
    pub tmp_dir: PathBuf,
    pub payload: JobPayload,
    pub vars: JobVars,
}

impl Fixture {
    /// A job without a repository (for `none` and `empty`).
    pub fn new(vars: &[(&str, &str)]) -> Fixture {
        let root = tempfile::tempdir().unwrap();
        let builds_dir = root.path().join("builds");
        let project_dir = builds_dir.join("group/project");
        let tmp_dir = builds_dir.join("group/project.tmp");
        let mut f = Fixture {
            _root: root,
            builds_dir,
            project_dir,
            tmp_dir,
            payload: JobPayload::default(),
            vars: JobVars::default(),
        };
        for (k, v) in vars {
            f.payload.variables.push(JobVariable::public(*k, *v));
        }
        f.refresh_vars();
        f
    }

    /// A job on `repo`'s HEAD (branch `main`).
    pub fn for_repo(repo: &UserRepo, vars: &[(&str, &str)]) -> Fixture {
        let mut f = Fixture::new(vars);
        f.payload.git_info = GitInfo {
            repo_url: repo.path.to_string_lossy().into_owned(),
            git_ref: "main".into(),
            sha: repo.head(),
            ref_type: "branch".into(),
            ..GitInfo::default()
        };
        f
    }

    pub fn set_var(&mut self, key: &str, value: &str) {
        self.payload.variables.push(JobVariable::public(key, value));
        self.refresh_vars();
    }

    fn refresh_vars(&mut self) {
        self.vars = JobVars::resolve(&[], &self.payload.variables, &[], &self.tmp_dir);
    }

    pub fn request(&self, mode: SourceMode) -> SourcesRequest<'_> {
        SourcesRequest {
            payload: &self.payload,
            vars: &self.vars,
            builds_dir: &self.builds_dir,
            project_dir: &self.project_dir,
            tmp_dir: &self.tmp_dir,
            mode,
        }
    }

    /// git in the project directory.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.project_dir, args)
    }
}
