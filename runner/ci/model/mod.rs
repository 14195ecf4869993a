//! The typed model of a pipeline configuration, decoded from the composed
//! YAML tree with GitLab's validation messages.

pub(crate) mod decode;

// The keyword decoders below are called by the job model; until a caller
// exists in this build they would all be reported as unused.
#[allow(dead_code)]
pub mod artifacts;
#[allow(dead_code)]
pub mod cache;
#[allow(dead_code)]
pub(crate) mod check;
#[cfg(test)]
mod corpus;
pub mod duration;
#[allow(dead_code)]
pub mod environment;
#[allow(dead_code)]
pub mod extras;
#[allow(dead_code)]
pub mod image;
mod numerize;
#[allow(dead_code)]
pub mod release;
#[allow(dead_code)]
mod secrets;
