//! The job's variables as the runner finally sees them: the payload's list
//! plus what the runner sets itself, each value `$`-expanded once.
//!
//! The order is GitLab Runner's (runner-api.md §11.2): the runner's own
//! defaults first, then the job's variables, then the values the runner
//! insists on (paths, `RUNNER_TEMP_PROJECT_DIR`). A later duplicate wins on
//! lookup, so the payload cannot move the project directory and the runner's
//! defaults do not override the user.

use std::path::Path;

use crate::ci::variables::expand_runner;

use super::payload::JobVariable;
use super::script::ScriptVar;

/// One variable ready for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVar {
    pub key: String,
    /// For a file variable: its content (the variable itself holds the
    /// path of the file the script writes).
    pub value: String,
    pub file: bool,
    pub masked: bool,
    pub public: bool,
}

/// The job's variables, in order, expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobVars {
    vars: Vec<ResolvedVar>,
    /// Where file variables are written (`<project dir>.tmp`).
    tmp_dir: String,
}

impl JobVars {
    /// Builds the list from the runner's `defaults`, the payload's
    /// `variables` and the runner's `overrides`, and expands every value
    /// that is not `raw` against the whole list.
    pub fn resolve(
        defaults: &[(String, String)],
        variables: &[JobVariable],
        overrides: &[(String, String)],
        tmp_dir: &Path,
    ) -> JobVars {
        let plain = |(k, v): &(String, String)| JobVariable::public(k.clone(), v.clone());
        let all: Vec<JobVariable> = defaults
            .iter()
            .map(plain)
            .chain(variables.iter().cloned())
            .chain(overrides.iter().map(plain))
            .collect();
        let tmp_dir = tmp_dir.to_string_lossy().into_owned();
        // Expansion sees file variables as the path of their file, the
        // value the script will see.
        let seen: Vec<(String, String)> = all
            .iter()
            .map(|v| {
                let value = if v.file {
                    file_path(&tmp_dir, &v.key)
                } else {
                    v.value.clone()
                };
                (v.key.clone(), value)
            })
            .collect();
        let lookup = |name: &str| {
            seen.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let vars = all
            .iter()
            .map(|v| ResolvedVar {
                key: v.key.clone(),
                value: if v.raw {
                    v.value.clone()
                } else {
                    expand_runner(&v.value, lookup)
                },
                file: v.file,
                masked: v.masked,
                public: v.public,
            })
            .collect();
        JobVars { vars, tmp_dir }
    }

    /// The variables in order (a later duplicate wins).
    pub fn iter(&self) -> impl Iterator<Item = &ResolvedVar> {
        self.vars.iter()
    }

    /// The value the job sees: a file variable gives its file's path.
    pub fn get(&self, key: &str) -> Option<String> {
        self.vars.iter().rev().find(|v| v.key == key).map(|v| {
            if v.file {
                file_path(&self.tmp_dir, &v.key)
            } else {
                v.value.clone()
            }
        })
    }

    /// `get`, treating an empty value like an unset one, as gitlab-runner
    /// does for its settings variables (`GIT_STRATEGY: ""` is the default).
    pub fn setting(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Expands `$VAR` and `${VAR}` in `text` as the runner does.
    pub fn expand(&self, text: &str) -> String {
        let values: Vec<(&str, String)> = self
            .vars
            .iter()
            .map(|v| (v.key.as_str(), self.get(&v.key).unwrap_or_default()))
            .collect();
        expand_runner(text, |name| {
            values
                .iter()
                .rev()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.as_str())
        })
    }

    /// The variables as a stage script exports them.
    pub fn script_vars(&self) -> Vec<ScriptVar> {
        self.vars
            .iter()
            .map(|v| ScriptVar {
                key: v.key.clone(),
                value: v.value.clone(),
                file: v.file,
            })
            .collect()
    }
}

fn file_path(tmp_dir: &str, key: &str) -> String {
    format!("{}/{key}", tmp_dir.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn later_values_win_and_the_runner_has_the_last_word() {
        let vars = JobVars::resolve(
            &pairs(&[("CI_SERVER", "yes"), ("A", "default")]),
            &[
                JobVariable::public("A", "job"),
                JobVariable::public("CI_PROJECT_DIR", "/x"),
            ],
            &pairs(&[("CI_PROJECT_DIR", "/builds/p")]),
            Path::new("/builds/p.tmp"),
        );
        assert_eq!(vars.get("A").as_deref(), Some("job"));
        assert_eq!(vars.get("CI_PROJECT_DIR").as_deref(), Some("/builds/p"));
        assert_eq!(vars.get("CI_SERVER").as_deref(), Some("yes"));
    }

    #[test]
    fn values_expand_once_except_raw_and_files_expand_to_their_path() {
        let raw = JobVariable {
            raw: true,
            ..JobVariable::public("RAW", "$A")
        };
        let file = JobVariable {
            file: true,
            ..JobVariable::public("KEY", "secret")
        };
        let vars = JobVars::resolve(
            &[],
            &[
                JobVariable::public("A", "a"),
                JobVariable::public("B", "${A}-$KEY-$$A-$MISSING."),
                raw,
                file,
            ],
            &[],
            Path::new("/b/p.tmp"),
        );
        assert_eq!(vars.get("B").as_deref(), Some("a-/b/p.tmp/KEY-$A-."));
        assert_eq!(vars.get("RAW").as_deref(), Some("$A"));
        assert_eq!(vars.get("KEY").as_deref(), Some("/b/p.tmp/KEY"));
        assert_eq!(vars.expand("$B/x"), "a-/b/p.tmp/KEY-$A-./x");
    }

    #[test]
    fn scripts_get_file_contents_and_empty_settings_are_unset() {
        let file = JobVariable {
            file: true,
            ..JobVariable::public("KEY", "s3cret-value")
        };
        let vars = JobVars::resolve(
            &[],
            &[file, JobVariable::public("GIT_STRATEGY", "")],
            &[],
            Path::new("/t"),
        );
        let script = vars.script_vars();
        assert_eq!(script[0].key, "KEY");
        assert_eq!(script[0].value, "s3cret-value");
        assert!(script[0].file);
        assert_eq!(vars.setting("GIT_STRATEGY"), None);
    }
}
