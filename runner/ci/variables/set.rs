//! An ordered set of CI/CD variables, kept the way GitLab keeps a job's
//! variable collection: a list in which a later entry with the same key
//! overrides an earlier one.
//!
//! The order is meaningful twice. Lookups return the last entry of a key,
//! which is how both GitLab (`Collection#[]`) and the runner (`Variables.Get`
//! scans from the end) resolve duplicates. And GitLab's expansion walks the
//! list in order (see `resolve.rs`), so keeping GitLab's order keeps its
//! results, quirks included.

use std::collections::HashSet;

/// Where a variable comes from. The declaration order is the precedence of
/// rules 182 and 183, lowest first: a later variant overrides an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VarSource {
    /// Set by GitLab or by the runner (`CI_*`, `GITLAB_*`). Lowest (rule 202).
    Predefined,
    /// The top-level `variables:` of `.gitlab-ci.yml` (rule 182, item 9).
    TopLevel,
    /// `workflow:rules:variables` of the matching rule; overrides top-level
    /// variables (rule 183, rule 74).
    WorkflowRules,
    /// A job's own `variables:` (rule 182, item 8).
    Job,
    /// `rules:variables` of the job rule that matched; overrides job
    /// variables (rule 183).
    RulesVariables,
    /// Variables from `artifacts:reports:dotenv` of jobs this job depends on
    /// (rule 182, item 7).
    Dotenv,
    /// Project, group or instance variables from settings (items 4 to 6).
    Project,
    /// Pipeline variables: trigger, schedule, manual run, API, or `--var` on
    /// the command line (item 3).
    Pipeline,
}

impl VarSource {
    /// True for the four layers that come from the YAML file. GitLab merges
    /// them key by key into one list (`yaml_variables`) instead of stacking
    /// them, which is what makes rule 181 hold.
    pub fn is_yaml(self) -> bool {
        matches!(
            self,
            VarSource::TopLevel
                | VarSource::WorkflowRules
                | VarSource::Job
                | VarSource::RulesVariables
        )
    }
}

/// One CI/CD variable with the attributes GitLab sends to a runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    pub key: String,
    pub value: String,
    /// `expand: false` in YAML: the value is never `$`-expanded (rule 178).
    pub raw: bool,
    /// The value is replaced by `[MASKED]` in job logs.
    pub masked: bool,
    /// A file variable: the runner writes the value to a file and the
    /// variable holds the file's path. YAML variables never are (rule 185).
    pub file: bool,
    /// False for secrets, which are not passed to service containers.
    pub public: bool,
    pub source: VarSource,
}

impl Variable {
    /// A public, plain (expandable, unmasked, non-file) variable.
    pub fn new(key: impl Into<String>, value: impl Into<String>, source: VarSource) -> Variable {
        Variable {
            key: key.into(),
            value: value.into(),
            raw: false,
            masked: false,
            file: false,
            public: true,
            source,
        }
    }

    /// The same variable with `raw` (`expand: false`) set as given.
    pub fn with_raw(mut self, raw: bool) -> Variable {
        self.raw = raw;
        self
    }

    /// The same variable with `masked` set as given.
    pub fn with_masked(mut self, masked: bool) -> Variable {
        self.masked = masked;
        self
    }

    /// The same variable with `file` set as given.
    pub fn with_file(mut self, file: bool) -> Variable {
        self.file = file;
        self
    }

    /// The same variable with `public` set as given.
    pub fn with_public(mut self, public: bool) -> Variable {
        self.public = public;
        self
    }
}

/// An ordered list of variables; the last entry of a key wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variables {
    entries: Vec<Variable>,
}

impl Variables {
    /// An empty set.
    pub fn new() -> Variables {
        Variables::default()
    }

    /// Appends a variable. It overrides any earlier entry with its key.
    pub fn push(&mut self, var: Variable) {
        self.entries.push(var);
    }

    /// Appends a public, plain variable.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>, source: VarSource) {
        self.push(Variable::new(key, value, source));
    }

    /// The value of the winning (last) entry of `name`.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(|v| v.value.as_str())
    }

    /// The winning (last) entry of `name`.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.entries.iter().rev().find(|v| v.key == name)
    }

    /// Every entry of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Variable> + 'a {
        self.entries.iter().filter(move |v| v.key == name)
    }

    /// True if any entry has the key `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.entries.iter().any(|v| v.key == name)
    }

    /// All entries in order, overridden ones included.
    pub fn iter(&self) -> std::slice::Iter<'_, Variable> {
        self.entries.iter()
    }

    /// The number of entries, overridden ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The winning entry of every key, in the order keys first appear.
    /// This is what a script sees in its environment.
    pub fn effective(&self) -> Vec<&Variable> {
        let mut seen = HashSet::new();
        let mut out: Vec<&Variable> = self
            .entries
            .iter()
            .filter(|v| seen.insert(v.key.as_str()))
            .collect();
        for slot in &mut out {
            if let Some(winner) = self.get(&slot.key) {
                *slot = winner;
            }
        }
        out
    }

    /// GitLab's merge of two YAML variable lists (`merge_variables`): `newer`
    /// replaces the entries of `self` that share a key. The result lists
    /// `newer` first, then what is left of `self`, one entry per key (the
    /// first seen), exactly as GitLab's `(new + current).uniq { key }`.
    pub fn merged_with(&self, newer: &Variables) -> Variables {
        let mut seen = HashSet::new();
        newer
            .entries
            .iter()
            .chain(self.entries.iter())
            .filter(|v| seen.insert(v.key.as_str()))
            .cloned()
            .collect()
    }

    /// Only the entries whose key `keep` accepts, in order.
    pub fn filtered(&self, mut keep: impl FnMut(&Variable) -> bool) -> Variables {
        self.entries.iter().filter(|v| keep(v)).cloned().collect()
    }

    /// The entries rearranged into GitLab's precedence order (rules 182,
    /// 183), ready for lookups and for `sort_and_expand_all`.
    ///
    /// Predefined variables come first, in the order given. The four YAML
    /// layers are then merged key by key, the way GitLab builds a job's
    /// `yaml_variables`: top-level, then `workflow:rules:variables`, then
    /// job, then `rules:variables`, each replacing the earlier ones' entries
    /// of the same key. Because the job's entry replaces the top-level one
    /// rather than stacking on it, `MY_VAR: $MY_VAR` in a job cannot see the
    /// default of the same name (rule 181). Dotenv, project and pipeline
    /// variables are then stacked in that order, as GitLab appends them.
    ///
    /// `inherit:variables` must already have been applied: leave out the
    /// top-level and workflow entries the job does not inherit.
    pub fn in_precedence_order(&self) -> Variables {
        let layer = |source: VarSource| self.filtered(|v| v.source == source);
        let yaml = layer(VarSource::TopLevel)
            .merged_with(&layer(VarSource::WorkflowRules))
            .merged_with(&layer(VarSource::Job))
            .merged_with(&layer(VarSource::RulesVariables));
        let mut out = layer(VarSource::Predefined);
        out.entries.extend(yaml.entries);
        for source in [VarSource::Dotenv, VarSource::Project, VarSource::Pipeline] {
            out.entries.extend(layer(source).entries);
        }
        out
    }
}

impl FromIterator<Variable> for Variables {
    fn from_iter<I: IntoIterator<Item = Variable>>(iter: I) -> Variables {
        Variables {
            entries: iter.into_iter().collect(),
        }
    }
}

impl Extend<Variable> for Variables {
    fn extend<I: IntoIterator<Item = Variable>>(&mut self, iter: I) {
        self.entries.extend(iter);
    }
}

impl IntoIterator for Variables {
    type Item = Variable;
    type IntoIter = std::vec::IntoIter<Variable>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Variables {
    type Item = &'a Variable;
    type IntoIter = std::slice::Iter<'a, Variable>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(source: VarSource, pairs: &[(&str, &str)]) -> Variables {
        pairs
            .iter()
            .map(|(k, v)| Variable::new(*k, *v, source))
            .collect()
    }

    fn keys(v: &Variables) -> Vec<&str> {
        v.iter().map(|v| v.key.as_str()).collect()
    }

    #[test]
    fn lookup_returns_the_last_entry_of_a_key() {
        let mut v = Variables::new();
        v.set("A", "1", VarSource::Predefined);
        v.set("B", "2", VarSource::Job);
        v.set("A", "3", VarSource::Pipeline);
        assert_eq!(v.lookup("A"), Some("3"));
        assert_eq!(v.lookup("B"), Some("2"));
        assert_eq!(v.lookup("C"), None);
        assert_eq!(v.all("A").count(), 2);
    }

    #[test]
    fn effective_keeps_first_position_and_last_value() {
        let mut v = Variables::new();
        v.set("A", "1", VarSource::Predefined);
        v.set("B", "2", VarSource::Job);
        v.set("A", "3", VarSource::Pipeline);
        let eff: Vec<(&str, &str)> = v
            .effective()
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(eff, [("A", "3"), ("B", "2")]);
    }

    #[test]
    fn merged_with_puts_newer_first_and_drops_replaced_keys() {
        let current = vars(
            VarSource::TopLevel,
            &[("key1", "value1"), ("key2", "value2")],
        );
        let newer = vars(VarSource::Job, &[("key2", "value22"), ("key3", "value3")]);
        let merged = current.merged_with(&newer);
        let pairs: Vec<(&str, &str)> = merged
            .iter()
            .map(|v| (v.key.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [("key2", "value22"), ("key3", "value3"), ("key1", "value1")]
        );
    }

    #[test]
    fn rule_173_job_variable_overrides_top_level_default() {
        let mut v = vars(VarSource::TopLevel, &[("DEPLOY", "staging"), ("KEEP", "k")]);
        v.extend(vars(VarSource::Job, &[("DEPLOY", "prod")]));
        let ordered = v.in_precedence_order();
        assert_eq!(ordered.lookup("DEPLOY"), Some("prod"));
        assert_eq!(ordered.lookup("KEEP"), Some("k"));
        // Merged, not stacked: the default is gone from the list.
        assert_eq!(ordered.all("DEPLOY").count(), 1);
    }

    #[test]
    fn rule_182_precedence_regardless_of_insertion_order() {
        let mut v = Variables::new();
        v.set("X", "pipeline", VarSource::Pipeline);
        v.set("X", "project", VarSource::Project);
        v.set("X", "dotenv", VarSource::Dotenv);
        v.set("X", "job", VarSource::Job);
        v.set("X", "top", VarSource::TopLevel);
        v.set("X", "predefined", VarSource::Predefined);
        let ordered = v.in_precedence_order();
        assert_eq!(ordered.lookup("X"), Some("pipeline"));
        let values: Vec<&str> = ordered.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(
            values,
            ["predefined", "job", "dotenv", "project", "pipeline"]
        );
    }

    #[test]
    fn rule_183_rules_variables_override_job_and_workflow_overrides_top_level() {
        let mut v = vars(VarSource::TopLevel, &[("A", "top"), ("B", "top")]);
        v.extend(vars(VarSource::WorkflowRules, &[("A", "workflow")]));
        v.extend(vars(VarSource::Job, &[("B", "job"), ("C", "job")]));
        v.extend(vars(VarSource::RulesVariables, &[("C", "rules")]));
        let ordered = v.in_precedence_order();
        assert_eq!(ordered.lookup("A"), Some("workflow"));
        assert_eq!(ordered.lookup("B"), Some("job"));
        assert_eq!(ordered.lookup("C"), Some("rules"));
        // GitLab's merge order: each newer layer first.
        assert_eq!(keys(&ordered), ["C", "B", "A"]);
    }

    #[test]
    fn rule_202_predefined_variables_are_lowest() {
        let mut v = vars(VarSource::TopLevel, &[("CI_COMMIT_REF_NAME", "mine")]);
        v.extend(vars(
            VarSource::Predefined,
            &[("CI_COMMIT_REF_NAME", "main")],
        ));
        assert_eq!(
            v.in_precedence_order().lookup("CI_COMMIT_REF_NAME"),
            Some("mine")
        );
    }

    #[test]
    fn yaml_layers_are_the_only_merged_ones() {
        assert!(VarSource::Job.is_yaml());
        assert!(VarSource::WorkflowRules.is_yaml());
        assert!(!VarSource::Dotenv.is_yaml());
        assert!(!VarSource::Predefined.is_yaml());
    }
}
