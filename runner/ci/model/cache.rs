//! Placeholder: filled in with the real decoder.

#![allow(dead_code, unused_variables)]

use super::decode::Decoder;
use crate::ci::yaml::Node;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CacheSpec {}

/// `cache:` is a hash or a list of up to four hashes.
pub(crate) fn decode_cache(d: &mut Decoder, node: &Node, path: &str) -> Option<Vec<CacheSpec>> {
    Some(Vec::new())
}
