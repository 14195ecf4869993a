//! The environments a job's scripts run in.
//!
//! This crate knows nothing of `.gitlab-ci.yml` or of the GitLab API: the
//! runner turns a job into scripts, and an executor runs each one in its
//! environment and reports how it ended.
