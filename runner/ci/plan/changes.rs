//! `rules:changes` and `only/except:changes`: which files count as changed
//! in a local pipeline, and whether a clause's globs match one of them.
//!
//! # The comparison base
//!
//! GitLab compares a push with the commit the branch pointed at before the
//! push, and a merge request with its target branch (rule 92). A local run
//! has no push event, so the runner chooses the base this way:
//!
//! - **`push` pipelines on a branch**: the merge base of `HEAD` and the
//!   branch's upstream (`@{upstream}`), which is what the next push would
//!   send. When everything is already pushed and the working tree is clean,
//!   `HEAD~1` instead, which is what the last push compared. A branch
//!   without an upstream uses its merge base with the default branch
//!   (`CI_DEFAULT_BRANCH`, or `origin/<default>`) when it is not the default
//!   branch itself, and `HEAD~1` otherwise.
//! - **`merge_request_event`**: the merge base of `HEAD` and
//!   `CI_MERGE_REQUEST_TARGET_BRANCH_NAME` (the default branch when unset),
//!   looked up as `origin/<target>` first, then as a local branch.
//!   `external_pull_request_event` does the same with
//!   `CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME`.
//! - **Tag pipelines and every other source** (`schedule`, `web`, `api`,
//!   `trigger`, ...): GitLab has no list of changed files there, so every
//!   `changes` clause is true (rule 91), unless it sets `compare_to`.
//! - **`compare_to: <ref>`**: the merge base of that ref and `HEAD`, as
//!   GitLab does, whatever the pipeline source. A ref that does not resolve
//!   locally is retried as `origin/<ref>`; if that fails too, the job's rule
//!   fails with GitLab's error `rules:changes:compare_to is not a valid ref`.
//! - An explicit base given on the command line replaces the automatic one.
//!
//! In every case, uncommitted work counts as changed: staged and unstaged
//! edits and untracked files that are not ignored, so a developer sees the
//! plan their edits would produce. A repository with a single commit, or a
//! project that is not a git work tree, behaves like a new branch: every
//! `changes` clause is true, with a warning when git could not answer.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::fnmatch::FnMatch;
use super::git::Git;

/// GitLab stops comparing after this many (path, glob) pairs and counts
/// the clause as matched.
const MAX_PATTERN_COMPARISONS: usize = 50_000;

/// The files `changes` clauses are matched against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChangeSet {
    /// There is no list of changed files, so every clause is true (rule 91).
    Unknown { reason: String },
    /// The files that differ from `base`.
    Known { base: String, files: Vec<String> },
}

/// What kind of pipeline decides the default comparison base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BaseRule {
    /// An explicit base from the command line.
    Explicit(String),
    /// A push to a branch: compare with what the push sends.
    BranchPush {
        branch: Option<String>,
        default_branch: Option<String>,
    },
    /// A merge request or external pull request: compare with the target.
    Target(String),
    /// No push event: `changes` is always true.
    NoPush(String),
}

impl BaseRule {
    /// The rule for a pipeline of `source`, given its predefined variables.
    pub(crate) fn for_pipeline(
        source: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
        explicit: Option<&str>,
    ) -> BaseRule {
        if let Some(base) = explicit {
            return BaseRule::Explicit(base.to_string());
        }
        let default_branch = lookup("CI_DEFAULT_BRANCH").filter(|b| !b.is_empty());
        let target = |var: &str| {
            lookup(var)
                .filter(|t| !t.is_empty())
                .or_else(|| default_branch.clone())
                .unwrap_or_else(|| "main".to_string())
        };
        let is_tag = lookup("CI_COMMIT_TAG").is_some_and(|t| !t.is_empty());
        match source {
            "merge_request_event" => {
                BaseRule::Target(target("CI_MERGE_REQUEST_TARGET_BRANCH_NAME"))
            }
            "external_pull_request_event" => {
                BaseRule::Target(target("CI_EXTERNAL_PULL_REQUEST_TARGET_BRANCH_NAME"))
            }
            "push" if !is_tag => BaseRule::BranchPush {
                branch: lookup("CI_COMMIT_BRANCH").filter(|b| !b.is_empty()),
                default_branch,
            },
            "push" => BaseRule::NoPush("a tag pipeline has no list of changed files".into()),
            other => BaseRule::NoPush(format!("a `{other}` pipeline has no list of changed files")),
        }
    }
}

/// The outcome of matching one `changes` clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChangesOutcome {
    pub satisfied: bool,
    /// What the files were compared with, or why the clause is always true.
    pub base: String,
    /// Changed files that matched (at most a few, for explanations).
    pub matched: Vec<String>,
}

/// Computes change sets once per pipeline and per `compare_to` ref, and
/// compiles each glob once.
pub(crate) struct ChangeTracker {
    dir: PathBuf,
    /// Opened on first use: most pipelines never ask about changes.
    git: OnceCell<Option<Git>>,
    rule: BaseRule,
    default: OnceCell<ChangeSet>,
    compared: RefCell<HashMap<String, Result<Rc<ChangeSet>, String>>>,
    globs: RefCell<HashMap<String, Rc<FnMatch>>>,
    warnings: RefCell<Vec<String>>,
}

impl ChangeTracker {
    pub(crate) fn new(project_dir: &Path, rule: BaseRule) -> ChangeTracker {
        ChangeTracker {
            dir: project_dir.to_path_buf(),
            git: OnceCell::new(),
            rule,
            default: OnceCell::new(),
            compared: RefCell::new(HashMap::new()),
            globs: RefCell::new(HashMap::new()),
            warnings: RefCell::new(Vec::new()),
        }
    }

    /// Warnings about change detection (git missing, unknown target branch).
    pub(crate) fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.borrow_mut())
    }

    /// The pipeline's own change set, computed on first use.
    pub(crate) fn default_changes(&self) -> &ChangeSet {
        self.default.get_or_init(|| self.compute_default())
    }

    /// The change set against `compare_to`, or GitLab's error when the ref
    /// does not resolve.
    pub(crate) fn compared_to(&self, reference: &str) -> Result<Rc<ChangeSet>, String> {
        if let Some(hit) = self.compared.borrow().get(reference) {
            return hit.clone();
        }
        let result = self.compute_compare_to(reference);
        self.compared
            .borrow_mut()
            .insert(reference.to_string(), result.clone());
        result
    }

    /// The compiled form of `pattern`, shared between jobs.
    pub(crate) fn glob(&self, pattern: &str) -> Rc<FnMatch> {
        if let Some(hit) = self.globs.borrow().get(pattern) {
            return hit.clone();
        }
        let compiled = Rc::new(FnMatch::new(pattern));
        self.globs
            .borrow_mut()
            .insert(pattern.to_string(), compiled.clone());
        compiled
    }

    /// Matches already-expanded `patterns` against `changes` as GitLab's
    /// `Clause::Changes` does: no list means true, an empty list or no
    /// patterns means false, and too many comparisons mean true.
    pub(crate) fn evaluate(&self, changes: &ChangeSet, patterns: &[String]) -> ChangesOutcome {
        let (base, files) = match changes {
            ChangeSet::Unknown { reason } => {
                return ChangesOutcome {
                    satisfied: true,
                    base: reason.clone(),
                    matched: Vec::new(),
                };
            }
            ChangeSet::Known { base, files } => (base.clone(), files),
        };
        let mut unique: Vec<&str> = Vec::with_capacity(patterns.len());
        for p in patterns {
            if !unique.contains(&p.as_str()) {
                unique.push(p);
            }
        }
        if files.is_empty() || unique.is_empty() {
            return ChangesOutcome {
                satisfied: false,
                base,
                matched: Vec::new(),
            };
        }
        if files.len() * unique.len() > MAX_PATTERN_COMPARISONS {
            return ChangesOutcome {
                satisfied: true,
                base: format!(
                    "{base} (over {MAX_PATTERN_COMPARISONS} comparisons: counted as changed)"
                ),
                matched: Vec::new(),
            };
        }
        let compiled: Vec<Rc<FnMatch>> = unique.iter().map(|p| self.glob(p)).collect();
        let matched: Vec<String> = files
            .iter()
            .filter(|f| compiled.iter().any(|g| g.is_match(f)))
            .take(5)
            .cloned()
            .collect();
        ChangesOutcome {
            satisfied: !matched.is_empty(),
            base,
            matched,
        }
    }

    fn git(&self) -> Option<&Git> {
        self.git.get_or_init(|| Git::open(&self.dir)).as_ref()
    }

    fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(message);
    }

    fn compute_default(&self) -> ChangeSet {
        if let BaseRule::NoPush(reason) = &self.rule {
            return ChangeSet::Unknown {
                reason: format!("{reason}: `changes` is always true"),
            };
        }
        let Some(git) = self.git() else {
            self.warn("the project is not a git work tree: every `changes` clause is true".into());
            return ChangeSet::Unknown {
                reason: "not a git work tree: `changes` is always true".into(),
            };
        };
        let base = match &self.rule {
            BaseRule::Explicit(rev) => match resolve_with_origin(git, rev) {
                Some((sha, name)) => Some((sha, name)),
                None => {
                    self.warn(format!("the changes base `{rev}` is not a valid ref: every `changes` clause is true"));
                    None
                }
            },
            BaseRule::Target(target) => {
                let found = resolve_remote_first(git, target).and_then(|(tip, name)| {
                    git.merge_base("HEAD", &tip)
                        .map(|mb| (mb, format!("merge base of HEAD and {name}")))
                });
                if found.is_none() {
                    self.warn(format!(
                        "target branch `{target}` not found locally: every `changes` clause is true"
                    ));
                }
                found
            }
            BaseRule::BranchPush {
                branch,
                default_branch,
            } => branch_push_base(git, branch.as_deref(), default_branch.as_deref()),
            BaseRule::NoPush(_) => None,
        };
        let Some((sha, description)) = base else {
            return ChangeSet::Unknown {
                reason:
                    "no earlier commit to compare with (a new branch): `changes` is always true"
                        .into(),
            };
        };
        self.diff(git, &sha, description)
    }

    fn compute_compare_to(&self, reference: &str) -> Result<Rc<ChangeSet>, String> {
        let invalid = || "rules:changes:compare_to is not a valid ref".to_string();
        let git = self.git().ok_or_else(invalid)?;
        let (sha, name) = resolve_with_origin(git, reference).ok_or_else(invalid)?;
        let base = git.merge_base(&sha, "HEAD").ok_or_else(invalid)?;
        Ok(Rc::new(self.diff(
            git,
            &base,
            format!("merge base of HEAD and {name}"),
        )))
    }

    fn diff(&self, git: &Git, sha: &str, description: String) -> ChangeSet {
        let short = &sha[..sha.len().min(8)];
        match git.changed_since(sha) {
            Some(files) => ChangeSet::Known {
                base: format!("{description} ({short})"),
                files,
            },
            None => {
                self.warn(format!(
                    "git diff against {short} failed: every `changes` clause is true"
                ));
                ChangeSet::Unknown {
                    reason: "git diff failed: `changes` is always true".into(),
                }
            }
        }
    }
}

/// The base of a branch push; see the module documentation.
fn branch_push_base(
    git: &Git,
    branch: Option<&str>,
    default_branch: Option<&str>,
) -> Option<(String, String)> {
    let head = git.resolve_commit("HEAD")?;
    if let Some(upstream) = git.upstream() {
        if let Some(mb) = git.merge_base("HEAD", &upstream) {
            let pushed_and_clean = mb == head && git.is_clean() == Some(true);
            if !pushed_and_clean {
                return Some((mb, format!("merge base of HEAD and {upstream}")));
            }
        }
    } else if let Some(default) = default_branch.filter(|d| Some(*d) != branch) {
        if let Some((tip, name)) = resolve_remote_first(git, default) {
            if let Some(mb) = git.merge_base("HEAD", &tip) {
                return Some((mb, format!("merge base of HEAD and {name}")));
            }
        }
    }
    git.resolve_commit("HEAD~1")
        .map(|sha| (sha, "HEAD~1".to_string()))
}

/// `rev`, or failing that `origin/rev`, as (sha, name used).
fn resolve_with_origin(git: &Git, rev: &str) -> Option<(String, String)> {
    if let Some(sha) = git.resolve_commit(rev) {
        return Some((sha, rev.to_string()));
    }
    let remote = match rev.strip_prefix("refs/heads/") {
        Some(branch) => format!("refs/remotes/origin/{branch}"),
        None => format!("origin/{rev}"),
    };
    git.resolve_commit(&remote).map(|sha| (sha, remote))
}

/// A branch as `origin/<branch>` first (the server's view), then locally.
fn resolve_remote_first(git: &Git, branch: &str) -> Option<(String, String)> {
    let remote = format!("origin/{branch}");
    if let Some(sha) = git.resolve_commit(&remote) {
        return Some((sha, remote));
    }
    git.resolve_commit(branch)
        .map(|sha| (sha, branch.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::git::testing::*;
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    fn files(set: &ChangeSet) -> Vec<String> {
        match set {
            ChangeSet::Known { files, .. } => files.clone(),
            ChangeSet::Unknown { reason } => panic!("unknown: {reason}"),
        }
    }

    /// main: a.txt; feature (from main): b.txt committed, c.txt uncommitted.
    fn repo_with_feature_branch() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        init(dir);
        write(dir, "a.txt", "1");
        commit_all(dir, "one");
        write(dir, "docs/x.md", "1");
        commit_all(dir, "two");
        git(dir, &["checkout", "-q", "-b", "feature"]);
        write(dir, "src/b.rs", "1");
        commit_all(dir, "three");
        write(dir, "c.txt", "new");
        tmp
    }

    #[test]
    fn rule_92_branch_without_upstream_compares_with_the_default_branch() {
        let tmp = repo_with_feature_branch();
        let lookup = vars(&[
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_COMMIT_BRANCH", "feature"),
        ]);
        let rule = BaseRule::for_pipeline("push", &lookup, None);
        let tracker = ChangeTracker::new(tmp.path(), rule);
        assert_eq!(files(tracker.default_changes()), ["c.txt", "src/b.rs"]);
    }

    #[test]
    fn rule_92_default_branch_without_upstream_compares_with_the_previous_commit() {
        let tmp = repo_with_feature_branch();
        git(tmp.path(), &["stash", "-u", "-q"]);
        git(tmp.path(), &["checkout", "-q", "main"]);
        let lookup = vars(&[("CI_DEFAULT_BRANCH", "main"), ("CI_COMMIT_BRANCH", "main")]);
        let tracker = ChangeTracker::new(tmp.path(), BaseRule::for_pipeline("push", &lookup, None));
        assert_eq!(files(tracker.default_changes()), ["docs/x.md"]);
    }

    #[test]
    fn rule_92_branch_with_upstream_compares_with_what_the_push_sends() {
        let tmp = repo_with_feature_branch();
        let dir = tmp.path();
        // A bare clone of main plays the remote; feature tracks origin/main.
        let remote = tempfile::tempdir().unwrap();
        git(remote.path(), &["init", "-q", "--bare"]);
        git(
            dir,
            &["remote", "add", "origin", remote.path().to_str().unwrap()],
        );
        git(dir, &["push", "-q", "origin", "main"]);
        git(dir, &["branch", "-q", "--set-upstream-to", "origin/main"]);
        let lookup = vars(&[
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_COMMIT_BRANCH", "feature"),
        ]);
        let tracker = ChangeTracker::new(dir, BaseRule::for_pipeline("push", &lookup, None));
        assert_eq!(files(tracker.default_changes()), ["c.txt", "src/b.rs"]);
    }

    #[test]
    fn rule_92_merge_requests_compare_with_the_target_branch() {
        let tmp = repo_with_feature_branch();
        let lookup = vars(&[
            ("CI_DEFAULT_BRANCH", "main"),
            ("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main"),
        ]);
        let rule = BaseRule::for_pipeline("merge_request_event", &lookup, None);
        assert_eq!(rule, BaseRule::Target("main".into()));
        let tracker = ChangeTracker::new(tmp.path(), rule);
        let set = tracker.default_changes();
        assert_eq!(files(set), ["c.txt", "src/b.rs"]);
        let outcome = tracker.evaluate(set, &["src/**/*.rs".into()]);
        assert!(outcome.satisfied);
        assert_eq!(outcome.matched, ["src/b.rs"]);
        assert!(!tracker.evaluate(set, &["docs/*".into()]).satisfied);
    }

    #[test]
    fn rule_91_tags_schedules_and_web_pipelines_always_match() {
        let tmp = repo_with_feature_branch();
        for (source, extra) in [
            ("push", ("CI_COMMIT_TAG", "v1")),
            ("schedule", ("X", "")),
            ("web", ("X", "")),
        ] {
            let lookup = vars(&[extra]);
            let tracker =
                ChangeTracker::new(tmp.path(), BaseRule::for_pipeline(source, &lookup, None));
            let outcome = tracker.evaluate(tracker.default_changes(), &["nothing/matches".into()]);
            assert!(outcome.satisfied, "{source}");
        }
    }

    #[test]
    fn rule_93_compare_to_uses_the_merge_base_and_rejects_unknown_refs() {
        let tmp = repo_with_feature_branch();
        let tracker = ChangeTracker::new(tmp.path(), BaseRule::NoPush("schedule".into()));
        let set = tracker.compared_to("refs/heads/main").unwrap();
        assert_eq!(files(&set), ["c.txt", "src/b.rs"]);
        assert_eq!(
            tracker.compared_to("nope").unwrap_err(),
            "rules:changes:compare_to is not a valid ref"
        );
    }

    #[test]
    fn rule_90_empty_pattern_lists_and_clean_trees_do_not_match() {
        let tracker = ChangeTracker::new(Path::new("/"), BaseRule::NoPush("x".into()));
        let set = ChangeSet::Known {
            base: "b".into(),
            files: vec!["a.txt".into()],
        };
        assert!(!tracker.evaluate(&set, &[]).satisfied);
        let empty = ChangeSet::Known {
            base: "b".into(),
            files: vec![],
        };
        assert!(!tracker.evaluate(&empty, &["*".into()]).satisfied);
        assert!(
            tracker
                .evaluate(&set, &["*.txt".into(), "*.txt".into()])
                .satisfied
        );
    }

    #[test]
    fn rule_91_a_single_commit_repository_is_a_new_branch() {
        let tmp = tempfile::tempdir().unwrap();
        init(tmp.path());
        write(tmp.path(), "a", "1");
        commit_all(tmp.path(), "only");
        let lookup = vars(&[("CI_DEFAULT_BRANCH", "main"), ("CI_COMMIT_BRANCH", "main")]);
        let tracker = ChangeTracker::new(tmp.path(), BaseRule::for_pipeline("push", &lookup, None));
        assert!(matches!(
            tracker.default_changes(),
            ChangeSet::Unknown { .. }
        ));
        assert!(tracker.take_warnings().is_empty());
    }
}
