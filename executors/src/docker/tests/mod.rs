//! The Docker executor against a real daemon: the conformance suite, and
//! what only containers have (images, entrypoints, pull policies,
//! services, clean-up by labels), and what `[runners.docker]` sets and
//! allows.

mod conformance;
mod copy;
mod features;
mod forward;
mod policies;
mod services;
mod settings;
mod support;
