//! `runner plan --why JOB`: the workflow decision, then each rule (or
//! `only`/`except` key) of the job as it was evaluated, sub-expression by
//! sub-expression, and the outcome.

use super::context::PlanContext;
use super::only_except_eval::PolicyOutcome;
use super::render::decision_text;
use super::rules_eval::{RuleTrace, rule_text};
use super::seed::{JobTrace, Planner, Verdict, plan};
use crate::ci::model::pipeline::Pipeline;
use crate::ci::model::rules::Rule;
use crate::ci::source::Span;
use crate::ci::variables::job_variables;

/// Explains why `job` is or is not in the pipeline, one line per fact.
/// `job` is a configuration job name (every `parallel` copy is explained)
/// or one copy's name. `None` when there is no such job.
pub fn explain(pipeline: &Pipeline, ctx: &PlanContext, job: &str) -> Option<Vec<String>> {
    let planner = Planner::new(pipeline, ctx);
    let instances: Vec<_> = planner
        .instances()
        .into_iter()
        .filter(|i| i.name == job || i.job.name == job)
        .collect();
    if instances.is_empty() {
        return None;
    }
    let mut lines = Vec::new();

    let mut workflow_traces = Vec::new();
    let workflow = planner.workflow(Some(&mut workflow_traces));
    let verdict = if workflow.passed {
        "pipeline created"
    } else {
        "no pipeline"
    };
    lines.push(format!(
        "workflow: {verdict} ({})",
        decision_text(&workflow.decided_by)
    ));
    let workflow_rules = pipeline.workflow.as_ref().and_then(|w| w.rules.as_deref());
    push_rule_traces(
        &mut lines,
        ctx,
        workflow_rules.unwrap_or(&[]),
        &workflow_traces,
    );
    if let Some(name) = &workflow.name {
        lines.push(format!("  name: {name}"));
    }
    if !workflow.passed {
        return Some(lines);
    }

    let outcome = plan(pipeline, ctx);
    for inst in &instances {
        let location = ctx
            .location(inst.job.span)
            .map(|l| format!(", {l}"))
            .unwrap_or_default();
        let from = if inst.name == inst.job.name {
            String::new()
        } else {
            format!(" from `{}`", inst.job.name)
        };
        lines.push(format!("job `{}`{from}{location}", inst.name));
        let mut trace = JobTrace::default();
        let job_predefined = job_variables(&inst.name, &inst.job.stage, inst.node, false);
        let verdict = planner.decide(inst, &workflow, &job_predefined, Some(&mut trace));
        match &inst.job.rules {
            Some(rules) => push_rule_traces(&mut lines, ctx, rules, &trace.rules),
            None => {
                push_policy(&mut lines, "only", trace.only.as_ref());
                push_policy(&mut lines, "except", trace.except.as_ref());
            }
        }
        match verdict {
            Err(d) => lines.push(format!("  error: {}", d.message)),
            Ok(Verdict::Excluded { reason, .. }) => {
                lines.push(format!("  result: not created: {reason}"))
            }
            Ok(Verdict::Included { decided_by, .. }) => {
                lines.push(format!(
                    "  result: created ({})",
                    decision_text(&decided_by)
                ));
                match &outcome {
                    Ok(plan) => {
                        if let Some(job) = plan.job(&inst.name) {
                            let mut facts = vec![
                                format!("when: {}", job.when.as_str()),
                                format!("allow_failure: {}", job.allow_failure),
                            ];
                            if let Some(start_in) = &job.start_in {
                                facts.push(format!("start_in: {start_in}"));
                            }
                            if let Some(needs) = &job.needs {
                                let names: Vec<&str> =
                                    needs.iter().map(|n| n.job.as_str()).collect();
                                facts.push(format!("needs: [{}]", names.join(", ")));
                            }
                            lines.push(format!("  {}", facts.join(", ")));
                        }
                        if !plan.created {
                            let reason = plan.reason.as_deref().unwrap_or("");
                            lines.push(format!("  but the pipeline is not created: {reason}"));
                        }
                    }
                    Err(diags) => {
                        for d in diags.iter() {
                            lines.push(format!("  pipeline error: {}", d.message));
                        }
                    }
                }
            }
        }
    }
    Some(lines)
}

/// One block per evaluated rule: where it is, what each clause gave.
fn push_rule_traces(
    lines: &mut Vec<String>,
    ctx: &PlanContext,
    rules: &[Rule],
    traces: &[RuleTrace],
) {
    for t in traces {
        let Some(rule) = rules.get(t.index) else {
            continue;
        };
        lines.push(format!(
            "  rule {}{}: {}",
            t.index + 1,
            at(ctx, rule.span),
            rule_text(rule)
        ));
        if let Some(explained) = &t.if_result {
            for step in &explained.steps {
                lines.push(format!("    {} => {}", step.text, step.value));
            }
        }
        if let Some(changes) = &t.changes {
            let verdict = if changes.satisfied { "true" } else { "false" };
            match changes.matched.as_slice() {
                [] => lines.push(format!("    changes => {verdict} ({})", changes.base)),
                files => lines.push(format!(
                    "    changes => {verdict}: {} (compared with {})",
                    files.join(", "),
                    changes.base
                )),
            }
        }
        if let Some(exists) = &t.exists {
            let verdict = if exists.satisfied { "true" } else { "false" };
            match &exists.matched {
                Some(file) => lines.push(format!(
                    "    exists => {verdict}: {file} in {}",
                    exists.searched
                )),
                None => lines.push(format!(
                    "    exists => {verdict} (searched {})",
                    exists.searched
                )),
            }
        }
        lines.push(format!(
            "    {}",
            if t.matched {
                "=> matches"
            } else {
                "=> does not match"
            }
        ));
    }
    if traces.is_empty() && !rules.is_empty() {
        lines.push("  (no rule evaluated)".to_string());
    }
}

fn push_policy(lines: &mut Vec<String>, key: &str, outcome: Option<&PolicyOutcome>) {
    let Some(outcome) = outcome else {
        return;
    };
    lines.push(format!(
        "  {key}: {}",
        if outcome.satisfied {
            "matches"
        } else {
            "does not match"
        }
    ));
    for detail in &outcome.details {
        lines.push(format!("    {detail}"));
    }
}

fn at(ctx: &PlanContext, span: Span) -> String {
    ctx.location(span)
        .map(|l| format!(" at {l}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::testutil::*;
    use super::explain;
    use crate::ci::source::Sources;

    const YAML: &str = r#"workflow:
  rules:
    - if: $CI_COMMIT_BRANCH
job:
  script: echo
  rules:
    - if: $CI_PIPELINE_SOURCE == "merge_request_event"
      when: manual
    - if: $CI_COMMIT_BRANCH == "main" && $DEPLOY
    - when: on_success
"#;

    fn context() -> crate::ci::plan::PlanContext {
        let mut sources = Sources::new();
        sources.add(".gitlab-ci.yml", YAML);
        let mut ctx = ctx("push", &[("DEPLOY", "")]);
        ctx.sources = Some(Arc::new(sources));
        ctx
    }

    #[test]
    fn why_shows_each_rule_with_its_location_and_values() {
        let lines = explain(&pipeline(YAML), &context(), "job").unwrap();
        let text = lines.join("\n");
        assert_eq!(
            lines[0],
            "workflow: pipeline created (rule 1: if: $CI_COMMIT_BRANCH)"
        );
        assert!(text.contains("job `job`, .gitlab-ci.yml:4:1"), "{text}");
        assert!(
            text.contains("rule 1 at .gitlab-ci.yml:7:7: if: $CI_PIPELINE_SOURCE == \"merge_request_event\", when: manual"),
            "{text}"
        );
        assert!(text.contains("$CI_PIPELINE_SOURCE => \"push\""), "{text}");
        assert!(text.contains("$DEPLOY => \"\""), "{text}");
        assert!(
            text.contains("rule 3 at .gitlab-ci.yml:10:7: when: on_success"),
            "{text}"
        );
        let tail: Vec<&str> = lines.iter().rev().take(2).map(String::as_str).collect();
        assert_eq!(tail[1], "  result: created (rule 3: when: on_success)");
        assert_eq!(tail[0], "  when: on_success, allow_failure: false");
    }

    #[test]
    fn why_explains_only_except_and_unknown_jobs() {
        let yaml = "job:\n  script: x\n  only: [tags]\n";
        let lines = explain(&pipeline(yaml), &ctx("push", &[]), "job").unwrap();
        assert!(
            lines.contains(&"  only: does not match".to_string()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"    refs: none of [tags] matches".to_string()),
            "{lines:?}"
        );
        assert!(explain(&pipeline(yaml), &ctx("push", &[]), "nope").is_none());
    }
}
