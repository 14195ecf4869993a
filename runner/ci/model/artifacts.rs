//! `artifacts:` (rules 203-214): what a job uploads, when, for how long and
//! who may download it, plus the `reports` GitLab reads back.

use serde::Serialize;

use super::check::{
    ErrorMark, attr_error, check_duration, child, is_blank, one_of, opt_bool, opt_string,
    opt_strings, string_or_strings,
};
use super::decode::Decoder;
use crate::ci::yaml::{Mapping, Node, Value};

const ALLOWED_KEYS: &[&str] = &[
    "name",
    "untracked",
    "paths",
    "reports",
    "when",
    "expire_in",
    "expose_as",
    "exclude",
    "public",
    "access",
];

const ALLOWED_WHEN: &[&str] = &["on_success", "on_failure", "always"];
const ALLOWED_ACCESS: &[&str] = &["none", "developer", "maintainer", "all"];

/// Report types `artifacts:reports` accepts. Each takes a path, a glob or a
/// list of them, except `coverage_report`, which is a hash. Deprecated
/// types are kept: GitLab still accepts them in configurations.
pub const REPORT_TYPES: &[&str] = &[
    "junit",
    "codequality",
    "sast",
    "secret_detection",
    "dependency_scanning",
    "container_scanning",
    "dast",
    "performance",
    "browser_performance",
    "load_performance",
    "license_scanning",
    "metrics",
    "lsif",
    "dotenv",
    "terraform",
    "accessibility",
    "coverage_fuzzing",
    "api_fuzzing",
    "cluster_image_scanning",
    "requirements",
    "requirements_v2",
    "coverage_report",
    "cyclonedx",
    "annotations",
    "repository_xray",
];

const COVERAGE_FORMATS: &[&str] = &["cobertura", "jacoco"];

/// When artifacts or a cache are saved, by the job's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadWhen {
    #[default]
    OnSuccess,
    OnFailure,
    Always,
}

impl UploadWhen {
    fn parse(text: &str) -> Option<UploadWhen> {
        match text {
            "on_success" => Some(UploadWhen::OnSuccess),
            "on_failure" => Some(UploadWhen::OnFailure),
            "always" => Some(UploadWhen::Always),
            _ => None,
        }
    }

    /// The keyword as written in the YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadWhen::OnSuccess => "on_success",
            UploadWhen::OnFailure => "on_failure",
            UploadWhen::Always => "always",
        }
    }
}

/// A job's `artifacts:`. Strings are kept as written; variables in them
/// are expanded when the job runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArtifactsSpec {
    /// Archive name; GitLab's default is `artifacts`.
    pub name: Option<String>,
    pub paths: Vec<String>,
    pub exclude: Vec<String>,
    pub untracked: bool,
    pub when: UploadWhen,
    /// As written: a duration, `never`, or a value with a variable.
    pub expire_in: Option<String>,
    pub expose_as: Option<String>,
    pub public: Option<bool>,
    /// `all`, `developer`, `maintainer` or `none`.
    pub access: Option<String>,
    /// Report type and its paths, in the order written.
    pub reports: Vec<(String, Vec<String>)>,
    pub coverage_report: Option<CoverageReport>,
}

/// `artifacts:reports:coverage_report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CoverageReport {
    /// `cobertura` or `jacoco`.
    pub coverage_format: String,
    pub path: String,
}

/// Decodes `artifacts:` at `path` (`jobs:build:artifacts`).
pub(crate) fn decode_artifacts(d: &mut Decoder, node: &Node, path: &str) -> Option<ArtifactsSpec> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, ALLOWED_KEYS);

    let expose_as = map.get("expose_as").filter(|n| !n.is_null());
    if expose_as.is_some() && map.get("paths").is_none_or(is_blank) {
        attr_error(
            d,
            map.get("paths").unwrap_or(node),
            path,
            "paths",
            "can't be blank",
        );
    }
    mutually_exclusive(d, node, map, path, &["access", "public"]);

    let mut spec = ArtifactsSpec {
        name: opt_string(d, map, path, "name"),
        public: opt_bool(d, map, path, "public"),
        untracked: opt_bool(d, map, path, "untracked").unwrap_or(false),
        paths: opt_strings(d, map, path, "paths").unwrap_or_default(),
        exclude: Vec::new(),
        ..ArtifactsSpec::default()
    };
    if let (Some(_), Some(paths)) = (expose_as, map.get("paths")) {
        if spec.paths.iter().any(|p| p.contains('*')) {
            attr_error(
                d,
                paths,
                path,
                "paths",
                "can't contain '*' when used with 'expose_as'",
            );
        }
    }
    if let Some(value) = expose_as {
        spec.expose_as = check_expose_as(d, value, path);
    }
    spec.exclude = opt_strings(d, map, path, "exclude").unwrap_or_default();
    if let Some(value) = map.get("reports").filter(|n| !n.is_null()) {
        if value.as_map().is_none() {
            attr_error(d, value, path, "reports", "should be a hash");
        }
    }
    if let Some(value) = map.get("when").filter(|n| !n.is_null()) {
        spec.when = choice(d, value, path, "when", ALLOWED_WHEN)
            .and_then(|w| UploadWhen::parse(&w))
            .unwrap_or_default();
    }
    if let Some(value) = map.get("expire_in").filter(|n| !n.is_null()) {
        check_duration(d, value, path, "expire_in", true);
        spec.expire_in = value.as_str().map(String::from);
    }
    if let Some(value) = map.get("access").filter(|n| !n.is_null()) {
        spec.access = choice(d, value, path, "access", ALLOWED_ACCESS);
    }

    // GitLab validates nested entries only once their parent is valid.
    if mark.clean(d) {
        if let Some(reports) = map.get("reports").filter(|n| !n.is_null()) {
            let (list, coverage) = decode_reports(d, reports, &child(path, "reports"));
            spec.reports = list;
            spec.coverage_report = coverage;
        }
    }
    mark.finish(d, spec)
}

/// `validates :key, type: String, inclusion: { in: allowed }`: a value
/// that is not a string fails both checks.
fn choice(d: &mut Decoder, node: &Node, path: &str, key: &str, allowed: &[&str]) -> Option<String> {
    let text = node.as_str();
    if text.is_none() {
        attr_error(d, node, path, key, "should be a string");
    }
    match text {
        Some(t) if allowed.contains(&t) => Some(t.to_string()),
        _ => {
            attr_error(
                d,
                node,
                path,
                key,
                &format!("should be one of: {}", one_of(allowed)),
            );
            None
        }
    }
}

/// GitLab's `MutuallyExclusiveKeysValidator`: names the keys in the order
/// they were written.
pub(crate) fn mutually_exclusive(
    d: &mut Decoder,
    node: &Node,
    map: &Mapping,
    path: &str,
    keys: &[&str],
) {
    let present: Vec<&str> = map.keys().filter(|k| keys.contains(k)).collect();
    if present.len() > 1 {
        d.error(
            node,
            path,
            format!(
                "config these keys cannot be used together: {}",
                present.join(", ")
            ),
        );
    }
}

/// `expose_as`: a string of at most 100 characters made of letters,
/// digits, `-`, `_` and spaces, starting with a letter, digit or `_`.
fn check_expose_as(d: &mut Decoder, node: &Node, path: &str) -> Option<String> {
    let text = node
        .scalar_string()
        .map(|s| s.into_owned())
        .unwrap_or_default();
    let is_string = node.as_str().is_some();
    if !is_string {
        attr_error(d, node, path, "expose_as", "should be a string");
    }
    if text.chars().count() > 100 {
        attr_error(
            d,
            node,
            path,
            "expose_as",
            "is too long (maximum is 100 characters)",
        );
    }
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = text.chars();
    let valid = chars.next().is_some_and(word) && chars.all(|c| word(c) || c == '-' || c == ' ');
    if !valid {
        attr_error(
            d,
            node,
            path,
            "expose_as",
            "can contain only letters, digits, '-', '_' and spaces",
        );
    }
    is_string.then_some(text)
}

type Reports = (Vec<(String, Vec<String>)>, Option<CoverageReport>);

/// `artifacts:reports` at `path`; errors are recorded in `d`.
fn decode_reports(d: &mut Decoder, node: &Node, path: &str) -> Reports {
    let mut list = Vec::new();
    let Some(map) = node.as_map() else {
        d.error(node, path, "config should be a hash");
        return (list, None);
    };
    let mark = ErrorMark::new(d);
    d.unknown_keys(map, path, REPORT_TYPES);
    let mut coverage_node = None;
    for (key, value) in map.iter() {
        let Some(kind) = key.as_str().filter(|k| REPORT_TYPES.contains(k)) else {
            continue;
        };
        if kind == "coverage_report" {
            coverage_node = Some(value);
            continue;
        }
        if value.is_null() {
            continue;
        }
        match string_or_strings(value) {
            Some(paths) => list.push((kind.to_string(), paths)),
            None => attr_error(
                d,
                value,
                path,
                kind,
                "should be an array of strings or a string",
            ),
        }
    }
    let mut coverage = None;
    if let Some(value) = coverage_node.filter(|n| !n.is_null()) {
        if mark.clean(d) {
            coverage = decode_coverage_report(d, value, &child(path, "coverage_report"));
        }
    }
    (list, coverage)
}

fn decode_coverage_report(d: &mut Decoder, node: &Node, path: &str) -> Option<CoverageReport> {
    let mark = ErrorMark::new(d);
    let map = d.map(node, path)?;
    d.unknown_keys(map, path, &["coverage_format", "path"]);
    let format = map.get("coverage_format");
    let coverage_format = match format {
        Some(n) if !is_blank(n) => match n.as_str() {
            Some(f) if COVERAGE_FORMATS.contains(&f) => f.to_string(),
            _ => {
                let message = format!(
                    "must be one of supported formats: {}.",
                    one_of(COVERAGE_FORMATS)
                );
                attr_error(d, n, path, "coverage_format", &message);
                String::new()
            }
        },
        _ => {
            attr_error(
                d,
                format.unwrap_or(node),
                path,
                "coverage_format",
                "can't be blank",
            );
            String::new()
        }
    };
    let report_path = match map.get("path") {
        Some(n) if !is_blank(n) => match &n.value {
            Value::Str(s) => s.clone(),
            _ => {
                attr_error(d, n, path, "path", "should be a string");
                String::new()
            }
        },
        found => {
            attr_error(d, found.unwrap_or(node), path, "path", "can't be blank");
            String::new()
        }
    };
    mark.finish(
        d,
        CoverageReport {
            coverage_format,
            path: report_path,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn decode(text: &str) -> (Option<ArtifactsSpec>, Vec<String>) {
        let node = parse_documents(text, SourceId(1)).unwrap().remove(0);
        let mut d = Decoder::new();
        let out = decode_artifacts(&mut d, &node, "jobs:build:artifacts");
        (out, d.diags.iter().map(|e| e.message.clone()).collect())
    }

    fn errors(text: &str) -> Vec<String> {
        decode(text).1
    }

    #[test]
    fn rule_203_paths_exclude_name_and_untracked_decode() {
        let (spec, errs) = decode(
            "name: $CI_JOB_NAME\npaths: [binaries/, .config]\nexclude: ['binaries/**/*.o']\nuntracked: true\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let spec = spec.unwrap();
        assert_eq!(spec.name.as_deref(), Some("$CI_JOB_NAME"));
        assert_eq!(spec.paths, ["binaries/", ".config"]);
        assert_eq!(spec.exclude, ["binaries/**/*.o"]);
        assert!(spec.untracked);
        assert_eq!(spec.when, UploadWhen::OnSuccess);
    }

    #[test]
    fn rule_203_attribute_types_are_checked() {
        assert_eq!(
            errors("name: 10\n"),
            ["jobs:build:artifacts name should be a string"]
        );
        assert_eq!(
            errors("paths: public/\n"),
            ["jobs:build:artifacts paths should be an array of strings"]
        );
        assert_eq!(
            errors("exclude: 1234\n"),
            ["jobs:build:artifacts exclude should be an array of strings"]
        );
        assert_eq!(
            errors("untracked: 'true'\n"),
            ["jobs:build:artifacts untracked should be a boolean value"]
        );
        assert_eq!(
            errors("test: 100\n"),
            ["jobs:build:artifacts config contains unknown keys: test"]
        );
        assert_eq!(
            errors("[a]"),
            ["jobs:build:artifacts config should be a hash"]
        );
    }

    #[test]
    fn rule_205_expire_in_is_a_duration_never_or_a_variable() {
        for value in [
            "'42'",
            "3 mins 4 sec",
            "2h20min",
            "6 mos 1 day",
            "47 yrs 6 mos and 4d",
            "never",
            "$EXPIRY",
        ] {
            let (spec, errs) = decode(&format!("expire_in: {value}\n"));
            assert!(errs.is_empty(), "{value}: {errs:?}");
            assert!(spec.unwrap().expire_in.is_some());
        }
        assert_eq!(
            errors("expire_in: 42\n"),
            ["jobs:build:artifacts expire in should be a duration"]
        );
        assert_eq!(
            errors("expire_in: soon\n"),
            ["jobs:build:artifacts expire in should be a duration"]
        );
    }

    #[test]
    fn rule_206_when_is_one_of_three_values() {
        let (spec, _) = decode("when: always\n");
        assert_eq!(spec.unwrap().when, UploadWhen::Always);
        assert_eq!(
            errors("when: never\n"),
            ["jobs:build:artifacts when should be one of: on_success, on_failure, always"]
        );
    }

    #[test]
    fn rule_208_expose_as_requires_paths_without_globs() {
        assert!(errors("expose_as: 'artifact 1'\npaths: [file.txt]\n").is_empty());
        assert_eq!(
            errors("expose_as: Test results\n"),
            ["jobs:build:artifacts paths can't be blank"]
        );
        assert_eq!(
            errors("expose_as: Test results\npaths: [test.txt, 'test*.txt']\n"),
            ["jobs:build:artifacts paths can't contain '*' when used with 'expose_as'"]
        );
        assert_eq!(
            errors("expose_as: '<script>'\npaths: [a]\n"),
            [
                "jobs:build:artifacts expose as can contain only letters, digits, '-', '_' and spaces"
            ]
        );
        assert_eq!(
            errors(&format!("expose_as: {}\npaths: [a]\n", "A".repeat(101))),
            ["jobs:build:artifacts expose as is too long (maximum is 100 characters)"]
        );
    }

    #[test]
    fn rule_209_public_and_access_cannot_both_be_set() {
        let (spec, errs) = decode("access: developer\n");
        assert!(errs.is_empty());
        assert_eq!(spec.unwrap().access.as_deref(), Some("developer"));
        assert_eq!(
            errors("public: false\naccess: none\n"),
            ["jobs:build:artifacts config these keys cannot be used together: public, access"]
        );
        assert_eq!(
            errors("access: everyone\n"),
            ["jobs:build:artifacts access should be one of: none, developer, maintainer, all"]
        );
        assert_eq!(
            errors("public: 'false'\n"),
            ["jobs:build:artifacts public should be a boolean value"]
        );
    }

    #[test]
    fn rule_212_report_types_take_paths() {
        let (spec, errs) = decode(
            "reports:\n  junit: rspec.xml\n  cyclonedx: [gl-sbom-*.json, my.json]\n  dotenv: build.env\n  coverage_report:\n    coverage_format: cobertura\n    path: coverage/cobertura-coverage.xml\n",
        );
        assert!(errs.is_empty(), "{errs:?}");
        let spec = spec.unwrap();
        assert_eq!(
            spec.reports,
            [
                ("junit".to_string(), vec!["rspec.xml".to_string()]),
                (
                    "cyclonedx".to_string(),
                    vec!["gl-sbom-*.json".to_string(), "my.json".to_string()]
                ),
                ("dotenv".to_string(), vec!["build.env".to_string()]),
            ]
        );
        assert_eq!(
            spec.coverage_report,
            Some(CoverageReport {
                coverage_format: "cobertura".into(),
                path: "coverage/cobertura-coverage.xml".into()
            })
        );
    }

    #[test]
    fn rule_212_report_errors() {
        assert_eq!(
            errors("reports: junit.xml\n"),
            ["jobs:build:artifacts reports should be a hash"]
        );
        assert_eq!(
            errors("reports: {codeclimate: a.json}\n"),
            ["jobs:build:artifacts:reports config contains unknown keys: codeclimate"]
        );
        assert_eq!(
            errors("reports: {api_fuzzing: 10}\n"),
            ["jobs:build:artifacts:reports api fuzzing should be an array of strings or a string"]
        );
        assert_eq!(
            errors("reports: {coverage_report: {coverage_format: lcov, path: x}}\n"),
            [
                "jobs:build:artifacts:reports:coverage_report coverage format must be one of supported formats: cobertura, jacoco."
            ]
        );
        assert_eq!(
            errors("reports: {coverage_report: {coverage_format: jacoco}}\n"),
            ["jobs:build:artifacts:reports:coverage_report path can't be blank"]
        );
    }

    #[test]
    fn nested_reports_are_not_checked_while_artifacts_has_errors() {
        assert_eq!(
            errors("name: 1\nreports: {codeclimate: a.json}\n"),
            ["jobs:build:artifacts name should be a string"]
        );
    }
}
