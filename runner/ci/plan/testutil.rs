//! Shared helpers for the planning tests: YAML text in, plan out.

use std::path::Path;

use super::context::PlanContext;
use super::plan_types::Plan;
use super::seed::plan;
use crate::ci::diag::Diagnostics;
use crate::ci::model::pipeline::{Pipeline, decode_pipeline};
use crate::ci::source::SourceId;
use crate::ci::variables::{VarSource, Variables};
use crate::ci::yaml::parse_documents;

/// Decodes a configuration written inline in a test.
pub(crate) fn pipeline(yaml: &str) -> Pipeline {
    let docs = parse_documents(yaml, SourceId(1)).expect("valid YAML");
    let root = docs.into_iter().next().expect("one document");
    decode_pipeline(&root).unwrap_or_else(|d| panic!("invalid configuration: {d:?}"))
}

/// The predefined variables of a pipeline of `source` for branch `main`
/// of `group/project`, then `vars` as pipeline (`--var`) variables.
/// `CI_COMMIT_TAG=x` in `vars` makes it a tag pipeline instead.
pub(crate) fn ctx_in(dir: &Path, source: &str, vars: &[(&str, &str)]) -> PlanContext {
    let mut v = Variables::new();
    let tag = vars
        .iter()
        .find(|(k, _)| *k == "CI_COMMIT_TAG")
        .map(|(_, t)| *t);
    let mr = source == "merge_request_event";
    let mut predefined = |k: &str, val: &str| v.set(k, val, VarSource::Predefined);
    predefined("CI_PROJECT_PATH", "group/project");
    predefined("CI_DEFAULT_BRANCH", "main");
    predefined("CI_PIPELINE_SOURCE", source);
    predefined("CI_COMMIT_REF_NAME", tag.unwrap_or("main"));
    match tag {
        Some(t) => predefined("CI_COMMIT_TAG", t),
        None if !mr => predefined("CI_COMMIT_BRANCH", "main"),
        None => {}
    }
    if mr {
        predefined("CI_MERGE_REQUEST_IID", "1");
        predefined("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main");
    }
    for (k, val) in vars.iter().filter(|(k, _)| *k != "CI_COMMIT_TAG") {
        v.set(*k, *val, VarSource::Pipeline);
    }
    PlanContext::new(v, dir, source)
}

/// [`ctx_in`] for a project directory that does not exist (no git, no files).
pub(crate) fn ctx(source: &str, vars: &[(&str, &str)]) -> PlanContext {
    ctx_in(Path::new("/nonexistent/project"), source, vars)
}

/// Plans `yaml`, panicking on pipeline errors.
pub(crate) fn plan_of(yaml: &str, ctx: &PlanContext) -> Plan {
    plan(&pipeline(yaml), ctx).unwrap_or_else(|d| panic!("pipeline errors: {d:?}"))
}

/// Plans `yaml`, expecting pipeline errors; returns their messages.
pub(crate) fn errors_of(yaml: &str, ctx: &PlanContext) -> Vec<String> {
    match plan(&pipeline(yaml), ctx) {
        Ok(p) => panic!("expected errors, got a plan with {:?}", names(&p)),
        Err(Diagnostics(d)) => d.into_iter().map(|d| d.message).collect(),
    }
}

/// The names of the created jobs, in plan order.
pub(crate) fn names(plan: &Plan) -> Vec<&str> {
    plan.jobs.iter().map(|j| j.name.as_str()).collect()
}
