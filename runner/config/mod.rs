//! The agent's configuration: a `config.toml` in gitlab-runner's format,
//! so an existing file carries over.
//!
//! Only what the runner acts on is typed; keys gitlab-runner knows but this
//! runner does not use yet are accepted and ignored, as gitlab-runner
//! ignores keys it does not know. Values it would reject are rejected with
//! the file, line, column and key, in the TOML parser's words.

mod docker;
mod model;

pub use docker::{DockerConfig, PullPolicy};
pub use model::{
    CacheConfig, Config, ConfigError, CustomBuildDir, ExecutorKind, LogFormat, LogLevel,
    RunnerConfig, RunnerShell, SessionServer, load_config, parse_config,
};
