//! Shared helpers for the integration tests.

#![allow(dead_code)]

pub mod fake_gitlab;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of real-world pipelines shipped beside the project.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/real")
}

/// A git repository in a temporary directory, with an identity set so
/// commits work on any machine.
pub struct TempRepo {
    pub dir: tempfile::TempDir,
}

impl TempRepo {
    pub fn new() -> TempRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = TempRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Test User"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) -> &TempRepo {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
        self
    }

    /// Runs git in the repository and returns its standard output.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn commit_all(&self, message: &str) -> &TempRepo {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self
    }
}

/// The `runner` binary, run in `dir` with a private cache directory.
pub fn runner(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("runner").expect("runner binary");
    cmd.current_dir(dir);
    // Outside the repository, so the cache never shows up as a change.
    cmd.env(
        "RUNNER_CACHE_DIR",
        std::env::temp_dir().join("runner-test-cache"),
    );
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A project to run jobs in: a git repository with a `.gitlab-ci.yml`,
/// and a private state directory for builds, cache, artifacts and logs.
pub struct LocalProject {
    pub repo: TempRepo,
    pub state: tempfile::TempDir,
}

/// What a local run printed and how it ended.
pub struct RunResult {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl RunResult {
    /// Fails the test with both outputs unless `text` was printed.
    pub fn assert_stdout_has(&self, text: &str) -> &RunResult {
        assert!(
            self.stdout.contains(text),
            "expected {text:?} in the output:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn assert_stdout_lacks(&self, text: &str) -> &RunResult {
        assert!(
            !self.stdout.contains(text),
            "did not expect {text:?} in the output:\n{}",
            self.stdout
        );
        self
    }

    pub fn assert_code(&self, code: i32) -> &RunResult {
        assert_eq!(
            self.code, code,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl LocalProject {
    /// A committed repository holding `ci` as its `.gitlab-ci.yml`.
    pub fn new(ci: &str) -> LocalProject {
        let repo = TempRepo::new();
        repo.write(".gitlab-ci.yml", ci).commit_all("init");
        LocalProject {
            repo,
            state: tempfile::tempdir().expect("state dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.repo.path()
    }

    /// `runner <args>` in the project, with its own state directory.
    pub fn run(&self, args: &[&str]) -> RunResult {
        let out = runner(self.path())
            .env("RUNNER_STATE_DIR", self.state.path())
            .args(args)
            .output()
            .expect("runner runs");
        RunResult {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Every job log file the runs left, concatenated.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in walkdir::WalkDir::new(self.state.path()).sort_by_file_name() {
            let entry = entry.expect("walk");
            if entry.path().extension().is_some_and(|e| e == "log") {
                text.push_str(&std::fs::read_to_string(entry.path()).expect("log"));
            }
        }
        text
    }
}

/// Processes whose command line contains `token`, other than the caller.
pub fn processes_with(token: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(token) {
                found.push(format!("{name}: {cmdline}"));
            }
        }
    }
    found
}
