//! What the predefined variables need from the local git repository, read
//! once by running the `git` binary.
//!
//! Spawning git costs about two milliseconds of CPU a time, so the reading
//! is kept to three commands, started together and collected afterwards:
//! the HEAD commit (`log -1`), every branch, tag and remote-tracking ref
//! with the current branch and its upstream (`for-each-ref`), and the
//! `origin` URL (`config`). A fourth runs only when annotated tags point at
//! HEAD, to read their messages. The work tree root is found without git,
//! by looking for `.git` in the directory and its parents, as git does.
//!
//! `before_sha` answers "what would GitLab have seen before, if this were
//! pushed now": the tip of the current branch's upstream when it has one
//! (a branch that was pushed before), and the blank SHA otherwise (a new
//! branch, a detached HEAD, a repository without remote), which is what
//! GitLab reports for the first push of a branch.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Why the repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not run git: {0}")]
    Spawn(#[from] io::Error),
    #[error("{} is not inside a git work tree", .0.display())]
    NotARepository(PathBuf),
    #[error("the repository at {} has no commit yet", .0.display())]
    NoCommit(PathBuf),
    #[error("git {args} failed: {stderr}")]
    Command { args: String, stderr: String },
    #[error("there is no earlier commit to compare with (the blank SHA)")]
    BlankBase,
}

/// The commit HEAD points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadCommit {
    pub sha: String,
    pub parents: Vec<String>,
    pub author_name: String,
    pub author_email: String,
    /// The committer date in strict ISO 8601 with the commit's own offset,
    /// as GitLab gives it (`committed_date.xmlschema`).
    pub committer_date: String,
    /// The raw message, trailing newline included.
    pub message: String,
}

/// A tag that points at HEAD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadTag {
    pub name: String,
    /// The annotation of an annotated tag; empty for a lightweight tag.
    pub message: String,
}

/// Everything read from git, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitFacts {
    /// The root of the work tree.
    pub toplevel: PathBuf,
    pub head: HeadCommit,
    /// The branch HEAD is on; `None` when HEAD is detached.
    pub branch: Option<String>,
    /// Local branches whose tip is HEAD, in name order.
    pub branches_at_head: Vec<String>,
    /// Tags that point at HEAD (directly or through an annotated tag).
    pub tags_at_head: Vec<HeadTag>,
    /// All local branch names.
    pub branches: BTreeSet<String>,
    /// All tag names.
    pub tags: BTreeSet<String>,
    /// The branch `origin/HEAD` points at, if that symbolic ref exists.
    pub origin_head: Option<String>,
    /// The URL of the `origin` remote, as configured. It may carry
    /// credentials (`https://user:token@host/...`): never print it.
    pub origin_url: Option<String>,
    /// The tip of the current branch's upstream, if it has one.
    pub upstream_sha: Option<String>,
    /// See the module documentation.
    pub before_sha: String,
}

/// A `git` command for `dir`. Variables that would point git at another
/// repository than the one asked for are removed (they are set, relative,
/// inside git hooks).
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

fn spawn(dir: &Path, args: &[&str]) -> io::Result<Child> {
    git(dir).args(args).spawn()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

fn command_error(args: &[&str], out: &Output) -> GitError {
    GitError::Command {
        args: args.join(" "),
        stderr: stderr_of(out),
    }
}

const LOG_ARGS: &[&str] = &[
    "log",
    "-1",
    "--no-show-signature",
    "--format=format:%H%x00%P%x00%an%x00%ae%x00%cI%x00%B",
    "HEAD",
    "--",
];
const REFS_ARGS: &[&str] = &[
    "for-each-ref",
    "--format=%(HEAD)%00%(refname)%00%(objectname)%00%(*objectname)%00%(symref)%00%(upstream)",
    "refs/heads",
    "refs/tags",
    "refs/remotes",
];
const ORIGIN_ARGS: &[&str] = &["config", "--get", "remote.origin.url"];

/// The closest directory, from `dir` up, that holds a `.git` directory or
/// file (a linked work tree or a submodule has a file).
fn find_toplevel(dir: &Path) -> Option<PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

impl GitFacts {
    /// Reads the repository that contains `repo_dir`.
    pub fn read(repo_dir: &Path) -> Result<GitFacts, GitError> {
        let toplevel = find_toplevel(repo_dir)
            .ok_or_else(|| GitError::NotARepository(repo_dir.to_path_buf()))?;
        // Start everything first, then collect: the commands run in parallel.
        let log = spawn(repo_dir, LOG_ARGS)?;
        let refs = spawn(repo_dir, REFS_ARGS)?;
        let origin = spawn(repo_dir, ORIGIN_ARGS)?;
        let (log, refs, origin) = (
            log.wait_with_output()?,
            refs.wait_with_output()?,
            origin.wait_with_output()?,
        );

        if !log.status.success() {
            let err = stderr_of(&log);
            if err.contains("not a git repository") {
                return Err(GitError::NotARepository(repo_dir.to_path_buf()));
            }
            let no_head = [
                "bad revision 'HEAD'",
                "does not have any commits",
                "unknown revision",
            ];
            if no_head.iter().any(|m| err.contains(m)) {
                return Err(GitError::NoCommit(toplevel));
            }
            return Err(command_error(LOG_ARGS, &log));
        }
        let head = parse_log(&String::from_utf8_lossy(&log.stdout))
            .ok_or_else(|| command_error(LOG_ARGS, &log))?;
        if !refs.status.success() {
            return Err(command_error(REFS_ARGS, &refs));
        }
        // `config --get` exits 1 when the key is missing.
        let origin_url = Some(String::from_utf8_lossy(&origin.stdout).trim().to_owned())
            .filter(|u| !u.is_empty());

        let refs = parse_refs(&String::from_utf8_lossy(&refs.stdout), &head.sha);
        let tags_at_head = read_tag_messages(repo_dir, &refs.tags_at_head)?;
        let upstream_sha = refs.upstream_sha;
        let before_sha = upstream_sha
            .clone()
            .unwrap_or_else(|| blank_sha_like(&head.sha));
        Ok(GitFacts {
            toplevel,
            branch: refs.current,
            branches_at_head: refs.branches_at_head,
            tags_at_head,
            branches: refs.branches,
            tags: refs.tags,
            origin_head: refs.origin_head,
            origin_url,
            upstream_sha,
            before_sha,
            head,
        })
    }

    /// Facts for a directory that is not a git repository, or one with no
    /// commit yet: a branch `main` at the blank SHA, so that a pipeline can
    /// still be linted and planned (changes are then always true, as for a
    /// new branch on GitLab).
    pub fn without_repository(dir: &Path) -> GitFacts {
        let toplevel = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let blank = "0".repeat(40);
        GitFacts {
            toplevel,
            head: HeadCommit {
                sha: blank.clone(),
                parents: Vec::new(),
                author_name: String::new(),
                author_email: String::new(),
                committer_date: String::new(),
                message: String::new(),
            },
            branch: Some("main".to_owned()),
            branches_at_head: vec!["main".to_owned()],
            tags_at_head: Vec::new(),
            branches: BTreeSet::from(["main".to_owned()]),
            tags: BTreeSet::new(),
            origin_head: None,
            origin_url: None,
            upstream_sha: None,
            before_sha: blank,
        }
    }

    /// The blank SHA GitLab uses for "no previous commit", as long as the
    /// repository's SHAs (40 zeros, or 64 in a SHA-256 repository).
    pub fn blank_sha(&self) -> String {
        blank_sha_like(&self.head.sha)
    }

    /// True if `sha` is the blank SHA.
    pub fn is_blank_sha(sha: &str) -> bool {
        !sha.is_empty() && sha.bytes().all(|b| b == b'0')
    }

    /// The files that changed since `base`: every path that differs between
    /// the merge base of `base` and HEAD, and the work tree, plus untracked
    /// files that are not ignored. Paths are relative to the work tree root,
    /// sorted, deleted and renamed-away paths included (GitLab lists both
    /// sides of a rename).
    ///
    /// Locally a developer wants their edits to count, so uncommitted and
    /// untracked changes are included, as if they were committed and pushed.
    /// `base` is a SHA or any ref git understands (`compare_to`). The blank
    /// SHA is refused: GitLab treats `changes` as always true then (rule 91),
    /// and the caller must do the same.
    pub fn changed_files(&self, base: &str) -> Result<Vec<String>, GitError> {
        if GitFacts::is_blank_sha(base) {
            return Err(GitError::BlankBase);
        }
        let diff_args = [
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-relative",
            "--no-ext-diff",
            "--merge-base",
            base,
            "--",
        ];
        let untracked_args = ["ls-files", "-z", "--others", "--exclude-standard"];
        let diff = spawn(&self.toplevel, &diff_args)?;
        let untracked = spawn(&self.toplevel, &untracked_args)?;
        let (diff, untracked) = (diff.wait_with_output()?, untracked.wait_with_output()?);
        if !diff.status.success() {
            return Err(command_error(&diff_args, &diff));
        }
        if !untracked.status.success() {
            return Err(command_error(&untracked_args, &untracked));
        }
        let mut paths: BTreeSet<String> = BTreeSet::new();
        for out in [&diff.stdout, &untracked.stdout] {
            for p in out.split(|&b| b == 0).filter(|p| !p.is_empty()) {
                paths.insert(String::from_utf8_lossy(p).into_owned());
            }
        }
        Ok(paths.into_iter().collect())
    }
}

fn blank_sha_like(sha: &str) -> String {
    "0".repeat(if sha.len() == 64 { 64 } else { 40 })
}

fn parse_log(text: &str) -> Option<HeadCommit> {
    let mut f = text.splitn(6, '\0');
    let sha = f.next()?.trim().to_owned();
    let parents = f.next()?.split_whitespace().map(str::to_owned).collect();
    let author_name = f.next()?.to_owned();
    let author_email = f.next()?.to_owned();
    let committer_date = f.next()?.to_owned();
    let message = f.next()?.to_owned();
    if sha.is_empty() {
        return None;
    }
    Some(HeadCommit {
        sha,
        parents,
        author_name,
        author_email,
        committer_date,
        message,
    })
}

struct Refs {
    current: Option<String>,
    upstream_sha: Option<String>,
    branches_at_head: Vec<String>,
    /// Tags at HEAD, and whether each is annotated.
    tags_at_head: Vec<(String, bool)>,
    branches: BTreeSet<String>,
    tags: BTreeSet<String>,
    origin_head: Option<String>,
}

/// Reads `for-each-ref` records: HEAD marker, ref name, object, peeled
/// object (annotated tags only), symbolic target, upstream.
fn parse_refs(text: &str, head_sha: &str) -> Refs {
    let mut refs = Refs {
        current: None,
        upstream_sha: None,
        branches_at_head: Vec::new(),
        tags_at_head: Vec::new(),
        branches: BTreeSet::new(),
        tags: BTreeSet::new(),
        origin_head: None,
    };
    let mut shas: HashMap<&str, &str> = HashMap::new();
    let mut upstream = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\0').collect();
        let [is_head, name, oid, peeled, symref, up] = f[..] else {
            continue;
        };
        shas.insert(name, oid);
        if let Some(branch) = name.strip_prefix("refs/heads/") {
            if is_head == "*" {
                refs.current = Some(branch.to_owned());
                upstream = Some(up).filter(|u| !u.is_empty());
            }
            if oid == head_sha {
                refs.branches_at_head.push(branch.to_owned());
            }
            refs.branches.insert(branch.to_owned());
        } else if let Some(tag) = name.strip_prefix("refs/tags/") {
            if oid == head_sha || peeled == head_sha {
                refs.tags_at_head.push((tag.to_owned(), !peeled.is_empty()));
            }
            refs.tags.insert(tag.to_owned());
        } else if name == "refs/remotes/origin/HEAD" {
            refs.origin_head = symref
                .strip_prefix("refs/remotes/origin/")
                .map(str::to_owned);
        }
    }
    refs.upstream_sha = upstream.and_then(|u| shas.get(u)).map(|s| (*s).to_owned());
    refs
}

/// The tags at HEAD with their messages. Only annotated tags have one, and
/// git is asked for them only if there are any.
fn read_tag_messages(dir: &Path, tags: &[(String, bool)]) -> Result<Vec<HeadTag>, GitError> {
    let annotated: Vec<String> = tags
        .iter()
        .filter(|(_, annotated)| *annotated)
        .map(|(name, _)| format!("refs/tags/{name}"))
        .collect();
    let mut messages: HashMap<String, String> = HashMap::new();
    if !annotated.is_empty() {
        let mut args = vec!["for-each-ref", "--format=%(refname)%00%(contents)%00%00"];
        args.extend(annotated.iter().map(String::as_str));
        let out = spawn(dir, &args)?.wait_with_output()?;
        if !out.status.success() {
            return Err(command_error(&args, &out));
        }
        for record in String::from_utf8_lossy(&out.stdout).split("\0\0\n") {
            if let Some((name, contents)) = record.split_once('\0') {
                messages.insert(name.to_owned(), contents.to_owned());
            }
        }
    }
    Ok(tags
        .iter()
        .map(|(name, _)| HeadTag {
            message: messages
                .remove(&format!("refs/tags/{name}"))
                .unwrap_or_default(),
            name: name.clone(),
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;

    /// A throwaway repository with a fixed identity and `main` as the
    /// initial branch.
    pub(crate) struct Repo {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    impl Repo {
        pub(crate) fn new() -> Repo {
            let dir = tempfile::tempdir().expect("tempdir");
            let repo = Repo {
                path: dir.path().to_path_buf(),
                _dir: dir,
            };
            repo.git(&["-c", "init.defaultBranch=main", "init", "-q"]);
            repo.configure();
            repo
        }

        /// A clone of `upstream`, whose `origin` is `upstream`.
        pub(crate) fn clone_of(upstream: &Repo) -> Repo {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("work");
            let out = git(dir.path())
                .args(["clone", "-q"])
                .arg(upstream.path())
                .arg(&path)
                .output()
                .expect("git clone runs");
            assert!(out.status.success(), "clone: {}", stderr_of(&out));
            let repo = Repo { _dir: dir, path };
            repo.configure();
            repo
        }

        fn configure(&self) {
            self.git(&["config", "user.name", "Ada Lovelace"]);
            self.git(&["config", "user.email", "ada@example.com"]);
            self.git(&["config", "commit.gpgsign", "false"]);
            self.git(&["config", "tag.gpgsign", "false"]);
        }

        pub(crate) fn path(&self) -> &Path {
            &self.path
        }

        pub(crate) fn git(&self, args: &[&str]) -> String {
            let out = git(self.path())
                .args(args)
                .env("GIT_COMMITTER_DATE", "2022-01-31T16:47:55+01:00")
                .env("GIT_AUTHOR_DATE", "2022-01-31T16:47:55+01:00")
                .output()
                .expect("git runs");
            assert!(out.status.success(), "git {args:?}: {}", stderr_of(&out));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }

        pub(crate) fn write(&self, path: &str, text: &str) {
            let p = self.path().join(path);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).expect("mkdir");
            }
            fs::write(p, text).expect("write");
        }

        pub(crate) fn commit(&self, path: &str, message: &str) -> String {
            self.write(path, message);
            self.git(&["add", path]);
            self.git(&["commit", "-q", "-m", message]);
            self.git(&["rev-parse", "HEAD"])
        }
    }

    #[test]
    fn reads_head_commit_branch_and_toplevel() {
        let repo = Repo::new();
        let first = repo.commit("a.txt", "First");
        let sha = repo.commit("b.txt", "Second line\n\nBody");
        fs::create_dir_all(repo.path().join("sub")).expect("mkdir");
        let facts = GitFacts::read(&repo.path().join("sub")).expect("read");
        assert_eq!(facts.head.sha, sha);
        assert_eq!(facts.head.parents, [first]);
        assert_eq!(facts.head.author_name, "Ada Lovelace");
        assert_eq!(facts.head.author_email, "ada@example.com");
        assert_eq!(facts.head.committer_date, "2022-01-31T16:47:55+01:00");
        assert_eq!(facts.head.message, "Second line\n\nBody\n");
        assert_eq!(facts.branch.as_deref(), Some("main"));
        assert_eq!(facts.branches_at_head, ["main"]);
        let canonical = |p: &Path| fs::canonicalize(p).expect("canonicalize");
        assert_eq!(canonical(&facts.toplevel), canonical(repo.path()));
        assert_eq!(facts.origin_url, None);
        assert_eq!(facts.upstream_sha, None);
        assert_eq!(facts.before_sha, "0".repeat(40));
    }

    #[test]
    fn detached_head_with_tags() {
        let repo = Repo::new();
        repo.commit("a.txt", "One");
        repo.git(&["tag", "-a", "v1.0", "-m", "Release 1.0\n\nNotes"]);
        repo.git(&["tag", "light"]);
        repo.commit("b.txt", "Two");
        repo.git(&["checkout", "-q", "v1.0"]);
        let facts = GitFacts::read(repo.path()).expect("read");
        assert_eq!(facts.branch, None);
        assert!(facts.branches_at_head.is_empty());
        let tags: Vec<(&str, &str)> = facts
            .tags_at_head
            .iter()
            .map(|t| (t.name.as_str(), t.message.as_str()))
            .collect();
        assert_eq!(tags, [("light", ""), ("v1.0", "Release 1.0\n\nNotes\n")]);
        assert!(facts.tags.contains("v1.0"));
    }

    #[test]
    fn origin_head_upstream_and_before_sha() {
        let upstream = Repo::new();
        let pushed = upstream.commit("a.txt", "Base");
        let work = Repo::clone_of(&upstream);
        work.commit("b.txt", "Local");
        let facts = GitFacts::read(work.path()).expect("read");
        assert_eq!(facts.origin_head.as_deref(), Some("main"));
        assert_eq!(facts.upstream_sha.as_deref(), Some(pushed.as_str()));
        assert_eq!(facts.before_sha, pushed);
        assert_eq!(facts.origin_url.as_deref(), upstream.path().to_str());
    }

    #[test]
    fn changed_files_counts_commits_edits_and_untracked_files() {
        let repo = Repo::new();
        let base = repo.commit("keep.txt", "Base");
        repo.write("gone.txt", "x");
        repo.git(&["add", "gone.txt"]);
        repo.git(&["commit", "-q", "-m", "Add gone"]);
        let base2 = repo.git(&["rev-parse", "HEAD"]);
        repo.git(&["mv", "gone.txt", "moved.txt"]);
        repo.git(&["commit", "-q", "-m", "Rename"]);
        repo.write("keep.txt", "edited");
        repo.write("dir/new file.txt", "untracked");
        repo.write(".gitignore", "ignored.log\n");
        repo.write("ignored.log", "no");
        let facts = GitFacts::read(repo.path()).expect("read");
        let changed = facts.changed_files(&base2).expect("diff");
        assert_eq!(
            changed,
            [
                ".gitignore",
                "dir/new file.txt",
                "gone.txt",
                "keep.txt",
                "moved.txt"
            ]
        );
        let since_base = facts.changed_files(&base).expect("diff");
        assert!(since_base.contains(&"moved.txt".to_owned()));
        assert!(!since_base.contains(&"gone.txt".to_owned()));
        assert!(matches!(
            facts.changed_files(&"0".repeat(40)),
            Err(GitError::BlankBase)
        ));
    }

    #[test]
    fn errors_outside_a_repository_and_without_commits() {
        let plain = tempfile::tempdir().expect("tempdir");
        // A temp dir could sit inside some repository; only check when not.
        match GitFacts::read(plain.path()) {
            Err(GitError::NotARepository(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
            Ok(f) => assert!(!f.toplevel.starts_with(plain.path())),
        }
        let empty = Repo::new();
        assert!(matches!(
            GitFacts::read(empty.path()),
            Err(GitError::NoCommit(_))
        ));
    }

    #[test]
    fn parses_records() {
        let refs = parse_refs(
            concat!(
                "*\0refs/heads/main\0abc\0\0\0refs/remotes/origin/main\n",
                " \0refs/heads/dev\0def\0\0\0\n",
                " \0refs/tags/v1\0abc\0\0\0\n",
                " \0refs/tags/v2\0tag\0abc\0\0\n",
                " \0refs/tags/v3\0tag\0def\0\0\n",
                " \0refs/remotes/origin/HEAD\0abc\0\0refs/remotes/origin/trunk\0\n",
                " \0refs/remotes/origin/main\0up\0\0\0\n",
            ),
            "abc",
        );
        assert_eq!(refs.current.as_deref(), Some("main"));
        assert_eq!(refs.upstream_sha.as_deref(), Some("up"));
        assert_eq!(refs.branches_at_head, ["main"]);
        assert_eq!(refs.origin_head.as_deref(), Some("trunk"));
        assert_eq!(
            refs.tags_at_head,
            [("v1".to_owned(), false), ("v2".to_owned(), true)]
        );
        assert_eq!(refs.tags.len(), 3);
        assert_eq!(
            parse_log("abc\0\0n\0e\0d\0"),
            Some(HeadCommit {
                sha: "abc".into(),
                parents: vec![],
                author_name: "n".into(),
                author_email: "e".into(),
                committer_date: "d".into(),
                message: String::new(),
            })
        );
        assert_eq!(parse_log(""), None);
    }
}
