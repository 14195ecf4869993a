//! The keywords that only regular jobs, or only trigger jobs, accept.

use super::decode::{Decoder, flatten_strings};
use super::job::{DastConfiguration, Job};
use super::judge::{attr_error, compiles_as_re2, is_blank, slash_regex};
use super::needs::{
    NeedTarget, NeedType, check_dependencies_in_needs, decode_dependencies, decode_needs,
};
use super::parallel::decode_parallel;
use super::trigger::{decode_trigger, to_json};
use super::when::{
    BRIDGE_WHEN, JOB_WHEN, When, check_start_in, decode_allow_failure, decode_job_when,
    decode_retry, decode_timeout,
};
use super::{artifacts, cache, extras, image, release};
use crate::ci::yaml::{Mapping, Node};

/// How deep `!reference` may nest script lists (rule 165).
const MAX_SCRIPT_NESTING: usize = 10;
/// A job may have fewer than this many tags (rule 243).
const TAGS_LIMIT: usize = 50;

/// Regular job keywords (rules 168, 129-138, 239-254).
pub(crate) fn decode_build_keys(
    d: &mut Decoder,
    key: &Node,
    map: &Mapping,
    path: &str,
    job: &mut Job,
) {
    let get = |k: &str| map.get(k).filter(|n| !n.is_null());
    let sub = |k: &str| format!("{path}:{k}");
    if let Some(script) = get("script") {
        job.script = commands(d, script, &sub("script")).unwrap_or_default();
    }
    // `run` replaces `script`; without it the script must say something.
    if !map.contains_key("run") && map.get("script").is_none_or(is_blank) {
        attr_error(
            d,
            map.get("script").unwrap_or(key),
            path,
            "script",
            "can't be blank",
        );
    }
    if let Some(run) = get("run") {
        let steps_ok = run
            .as_seq()
            .is_some_and(|steps| steps.iter().all(is_run_step));
        if !steps_ok {
            attr_error(d, run, path, "run", "must be a valid json schema");
        }
        job.run = Some(to_json(run));
    }
    if let Some(before) = get("before_script") {
        job.before_script = commands(d, before, &sub("before_script"));
    }
    if let Some(after) = get("after_script") {
        job.after_script = commands(d, after, &sub("after_script"));
    }
    decode_timing(d, map, path, job);
    if let Some(af) = get("allow_failure") {
        job.allow_failure = decode_allow_failure(d, af, path);
    }
    if let Some(needs) = get("needs") {
        let allowed = [NeedType::Job, NeedType::CrossDependency];
        job.needs = decode_needs(d, needs, &sub("needs"), &allowed);
    }
    if let Some(deps) = get("dependencies") {
        job.dependencies = decode_dependencies(d, deps, path);
        if let (Some(deps), Some(needs)) = (&job.dependencies, &job.needs) {
            check_dependencies_in_needs(d, key, path, deps, needs);
        }
    }
    if let Some(parallel) = get("parallel") {
        job.parallel = decode_parallel(d, parallel, &sub("parallel"), true);
    }
    if let Some(retry) = get("retry") {
        job.retry = decode_retry(d, retry);
    }
    if let Some(timeout) = get("timeout") {
        job.timeout = decode_timeout(d, timeout, &sub("timeout"));
    }
    if let Some(tags) = get("tags") {
        job.tags = decode_tags(d, tags, &sub("tags"));
    }
    if let Some(coverage) = get("coverage") {
        job.coverage = decode_coverage(d, coverage, &sub("coverage"));
    }
    if let Some(text) = get("manual_confirmation") {
        job.manual_confirmation = text.as_str().map(String::from);
        if job.manual_confirmation.is_none() {
            attr_error(d, text, path, "manual_confirmation", "should be a string");
        }
    }
    decode_pages_keys(d, map, path, job);
    if let Some(dast) = get("dast_configuration") {
        job.dast_configuration = decode_dast(d, dast, &sub("dast_configuration"));
    }
    decode_leaf_keys(d, map, path, job);
}

/// `when` and `start_in` of a regular job (rules 129, 133-134).
fn decode_timing(d: &mut Decoder, map: &Mapping, path: &str, job: &mut Job) {
    let get = |k: &str| map.get(k).filter(|n| !n.is_null());
    if let Some(when) = get("when") {
        job.when = decode_job_when(d, when, path, JOB_WHEN, true).unwrap_or_default();
    }
    let delayed = get("when").and_then(Node::as_str) == Some("delayed");
    let has_rules = map.contains_key("rules");
    let start_in = map.get("start_in");
    if (has_rules || !delayed)
        && let Some(value) = start_in.filter(|v| !is_blank(v))
    {
        attr_error(d, value, path, "start_in", "must be blank");
    }
    if delayed {
        let null = Node::null(get("when").map_or(Default::default(), |w| w.span));
        let value = start_in.unwrap_or(&null);
        let before = d.diags.len();
        check_start_in(d, value, path);
        if d.diags.len() == before && !has_rules {
            job.start_in = value.as_str().map(String::from);
        }
    }
}

/// `publish` and `pages` (rule 252).
fn decode_pages_keys(d: &mut Decoder, map: &Mapping, path: &str, job: &mut Job) {
    let pages = map.get("pages");
    let pages_job = pages.is_some_and(|p| !is_blank(p))
        || (job.name == "pages" && pages.and_then(Node::as_bool) != Some(false));
    if let Some(publish) = map.get("publish").filter(|n| !n.is_null()) {
        job.publish = d.string(publish, &format!("{path}:publish"));
        if !pages_job {
            attr_error(
                d,
                publish,
                path,
                "publish",
                "can only be used within a `pages` job",
            );
        }
    }
    if let Some(pages) = pages.filter(|n| !n.is_null()) {
        job.pages = extras::decode_pages(d, pages, &format!("{path}:pages"));
    }
}

/// The keywords whose values are decoded by their own modules.
fn decode_leaf_keys(d: &mut Decoder, map: &Mapping, path: &str, job: &mut Job) {
    let get = |k: &str| map.get(k).filter(|n| !n.is_null());
    let sub = |k: &str| format!("{path}:{k}");
    if let Some(n) = get("image") {
        job.image = image::decode_image(d, n, &sub("image"));
    }
    if let Some(n) = get("services") {
        job.services = image::decode_services(d, n, &sub("services"));
    }
    if let Some(n) = get("artifacts") {
        job.artifacts = artifacts::decode_artifacts(d, n, &sub("artifacts"));
    }
    if let Some(n) = get("cache") {
        job.cache = cache::decode_cache(d, n, &sub("cache"));
    }
    if let Some(n) = get("release") {
        job.release = release::decode_release(d, n, &sub("release"));
    }
    if let Some(n) = get("secrets") {
        job.secrets = extras::decode_secrets(d, n, &sub("secrets"));
    }
    if let Some(n) = get("id_tokens") {
        job.id_tokens = extras::decode_id_tokens(d, n, &sub("id_tokens"));
    }
    if let Some(n) = get("hooks") {
        job.hooks = extras::decode_hooks(d, n, &sub("hooks"));
    }
    if let Some(n) = get("identity") {
        job.identity = extras::decode_identity(d, n, &sub("identity"));
    }
}

/// Trigger job keywords (rules 233-234).
pub(crate) fn decode_bridge_keys(
    d: &mut Decoder,
    key: &Node,
    map: &Mapping,
    path: &str,
    job: &mut Job,
) {
    let get = |k: &str| map.get(k).filter(|n| !n.is_null());
    if let Some(when) = get("when") {
        job.when = decode_job_when(d, when, path, BRIDGE_WHEN, false).unwrap_or(When::OnSuccess);
    }
    if let Some(af) = get("allow_failure") {
        match af.as_bool() {
            Some(b) => job.allow_failure = Some(super::when::AllowFailure::Bool(b)),
            None => attr_error(d, af, path, "allow_failure", "should be a boolean value"),
        }
    }
    if let Some(trigger) = get("trigger") {
        job.trigger = decode_trigger(d, trigger, &format!("{path}:trigger"));
    }
    if let Some(needs) = get("needs") {
        let allowed = [NeedType::Job, NeedType::Bridge];
        job.needs = decode_needs(d, needs, &format!("{path}:needs"), &allowed);
    }
    if let Some(parallel) = get("parallel") {
        job.parallel = decode_parallel(d, parallel, &format!("{path}:parallel"), false);
    }
    let upstream = job
        .needs
        .iter()
        .flatten()
        .filter(|n| matches!(n.target, NeedTarget::Upstream { .. }))
        .count();
    if get("trigger").is_none() && upstream == 0 {
        d.error(
            key,
            path,
            "config should contain either a trigger or a needs:pipeline",
        );
    }
    if upstream > 1 {
        d.error(key, path, "config should contain at most one bridge need");
    }
}

/// `script`, `before_script` and `after_script`: a string or nested lists
/// of strings, flattened (rule 168).
fn commands(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<String>> {
    let lines = flatten_strings(node, MAX_SCRIPT_NESTING);
    if lines.is_none() {
        let msg = format!(
            "config should be a string or a nested array of strings up to {MAX_SCRIPT_NESTING} levels deep"
        );
        d.error(node, path, msg);
    }
    lines
}

/// A `run` step has a name and exactly one of `script` or `step`.
fn is_run_step(node: &Node) -> bool {
    let Some(map) = node.as_map() else {
        return false;
    };
    let actions = ["script", "step", "action"]
        .iter()
        .filter(|k| map.contains_key(k))
        .count();
    map.get("name").and_then(Node::as_str).is_some() && actions == 1
}

fn decode_tags(d: &mut Decoder, node: &Node, path: &str) -> Vec<String> {
    let Some(tags) = d.array_of_strings(node, path) else {
        return Vec::new();
    };
    if tags.len() >= TAGS_LIMIT {
        let msg = format!("config must be less than the limit of {TAGS_LIMIT} tags");
        d.error(node, path, msg);
    }
    tags
}

/// `coverage`: a `/regex/` in RE2 syntax (rule 244).
fn decode_coverage(d: &mut Decoder, node: &Node, path: &str) -> Option<String> {
    let text = node.as_str();
    if text
        .and_then(slash_regex)
        .is_some_and(|(p, f)| compiles_as_re2(p, f))
    {
        return text.map(String::from);
    }
    d.error(
        node,
        path,
        "config must be a regular expression with re2 syntax",
    );
    None
}

fn decode_dast(d: &mut Decoder, node: &Node, path: &str) -> Option<DastConfiguration> {
    let Some(map) = node.as_map() else {
        d.error(node, path, "config should be a hash");
        return None;
    };
    d.unknown_keys(map, path, &["site_profile", "scanner_profile"]);
    let mut text = |key: &str| {
        let v = map.get(key).filter(|n| !n.is_null())?;
        if v.as_str().is_none() {
            attr_error(d, v, path, key, "should be a string");
        }
        v.as_str().map(String::from)
    };
    Some(DastConfiguration {
        site_profile: text("site_profile"),
        scanner_profile: text("scanner_profile"),
    })
}
