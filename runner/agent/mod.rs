//! The registered agent: polls GitLab for jobs and runs them with the
//! same engine as local runs.

pub mod capacity;
pub mod config_watch;
pub mod daemon;
pub mod entry;
pub mod health;
pub mod http;
pub mod job;
pub mod layout;
pub mod log;
pub mod metrics;
mod process_metrics;
pub mod rotation;
