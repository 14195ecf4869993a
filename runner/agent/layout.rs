//! Where a job of the agent runs: its project directory, and the
//! `CI_CONCURRENT_ID` / `CI_CONCURRENT_PROJECT_ID` that keep two jobs of
//! the same runner out of each other's directories.
//!
//! gitlab-runner's layout for a builds dir shared between jobs (the shell
//! executor, and Docker with the builds dir on the host, as here):
//! `<builds_dir>/<short token>/<CI_CONCURRENT_PROJECT_ID>/<namespace>/<project>`.
//! The per-project id (not the per-runner one) goes into the path, so a
//! project's second concurrent job gets a second checkout while the first
//! checkout of every project is reused by its next job.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::job::payload::JobPayload;

/// The ids of one running job; they are freed when this is dropped.
#[derive(Debug)]
pub struct JobSlotIds {
    /// `CI_CONCURRENT_ID`: lowest id not used by another running job of
    /// the same runner token.
    pub concurrent_id: u32,
    /// `CI_CONCURRENT_PROJECT_ID`: the same among jobs of the same token
    /// and project.
    pub project_id: u32,
    release: Option<Release>,
}

#[derive(Debug)]
struct Release {
    pool: Arc<Mutex<Leases>>,
    token: String,
    project: u64,
}

impl Drop for JobSlotIds {
    fn drop(&mut self) {
        if let Some(r) = self.release.take() {
            let mut leases = r.pool.lock().unwrap_or_else(|e| e.into_inner());
            leases.free(&r.token, r.project, self.concurrent_id, self.project_id);
        }
    }
}

#[derive(Debug, Default)]
struct Leases {
    by_token: HashMap<String, BTreeSet<u32>>,
    by_project: HashMap<(String, u64), BTreeSet<u32>>,
}

impl Leases {
    fn free(&mut self, token: &str, project: u64, concurrent: u32, project_id: u32) {
        if let Some(set) = self.by_token.get_mut(token) {
            set.remove(&concurrent);
            if set.is_empty() {
                self.by_token.remove(token);
            }
        }
        let key = (token.to_owned(), project);
        if let Some(set) = self.by_project.get_mut(&key) {
            set.remove(&project_id);
            if set.is_empty() {
                self.by_project.remove(&key);
            }
        }
    }
}

/// Hands out the lowest free ids, per runner token and per project.
#[derive(Debug, Clone, Default)]
pub struct ConcurrencyIds {
    leases: Arc<Mutex<Leases>>,
}

impl ConcurrencyIds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lowest free ids for a job of `token` in project `project`.
    pub fn acquire(&self, token: &str, project: u64) -> JobSlotIds {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let concurrent_id = take_lowest(leases.by_token.entry(token.to_owned()).or_default());
        let project_id = take_lowest(
            leases
                .by_project
                .entry((token.to_owned(), project))
                .or_default(),
        );
        JobSlotIds {
            concurrent_id,
            project_id,
            release: Some(Release {
                pool: Arc::clone(&self.leases),
                token: token.to_owned(),
                project,
            }),
        }
    }
}

fn take_lowest(used: &mut BTreeSet<u32>) -> u32 {
    let id = (0..).find(|i| !used.contains(i)).unwrap_or(0);
    used.insert(id);
    id
}

/// The project's path as GitLab names it (`group/sub/project`): the path
/// of its repository URL without `.git`, else `project-<id>`.
pub fn project_path(payload: &JobPayload) -> String {
    let from_url = repo_url_path(&payload.git_info.repo_url);
    match from_url {
        Some(path) => path,
        None => format!("project-{}", payload.job_info.project_id),
    }
}

fn repo_url_path(url: &str) -> Option<String> {
    // `https://gitlab-ci-token:TOKEN@host:port/group/project.git`: drop
    // the scheme, the credentials and the host; what is left is the path.
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (_, path) = rest.split_once('/')?;
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    // Only plain segments: a crafted URL must not lead out of the builds
    // dir with `..`.
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    (!segments.is_empty()).then(|| segments.join("/"))
}

/// The project directory of a job in a builds dir shared between jobs.
pub fn shared_project_dir(
    builds_dir: &Path,
    short_token: &str,
    concurrent_project_id: u32,
    project_path: &str,
) -> PathBuf {
    builds_dir
        .join(short_token)
        .join(concurrent_project_id.to_string())
        .join(project_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_lowest_free_per_token_and_per_project() {
        let ids = ConcurrencyIds::new();
        let a = ids.acquire("tok", 1);
        let b = ids.acquire("tok", 2);
        let c = ids.acquire("tok", 1);
        let other = ids.acquire("other", 1);
        assert_eq!((a.concurrent_id, a.project_id), (0, 0));
        assert_eq!((b.concurrent_id, b.project_id), (1, 0));
        assert_eq!((c.concurrent_id, c.project_id), (2, 1));
        assert_eq!((other.concurrent_id, other.project_id), (0, 0));
        drop(a);
        // The freed ids are the lowest again.
        let d = ids.acquire("tok", 1);
        assert_eq!((d.concurrent_id, d.project_id), (0, 0));
        drop((b, c, d, other));
        assert!(ids.leases.lock().unwrap().by_token.is_empty());
        assert!(ids.leases.lock().unwrap().by_project.is_empty());
    }

    #[test]
    fn the_project_path_comes_from_the_repository_url() {
        let mut payload = JobPayload::default();
        payload.git_info.repo_url =
            "https://gitlab-ci-token:secret@gitlab.example.com:8443/acme/backend/webshop.git"
                .to_owned();
        assert_eq!(project_path(&payload), "acme/backend/webshop");
        payload.git_info.repo_url = "https://gitlab.example.com/../../etc/x.git".to_owned();
        assert_eq!(project_path(&payload), "etc/x");
        payload.git_info.repo_url = "https://gitlab.example.com/".to_owned();
        payload.job_info.project_id = 42;
        assert_eq!(project_path(&payload), "project-42");
    }

    #[test]
    fn the_shared_layout_uses_the_short_token_and_the_project_id() {
        assert_eq!(
            shared_project_dir(Path::new("/srv/builds"), "abcdefghi", 1, "acme/web"),
            PathBuf::from("/srv/builds/abcdefghi/1/acme/web")
        );
    }
}
