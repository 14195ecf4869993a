//! GitLab's runner API (runner-api.md §1–§7): the protocol layer of the
//! registered agent.
//!
//! [`ApiClient`] talks to one GitLab.

mod client;
mod error;
mod failure;
mod info;
mod retry;
mod tokens;

pub use client::{ApiClient, ClientTimeouts};
pub use error::ApiError;
pub use failure::{map_failure_reason, map_reason_name};
pub use info::{FeaturesInfo, Info, InfoConfig, go_arch, go_os};
pub use retry::RetryPolicy;
pub use tokens::short_token;
