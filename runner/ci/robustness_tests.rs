//! Arbitrary input never panics the front end: random text, and random
//! YAML built from GitLab's own keywords (which reaches far deeper into the
//! decoders than random text does), through every stage after the file is
//! read: parsing, `extends`, `!reference`, `default:` and decoding.

use proptest::prelude::*;

use super::compose;
use super::model::{decode_fragment, decode_pipeline};
use super::source::SourceId;
use super::yaml::parse_documents;

const KEYS: &[&str] = &[
    "script",
    "before_script",
    "after_script",
    "stage",
    "stages",
    "image",
    "services",
    "variables",
    "rules",
    "if",
    "when",
    "changes",
    "exists",
    "needs",
    "job",
    "artifacts",
    "optional",
    "paths",
    "exclude",
    "cache",
    "key",
    "files",
    "policy",
    "parallel",
    "matrix",
    "retry",
    "max",
    "timeout",
    "tags",
    "only",
    "except",
    "refs",
    "extends",
    "default",
    "include",
    "local",
    "inherit",
    "allow_failure",
    "exit_codes",
    "trigger",
    "environment",
    "name",
    "url",
    "dependencies",
    "workflow",
    "reports",
    "dotenv",
    "junit",
    "start_in",
    "interruptible",
    "coverage",
    "release",
    "pages",
    "secrets",
    "id_tokens",
    "hooks",
    "spec",
    "inputs",
    ".hidden",
    "build",
    "test",
];

const SCALARS: &[&str] = &[
    "echo hi",
    "build",
    "test",
    "true",
    "no",
    "null",
    "~",
    "012",
    "1:30",
    "1.5",
    "-3",
    "''",
    "'$CI_COMMIT_BRANCH == \"main\"'",
    "$VAR =~ /^v\\d+/",
    "on_success",
    "manual",
    "delayed",
    "never",
    "always",
    "1h 30m",
    "[a, b]",
    "{}",
    "[]",
    "*a",
    ".hidden",
    "'a/b'",
    "'..'",
    "\"$[[ inputs.x ]]\"",
    "!reference [.hidden, script]",
    "!reference [x]",
];

/// A random YAML document of GitLab-ish keys and values.
fn yaml_doc() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SCALARS).prop_map(|s| s.to_string());
    let tree = leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|items| {
                let items: Vec<String> = items.iter().map(|i| i.replace('\n', " ")).collect();
                format!("[{}]", items.join(", "))
            }),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|entries| {
                let body: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", v.replace('\n', " ")))
                    .collect();
                format!("{{{}}}", body.join(", "))
            }),
        ]
    });
    prop::collection::vec((prop::sample::select(KEYS), tree), 1..6).prop_map(|entries| {
        let mut text = String::from(".anchor: &a {script: [x]}\n");
        for (key, value) in entries {
            text.push_str(&format!("{key}: {value}\n"));
        }
        text
    })
}

/// Runs every stage that follows reading the file; errors are fine,
/// panics are not.
fn front_end(text: &str) {
    let Ok(mut docs) = parse_documents(text, SourceId(1)) else {
        return;
    };
    let Some(mut root) = docs.pop() else { return };
    let mut fragment = root.clone();
    if compose::resolve_extends(&mut root).is_ok()
        && compose::resolve_references(&mut root).is_ok()
        && compose::apply_defaults(&mut root).is_ok()
    {
        let _ = decode_pipeline(&root);
    }
    super::fragment::stub_missing_parents(&mut fragment);
    let _ = compose::resolve_extends(&mut fragment);
    super::fragment::drop_unresolvable_references(&mut fragment);
    let _ = compose::resolve_references(&mut fragment);
    super::fragment::stub_missing_scripts(&mut fragment);
    let _ = compose::apply_defaults(&mut fragment);
    let _ = decode_fragment(&fragment);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn keyword_yaml_never_panics_the_front_end(text in yaml_doc()) {
        front_end(&text);
    }

    #[test]
    fn arbitrary_text_never_panics_the_front_end(text in "\\PC{0,300}") {
        front_end(&text);
    }
}
