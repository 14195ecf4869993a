//! The job variables that steer `get_sources` (runner-api.md §9.1), read
//! the way gitlab-runner reads them: an empty value is the default, an
//! invalid one is the default plus a warning worded like gitlab-runner's.

use std::path::{Component, Path, PathBuf};

use crate::job::payload::JobPayload;
use crate::job::vars::JobVars;

use super::SourcesError;

/// `GIT_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitStrategy {
    /// A fresh repository: the project directory is removed first.
    Clone,
    /// Reuse the repository left by an earlier job, fetch into it.
    Fetch,
    /// Leave the project directory as it is.
    None,
    /// A fresh, empty project directory (named `<dir>-empty`).
    Empty,
}

impl GitStrategy {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "clone" => Some(GitStrategy::Clone),
            "fetch" => Some(GitStrategy::Fetch),
            "none" => Some(GitStrategy::None),
            "empty" => Some(GitStrategy::Empty),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            GitStrategy::Clone => "clone",
            GitStrategy::Fetch => "fetch",
            GitStrategy::None => "none",
            GitStrategy::Empty => "empty",
        }
    }

    /// Whether the strategy sets up a git repository at all.
    pub(crate) fn uses_git(self) -> bool {
        matches!(self, GitStrategy::Clone | GitStrategy::Fetch)
    }
}

/// `GIT_SUBMODULE_STRATEGY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubmoduleStrategy {
    None,
    Normal,
    Recursive,
}

/// Everything §9.1 lets a job choose about its sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitSettings {
    pub strategy: GitStrategy,
    pub checkout: bool,
    /// `git clean` arguments; empty means no clean.
    pub clean_flags: Vec<String>,
    /// Arguments appended to `git fetch`.
    pub fetch_flags: Vec<String>,
    pub submodule_strategy: SubmoduleStrategy,
    /// Pathspecs limiting the submodules, passed after `--`.
    pub submodule_paths: Vec<String>,
    /// `--depth` for `git submodule update`; 0 or less means full.
    pub submodule_depth: i64,
    pub submodule_update_flags: Vec<String>,
    /// `GIT_LFS_SKIP_SMUDGE` set by the job: no `git lfs pull`.
    pub lfs_skip_smudge: bool,
    /// Warnings to print at the start of the stage.
    pub warnings: Vec<String>,
    /// Why the stage cannot run at all, when gitlab-runner refuses to
    /// write it: an unknown submodule strategy, a lone `:(exclude)`
    /// pathspec. Only set when the strategy uses git.
    pub invalid: Option<String>,
}

impl GitSettings {
    /// Reads the settings; see `invalid` for the values that stop the stage.
    pub fn read(vars: &JobVars, payload: &JobPayload) -> GitSettings {
        let mut warnings = Vec::new();
        let default_strategy = if payload.allow_git_fetch {
            GitStrategy::Fetch
        } else {
            GitStrategy::Clone
        };
        let strategy = match vars.setting("GIT_STRATEGY") {
            None => default_strategy,
            Some(raw) => GitStrategy::parse(&raw).unwrap_or_else(|| {
                warnings.push(format!(
                    "GIT_STRATEGY: expected either 'clone', 'fetch', 'none' or 'empty' got {raw:?}, \
                     using default value '{}'",
                    default_strategy.name()
                ));
                default_strategy
            }),
        };
        let checkout = read_bool(vars, "GIT_CHECKOUT", true, &mut warnings);
        let lfs_skip_smudge = read_bool(vars, "GIT_LFS_SKIP_SMUDGE", false, &mut warnings);
        let default_depth = i64::from(payload.git_info.depth);
        let submodule_depth = match vars.setting("GIT_SUBMODULE_DEPTH") {
            None => default_depth,
            Some(raw) => raw.parse::<i64>().unwrap_or_else(|_| {
                warnings.push(format!(
                    "GIT_SUBMODULE_DEPTH: expected int got {raw:?}, using default value: {default_depth}"
                ));
                default_depth
            }),
        };
        let mut submodule_error = None;
        let submodule_strategy = match vars.setting("GIT_SUBMODULE_STRATEGY").as_deref() {
            None | Some("none") => SubmoduleStrategy::None,
            Some("normal") => SubmoduleStrategy::Normal,
            Some("recursive") => SubmoduleStrategy::Recursive,
            Some(raw) => {
                warnings.push(format!(
                    "GIT_SUBMODULE_STRATEGY: expected either 'normal', 'recursive' or 'none' got {raw:?}"
                ));
                submodule_error = Some("unknown GIT_SUBMODULE_STRATEGY".to_owned());
                SubmoduleStrategy::None
            }
        };
        let submodule_paths = fields(vars.setting("GIT_SUBMODULE_PATHS"));
        if submodule_paths.iter().any(|p| p == ":(exclude)") {
            let quoted: Vec<String> = submodule_paths.iter().map(|p| format!("{p:?}")).collect();
            submodule_error.get_or_insert(format!(
                "GIT_SUBMODULE_PATHS: invalid submodule pathspec [{}]",
                quoted.join(" ")
            ));
        }
        // Submodule settings only matter where the strategy uses git: with
        // `none` and `empty` gitlab-runner never looks at them.
        let invalid = submodule_error.filter(|_| strategy.uses_git());
        GitSettings {
            strategy,
            checkout: checkout && strategy.uses_git(),
            clean_flags: flags(vars.setting("GIT_CLEAN_FLAGS"), &["-ffdx"]),
            fetch_flags: flags(
                vars.setting("GIT_FETCH_EXTRA_FLAGS"),
                &["--prune", "--quiet"],
            ),
            submodule_strategy: if strategy.uses_git() {
                submodule_strategy
            } else {
                SubmoduleStrategy::None
            },
            submodule_paths,
            submodule_depth,
            submodule_update_flags: fields(vars.setting("GIT_SUBMODULE_UPDATE_FLAGS")),
            lfs_skip_smudge,
            warnings,
            invalid,
        }
    }
}

/// A boolean as Go's `strconv.ParseBool` reads it.
fn read_bool(vars: &JobVars, key: &str, default: bool, warnings: &mut Vec<String>) -> bool {
    let Some(raw) = vars.setting(key) else {
        return default;
    };
    match raw.as_str() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
        "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
        _ => {
            warnings.push(format!(
                "{key}: expected bool got {raw:?}, using default value: {default}"
            ));
            default
        }
    }
}

/// A flags variable: unset is `default`, `none` is no flags.
fn flags(value: Option<String>, default: &[&str]) -> Vec<String> {
    match value.as_deref() {
        None => default.iter().map(|s| (*s).to_owned()).collect(),
        Some("none") => Vec::new(),
        Some(raw) => fields(Some(raw.to_owned())),
    }
}

fn fields(value: Option<String>) -> Vec<String> {
    value
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `CI_PROJECT_DIR`: `default_dir` unless the job sets `GIT_CLONE_PATH`.
///
/// A `GIT_CLONE_PATH` must lie inside `builds_dir` and needs the runner's
/// `custom_build_dir` switch; both refusals are worded like
/// gitlab-runner's. With `GIT_STRATEGY: empty` the default directory gets
/// the `-empty` suffix, so an empty checkout never reuses (or destroys) the
/// directory a `fetch` job keeps; a custom path is taken as given.
pub fn resolve_project_dir(
    vars: &JobVars,
    builds_dir: &Path,
    default_dir: &Path,
    custom_build_dir_enabled: bool,
) -> Result<PathBuf, SourcesError> {
    let Some(custom) = vars.setting("GIT_CLONE_PATH") else {
        let mut dir = clean_path(default_dir).into_os_string();
        if vars.setting("GIT_STRATEGY").as_deref() == Some("empty") {
            dir.push("-empty");
        }
        return Ok(PathBuf::from(dir));
    };
    if !custom_build_dir_enabled {
        return Err(SourcesError::InvalidConfig(
            "setting GIT_CLONE_PATH is not allowed, enable `custom_build_dir` feature".to_owned(),
        ));
    }
    let root = clean_path(builds_dir);
    let dir = clean_path(Path::new(&custom));
    if dir.is_relative() || !dir.starts_with(&root) {
        return Err(SourcesError::InvalidConfig(format!(
            "the GIT_CLONE_PATH={custom:?} has to be within {:?}",
            builds_dir.display().to_string()
        )));
    }
    Ok(dir)
}

/// Go's `path.Clean` on components: drops `.`, resolves `..` lexically
/// (never above the root), so `/builds/../etc` cannot pass for a path
/// inside `/builds`.
fn clean_path(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let at_root = out.as_os_str().is_empty() || out == Path::new("/");
                if at_root && path.is_absolute() {
                    continue;
                }
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::payload::JobVariable;

    fn vars(list: &[(&str, &str)]) -> JobVars {
        let list: Vec<JobVariable> = list
            .iter()
            .map(|(k, v)| JobVariable::public(*k, *v))
            .collect();
        JobVars::resolve(&[], &list, &[], Path::new("/b/p.tmp"))
    }

    fn read(list: &[(&str, &str)], allow_fetch: bool) -> GitSettings {
        let payload = JobPayload {
            allow_git_fetch: allow_fetch,
            git_info: crate::job::payload::GitInfo {
                depth: 20,
                ..Default::default()
            },
            ..JobPayload::default()
        };
        GitSettings::read(&vars(list), &payload)
    }

    #[test]
    fn defaults_follow_the_project_fetch_setting() {
        let s = read(&[], true);
        assert_eq!(s.strategy, GitStrategy::Fetch);
        assert!(s.checkout);
        assert_eq!(s.clean_flags, ["-ffdx"]);
        assert_eq!(s.fetch_flags, ["--prune", "--quiet"]);
        assert_eq!(s.submodule_strategy, SubmoduleStrategy::None);
        assert_eq!(s.submodule_depth, 20);
        assert!(s.warnings.is_empty());
        assert_eq!(read(&[], false).strategy, GitStrategy::Clone);
        // An empty value is the default too.
        let s = read(&[("GIT_STRATEGY", ""), ("GIT_CHECKOUT", "")], false);
        assert_eq!(s.strategy, GitStrategy::Clone);
        assert!(s.checkout && s.warnings.is_empty());
    }

    #[test]
    fn invalid_values_warn_and_fall_back_to_the_default() {
        let s = read(
            &[
                ("GIT_STRATEGY", "pull"),
                ("GIT_CHECKOUT", "yes"),
                ("GIT_SUBMODULE_DEPTH", "deep"),
            ],
            false,
        );
        assert_eq!(s.strategy, GitStrategy::Clone);
        assert!(s.checkout);
        assert_eq!(s.submodule_depth, 20);
        assert_eq!(
            s.warnings,
            [
                "GIT_STRATEGY: expected either 'clone', 'fetch', 'none' or 'empty' got \"pull\", \
                 using default value 'clone'",
                "GIT_CHECKOUT: expected bool got \"yes\", using default value: true",
                "GIT_SUBMODULE_DEPTH: expected int got \"deep\", using default value: 20",
            ]
        );
    }

    #[test]
    fn none_turns_flags_off_and_values_split_on_whitespace() {
        let s = read(
            &[
                ("GIT_CLEAN_FLAGS", "none"),
                ("GIT_FETCH_EXTRA_FLAGS", " --tags  --prune "),
                ("GIT_SUBMODULE_UPDATE_FLAGS", "--remote --jobs 4"),
                ("GIT_SUBMODULE_PATHS", "a :(exclude)b"),
                ("GIT_CHECKOUT", "False"),
            ],
            true,
        );
        assert!(s.clean_flags.is_empty());
        assert_eq!(s.fetch_flags, ["--tags", "--prune"]);
        assert_eq!(s.submodule_update_flags, ["--remote", "--jobs", "4"]);
        assert_eq!(s.submodule_paths, ["a", ":(exclude)b"]);
        assert!(!s.checkout);
    }

    #[test]
    fn an_unknown_submodule_strategy_fails_only_when_git_is_used() {
        let s = read(&[("GIT_SUBMODULE_STRATEGY", "all")], true);
        assert_eq!(s.invalid.as_deref(), Some("unknown GIT_SUBMODULE_STRATEGY"));
        assert_eq!(
            s.warnings,
            ["GIT_SUBMODULE_STRATEGY: expected either 'normal', 'recursive' or 'none' got \"all\""]
        );
        let s = read(
            &[("GIT_SUBMODULE_STRATEGY", "all"), ("GIT_STRATEGY", "none")],
            true,
        );
        assert_eq!(s.invalid, None);
        assert_eq!(s.submodule_strategy, SubmoduleStrategy::None);
        assert!(!s.checkout, "none never checks out");
        let s = read(&[("GIT_SUBMODULE_PATHS", "a :(exclude)")], true);
        assert_eq!(
            s.invalid.as_deref(),
            Some("GIT_SUBMODULE_PATHS: invalid submodule pathspec [\"a\" \":(exclude)\"]")
        );
    }

    #[test]
    fn clone_path_inside_the_builds_dir_is_the_project_dir() {
        let v = vars(&[("GIT_CLONE_PATH", "/builds/custom/./app")]);
        let dir = resolve_project_dir(&v, Path::new("/builds"), Path::new("/builds/g/p"), true);
        assert_eq!(dir.unwrap(), Path::new("/builds/custom/app"));
    }

    #[test]
    fn clone_path_outside_the_builds_dir_is_refused_like_gitlab_runner() {
        for outside in ["/tmp/app", "/builds/../etc", "/buildsX/app", "rel/app"] {
            let v = vars(&[("GIT_CLONE_PATH", outside)]);
            let err = resolve_project_dir(&v, Path::new("/builds"), Path::new("/builds/p"), true)
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("the GIT_CLONE_PATH={outside:?} has to be within \"/builds\""),
            );
        }
        let v = vars(&[("GIT_CLONE_PATH", "/builds/app")]);
        let err = resolve_project_dir(&v, Path::new("/builds"), Path::new("/builds/p"), false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting GIT_CLONE_PATH is not allowed, enable `custom_build_dir` feature"
        );
    }

    #[test]
    fn empty_strategy_gets_its_own_directory() {
        let dir = resolve_project_dir(
            &vars(&[("GIT_STRATEGY", "empty")]),
            Path::new("/builds"),
            Path::new("/builds/g/p"),
            false,
        );
        assert_eq!(dir.unwrap(), Path::new("/builds/g/p-empty"));
        let dir = resolve_project_dir(
            &vars(&[]),
            Path::new("/builds"),
            Path::new("/builds/g/p"),
            false,
        );
        assert_eq!(dir.unwrap(), Path::new("/builds/g/p"));
    }
}
