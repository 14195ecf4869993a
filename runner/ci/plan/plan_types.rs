//! The planned pipeline, and its stable JSON form (`runner plan --json`).
//!
//! # JSON schema, version 1
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "created": true,              // false: GitLab would create no pipeline
//!   "reason": null,               // why not created, in GitLab's words
//!   "workflow": {
//!     "name": "Nightly",          // expanded workflow:name, or null
//!     "decided_by": DecidedBy     // the workflow rule that matched
//!   },
//!   "ref": "main",                // CI_COMMIT_REF_NAME
//!   "pipeline_source": "push",
//!   "stages": [{"name": "build", "jobs": ["compile", ...]}, ...],
//!   "jobs": [Job, ...],           // in stage order, then file order
//!   "skipped": [{"name": "deploy", "reason": "...", "decided_by": DecidedBy}],
//!   "warnings": ["..."]
//! }
//!
//! Job = {
//!   "name": "test 1/2", "stage": "test",
//!   "when": "on_success" | "on_failure" | "always" | "manual" | "delayed",
//!   "start_in": "30 minutes" | null,
//!   "allow_failure": false,
//!   "allow_failure_exit_codes": [137] | null,
//!   "needs": null | [{"job": "build", "artifacts": true, "optional": false}],
//!   "dependencies": null | ["build"],
//!   "image": "ruby:3.3" | null,       // as the runner expands it
//!   "tags": ["docker"],               // as GitLab expands them
//!   "variables": {"NAME": "value"},   // YAML and --var variables, expanded
//!   "decided_by": DecidedBy,
//!   "parallel": {"index": 1, "total": 2} | null,
//!   "matrix": {"PROVIDER": "aws"} | null,
//!   "trigger": false,                 // a trigger job (downstream pipeline)
//!   "interruptible": true | null,
//!   "retry": {"max": 2, "when": ["script_failure"], "exit_codes": null} | null,
//!   "timeout": 3600 | null            // seconds
//! }
//!
//! DecidedBy = {
//!   "kind": "rule" | "only_except" | "default",
//!   "index": 0 | null,               // which rule (0-based); null otherwise
//!   "text": "if: $CI_COMMIT_BRANCH == \"main\"",
//!   "location": ".gitlab-ci.yml:12:7" | null
//! }
//! ```
//!
//! `variables` lists the variables the configuration and the user give the
//! job (top-level ones it inherits, `workflow:rules`, its own, matrix
//! values, the matching rule's, `--var`), in GitLab's order, with the values
//! GitLab sends after its expansion (`expand: false` values as written).
//! Predefined `CI_*` variables are not listed, though values refer to them.
//!
//! Fields are only ever added to version 1; a change in meaning bumps
//! `schema_version`.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::ci::model::when::{Retry, When};
use crate::ci::source::Span;

/// The version of the JSON form described in this module's documentation.
pub const SCHEMA_VERSION: u32 = 1;

/// The pipeline GitLab would create for the given context.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub schema_version: u32,
    /// Whether GitLab would create the pipeline at all.
    pub created: bool,
    /// Why no pipeline would be created (`Pipeline filtered out by workflow
    /// rules.`, `No stages / jobs for this pipeline.`).
    pub reason: Option<String>,
    pub workflow: WorkflowOutcome,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub pipeline_source: String,
    pub stages: Vec<PlannedStage>,
    pub jobs: Vec<PlannedJob>,
    pub skipped: Vec<SkippedJob>,
    pub warnings: Vec<String>,
}

impl Plan {
    /// The planned job called `name`.
    pub fn job(&self, name: &str) -> Option<&PlannedJob> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

/// The result of `workflow`.
#[derive(Clone, Debug, Serialize)]
pub struct WorkflowOutcome {
    /// `workflow:name` after expansion and trimming; `None` when unset or
    /// empty (rule 75).
    pub name: Option<String>,
    pub decided_by: DecidedBy,
}

/// One stage that has jobs, with its jobs in order.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedStage {
    pub name: String,
    pub jobs: Vec<String>,
}

/// What made a job (or the pipeline) be created or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// A `rules` (or `workflow:rules`) entry matched.
    Rule,
    /// `only`/`except`, written or implicit (rule 123).
    OnlyExcept,
    /// Nothing decided: no rules, or no rule matched.
    Default,
}

/// The clause that decided, with its source text and position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecidedBy {
    pub kind: DecisionKind,
    /// The rule's index among the job's (flattened) rules.
    pub index: Option<usize>,
    /// The clause, shortened to one line (`if: $CI_COMMIT_TAG`).
    pub text: String,
    /// Where the clause is written; synthetic for implicit decisions.
    pub span: Span,
    /// `file:line:col`, filled in when source names are known.
    pub location: Option<String>,
}

impl DecidedBy {
    pub(crate) fn default_with(text: impl Into<String>) -> DecidedBy {
        DecidedBy {
            kind: DecisionKind::Default,
            index: None,
            text: text.into(),
            span: Span::synthetic(),
            location: None,
        }
    }
}

impl Serialize for DecidedBy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("kind", &self.kind)?;
        map.serialize_entry("index", &self.index)?;
        map.serialize_entry("text", &self.text)?;
        map.serialize_entry("location", &self.location)?;
        map.end()
    }
}

/// One `needs` entry after rules, `parallel` expansion and `optional`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedNeed {
    pub job: String,
    pub artifacts: bool,
    pub optional: bool,
}

/// Which copy of a `parallel` job this is (`CI_NODE_INDEX`/`CI_NODE_TOTAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ParallelIndex {
    pub index: u32,
    pub total: u32,
}

/// A job GitLab would create.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedJob {
    pub name: String,
    pub stage: String,
    pub when: When,
    pub start_in: Option<String>,
    pub allow_failure: bool,
    pub allow_failure_exit_codes: Option<Vec<i64>>,
    /// `None`: the job waits for earlier stages; `Some`: only for these.
    pub needs: Option<Vec<PlannedNeed>>,
    /// `None`: artifacts of every earlier stage.
    pub dependencies: Option<Vec<String>>,
    pub image: Option<String>,
    pub tags: Vec<String>,
    /// The job's YAML and pipeline variables, expanded (see the module
    /// documentation); predefined ones are left out.
    #[serde(serialize_with = "ordered_map")]
    pub variables: Vec<(String, String)>,
    pub decided_by: DecidedBy,
    pub parallel: Option<ParallelIndex>,
    #[serde(serialize_with = "optional_ordered_map")]
    pub matrix: Option<Vec<(String, String)>>,
    pub trigger: bool,
    pub interruptible: Option<bool>,
    pub retry: Option<Retry>,
    pub timeout: Option<u64>,
    /// The index of the job in `Pipeline::jobs` this was planned from.
    #[serde(skip)]
    pub source_index: usize,
}

impl PlannedJob {
    /// The value of a variable the job receives.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A job GitLab would leave out, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SkippedJob {
    pub name: String,
    /// A short human explanation (`no rule matched`, `rule 2: when: never`).
    pub reason: String,
    pub decided_by: DecidedBy,
}

fn ordered_map<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

fn optional_ordered_map<S: Serializer>(
    pairs: &Option<Vec<(String, String)>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match pairs {
        Some(pairs) => ordered_map(pairs, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_job() -> PlannedJob {
        PlannedJob {
            name: "test 1/2".into(),
            stage: "test".into(),
            when: When::Manual,
            start_in: None,
            allow_failure: true,
            allow_failure_exit_codes: None,
            needs: Some(vec![PlannedNeed {
                job: "build".into(),
                artifacts: true,
                optional: false,
            }]),
            dependencies: None,
            image: Some("ruby:3.3".into()),
            tags: vec![],
            variables: vec![("B".into(), "2".into()), ("A".into(), "1".into())],
            decided_by: DecidedBy::default_with("no rules"),
            parallel: Some(ParallelIndex { index: 1, total: 2 }),
            matrix: None,
            trigger: false,
            interruptible: None,
            retry: None,
            timeout: Some(3600),
            source_index: 0,
        }
    }

    #[test]
    fn job_json_keeps_variable_order_and_documented_field_names() {
        let json = serde_json::to_string(&sample_job()).unwrap();
        assert!(json.contains(r#""variables":{"B":"2","A":"1"}"#), "{json}");
        assert!(json.contains(r#""when":"manual""#));
        assert!(json.contains(r#""parallel":{"index":1,"total":2}"#));
        assert!(json.contains(r#""matrix":null"#));
        assert!(json.contains(
            r#""decided_by":{"kind":"default","index":null,"text":"no rules","location":null}"#
        ));
        assert!(!json.contains("source_index"));
    }

    #[test]
    fn plan_json_names_the_ref_field_ref() {
        let plan = Plan {
            schema_version: SCHEMA_VERSION,
            created: true,
            reason: None,
            workflow: WorkflowOutcome {
                name: None,
                decided_by: DecidedBy::default_with("no workflow:rules"),
            },
            git_ref: "main".into(),
            pipeline_source: "push".into(),
            stages: vec![],
            jobs: vec![sample_job()],
            skipped: vec![],
            warnings: vec![],
        };
        let value: serde_json::Value = serde_json::to_value(&plan).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["ref"], "main");
        assert_eq!(value["jobs"][0]["needs"][0]["job"], "build");
        assert_eq!(plan.job("test 1/2").unwrap().variable("A"), Some("1"));
    }
}
