//! Typed addresses of resources and resource instances, printed and parsed
//! in HCL syntax (`module.web.aws_instance.this["a"]`, `aws_instance.web[2]`).
//!
//! The ordering of [`InstanceAddr`] is the state file's resource order:
//! module path, type, name, then key, with numeric keys compared as numbers.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The key of one instance of a resource with `count` or `for_each`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InstanceKey {
    Int(i64),
    Str(String),
}

impl Ord for InstanceKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (InstanceKey::Int(a), InstanceKey::Int(b)) => a.cmp(b),
            (InstanceKey::Int(_), InstanceKey::Str(_)) => Ordering::Less,
            (InstanceKey::Str(_), InstanceKey::Int(_)) => Ordering::Greater,
            (InstanceKey::Str(a), InstanceKey::Str(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for InstanceKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceKey::Int(i) => write!(f, "[{i}]"),
            InstanceKey::Str(s) => write!(f, "[{}]", serde_json::Value::String(s.clone())),
        }
    }
}

/// The path of a module call from the root: `module.a.module.b`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(pub Vec<String>);

impl ModulePath {
    pub fn root() -> Self {
        ModulePath(Vec::new())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn child(&self, name: &str) -> Self {
        let mut steps = self.0.clone();
        steps.push(name.to_string());
        ModulePath(steps)
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ".")?;
            }
            write!(f, "module.{step}")?;
        }
        Ok(())
    }
}

/// A resource block: `aws_instance.web`, possibly inside a module.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceAddr {
    pub module: ModulePath,
    pub rtype: String,
    pub name: String,
}

impl ResourceAddr {
    pub fn new(module: ModulePath, rtype: &str, name: &str) -> Self {
        ResourceAddr { module, rtype: rtype.to_string(), name: name.to_string() }
    }

    pub fn instance(&self, key: Option<InstanceKey>) -> InstanceAddr {
        InstanceAddr { resource: self.clone(), key }
    }
}

impl FromStr for ResourceAddr {
    type Err = AddrParseError;

    /// `TYPE.NAME` with optional `module.M.` prefixes and no instance key.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let addr: InstanceAddr = input.parse()?;
        if addr.key.is_some() {
            return Err(AddrParseError { input: input.to_string(), reason: "a resource address has no instance key".into() });
        }
        Ok(addr.resource)
    }
}

impl fmt::Display for ResourceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.module.is_root() {
            write!(f, "{}.", self.module)?;
        }
        write!(f, "{}.{}", self.rtype, self.name)
    }
}

/// One instance of a resource: `aws_instance.web[2]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceAddr {
    pub resource: ResourceAddr,
    pub key: Option<InstanceKey>,
}

impl fmt::Display for InstanceAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.resource)?;
        if let Some(key) = &self.key {
            write!(f, "{key}")?;
        }
        Ok(())
    }
}

impl InstanceAddr {
    /// Whether this address, used as a pattern (`--target`, `--replace`,
    /// `state rm`, `moved`), selects `addr`: the same instance, or any
    /// instance of the resource when this address has no key.
    pub fn matches(&self, addr: &InstanceAddr) -> bool {
        self == addr || (self.key.is_none() && self.resource == addr.resource)
    }

    /// Where an instance selected by this pattern goes when the pattern is
    /// moved to `to`: `to` itself for a keyed pattern, else `to`'s resource
    /// with the instance's own key.
    pub fn moved_to(&self, instance: &InstanceAddr, to: &InstanceAddr) -> InstanceAddr {
        if self.key.is_some() { to.clone() } else { to.resource.instance(instance.key.clone()) }
    }
}

/// Why an address could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid resource address {input:?}: {reason}")]
pub struct AddrParseError {
    pub input: String,
    pub reason: String,
}

impl FromStr for InstanceAddr {
    type Err = AddrParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| AddrParseError { input: input.to_string(), reason: reason.to_string() };
        let mut rest = input.trim();
        let mut module = Vec::new();
        while let Some(after) = rest.strip_prefix("module.") {
            let (name, tail) = split_ident(after);
            if name.is_empty() {
                return Err(err("expected a module name after \"module.\""));
            }
            module.push(name.to_string());
            rest = tail.strip_prefix('.').ok_or_else(|| err("expected \".\" after the module name"))?;
        }
        let (rtype, tail) = split_ident(rest);
        if rtype.is_empty() {
            return Err(err("expected a resource type"));
        }
        let tail = tail.strip_prefix('.').ok_or_else(|| err("expected TYPE.NAME"))?;
        let (name, tail) = split_ident(tail);
        if name.is_empty() {
            return Err(err("expected a resource name after the type"));
        }
        let key = if tail.is_empty() {
            None
        } else {
            let inner = tail
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .ok_or_else(|| err("expected [index] or [\"key\"] after the name"))?;
            if inner.starts_with('"') {
                let s: String = serde_json::from_str(inner).map_err(|_| err("malformed string key"))?;
                Some(InstanceKey::Str(s))
            } else {
                Some(InstanceKey::Int(inner.parse().map_err(|_| err("index must be an integer or a quoted string"))?))
            }
        };
        Ok(InstanceAddr { resource: ResourceAddr { module: ModulePath(module), rtype: rtype.to_string(), name: name.to_string() }, key })
    }
}

fn split_ident(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(s.len());
    s.split_at(end)
}

/// Addresses serialise as their HCL text (`module.web.aws_instance.this[0]`).
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(InstanceAddr);
serde_as_text!(ResourceAddr);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_display() {
        for text in ["aws_instance.web[2]", "docker_service.celery", "module.web.aws_instance.this[\"a\"]"] {
            let addr: InstanceAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
    }

    #[test]
    fn numeric_keys_sort_as_numbers() {
        let a: InstanceAddr = "aws_instance.web[2]".parse().unwrap();
        let b: InstanceAddr = "aws_instance.web[10]".parse().unwrap();
        assert!(a < b);
    }

    #[test]
    fn a_keyless_pattern_matches_every_instance() {
        let all: InstanceAddr = "aws_instance.web".parse().unwrap();
        let one: InstanceAddr = "aws_instance.web[1]".parse().unwrap();
        let other: InstanceAddr = "aws_instance.web[2]".parse().unwrap();
        assert!(all.matches(&one) && all.matches(&other) && one.matches(&one));
        assert!(!one.matches(&other) && !one.matches(&all));
    }

    #[test]
    fn resource_addresses_have_no_key() {
        assert_eq!("module.a.x_y.z".parse::<ResourceAddr>().unwrap().to_string(), "module.a.x_y.z");
        assert!("x_y.z[0]".parse::<ResourceAddr>().is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!("aws_instance".parse::<InstanceAddr>().is_err());
        assert!("aws_instance.web[x".parse::<InstanceAddr>().is_err());
    }
}
