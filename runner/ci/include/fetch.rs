//! Getting files from outside the project: HTTP for `remote` and
//! `template`, git for `project` and `component`.
//!
//! Everything goes through the [`Fetcher`] trait so tests can serve files
//! from a local HTTP server or a bare repository on disk. The on-disk cache
//! that `--offline` reads is kept by the callers (`remote.rs`,
//! `project.rs`), not here, so the same cache logic runs whatever fetches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Why a file could not be fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// The server answered with an HTTP error status.
    Status(u16),
    /// The repository answered but has no such branch, tag or commit.
    RefNotFound,
    /// The time left for resolving includes ran out.
    Timeout,
    /// Anything else (no network, DNS, refused connection, git failure),
    /// with a short reason for the message.
    Failed(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status(code) => write!(f, "HTTP code `{code}`"),
            FetchError::RefNotFound => f.write_str("reference not found"),
            FetchError::Timeout => f.write_str("timeout"),
            FetchError::Failed(why) => f.write_str(why),
        }
    }
}

/// A file read from a git repository, with the commit it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitBlob {
    pub text: String,
    pub commit: String,
}

/// Fetches included files. Implementations must not panic on any input.
pub trait Fetcher {
    /// GETs a URL and returns the body (any 2xx/3xx answer after redirects).
    fn get(&self, url: &str, timeout: Duration) -> Result<String, FetchError>;

    /// Reads `path` at `git_ref` (a branch, tag, commit or `HEAD`) of the
    /// repository at `repo_url`. `Ok(None)` when the ref exists but the
    /// file does not.
    fn git_file(
        &self,
        repo_url: &str,
        git_ref: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<Option<GitBlob>, FetchError>;

    /// Every file path at `git_ref`, for `rules:exists` in files that come
    /// from another project.
    fn git_files(
        &self,
        repo_url: &str,
        git_ref: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, FetchError>;

    /// The repository's tag names, for component versions like `~latest`.
    fn git_tags(&self, repo_url: &str, timeout: Duration) -> Result<Vec<String>, FetchError>;
}

/// The real fetcher: a blocking HTTP client and the `git` binary. Project
/// files are fetched shallowly into one bare repository per remote under
/// `git_dir`, so several files of one project and ref cost one fetch.
pub struct NetFetcher {
    git_dir: PathBuf,
    /// `(repo_url, ref)` → the local ref the commit was fetched into, or
    /// why it could not be.
    fetched: RefCell<HashMap<(String, String), Result<String, FetchError>>>,
}

impl NetFetcher {
    /// A fetcher keeping its bare repositories under `git_dir`.
    pub fn new(git_dir: impl Into<PathBuf>) -> NetFetcher {
        NetFetcher {
            git_dir: git_dir.into(),
            fetched: RefCell::new(HashMap::new()),
        }
    }

    fn repo_dir(&self, repo_url: &str) -> PathBuf {
        self.git_dir
            .join(format!("{}.git", &sha256_hex(repo_url.as_bytes())[..24]))
    }

    /// Fetches `git_ref` once per run and returns the local ref name.
    fn fetch_ref(
        &self,
        repo_url: &str,
        git_ref: &str,
        timeout: Duration,
    ) -> Result<(PathBuf, String), FetchError> {
        let dir = self.repo_dir(repo_url);
        let key = (repo_url.to_string(), git_ref.to_string());
        if let Some(done) = self.fetched.borrow().get(&key) {
            return done.clone().map(|r| (dir.clone(), r));
        }
        let result = self.fetch_ref_uncached(&dir, repo_url, git_ref, timeout);
        self.fetched.borrow_mut().insert(key, result.clone());
        result.map(|r| (dir, r))
    }

    fn fetch_ref_uncached(
        &self,
        dir: &Path,
        repo_url: &str,
        git_ref: &str,
        timeout: Duration,
    ) -> Result<String, FetchError> {
        let deadline = Instant::now() + timeout;
        if !dir.join("HEAD").exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| FetchError::Failed(format!("cannot create {}: {e}", dir.display())))?;
            run_git(&["init", "--bare", "--quiet"], Some(dir), deadline)?;
        }
        let local = format!(
            "refs/runner/{}",
            &sha256_hex(format!("{repo_url}\0{git_ref}").as_bytes())[..24]
        );
        let refspec = format!("+{git_ref}:{local}");
        let out = run_git(
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--depth",
                "1",
                "--",
                repo_url,
                &refspec,
            ],
            Some(dir),
            deadline,
        )?;
        if out.ok {
            return Ok(local);
        }
        let stderr = out.stderr.to_lowercase();
        if stderr.contains("couldn't find remote ref")
            || stderr.contains("not our ref")
            || stderr.contains("invalid refspec")
        {
            return Err(FetchError::RefNotFound);
        }
        Err(FetchError::Failed(last_line(&out.stderr)))
    }
}

impl Fetcher for NetFetcher {
    fn get(&self, url: &str, timeout: Duration) -> Result<String, FetchError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Failed(error_chain(&e)))?;
        let response = client.get(url).send().map_err(|e| {
            if e.is_timeout() {
                FetchError::Timeout
            } else {
                FetchError::Failed(error_chain(&e))
            }
        })?;
        let status = response.status();
        if status.as_u16() >= 400 {
            return Err(FetchError::Status(status.as_u16()));
        }
        response
            .text()
            .map_err(|e| FetchError::Failed(error_chain(&e)))
    }

    fn git_file(
        &self,
        repo_url: &str,
        git_ref: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<Option<GitBlob>, FetchError> {
        let deadline = Instant::now() + timeout;
        let (dir, local) = self.fetch_ref(repo_url, git_ref, timeout)?;
        let commit = run_git(&["rev-parse", &local], Some(&dir), deadline)?;
        if !commit.ok {
            return Err(FetchError::Failed(last_line(&commit.stderr)));
        }
        let blob = run_git(
            &["cat-file", "blob", &format!("{local}:{path}")],
            Some(&dir),
            deadline,
        )?;
        if !blob.ok {
            return Ok(None);
        }
        Ok(Some(GitBlob {
            text: blob.stdout,
            commit: commit.stdout.trim().to_string(),
        }))
    }

    fn git_files(
        &self,
        repo_url: &str,
        git_ref: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, FetchError> {
        let deadline = Instant::now() + timeout;
        let (dir, local) = self.fetch_ref(repo_url, git_ref, timeout)?;
        let out = run_git(
            &["ls-tree", "-r", "-z", "--name-only", &local],
            Some(&dir),
            deadline,
        )?;
        if !out.ok {
            return Err(FetchError::Failed(last_line(&out.stderr)));
        }
        Ok(out
            .stdout
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect())
    }

    fn git_tags(&self, repo_url: &str, timeout: Duration) -> Result<Vec<String>, FetchError> {
        let deadline = Instant::now() + timeout;
        let out = run_git(
            &["ls-remote", "--tags", "--refs", "--", repo_url],
            None,
            deadline,
        )?;
        if !out.ok {
            return Err(FetchError::Failed(last_line(&out.stderr)));
        }
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split('\t').nth(1))
            .filter_map(|r| r.strip_prefix("refs/tags/"))
            .map(String::from)
            .collect())
    }
}

struct GitOutput {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs git without any chance of prompting for credentials, and kills it
/// when the deadline passes.
fn run_git(args: &[&str], dir: Option<&Path>, deadline: Instant) -> Result<GitOutput, FetchError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("--git-dir").arg(dir);
    }
    cmd.args(["-c", "credential.helper=", "-c", "core.askPass="])
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| FetchError::Failed(format!("cannot run git: {e}")))?;
    // Both pipes are drained on threads so a large blob cannot fill a pipe
    // and stall git while we wait for it to exit.
    let mut out_pipe = child.stdout.take();
    let mut err_pipe = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = out_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = err_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FetchError::Timeout);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(FetchError::Failed(format!("git: {e}"))),
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(GitOutput {
        ok: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Git's reason: its first `fatal:` or `error:` line (the lines after it
/// are advice), else its last line.
fn last_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .find(|l| l.starts_with("fatal: ") || l.starts_with("error: "))
        .or(lines.last())
        .copied()
        .unwrap_or("git failed");
    line.strip_prefix("fatal: ")
        .or_else(|| line.strip_prefix("error: "))
        .unwrap_or(line)
        .to_string()
}

/// reqwest's top-level error says little ("error sending request"); the
/// useful part (DNS failure, connection refused) is in its sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = error.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if parts.is_empty() {
        parts.push(error.to_string());
    }
    parts.join(": ")
}

/// Lower-case hex SHA-256, used for cache file names.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cache file for one fetched thing: `<cache_dir>/<kind>/<sha256>`.
pub(crate) fn cache_path(cache_dir: &Path, kind: &str, key: &str) -> PathBuf {
    cache_dir.join(kind).join(sha256_hex(key.as_bytes()))
}

/// Reads a cache entry; a missing or unreadable one is a miss.
pub(crate) fn cache_read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Writes a cache entry. A cache that cannot be written only costs a
/// refetch next time, so failures are ignored; the write goes through a
/// temporary file so a reader never sees half a file.
pub(crate) fn cache_write(path: &Path, text: &str) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trip_and_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_path(dir.path(), "remote", "https://example.com/a.yml");
        assert_eq!(cache_read(&path), None);
        cache_write(&path, "a: 1\n");
        assert_eq!(cache_read(&path).as_deref(), Some("a: 1\n"));
        assert_eq!(path.parent().unwrap().file_name().unwrap(), "remote");
    }

    #[test]
    fn git_failure_reason_is_the_last_stderr_line() {
        assert_eq!(
            last_line("warning: x\nfatal: repository 'y' not found\n"),
            "repository 'y' not found"
        );
        assert_eq!(
            last_line(
                "fatal: 'x' does not appear to be a git repository\nfatal: Could not read\n\nand more.\n"
            ),
            "'x' does not appear to be a git repository"
        );
    }
}
