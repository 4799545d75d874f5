//! Dynamic values of the configuration language, with the two marks the
//! engine needs: *unknown* (known only after apply) and *sensitive*.
//!
//! Owns conversion to and from JSON (state, plan files) and the type names
//! used in diagnostics. Must not do I/O.

pub use crate::number::{Number, NumberError};
pub use crate::value_map::ValueMap;
use std::fmt;

/// A value of the configuration language.
///
/// Numbers are Terraform's 512-bit binary floats with a fast path for
/// `i64` ([`Number`]); integral values print and serialise without a
/// fraction so that `3` stays `3` in state files and plans.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    List(Vec<Value>),
    /// An object: its entries sorted by key ([`ValueMap`]).
    Map(ValueMap),
    /// A value that is only known after apply.
    Unknown,
    /// A value derived from a sensitive input; never printed or stored in
    /// plain text.
    Sensitive(Box<Value>),
}

impl Value {
    /// The name of the value's type, as used in diagnostics.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "object",
            Value::Unknown => "unknown",
            Value::Sensitive(inner) => inner.type_name(),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.unmarked(), Value::Null)
    }

    /// True when this value or anything inside it is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::has_unknown),
            Value::Map(map) => map.values().any(Value::has_unknown),
            Value::Sensitive(inner) => inner.has_unknown(),
            _ => false,
        }
    }

    /// True when this value or anything inside it is sensitive.
    pub fn has_sensitive(&self) -> bool {
        match self {
            Value::Sensitive(_) => true,
            Value::List(items) => items.iter().any(Value::has_sensitive),
            Value::Map(map) => map.values().any(Value::has_sensitive),
            _ => false,
        }
    }

    /// The value with a top-level sensitive mark removed.
    pub fn unmarked(&self) -> &Value {
        match self {
            Value::Sensitive(inner) => inner.unmarked(),
            other => other,
        }
    }

    /// The value with every sensitive mark removed, at any depth.
    pub fn deep_unmarked(&self) -> Value {
        match self {
            Value::Sensitive(inner) => inner.deep_unmarked(),
            Value::List(items) => Value::List(items.iter().map(Value::deep_unmarked).collect()),
            Value::Map(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), v.deep_unmarked())).collect()),
            other => other.clone(),
        }
    }

    /// The value with every primitive inside it unknown and its structure
    /// (list lengths, map keys) kept: what a drain evaluates a member as, so
    /// that whatever is computed from the member comes out unknown.
    pub fn with_unknown_leaves(&self) -> Value {
        match self {
            Value::List(items) => Value::List(items.iter().map(Value::with_unknown_leaves).collect()),
            Value::Map(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), v.with_unknown_leaves())).collect()),
            Value::Sensitive(inner) => inner.with_unknown_leaves(),
            _ => Value::Unknown,
        }
    }

    /// Wraps the value in a sensitive mark (once).
    pub fn into_sensitive(self) -> Value {
        match self {
            Value::Sensitive(_) => self,
            other => Value::Sensitive(Box::new(other)),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self.unmarked() {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number as the nearest `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().map(Number::to_f64)
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self.unmarked() {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The number as an integer, when it is integral and in `i64` range.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::to_i64)
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.unmarked() {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self.unmarked() {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&ValueMap> {
        match self.unmarked() {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    /// Attribute lookup on an object value; `None` for other kinds.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// Converts to JSON. Unknown becomes `null`; sensitive marks are
    /// dropped (callers that persist values hash sensitive ones first).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null | Value::Unknown => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => n.to_json(),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Sensitive(inner) => inner.to_json(),
        }
    }

    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(Number::from_json(n)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect()),
        }
    }

    /// The value as a template would interpolate it, if it is a primitive.
    pub fn to_template_string(&self) -> Option<String> {
        match self.unmarked() {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// Formats a float the way HCL prints the number: integers without a
/// fraction, others as their shortest decimal.
pub fn format_number(n: f64) -> String {
    Number::from_f64(n).map_or_else(|_| format!("{n}"), |n| n.to_string())
}

impl fmt::Display for Value {
    /// HCL-like rendering used by plans: strings quoted, collections inline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => write!(f, "null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Value::Map(map) => {
                write!(f, "{{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        write!(f, ",")?;
                    }
                    write!(f, " {k} = {v}")?;
                }
                if map.is_empty() { write!(f, "}}") } else { write!(f, " }}") }
            }
            Value::Unknown => write!(f, "(known after apply)"),
            Value::Sensitive(_) => write!(f, "(sensitive value)"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(Number::Int(n))
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Number(Number::Int(n.into()))
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(Number::Int(n.into()))
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(i64::try_from(n).map_or_else(|_| Number::from_bigint(n.into()).unwrap_or(Number::Int(i64::MAX)), Number::Int))
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::from(n as u64)
    }
}

/// A float that is not finite (NaN, infinity) becomes `null`: no value of
/// the language is infinite.
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

impl From<Number> for Value {
    fn from(n: Number) -> Self {
        Value::Number(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_numbers_serialise_without_fraction() {
        assert_eq!(Value::from(3.0).to_json().to_string(), "3");
        assert_eq!(Value::from(1.5).to_json().to_string(), "1.5");
        assert_eq!(Value::from(3.0).to_string(), "3");
    }

    #[test]
    fn unknown_is_found_at_depth() {
        let v = Value::List(vec![Value::Map(ValueMap::from([("a".into(), Value::Unknown)]))]);
        assert!(v.has_unknown());
        assert!(!Value::from(1).has_unknown());
    }
}
