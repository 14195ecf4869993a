//! The integration tests: one binary, one module per area.

mod support;

mod agent_register;
mod agent_run;
mod cli_config;
mod cli_lint;
mod cli_plan;
mod corpus;
mod gitlab_api;
mod local_docker;
mod local_exec;
mod local_pipeline;
