//! `parallel`: a number of copies of a job, or a matrix of variable values
//! (rules 221-226). `needs:parallel:matrix` uses the matrix form too.

use serde::Serialize;

use super::decode::Decoder;
use super::judge::{is_alphanumeric, is_blank, to_s};
use crate::ci::yaml::{Node, Value};

/// The most jobs one `parallel` may make, as a number or a matrix.
pub const PARALLEL_LIMIT: usize = 200;

/// `parallel:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parallel {
    /// `parallel: N`: jobs `name 1/N` to `name N/N`.
    Count(u32),
    /// `parallel: {matrix: [...]}`.
    Matrix(Vec<MatrixEntry>),
}

/// One hash of a matrix: each variable with the values it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixEntry {
    pub vars: Vec<(String, Vec<String>)>,
}

impl MatrixEntry {
    /// Every combination of this hash's values, in GitLab's order (the
    /// first variable changes slowest), each as `(name, value)` pairs.
    pub fn combinations(&self) -> Vec<Vec<(String, String)>> {
        let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (name, values) in &self.vars {
            out = out
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut combo = prefix.clone();
                        combo.push((name.clone(), v.clone()));
                        combo
                    })
                })
                .collect();
        }
        out
    }
}

impl Parallel {
    /// How many jobs this makes.
    pub fn job_count(&self) -> usize {
        match self {
            Parallel::Count(n) => *n as usize,
            Parallel::Matrix(entries) => entries.iter().map(matrix_entry_size).sum(),
        }
    }

    /// The names of the jobs this makes from `job`: `job 1/3` for a count
    /// (rule 221), `job: [a, b]` for a matrix (rule 225).
    /// Each job this produces: its name and its matrix variables (none for
    /// `parallel: N`).
    pub fn instances(&self, job: &str) -> Vec<(String, Vec<(String, String)>)> {
        match self {
            Parallel::Count(n) => (1..=*n)
                .map(|i| (format!("{job} {i}/{n}"), Vec::new()))
                .collect(),
            Parallel::Matrix(entries) => entries
                .iter()
                .flat_map(MatrixEntry::combinations)
                .map(|combo| (matrix_job_name(job, &combo), combo))
                .collect(),
        }
    }

    pub fn job_names(&self, job: &str) -> Vec<String> {
        match self {
            Parallel::Count(n) => (1..=*n).map(|i| format!("{job} {i}/{n}")).collect(),
            Parallel::Matrix(entries) => entries
                .iter()
                .flat_map(MatrixEntry::combinations)
                .map(|combo| matrix_job_name(job, &combo))
                .collect(),
        }
    }
}

/// `job: [v1, v2]`, the name GitLab gives a matrix job.
/// Replaces `$[[ matrix.ID ]]` (spaces inside the brackets allowed) with the
/// value of the current job's matrix variable ID (rule 71). Expressions
/// naming a variable the job does not have are left as written, so the
/// need they sit in is reported as undefined.
pub fn substitute_matrix_expressions(text: &str, vars: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("$[[") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let Some(end) = after.find("]]") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = after[..end].trim();
        let value = inner
            .strip_prefix("matrix.")
            .and_then(|id| vars.iter().find(|(name, _)| name == id.trim()))
            .map(|(_, value)| value.as_str());
        match value {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + 3 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

pub fn matrix_job_name(job: &str, combo: &[(String, String)]) -> String {
    let values: Vec<&str> = combo.iter().map(|(_, v)| v.as_str()).collect();
    format!("{job}: [{}]", values.join(", "))
}

fn matrix_entry_size(entry: &MatrixEntry) -> usize {
    entry
        .vars
        .iter()
        .fold(1usize, |acc, (_, values)| acc.saturating_mul(values.len()))
}

/// Decodes `parallel` at `path`. A trigger job and `needs:parallel` allow
/// only the matrix form (`allow_count` false).
pub(crate) fn decode_parallel(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    allow_count: bool,
) -> Option<Parallel> {
    match &node.value {
        Value::Int(_) | Value::Float(_) => {
            let n =
                super::judge::integer_in_range(d, node, path, "config", 1, PARALLEL_LIMIT as i64);
            if !allow_count {
                d.error(node, path, "config cannot use \"parallel: <number>\".");
                return None;
            }
            n.map(|n| Parallel::Count(n as u32))
        }
        Value::Map(map) => {
            d.unknown_keys(map, path, &["matrix"]);
            let Some(matrix) = map.get("matrix") else {
                d.error(node, path, "config missing required keys: matrix");
                return None;
            };
            decode_matrix(d, matrix, &format!("{path}:matrix")).map(Parallel::Matrix)
        }
        _ => {
            d.error_raw(node, path, "should be an integer or a hash");
            None
        }
    }
}

fn decode_matrix(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<MatrixEntry>> {
    let Some(items) = node
        .as_seq()
        .filter(|i| i.iter().all(|n| n.as_map().is_some()))
    else {
        d.error(node, path, "config should be an array of hashes");
        return None;
    };
    let vars_path = format!("{path}:variables");
    let mut entries = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match decode_matrix_entry(d, item, &vars_path) {
            Some(entry) => entries.push(entry),
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let total: usize = entries.iter().map(matrix_entry_size).sum();
    if total > PARALLEL_LIMIT {
        d.error(
            node,
            path,
            format!("config generates too many jobs (maximum is {PARALLEL_LIMIT})"),
        );
        return None;
    }
    Some(entries)
}

/// One matrix hash: names to a value or a list of values. Values are
/// strings or integers; nothing may be empty (rule 223).
fn decode_matrix_entry(d: &mut Decoder, node: &Node, path: &str) -> Option<MatrixEntry> {
    let map = node.as_map()?;
    let mut vars = Vec::with_capacity(map.len());
    let mut valid = true;
    for (key, value) in map.iter() {
        let values: Option<Vec<String>> = match &value.value {
            _ if is_blank(value) || !is_alphanumeric(key) => None,
            Value::Seq(items) => flatten_once(items),
            _ if is_alphanumeric(value) => Some(vec![to_s(value)]),
            _ => None,
        };
        match values {
            Some(values) => vars.push((to_s(key), values)),
            None => valid = false,
        }
    }
    if !valid {
        d.error(
            node,
            path,
            "config should be a hash of key value pairs, value can be an array",
        );
    }
    if map.is_empty() {
        d.error(node, path, "config requires at least 1 items");
        valid = false;
    }
    valid.then_some(MatrixEntry { vars })
}

/// Ruby's `flatten(1)` of a value list whose items must then all be
/// strings or integers.
fn flatten_once(items: &[Node]) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let inner = match &item.value {
            Value::Seq(inner) => inner.as_slice(),
            _ => std::slice::from_ref(item),
        };
        for value in inner {
            if !is_alphanumeric(value) {
                return None;
            }
            out.push(to_s(value));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn decode(text: &str, allow_count: bool) -> (Option<Parallel>, Vec<String>) {
        let mut d = Decoder::lowercasing();
        let p = decode_parallel(&mut d, &doc(text), "jobs:a:parallel", allow_count);
        (p, d.diags.iter().map(|d| d.message.clone()).collect())
    }

    #[test]
    fn rule_221_count_is_1_to_200() {
        assert_eq!(decode("5", true).0, Some(Parallel::Count(5)));
        assert_eq!(decode("1", true).0, Some(Parallel::Count(1)));
        assert_eq!(
            decode("0", true).1,
            ["jobs:a:parallel config must be greater than or equal to 1"]
        );
        assert_eq!(
            decode("201", true).1,
            ["jobs:a:parallel config must be less than or equal to 200"]
        );
        assert_eq!(
            decode("2.5", true).1,
            ["jobs:a:parallel config must be an integer"]
        );
    }

    #[test]
    fn rule_221_count_job_names() {
        let names = Parallel::Count(3).job_names("rspec");
        assert_eq!(names, ["rspec 1/3", "rspec 2/3", "rspec 3/3"]);
    }

    #[test]
    fn rule_222_parallel_is_an_integer_or_a_hash() {
        assert_eq!(
            decode("lots", true).1,
            ["jobs:a:parallel should be an integer or a hash"]
        );
        assert_eq!(
            decode("{matrix: [], count: 2}", true).1,
            ["jobs:a:parallel config contains unknown keys: count"]
        );
        assert_eq!(
            decode("{}", true).1,
            ["jobs:a:parallel config missing required keys: matrix"]
        );
    }

    #[test]
    fn rule_223_matrix_values_are_strings_or_lists() {
        let (p, msgs) = decode(
            "{matrix: [{PROVIDER: aws, STACK: [app1, app2]}, {PROVIDER: [ovh, gcp], V: 3}]}",
            true,
        );
        assert!(msgs.is_empty(), "{msgs:?}");
        assert_eq!(p.unwrap().job_count(), 4);
        let (_, msgs) = decode("{matrix: [{PY: [3.8, 3.9]}]}", true);
        assert_eq!(
            msgs,
            [
                "jobs:a:parallel:matrix:variables config should be a hash of key value pairs, value can be an array"
            ]
        );
        let (_, msgs) = decode("{matrix: [{}]}", true);
        assert_eq!(
            msgs,
            ["jobs:a:parallel:matrix:variables config requires at least 1 items"]
        );
        let (_, msgs) = decode("{matrix: [a]}", true);
        assert_eq!(
            msgs,
            ["jobs:a:parallel:matrix config should be an array of hashes"]
        );
    }

    #[test]
    fn rule_223_matrix_makes_at_most_200_jobs() {
        let values: Vec<String> = (0..15).map(|i| i.to_string()).collect();
        let list = values.join(", ");
        let (_, msgs) = decode(&format!("{{matrix: [{{A: [{list}], B: [{list}]}}]}}"), true);
        assert_eq!(
            msgs,
            ["jobs:a:parallel:matrix config generates too many jobs (maximum is 200)"]
        );
    }

    #[test]
    fn rule_224_225_matrix_job_names_in_product_order() {
        let (p, _) = decode("{matrix: [{P: [aws, gcp], S: [a, b]}, {P: ovh}]}", true);
        assert_eq!(
            p.unwrap().job_names("deploy"),
            [
                "deploy: [aws, a]",
                "deploy: [aws, b]",
                "deploy: [gcp, a]",
                "deploy: [gcp, b]",
                "deploy: [ovh]"
            ]
        );
    }

    #[test]
    fn trigger_jobs_cannot_use_a_parallel_count() {
        assert_eq!(
            decode("3", false).1,
            ["jobs:a:parallel config cannot use \"parallel: <number>\"."]
        );
    }
}
