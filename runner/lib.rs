//! `runner`: a GitLab-compatible CI job runner.
//!
//! The library holds everything the `runner` binary does, so the
//! integration tests and benchmarks can drive the same code.

pub mod agent;
pub mod archive;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub mod errors;
pub mod gitlab;
pub mod job;
pub mod local;
pub mod pipeline;
pub mod trace;
