//! Expanding a whole variable set: GitLab's pass before a job reaches a
//! runner (`Collection#sort_and_expand_all`), and the runner's own pass.
//!
//! GitLab does not recurse into values. It sorts the variables so that
//! every variable comes after the ones it refers to (a topological sort
//! over "refers to a key" edges, Ruby's `TSort`), then expands each value
//! once against the variables already expanded. Nested references are
//! therefore resolved in one sweep (rule 180), a self-reference such as
//! `MY_VAR: $MY_VAR` finds nothing earlier and is kept as written
//! (rule 181), and a cycle between two or more variables is an error that
//! fails the pipeline. Nothing here can loop: each variable is expanded
//! exactly once.

use std::collections::HashMap;
use std::fmt;

use super::expand::{Dialect, Token, expand_runner, references, tokenize};
use super::set::{Variable, Variables};

/// A value never grows past this many bytes by expansion. GitLab has no such
/// limit, but `A: $B$B`, `B: $C$C`, ... doubles at every step, and an
/// expansion must not be able to exhaust memory. References that would cross
/// it are left as written.
pub const MAX_EXPANDED_LEN: usize = 1 << 20;

/// The switches of GitLab's `sort_and_expand_all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpandOptions {
    /// Keep a reference to an unknown variable as written (otherwise it
    /// becomes empty).
    pub keep_undefined: bool,
    /// Replace a reference to a file variable by its content (otherwise it
    /// is kept, so that the runner turns it into the file's path).
    pub expand_file_refs: bool,
    /// Replace a reference to a raw (`expand: false`) variable by its value
    /// (otherwise it is kept, so that the runner expands it knowing it is raw).
    pub expand_raw_refs: bool,
}

impl ExpandOptions {
    /// What GitLab applies to the variables it sends to a runner
    /// (`BuildRunnerPresenter#runner_variables`).
    pub const FOR_RUNNER: ExpandOptions = ExpandOptions {
        keep_undefined: true,
        expand_file_refs: false,
        expand_raw_refs: false,
    };

    /// The defaults of `sort_and_expand_all`, used where GitLab expands a
    /// keyword against a job's variables and to detect cycles.
    pub const GITLAB_DEFAULT: ExpandOptions = ExpandOptions {
        keep_undefined: false,
        expand_file_refs: true,
        expand_raw_refs: true,
    };
}

/// Two or more variables refer to each other. GitLab reports it as the job
/// error `<job name>: circular variable reference detected: ["A", "B"]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CycleError {
    /// The keys of each cycle, in the order GitLab lists them.
    pub cycles: Vec<Vec<String>>,
}

impl fmt::Display for CycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("circular variable reference detected: ")?;
        for (i, cycle) in self.cycles.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            // Ruby's `Array#inspect` of strings: ["A", "B"].
            let keys: Vec<String> = cycle.iter().map(|k| format!("{k:?}")).collect();
            write!(f, "[{}]", keys.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for CycleError {}

/// The keys a variable's value refers to, or `None` when GitLab does not
/// look inside it (`Item#depends_on`): raw values, and values without a `$`
/// or `%`.
fn depends_on(var: &Variable) -> Option<Vec<&str>> {
    if var.raw || !var.value.contains(['$', '%']) {
        return None;
    }
    Some(references(&var.value))
}

#[derive(Clone, Copy)]
enum Visit {
    New,
    Open(usize),
    Done,
}

/// Ruby's `TSort.each_strongly_connected_component` over the variables,
/// where a variable's children are all entries of each key it refers to.
/// Components come out in the order Ruby yields them.
fn strongly_connected(children: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut state = vec![Visit::New; children.len()];
    let mut next_id = 0;
    let mut stack: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    // Frame: node, next child to look at, lowest id reached, stack height.
    let mut frames: Vec<(usize, usize, usize, usize)> = Vec::new();
    for root in 0..children.len() {
        if !matches!(state[root], Visit::New) {
            continue;
        }
        state[root] = Visit::Open(next_id);
        frames.push((root, 0, next_id, stack.len()));
        stack.push(root);
        next_id += 1;
        while let Some(frame) = frames.last_mut() {
            let (node, pos, _, _) = *frame;
            if let Some(&child) = children[node].get(pos) {
                frame.1 += 1;
                match state[child] {
                    Visit::Open(id) => frame.2 = frame.2.min(id),
                    Visit::Done => {}
                    Visit::New => {
                        state[child] = Visit::Open(next_id);
                        frames.push((child, 0, next_id, stack.len()));
                        stack.push(child);
                        next_id += 1;
                    }
                }
                continue;
            }
            let Some((node, _, low, height)) = frames.pop() else {
                break;
            };
            if matches!(state[node], Visit::Open(id) if id == low) {
                let component = stack.split_off(height);
                for &n in &component {
                    state[n] = Visit::Done;
                }
                out.push(component);
            }
            if let Some(parent) = frames.last_mut() {
                parent.2 = parent.2.min(low);
            }
        }
    }
    out
}

/// GitLab's `sort_and_expand_all`: every variable that refers to others is
/// expanded once, after the variables it refers to, against the variables
/// already expanded. The result lists the variables in that sorted order
/// (which is what GitLab sends to the runner).
///
/// `$$`, `%%` and `${}` are left for the runner (rule 179). Raw variables
/// are copied as they are (rule 178). A reference to a name that no earlier
/// variable defines is kept or dropped per `opts.keep_undefined` (rule 180).
/// A cycle of two or more variables is an error; a variable referring to its
/// own key only sees earlier entries of that key (rule 181).
pub fn sort_and_expand_all(vars: &Variables, opts: ExpandOptions) -> Result<Variables, CycleError> {
    let items: Vec<&Variable> = vars.iter().collect();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, v) in items.iter().enumerate() {
        by_key.entry(v.key.as_str()).or_default().push(i);
    }
    let deps: Vec<Option<Vec<&str>>> = items.iter().map(|v| depends_on(v)).collect();
    let children: Vec<Vec<usize>> = deps
        .iter()
        .map(|d| {
            d.iter()
                .flatten()
                .filter_map(|k| by_key.get(k))
                .flatten()
                .copied()
                .collect()
        })
        .collect();

    let components = strongly_connected(&children);
    let cycles: Vec<Vec<String>> = components
        .iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.iter().map(|&i| items[i].key.clone()).collect())
        .collect();
    if !cycles.is_empty() {
        return Err(CycleError { cycles });
    }

    let mut done: Vec<Variable> = Vec::with_capacity(items.len());
    let mut last: HashMap<&str, usize> = HashMap::new();
    for component in &components {
        for &i in component {
            let mut var = items[i].clone();
            if deps[i].is_some() {
                var.value = expand_value(&var.value, &done, &last, opts);
            }
            last.insert(items[i].key.as_str(), done.len());
            done.push(var);
        }
    }
    Ok(done.into_iter().collect())
}

/// `Collection#expand_value`: one pass over `value` against the variables
/// expanded so far (`last` maps a key to its latest entry in `done`).
fn expand_value(
    value: &str,
    done: &[Variable],
    last: &HashMap<&str, usize>,
    opts: ExpandOptions,
) -> String {
    let mut out = String::with_capacity(value.len());
    for token in tokenize(value, Dialect::Collection) {
        let piece = match token {
            Token::Literal(t) | Token::Escape(t) => t,
            Token::Ref { name, text } => match last.get(name).map(|&i| &done[i]) {
                Some(v) if v.file && !opts.expand_file_refs => text,
                Some(v) if v.raw && !v.file && !opts.expand_raw_refs => text,
                Some(v) if out.len() + v.value.len() > MAX_EXPANDED_LEN => text,
                Some(v) => v.value.as_str(),
                None if opts.keep_undefined => text,
                None => "",
            },
        };
        out.push_str(piece);
    }
    out
}

/// The runner's pass over a job's variables (`Variables.Expand`): every
/// non-raw value is expanded once with `os.Expand` semantics against the
/// list as received, the last entry of a key winning (rule 190). File
/// variables expand to their value here; the runner, which writes them to
/// disk, substitutes their path.
pub fn expand_all_for_runner(vars: &Variables) -> Variables {
    vars.iter()
        .map(|v| {
            let mut v = v.clone();
            if !v.raw {
                v.value = expand_runner(&v.value, |k| vars.lookup(k));
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::set::VarSource;
    use super::*;
    use proptest::prelude::*;

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        pairs
            .iter()
            .map(|(k, v)| Variable::new(*k, *v, VarSource::Job))
            .collect()
    }

    fn runner_view(v: &Variables) -> Variables {
        sort_and_expand_all(v, ExpandOptions::FOR_RUNNER).expect("no cycle")
    }

    #[test]
    fn rule_180_nested_references_resolve_in_any_order() {
        let v = vars(&[("C", "$B-c"), ("B", "${A}-b"), ("A", "a")]);
        let out = runner_view(&v);
        assert_eq!(out.lookup("C"), Some("a-b-c"));
        assert_eq!(out.lookup("B"), Some("a-b"));
        // Sorted: dependencies first.
        let keys: Vec<&str> = out.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["A", "B", "C"]);
    }

    #[test]
    fn rule_180_unknown_references_are_kept_for_the_runner() {
        let out = runner_view(&vars(&[("A", "x-$UNKNOWN-%ALSO%")]));
        assert_eq!(out.lookup("A"), Some("x-$UNKNOWN-%ALSO%"));
        let blank =
            sort_and_expand_all(&vars(&[("A", "x-$UNKNOWN")]), ExpandOptions::GITLAB_DEFAULT)
                .unwrap();
        assert_eq!(blank.lookup("A"), Some("x-"));
    }

    #[test]
    fn rule_193_percent_form_expands_on_gitlab_side() {
        let out = runner_view(&vars(&[("A", "a"), ("B", "%A%/${A}/$A")]));
        assert_eq!(out.lookup("B"), Some("a/a/a"));
    }

    #[test]
    fn rule_179_double_dollar_survives_gitlab_and_the_runner_makes_it_one() {
        let out = runner_view(&vars(&[("A", "a"), ("PRICE", "$$A costs $$5")]));
        assert_eq!(out.lookup("PRICE"), Some("$$A costs $$5"));
        let final_ = expand_all_for_runner(&out);
        assert_eq!(final_.lookup("PRICE"), Some("$A costs $5"));
    }

    #[test]
    fn rule_178_raw_values_are_not_expanded_and_references_to_them_are_deferred() {
        let v: Variables = [
            Variable::new("A", "normal", VarSource::Job),
            Variable::new("B", "raw-$A", VarSource::Job).with_raw(true),
            Variable::new("C", "$B", VarSource::Job),
        ]
        .into_iter()
        .collect();
        let out = runner_view(&v);
        assert_eq!(out.lookup("B"), Some("raw-$A"));
        // Kept as `$B` so the runner, which knows B is raw, resolves it.
        assert_eq!(out.lookup("C"), Some("$B"));
        let gitlab_default = sort_and_expand_all(&v, ExpandOptions::GITLAB_DEFAULT).unwrap();
        assert_eq!(gitlab_default.lookup("C"), Some("raw-$A"));
    }

    #[test]
    fn file_variable_references_are_left_for_the_runner() {
        let v: Variables = [
            Variable::new("KUBECONFIG", "apiVersion: v1", VarSource::Project).with_file(true),
            Variable::new("ARG", "--kubeconfig=$KUBECONFIG", VarSource::Job),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            runner_view(&v).lookup("ARG"),
            Some("--kubeconfig=$KUBECONFIG")
        );
    }

    #[test]
    fn rule_181_job_variable_of_the_same_name_hides_the_default() {
        let mut v: Variables = [Variable::new("MY_VAR", "default", VarSource::TopLevel)]
            .into_iter()
            .collect();
        v.push(Variable::new("MY_VAR", "$MY_VAR", VarSource::Job));
        let out = runner_view(&v.in_precedence_order());
        assert_eq!(out.lookup("MY_VAR"), Some("$MY_VAR"));
    }

    #[test]
    fn self_reference_sees_an_earlier_layer_of_the_same_key() {
        // A predefined variable is stacked, not merged, so a YAML value that
        // refers to its own key extends it.
        let mut v = Variables::new();
        v.set("PATH_PART", "base", VarSource::Predefined);
        v.set("PATH_PART", "$PATH_PART/more", VarSource::Job);
        let out = runner_view(&v.in_precedence_order());
        assert_eq!(out.lookup("PATH_PART"), Some("base/more"));
    }

    #[test]
    fn cycles_are_reported_like_gitlab() {
        let err = sort_and_expand_all(
            &vars(&[("A", "$B"), ("B", "${A}"), ("C", "ok")]),
            ExpandOptions::FOR_RUNNER,
        )
        .unwrap_err();
        assert_eq!(err.cycles, [vec!["A".to_owned(), "B".to_owned()]]);
        assert_eq!(
            err.to_string(),
            r#"circular variable reference detected: ["A", "B"]"#
        );
    }

    #[test]
    fn expansion_is_capped() {
        let mut pairs = vec![("V0".to_owned(), "x".repeat(1000))];
        for i in 1..20 {
            pairs.push((format!("V{i}"), format!("$V{p}$V{p}", p = i - 1)));
        }
        let v: Variables = pairs
            .into_iter()
            .map(|(k, val)| Variable::new(k, val, VarSource::Job))
            .collect();
        let out = runner_view(&v);
        assert!(out.iter().all(|v| v.value.len() <= MAX_EXPANDED_LEN));
        assert!(out.lookup("V19").is_some_and(|s| s.contains("$V18")));
    }

    #[test]
    fn runner_pass_uses_values_as_received() {
        let v = vars(&[("A", "$B"), ("B", "b"), ("C", "${A}")]);
        let out = expand_all_for_runner(&v);
        assert_eq!(out.lookup("A"), Some("b"));
        // Single pass: C sees A's received value `$B`, not `b`.
        assert_eq!(out.lookup("C"), Some("$B"));
    }

    fn var_strategy() -> impl Strategy<Value = (String, String, bool)> {
        let key = prop::sample::select(vec!["A", "B", "C", "D"]).prop_map(str::to_owned);
        let value = prop::collection::vec(
            prop_oneof![
                Just("$A".to_owned()),
                Just("${B}".to_owned()),
                Just("%C%".to_owned()),
                Just("$D".to_owned()),
                Just("$$".to_owned()),
                Just("%%".to_owned()),
                Just("${".to_owned()),
                "[a-z%${} ]{0,3}",
            ],
            0..6,
        )
        .prop_map(|parts| parts.concat());
        (key, value, any::<bool>())
    }

    proptest! {
        #[test]
        fn expansion_terminates_on_any_references(list in prop::collection::vec(var_strategy(), 0..12)) {
            let v: Variables = list
                .into_iter()
                .map(|(k, val, raw)| Variable::new(k, val, VarSource::Job).with_raw(raw))
                .collect();
            for opts in [ExpandOptions::FOR_RUNNER, ExpandOptions::GITLAB_DEFAULT] {
                match sort_and_expand_all(&v, opts) {
                    Ok(out) => {
                        prop_assert_eq!(out.len(), v.len());
                        let again = expand_all_for_runner(&out);
                        prop_assert_eq!(again.len(), v.len());
                    }
                    Err(e) => prop_assert!(e.cycles.iter().all(|c| c.len() > 1)),
                }
            }
        }

        #[test]
        fn self_references_alone_never_fail(value in "[A$%{}]{0,12}") {
            let v = vars(&[("A", value.as_str())]);
            let out = sort_and_expand_all(&v, ExpandOptions::FOR_RUNNER);
            prop_assert!(out.is_ok());
        }
    }
}
