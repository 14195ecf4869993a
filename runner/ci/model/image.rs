//! Placeholder: filled in with the real decoder.

#![allow(dead_code, unused_variables)]

use super::decode::Decoder;
use crate::ci::yaml::Node;

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImageSpec {}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ServiceSpec {}

pub(crate) fn decode_image(d: &mut Decoder, node: &Node, path: &str) -> Option<ImageSpec> {
    Some(ImageSpec::default())
}

pub(crate) fn decode_services(
    d: &mut Decoder,
    node: &Node,
    path: &str,
) -> Option<Vec<ServiceSpec>> {
    Some(Vec::new())
}
