//! The agent's configuration: a `config.toml` in gitlab-runner's format,
//! so an existing file carries over.
//!
//! Every key gitlab-runner knows loads; what this runner acts on is typed,
//! with gitlab-runner's defaults behind accessors. Values of the wrong
//! type or out of range are errors at `file:line:col` with the key; keys
//! neither gitlab-runner nor this runner knows are warnings beside the
//! loaded configuration. Edits keep the operator's comments and layout and
//! replace the file atomically.

mod atomic;
mod docker;
mod edit;
mod known;
mod load;
mod model;
mod paths;
mod remove;
mod runner;
mod values;

pub(crate) use atomic::write_atomic;
pub use docker::{DockerConfig, PullPolicy};
pub use edit::{NewRunner, TokenUpdate, add_runner, update_runner_token};
pub use known::ConfigWarning;
pub use load::{ConfigError, Loaded, load_config, parse_config};
pub use model::{Config, LogFormat, LogLevel, SessionServer, defaults};
pub use paths::{
    CONFIG_ENV, SYSTEM_CONFIG_PATH, SYSTEM_ID_FILE, default_config_path, resolve_config_path,
    system_id,
};
pub use remove::{RunnerSelector, remove_runners};
pub use runner::defaults as runner_defaults;
pub use runner::{
    CacheConfig, CustomBuildDir, ExecutorKind, RunnerConfig, RunnerShell, short_token,
};
pub use values::{DEFAULT_METRICS_PORT, GoDuration, Timestamp, parse_go_duration};
