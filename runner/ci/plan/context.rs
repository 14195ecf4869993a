//! What planning needs to know besides the configuration, and the variable
//! views that `rules`, `only`/`except` and `workflow` evaluate against.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::ci::expr::VarLookup;
use crate::ci::model::variables::VariableDef;
use crate::ci::source::{Sources, Span};
use crate::ci::variables::{GitFacts, VarSource, Variable, Variables};

/// The pipeline being planned: who creates it, for which ref, with which
/// variables.
#[derive(Clone, Debug)]
pub struct PlanContext {
    /// The pipeline-phase predefined variables (`pipeline_variables`, source
    /// `Predefined`) followed by the user's pipeline variables (`--var`,
    /// source `Pipeline`), which outrank every YAML variable (rule 182).
    /// Job-only predefined variables must not be here (rule 119).
    pub variables: Variables,
    /// The project's root directory, for `changes` and `exists`.
    pub project_dir: PathBuf,
    /// What git said about the project, if it is a repository. Planning
    /// reads the variables derived from it (`CI_COMMIT_BRANCH`,
    /// `CI_DEFAULT_BRANCH`, ...) and makes its own read-only git queries
    /// for `changes` and `exists`; the facts travel with the context for
    /// the steps that run the plan.
    pub git: Option<GitFacts>,
    /// `CI_PIPELINE_SOURCE`: `push`, `merge_request_event`, `schedule`...
    pub pipeline_source: String,
    /// Compare `changes` with this ref instead of the automatic base (see
    /// the `changes` module documentation).
    pub changes_base: Option<String>,
    /// Whether `only/except: kubernetes: active` holds. GitLab checks that
    /// the project has a Kubernetes deployment platform; a local project has
    /// none, so this is `false` unless the caller says otherwise.
    pub kubernetes_active: bool,
    /// The configuration's files, to print `file:line:col` locations.
    pub sources: Option<Arc<Sources>>,
}

impl PlanContext {
    /// A context with the given variables and source, no git facts, the
    /// automatic `changes` base and no Kubernetes.
    pub fn new(
        variables: Variables,
        project_dir: impl Into<PathBuf>,
        pipeline_source: impl Into<String>,
    ) -> PlanContext {
        PlanContext {
            variables,
            project_dir: project_dir.into(),
            git: None,
            pipeline_source: pipeline_source.into(),
            changes_base: None,
            kubernetes_active: false,
            sources: None,
        }
    }

    /// `file:line:col` for a span, when the sources are known.
    pub(crate) fn location(&self, span: Span) -> Option<String> {
        if span.is_synthetic() {
            return None;
        }
        self.sources.as_ref().map(|s| s.location(span))
    }
}

/// The pipeline-wide variables, split once by precedence so that each job's
/// lookups need no copying.
pub(crate) struct BaseVars<'a> {
    /// Project, dotenv and pipeline (`--var`) variables: above YAML.
    high: HashMap<&'a str, &'a str>,
    /// Predefined variables: below YAML.
    low: HashMap<&'a str, &'a str>,
    /// `CI_PIPELINE_NAME`, once `workflow:name` is known.
    pub pipeline_name: Option<String>,
}

impl<'a> BaseVars<'a> {
    pub(crate) fn new(vars: &'a Variables) -> BaseVars<'a> {
        let mut high = HashMap::new();
        let mut low = HashMap::new();
        // Later entries win, as in `Variables::lookup`, within each level.
        for v in vars.iter() {
            if v.source > VarSource::RulesVariables {
                high.insert(v.key.as_str(), v.value.as_str());
            } else {
                low.insert(v.key.as_str(), v.value.as_str());
            }
        }
        BaseVars {
            high,
            low,
            pipeline_name: None,
        }
    }

    pub(crate) fn high(&self, name: &str) -> Option<&'a str> {
        self.high.get(name).copied()
    }

    pub(crate) fn low(&self, name: &str) -> Option<&str> {
        if name == "CI_PIPELINE_NAME" {
            if let Some(n) = &self.pipeline_name {
                return Some(n);
            }
        }
        self.low.get(name).copied()
    }
}

/// The variables a `rules:if` or `only/except:variables` sees for one job
/// (or for `workflow`, with no job layers): pipeline variables, then the
/// YAML variables merged key by key (rule 183), then the job's predefined
/// variables, then the pipeline's predefined ones (rule 182).
pub(crate) struct RuleScope<'s, 'a> {
    pub base: &'s BaseVars<'a>,
    /// YAML variables in merge order; a later entry of a key wins.
    pub yaml: Vec<(&'s str, &'s str)>,
    /// `CI_JOB_NAME`, `CI_NODE_INDEX` and the like.
    pub job: Option<&'s Variables>,
}

impl<'s, 'a> RuleScope<'s, 'a> {
    /// Appends YAML definitions (later ones win).
    pub(crate) fn push_defs(&mut self, defs: impl IntoIterator<Item = &'s VariableDef>) {
        self.yaml.extend(
            defs.into_iter()
                .map(|d| (d.name.as_str(), d.value.as_str())),
        );
    }
}

impl VarLookup for RuleScope<'_, '_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.base.high(name) {
            return Some(v);
        }
        if let Some((_, v)) = self.yaml.iter().rev().find(|(k, _)| *k == name) {
            return Some(v);
        }
        if let Some(v) = self.job.and_then(|j| j.lookup(name)) {
            return Some(v);
        }
        self.base.low(name)
    }
}

/// A [`Variables`] set as an expression's variable lookup.
pub(crate) struct VarsLookup<'a>(pub &'a Variables);

impl VarLookup for VarsLookup<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.0.lookup(name)
    }
}

/// Converts YAML definitions into variables of `source`.
pub(crate) fn defs_to_vars<'d>(
    defs: impl IntoIterator<Item = &'d VariableDef>,
    source: VarSource,
) -> impl Iterator<Item = Variable> {
    defs.into_iter()
        .map(move |d| Variable::new(d.name.clone(), d.value.clone(), source).with_raw(!d.expand))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_182_pipeline_variables_beat_yaml_which_beats_predefined() {
        let mut vars = Variables::new();
        vars.set("CI_COMMIT_BRANCH", "main", VarSource::Predefined);
        vars.set("A", "predefined", VarSource::Predefined);
        vars.set("B", "cli", VarSource::Pipeline);
        let base = BaseVars::new(&vars);
        let job = Variables::new();
        let scope = RuleScope {
            base: &base,
            yaml: vec![("A", "top"), ("B", "top"), ("A", "job")],
            job: Some(&job),
        };
        assert_eq!(scope.lookup("A"), Some("job"));
        assert_eq!(scope.lookup("B"), Some("cli"));
        assert_eq!(scope.lookup("CI_COMMIT_BRANCH"), Some("main"));
        assert_eq!(scope.lookup("NOPE"), None);
    }
}
