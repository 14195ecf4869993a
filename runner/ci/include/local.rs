//! `include:local`: files of the project itself (rules 46, 47).

use std::path::{Component, Path};

use regex::Regex;

use super::entry::has_yaml_extension;
use crate::ci::diag::Diagnostic;
use crate::ci::source::Span;

/// Reads `path` (relative to the repository root, leading `/` already
/// removed) from the project directory.
pub(crate) fn read_local(project_dir: &Path, path: &str, span: Span) -> Result<String, Diagnostic> {
    if !has_yaml_extension(path) {
        return Err(Diagnostic::config(
            span,
            format!("Included file `{path}` does not have YAML extension!"),
        ));
    }
    let missing =
        || Diagnostic::include_missing(span, format!("Local file `{path}` does not exist!"));
    // A repository path cannot climb out of the repository.
    let relative = Path::new(path);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(missing());
    }
    let full = project_dir.join(relative);
    if !full.is_file() {
        return Err(missing());
    }
    let text = std::fs::read_to_string(&full).map_err(|e| {
        Diagnostic::config(span, format!("Local file `{path}` could not be read: {e}"))
    })?;
    if text.trim().is_empty() {
        return Err(Diagnostic::config(
            span,
            format!("Local file `{path}` is empty!"),
        ));
    }
    Ok(text)
}

/// The project's files as sorted `/`-separated relative paths. In a git
/// work tree these are the files git knows or would add (GitLab only sees
/// the repository's tree, never ignored build output); elsewhere every
/// file under `dir` except `.git`.
pub(crate) fn project_files(dir: &Path) -> Vec<String> {
    let mut files = git_files(dir).unwrap_or_else(|| walk_files(dir));
    files.sort();
    files.dedup();
    files
}

fn git_files(dir: &Path) -> Option<Vec<String>> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    // Only trust git when `dir` is the top of the work tree: inside a
    // bigger repository the paths would not be relative to `dir` alone.
    let top = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-prefix"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() || !top.status.success() || !top.stdout.trim_ascii().is_empty() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|p| !p.is_empty() && dir.join(p).is_file())
            .map(String::from)
            .collect(),
    )
}

fn walk_files(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || e.file_name() != ".git")
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .filter_map(|e| {
            let rel = e.path().strip_prefix(dir).ok()?;
            let parts: Option<Vec<&str>> =
                rel.components().map(|c| c.as_os_str().to_str()).collect();
            Some(parts?.join("/"))
        })
        .collect()
}

/// The paths a wildcard `local` pattern matches, the way GitLab searches
/// the repository: `**` matches anything including `/`, `*` anything but
/// `/`, and the whole path must match (rule 47).
pub(crate) fn match_wildcard(pattern: &str, files: &[String]) -> Vec<String> {
    let escaped = regex::escape(pattern)
        .replace(r"\*\*", ".*?")
        .replace(r"\*", "[^/]*?");
    let Ok(re) = Regex::new(&format!("^{escaped}$")) else {
        return Vec::new();
    };
    files.iter().filter(|f| re.is_match(f)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;

    fn files() -> Vec<String> {
        [
            "a.yml",
            "ci/a.yml",
            "ci/b.yaml",
            "ci/sub/c.yml",
            "ci/sub/deep/d.yml",
            "ci/x.txt",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn rule_47_single_star_matches_one_level() {
        assert_eq!(match_wildcard("ci/*.yml", &files()), ["ci/a.yml"]);
    }

    #[test]
    fn rule_47_double_star_matches_the_folder_and_all_subfolders() {
        assert_eq!(
            match_wildcard("ci/**.yml", &files()),
            ["ci/a.yml", "ci/sub/c.yml", "ci/sub/deep/d.yml"]
        );
    }

    #[test]
    fn rule_47_double_star_slash_star_matches_subfolders_only() {
        assert_eq!(
            match_wildcard("ci/**/*.yml", &files()),
            ["ci/sub/c.yml", "ci/sub/deep/d.yml"]
        );
    }

    #[test]
    fn rule_46_missing_local_file_uses_gitlab_wording() {
        let dir = tempfile::tempdir().unwrap();
        let span = Span::new(SourceId(1), 3, 5);
        let err = read_local(dir.path(), "nope.yml", span).unwrap_err();
        assert_eq!(err.message, "Local file `nope.yml` does not exist!");
        assert_eq!(err.span, span);
        let err = read_local(dir.path(), "README.md", span).unwrap_err();
        assert_eq!(
            err.message,
            "Included file `README.md` does not have YAML extension!"
        );
        let err = read_local(dir.path(), "../etc/x.yml", span).unwrap_err();
        assert_eq!(err.message, "Local file `../etc/x.yml` does not exist!");
        std::fs::write(dir.path().join("empty.yml"), "  \n").unwrap();
        let err = read_local(dir.path(), "empty.yml", span).unwrap_err();
        assert_eq!(err.message, "Local file `empty.yml` is empty!");
    }

    #[test]
    fn project_files_in_a_git_work_tree_leave_out_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap()
        };
        assert!(git(&["init", "-q"]).status.success());
        std::fs::write(dir.path().join(".gitignore"), "target/\n").unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("target/out.yml"), "x").unwrap();
        std::fs::write(dir.path().join("ci.yml"), "x").unwrap();
        assert_eq!(project_files(dir.path()), [".gitignore", "ci.yml"]);
    }

    #[test]
    fn project_files_skip_git_and_are_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git/objects")).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/c.yml"), "x").unwrap();
        std::fs::write(dir.path().join("a.yml"), "x").unwrap();
        assert_eq!(project_files(dir.path()), ["a.yml", "b/c.yml"]);
    }
}
