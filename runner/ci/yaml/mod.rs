//! YAML as GitLab reads it: Psych's YAML 1.1 scalars, anchors, merge keys
//! and custom tags, with a position on every node.

mod node;

pub use node::{Mapping, Node, Value};
