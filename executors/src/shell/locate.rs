//! Finding the shell binary.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::{ExecutorError, ShellKind};

/// The shell chosen for a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub path: PathBuf,
    /// Set when the script's own shell was missing and another one is used.
    pub warning: Option<String>,
}

/// Finds the shell for `kind` in the directories of `search_path` (a
/// `PATH`-style list).
///
/// The lookup uses the RUNNER's search path, not the step's `PATH`: the
/// runner starts the shell, as GitLab's shell executor does; the script's
/// variables only apply inside it. A bash script falls back to `sh` when
/// bash is absent, as GitLab's shell detection does (it execs the first of
/// bash and sh it finds); the caller is warned, because bash-only syntax
/// in the script will then fail.
pub(crate) fn locate_shell(kind: ShellKind, search_path: &OsStr) -> Result<Located, ExecutorError> {
    let names: &[&str] = match kind {
        ShellKind::Bash => &["bash", "sh"],
        ShellKind::Sh => &["sh"],
    };
    for (i, name) in names.iter().enumerate() {
        if let Some(path) = find_executable(name, search_path) {
            let warning = (i > 0).then(|| {
                format!(
                    "{} not found; running the script with {}",
                    names[0],
                    path.display()
                )
            });
            return Ok(Located { path, warning });
        }
    }
    Err(ExecutorError::NoShell {
        tried: names.iter().map(|n| n.to_string()).collect(),
    })
}

/// The first `dir/name` in `search_path` that is an executable file.
fn find_executable(name: &str, search_path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        // An empty entry means "the current directory" to a POSIX shell;
        // the runner's current directory is not a place to take a shell
        // from, so empty and relative entries are ignored.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    // `metadata` follows symlinks (/bin/sh is usually one).
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn dir_with(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            symlink("/bin/sh", dir.path().join(name)).unwrap();
        }
        dir
    }

    #[test]
    fn bash_is_preferred() {
        let dir = dir_with(&["bash", "sh"]);
        let found = locate_shell(ShellKind::Bash, dir.path().as_os_str()).unwrap();
        assert_eq!(
            found,
            Located {
                path: dir.path().join("bash"),
                warning: None
            }
        );
    }

    #[test]
    fn bash_falls_back_to_sh_with_a_warning() {
        let dir = dir_with(&["sh"]);
        let found = locate_shell(ShellKind::Bash, dir.path().as_os_str()).unwrap();
        assert_eq!(found.path, dir.path().join("sh"));
        assert!(
            found
                .warning
                .unwrap()
                .starts_with("bash not found; running the script with")
        );
    }

    #[test]
    fn sh_never_takes_bash() {
        let dir = dir_with(&["bash"]);
        let err = locate_shell(ShellKind::Sh, dir.path().as_os_str()).unwrap_err();
        assert_eq!(err.to_string(), "no shell found: tried sh");
    }

    #[test]
    fn no_shell_names_everything_tried() {
        let dir = dir_with(&[]);
        let err = locate_shell(ShellKind::Bash, dir.path().as_os_str()).unwrap_err();
        assert_eq!(err.to_string(), "no shell found: tried bash, sh");
    }

    #[test]
    fn search_order_and_non_executables() {
        let first = tempfile::tempdir().unwrap();
        // Not executable: skipped, even though it comes first.
        std::fs::write(first.path().join("bash"), "").unwrap();
        let second = dir_with(&["bash"]);
        let path = std::env::join_paths([
            "",
            "relative",
            first.path().to_str().unwrap(),
            second.path().to_str().unwrap(),
        ])
        .unwrap();
        let found = locate_shell(ShellKind::Bash, &path).unwrap();
        assert_eq!(found.path, second.path().join("bash"));
    }
}
