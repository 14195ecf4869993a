//! `default:` and the deprecated top-level `image`, `services`, `cache`,
//! `before_script`, `after_script` copied into jobs (rules 30-37).
//!
//! GitLab does this on its typed entries: a job keyword that is missing or
//! `null` ("unspecified") takes the `default` entry, a set one keeps its own
//! whole value (no deep merge, rule 31; `before_script: []` is set, rule 37).
//! Doing it on the tree gives the same jobs: the copied values keep the
//! position they were written at in `default`.

use super::inherit::{InheritDefault, inherit_default, validator_error};
use super::keywords::{DEFAULT_KEYWORDS, JobKind, TOP_LEVEL_DEFAULTS, is_job_entry, job_kind};
use super::ruby;
use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::yaml::{Mapping, Node, Value};

/// Copies `default` keywords into every job that does not set them.
///
/// - Jobs are visible top-level entries with `script`/`run` (they take
///   `before_script`, `after_script`, `hooks`, `cache`, `image`, `services`,
///   `interruptible`, `retry`, `tags`, `artifacts`, `id_tokens`, `identity`)
///   or with `trigger`/`needs` (they take `interruptible` only). Hidden
///   entries take nothing: `extends` has already been resolved.
/// - `timeout` under `default` is accepted but not copied: GitLab reads a
///   job's timeout from the job alone, so a default timeout has no effect.
/// - Top-level `image`, `services`, `cache`, `before_script` and
///   `after_script` act as `default` entries (rule 36); setting one both
///   there and in `default` is an error (`image is defined in top-level and
///   `default:` entry`), reported alone as GitLab stops on it.
/// - `inherit:default` (`true`, `false` or a list) limits what a job takes;
///   `inherit` is checked in full here, `inherit:variables` is left to the
///   variable stage.
///
/// The tree keeps `default` and the top-level keywords as they were.
pub fn apply_defaults(root: &mut Node) -> Result<(), Diagnostics> {
    let Some(map) = root.as_map_mut() else {
        return Ok(());
    };
    let mut diags = Diagnostics::default();
    let defaults = effective_defaults(map, &mut diags)?;
    for (key, job) in map.iter_mut() {
        let Some(name) = key.as_str() else { continue };
        if !is_job_entry(name, job) {
            continue;
        }
        let kind = match job_kind(name, job) {
            Some(JobKind::Hidden) | None => continue,
            Some(kind) => kind,
        };
        let Some(job_map) = job.as_map_mut() else {
            continue;
        };
        let inherit = inherit_default(name, job_map, &mut diags);
        copy_defaults(job_map, kind, &inherit, &defaults);
    }
    if diags.is_empty() { Ok(()) } else { Err(diags) }
}

/// The keyword values jobs may take, from `default` and the deprecated
/// top-level keywords, with `null` meaning "not set".
fn effective_defaults(root: &Mapping, diags: &mut Diagnostics) -> Result<Mapping, Diagnostics> {
    let default = root
        .get("default")
        .filter(|d| !d.is_null() && !is_job_entry("default", d));
    let mut out = Mapping::new();
    let valid = match default {
        None => None,
        Some(node) => match node.as_map().filter(|_| !node.is_reference()) {
            None => {
                diags.push(validator_error(node, "default", "config should be a hash"));
                None
            }
            Some(map) => check_default_keys(map, diags).then_some(map),
        },
    };
    // GitLab only composes a valid `default`, so the clash with top-level
    // keywords is only checked, and its values only used, when it is valid.
    for &key in DEFAULT_KEYWORDS {
        let own = valid
            .and_then(|d| d.get_entry(key))
            .filter(|(_, v)| !v.is_null());
        let top = TOP_LEVEL_DEFAULTS
            .contains(&key)
            .then(|| root.get_entry(key))
            .flatten()
            .filter(|(_, v)| !v.is_null());
        match (own, top) {
            (Some((k, _)), Some(_)) => {
                return Err(Diagnostic::config(
                    k.span,
                    format!("{key} is defined in top-level and `default:` entry"),
                )
                .into());
            }
            (Some((_, v)), None) | (None, Some((_, v))) => out.insert_str(key, v.clone()),
            (None, None) => {}
        }
    }
    Ok(out)
}

/// `default config contains unknown keys: a, b` (rule 30). True when every
/// key is allowed.
fn check_default_keys(map: &Mapping, diags: &mut Diagnostics) -> bool {
    let unknown: Vec<&Node> = map
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !k.as_str().is_some_and(|k| DEFAULT_KEYWORDS.contains(&k)))
        .collect();
    let Some(first) = unknown.first() else {
        return true;
    };
    let keys: Vec<String> = unknown.iter().map(|k| ruby::to_s(k)).collect();
    let message = format!("config contains unknown keys: {}", keys.join(", "));
    diags.push(validator_error(first, "default", &message));
    false
}

fn copy_defaults(job: &mut Mapping, kind: JobKind, inherit: &InheritDefault, defaults: &Mapping) {
    for &key in kind.inherited() {
        if !inherit.takes(key) {
            continue;
        }
        let Some(value) = defaults.get(key) else {
            continue;
        };
        match job.get_mut(key) {
            Some(own) if !matches!(own.value, Value::Null) => {}
            Some(own) => *own = value.clone(),
            None => job.insert_str(key, value.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn applied(text: &str) -> Node {
        let mut root = doc(text);
        apply_defaults(&mut root).unwrap();
        root
    }

    fn errors(text: &str) -> Vec<String> {
        let mut root = doc(text);
        let diags = apply_defaults(&mut root).unwrap_err();
        diags.iter().map(|d| d.message.clone()).collect()
    }

    fn get<'a>(root: &'a Node, path: &[&str]) -> Option<&'a Node> {
        path.iter()
            .try_fold(root, |n, k| n.as_map().and_then(|m| m.get(k)))
    }

    fn str_at<'a>(root: &'a Node, path: &[&str]) -> Option<&'a str> {
        get(root, path).and_then(Node::as_str)
    }

    #[test]
    fn rule_31_defaults_fill_missing_keywords_and_never_merge() {
        let root = applied(
            "default:\n  image: ruby\n  cache: {key: k, paths: [a]}\n  tags: [docker]\n\
             job:\n  script: x\n  cache: {paths: [b]}\n",
        );
        assert_eq!(str_at(&root, &["job", "image"]), Some("ruby"));
        assert_eq!(
            get(&root, &["job", "tags"])
                .unwrap()
                .as_seq()
                .unwrap()
                .len(),
            1
        );
        // The job's own cache replaces the default's as a whole.
        assert!(get(&root, &["job", "cache", "key"]).is_none());
        // The copy points at where the default was written.
        assert_eq!(get(&root, &["job", "image"]).unwrap().span.line, 2);
    }

    #[test]
    fn rule_31_a_null_keyword_takes_the_default() {
        let root = applied("default:\n  image: ruby\njob:\n  image: null\n  script: x\n");
        assert_eq!(str_at(&root, &["job", "image"]), Some("ruby"));
    }

    #[test]
    fn rule_37_an_empty_script_list_switches_the_default_off() {
        let root = applied(
            "default:\n  before_script: [setup]\n  after_script: [clean]\n\
             job:\n  script: x\n  before_script: []\n",
        );
        assert!(
            get(&root, &["job", "before_script"])
                .unwrap()
                .as_seq()
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            get(&root, &["job", "after_script"])
                .unwrap()
                .as_seq()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn rule_30_unknown_default_keys() {
        let e =
            errors("default:\n  image: ruby\n  variables: {A: a}\n  Stage: x\njob:\n  script: x\n");
        assert_eq!(
            e,
            ["default config contains unknown keys: variables, stage"]
        );
    }

    #[test]
    fn rule_30_default_must_be_a_hash() {
        assert_eq!(
            errors("default: ruby\njob:\n  script: x\n"),
            ["default config should be a hash"]
        );
    }

    #[test]
    fn rule_30_a_default_timeout_is_not_copied() {
        let root = applied("default:\n  timeout: 1h\n  retry: 2\njob:\n  script: x\n");
        assert!(get(&root, &["job", "timeout"]).is_none());
        assert_eq!(get(&root, &["job", "retry"]).unwrap().as_int(), Some(2));
    }

    #[test]
    fn rule_32_inherit_default_false_and_lists() {
        let root = applied(
            "default:\n  image: ruby\n  before_script: [setup]\n\
             none:\n  script: x\n  inherit:\n    default: false\n\
             some:\n  script: x\n  inherit:\n    default: [image]\n\
             all:\n  script: x\n  inherit:\n    default: true\n",
        );
        assert!(get(&root, &["none", "image"]).is_none());
        assert_eq!(str_at(&root, &["some", "image"]), Some("ruby"));
        assert!(get(&root, &["some", "before_script"]).is_none());
        assert!(get(&root, &["all", "before_script"]).is_some());
    }

    #[test]
    fn rule_32_inherit_default_forms_are_checked() {
        let e = errors("j:\n  script: x\n  inherit:\n    default: yes please\n");
        assert_eq!(
            e,
            ["jobs:j:inherit:default should be a bool or array of strings"]
        );
        let e = errors("J:\n  script: x\n  inherit:\n    default: [image, Nope, 1]\n");
        assert_eq!(
            e,
            [
                "jobs:j:inherit:default config should be an array of strings",
                "jobs:j:inherit:default config contains unknown values: nope, 1",
            ]
        );
        let e = errors("j:\n  script: x\n  inherit: true\n");
        assert_eq!(e, ["jobs:j:inherit config should be a hash"]);
        let e = errors("j:\n  script: x\n  inherit:\n    defaults: false\n");
        assert_eq!(e, ["jobs:j:inherit config contains unknown keys: defaults"]);
    }

    #[test]
    fn rule_33_inherit_variables_is_checked_but_not_applied() {
        let root =
            applied("variables: {A: a}\njob:\n  script: x\n  inherit:\n    variables: [A]\n");
        assert!(get(&root, &["job", "variables"]).is_none());
        let e = errors("job:\n  script: x\n  inherit:\n    variables: {A: a}\n");
        assert_eq!(
            e,
            ["jobs:job:inherit:variables should be a bool or array of strings"]
        );
        let e = errors("job:\n  script: x\n  inherit:\n    variables: [1]\n");
        assert_eq!(
            e,
            ["jobs:job:inherit:variables config should be an array of strings"]
        );
    }

    #[test]
    fn rule_36_top_level_keywords_act_as_defaults() {
        let root = applied(
            "image: ruby\nbefore_script: [setup]\ndefault:\n  tags: [t]\njob:\n  script: x\n",
        );
        assert_eq!(str_at(&root, &["job", "image"]), Some("ruby"));
        assert!(get(&root, &["job", "before_script"]).is_some());
        assert!(get(&root, &["job", "tags"]).is_some());
        // The tree keeps the top-level keyword where it was.
        assert_eq!(str_at(&root, &["image"]), Some("ruby"));
    }

    #[test]
    fn rule_36_a_keyword_in_both_places_is_an_error() {
        let text = "image: ruby\ncache: {}\ndefault:\n  image: alpine\n  cache: {key: k}\njob:\n  script: x\n";
        let mut root = doc(text);
        let diags = apply_defaults(&mut root).unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(
            diags.0[0].message,
            "cache is defined in top-level and `default:` entry"
        );
        assert_eq!(diags.0[0].span.line, 5);
        // A null on either side is "not set".
        let root = applied("image: null\ndefault:\n  image: alpine\njob:\n  script: x\n");
        assert_eq!(str_at(&root, &["job", "image"]), Some("alpine"));
    }

    #[test]
    fn rule_18_hidden_jobs_take_nothing() {
        let root = applied("default:\n  image: ruby\n.tpl:\n  script: x\njob:\n  script: x\n");
        assert!(get(&root, &[".tpl", "image"]).is_none());
        assert!(get(&root, &["job", "image"]).is_some());
    }

    #[test]
    fn trigger_jobs_take_only_interruptible() {
        let root = applied(
            "default:\n  image: ruby\n  interruptible: true\nup:\n  trigger: group/project\n",
        );
        assert!(get(&root, &["up", "image"]).is_none());
        assert_eq!(
            get(&root, &["up", "interruptible"]).unwrap().as_bool(),
            Some(true)
        );
    }

    #[test]
    fn entries_that_are_not_jobs_take_nothing() {
        let root = applied(
            "default:\n  image: ruby\nworkflow:\n  rules: [{when: always}]\nodd:\n  stage: x\nstr: text\n",
        );
        assert!(get(&root, &["workflow", "image"]).is_none());
        assert!(get(&root, &["odd", "image"]).is_none());
    }

    #[test]
    fn rule_13_a_default_with_a_script_is_a_job() {
        let root = applied("default:\n  script: x\n  variables: {}\nimage: ruby\n");
        assert_eq!(str_at(&root, &["default", "image"]), Some("ruby"));
    }
}
