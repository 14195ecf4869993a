//! The Docker executor against a real daemon: the conformance suite, and
//! what only containers have (images, entrypoints, pull policies,
//! services, clean-up by labels).

mod conformance;
mod copy;
mod features;
mod forward;
mod services;
mod support;
