//! Placeholder: filled in with the real decoder.

#![allow(dead_code, unused_variables)]

use super::decode::Decoder;
use crate::ci::yaml::Node;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SecretSpec {}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IdTokenSpec {}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HooksSpec {}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IdentitySpec {}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct PagesSpec {}

/// `secrets:` maps a variable name to where its value comes from.
pub(crate) fn decode_secrets(
    d: &mut Decoder,
    node: &Node,
    path: &str,
) -> Option<Vec<(String, SecretSpec)>> {
    Some(Vec::new())
}

/// `id_tokens:` maps a variable name to the token's audience.
pub(crate) fn decode_id_tokens(
    d: &mut Decoder,
    node: &Node,
    path: &str,
) -> Option<Vec<(String, IdTokenSpec)>> {
    Some(Vec::new())
}

pub(crate) fn decode_hooks(d: &mut Decoder, node: &Node, path: &str) -> Option<HooksSpec> {
    Some(HooksSpec::default())
}

pub(crate) fn decode_identity(d: &mut Decoder, node: &Node, path: &str) -> Option<IdentitySpec> {
    Some(IdentitySpec::default())
}

/// The `pages:` job keyword (a hash, or `false`).
pub(crate) fn decode_pages(d: &mut Decoder, node: &Node, path: &str) -> Option<PagesSpec> {
    Some(PagesSpec::default())
}
