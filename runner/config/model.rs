//! The global keys of `config.toml` and `[session_server]`, with
//! gitlab-runner's defaults.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

use super::runner::RunnerConfig;
use super::values::{self, GoDuration};

/// gitlab-runner's defaults for the global section.
pub mod defaults {
    use std::time::Duration;

    /// Between two job requests, spread over the runners.
    pub const CHECK_INTERVAL: Duration = Duration::from_secs(3);
    /// What running jobs get when the agent is stopped forcefully.
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
    /// How long one HTTP connection to GitLab is reused.
    pub const CONNECTION_MAX_AGE: Duration = Duration::from_secs(15 * 60);
    /// How long an interactive web terminal stays open after its job.
    pub const SESSION_TIMEOUT: Duration = Duration::from_secs(1800);
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    /// Most jobs running at once, over every runner; required, above 0.
    pub concurrent: NonZeroU32,
    /// Seconds between job requests; 0 means the default. See
    /// [`Config::check_interval`].
    #[serde(default)]
    pub check_interval: u64,
    #[serde(default)]
    pub log_level: Option<LogLevel>,
    #[serde(default)]
    pub log_format: Option<LogFormat>,
    /// `host:port` of the metrics and health endpoints, with port 9252
    /// added when only a host was given.
    #[serde(default, deserialize_with = "values::listen_address")]
    pub listen_address: Option<String>,
    /// Seconds running jobs get when the agent stops; 0 means the default.
    /// See [`Config::shutdown_timeout`].
    #[serde(default)]
    pub shutdown_timeout: u64,
    /// See [`Config::connection_max_age`].
    #[serde(default)]
    pub connection_max_age: Option<GoDuration>,
    /// Where errors of the agent are reported (Sentry).
    #[serde(default)]
    pub sentry_dsn: Option<String>,
    /// The user shell jobs run as when the agent runs as root.
    #[serde(default)]
    pub user: Option<String>,
    /// Labels the agent reports with its metrics.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub session_server: Option<SessionServer>,
    #[serde(default)]
    pub runners: Vec<RunnerConfig>,
}

impl Config {
    /// Time between two job requests, before it is divided among the
    /// runners: `check_interval` seconds, 3 when unset or 0.
    pub fn check_interval(&self) -> Duration {
        match self.check_interval {
            0 => defaults::CHECK_INTERVAL,
            s => Duration::from_secs(s),
        }
    }

    /// What running jobs get after a forceful stop: `shutdown_timeout`
    /// seconds, 30 when unset or 0.
    pub fn shutdown_timeout(&self) -> Duration {
        match self.shutdown_timeout {
            0 => defaults::SHUTDOWN_TIMEOUT,
            s => Duration::from_secs(s),
        }
    }

    /// How long a connection to GitLab is reused; 15 minutes when unset.
    pub fn connection_max_age(&self) -> Duration {
        self.connection_max_age
            .map_or(defaults::CONNECTION_MAX_AGE, GoDuration::get)
    }

    /// `info` when unset.
    pub fn log_level(&self) -> LogLevel {
        self.log_level.unwrap_or(LogLevel::Info)
    }

    /// `runner` (coloured text) when unset.
    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(LogFormat::Runner)
    }

    /// The runner named `name`, if any.
    pub fn runner(&self, name: &str) -> Option<&RunnerConfig> {
        self.runners.iter().find(|r| r.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    // gitlab-runner's logger accepts both spellings.
    #[serde(alias = "warning")]
    Warn,
    Error,
    Fatal,
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Runner,
    Text,
    Json,
}

/// `[session_server]`: the interactive web terminal's server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SessionServer {
    pub listen_address: String,
    pub advertise_address: String,
    /// Seconds; 0 means the default. See [`SessionServer::session_timeout`].
    pub session_timeout: u64,
}

impl SessionServer {
    /// How long a terminal session stays open after its job: 30 minutes
    /// when unset or 0.
    pub fn session_timeout(&self) -> Duration {
        match self.session_timeout {
            0 => defaults::SESSION_TIMEOUT,
            s => Duration::from_secs(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_config;

    fn config(text: &str) -> Config {
        parse_config(Path::new("config.toml"), text).unwrap().config
    }

    #[test]
    fn unset_global_keys_take_gitlab_runners_defaults() {
        let c = config("concurrent = 1\ncheck_interval = 0\n");
        assert_eq!(c.check_interval(), Duration::from_secs(3));
        assert_eq!(c.shutdown_timeout(), Duration::from_secs(30));
        assert_eq!(c.connection_max_age(), Duration::from_secs(15 * 60));
        assert_eq!(c.log_level(), LogLevel::Info);
        assert_eq!(c.log_format(), LogFormat::Runner);
        assert_eq!(c.listen_address, None);
        assert_eq!(
            SessionServer::default().session_timeout(),
            Duration::from_secs(1800)
        );
        assert!(c.runners.is_empty());
    }

    #[test]
    fn set_global_keys_override_the_defaults() {
        let c = config(
            "concurrent = 8\ncheck_interval = 10\nshutdown_timeout = 120\nconnection_max_age = \"1h\"\nlog_level = \"warning\"\nlog_format = \"json\"\nlisten_address = \"0.0.0.0\"\nuser = \"ci\"\n[labels]\nsite = \"a\"\n[session_server]\nsession_timeout = 60\n",
        );
        assert_eq!(c.concurrent.get(), 8);
        assert_eq!(c.check_interval(), Duration::from_secs(10));
        assert_eq!(c.shutdown_timeout(), Duration::from_secs(120));
        assert_eq!(c.connection_max_age(), Duration::from_secs(3600));
        assert_eq!(c.log_level(), LogLevel::Warn);
        assert_eq!(c.log_format(), LogFormat::Json);
        // A bare host gets the metrics port.
        assert_eq!(c.listen_address.as_deref(), Some("0.0.0.0:9252"));
        assert_eq!(c.user.as_deref(), Some("ci"));
        assert_eq!(c.labels.get("site").map(String::as_str), Some("a"));
        assert_eq!(
            c.session_server.unwrap().session_timeout(),
            Duration::from_secs(60)
        );
    }
}
