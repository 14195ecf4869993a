//! Loading a configuration with all its includes (rules 40-45, 55).
//!
//! Each file is read, its `spec:` header checked and its inputs
//! interpolated, then its own `include:` entries are resolved the same way,
//! depth first. Included files are deep-merged in order, and the file's
//! own content last. Problems are collected so that one run reports every
//! unreachable include; when there is any, only those are returned, since
//! the other errors would be consequences of the missing files.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::context::IncludeContext;
use super::document::{Use, load_document};
use super::entry::{self, IncludeFile, Target};
use super::local::match_wildcard;
use super::resolve::{Origin, fetch, file_list};
use super::rules::{RuleEnv, include_passes};
use crate::ci::diag::{Diagnostic, Diagnostics};
use crate::ci::merge::deep_merge;
use crate::ci::source::{SourceId, Sources, Span};
use crate::ci::yaml::{Mapping, Node, Value};

/// Loads the root file (already registered in `sources` as `root`): checks
/// its optional `spec:` header document (root inputs come from
/// `ctx.root_inputs` or take their defaults), resolves every include
/// recursively, and returns the merged top-level mapping: included files
/// merged in order (nested ones first), the root file last, `include` keys
/// removed.
pub fn load_config(
    root: SourceId,
    sources: &mut Sources,
    ctx: &IncludeContext,
) -> Result<Node, Diagnostics> {
    let mut loader = Loader {
        ctx,
        sources,
        count: 0,
        started: Instant::now(),
        diags: Vec::new(),
        stopped: false,
        file_lists: HashMap::new(),
    };
    let result = loader.root(root);
    let unreachable: Vec<Diagnostic> = loader
        .diags
        .iter()
        .filter(|d| d.kind.is_unresolved_include())
        .cloned()
        .collect();
    if !unreachable.is_empty() {
        return Err(Diagnostics(unreachable));
    }
    match result {
        Some(node) if loader.diags.is_empty() => Ok(node),
        _ => Err(Diagnostics(loader.diags)),
    }
}

struct Loader<'a> {
    ctx: &'a IncludeContext,
    sources: &'a mut Sources,
    /// Files included so far, nested ones and duplicates counted (rule 44).
    count: usize,
    started: Instant,
    diags: Vec<Diagnostic>,
    /// Set when the include limit or the time budget is hit: GitLab stops
    /// there, and so does the loader, instead of repeating the error.
    stopped: bool,
    /// File lists for `rules:exists` and `local` wildcards, per project.
    file_lists: HashMap<String, Vec<String>>,
}

const EMPTY: &BTreeMap<String, String> = &BTreeMap::new();

impl Loader<'_> {
    fn root(&mut self, root: SourceId) -> Option<Node> {
        let text = self
            .sources
            .get(root)
            .map(|f| f.text.clone())
            .unwrap_or_else(|| "".into());
        if text.trim().is_empty() {
            self.diags.push(Diagnostic::config(
                Span::new(root, 1, 1),
                "Please provide content of .gitlab-ci.yml",
            ));
            return None;
        }
        let given: Vec<(String, Node)> = self
            .ctx
            .root_inputs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let ctx = self.ctx;
        let how = Use {
            label: None,
            given: &given,
            span: Span::new(root, 1, 1),
            component: None,
            variables: &ctx.variables,
            placeholders: ctx.placeholder_inputs,
        };
        let content = match load_document(&text, root, &how) {
            Ok(content) => content,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        Some(self.expand_includes(content, &Origin::Local))
    }

    /// Resolves the `include:` of `content` and merges: included files in
    /// order, then `content` itself.
    fn expand_includes(&mut self, mut content: Node, origin: &Origin) -> Node {
        let Some(include) = content.as_map_mut().and_then(|m| m.remove("include")) else {
            return content;
        };
        let ctx = self.ctx;
        let variables = match origin {
            Origin::Public => EMPTY,
            _ => &ctx.variables,
        };
        let entries = match entry::entries(&include, variables) {
            Ok(entries) => entries,
            Err(d) => {
                self.diags.push(d);
                return content;
            }
        };
        let mut merged = Node::map(Mapping::new(), content.span);
        for item in &entries {
            if self.stopped {
                break;
            }
            // GitLab filters entries by their rules before it checks them.
            let rules = item
                .as_map()
                .and_then(|m| m.get("rules"))
                .filter(|r| !r.is_null());
            if let Some(rules) = rules {
                match self.rules_pass(rules, origin, variables, item.span) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(d) => {
                        self.diags.push(d);
                        continue;
                    }
                }
            }
            if let Err(d) = entry::check(item) {
                self.diags.push(d);
                continue;
            }
            for file in entry::files(item, variables) {
                match file {
                    Ok(file) => {
                        for file in self.expand_wildcard(file, origin) {
                            if let Some(node) = self.include_file(file, origin, variables) {
                                deep_merge(&mut merged, node);
                            }
                        }
                    }
                    Err(d) => self.diags.push(d),
                }
            }
        }
        deep_merge(&mut merged, content);
        merged
    }

    fn rules_pass(
        &mut self,
        rules: &Node,
        origin: &Origin,
        variables: &BTreeMap<String, String>,
        span: Span,
    ) -> Result<bool, Diagnostic> {
        let ctx = self.ctx;
        let time_left = self.time_left();
        let lists = &mut self.file_lists;
        let mut files = || -> Result<Option<Vec<String>>, Diagnostic> {
            file_list(ctx, lists, origin, span, time_left)
        };
        let mut env = RuleEnv {
            conditions: ctx.conditions.as_deref(),
            variables,
            changed: ctx.changed_paths.as_deref(),
            files: &mut files,
        };
        include_passes(rules, &mut env)
    }

    /// A wildcard `local` becomes one include per matching file; GitLab
    /// drops the entry's `inputs` and `rules` there.
    fn expand_wildcard(&mut self, file: IncludeFile, origin: &Origin) -> Vec<IncludeFile> {
        let Target::LocalGlob(pattern) = &file.target else {
            return vec![file];
        };
        let time_left = self.time_left();
        match file_list(self.ctx, &mut self.file_lists, origin, file.span, time_left) {
            Ok(Some(files)) => match_wildcard(pattern, &files)
                .into_iter()
                .map(|path| IncludeFile {
                    target: Target::Local(path),
                    span: file.span,
                    inputs: None,
                })
                .collect(),
            Ok(None) => {
                self.diags.push(Diagnostic::config(
                    file.span,
                    format!("Local file `{pattern}` does not have project!"),
                ));
                Vec::new()
            }
            Err(d) => {
                self.diags.push(d);
                Vec::new()
            }
        }
    }

    /// Fetches, loads and expands one included file.
    fn include_file(
        &mut self,
        file: IncludeFile,
        origin: &Origin,
        variables: &BTreeMap<String, String>,
    ) -> Option<Node> {
        if self.stopped {
            return None;
        }
        if self.count >= self.ctx.max_includes {
            self.stopped = true;
            self.diags.push(Diagnostic::config(
                file.span,
                format!(
                    "Maximum of {} nested includes are allowed!",
                    self.ctx.max_includes
                ),
            ));
            return None;
        }
        if self.time_left().is_zero() {
            self.stopped = true;
            self.diags.push(Diagnostic::include_unreachable(
                file.span,
                "Request timed out when fetching configuration files.",
            ));
            return None;
        }
        self.count += 1;
        let (label, loaded) = fetch(self.ctx, &file, origin, self.time_left());
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        let given: Vec<(String, Node)> = match &file.inputs {
            None => Vec::new(),
            Some(Node {
                value: Value::Map(map),
                ..
            }) => map
                .iter()
                .map(|(k, v)| {
                    (
                        k.scalar_string().unwrap_or_default().into_owned(),
                        v.clone(),
                    )
                })
                .collect(),
            Some(other) => {
                self.diags.push(Diagnostic::config(
                    other.span,
                    format!("`{label}`: Given inputs must be a hash"),
                ));
                return None;
            }
        };
        let source = self.sources.add(loaded.name, loaded.text.clone());
        let how = Use {
            label: Some(&label),
            given: &given,
            span: file.span,
            component: loaded.component.as_ref(),
            variables,
            placeholders: false,
        };
        let content = match load_document(&loaded.text, source, &how) {
            Ok(content) => content,
            Err(d) => {
                self.diags.push(d);
                return None;
            }
        };
        Some(self.expand_includes(content, &loaded.origin))
    }

    fn time_left(&self) -> Duration {
        self.ctx.timeout.saturating_sub(self.started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::ci::diag::DiagnosticKind;
    use crate::ci::include::MAX_INCLUDES;
    use crate::ci::include::fetch::{cache_path, cache_write};
    use crate::ci::include::project::{seed_component_cache, seed_project_cache};
    use crate::ci::include::rules::ConditionEvaluator;

    /// Answers `if:` expressions from a fixed table, so tests do not depend
    /// on the expression engine.
    struct Table(Vec<(&'static str, bool)>);

    impl ConditionEvaluator for Table {
        fn if_true(&self, expr: &str, _: &BTreeMap<String, String>) -> Result<bool, String> {
            self.0
                .iter()
                .find(|(e, _)| *e == expr)
                .map(|(_, v)| *v)
                .ok_or_else(|| format!("unexpected expression {expr}"))
        }
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
    }

    fn context(project: &Path, cache: &Path) -> IncludeContext {
        let mut ctx = IncludeContext::new(project, "https://gitlab.example.com", cache);
        ctx.offline = true;
        ctx
    }

    fn load_file(ctx: &IncludeContext, path: &str) -> (Result<Node, Diagnostics>, Sources) {
        let text = std::fs::read_to_string(ctx.project_dir.join(path)).unwrap();
        let mut sources = Sources::new();
        let root = sources.add(path, text);
        (load_config(root, &mut sources, ctx), sources)
    }

    fn load(files: &[(&str, &str)]) -> Result<Node, Diagnostics> {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), files);
        let ctx = context(dir.path(), &dir.path().join(".cache"));
        load_file(&ctx, ".gitlab-ci.yml").0
    }

    fn get<'a>(node: &'a Node, path: &[&str]) -> &'a Node {
        path.iter().fold(node, |n, k| {
            n.as_map()
                .and_then(|m| m.get(k))
                .unwrap_or_else(|| panic!("no key {k}"))
        })
    }

    fn messages(result: Result<Node, Diagnostics>) -> Vec<String> {
        result
            .unwrap_err()
            .iter()
            .map(|d| d.message.clone())
            .collect()
    }

    #[test]
    fn rule_41_nested_includes_first_then_in_order_then_the_main_file() {
        let out = load(&[
            (
                ".gitlab-ci.yml",
                "job: {script: main}\ninclude: [a.yml, /b.yml]\nstages: [s]\n",
            ),
            ("a.yml", "include: n.yml\nx: {from: a}\ny: {from: a}\n"),
            ("n.yml", "x: {from: n, only_n: 1}\n"),
            ("b.yml", "y: {from: b}\njob: {script: b, stage: s}\n"),
        ])
        .unwrap();
        let map = out.as_map().unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["x", "y", "job", "stages"]);
        assert_eq!(get(&out, &["x", "from"]).as_str(), Some("a"));
        assert_eq!(get(&out, &["x", "only_n"]).as_int(), Some(1));
        assert_eq!(get(&out, &["y", "from"]).as_str(), Some("b"));
        // Rule 40/42: the main file wins, hashes merge key by key.
        assert_eq!(get(&out, &["job", "script"]).as_str(), Some("main"));
        assert_eq!(get(&out, &["job", "stage"]).as_str(), Some("s"));
        assert!(!map.contains_key("include"));
    }

    #[test]
    fn rule_44_include_loops_stop_at_the_limit() {
        let errors = messages(load(&[
            (".gitlab-ci.yml", "include: a.yml\n"),
            ("a.yml", "include: [a.yml, a.yml]\nj: {script: x}\n"),
        ]));
        assert_eq!(errors, ["Maximum of 150 nested includes are allowed!"]);
    }

    #[test]
    fn rule_45_includes_must_resolve_within_the_time_budget() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (".gitlab-ci.yml", "include: [a.yml, b.yml]\n"),
                ("a.yml", "a: 1\n"),
                ("b.yml", "b: 1\n"),
            ],
        );
        let mut ctx = context(dir.path(), &dir.path().join(".cache"));
        ctx.max_includes = 1;
        let errors = load_file(&ctx, ".gitlab-ci.yml").0.unwrap_err();
        assert_eq!(
            errors.0[0].message,
            "Maximum of 1 nested includes are allowed!"
        );
        ctx.max_includes = MAX_INCLUDES;
        ctx.timeout = Duration::ZERO;
        let errors = load_file(&ctx, ".gitlab-ci.yml").0.unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors.0[0].kind, DiagnosticKind::IncludeUnreachable);
        assert_eq!(
            errors.0[0].message,
            "Request timed out when fetching configuration files."
        );
    }

    #[test]
    fn rule_46_a_missing_local_file_is_a_config_error_at_the_include() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[(
                ".gitlab-ci.yml",
                "job: {script: x}\ninclude:\n  - local: /ci/nope.yml\n",
            )],
        );
        let ctx = context(dir.path(), &dir.path().join(".cache"));
        let (result, sources) = load_file(&ctx, ".gitlab-ci.yml");
        let errors = result.unwrap_err();
        assert_eq!(errors.len(), 1);
        let error = &errors.0[0];
        assert_eq!(error.kind, DiagnosticKind::IncludeMissing);
        assert_eq!(error.message, "Local file `ci/nope.yml` does not exist!");
        assert_eq!(sources.location(error.span), ".gitlab-ci.yml:3:5");
    }

    #[test]
    fn rule_47_wildcards_include_every_match_in_path_order() {
        let out = load(&[
            (".gitlab-ci.yml", "include: 'ci/**.yml'\n"),
            ("ci/b.yml", "v: {b: 1}\nlast: b\n"),
            ("ci/a/x.yml", "v: {a: 1}\nlast: a\n"),
            ("ci/notes.txt", "not yaml"),
        ])
        .unwrap();
        assert_eq!(get(&out, &["last"]).as_str(), Some("b"));
        assert_eq!(get(&out, &["v"]).as_map().unwrap().len(), 2);
    }

    #[test]
    fn rule_55_the_same_file_can_be_included_twice_with_different_inputs() {
        let out = load(&[
            (
                ".gitlab-ci.yml",
                "include:\n  - local: t.yml\n    inputs: {name: a}\n  - local: t.yml\n    inputs: {name: b, n: 2}\n",
            ),
            (
                "t.yml",
                "spec:\n  inputs:\n    name:\n    n: {type: number, default: 1}\n---\n\
                 'job-$[[ inputs.name ]]':\n  parallel: $[[ inputs.n ]]\n  script: echo $[[ inputs.name ]]\n",
            ),
        ])
        .unwrap();
        assert_eq!(get(&out, &["job-a", "parallel"]).as_int(), Some(1));
        assert_eq!(get(&out, &["job-b", "parallel"]).as_int(), Some(2));
        assert_eq!(get(&out, &["job-b", "script"]).as_str(), Some("echo b"));
    }

    #[test]
    fn rule_57_root_inputs_take_their_defaults_and_feed_include_inputs() {
        let out = load(&[
            (
                ".gitlab-ci.yml",
                "spec:\n  inputs:\n    skip: {type: boolean, default: false}\n---\n\
                 include:\n  - local: t.yml\n    inputs:\n      skip: $[[ inputs.skip ]]\n",
            ),
            ("t.yml", "spec:\n  inputs:\n    skip: {type: boolean}\n---\nj:\n  when: $[[ inputs.skip ]]\n"),
        ])
        .unwrap();
        assert_eq!(get(&out, &["j", "when"]).as_bool(), Some(false));
    }

    #[test]
    fn rule_53_include_rules_pick_files() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (
                    ".gitlab-ci.yml",
                    "include:\n  - local: yes.yml\n    rules: [{if: $ON}]\n  - local: no.yml\n    rules: [{if: $OFF}]\n  \
                     - local: never.yml\n    rules: [{exists: [Cargo.toml]}]\n  \
                     - local: bad.yml\n    unknown_key: 1\n    rules: [{if: $OFF}]\n",
                ),
                ("yes.yml", "a: 1\n"),
            ],
        );
        let mut ctx = context(dir.path(), &dir.path().join(".cache"));
        ctx.conditions = Some(Box::new(Table(vec![("$ON", true), ("$OFF", false)])));
        let out = load_file(&ctx, ".gitlab-ci.yml").0.unwrap();
        assert_eq!(out.as_map().unwrap().keys().collect::<Vec<_>>(), ["a"]);
        ctx.conditions = None;
        let errors = messages(load_file(&ctx, ".gitlab-ci.yml").0);
        assert_eq!(
            errors,
            ["include:rule if cannot be evaluated: no expression evaluator is configured"; 3]
        );
    }

    #[test]
    fn rule_50_the_projects_own_component_at_the_current_commit_comes_from_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                (
                    ".gitlab-ci.yml",
                    "include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/lint@$CI_COMMIT_SHA\n",
                ),
                (
                    "templates/lint/template.yml",
                    "spec:\n  component: [name]\n---\n'$[[ component.name ]]':\n  script: x\n",
                ),
            ],
        );
        let mut ctx = context(dir.path(), &dir.path().join(".cache"));
        ctx.variables = BTreeMap::from([
            (
                "CI_SERVER_FQDN".to_string(),
                "gitlab.example.com".to_string(),
            ),
            ("CI_PROJECT_PATH".to_string(), "Group/Proj".to_string()),
            ("CI_COMMIT_SHA".to_string(), "0123abc".to_string()),
        ]);
        let out = load_file(&ctx, ".gitlab-ci.yml").0.unwrap();
        assert!(out.as_map().unwrap().contains_key("lint"));
    }

    #[test]
    fn only_unresolved_includes_are_reported_when_there_are_any() {
        let errors = load(&[(
            ".gitlab-ci.yml",
            "include:\n  - missing.yml\n  - https://example.com/ci/a.yml\n  - template: Jobs/Build.gitlab-ci.yml\n",
        )])
        .unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Local file `missing.yml` does not exist!",
                "Remote file `https://example.com/ci/a.yml` could not be fetched because it is not in the cache and the run is offline!",
                "Template file `Jobs/Build.gitlab-ci.yml` could not be fetched: it is not in the cache and the run is offline",
            ]
        );
        assert!(errors.iter().all(|d| d.kind.is_unresolved_include()));
    }

    #[test]
    fn nested_local_includes_in_a_remote_file_have_no_project() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[(".gitlab-ci.yml", "include: https://example.com/a.yml\n")],
        );
        let ctx = context(dir.path(), &dir.path().join(".cache"));
        let url = "https://example.com/a.yml";
        cache_write(
            &cache_path(&ctx.cache_dir, "remote", url),
            "include: local.yml\nj: {script: x}\n",
        );
        let errors = messages(load_file(&ctx, ".gitlab-ci.yml").0);
        assert_eq!(errors, ["Local file `local.yml` does not have project!"]);
    }

    #[test]
    fn corpus_gitlab_runner_merges_its_local_includes() {
        let project = crate::ci::test_corpus::project("gitlabhq__gitlab-runner");
        let project = project.as_path();
        let cache = tempfile::tempdir().unwrap();
        let mut ctx = IncludeContext::new(project, "https://gitlab.com", cache.path());
        ctx.offline = true;
        ctx.variables = BTreeMap::from([
            ("CI_SERVER_FQDN".to_string(), "gitlab.com".to_string()),
            (
                "CI_PROJECT_PATH".to_string(),
                "gitlab-org/gitlab-runner".to_string(),
            ),
        ]);
        let canonical = "$CI_PROJECT_PATH == \"gitlab-org/gitlab-runner\" || $CI_PROJECT_PATH == \"gitlab-org/security/gitlab-runner\"";
        ctx.conditions = Some(Box::new(Table(vec![
            (canonical, true),
            ("$CI_PROJECT_PATH", true),
            (
                "$CI_SERVER_HOST == \"gitlab.com\" && ($CI_MERGE_REQUEST_SOURCE_PROJECT_PATH == \"gitlab-org/gitlab-runner\" || $CI_MERGE_REQUEST_SOURCE_PROJECT_PATH == \"gitlab-org/security/gitlab-runner\" || $CI_MERGE_REQUEST_SOURCE_PROJECT_PATH == \"gitlab-community/gitlab-org/gitlab-runner\")",
                false,
            ),
        ])));
        // The files from other projects are not in the corpus: stand-ins go
        // in the cache, as a previous online run would have left them.
        seed_project_cache(
            &ctx,
            "gitlab-com/gl-security/security-operations/infrastructure-security-public/oidc-modules",
            "3.4.0",
            "templates/gcp_auth.yaml",
            ".google-oidc:auth:\n  id_tokens: {GCP_ID_TOKEN: {aud: x}}\n",
        );
        seed_component_cache(
            &ctx,
            "gitlab.com/components/dependency-scanning/main@1.1.1",
            "dependency-scanning:\n  script: [scan]\n",
        );
        seed_component_cache(
            &ctx,
            "gitlab.com/components/sast/sast@3.4.0",
            "spec:\n  inputs:\n    run_advanced_sast: {type: boolean, default: false}\n---\n\
             gitlab-advanced-sast:\n  script: [sast]\n  allow_failure: $[[ inputs.run_advanced_sast ]]\n",
        );
        let template = format!("{TEMPLATE_BASE}/Security/Coverage-Fuzzing.latest.gitlab-ci.yml");
        cache_write(
            &cache_path(&ctx.cache_dir, "remote", &template),
            ".fuzz_base:\n  stage: fuzz\n",
        );

        let out = load_file(&ctx, ".gitlab-ci.yml").0.unwrap();
        let map = out.as_map().unwrap();
        for job in [
            "binaries",
            "unit test",
            "helper images",
            "dependency-scanning",
            ".fuzz_base",
            ".google-oidc:auth",
        ] {
            assert!(map.contains_key(job), "missing {job}");
        }
        assert!(!map.contains_key("include"));
        // `_project_canonical` is included, `_project_fork` is not.
        assert_eq!(
            get(&out, &[".instance-default"]).as_str(),
            Some("$RUNNER_TAG_DEFAULT")
        );
        assert_eq!(
            get(&out, &["gitlab-advanced-sast", "allow_failure"]).as_bool(),
            Some(true)
        );
        assert_eq!(
            get(&out, &["stages"]).as_seq().unwrap()[0].as_str(),
            Some("build")
        );
    }

    const TEMPLATE_BASE: &str = crate::ci::include::TEMPLATE_BASE_URL;

    #[test]
    fn corpus_remote_include_offline_is_one_unreachable_error_naming_the_url() {
        let project = crate::ci::test_corpus::project("agx__git-buildpackage");
        let project = project.as_path();
        let cache = tempfile::tempdir().unwrap();
        let ctx = context(project, cache.path());
        let (result, sources) = load_file(&ctx, ".gitlab-ci.yml");
        let errors = result.unwrap_err();
        assert_eq!(errors.len(), 1);
        let error = &errors.0[0];
        assert_eq!(error.kind, DiagnosticKind::IncludeUnreachable);
        assert!(error.message.contains(
            "`https://gitlab.freedesktop.org/freedesktop/ci-templates/-/raw/6a40df92957c8ce9ee741aaccc5daaaf70545b1e/templates/ci-fairy.yml`"
        ));
        assert_eq!(sources.location(error.span), ".gitlab-ci.yml:3:5");
    }
}
