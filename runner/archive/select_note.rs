//! What path selection tells the user: one line for the job log per
//! event, worded as gitlab-runner's file archiver words it, so that a job's
//! log reads the same as on GitLab.

use std::fmt;
use std::path::PathBuf;

/// A line for the job log about the selection. `Display` gives
/// gitlab-runner's wording; [`SelectNote::is_warning`] its log level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectNote {
    /// An empty string in `paths`.
    EmptyPath,
    /// A `paths` pattern that resolves outside the project directory; it is
    /// ignored.
    OutsideProject { pattern: String },
    /// An `exclude` pattern that resolves outside the project directory; it
    /// is ignored.
    ExcludeOutsideProject { pattern: String },
    /// A pattern with broken glob syntax (an unclosed `[` or `{`).
    BadPattern { pattern: String },
    /// A `paths` pattern that selected nothing.
    NoMatch {
        pattern: String,
        project_dir: PathBuf,
    },
    /// How many paths a `paths` pattern selected (counting each path every
    /// time a pattern reaches it, as gitlab-runner does).
    Found { pattern: String, count: usize },
    /// How many paths an `exclude` pattern removed.
    Excluded { pattern: String, count: usize },
    /// A path that could not be examined.
    Unreadable { path: String, reason: String },
    /// A path whose name is not UTF-8; zip entry names must be.
    NotUtf8 { path: String },
    /// `untracked: true` found files.
    UntrackedFound { count: usize },
    /// `untracked: true` found nothing.
    UntrackedNone,
    /// `git ls-files` failed (not a git repository, git missing, ...).
    UntrackedFailed { reason: String },
    /// Some selected path is inside `.git`.
    GitDirectory,
}

impl SelectNote {
    /// Whether gitlab-runner logs this as a warning (else as information).
    pub fn is_warning(&self) -> bool {
        !matches!(
            self,
            SelectNote::Found { .. }
                | SelectNote::Excluded { .. }
                | SelectNote::UntrackedFound { .. }
        )
    }
}

impl fmt::Display for SelectNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectNote::EmptyPath => write!(f, "No matching files. Path is empty."),
            SelectNote::OutsideProject { pattern } => write!(
                f,
                "processPath: artifact path is not a subpath of project directory: {pattern}"
            ),
            SelectNote::ExcludeOutsideProject { pattern } => write!(
                f,
                "isExcluded: artifact path is not a subpath of project directory: {pattern}"
            ),
            SelectNote::BadPattern { pattern } => write!(f, "{pattern}: syntax error in pattern"),
            SelectNote::NoMatch {
                pattern,
                project_dir,
            } => write!(
                f,
                "{pattern}: no matching files. Ensure that the artifact path is relative to the working directory ({})",
                project_dir.display()
            ),
            SelectNote::Found { pattern, count } => write!(
                f,
                "{pattern}: found {count} matching artifact files and directories"
            ),
            SelectNote::Excluded { pattern, count } => {
                write!(f, "{pattern}: excluded {count} files")
            }
            SelectNote::Unreadable { path, reason } => write!(f, "{path}: {reason}"),
            SelectNote::NotUtf8 { path } => {
                write!(f, "{path}: file name is not valid UTF-8, skipped")
            }
            SelectNote::UntrackedFound { count } => write!(f, "untracked: found {count} files"),
            SelectNote::UntrackedNone => write!(f, "untracked: no files"),
            SelectNote::UntrackedFailed { reason } => write!(f, "untracked: {reason}"),
            SelectNote::GitDirectory => write!(
                f,
                "Part of .git directory is on the list of files to archive; this may introduce unexpected problems"
            ),
        }
    }
}
