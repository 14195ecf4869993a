//! The checks GitLab makes across jobs once every job is valid on its own:
//! stages exist, `dependencies` and `needs` name earlier jobs, and `needs`
//! has no cycles (rules 15, 23, 140-155).
//!
//! They run on the jobs as GitLab normalizes them: a `parallel` job
//! becomes its numbered or matrix jobs, and a `needs` or `dependencies`
//! entry naming it means all of them. Their messages are GitLab's and, as
//! in GitLab, are not lowercased.

use std::collections::HashMap;

use super::decode::Decoder;
use super::job::Job;
use super::needs::{Need, NeedTarget};
use super::parallel::{Parallel, matrix_job_name, substitute_matrix_expressions};
use super::pipeline::Pipeline;
use super::trigger::Trigger;
use crate::ci::diag::Diagnostic;
use crate::ci::source::Span;

/// A need's job name may be at most this long, generated names included
/// (rule 15).
const MAX_NEED_NAME_LENGTH: usize = 128;

/// A generated matrix job: its name and its matrix variables.
type MatrixInstance = (String, Vec<(String, String)>);

struct Normalized<'p> {
    stages: &'p [String],
    /// Every job name after `parallel` expansion, with its stage index.
    stage_of: HashMap<String, Option<usize>>,
    /// The generated names of each `parallel` job.
    expanded: HashMap<&'p str, Vec<String>>,
    /// The matrix variables of each generated matrix job, per job.
    matrix_instances: HashMap<&'p str, Vec<MatrixInstance>>,
}

impl Normalized<'_> {
    fn names(&self, name: &str) -> Vec<String> {
        match self.expanded.get(name) {
            Some(names) => names.clone(),
            None => vec![name.to_string()],
        }
    }

    /// The names a need points at: all of a parallel job's jobs, or the
    /// matrix jobs that `needs:parallel:matrix` selects, with `$[[ matrix.ID ]]`
    /// taken from the needing job's own matrix variables `own`.
    fn need_names(&self, need: &Need, own: &[(String, String)]) -> Vec<(String, bool)> {
        let NeedTarget::Job { job, matrix } = &need.target else {
            return Vec::new();
        };
        let names = match matrix {
            Some(entries) => entries
                .iter()
                .flat_map(|e| e.combinations())
                .flat_map(|combo| {
                    let combo: Vec<(String, String)> = combo
                        .into_iter()
                        .map(|(k, v)| (k, substitute_matrix_expressions(&v, own)))
                        .collect();
                    self.select_matrix_jobs(job, &combo)
                })
                .collect(),
            None => self.names(job),
        };
        names.into_iter().map(|n| (n, need.optional)).collect()
    }
}

impl Normalized<'_> {
    /// The matrix jobs of `job` that one `needs:parallel:matrix` combination
    /// names. Naming every variable gives the one job with those values, in
    /// the needed job's order (rule 150). Naming only some of them selects
    /// every job whose values match those given. When nothing matches, the
    /// generated name is returned so it is reported as undefined.
    fn select_matrix_jobs(&self, job: &str, combo: &[(String, String)]) -> Vec<String> {
        let exact = matrix_job_name(job, combo);
        let Some(instances) = self.matrix_instances.get(job) else {
            return vec![exact];
        };
        let names_every_variable = instances.iter().any(|(_, vars)| vars.len() == combo.len());
        if names_every_variable {
            return vec![exact];
        }
        let selected: Vec<String> = instances
            .iter()
            .filter(|(_, vars)| combo.iter().all(|pair| vars.contains(pair)))
            .map(|(name, _)| name.clone())
            .collect();
        if selected.is_empty() {
            vec![exact]
        } else {
            selected
        }
    }
}

/// Runs the cross-job checks and reports what fails.
pub(crate) fn check_pipeline(d: &mut Decoder, pipeline: &Pipeline) {
    let stage_index = |stage: &str| pipeline.stages.iter().position(|s| s == stage);
    let mut norm = Normalized {
        stages: &pipeline.stages,
        stage_of: HashMap::new(),
        expanded: HashMap::new(),
        matrix_instances: HashMap::new(),
    };
    for job in &pipeline.jobs {
        let names = match &job.parallel {
            Some(p) => p.job_names(&job.name),
            None => vec![job.name.clone()],
        };
        for name in &names {
            norm.stage_of.insert(name.clone(), stage_index(&job.stage));
        }
        if let Some(parallel @ Parallel::Matrix(_)) = &job.parallel {
            norm.matrix_instances
                .insert(&job.name, parallel.instances(&job.name));
        }
        if job.parallel.is_some() {
            norm.expanded.insert(&job.name, names);
        }
    }
    let mut graph: Vec<(String, Vec<String>)> = Vec::new();
    for job in &pipeline.jobs {
        let instances = match &job.parallel {
            Some(p) => p.instances(&job.name),
            None => vec![(job.name.clone(), Vec::new())],
        };
        // Every instance is checked, since matrix expressions in `needs`
        // differ per instance; a job's errors are reported once, for the
        // first instance that has any.
        for (name, own) in &instances {
            let before = d.diags.len();
            check_job(d, &norm, job, name, own);
            if d.diags.len() > before {
                break;
            }
        }
        for (name, own) in instances {
            let needed: Vec<String> = job
                .needs
                .iter()
                .flatten()
                .flat_map(|n| norm.need_names(n, &own))
                .map(|(n, _)| n)
                .collect();
            graph.push((name, needed));
        }
    }
    if let Some(message) = find_cycle(&graph) {
        let span = pipeline.jobs.first().map_or(Span::synthetic(), |j| j.span);
        d.diags.push(Diagnostic::config(
            span,
            format!("The pipeline has circular dependencies: {message}"),
        ));
    }
}

fn check_job(
    d: &mut Decoder,
    norm: &Normalized,
    job: &Job,
    name: &str,
    matrix_vars: &[(String, String)],
) {
    let mut report = |span: Span, msg: String| d.diags.push(Diagnostic::config(span, msg));
    let own = norm.stage_of.get(name).copied().flatten();
    if own.is_none() {
        let msg = format!(
            "{name} job: chosen stage {} does not exist; available stages are {}",
            job.stage,
            norm.stages.join(", ")
        );
        report(job.span, msg);
        return;
    }
    let mut check = |dep: &str, kind: &str, optional: bool, span: Span| {
        let Some(dep_stage) = norm.stage_of.get(dep) else {
            if !optional {
                report(span, format!("{name} job: undefined {kind}: {dep}"));
            }
            return;
        };
        if kind == "need" && dep.chars().count() > MAX_NEED_NAME_LENGTH {
            report(
                span,
                format!(
                    "{name} job: need `{dep}` name is too long (maximum is {MAX_NEED_NAME_LENGTH} characters)"
                ),
            );
        }
        if !dep_stage.is_some_and(|s| Some(s) <= own) {
            let msg = format!("{name} job: {kind} {dep} is not defined in current or prior stages");
            report(span, msg);
        }
    };
    for dep in job.dependencies.iter().flatten() {
        for dep in norm.names(dep) {
            check(&dep, "dependency", false, job.span);
        }
    }
    let mut need_lists: Vec<&Vec<Need>> = job.needs.iter().collect();
    need_lists.extend(job.rules.iter().flatten().filter_map(|r| r.needs.as_ref()));
    let mut duplicated_lists = Vec::new();
    for needs in need_lists {
        let mut seen: Vec<String> = Vec::new();
        let mut duplicated: Vec<String> = Vec::new();
        for need in needs {
            for (dep, optional) in norm.need_names(need, matrix_vars) {
                check(&dep, "need", optional, need.span);
                if seen.contains(&dep) {
                    if !duplicated.contains(&dep) {
                        duplicated.push(dep);
                    }
                } else {
                    seen.push(dep);
                }
            }
        }
        if !duplicated.is_empty() {
            duplicated_lists.push(duplicated);
        }
    }
    if let Some(Trigger::Child { include, .. }) = &job.trigger {
        for dep in include.iter().filter_map(|i| i.job.as_deref()) {
            for dep in norm.names(dep) {
                check(&dep, "dependency", false, job.span);
            }
        }
    }
    for duplicated in duplicated_lists {
        let msg = format!(
            "{name} has the following needs duplicated: {}.",
            duplicated.join(", ")
        );
        d.diags.push(Diagnostic::config(job.span, msg));
    }
}

/// Looks for a cycle in `needs` the way Ruby's `TSort` does (Tarjan's
/// algorithm, nodes and children in written order), so the reported cycle
/// is the one GitLab reports.
fn find_cycle(graph: &[(String, Vec<String>)]) -> Option<String> {
    let children: HashMap<&str, &[String]> = graph
        .iter()
        .map(|(name, needs)| (name.as_str(), needs.as_slice()))
        .collect();
    let mut ids: HashMap<&str, Option<usize>> = HashMap::new();
    let mut stack: Vec<&str> = Vec::new();
    struct Frame<'g> {
        node: &'g str,
        next_child: usize,
        id: usize,
        minimum: usize,
        stack_len: usize,
    }
    for (start, _) in graph {
        if ids.contains_key(start.as_str()) {
            continue;
        }
        let mut frames: Vec<Frame> = Vec::new();
        let mut pending = Some(start.as_str());
        loop {
            if let Some(node) = pending.take() {
                let id = ids.len();
                ids.insert(node, Some(id));
                let kids = children.get(node).copied().unwrap_or(&[]);
                if kids.iter().any(|k| k == node) {
                    return Some(format!("self-dependency: {node}"));
                }
                frames.push(Frame {
                    node,
                    next_child: 0,
                    id,
                    minimum: id,
                    stack_len: stack.len(),
                });
                stack.push(node);
            }
            let Some(frame) = frames.last_mut() else {
                break;
            };
            let kids = children.get(frame.node).copied().unwrap_or(&[]);
            if let Some(child) = kids.get(frame.next_child) {
                frame.next_child += 1;
                match ids.get(child.as_str()) {
                    Some(Some(child_id)) => frame.minimum = frame.minimum.min(*child_id),
                    Some(None) => {}
                    None => pending = Some(child.as_str()),
                }
                continue;
            }
            let Some(done) = frames.pop() else {
                break;
            };
            if done.id == done.minimum {
                let component = stack.split_off(done.stack_len);
                for n in &component {
                    ids.insert(n, None);
                }
                if component.len() > 1 {
                    let quoted: Vec<String> = component.iter().map(|n| ruby_inspect(n)).collect();
                    return Some(format!("topological sort failed: [{}]", quoted.join(", ")));
                }
            }
            if let Some(parent) = frames.last_mut() {
                parent.minimum = parent.minimum.min(done.minimum);
            }
        }
    }
    None
}

/// A string as Ruby's `inspect` prints it, for the names GitLab lists.
fn ruby_inspect(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '#' => out.push('#'),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::model::parallel::Parallel;

    fn graph(edges: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
        edges
            .iter()
            .map(|(n, c)| (n.to_string(), c.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn no_cycle_in_a_dag() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["a", "b", "missing"])]);
        assert_eq!(find_cycle(&g), None);
    }

    #[test]
    fn cycle_is_reported_in_discovery_order() {
        let g = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"])]);
        assert_eq!(
            find_cycle(&g).unwrap(),
            "topological sort failed: [\"a\", \"c\", \"b\"]"
        );
    }

    #[test]
    fn self_dependency_is_named() {
        let g = graph(&[("a", &[]), ("b", &["b"])]);
        assert_eq!(find_cycle(&g).unwrap(), "self-dependency: b");
    }

    #[test]
    fn parallel_names_expand() {
        let p = Parallel::Count(2);
        assert_eq!(p.job_names("x"), ["x 1/2", "x 2/2"]);
    }
}
