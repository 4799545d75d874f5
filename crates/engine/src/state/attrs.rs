//! A managed object's attributes as the state keeps them in memory: their
//! compact JSON text, not a JSON tree.
//!
//! A tree of a few attributes costs a `BTreeMap` node (632 bytes, room
//! for 11 entries) plus an allocation per key and string; the text of the
//! same attributes is one allocation of about a hundred bytes. Plan and
//! apply read each object's attributes once or twice, so they are parsed
//! where they are read ([`Attributes::json`], [`Attributes::value`]).
//! Owns that representation only; the file format is `state::file`'s.

use crate::value::Value;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Nesting (arrays and objects) up to which attributes are kept as text:
/// well inside serde_json's parse limit of 128, so the text always parses
/// back. Deeper ones (never a provider's) stay a tree.
const TEXT_DEPTH: usize = 100;

/// Attributes as stored: sensitive values already replaced by
/// `{"sensitive": …}` (see `state::redact`).
#[derive(Clone)]
pub struct Attributes(Repr);

#[derive(Clone)]
enum Repr {
    /// `serde_json::to_string` of the tree: keys sorted (serde_json's
    /// maps are ordered), no whitespace, so equal trees have equal texts.
    Text(Box<str>),
    Tree(Box<serde_json::Value>),
}

impl Attributes {
    pub fn new(json: &serde_json::Value) -> Attributes {
        if depth(json) <= TEXT_DEPTH {
            Attributes(Repr::Text(json.to_string().into_boxed_str()))
        } else {
            Attributes(Repr::Tree(Box::new(json.clone())))
        }
    }

    /// The attributes as a JSON tree.
    pub fn json(&self) -> serde_json::Value {
        match &self.0 {
            // The text was written from a tree of bounded depth.
            Repr::Text(text) => serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
            Repr::Tree(tree) => (**tree).clone(),
        }
    }

    /// The attributes as a value of the language.
    pub fn value(&self) -> Value {
        Value::from_json(&self.json())
    }

    /// The compact JSON text (keys sorted), e.g. for hashing.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match &self.0 {
            Repr::Text(text) => std::borrow::Cow::Borrowed(text),
            Repr::Tree(tree) => std::borrow::Cow::Owned(tree.to_string()),
        }
    }
}

/// Nesting of arrays and objects (a scalar is 0), stopping past the limit.
fn depth(json: &serde_json::Value) -> usize {
    fn walk(json: &serde_json::Value, at: usize) -> usize {
        if at > TEXT_DEPTH {
            return at;
        }
        match json {
            serde_json::Value::Array(items) => items.iter().map(|v| walk(v, at + 1)).max().unwrap_or(at + 1),
            serde_json::Value::Object(map) => map.values().map(|v| walk(v, at + 1)).max().unwrap_or(at + 1),
            _ => at,
        }
    }
    walk(json, 0)
}

impl From<serde_json::Value> for Attributes {
    fn from(json: serde_json::Value) -> Attributes {
        Attributes::new(&json)
    }
}

impl From<&serde_json::Value> for Attributes {
    fn from(json: &serde_json::Value) -> Attributes {
        Attributes::new(json)
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Attributes) -> bool {
        match (&self.0, &other.0) {
            (Repr::Text(a), Repr::Text(b)) => a == b,
            _ => self.json() == other.json(),
        }
    }
}

impl PartialEq<serde_json::Value> for Attributes {
    fn eq(&self, other: &serde_json::Value) -> bool {
        self.json() == *other
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attributes, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Attributes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_come_back_as_they_were_given() {
        let tree = json!({ "zeta": 1.5, "id": "i-1", "tags": { "b": "2", "a": null }, "list": [1, [2, {}]] });
        let attrs = Attributes::from(tree.clone());
        assert_eq!(attrs.json(), tree);
        assert_eq!(attrs, tree);
        assert_eq!(attrs.text(), r#"{"id":"i-1","list":[1,[2,{}]],"tags":{"a":null,"b":"2"},"zeta":1.5}"#);
        assert_eq!(attrs, Attributes::from(json!({ "tags": { "a": null, "b": "2" }, "id": "i-1", "zeta": 1.5, "list": [1, [2, {}]] })));
        assert_ne!(attrs, Attributes::from(json!({ "id": "i-2" })));
    }

    #[test]
    fn attributes_too_deep_for_text_stay_a_tree_and_compare_equal() {
        let mut deep = json!("leaf");
        for _ in 0..(TEXT_DEPTH + 20) {
            deep = json!([deep]);
        }
        let attrs = Attributes::from(json!({ "deep": deep }));
        assert!(matches!(attrs.0, Repr::Tree(_)));
        assert_eq!(attrs.json()["deep"], deep);
        assert_eq!(attrs, attrs.clone());
    }
}
