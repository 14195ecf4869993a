//! The planner: from a decoded configuration to the jobs GitLab would
//! create, following the order of GitLab's pipeline creation chain
//! (workflow, then each job's inclusion, then needs, then stages).

use std::collections::HashSet;

use super::changes::{BaseRule, ChangeTracker};
use super::context::{BaseVars, PlanContext, RuleScope, VarsLookup, defs_to_vars};
use super::job_vars::{ExpandedJobVars, PipelineVars};
use super::needs_check::{
    JobIndex, NeedingJob, expand_dependencies, external_needs, resolve_needs,
};
use super::only_except_eval::{PolicyOutcome, RefFacts, evaluate_policy, policy_text};
use super::parallel::{Instance, expand_instances};
use super::plan_types::{
    DecidedBy, DecisionKind, ParallelIndex, Plan, PlannedJob, SCHEMA_VERSION, SkippedJob,
    WorkflowOutcome,
};
use super::rules_eval::{
    Env, RuleError, RuleInput, RuleTrace, first_match, is_bare_when, rule_path_texts, rule_text,
};
use super::stages::{NO_JOBS, arrange, is_empty_pipeline};
use super::workflow::{
    ExpandedVars, FILTERED_OUT, LazyExpanded, WorkflowResult, evaluate_workflow,
};
use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::expr::VarLookup;
use crate::ci::model::job::{Job, JobKind};
use crate::ci::model::only_except::OnlyExcept;
use crate::ci::model::pipeline::Pipeline;
use crate::ci::model::rules::Rule;
use crate::ci::model::variables::VariableDef;
use crate::ci::model::when::{AllowFailure, When};
use crate::ci::variables::{
    CycleError, ExpandOptions, VarSource, Variable, Variables, expand_gitlab, expand_runner,
    job_variables,
};

/// Plans the pipeline GitLab would create for `ctx`.
///
/// A pipeline that `workflow:rules` filter out, or that would have no jobs
/// outside `.pre`/`.post`, is a plan with `created: false` and GitLab's
/// reason. Errors GitLab raises while creating the pipeline (a required
/// need left out by rules, an unresolvable `compare_to`, a variable cycle)
/// are returned as diagnostics.
pub fn plan(pipeline: &Pipeline, ctx: &PlanContext) -> Result<Plan, Diagnostics> {
    let planner = Planner::new(pipeline, ctx);
    planner.run()
}

/// What decided one job, with the rule that matched if any.
pub(crate) enum Verdict<'p> {
    Included {
        decided_by: DecidedBy,
        rule: Option<&'p Rule>,
    },
    Excluded {
        reason: String,
        decided_by: DecidedBy,
    },
}

/// A job's YAML variables by layer, before merging.
struct YamlLayers<'s> {
    /// Top-level variables the job inherits.
    top: Vec<&'s VariableDef>,
    /// The matching `workflow:rules` entry's variables the job inherits.
    flow: Vec<&'s VariableDef>,
    /// The job's own `(name, value, raw)`, matrix values merged in.
    own: Vec<(&'s str, &'s str, bool)>,
}

/// A job that rules let in, waiting for its attributes.
struct Included<'i, 'p> {
    inst: &'i Instance<'p>,
    rule: Option<&'p Rule>,
    decided_by: DecidedBy,
    job_predefined: Variables,
}

/// Everything evaluated for one job, for `--why`.
#[derive(Default)]
pub(crate) struct JobTrace {
    pub rules: Vec<RuleTrace>,
    pub only: Option<PolicyOutcome>,
    pub except: Option<PolicyOutcome>,
}

pub(crate) struct Planner<'p, 'c> {
    pub pipeline: &'p Pipeline,
    pub ctx: &'c PlanContext,
    pub env: Env<'c>,
    pub base: BaseVars<'c>,
    pipeline_vars: PipelineVars<'c>,
    pub facts: RefFacts,
    index: JobIndex<'p>,
    has_workflow_rules: bool,
}

impl<'p, 'c> Planner<'p, 'c> {
    pub(crate) fn new(pipeline: &'p Pipeline, ctx: &'c PlanContext) -> Planner<'p, 'c> {
        let lookup = |name: &str| ctx.variables.lookup(name).map(String::from);
        let rule =
            BaseRule::for_pipeline(&ctx.pipeline_source, &lookup, ctx.changes_base.as_deref());
        let env = Env::new(ctx, ChangeTracker::new(&ctx.project_dir, rule));
        Planner {
            pipeline,
            ctx,
            env,
            base: BaseVars::new(&ctx.variables),
            pipeline_vars: PipelineVars::new(&ctx.variables, None),
            facts: RefFacts::new(&ctx.pipeline_source, &VarsLookup(&ctx.variables)),
            index: JobIndex::new(&pipeline.jobs),
            has_workflow_rules: pipeline
                .workflow
                .as_ref()
                .is_some_and(|w| w.rules.is_some()),
        }
    }

    pub(crate) fn workflow(&self, trace: Option<&mut Vec<RuleTrace>>) -> WorkflowResult<'p> {
        evaluate_workflow(self.pipeline, &self.base, &self.env, trace)
    }

    fn run(mut self) -> Result<Plan, Diagnostics> {
        let workflow = self.workflow(None);
        self.base.pipeline_name = workflow.name.clone();
        self.pipeline_vars = PipelineVars::new(&self.ctx.variables, workflow.name.as_deref());
        let mut plan = Plan {
            schema_version: SCHEMA_VERSION,
            created: workflow.passed,
            reason: None,
            workflow: WorkflowOutcome {
                name: workflow.name.clone(),
                decided_by: workflow.decided_by.clone(),
            },
            git_ref: self
                .ctx
                .variables
                .lookup("CI_COMMIT_REF_NAME")
                .unwrap_or("")
                .to_string(),
            pipeline_source: self.ctx.pipeline_source.clone(),
            stages: Vec::new(),
            jobs: Vec::new(),
            skipped: Vec::new(),
            warnings: Vec::new(),
        };
        if !workflow.passed {
            plan.reason = Some(FILTERED_OUT.to_string());
            plan.warnings = self.env.take_warnings();
            return Ok(plan);
        }
        self.duplicate_pipeline_warnings(&mut plan.warnings);

        let instances = expand_instances(&self.pipeline.jobs);
        let mut diags = Diagnostics::default();
        let mut included: Vec<Included<'_, 'p>> = Vec::new();
        for inst in &instances {
            let job_predefined = job_variables(&inst.name, &inst.job.stage, inst.node, false);
            match self.decide(inst, &workflow, &job_predefined, None) {
                Ok(Verdict::Included { decided_by, rule }) => included.push(Included {
                    inst,
                    rule,
                    decided_by,
                    job_predefined,
                }),
                Ok(Verdict::Excluded { reason, decided_by }) => plan.skipped.push(SkippedJob {
                    name: inst.name.clone(),
                    reason,
                    decided_by,
                }),
                Err(d) => diags.push(d),
            }
        }

        let present: HashSet<&str> = included.iter().map(|i| i.inst.name.as_str()).collect();
        for job in &included {
            if let Some(job) = self.planned_job(job, &workflow, &present, &mut diags) {
                plan.jobs.push(job);
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        plan.stages = arrange(&self.pipeline.stages, &mut plan.jobs);
        if is_empty_pipeline(&plan.stages) {
            plan.created = false;
            plan.reason = Some(NO_JOBS.to_string());
        }
        plan.warnings.extend(self.env.take_warnings());
        Ok(plan)
    }

    /// Rule 79: a last rule with only `when` and no `workflow:rules`.
    fn duplicate_pipeline_warnings(&self, warnings: &mut Vec<String>) {
        if self.has_workflow_rules {
            return;
        }
        for job in &self.pipeline.jobs {
            if job
                .rules
                .as_ref()
                .and_then(|r| r.last())
                .is_some_and(is_bare_when)
            {
                warnings.push(format!(
                    "jobs:{} may allow multiple pipelines to run for a single action due to \
                     `rules:when` clause with no `workflow:rules` - read more: \
                     https://docs.gitlab.com/ee/ci/troubleshooting.html#pipeline-warnings",
                    job.name
                ));
            }
        }
    }

    /// The YAML variables `inst` inherits and defines, in merge order:
    /// top-level and workflow ones it inherits (rule 33), then its own with
    /// matrix values replacing same-named ones (rule 226).
    fn yaml_layers<'s>(
        &'s self,
        inst: &'s Instance<'p>,
        workflow: &'s WorkflowResult<'p>,
    ) -> YamlLayers<'s> {
        let inherits = |d: &&VariableDef| inst.job.inherit.variables.includes(&d.name);
        let top: Vec<&VariableDef> = self.pipeline.variables.iter().filter(inherits).collect();
        let flow: Vec<&VariableDef> = workflow.variables.iter().filter(inherits).collect();
        let mut own: Vec<(&str, &str, bool)> = inst
            .job
            .variables
            .iter()
            .map(|d| (d.name.as_str(), d.value.as_str(), !d.expand))
            .collect();
        for (key, value) in inst.matrix.iter().flatten() {
            match own.iter_mut().find(|(k, _, _)| *k == key.as_str()) {
                Some(slot) => *slot = (key, value, false),
                None => own.push((key, value, false)),
            }
        }
        YamlLayers { top, flow, own }
    }

    /// The variables `rules`, `only` and `except` see for `inst`: no rule
    /// variables, no job-only predefined variables (rule 119).
    fn rule_scope<'s>(
        &'s self,
        inst: &'s Instance<'p>,
        workflow: &'s WorkflowResult<'p>,
        job_predefined: &'s Variables,
    ) -> RuleScope<'s, 'c> {
        let YamlLayers { top, flow, own } = self.yaml_layers(inst, workflow);
        let mut scope = RuleScope {
            base: &self.base,
            yaml: Vec::with_capacity(top.len() + flow.len() + own.len()),
            job: Some(job_predefined),
        };
        scope.push_defs(top);
        scope.push_defs(flow);
        scope.yaml.extend(own.iter().map(|(k, v, _)| (*k, *v)));
        scope
    }

    /// Decides whether `inst` is created (rules 78-93, 121-127).
    /// `job_predefined` are the job's own predefined variables
    /// (`job_variables`), which rules can see.
    pub(crate) fn decide(
        &self,
        inst: &Instance<'p>,
        workflow: &WorkflowResult<'p>,
        job_predefined: &Variables,
        mut trace: Option<&mut JobTrace>,
    ) -> Result<Verdict<'p>, Diagnostic> {
        let job = inst.job;
        let scope = self.rule_scope(inst, workflow, job_predefined);

        if let Some(rules) = &job.rules {
            let expanded = LazyExpanded::new(|| {
                let texts = rule_path_texts(rules);
                let values = self
                    .expanded(
                        inst,
                        workflow,
                        job_predefined,
                        &[],
                        &texts,
                        ExpandOptions::GITLAB_DEFAULT,
                    )
                    .map(ExpandedJobVars::into_values)
                    .unwrap_or_default();
                ExpandedVars::from_values(values)
            });
            let expand = |text: &str| expanded.expand_existing(text);
            let input = RuleInput {
                scope: &scope,
                expand: &expand,
            };
            let traces = trace.as_deref_mut().map(|t| &mut t.rules);
            let found = first_match(rules, &input, &self.env, traces).map_err(|e| {
                Diagnostic::config(
                    self.rule_span(Some(rules), &e),
                    format!("Failed to parse rule for {}: {}", inst.name, e.message),
                )
            })?;
            return Ok(match found {
                Some((index, rule)) => {
                    let decided_by = DecidedBy {
                        kind: DecisionKind::Rule,
                        index: Some(index),
                        text: rule_text(rule),
                        span: rule.span,
                        location: self.ctx.location(rule.span),
                    };
                    if rule.when == Some(When::Never) {
                        Verdict::Excluded {
                            reason: format!("rule {}: when: never", index + 1),
                            decided_by,
                        }
                    } else {
                        Verdict::Included {
                            decided_by,
                            rule: Some(rule),
                        }
                    }
                }
                None => Verdict::Excluded {
                    reason: "no rule matched".to_string(),
                    decided_by: DecidedBy::default_with("no rule matched"),
                },
            });
        }

        // Without `rules`, `only` defaults to branches and tags unless the
        // pipeline has `workflow:rules` (rules 78, 123).
        let default_only;
        let only = match (&job.only, self.has_workflow_rules) {
            (Some(only), _) => Some(only),
            (None, false) => {
                default_only = OnlyExcept::default_only();
                Some(&default_only)
            }
            (None, true) => None,
        };
        if only.is_none() && job.except.is_none() {
            return Ok(Verdict::Included {
                decided_by: DecidedBy::default_with("no rules, only or except"),
                rule: None,
            });
        }
        let implicit = job.only.is_none();
        let span = job.span;
        let decided = |text: String| DecidedBy {
            kind: DecisionKind::OnlyExcept,
            index: None,
            text,
            span,
            location: self.ctx.location(span),
        };
        if let Some(only) = only {
            let outcome = evaluate_policy(only, false, &self.facts, &scope, &self.env);
            let text = format!(
                "only: {}{}",
                policy_text(only),
                if implicit { " (default)" } else { "" }
            );
            let satisfied = outcome.satisfied;
            let detail = outcome.details.join("; ");
            if let Some(t) = trace.as_deref_mut() {
                t.only = Some(outcome);
            }
            if !satisfied {
                return Ok(Verdict::Excluded {
                    reason: format!("{text} does not match ({detail})"),
                    decided_by: decided(text),
                });
            }
        }
        if let Some(except) = &job.except {
            let outcome = evaluate_policy(except, true, &self.facts, &scope, &self.env);
            let text = format!("except: {}", policy_text(except));
            let satisfied = outcome.satisfied;
            let detail = outcome.details.join("; ");
            if let Some(t) = trace {
                t.except = Some(outcome);
            }
            if satisfied {
                return Ok(Verdict::Excluded {
                    reason: format!("{text} matches ({detail})"),
                    decided_by: decided(text),
                });
            }
        }
        let text = match only {
            Some(only) => format!(
                "only: {}{}",
                policy_text(only),
                if implicit { " (default)" } else { "" }
            ),
            None => format!(
                "except: {}",
                job.except.as_ref().map(policy_text).unwrap_or_default()
            ),
        };
        Ok(Verdict::Included {
            decided_by: decided(text),
            rule: None,
        })
    }

    /// The job's own variables and the pipeline's user variables, by
    /// layer: inherited top-level and workflow ones, the job's with its
    /// matrix values, the matching rule's, then `--var` (rules 182-183).
    fn user_variables(
        &self,
        inst: &Instance<'p>,
        workflow: &WorkflowResult<'p>,
        rule_vars: &[VariableDef],
    ) -> Vec<Variable> {
        let YamlLayers { top, flow, own } = self.yaml_layers(inst, workflow);
        let mut user: Vec<Variable> = defs_to_vars(top, VarSource::TopLevel).collect();
        user.extend(defs_to_vars(flow, VarSource::WorkflowRules));
        user.extend(
            own.iter()
                .map(|(k, v, raw)| Variable::new(*k, *v, VarSource::Job).with_raw(*raw)),
        );
        user.extend(defs_to_vars(rule_vars, VarSource::RulesVariables));
        user.extend(self.pipeline_vars.user().cloned());
        user
    }

    /// The job's variables expanded as GitLab does, with `extra` keyword
    /// values whose references must be resolved too.
    fn expanded(
        &self,
        inst: &Instance<'p>,
        workflow: &WorkflowResult<'p>,
        job_predefined: &Variables,
        rule_vars: &[VariableDef],
        extra: &[&str],
        opts: ExpandOptions,
    ) -> Result<ExpandedJobVars, CycleError> {
        let user = self.user_variables(inst, workflow, rule_vars);
        ExpandedJobVars::new(job_predefined, &self.pipeline_vars, user, extra, opts)
    }

    /// The created job's attributes: rule overrides applied (rules 83-99),
    /// needs resolved, variables expanded as GitLab sends them.
    fn planned_job(
        &self,
        included: &Included<'_, 'p>,
        workflow: &WorkflowResult<'p>,
        present: &HashSet<&str>,
        diags: &mut Diagnostics,
    ) -> Option<PlannedJob> {
        let Included {
            inst,
            rule,
            decided_by,
            job_predefined,
        } = included;
        let (inst, rule) = (*inst, *rule);
        let job: &Job = inst.job;
        let when = rule.and_then(|r| r.when).unwrap_or(job.when);
        // The default comes from the job-level `when` even when a rule
        // makes the job manual: rules-manual jobs block (rules 86, 131).
        let (allow_failure, exit_codes) =
            match (rule.and_then(|r| r.allow_failure), &job.allow_failure) {
                (Some(b), _) => (b, None),
                (None, Some(AllowFailure::Bool(b))) => (*b, None),
                (None, Some(AllowFailure::ExitCodes { exit_codes })) => {
                    (false, Some(exit_codes.clone()))
                }
                (None, None) => (job.when == When::Manual, None),
            };
        let needs_source = rule
            .and_then(|r| r.needs.as_deref())
            .or(job.needs.as_deref());
        let needs = needs_source.map(|needs| {
            for need in external_needs(needs) {
                self.env.warn(format!(
                    "{}: {need} is not waited for in a local pipeline",
                    inst.name
                ));
            }
            let own = |name: &str| {
                let matrix = inst.matrix.iter().flatten();
                let defined = inst.job.variables.iter().map(|d| (&d.name, &d.value));
                matrix
                    .map(|(k, v)| (k, v))
                    .chain(defined)
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.clone())
            };
            let needing = NeedingJob {
                name: &inst.name,
                config_name: &inst.job.name,
                own: &own,
            };
            resolve_needs(&needing, needs, &self.index, present, diags)
        });
        let rule_vars: &[VariableDef] = rule.map(|r| r.variables.as_slice()).unwrap_or(&[]);
        let image_name = job.image.as_ref().map(|i| i.name.as_str());
        let extra: Vec<&str> = image_name.into_iter().collect();
        // Only a manual job has `CI_JOB_MANUAL`.
        let manual_predefined;
        let job_predefined = if when == When::Manual {
            manual_predefined = job_variables(&inst.name, &job.stage, inst.node, true);
            &manual_predefined
        } else {
            job_predefined
        };
        let expanded = match self.expanded(
            inst,
            workflow,
            job_predefined,
            rule_vars,
            &extra,
            ExpandOptions::FOR_RUNNER,
        ) {
            Ok(v) => v,
            Err(cycle) => {
                diags.push(Diagnostic::config(
                    job.span,
                    format!("{}: {cycle}", inst.name),
                ));
                return None;
            }
        };
        // Tags are expanded by GitLab against the variables the rules saw
        // (no rule variables), keeping unknown names (rule 189).
        let scope = self.rule_scope(inst, workflow, job_predefined);
        let tags = job
            .tags
            .iter()
            .map(|t| expand_gitlab(t, |k| scope.lookup(k)))
            .collect();
        // The runner expands `image` against the variables it received.
        let image = image_name
            .map(|name| expand_runner(name, |k| expanded.get(k).or_else(|| scope.lookup(k))));
        let variables = expanded.user_pairs();
        Some(PlannedJob {
            name: inst.name.clone(),
            stage: job.stage.clone(),
            when,
            start_in: rule
                .and_then(|r| r.start_in.clone())
                .or_else(|| job.start_in.clone()),
            allow_failure,
            allow_failure_exit_codes: exit_codes,
            needs,
            dependencies: job
                .dependencies
                .as_ref()
                .map(|d| expand_dependencies(d, &self.index)),
            image,
            tags,
            variables,
            decided_by: decided_by.clone(),
            parallel: inst
                .node
                .map(|(index, total)| ParallelIndex { index, total }),
            matrix: inst.matrix.clone(),
            trigger: job.kind == JobKind::Trigger,
            interruptible: rule.and_then(|r| r.interruptible).or(job.interruptible),
            retry: job.retry.clone(),
            timeout: job
                .timeout
                .as_deref()
                .and_then(crate::ci::model::duration::parse_duration)
                .map(|d| d.as_secs()),
            source_index: inst.job_index,
        })
    }

    /// Where the rule an error is about is written.
    fn rule_span(&self, rules: Option<&[Rule]>, e: &RuleError) -> crate::ci::source::Span {
        rules
            .and_then(|r| r.get(e.index))
            .map(|r| r.span)
            .unwrap_or_default()
    }

    /// The instances of the pipeline, for `--why`.
    pub(crate) fn instances(&self) -> Vec<Instance<'p>> {
        expand_instances(&self.pipeline.jobs)
    }
}
