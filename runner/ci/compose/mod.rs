//! GitLab's composition steps on the merged top-level mapping, in GitLab's
//! order: [`resolve_extends`], then [`resolve_references`], then (once the
//! entries are known to be jobs) [`apply_defaults`].

mod defaults;
mod extends;
mod inherit;
pub(crate) mod keywords;
mod reference;
mod ruby;

#[cfg(test)]
mod corpus_tests;

pub use defaults::apply_defaults;
pub use extends::resolve_extends;
pub use keywords::{
    DEFAULT_KEYWORDS, JobKind, is_global_keyword, is_job_entry, job_entries, job_kind,
};
pub use reference::resolve_references;
