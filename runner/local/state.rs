//! Where local runs keep their files, outside the user's tree:
//!
//! ```text
//! <state>/projects/<name>-<hash of the repository path>/
//!   builds/<job>/                 CI_BUILDS_DIR of each job (`/builds` in a container)
//!   builds/<job>/<project path>   CI_PROJECT_DIR, synced afresh for every run
//!   cache/<project path>/<key>/cache.zip
//!   artifacts/<job id>/…          what each job uploaded
//!   artifacts/latest/<job>        id of the last run of each job with artifacts
//!   pipelines/<id>/<job>.log      every job's full log
//!   last-pipeline-id
//! ```
//!
//! `<state>` is `$RUNNER_STATE_DIR`, else `$XDG_CACHE_HOME/runner`, else
//! `~/.cache/runner`. The hash keeps two checkouts of the same project
//! apart.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::ci::variables::slugify;

/// The directories of one project's local runs.
#[derive(Debug, Clone)]
pub struct ProjectState {
    pub root: PathBuf,
}

impl ProjectState {
    /// The state of the repository at `toplevel`.
    pub fn for_project(toplevel: &Path) -> ProjectState {
        let base = state_base();
        let canonical = fs::canonicalize(toplevel).unwrap_or_else(|_| toplevel.to_owned());
        let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let name = canonical
            .file_name()
            .map(|n| slugify(&n.to_string_lossy()))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "project".to_owned());
        ProjectState {
            root: base.join("projects").join(format!("{name}-{hash}")),
        }
    }

    /// The owner label of the Docker objects this project's local jobs
    /// create, so `runner cleanup` in one project leaves other projects'
    /// running jobs alone.
    pub fn docker_owner(&self) -> String {
        let name = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("local-{name}")
    }

    /// The owner labels of every project with local state.
    pub fn all_docker_owners() -> Vec<String> {
        let Ok(entries) = fs::read_dir(state_base().join("projects")) else {
            return Vec::new();
        };
        let mut owners: Vec<String> = entries
            .flatten()
            .map(|e| ProjectState { root: e.path() }.docker_owner())
            .collect();
        owners.sort();
        owners
    }

    /// `CI_BUILDS_DIR`.
    pub fn builds_dir(&self) -> PathBuf {
        self.root.join("builds")
    }

    /// The builds directory of job `job_name`: each job has its own, so
    /// jobs running side by side never share a checkout, and a container
    /// sees it as `/builds` with the project at GitLab's
    /// `/builds/<namespace>/<project>`.
    pub fn job_builds_dir(&self, job_name: &str) -> PathBuf {
        self.builds_dir().join(job_dir_name(job_name))
    }

    /// The project directory of job `job_name`.
    pub fn project_dir(&self, job_name: &str, project_path: &str) -> PathBuf {
        self.job_builds_dir(job_name).join(project_path)
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn artifacts_dir(&self) -> PathBuf {
        self.root.join("artifacts")
    }

    /// The log file of a job of a pipeline.
    pub fn log_file(&self, pipeline_id: u64, job_name: &str) -> PathBuf {
        self.root
            .join("pipelines")
            .join(pipeline_id.to_string())
            .join(format!("{}.log", job_dir_name(job_name)))
    }

    /// A new pipeline id, one more than the last.
    pub fn next_pipeline_id(&self) -> io::Result<u64> {
        fs::create_dir_all(&self.root)?;
        let path = self.root.join("last-pipeline-id");
        let last: u64 = fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let next = last + 1;
        let tmp = self
            .root
            .join(format!("last-pipeline-id.{}", std::process::id()));
        fs::write(&tmp, format!("{next}\n"))?;
        fs::rename(&tmp, &path)?;
        Ok(next)
    }

    /// Remembers that job `job_name`'s latest artifacts are job `job_id`'s.
    pub fn set_latest_artifacts(&self, job_name: &str, job_id: u64) -> io::Result<()> {
        let dir = self.artifacts_dir().join("latest");
        fs::create_dir_all(&dir)?;
        let path = dir.join(job_dir_name(job_name));
        let tmp = dir.join(format!(
            ".{}.{}",
            job_dir_name(job_name),
            std::process::id()
        ));
        fs::write(&tmp, job_id.to_string())?;
        fs::rename(&tmp, &path)
    }

    /// The id of the latest run of `job_name` that left artifacts.
    pub fn latest_artifacts(&self, job_name: &str) -> Option<u64> {
        let path = self
            .artifacts_dir()
            .join("latest")
            .join(job_dir_name(job_name));
        fs::read_to_string(path).ok()?.trim().parse().ok()
    }
}

fn state_base() -> PathBuf {
    match std::env::var_os("RUNNER_STATE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => crate::ci::load::default_cache_dir(),
    }
}

/// A directory name for a job: its slug, plus a short hash when the slug
/// lost characters, so `test 1/2` and `test-1-2` stay apart.
pub fn job_dir_name(job_name: &str) -> String {
    let slug = slugify(job_name);
    if slug == job_name {
        return slug;
    }
    let digest = Sha256::digest(job_name.as_bytes());
    let hash: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
    format!("{slug}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_dirs_of_different_names_differ() {
        assert_eq!(job_dir_name("build"), "build");
        assert_ne!(job_dir_name("test 1/2"), job_dir_name("test-1-2"));
        assert!(job_dir_name("test 1/2").starts_with("test-1-2-"));
    }

    #[test]
    fn pipeline_ids_count_up_and_latest_artifacts_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let state = ProjectState {
            root: dir.path().join("p"),
        };
        assert_eq!(state.next_pipeline_id().unwrap(), 1);
        assert_eq!(state.next_pipeline_id().unwrap(), 2);
        assert_eq!(state.latest_artifacts("build"), None);
        state.set_latest_artifacts("build", 7).unwrap();
        state.set_latest_artifacts("build", 9).unwrap();
        assert_eq!(state.latest_artifacts("build"), Some(9));
    }
}
