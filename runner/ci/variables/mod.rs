//! CI/CD variables: the ordered set a job sees, GitLab's and the runner's
//! expansion of `$NAME` references, and the predefined variables of a local
//! pipeline computed from git.
//!
//! The usual flow: read [`GitFacts`] once; build a job's [`Variables`] from
//! [`job_only_variables`], [`job_variables`], [`pipeline_variables`] and the
//! YAML, dotenv and command-line variables, each tagged with its
//! [`VarSource`]; put them in GitLab's order with
//! [`Variables::in_precedence_order`]; expand them as GitLab does with
//! [`sort_and_expand_all`]; expand GitLab-side keywords against that result
//! with [`expand_gitlab`]; and let the runner side finish with
//! [`expand_all_for_runner`] and [`expand_runner`]. Rules see only
//! the pipeline and job variables, never the job-only ones.

mod availability;
mod commit;
mod expand;
mod git;
mod job;
mod lookup_impl;
mod pipeline_ref;
mod predefined;
mod remote;
mod resolve;
mod set;
mod slug;

pub use availability::{Availability, availability, visible_to_rules};
pub use commit::{CommitText, MAX_COMMIT_MESSAGE_BYTES, commit_text, iso8601_utc};
pub use expand::{expand_gitlab, expand_gitlab_or_blank, expand_runner};
pub use git::{GitError, GitFacts, HeadCommit, HeadTag};
pub use job::{job_group_name, job_only_variables, job_variables};
pub use pipeline_ref::{PipelineRef, RefKind, default_branch, resolve_ref};
pub use predefined::{
    PIPELINE_SOURCES, PipelineOptions, SERVER_VERSION, pipeline_variables, project_location,
};
pub use remote::{ProjectLocation, parse_remote_url};
pub use resolve::{
    CycleError, ExpandOptions, MAX_EXPANDED_LEN, expand_all_for_runner, sort_and_expand_all,
};
pub use set::{VarSource, Variable, Variables};
pub use slug::slugify;
