//! GitLab's deep merge, shared by `include` and `extends`.

use super::yaml::{Node, Value};

/// Merges `overlay` into `base` the way GitLab merges included files and
/// `extends` parents: where both values are hashes they are merged key by
/// key; anything else (arrays included) is replaced by the overlay's value.
/// A key only in `base` keeps its value and place.
pub fn deep_merge(base: &mut Node, overlay: Node) {
    match (&mut base.value, overlay.value) {
        (Value::Map(base_map), Value::Map(overlay_map)) => {
            for (key, value) in overlay_map.into_entries() {
                match key.as_str().and_then(|k| base_map.get_mut(k)) {
                    Some(existing) if existing.as_map().is_some() && value.as_map().is_some() => {
                        deep_merge(existing, value);
                    }
                    _ => base_map.insert(key, value),
                }
            }
        }
        (_, value) => {
            base.value = value;
            base.span = overlay.span;
            base.tag = overlay.tag;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::source::SourceId;
    use crate::ci::yaml::parse_documents;

    fn doc(text: &str) -> Node {
        parse_documents(text, SourceId(1)).unwrap().remove(0)
    }

    #[test]
    fn rule_42_hashes_merge_and_arrays_are_replaced() {
        let mut a = doc("j:\n  variables: {A: 1, B: 2}\n  script: [one, two]\n  stage: build\n");
        let b = doc("j:\n  variables: {B: 3, C: 4}\n  script: [three]\n");
        deep_merge(&mut a, b);
        let j = a.as_map().unwrap().get("j").unwrap().as_map().unwrap();
        let vars = j.get("variables").unwrap().as_map().unwrap();
        assert_eq!(vars.keys().collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(vars.get("B").unwrap().as_int(), Some(3));
        assert_eq!(j.get("script").unwrap().as_seq().unwrap().len(), 1);
        assert_eq!(j.get("stage").unwrap().as_str(), Some("build"));
    }

    #[test]
    fn rule_160_null_in_the_overlay_removes_the_value() {
        let mut a = doc("variables: {A: 1}\n");
        deep_merge(&mut a, doc("variables: null\n"));
        assert!(a.as_map().unwrap().get("variables").unwrap().is_null());
    }
}
