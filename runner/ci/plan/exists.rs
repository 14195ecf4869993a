//! `rules:exists`: whether files matching the globs exist in the project
//! (rules 95-97).
//!
//! GitLab looks at the tree of the pipeline's commit. Locally the runner
//! looks at the working tree as git sees it (tracked files still present
//! plus untracked files that are not ignored), so new files count before
//! they are committed; outside a git repository, at every file under the
//! project directory. `exists: {ref: R}` reads the tree of commit `R`.
//! `exists: {project: P}` for a project other than `CI_PROJECT_PATH`
//! cannot be checked locally: it counts as not existing, with a warning.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::changes::ChangeTracker;
use super::git::Git;

/// GitLab stops comparing after this many (path, glob) pairs and counts
/// the clause as matched (rule 96).
const MAX_PATTERN_COMPARISONS: usize = 50_000;

/// The outcome of one `exists` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExistsOutcome {
    pub satisfied: bool,
    /// A matching file, for explanations.
    pub matched: Option<String>,
    /// What was searched (`the working tree`, `the tree of v1.0`).
    pub searched: String,
}

/// The file lists `exists` clauses search, read once each.
pub(crate) struct ExistsIndex {
    dir: PathBuf,
    /// Opened on first use, like the change tracker's.
    git: OnceCell<Option<Git>>,
    worktree: OnceCell<Rc<Vec<String>>>,
    trees: RefCell<HashMap<String, Option<Rc<Vec<String>>>>>,
}

impl ExistsIndex {
    pub(crate) fn new(project_dir: &Path) -> ExistsIndex {
        ExistsIndex {
            dir: project_dir.to_path_buf(),
            git: OnceCell::new(),
            worktree: OnceCell::new(),
            trees: RefCell::new(HashMap::new()),
        }
    }

    fn git(&self) -> Option<&Git> {
        self.git.get_or_init(|| Git::open(&self.dir)).as_ref()
    }

    /// The project's files, sorted.
    pub(crate) fn worktree(&self) -> Rc<Vec<String>> {
        self.worktree
            .get_or_init(|| {
                let files = self
                    .git()
                    .and_then(Git::worktree_files)
                    .unwrap_or_else(|| walk_files(&self.dir));
                Rc::new(files)
            })
            .clone()
    }

    /// The files of commit `git_ref`, or `None` when it does not resolve.
    pub(crate) fn tree(&self, git_ref: &str) -> Option<Rc<Vec<String>>> {
        if let Some(hit) = self.trees.borrow().get(git_ref) {
            return hit.clone();
        }
        let files = self.git().and_then(|git| {
            let sha = git.resolve_commit(git_ref)?;
            git.tree_files(&sha)
        });
        let files = files.map(Rc::new);
        self.trees
            .borrow_mut()
            .insert(git_ref.to_string(), files.clone());
        files
    }

    /// Matches already-expanded `patterns` against sorted `files` as
    /// GitLab's `Clause::Exists` does: a pattern without glob characters
    /// names one file exactly (or, ending in `/`, any file under that
    /// directory); the others are `File.fnmatch?` globs.
    pub(crate) fn evaluate(
        files: &[String],
        patterns: &[String],
        globs: &ChangeTracker,
        searched: String,
    ) -> ExistsOutcome {
        let outcome = |matched: Option<String>, satisfied: bool| ExistsOutcome {
            satisfied,
            matched,
            searched: searched.clone(),
        };
        let (exact, pattern): (Vec<&String>, Vec<&String>) = patterns
            .iter()
            .partition(|p| !p.contains(['*', '?', '[', '{']));
        for name in exact {
            let hit = if name.ends_with('/') {
                let at = files.partition_point(|f| f.as_str() < name.as_str());
                files.get(at).filter(|f| f.starts_with(name.as_str()))
            } else {
                files
                    .binary_search_by(|f| f.as_str().cmp(name))
                    .ok()
                    .map(|i| &files[i])
            };
            if let Some(file) = hit {
                return outcome(Some(file.clone()), true);
            }
        }
        if pattern.is_empty() || files.is_empty() {
            return outcome(None, false);
        }
        if files.len() * pattern.len() > MAX_PATTERN_COMPARISONS {
            return outcome(None, true);
        }
        for p in pattern {
            let glob = globs.glob(p);
            if let Some(file) = files.iter().find(|f| glob.is_match(f)) {
                return outcome(Some(file.clone()), true);
            }
        }
        outcome(None, false)
    }
}

/// Every file under `dir`, relative and sorted, `.git` left out.
fn walk_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?;
            Some(rel.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::super::changes::BaseRule;
    use super::super::git::testing::*;
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    fn tracker() -> ChangeTracker {
        ChangeTracker::new(Path::new("/nonexistent"), BaseRule::NoPush("t".into()))
    }

    #[test]
    fn rule_95_exact_names_directories_and_globs() {
        let tree = files(&["Dockerfile", "docker/build.sh", "src/main.rs", ".hidden/x"]);
        let t = tracker();
        let ev = |p: &[&str]| {
            let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
            ExistsIndex::evaluate(&tree, &p, &t, "tree".into()).satisfied
        };
        assert!(ev(&["Dockerfile"]));
        assert!(!ev(&["docker"]));
        assert!(ev(&["docker/"]));
        assert!(ev(&["nope", "src/*.rs"]));
        assert!(ev(&["**/*.sh"]));
        assert!(ev(&[".hidden/*"]));
        assert!(!ev(&["*.rs"]));
        assert!(!ev(&[]));
    }

    #[test]
    fn rule_96_too_many_comparisons_count_as_a_match() {
        let tree: Vec<String> = (0..20_000).map(|i| format!("f{i:05}")).collect();
        let p = vec!["x*".to_string(), "y*".to_string(), "z*".to_string()];
        assert!(ExistsIndex::evaluate(&tree, &p, &tracker(), "tree".into()).satisfied);
    }

    #[test]
    fn rule_97_exists_reads_the_worktree_or_a_given_ref() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir);
        write(dir, "old.txt", "1");
        commit_all(dir, "one");
        git(dir, &["tag", "v1"]);
        std::fs::remove_file(dir.join("old.txt")).unwrap();
        write(dir, "new.txt", "uncommitted");
        let index = ExistsIndex::new(dir);
        assert_eq!(*index.worktree(), ["new.txt"]);
        assert_eq!(*index.tree("v1").unwrap(), ["old.txt"]);
        assert!(index.tree("no-such-ref").is_none());
    }

    #[test]
    fn exists_outside_git_walks_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "a/b.txt", "1");
        write(tmp.path(), ".git/HEAD", "x");
        let index = ExistsIndex::new(tmp.path());
        assert_eq!(*index.worktree(), ["a/b.txt"]);
    }
}
