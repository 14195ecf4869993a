//! The typed model of a pipeline configuration, decoded from the composed
//! YAML tree with GitLab's validation messages.

pub(crate) mod decode;

pub mod artifacts;
pub mod cache;
pub mod duration;
pub mod environment;
pub mod extras;
pub mod image;
pub mod release;
