//! Reading `config.toml`: typed values, errors at `file:line:col` with the
//! key, and warnings for keys nobody knows.
//!
//! The text is parsed once into toml's spanned tree (`toml::de::DeTable`),
//! which serves three needs: the walk for unknown keys (every key keeps its
//! span), the typed deserialization (`toml::de::Deserializer` takes the
//! tree without parsing again), and the key path of an error (found from
//! the error's span). toml is already how the file is typed; `toml_edit`
//! also has spans but would need a second serde layer, and `toml_span`
//! would replace serde derive altogether.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;

use super::known::{self, ConfigWarning};
use super::model::Config;

/// A `config.toml` that cannot be used, or a change to it that failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A value of the wrong type or out of range, a syntax error, or a
    /// required key missing. `line` and `column` are 1-based; `key` is the
    /// dotted path (`runners.docker.pull_policy`).
    #[error("{}", invalid_message(path, *line, *column, key.as_deref(), message))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: Option<String>,
        message: String,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An edit named a runner the file does not have.
    #[error("{}: no runner with {what}", path.display())]
    NoSuchRunner { path: PathBuf, what: String },
}

fn invalid_message(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut out = path.display().to_string();
    if let Some(line) = line {
        out.push_str(&format!(":{line}"));
        if let Some(column) = column {
            out.push_str(&format!(":{column}"));
        }
    }
    out.push_str(": ");
    // The parser's own message may already name the key.
    if let Some(key) = key.filter(|k| !message.contains(&format!("`{k}`"))) {
        out.push_str(key);
        out.push_str(": ");
    }
    out.push_str(message);
    out
}

/// A loaded configuration and what is worth telling the operator about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    /// Keys neither gitlab-runner nor this runner knows, in file order.
    pub warnings: Vec<ConfigWarning>,
}

/// Reads and checks `path`.
pub fn load_config(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_config(path, &text)
}

/// Parses the text of a `config.toml`; `path` names it in errors and
/// warnings.
pub fn parse_config(path: &Path, text: &str) -> Result<Loaded, ConfigError> {
    let tree = DeTable::parse(text).map_err(|e| invalid(path, text, None, &e))?;
    let warnings = known::unknown_keys(path, text, tree.get_ref());
    let config = Config::deserialize(toml::de::Deserializer::from(tree.clone()))
        .map_err(|e| invalid(path, text, Some(tree.get_ref()), &e))?;
    check_runners(path, text, tree.get_ref(), &config)?;
    Ok(Loaded { config, warnings })
}

/// What serde cannot say: a runner without its URL or token is of no use.
fn check_runners(
    path: &Path,
    text: &str,
    tree: &DeTable<'_>,
    config: &Config,
) -> Result<(), ConfigError> {
    let Some((index, runner)) = config
        .runners
        .iter()
        .enumerate()
        .find(|(_, r)| r.url.is_empty() || r.token.is_empty())
    else {
        return Ok(());
    };
    let offset = tree
        .get("runners")
        .and_then(|v| match v.get_ref() {
            toml::de::DeValue::Array(items) => items.get(index).map(|item| item.span().start),
            _ => None,
        })
        .unwrap_or(0);
    let (line, column) = line_column(text, offset);
    let missing = match (runner.url.is_empty(), runner.token.is_empty()) {
        (true, true) => "`url` and `token` are required",
        (true, false) => "`url` is required",
        _ => "`token` is required",
    };
    let name = if runner.name.is_empty() {
        "unnamed".to_owned()
    } else {
        format!("{:?}", runner.name)
    };
    Err(ConfigError::Invalid {
        path: path.to_owned(),
        line: Some(line),
        column: Some(column),
        key: None,
        message: format!("runner {} ({name}): {missing}", index + 1),
    })
}

fn invalid(
    path: &Path,
    text: &str,
    tree: Option<&DeTable<'_>>,
    err: &toml::de::Error,
) -> ConfigError {
    // The parser's message can span lines (an expectation below the
    // problem); the error stays on one line.
    let message = err
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // A span over the whole document (a missing top-level key) points
    // nowhere useful.
    let span = err
        .span()
        .filter(|s| !(s.start == 0 && s.end >= text.len()));
    let (line, column, key) = match span {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            let key = tree.and_then(|t| known::key_at(t, span.start));
            (Some(line), Some(column), key)
        }
        None => (None, None, None),
    };
    ConfigError::Invalid {
        path: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let line = known::line_of(text, offset);
    let line_start = text
        .get(..offset)
        .and_then(|before| before.rfind('\n'))
        .map_or(0, |i| i + 1);
    let column = text
        .get(line_start..offset)
        .map_or(1, |s| s.chars().count() + 1);
    (line, column)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{ExecutorKind, LogFormat, PullPolicy, Timestamp};

    fn parse(text: &str) -> Result<Loaded, ConfigError> {
        parse_config(Path::new("config.toml"), text)
    }

    fn warnings(text: &str) -> Vec<String> {
        parse(text)
            .unwrap()
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn the_spec_fixture_loads_with_every_section_and_no_warning() {
        let path = crate::ci::test_corpus::shared_dir().join("spec/fixtures/config.toml");
        let Loaded { config, warnings } = load_config(&path).unwrap();
        assert_eq!(warnings, []);
        assert_eq!(config.concurrent.get(), 4);
        assert_eq!(config.log_format, Some(LogFormat::Runner));
        assert_eq!(config.listen_address.as_deref(), Some("127.0.0.1:9252"));
        assert_eq!(config.connection_max_age(), Duration::from_secs(900));
        let session = config.session_server.as_ref().unwrap();
        assert_eq!(session.advertise_address, "runner-host.example.com:8093");
        let runner = &config.runners[0];
        assert_eq!(runner.id, Some(51));
        assert_eq!(
            runner.token_obtained_at,
            Timestamp::parse_rfc3339("2026-01-02T10:00:00Z")
        );
        // Go's zero time: the token does not expire.
        assert_eq!(runner.token_expires_at, None);
        assert_eq!(runner.executor, Some(ExecutorKind::Docker));
        assert_eq!(runner.output_limit_bytes(), 8192 * 1024);
        assert_eq!(runner.request_concurrency(), 2);
        assert_eq!(runner.unhealthy_interval(), Duration::from_secs(3600));
        assert!(runner.custom_build_dir_enabled());
        assert_eq!(runner.feature_flag("FF_TIMESTAMPS"), Some(false));
        assert_eq!(runner.cache.as_ref().unwrap().kind, "s3");
        let docker = runner.docker.as_ref().unwrap();
        assert_eq!(docker.image, "alpine:3.20");
        assert_eq!(
            docker.pull_policy,
            [PullPolicy::Always, PullPolicy::IfNotPresent]
        );
        assert_eq!(docker.wait_for_services_timeout, Some(30));
        assert_eq!(
            runner.environment_pairs()[0],
            ("LANG".into(), "C.UTF-8".into())
        );
    }

    #[test]
    fn the_example_in_the_repository_loads_without_warnings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let Loaded { config, warnings } = load_config(&path).unwrap();
        assert_eq!(warnings, [], "config.example.toml has unknown keys");
        assert!(!config.runners.is_empty());
        assert!(config.runners[0].docker.is_some());
        assert!(config.session_server.is_some());
    }

    #[test]
    fn an_unknown_key_warns_with_its_line_and_full_key_path() {
        let text = "concurrent = 1\n\
                    concurent = 2\n\
                    [[runners]]\n\
                    url = \"https://x\"\n\
                    token = \"t\"\n\
                    [runners.docker]\n\
                    imagee = \"alpine\"\n\
                    [[runners.docker.services]]\n\
                    name = \"postgres\"\n\
                    aliass = \"db\"\n\
                    [runners.cache]\n\
                    \"Max Size\" = 1\n";
        assert_eq!(
            warnings(text),
            [
                "config.toml:2: unknown key concurent",
                "config.toml:7: unknown key runners.docker.imagee",
                "config.toml:10: unknown key runners.docker.services.aliass",
                "config.toml:12: unknown key runners.cache.\"Max Size\"",
            ]
        );
        // A warning is not an error: the rest loads.
        let config = parse(text).unwrap().config;
        assert_eq!(config.runners[0].url, "https://x");
    }

    #[test]
    fn keys_gitlab_runner_knows_but_this_runner_ignores_load_silently() {
        let text = "concurrent = 2\n\
                    sentry_dsn = \"https://key@sentry.example.com/1\"\n\
                    [experimental]\n\
                    anything = true\n\
                    [[runners]]\n\
                    url = \"https://x\"\n\
                    token = \"glrt-t1_abcdefghijkl\"\n\
                    pre_clone_script = \"true\"\n\
                    [runners.kubernetes]\n\
                    namespace = \"ci\"\n\
                    [runners.kubernetes.pod_labels]\n\
                    team = \"a\"\n\
                    [runners.machine]\n\
                    IdleCount = 1\n\
                    [runners.cache]\n\
                    Type = \"s3\"\n\
                    [runners.cache.s3]\n\
                    BucketName = \"b\"\n\
                    [runners.docker]\n\
                    gpus = \"all\"\n\
                    sysctls = { \"net.ipv4.ip_forward\" = \"1\" }\n\
                    [runners.feature_flags]\n\
                    FF_ANYTHING_NEW = true\n";
        let loaded = parse(text).unwrap();
        assert_eq!(loaded.warnings, []);
        assert_eq!(loaded.config.runners[0].short_token(), "abcdefghi");
    }

    #[test]
    fn a_wrong_type_names_the_file_line_column_and_key() {
        assert_eq!(
            error(
                "concurrent = 1\n[[runners]]\nurl = \"https://x\"\ntoken = \"t\"\n[runners.docker]\npull_policy = \"sometimes\"\n"
            ),
            "config.toml:6:15: runners.docker.pull_policy: unknown variant `sometimes`, expected one of `always`, `if-not-present`, `never`"
        );
        assert_eq!(
            error("concurrent = 0\n"),
            "config.toml:1:14: concurrent: invalid value: integer `0`, expected a nonzero u32"
        );
        assert_eq!(
            error("concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\nlimit = \"2\"\n"),
            "config.toml:5:9: runners.limit: invalid type: string \"2\", expected u32"
        );
        assert_eq!(
            error("concurrent = 1\nconnection_max_age = \"15x\"\n"),
            "config.toml:2:22: connection_max_age: invalid duration \"15x\": expected a number and a unit (ns, us, ms, s, m, h), e.g. \"1h30m\""
        );
        assert_eq!(
            error(
                "concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\ntoken_expires_at = \"soon\"\n"
            ),
            "config.toml:5:20: runners.token_expires_at: invalid type: string \"soon\", expected a TOML datetime"
        );
        let err =
            error("concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\nexecutor = \"lxc\"\n");
        assert!(
            err.starts_with("config.toml:5:12: runners.executor: unknown variant `lxc`"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_and_a_missing_concurrent_are_errors_on_one_line() {
        assert_eq!(
            error("concurrent = [1\n"),
            "config.toml:1:16: unclosed array, expected `]`"
        );
        assert_eq!(error(""), "config.toml: missing field `concurrent`");
        let err = error("concurrent = 1\n[runners\n");
        assert!(err.starts_with("config.toml:2:"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    proptest::proptest! {
        /// Whatever the file holds, loading ends in a config or an error.
        #[test]
        fn no_input_makes_loading_panic(text in "[\\[\\]a-z_=\"'{}., \n0-9:#-]{0,120}") {
            let _ = parse(&format!("concurrent = 1\n{text}"));
            let _ = parse(&text);
        }
    }

    #[test]
    fn a_runner_needs_a_url_and_a_token() {
        assert_eq!(
            error("concurrent = 1\n\n[[runners]]\nname = \"a\"\nurl = \"https://x\"\n"),
            "config.toml:3:1: runner 1 (\"a\"): `token` is required"
        );
        assert_eq!(
            error("concurrent = 1\n[[runners]]\nurl = \"u\"\ntoken = \"t\"\n[[runners]]\n"),
            "config.toml:5:1: runner 2 (unnamed): `url` and `token` are required"
        );
    }
}
