//! YAML as GitLab reads it: Psych's YAML 1.1 scalars, anchors, merge keys
//! and custom tags, with a position on every node.

mod compose;
mod node;
mod scalar;

pub use compose::MAX_DEPTH;
pub use compose::parse_documents;
pub use node::{Mapping, Node, Value};
