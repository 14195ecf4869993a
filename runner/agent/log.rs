//! The agent's own log (not a job's): what it polls, takes, finishes and
//! what goes wrong, on stderr, in the `log_format` and from the
//! `log_level` of `config.toml`.
//!
//! Formats, as gitlab-runner names them: `runner` (a message and its
//! fields, readable on a terminal), `text` (logfmt, one `key=value` per
//! field, for log shippers) and `json` (one object per line).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::ci::variables::iso8601_utc;
use crate::config::{LogFormat, LogLevel};

use super::metrics::Metrics;

/// How serious a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }

    /// The least serious level a `log_level` setting shows.
    pub fn threshold(setting: Option<LogLevel>) -> Level {
        match setting {
            Some(LogLevel::Debug) => Level::Debug,
            None | Some(LogLevel::Info) => Level::Info,
            Some(LogLevel::Warn) => Level::Warning,
            Some(LogLevel::Error | LogLevel::Fatal | LogLevel::Panic) => Level::Error,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    threshold: Level,
    format: LogFormat,
}

/// The agent's log. Cheap to clone.
#[derive(Clone)]
pub struct AgentLog {
    settings: Arc<Mutex<Settings>>,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    metrics: Option<Arc<Metrics>>,
}

impl AgentLog {
    /// A log to stderr.
    pub fn stderr(level: Option<LogLevel>, format: Option<LogFormat>) -> Self {
        Self::to(Box::new(std::io::stderr()), level, format)
    }

    /// A log to any writer (tests).
    pub fn to(
        out: Box<dyn Write + Send>,
        level: Option<LogLevel>,
        format: Option<LogFormat>,
    ) -> Self {
        AgentLog {
            settings: Arc::new(Mutex::new(Settings {
                threshold: Level::threshold(level),
                format: format.unwrap_or(LogFormat::Runner),
            })),
            out: Arc::new(Mutex::new(out)),
            metrics: None,
        }
    }

    /// Counts warnings and errors in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Applies a reloaded configuration's `log_level` and `log_format`.
    pub fn reconfigure(&self, level: Option<LogLevel>, format: Option<LogFormat>) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        s.threshold = Level::threshold(level);
        s.format = format.unwrap_or(LogFormat::Runner);
    }

    pub fn debug(&self, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
        self.line(Level::Debug, msg, fields);
    }

    pub fn info(&self, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
        self.line(Level::Info, msg, fields);
    }

    pub fn warning(&self, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
        self.line(Level::Warning, msg, fields);
    }

    pub fn error(&self, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
        self.line(Level::Error, msg, fields);
    }

    fn line(&self, level: Level, msg: &str, fields: &[(&str, &dyn std::fmt::Display)]) {
        if level >= Level::Warning
            && let Some(m) = &self.metrics
        {
            m.logged(level.name());
        }
        let settings = *self.settings.lock().unwrap_or_else(|e| e.into_inner());
        if level < settings.threshold {
            return;
        }
        let fields: Vec<(&str, String)> = fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let text = format_line(settings.format, level, msg, &fields, SystemTime::now());
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        // A log that cannot be written must not stop the agent.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

fn format_line(
    format: LogFormat,
    level: Level,
    msg: &str,
    fields: &[(&str, String)],
    at: SystemTime,
) -> String {
    match format {
        LogFormat::Runner => {
            let mut line = match level {
                Level::Warning => format!("WARNING: {msg}"),
                Level::Error => format!("ERROR: {msg}"),
                _ => msg.to_owned(),
            };
            if !fields.is_empty() {
                // Fields after a gap, so the messages line up as columns.
                let width = 45usize.saturating_sub(line.len()).max(1);
                line.push_str(&" ".repeat(width));
                let parts: Vec<String> = fields.iter().map(|(k, v)| logfmt_pair(k, v)).collect();
                line.push_str(&parts.join(" "));
            }
            line.push('\n');
            line
        }
        LogFormat::Text => {
            let mut parts = vec![
                logfmt_pair("time", &iso8601_utc(at)),
                logfmt_pair("level", level.name()),
                logfmt_pair("msg", msg),
            ];
            parts.extend(fields.iter().map(|(k, v)| logfmt_pair(k, v)));
            parts.join(" ") + "\n"
        }
        LogFormat::Json => {
            let mut object = serde_json::Map::new();
            object.insert("level".into(), level.name().into());
            object.insert("msg".into(), msg.into());
            object.insert("time".into(), iso8601_utc(at).into());
            for (k, v) in fields {
                object.insert((*k).to_owned(), v.clone().into());
            }
            serde_json::Value::Object(object).to_string() + "\n"
        }
    }
}

fn logfmt_pair(key: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && c != '"' && c != '=' && !c.is_control());
    if plain {
        format!("{key}={value}")
    } else {
        format!("{key}={}", serde_json::Value::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_three_formats() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let fields = [("job", "42".to_owned()), ("repo", "a b".to_owned())];
        assert_eq!(
            format_line(LogFormat::Text, Level::Info, "Job succeeded", &fields, at),
            "time=2023-11-14T22:13:20Z level=info msg=\"Job succeeded\" job=42 repo=\"a b\"\n"
        );
        let json: serde_json::Value = serde_json::from_str(&format_line(
            LogFormat::Json,
            Level::Error,
            "boom",
            &fields,
            at,
        ))
        .unwrap();
        assert_eq!(json["level"], "error");
        assert_eq!(json["job"], "42");
        let runner = format_line(LogFormat::Runner, Level::Warning, "slow", &fields, at);
        assert!(runner.starts_with("WARNING: slow "), "{runner}");
        assert!(runner.ends_with("job=42 repo=\"a b\"\n"), "{runner}");
    }

    #[test]
    fn lines_below_the_level_are_dropped_but_errors_are_counted() {
        let out = Shared::default();
        let metrics = Arc::new(Metrics::new());
        let log = AgentLog::to(Box::new(out.clone()), Some(LogLevel::Error), None)
            .with_metrics(Arc::clone(&metrics));
        log.info("hidden", &[]);
        log.warning("hidden too", &[]);
        log.error("shown", &[]);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "ERROR: shown\n");
        assert!(
            metrics
                .render()
                .contains("gitlab_runner_errors_total{level=\"warning\"} 1")
        );
        log.reconfigure(Some(LogLevel::Debug), Some(LogFormat::Text));
        log.debug("now shown", &[]);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with("level=debug msg=\"now shown\"\n"), "{text}");
    }
}
