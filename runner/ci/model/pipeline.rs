//! The pipeline root: global keywords, stages, and which top-level keys are
//! jobs (rules 11-29).

use serde::Serialize;

use super::checks::check_pipeline;
use super::decode::{Decoder, flatten_strings};
use super::inherit::DEFAULT_KEYS;
use super::job::{Job, JobKind, decode_job};
use super::judge::{bare_error, is_blank, to_s};
use super::variables::{VarScope, VariableDef, decode_variables};
use super::workflow::{Workflow, decode_workflow};
use super::{cache, image};
use crate::ci::compose::keywords::RESERVED;
use crate::ci::diag::Diagnostics;
use crate::ci::yaml::{Node, Value};

/// A whole pipeline configuration, decoded and checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    /// The stages in order, `.pre` first and `.post` last (rules 22-24, 29).
    pub stages: Vec<String>,
    /// Top-level `variables`.
    pub variables: Vec<VariableDef>,
    pub workflow: Option<Workflow>,
    /// The visible jobs in file order.
    pub jobs: Vec<Job>,
    /// The names of hidden jobs (rule 18).
    pub hidden_jobs: Vec<String>,
}

impl Pipeline {
    /// The job called `name`.
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The position of `stage` in the stage list.
    pub fn stage_index(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == stage)
    }

    /// Whether every job of `jobs` sits in `.pre` or `.post`, in which case
    /// GitLab creates no pipeline (rule 25). Callers pass the jobs that
    /// survived `rules`/`only`/`except`.
    pub fn only_edge_stages<'j>(jobs: impl IntoIterator<Item = &'j Job>) -> bool {
        jobs.into_iter()
            .all(|j| EDGE_STAGES.contains(&j.stage.as_str()))
    }
}

/// The stages GitLab always adds around the user's list (rule 24).
pub const EDGE_STAGES: [&str; 2] = [".pre", ".post"];
/// The stages without a `stages:` keyword (rule 22).
const DEFAULT_STAGES: [&str; 3] = ["build", "test", "deploy"];

/// How deep `!reference` may nest stage lists (rule 29).
const MAX_STAGES_NESTING: usize = 10;

/// What a top-level key is, decided as GitLab decides it: by its name and
/// by which keywords its hash holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TopLevel {
    Hidden,
    Job(JobKind),
    /// A visible key that has none of `script`, `run`, `trigger`, `needs`.
    NotAJob,
}

fn classify(name: &str, value: &Node) -> TopLevel {
    if name.starts_with('.') {
        return TopLevel::Hidden;
    }
    let Some(map) = value.as_map() else {
        return TopLevel::NotAJob;
    };
    if map.contains_key("script") || map.contains_key("run") {
        TopLevel::Job(JobKind::Build)
    } else if map.contains_key("trigger") || map.contains_key("needs") {
        TopLevel::Job(JobKind::Trigger)
    } else {
        TopLevel::NotAJob
    }
}

/// Decodes a composed configuration (includes merged, `extends` and
/// `!reference` resolved, `default:` copied into the jobs). Every problem
/// found is reported, each at the node it concerns.
pub fn decode_pipeline(root: &Node) -> Result<Pipeline, Diagnostics> {
    decode_with(root, false)
}

/// Decodes a configuration that is only part of a pipeline (a file meant
/// to be included): every keyword is checked, but not what the including
/// file may provide: at least one visible job, and the stages, `needs` and
/// `dependencies` that name things defined elsewhere.
pub fn decode_fragment(root: &Node) -> Result<Pipeline, Diagnostics> {
    decode_with(root, true)
}

fn decode_with(root: &Node, fragment: bool) -> Result<Pipeline, Diagnostics> {
    let mut d = Decoder::lowercasing();
    let Some(map) = root.as_map() else {
        bare_error(&mut d, root, "Invalid configuration format");
        return Err(d.diags);
    };
    let mut pipeline = Pipeline {
        stages: Vec::new(),
        variables: Vec::new(),
        workflow: None,
        jobs: Vec::new(),
        hidden_jobs: Vec::new(),
    };
    let mut stages: Option<Vec<String>> = None;
    let mut types: Option<Vec<String>> = None;
    for (key, value) in map.iter() {
        let name = to_s(key);
        let kind = classify(&name, value);
        let global = RESERVED.contains(&name.as_str())
            || (matches!(name.as_str(), "default" | "workflow")
                && !matches!(kind, TopLevel::Job(_)));
        if global {
            if !value.is_null() {
                decode_global(&mut d, &name, value, &mut pipeline, &mut stages, &mut types);
            }
            continue;
        }
        match kind {
            TopLevel::Hidden => {
                if is_blank(value) {
                    d.error(key, &format!("jobs:{name}"), "config can't be blank");
                }
                pipeline.hidden_jobs.push(name);
            }
            TopLevel::NotAJob => {
                let msg = format!(
                    "jobs {} config should implement the script:, run:, or trigger: keyword",
                    unmatched_job_label(&name)
                );
                bare_error(&mut d, key, &msg);
            }
            TopLevel::Job(kind) => {
                if let Some(job_map) = value.as_map() {
                    pipeline
                        .jobs
                        .push(decode_job(&mut d, &name, key, job_map, kind));
                }
            }
        }
    }
    if pipeline.jobs.is_empty() && !fragment {
        d.error(
            root,
            "jobs",
            "config should contain at least one visible job",
        );
    }
    pipeline.stages = with_edge_stages(stages.or(types));
    if d.diags.is_empty() && !fragment {
        check_pipeline(&mut d, &pipeline);
    }
    if d.diags.is_empty() {
        Ok(pipeline)
    } else {
        Err(d.diags)
    }
}

fn decode_global(
    d: &mut Decoder,
    name: &str,
    value: &Node,
    pipeline: &mut Pipeline,
    stages: &mut Option<Vec<String>>,
    types: &mut Option<Vec<String>>,
) {
    match name {
        // Already merged in by the loader.
        "include" => {}
        "stages" => *stages = decode_stages(d, value, name),
        "types" => *types = decode_stages(d, value, name),
        "variables" => pipeline.variables = decode_variables(d, value, name, VarScope::Root),
        "workflow" => pipeline.workflow = decode_workflow(d, value),
        "default" => check_default(d, value),
        "before_script" | "after_script" if flatten_strings(value, 10).is_none() => {
            let msg = "config should be a string or a nested array of strings up to 10 levels deep";
            d.error(value, name, msg);
        }
        // Deprecated globals that act as defaults (rule 36): checked here,
        // applied by the loader.
        "image" => {
            image::decode_image(d, value, name);
        }
        "services" => {
            image::decode_services(d, value, name);
        }
        "cache" => {
            cache::decode_cache(d, value, name);
        }
        _ => {}
    }
}

/// `stages` (or the deprecated `types`): nested lists of names, flattened.
fn decode_stages(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<String>> {
    let flat = match node.value {
        Value::Seq(_) => flatten_strings(node, MAX_STAGES_NESTING),
        _ => None,
    };
    if flat.is_none() {
        let msg = format!(
            "config should be an array of strings or a nested array of strings up to {MAX_STAGES_NESTING} levels deep"
        );
        d.error(node, path, msg);
    }
    flat
}

/// `.pre` first and `.post` last, wherever the user listed them.
fn with_edge_stages(stages: Option<Vec<String>>) -> Vec<String> {
    let listed = stages.unwrap_or_else(|| DEFAULT_STAGES.iter().map(|s| s.to_string()).collect());
    let mut out = vec![EDGE_STAGES[0].to_string()];
    out.extend(
        listed
            .into_iter()
            .filter(|s| !EDGE_STAGES.contains(&s.as_str())),
    );
    out.push(EDGE_STAGES[1].to_string());
    out
}

/// `default:` is applied to the jobs before decoding; here it is only
/// checked for its shape.
fn check_default(d: &mut Decoder, node: &Node) {
    match node.as_map() {
        Some(map) => d.unknown_keys(map, "default", DEFAULT_KEYS),
        None => d.error(node, "default", "config should be a hash"),
    }
}

/// How GitLab names a job that is not one in its error: humanized by
/// ActiveModel (dots and underscores become spaces, all lowercase), then
/// spaces turned back into underscores when only letters and spaces are
/// left.
fn unmatched_job_label(name: &str) -> String {
    let mut text = name.replace('.', "_");
    if name.ends_with("_id") {
        text.truncate(text.len() - 3);
    }
    let text = text.replace('_', " ").trim_start().to_lowercase();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_whitespace())
    {
        text.replace(' ', "_")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> Result<Pipeline, Vec<String>> {
        let root = parse_documents(text, SourceId(1)).unwrap().remove(0);
        decode_pipeline(&root).map_err(|e| e.iter().map(|d| d.message.clone()).collect())
    }

    fn names(p: &Pipeline) -> Vec<&str> {
        p.jobs.iter().map(|j| j.name.as_str()).collect()
    }

    #[test]
    fn rule_12_keys_are_jobs_hidden_jobs_or_globals() {
        let p = decode(
            "variables: {A: b}\n.tmpl: {script: x}\nbuild: {script: make}\ntest: {script: [a, [b]]}\n",
        )
        .unwrap();
        assert_eq!(names(&p), ["build", "test"]);
        assert_eq!(p.hidden_jobs, [".tmpl"]);
        assert_eq!(p.variables[0].name, "A");
        assert_eq!(p.jobs[1].script, ["a", "b"]);
    }

    #[test]
    fn rule_13_reserved_names_are_never_jobs() {
        // Whatever the image decoder thinks of it, `image` is no job.
        match decode("image: {script: x}\nbuild: {script: make}\n") {
            Ok(p) => assert_eq!(names(&p), ["build"]),
            Err(err) => assert!(err.iter().all(|m| !m.starts_with("jobs")), "{err:?}"),
        }
        let p = decode("variables: {script: x}\nbuild: {script: make}\n").unwrap();
        assert_eq!(p.variables[0].name, "script");
        assert_eq!(names(&p), ["build"]);
    }

    #[test]
    fn rule_13_default_and_workflow_become_jobs_when_they_look_like_jobs() {
        let p = decode("default: {script: make}\n").unwrap();
        assert_eq!(names(&p), ["default"]);
    }

    #[test]
    fn rule_17_a_visible_key_must_be_a_job() {
        let err = decode("build: {script: make}\nGIT_SSL_NO_VERIFY: '1'\nmy.job: {image: x}\nunit test 2: {stage: t}\n")
            .unwrap_err();
        assert_eq!(
            err,
            [
                "jobs git_ssl_no_verify config should implement the script:, run:, or trigger: keyword",
                "jobs my_job config should implement the script:, run:, or trigger: keyword",
                "jobs unit test 2 config should implement the script:, run:, or trigger: keyword",
            ]
        );
    }

    #[test]
    fn rule_18_hidden_jobs_need_content_only() {
        let p = decode(".anchors: &a [x, y]\n.t: {image: x}\nbuild: {script: make}\n").unwrap();
        assert_eq!(p.hidden_jobs, [".anchors", ".t"]);
        let err = decode(".empty:\nbuild: {script: make}\n").unwrap_err();
        assert_eq!(err, ["jobs:.empty config can't be blank"]);
    }

    #[test]
    fn rule_19_needs_one_visible_job() {
        let err = decode(".hidden: {script: x}\nvariables: {A: b}\n").unwrap_err();
        assert_eq!(err, ["jobs config should contain at least one visible job"]);
    }

    #[test]
    fn rule_22_default_stages() {
        let p = decode("build: {script: make}\n").unwrap();
        assert_eq!(p.stages, [".pre", "build", "test", "deploy", ".post"]);
        assert_eq!(p.jobs[0].stage, "test");
    }

    #[test]
    fn rule_24_edge_stages_are_always_first_and_last() {
        let p = decode("stages: [.post, lint, .pre, ship]\nbuild: {stage: lint, script: make}\n")
            .unwrap();
        assert_eq!(p.stages, [".pre", "lint", "ship", ".post"]);
    }

    #[test]
    fn rule_25_only_edge_stage_jobs_make_no_pipeline() {
        let p = decode("a: {stage: .pre, script: x}\nb: {stage: .post, script: x}\n").unwrap();
        assert!(Pipeline::only_edge_stages(&p.jobs));
        let p = decode("a: {stage: .pre, script: x}\nb: {script: x}\n").unwrap();
        assert!(!Pipeline::only_edge_stages(&p.jobs));
    }

    #[test]
    fn rule_29_nested_stage_lists_flatten() {
        let p = decode("stages: [[a, b], [[c]]]\nbuild: {stage: c, script: make}\n").unwrap();
        assert_eq!(p.stages, [".pre", "a", "b", "c", ".post"]);
        let err = decode("stages: build\nbuild: {script: make}\n").unwrap_err();
        assert_eq!(
            err,
            [
                "stages config should be an array of strings or a nested array of strings up to 10 levels deep"
            ]
        );
    }

    #[test]
    fn rule_21_types_is_the_old_stages() {
        let p = decode("types: [one, two]\nbuild: {type: two, script: make}\n").unwrap();
        assert_eq!(p.stages, [".pre", "one", "two", ".post"]);
        assert_eq!(p.jobs[0].stage, "two");
        let p =
            decode("stages: [a, b]\ntypes: [c]\nbuild: {stage: b, type: c, script: x}\n").unwrap();
        assert_eq!(p.jobs[0].stage, "b");
    }

    #[test]
    fn rule_23_stage_must_exist() {
        let err =
            decode("stages: [build]\nrelease-job: {stage: release, script: x}\n").unwrap_err();
        assert_eq!(
            err,
            [
                "release-job job: chosen stage release does not exist; available stages are .pre, build, .post"
            ]
        );
        let err = decode("stages: [build]\nlint: {script: x}\n").unwrap_err();
        assert_eq!(
            err,
            ["lint job: chosen stage test does not exist; available stages are .pre, build, .post"]
        );
    }

    #[test]
    fn rule_11_default_is_checked_for_shape() {
        let err =
            decode("default: {image: x, variables: {A: b}}\nbuild: {script: x}\n").unwrap_err();
        assert_eq!(err, ["default config contains unknown keys: variables"]);
        let err = decode("default: [a]\nbuild: {script: x}\n").unwrap_err();
        assert_eq!(err, ["default config should be a hash"]);
    }

    #[test]
    fn root_must_be_a_hash() {
        assert_eq!(
            decode("[a, b]").unwrap_err(),
            ["Invalid configuration format"]
        );
    }

    #[test]
    fn rule_144_needs_must_name_earlier_jobs() {
        let err =
            decode("a: {stage: test, script: x, needs: [b]}\nb: {stage: deploy, script: x}\n")
                .unwrap_err();
        assert_eq!(
            err,
            ["a job: need b is not defined in current or prior stages"]
        );
        let err =
            decode("a: {script: x, needs: [nope, {job: maybe, optional: true}]}\n").unwrap_err();
        assert_eq!(err, ["a job: undefined need: nope"]);
        let p = decode("a: {script: x, needs: [b]}\nb: {script: x}\n").unwrap();
        assert_eq!(p.jobs[0].needs.as_ref().unwrap()[0].job_name(), Some("b"));
    }

    #[test]
    fn rule_143_needing_a_parallel_job_means_all_its_jobs() {
        let p = decode(
            "build: {stage: build, script: x, parallel: {matrix: [{P: [a, b]}]}}\n\
             t1: {script: x, needs: [build]}\n\
             t2: {script: x, needs: [{job: build, parallel: {matrix: [{P: a}]}}]}\n\
             t3: {script: x, dependencies: ['build: [b]']}\n",
        );
        assert!(p.is_ok(), "{p:?}");
        let err = decode(
            "build: {stage: build, script: x, parallel: {matrix: [{P: [a, b]}]}}\n\
             t2: {script: x, needs: [{job: build, parallel: {matrix: [{P: c}]}}]}\n",
        )
        .unwrap_err();
        assert_eq!(err, ["t2 job: undefined need: build: [c]"]);
    }

    #[test]
    fn rule_153_dependencies_must_be_earlier_jobs() {
        let err = decode(
            "a: {stage: build, script: x, dependencies: [b]}\nb: {stage: test, script: x}\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            ["a job: dependency b is not defined in current or prior stages"]
        );
        let err = decode("a: {script: x, dependencies: [ghost]}\n").unwrap_err();
        assert_eq!(err, ["a job: undefined dependency: ghost"]);
    }

    #[test]
    fn needs_may_not_repeat_or_loop() {
        let err = decode("a: {script: x, needs: [b, b]}\nb: {script: x}\n").unwrap_err();
        assert_eq!(err, ["a has the following needs duplicated: b."]);
        let err = decode("a: {script: x, needs: [b]}\nb: {script: x, needs: [a]}\n").unwrap_err();
        assert_eq!(
            err,
            ["The pipeline has circular dependencies: topological sort failed: [\"a\", \"b\"]"]
        );
    }

    #[test]
    fn cross_job_errors_of_a_parallel_job_name_its_first_job() {
        let err = decode("stages: [b]\nrspec: {script: x, parallel: 2}\n").unwrap_err();
        assert_eq!(
            err,
            [
                "rspec 1/2 job: chosen stage test does not exist; available stages are .pre, b, .post"
            ]
        );
    }

    #[test]
    fn rule_235_dynamic_child_pipeline_job_must_come_earlier() {
        let err = decode(
            "gen: {stage: deploy, script: x}\nchild: {stage: test, trigger: {include: [{artifact: c.yml, job: gen}]}}\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            ["child job: dependency gen is not defined in current or prior stages"]
        );
    }

    #[test]
    fn messages_are_lowercased_as_gitlab_does() {
        let err = decode("Build: {script: x, Foo: 1}\n").unwrap_err();
        assert_eq!(err, ["jobs:build config contains unknown keys: foo"]);
    }
}
