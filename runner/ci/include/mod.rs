//! `include:` and `spec:inputs`: assembling one configuration from the
//! project's file and everything it includes (sections E and F of the
//! semantics checklist).

mod context;
mod document;
mod entry;
mod fetch;
mod glob;
mod inputs;
mod interpolate;
mod loader;
mod local;
mod project;
mod remote;
mod resolve;
mod rules;
mod vars;

pub use context::{INCLUDE_TIMEOUT, IncludeContext, MAX_INCLUDES, TEMPLATE_BASE_URL};
pub use fetch::{FetchError, Fetcher, GitBlob, NetFetcher};
pub use loader::load_config;
pub use rules::ConditionEvaluator;
