//! Pipeline planning: which jobs GitLab would create for a pipeline, with
//! what `when`, needs and variables, and why.

#[allow(dead_code)]
mod changes;
#[allow(dead_code)]
mod fnmatch;
#[allow(dead_code)]
mod git;
