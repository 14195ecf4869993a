//! The smaller job keywords: `id_tokens`, `hooks`, `identity` and `pages`
//! (rules 248-253); `secrets` lives in its own module and is re-exported
//! here.

use serde::Serialize;

use super::check::{
    ErrorMark, attr_error, check_duration, child, opt_string, split_last, string_or_strings,
};
use super::decode::{Decoder, flatten_strings};
use crate::ci::yaml::{Node, Value};

#[allow(unused_imports)] // the job model calls it through this module
pub(crate) use super::secrets::decode_secrets;
pub use super::secrets::{SecretProvider, SecretSpec};

/// Nesting GitLab allows in command lists such as `script`.
const COMMANDS_MAX_DEPTH: usize = 10;

/// One entry of `id_tokens:`: a JWT made available in a variable.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IdTokenSpec {
    /// The token's `aud` claim: one audience or several.
    pub aud: Vec<String>,
}

/// A job's `hooks:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HooksSpec {
    /// Commands run before the repository is cloned or fetched.
    pub pre_get_sources_script: Vec<String>,
}

/// A job's `identity:` (identity federation with a cloud provider).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IdentitySpec {
    /// The provider; only `google_cloud` exists.
    pub provider: String,
}

/// The `pages:` job keyword.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PagesSpec {
    /// False for `pages: false`, which keeps a job named `pages` from
    /// deploying.
    pub enabled: bool,
    /// Directory to publish; GitLab's default is `public`.
    pub publish: Option<String>,
    /// Prefix for a parallel deployment.
    pub path_prefix: Option<String>,
    /// As written: a duration, `never`, or a value with a variable.
    pub expire_in: Option<String>,
}

/// `id_tokens:` maps a variable name to the token's audience.
pub(crate) fn decode_id_tokens(
    d: &mut Decoder,
    node: &Node,
    path: &str,
) -> Option<Vec<(String, IdTokenSpec)>> {
    let map = d.map(node, path)?;
    let mark = ErrorMark::new(d);
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map.iter() {
        let name = key
            .scalar_string()
            .map(|s| s.into_owned())
            .unwrap_or_default();
        let token_path = child(path, &name);
        let token_map = value.as_map();
        if let Some(m) = token_map {
            d.unknown_keys(m, &token_path, &["aud"]);
        }
        let aud_node = token_map.and_then(|m| m.get("aud"));
        if aud_node.is_none() {
            d.error(value, &token_path, "config missing required keys: aud");
        }
        match aud_node.and_then(string_or_strings) {
            Some(aud) => out.push((name, IdTokenSpec { aud })),
            None => attr_error(
                d,
                aud_node.unwrap_or(value),
                &token_path,
                "aud",
                "should be an array of strings or a string",
            ),
        }
    }
    mark.finish(d, out)
}

/// `hooks:` at `path`; only `pre_get_sources_script` exists.
pub(crate) fn decode_hooks(d: &mut Decoder, node: &Node, path: &str) -> Option<HooksSpec> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, &["pre_get_sources_script"]);
    if !mark.clean(d) {
        return None;
    }
    let mut hooks = HooksSpec::default();
    if let Some(script) = map.get("pre_get_sources_script").filter(|n| !n.is_null()) {
        let script_path = child(path, "pre_get_sources_script");
        match flatten_strings(script, COMMANDS_MAX_DEPTH) {
            Some(lines) => hooks.pre_get_sources_script = lines,
            None => d.error(
                script,
                &script_path,
                format!("config should be a string or a nested array of strings up to {COMMANDS_MAX_DEPTH} levels deep"),
            ),
        }
    }
    mark.finish(d, hooks)
}

/// `identity:` is checked as an attribute of the job, so its error reads
/// `jobs:build identity unknown value: aws`.
pub(crate) fn decode_identity(d: &mut Decoder, node: &Node, path: &str) -> Option<IdentitySpec> {
    match node.as_str() {
        Some("google_cloud") => Some(IdentitySpec {
            provider: "google_cloud".into(),
        }),
        _ => {
            let (parent, key) = split_last(path);
            let shown = match &node.value {
                Value::Seq(_) | Value::Map(_) => String::from("(complex value)"),
                _ => node
                    .scalar_string()
                    .map(|s| s.into_owned())
                    .unwrap_or_default(),
            };
            d.error(node, parent, format!("{key} unknown value: {shown}"));
            None
        }
    }
}

/// The `pages:` job keyword (a hash, or a boolean).
pub(crate) fn decode_pages(d: &mut Decoder, node: &Node, path: &str) -> Option<PagesSpec> {
    let map = match &node.value {
        Value::Bool(enabled) => {
            return Some(PagesSpec {
                enabled: *enabled,
                ..PagesSpec::default()
            });
        }
        Value::Map(map) => map,
        _ => {
            d.error(node, path, "config should be a hash or a boolean value");
            return None;
        }
    };
    let mark = ErrorMark::new(d);
    d.unknown_keys(map, path, &["path_prefix", "expire_in", "publish"]);
    let mut pages = PagesSpec {
        enabled: true,
        path_prefix: opt_string(d, map, path, "path_prefix"),
        ..PagesSpec::default()
    };
    if let Some(value) = map.get("expire_in").filter(|n| !n.is_null()) {
        check_duration(d, value, path, "expire_in", true);
        pages.expire_in = value.as_str().map(String::from);
    }
    pages.publish = opt_string(d, map, path, "publish");
    mark.finish(d, pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    fn messages(d: &Decoder) -> Vec<String> {
        d.diags.iter().map(|e| e.message.clone()).collect()
    }

    #[test]
    fn rule_248_id_token_aud_is_a_string_or_a_list() {
        let mut d = Decoder::new();
        let tokens = decode_id_tokens(
            &mut d,
            &doc("ID_TOKEN_1: {aud: https://vault.example.com}\nID_TOKEN_2:\n  aud: [https://gcp.com, https://aws.com]\n"),
            "jobs:x:id_tokens",
        )
        .unwrap();
        assert_eq!(tokens[0].1.aud, ["https://vault.example.com"]);
        assert_eq!(tokens[1].1.aud.len(), 2);

        let mut d = Decoder::new();
        assert!(decode_id_tokens(&mut d, &doc("T: {aud: 1}\n"), "jobs:x:id_tokens").is_none());
        assert_eq!(
            messages(&d),
            ["jobs:x:id_tokens:T aud should be an array of strings or a string"]
        );
    }

    #[test]
    fn rule_248_id_token_needs_aud_only() {
        let mut d = Decoder::new();
        decode_id_tokens(&mut d, &doc("T: {sub: x}\n"), "jobs:x:id_tokens");
        assert_eq!(
            messages(&d),
            [
                "jobs:x:id_tokens:T config contains unknown keys: sub",
                "jobs:x:id_tokens:T config missing required keys: aud",
                "jobs:x:id_tokens:T aud should be an array of strings or a string"
            ]
        );
    }

    #[test]
    fn rule_249_hooks_allow_only_pre_get_sources_script() {
        let mut d = Decoder::new();
        let hooks = decode_hooks(
            &mut d,
            &doc("pre_get_sources_script: [echo a, [echo b]]\n"),
            "jobs:x:hooks",
        )
        .unwrap();
        assert_eq!(hooks.pre_get_sources_script, ["echo a", "echo b"]);

        let mut d = Decoder::new();
        decode_hooks(
            &mut d,
            &doc("post_get_sources_script: [x]\n"),
            "jobs:x:hooks",
        );
        assert_eq!(
            messages(&d),
            ["jobs:x:hooks config contains unknown keys: post_get_sources_script"]
        );

        let mut d = Decoder::new();
        decode_hooks(
            &mut d,
            &doc("pre_get_sources_script: {a: b}\n"),
            "jobs:x:hooks",
        );
        assert_eq!(
            messages(&d),
            [
                "jobs:x:hooks:pre_get_sources_script config should be a string or a nested array of strings up to 10 levels deep"
            ]
        );
    }

    #[test]
    fn rule_250_identity_is_google_cloud() {
        let mut d = Decoder::new();
        let id = decode_identity(&mut d, &doc("google_cloud"), "jobs:x:identity").unwrap();
        assert_eq!(id.provider, "google_cloud");
        assert!(decode_identity(&mut d, &doc("aws"), "jobs:x:identity").is_none());
        assert_eq!(messages(&d), ["jobs:x identity unknown value: aws"]);
    }

    #[test]
    fn rule_252_pages_is_a_boolean_or_a_hash() {
        let mut d = Decoder::new();
        assert!(
            !decode_pages(&mut d, &doc("false"), "jobs:x:pages")
                .unwrap()
                .enabled
        );
        let pages = decode_pages(
            &mut d,
            &doc("publish: dist\npath_prefix: $CI_COMMIT_BRANCH\nexpire_in: 1 week\n"),
            "jobs:x:pages",
        )
        .unwrap();
        assert!(pages.enabled);
        assert_eq!(pages.publish.as_deref(), Some("dist"));
        assert!(d.diags.is_empty());
        decode_pages(&mut d, &doc("public"), "jobs:x:pages");
        assert_eq!(
            messages(&d),
            ["jobs:x:pages config should be a hash or a boolean value"]
        );
    }

    #[test]
    fn rule_253_pages_expire_in_is_a_duration_never_or_variable() {
        for value in ["never", "$DURATION", "3 weeks and 2 days"] {
            let mut d = Decoder::new();
            decode_pages(
                &mut d,
                &doc(&format!("expire_in: {value}\n")),
                "jobs:x:pages",
            );
            assert!(d.diags.is_empty(), "{value}");
        }
        let mut d = Decoder::new();
        decode_pages(
            &mut d,
            &doc("expire_in: later\npublish: [a]\n"),
            "jobs:x:pages",
        );
        assert_eq!(
            messages(&d),
            [
                "jobs:x:pages expire in should be a duration",
                "jobs:x:pages publish should be a string"
            ]
        );
    }
}
