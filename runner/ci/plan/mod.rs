//! Planning: the pipeline GitLab would create from a decoded configuration
//! for a given ref, source and set of variables (`runner plan`), and why
//! each job is in it or not (`runner plan --why JOB`).
//!
//! The steps follow GitLab's pipeline creation: `workflow:rules` decide
//! whether there is a pipeline; `parallel` jobs are expanded; each job's
//! `rules` or `only`/`except` decide whether it is created and with which
//! `when`, `allow_failure`, `needs` and variables; needs are checked
//! against the created jobs; stages without jobs disappear. How `changes`
//! finds the changed files locally is described in the `changes` module.

mod changes;
mod context;
mod exists;
mod explain;
mod fnmatch;
mod git;
mod job_vars;
mod needs_check;
mod only_except_eval;
mod parallel;
mod plan_types;
mod render;
mod rules_eval;
mod seed;
mod stages;
mod workflow;

pub use context::PlanContext;
pub use explain::explain;
pub use plan_types::{
    DecidedBy, DecisionKind, ParallelIndex, Plan, PlannedJob, PlannedNeed, PlannedStage,
    SCHEMA_VERSION, SkippedJob, WorkflowOutcome,
};
pub use render::render_text;
pub use seed::plan;
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod testutil;
