//! The `.gitlab-ci.yml` front end: from YAML text to a resolved pipeline.

pub mod compose;
pub mod diag;
pub mod expr;
pub(crate) mod fragment;
pub mod include;
pub mod load;
pub mod merge;
pub mod model;
pub mod plan;
#[cfg(test)]
mod robustness_tests;
pub mod source;
#[cfg(test)]
pub(crate) mod test_corpus;
pub mod variables;
pub mod yaml;
