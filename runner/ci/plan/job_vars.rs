//! A job's variables as GitLab sends them: its YAML and pipeline variables
//! in precedence order (rules 182-183), expanded by GitLab's
//! `sort_and_expand_all` against the whole set, predefined ones included.
//!
//! Expanding all ~150 variables of every job would dominate planning time,
//! so only the variables that matter are expanded: the user's own, plus
//! every variable they (or a keyword such as `image`) refer to,
//! transitively. A variable's expansion only ever reads the variables it
//! refers to, so the values are the same as expanding everything.

use std::collections::{HashMap, HashSet};

use crate::ci::variables::{
    CycleError, ExpandOptions, VarSource, Variable, Variables, sort_and_expand_all,
};

/// The pipeline's variables indexed by name, built once per plan.
pub(crate) struct PipelineVars<'a> {
    /// Every entry of the context's set, in order.
    all: Vec<&'a Variable>,
    by_key: HashMap<&'a str, Vec<usize>>,
    /// `CI_PIPELINE_NAME` from `workflow:name`, when the context lacks it.
    pipeline_name: Option<Variable>,
}

impl<'a> PipelineVars<'a> {
    pub(crate) fn new(all: &'a Variables, workflow_name: Option<&str>) -> PipelineVars<'a> {
        let mut by_key: HashMap<&str, Vec<usize>> = HashMap::with_capacity(all.len());
        for (i, v) in all.iter().enumerate() {
            by_key.entry(v.key.as_str()).or_default().push(i);
        }
        let pipeline_name = workflow_name
            .filter(|_| !by_key.contains_key("CI_PIPELINE_NAME"))
            .map(|n| Variable::new("CI_PIPELINE_NAME", n, VarSource::Predefined));
        PipelineVars {
            all: all.iter().collect(),
            by_key,
            pipeline_name,
        }
    }

    /// The user's pipeline variables (`--var` and other sources above the
    /// YAML ones), in order.
    pub(crate) fn user(&self) -> impl Iterator<Item = &'a Variable> + '_ {
        self.all
            .iter()
            .copied()
            .filter(|v| v.source > VarSource::RulesVariables)
    }

    /// The predefined entries of the keys in `names`, in the context's
    /// order (looked up by key: a job needs a handful of the ~150).
    fn predefined_in_order(&self, names: &[&str]) -> impl Iterator<Item = &Variable> {
        let mut indices: Vec<usize> = names
            .iter()
            .filter_map(|n| self.by_key.get(n))
            .flatten()
            .copied()
            .collect();
        indices.sort_unstable();
        indices
            .into_iter()
            .map(|i| self.all[i])
            .filter(|v| v.source <= VarSource::RulesVariables)
            .chain(
                self.pipeline_name
                    .iter()
                    .filter(|v| names.contains(&v.key.as_str())),
            )
    }

    fn predefined_with_key(&self, key: &str) -> impl Iterator<Item = &Variable> {
        let from_ctx = self
            .by_key
            .get(key)
            .into_iter()
            .flatten()
            .map(|&i| self.all[i])
            .filter(|v| v.source <= VarSource::RulesVariables);
        from_ctx.chain(self.pipeline_name.iter().filter(move |v| v.key == key))
    }
}

/// GitLab's order of a job's user variables (`in_precedence_order` for
/// sets without predefined entries), without copying the set eight times:
/// the YAML layers merged key by key with the newest layer first, then
/// dotenv, project and pipeline variables stacked (rules 182-183).
fn precedence_order(user: Vec<Variable>) -> Vec<Variable> {
    let mut slots: Vec<Option<Variable>> = user.into_iter().map(Some).collect();
    let mut seen: HashSet<String> = HashSet::with_capacity(slots.len());
    let mut out: Vec<Variable> = Vec::with_capacity(slots.len());
    let yaml = [
        VarSource::RulesVariables,
        VarSource::Job,
        VarSource::WorkflowRules,
        VarSource::TopLevel,
    ];
    let stacked = [VarSource::Dotenv, VarSource::Project, VarSource::Pipeline];
    for source in yaml.into_iter().chain(stacked) {
        for slot in slots.iter_mut() {
            let Some(v) = slot.take_if(|v| v.source == source) else {
                continue;
            };
            // YAML layers replace each other key by key; the others stack.
            if !yaml.contains(&source) || seen.insert(v.key.clone()) {
                out.push(v);
            }
        }
    }
    out
}

/// Names that `text` may refer to: every name after `$`, inside `${...}`
/// or between `%...%`. A superset of what GitLab's expansion reads, which
/// is all the closure below needs.
fn referenced_names(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let name_len = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count()
    };
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let c = bytes[i];
            i += 1;
            let start = match c {
                b'$' if bytes.get(i) == Some(&b'{') => i + 1,
                b'$' | b'%' => i,
                _ => continue,
            };
            let n = name_len(start);
            if n > 0 {
                i = start + n;
                return Some(&text[start..start + n]);
            }
        }
        None
    })
}

/// The expanded values of a job's variables.
pub(crate) struct ExpandedJobVars {
    /// The expanded subset; small enough to search linearly, the last
    /// entry of a key winning as in `Variables::lookup`.
    expanded: Variables,
    /// The user's variable names, in the order GitLab lists them.
    order: Vec<String>,
}

impl ExpandedJobVars {
    /// Expands `user` (the job's YAML variables and the pipeline's user
    /// variables) against the job's predefined variables `job` and the
    /// pipeline's. `extra` are keyword values (an image name) whose
    /// references must be expanded too.
    pub(crate) fn new(
        job: &Variables,
        pipeline: &PipelineVars<'_>,
        user: Vec<Variable>,
        extra: &[&str],
        opts: ExpandOptions,
    ) -> Result<ExpandedJobVars, CycleError> {
        let user = precedence_order(user);
        // A job refers to a handful of names: a list beats hashing.
        let mut needed: Vec<&str> = Vec::new();
        let mut queue: Vec<&str> = Vec::new();
        fn want<'t>(text: &'t str, needed: &mut Vec<&'t str>, queue: &mut Vec<&'t str>) {
            for name in referenced_names(text) {
                if !needed.contains(&name) {
                    needed.push(name);
                    queue.push(name);
                }
            }
        }
        // Start from the user's values and the keyword values, then follow
        // references through every variable, predefined ones included.
        let mut texts: Vec<&str> = user
            .iter()
            .filter(|v| !v.raw)
            .map(|v| v.value.as_str())
            .collect();
        texts.extend_from_slice(extra);
        for text in texts {
            want(text, &mut needed, &mut queue);
        }
        while let Some(name) = queue.pop() {
            let defs = job
                .iter()
                .filter(|v| v.key == name)
                .chain(pipeline.predefined_with_key(name))
                .chain(user.iter().filter(|v| v.key == name));
            for v in defs.filter(|v| !v.raw) {
                want(&v.value, &mut needed, &mut queue);
            }
        }

        // Predefined variables come first in GitLab's order (the job's,
        // then the pipeline's), then the user's in precedence order.
        let mut subset: Vec<Variable> = job
            .iter()
            .filter(|v| needed.contains(&v.key.as_str()))
            .cloned()
            .collect();
        subset.extend(pipeline.predefined_in_order(&needed).cloned());
        let mut seen = HashSet::new();
        let order: Vec<String> = user
            .iter()
            .filter(|v| seen.insert(v.key.as_str()))
            .map(|v| v.key.clone())
            .collect();
        subset.extend(user);
        let expanded = sort_and_expand_all(&subset.into_iter().collect(), opts)?;
        Ok(ExpandedJobVars { expanded, order })
    }

    /// The value of a variable that was expanded (a user variable or one
    /// they refer to).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.expanded.lookup(name)
    }

    /// Every expanded value by name.
    pub(crate) fn into_values(self) -> HashMap<String, String> {
        self.expanded
            .iter()
            .map(|v| (v.key.clone(), v.value.clone()))
            .collect()
    }

    /// The user's variables with their expanded values, in GitLab's order.
    pub(crate) fn user_pairs(&self) -> Vec<(String, String)> {
        self.order
            .iter()
            .map(|k| (k.clone(), self.get(k).unwrap_or("").to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_183_precedence_order_matches_the_variable_set() {
        let vars = [
            ("A", VarSource::TopLevel),
            ("B", VarSource::TopLevel),
            ("A", VarSource::WorkflowRules),
            ("C", VarSource::Pipeline),
            ("B", VarSource::Job),
            ("D", VarSource::Job),
            ("A", VarSource::RulesVariables),
            ("C", VarSource::Job),
        ];
        let user: Vec<Variable> = vars
            .iter()
            .enumerate()
            .map(|(i, (k, s))| Variable::new(*k, i.to_string(), *s))
            .collect();
        let expected: Vec<Variable> = user
            .iter()
            .cloned()
            .collect::<Variables>()
            .in_precedence_order()
            .iter()
            .cloned()
            .collect();
        assert_eq!(precedence_order(user), expected);
    }

    #[test]
    fn referenced_names_cover_every_reference_form() {
        let names: Vec<&str> = referenced_names("$A ${B}x %C% $$D $ %").collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
    }

    #[test]
    fn rule_180_expansion_follows_references_into_predefined_variables() {
        let mut ctx = Variables::new();
        ctx.set(
            "CI_REGISTRY_IMAGE",
            "registry/$CI_PROJECT_PATH",
            VarSource::Predefined,
        );
        ctx.set("CI_PROJECT_PATH", "group/project", VarSource::Predefined);
        ctx.set("UNRELATED", "$NOPE", VarSource::Predefined);
        ctx.set("MODE", "cli", VarSource::Pipeline);
        let pipeline = PipelineVars::new(&ctx, None);
        let job = Variables::new();
        let mut user: Vec<Variable> = pipeline.user().cloned().collect();
        user.push(Variable::new(
            "IMAGE",
            "$CI_REGISTRY_IMAGE:$MODE",
            VarSource::Job,
        ));
        user.push(Variable::new("RAW", "$MODE", VarSource::Job).with_raw(true));
        let out =
            ExpandedJobVars::new(&job, &pipeline, user, &[], ExpandOptions::FOR_RUNNER).unwrap();
        assert_eq!(
            out.user_pairs(),
            [
                (
                    "IMAGE".to_string(),
                    "registry/group/project:cli".to_string()
                ),
                ("RAW".into(), "$MODE".into()),
                ("MODE".into(), "cli".into())
            ]
        );
        assert_eq!(out.get("UNRELATED"), None);
    }

    #[test]
    fn rule_181_a_job_variable_referring_to_its_own_name_stays_literal() {
        let ctx = Variables::new();
        let pipeline = PipelineVars::new(&ctx, None);
        let user = vec![
            Variable::new("MY_VAR", "default", VarSource::TopLevel),
            Variable::new("MY_VAR", "$MY_VAR", VarSource::Job),
        ];
        let out = ExpandedJobVars::new(
            &Variables::new(),
            &pipeline,
            user,
            &[],
            ExpandOptions::FOR_RUNNER,
        )
        .unwrap();
        assert_eq!(out.get("MY_VAR"), Some("$MY_VAR"));
    }

    #[test]
    fn variable_cycles_are_errors() {
        let ctx = Variables::new();
        let pipeline = PipelineVars::new(&ctx, None);
        let user = vec![
            Variable::new("A", "$B", VarSource::Job),
            Variable::new("B", "$A", VarSource::Job),
        ];
        let err = ExpandedJobVars::new(
            &Variables::new(),
            &pipeline,
            user,
            &[],
            ExpandOptions::FOR_RUNNER,
        );
        assert!(err.is_err());
    }
}
