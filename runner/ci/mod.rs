//! The `.gitlab-ci.yml` front end: from YAML text to a resolved pipeline.

pub mod diag;
pub mod expr;
pub mod source;
pub mod yaml;
