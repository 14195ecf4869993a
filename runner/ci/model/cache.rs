//! `cache:` (rules 215-220): a hash or a list of up to four hashes, each
//! naming paths to keep between jobs under a key.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::artifacts::UploadWhen;
use super::check::{
    ErrorMark, attr_error, check_cache_key, child, entry_bool, entry_strings, is_blank, one_of,
    split_last, strings,
};
use super::decode::Decoder;
use crate::ci::yaml::{Mapping, Node, Value};

const ALLOWED_KEYS: &[&str] = &[
    "key",
    "untracked",
    "paths",
    "when",
    "policy",
    "unprotect",
    "fallback_keys",
];
const ALLOWED_WHEN: &[&str] = &["on_success", "on_failure", "always"];
const MAX_CACHES: usize = 4;
const MAX_FALLBACK_KEYS: usize = 5;

/// The key every cache without `key:` shares.
pub const DEFAULT_KEY: &str = "default";

/// One cache of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheSpec {
    pub key: CacheKey,
    /// Keys tried in order when `key` has no cache yet.
    pub fallback_keys: Vec<String>,
    pub paths: Vec<String>,
    pub untracked: bool,
    /// Shared between protected and unprotected branches.
    pub unprotect: bool,
    pub when: UploadWhen,
    /// `pull-push` (the default), `pull`, `push`, or a variable holding one.
    pub policy: String,
}

impl Default for CacheSpec {
    fn default() -> Self {
        CacheSpec {
            key: CacheKey::default(),
            fallback_keys: Vec::new(),
            paths: Vec::new(),
            untracked: false,
            unprotect: false,
            when: UploadWhen::OnSuccess,
            policy: "pull-push".into(),
        }
    }
}

/// How a cache key is made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheKey {
    /// A key as written (variables are expanded when the job runs).
    Literal(String),
    /// A SHA of the listed files' contents, after `prefix-` if given
    /// (`cache:key:files`).
    Files {
        files: Vec<String>,
        prefix: Option<String>,
    },
    /// A SHA of the last commits that changed the listed files
    /// (`cache:key:files_commits`).
    FilesCommits {
        files: Vec<String>,
        prefix: Option<String>,
    },
}

impl Default for CacheKey {
    fn default() -> Self {
        CacheKey::Literal(DEFAULT_KEY.into())
    }
}

/// Decodes `cache:` at `path` (`jobs:build:cache`). A hash is one cache;
/// a list holds at most four.
pub(crate) fn decode_cache(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<CacheSpec>> {
    // GitLab's list entry has no key of its own, so its errors read
    // `jobs:build:caches ...` while each cache's read `jobs:build:cache ...`.
    let (parent, _) = split_last(path);
    let list_path = if parent.is_empty() {
        "caches".to_string()
    } else {
        child(parent, "caches")
    };
    let items: Vec<&Node> = match &node.value {
        Value::Map(_) => vec![node],
        Value::Seq(items) => {
            if items.len() > MAX_CACHES {
                let message = format!("config no more than {MAX_CACHES} caches can be created");
                d.error(node, &list_path, message);
                return None;
            }
            let mut flat = Vec::new();
            flatten(items, &mut flat);
            flat
        }
        _ => {
            d.error(node, &list_path, "config can only be a hash or an array");
            return None;
        }
    };
    let mark = ErrorMark::new(d);
    let caches: Vec<CacheSpec> = items
        .into_iter()
        .filter_map(|item| decode_one(d, item, path))
        .collect();
    mark.finish(d, caches)
}

/// Ruby's `flatten`: nested lists of caches count as one list.
fn flatten<'n>(items: &'n [Node], out: &mut Vec<&'n Node>) {
    for item in items {
        match item.as_seq() {
            Some(inner) => flatten(inner, out),
            None => out.push(item),
        }
    }
}

fn decode_one(d: &mut Decoder, node: &Node, path: &str) -> Option<CacheSpec> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, ALLOWED_KEYS);
    let mut spec = CacheSpec::default();

    if let Some(value) = map.get("policy").filter(|n| !is_blank(n)) {
        if let Some(policy) = check_policy(d, value, path) {
            spec.policy = policy;
        }
    }
    if let Some(value) = map.get("when").filter(|n| !n.is_null()) {
        if value.as_str().is_none() {
            attr_error(d, value, path, "when", "should be a string");
        }
        match value.as_str().and_then(parse_when) {
            Some(when) => spec.when = when,
            None => {
                let message = format!("should be one of: {}", one_of(ALLOWED_WHEN));
                attr_error(d, value, path, "when", &message);
            }
        }
    }
    if let Some(value) = map.get("fallback_keys") {
        let count = match &value.value {
            Value::Seq(items) => items.len(),
            Value::Str(s) => s.chars().count(),
            _ => 0,
        };
        if count > MAX_FALLBACK_KEYS {
            let message = format!("has to many entries (maximum {MAX_FALLBACK_KEYS})");
            attr_error(d, value, path, "fallback_keys", &message);
        }
    }

    // Nested entries are only validated once the cache itself is valid.
    if !mark.clean(d) {
        return None;
    }
    if let Some(value) = map.get("key").filter(|n| !n.is_null()) {
        if let Some(key) = decode_key(d, value, &child(path, "key")) {
            spec.key = key;
        }
    }
    if let Some(value) = present(map, "unprotect") {
        spec.unprotect = entry_bool(d, value, &child(path, "unprotect")).unwrap_or(false);
    }
    if let Some(value) = present(map, "untracked") {
        spec.untracked = entry_bool(d, value, &child(path, "untracked")).unwrap_or(false);
    }
    if let Some(value) = present(map, "paths") {
        spec.paths = entry_strings(d, value, &child(path, "paths")).unwrap_or_default();
    }
    if let Some(value) = present(map, "fallback_keys") {
        spec.fallback_keys =
            entry_strings(d, value, &child(path, "fallback_keys")).unwrap_or_default();
    }
    mark.finish(d, spec)
}

fn present<'m>(map: &'m Mapping, key: &str) -> Option<&'m Node> {
    map.get(key).filter(|n| !n.is_null())
}

fn parse_when(text: &str) -> Option<UploadWhen> {
    match text {
        "on_success" => Some(UploadWhen::OnSuccess),
        "on_failure" => Some(UploadWhen::OnFailure),
        "always" => Some(UploadWhen::Always),
        _ => None,
    }
}

/// GitLab matches the policy against `pull-push|push|pull|\$\w*` without
/// anchors, so any text containing one of these words, or a `$`, passes.
fn check_policy(d: &mut Decoder, node: &Node, path: &str) -> Option<String> {
    static POLICY: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"pull-push|push|pull|\$").expect("policy pattern"));
    let text = node.scalar_string().map(|s| s.into_owned());
    if node.as_str().is_none() {
        attr_error(d, node, path, "policy", "should be a string");
    }
    let valid = text.as_deref().is_some_and(|t| POLICY.is_match(t));
    if !valid {
        attr_error(
            d,
            node,
            path,
            "policy",
            "should be a variable or one of: pull-push, push, pull",
        );
    }
    node.as_str().filter(|_| valid).map(String::from)
}

/// `cache:key`: a string, or a hash with `files` (or `files_commits`) and
/// an optional `prefix`.
fn decode_key(d: &mut Decoder, node: &Node, path: &str) -> Option<CacheKey> {
    match &node.value {
        Value::Str(_) => check_cache_key(d, node, path, "config").map(CacheKey::Literal),
        Value::Map(map) => decode_files_key(d, node, map, path),
        _ => {
            d.error(node, path, "should be a hash, a string or a symbol");
            None
        }
    }
}

fn decode_files_key(d: &mut Decoder, node: &Node, map: &Mapping, path: &str) -> Option<CacheKey> {
    let mark = ErrorMark::new(d);
    d.unknown_keys(map, path, &["files", "files_commits", "prefix"]);
    let files = map.get("files");
    let commits = map.get("files_commits");
    match (files, commits) {
        (None, None) => d.error(node, path, "config missing required keys: files"),
        (Some(_), Some(_)) => {
            super::artifacts::mutually_exclusive(d, node, map, path, &["files", "files_commits"])
        }
        _ => {}
    }
    if !mark.clean(d) {
        return None;
    }
    let (list_key, list_node) = match (files, commits) {
        (Some(f), _) => ("files", f),
        (None, Some(c)) => ("files_commits", c),
        (None, None) => return None,
    };
    let list = decode_files(d, list_node, &child(path, list_key));
    let prefix = match map.get("prefix").filter(|n| !n.is_null()) {
        Some(p) => check_cache_key(d, p, &child(path, "prefix"), "config"),
        None => None,
    };
    let files = list?;
    let key = if list_key == "files" {
        CacheKey::Files { files, prefix }
    } else {
        CacheKey::FilesCommits { files, prefix }
    };
    mark.finish(d, key)
}

/// `cache:key:files`: one or two paths or globs.
fn decode_files(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<String>> {
    let mark = ErrorMark::new(d);
    let items = strings(node);
    if items.is_none() {
        d.error(node, path, "config should be an array of strings");
    }
    let count = match &node.value {
        Value::Seq(items) => items.len(),
        Value::Str(s) => s.chars().count(),
        _ => 1,
    };
    if count < 1 {
        d.error(node, path, "config requires at least 1 item");
    } else if count > 2 {
        d.error(node, path, "config has too many items (maximum is 2)");
    }
    mark.finish(d, items?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> (Option<Vec<CacheSpec>>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::new();
        let out = decode_cache(&mut d, &node, "jobs:build:cache");
        (out, d.diags.iter().map(|e| e.message.clone()).collect())
    }

    fn errors(text: &str) -> Vec<String> {
        decode(text).1
    }

    #[test]
    fn rule_215_a_hash_is_one_cache_with_defaults() {
        let (caches, errs) = decode("paths: [vendor/]\n");
        assert!(errs.is_empty());
        let cache = &caches.unwrap()[0];
        assert_eq!(cache.key, CacheKey::Literal("default".into()));
        assert_eq!(cache.paths, ["vendor/"]);
        assert_eq!(cache.policy, "pull-push");
        assert_eq!(cache.when, UploadWhen::OnSuccess);
        assert!(!cache.untracked && !cache.unprotect);
    }

    #[test]
    fn rule_215_at_most_four_caches() {
        let four = "- {key: a}\n- {key: b}\n- {key: c}\n- {key: d}\n";
        assert_eq!(decode(four).0.unwrap().len(), 4);
        let five = format!("{four}- {{key: e}}\n");
        assert_eq!(
            errors(&five),
            ["jobs:build:caches config no more than 4 caches can be created"]
        );
    }

    #[test]
    fn rule_215_cache_must_be_a_hash_or_a_list_of_hashes() {
        assert_eq!(
            errors("vendor/"),
            ["jobs:build:caches config can only be a hash or an array"]
        );
        assert_eq!(
            errors("- vendor/"),
            ["jobs:build:cache config should be a hash"]
        );
        assert_eq!(decode("[]").0.unwrap(), []);
        assert_eq!(decode("{}").0.unwrap().len(), 1);
    }

    #[test]
    fn rule_215_unknown_keys_are_reported() {
        assert_eq!(
            errors("key: a\npath: [x]\n"),
            ["jobs:build:cache config contains unknown keys: path"]
        );
    }

    #[test]
    fn rule_217_cache_key_cannot_contain_slash() {
        assert_eq!(
            errors("key: feature/x\n"),
            ["jobs:build:cache:key config cannot contain the \"/\" character"]
        );
        assert_eq!(
            errors("key: a%2Fb\n"),
            ["jobs:build:cache:key config cannot contain the \"/\" character"]
        );
    }

    #[test]
    fn rule_217_cache_key_cannot_be_only_dots() {
        for key in [".", "..", "'%2E%2e'"] {
            assert_eq!(
                errors(&format!("key: {key}\n")),
                ["jobs:build:cache:key config cannot be \".\" or \"..\""],
                "{key}"
            );
        }
        assert!(errors("key: .cache\n").is_empty());
        assert!(errors("key: $CI_COMMIT_REF_SLUG-cache\n").is_empty());
    }

    #[test]
    fn rule_217_cache_key_must_be_a_string_or_a_hash() {
        assert_eq!(
            errors("key: 12\n"),
            ["jobs:build:cache:key should be a hash, a string or a symbol"]
        );
    }

    #[test]
    fn rule_218_key_files_takes_one_or_two_files_and_a_prefix() {
        let (caches, errs) = decode("key: {files: [Gemfile.lock], prefix: $CI_JOB_NAME}\n");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(
            caches.unwrap()[0].key,
            CacheKey::Files {
                files: vec!["Gemfile.lock".into()],
                prefix: Some("$CI_JOB_NAME".into())
            }
        );
        assert_eq!(
            errors("key: {files: [a, b, c]}\n"),
            ["jobs:build:cache:key:files config has too many items (maximum is 2)"]
        );
        assert_eq!(
            errors("key: {files: []}\n"),
            ["jobs:build:cache:key:files config requires at least 1 item"]
        );
        assert_eq!(
            errors("key: {prefix: x}\n"),
            ["jobs:build:cache:key config missing required keys: files"]
        );
        assert_eq!(
            errors("key: {files: [a], prefix: a/b}\n"),
            ["jobs:build:cache:key:prefix config cannot contain the \"/\" character"]
        );
    }

    #[test]
    fn rule_218_files_commits_is_an_alternative_to_files() {
        let (caches, errs) = decode("key: {files_commits: [yarn.lock]}\n");
        assert!(errs.is_empty());
        assert!(matches!(
            caches.unwrap()[0].key,
            CacheKey::FilesCommits { .. }
        ));
        assert_eq!(
            errors("key: {files: [a], files_commits: [b]}\n"),
            [
                "jobs:build:cache:key config these keys cannot be used together: files, files_commits"
            ]
        );
    }

    #[test]
    fn rule_219_policy_when_and_flags() {
        let (caches, errs) = decode(
            "paths: [x]\npolicy: pull\nwhen: always\nuntracked: true\nunprotect: true\nfallback_keys: [a, b]\n",
        );
        assert!(errs.is_empty());
        let cache = &caches.unwrap()[0];
        assert_eq!(cache.policy, "pull");
        assert_eq!(cache.when, UploadWhen::Always);
        assert!(cache.untracked && cache.unprotect);
        assert_eq!(cache.fallback_keys, ["a", "b"]);
    }

    #[test]
    fn rule_219_policy_may_be_a_variable() {
        let (caches, errs) = decode("policy: $CACHE_POLICY\n");
        assert!(errs.is_empty());
        assert_eq!(caches.unwrap()[0].policy, "$CACHE_POLICY");
        assert_eq!(
            errors("policy: download\n"),
            ["jobs:build:cache policy should be a variable or one of: pull-push, push, pull"]
        );
    }

    #[test]
    fn rule_219_when_and_booleans_are_checked() {
        assert_eq!(
            errors("when: never\n"),
            ["jobs:build:cache when should be one of: on_success, on_failure, always"]
        );
        assert_eq!(
            errors("untracked: 'yes'\n"),
            ["jobs:build:cache:untracked config should be a boolean value"]
        );
        assert_eq!(
            errors("paths: vendor\n"),
            ["jobs:build:cache:paths config should be an array of strings"]
        );
        assert_eq!(
            errors("fallback_keys: [a, b, c, d, e, f]\n"),
            ["jobs:build:cache fallback keys has to many entries (maximum 5)"]
        );
    }
}
