//! CI/CD variables: the ordered set a job sees, and GitLab's and the
//! runner's expansion of `$NAME` references.

mod expand;
// Enabled once `crate::ci::expr` (which defines `VarLookup`) is merged.
// mod lookup_impl;
mod resolve;
mod set;
mod slug;

pub use expand::{expand_gitlab, expand_gitlab_or_blank, expand_runner};
pub use resolve::{
    CycleError, ExpandOptions, MAX_EXPANDED_LEN, expand_all_for_runner, sort_and_expand_all,
};
pub use set::{VarSource, Variable, Variables};
pub use slug::slugify;
