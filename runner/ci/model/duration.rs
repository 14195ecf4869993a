//! Placeholder: filled in with the real decoder.

#![allow(dead_code, unused_variables)]

use super::decode::Decoder;
use crate::ci::yaml::Node;

/// Parses a GitLab duration (`1h 30m`, `3 mins 4 sec`, `42`) as GitLab's
/// ChronicDuration does.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    None
}
