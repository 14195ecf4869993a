//! The typed model of a pipeline configuration, decoded from the composed
//! YAML tree with GitLab's validation messages.

pub(crate) mod decode;

pub mod artifacts;
pub mod cache;
pub mod duration;
pub mod environment;
pub mod extras;
pub mod image;
mod judge;
pub mod release;
pub mod variables;
pub mod when;

pub use variables::VariableDef;
pub use when::{AllowFailure, Retry, When};
