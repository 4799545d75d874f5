//! The canonical JSON form of a [`State`]: how it is printed and parsed.
//!
//! The printed form is byte-for-byte determined by the state: 2-space
//! indent, object keys sorted at every depth, resources in [`InstanceAddr`]
//! order, a trailing newline and no volatile fields, so applying the same
//! configuration twice leaves the file unchanged and a one-resource change
//! is a few-line diff. This module does no I/O (the path it takes is only
//! for error messages); writing files belongs to the store.

use super::{OutputState, ResourceState, STATE_VERSION, State, StateError};
use crate::addr::{InstanceAddr, ResourceAddr};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Prints `state` in canonical form. Linear in the size of the state.
pub fn to_canonical_json(state: &State) -> String {
    let mut buf = Vec::with_capacity(256 + state.resources.len() * 512);
    // Writing into memory has no failure mode: the only errors serde_json
    // reports for a state are I/O errors.
    write_canonical(state, &mut buf).expect("serialising a state into memory cannot fail");
    String::from_utf8(buf).expect("serde_json writes UTF-8")
}

/// Writes `state` in canonical form to `out`, straight from the state: no
/// copy of it as one JSON tree or one string is built on the way, so a
/// store can stream it to its file. Errors are `out`'s.
pub fn write_canonical<W: std::io::Write>(state: &State, mut out: W) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut out, &CanonicalState(state)).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

/// Whether `text` is exactly the canonical form of `state`, compared as it
/// is printed, without holding the printed form.
pub fn is_canonical_text_of(state: &State, text: &str) -> bool {
    let mut rest = SameAs { rest: text.as_bytes() };
    write_canonical(state, &mut rest).is_ok() && rest.rest.is_empty()
}

/// Parses a state file's text. `path` is only used in error messages.
///
/// Checks, in order: the text is JSON ([`StateError::Corrupt`] with line
/// and column), the format version is one this build reads
/// ([`StateError::FutureVersion`]), and every field is present and well
/// formed with no duplicate addresses ([`StateError::Invalid`], naming the
/// resource).
///
/// A well-formed file is read one resource at a time: the text is only
/// scanned as a whole, never held as one JSON tree beside the state built
/// from it. Any problem sends the read down the whole-tree path, which
/// finds and reports it exactly as it always did.
pub fn parse(text: &str, path: &Path) -> Result<State, StateError> {
    match parse_by_resource(text) {
        Some(state) => Ok(state),
        None => parse_whole(text, path),
    }
}

/// The state from a well-formed file's text, each resource parsed on its
/// own and dropped once it is in the state; `None` at the first problem of
/// any kind, which [`parse_whole`] then reports.
fn parse_by_resource(text: &str) -> Option<State> {
    read_by_resource(&mut serde_json::Deserializer::from_str(text))
}

/// [`parse_by_resource`] straight from a reader: neither the text nor a
/// JSON tree of it is ever held whole, only one resource's tree at a time.
/// `None` at the first problem of any kind, including the reader's; the
/// caller then reads the text and [`parse_whole`] reports the problem.
pub fn parse_reader(reader: impl std::io::Read) -> Option<State> {
    read_by_resource(&mut serde_json::Deserializer::from_reader(reader))
}

/// Both reads run one deserializer over the whole file, so its nesting
/// limit counts from the file's top exactly as in the whole-tree read.
fn read_by_resource<'de, R: serde_json::de::Read<'de>>(de: &mut serde_json::Deserializer<R>) -> Option<State> {
    let state = serde::Deserializer::deserialize_map(&mut *de, ByResource).ok()?;
    de.end().ok()?;
    Some(state)
}

/// The top-level object, its `resources` read element by element. Any
/// error only means "not well formed": its message is never shown.
struct ByResource;

impl<'de> Visitor<'de> for ByResource {
    type Value = State;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a state file")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<State, A::Error> {
        let (mut version, mut serial, mut lineage, mut resources, mut outputs) = (None, None, None, None, None);
        // A key given twice is refused (the whole-tree read keeps the last, after checking the first).
        fn once<T, E: de::Error>(slot: &mut Option<T>, value: T) -> Result<(), E> {
            match slot.replace(value) {
                Some(_) => Err(E::custom("duplicate field")),
                None => Ok(()),
            }
        }
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "version" => once(&mut version, map.next_value::<Value>()?)?,
                "serial" => once(&mut serial, map.next_value::<Value>()?)?,
                "lineage" => once(&mut lineage, map.next_value::<Value>()?)?,
                "resources" => once(&mut resources, map.next_value_seed(Resources)?)?,
                "outputs" => once(&mut outputs, map.next_value::<Value>()?)?,
                _ => return Err(de::Error::custom("unknown field")),
            }
        }
        let not_well_formed = || de::Error::custom("not well formed");
        let version = version.and_then(|v| v.as_u64()).ok_or_else(not_well_formed)?;
        if version == 0 || version > u64::from(STATE_VERSION) {
            return Err(not_well_formed());
        }
        let serial = serial.and_then(|v| v.as_u64()).ok_or_else(not_well_formed)?;
        let Some(Value::String(lineage)) = lineage else { return Err(not_well_formed()) };
        let Some(Value::Object(outputs)) = outputs else { return Err(not_well_formed()) };
        let resources = resources.ok_or_else(not_well_formed)?;
        let mut state = State { serial, lineage, resources, outputs: BTreeMap::new() };
        for (name, item) in outputs {
            let out = parse_output(&name, item).map_err(de::Error::custom)?;
            state.outputs.insert(name, out);
        }
        Ok(state)
    }
}

/// The `resources` array, each element parsed into the state's form as
/// soon as it is read.
struct Resources;

impl<'de> DeserializeSeed<'de> for Resources {
    type Value = BTreeMap<InstanceAddr, ResourceState>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Resources {
    type Value = BTreeMap<InstanceAddr, ResourceState>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of resources")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut dependencies = Interned::new();
        let mut parsed = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Value>()? {
            parsed.push(parse_resource(parsed.len(), item, &mut dependencies).map_err(de::Error::custom)?);
        }
        // Built from sorted entries, the map's nodes are full; inserted one at
        // a time they are about half full (a third of a large state's memory).
        parsed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if parsed.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(de::Error::custom("duplicate address"));
        }
        // The map is built beside the list, which its growth left up to
        // twice as long as it is (a large list shrinks in place).
        parsed.shrink_to_fit();
        Ok(parsed.into_iter().collect())
    }
}

/// The whole-tree read: the file as one JSON value, then checked field by
/// field. Only files that [`parse_by_resource`] refused come here — and
/// the `state_file` fuzz target, which checks that both reads of a file
/// that parses give the same state.
#[doc(hidden)]
pub fn parse_whole(text: &str, path: &Path) -> Result<State, StateError> {
    let root: Value = serde_json::from_str(text).map_err(|e| corrupt(path, &e))?;
    let invalid = |message: String| StateError::Invalid { path: path.to_path_buf(), message };
    let Value::Object(mut top) = root else {
        return Err(invalid("the top level must be a JSON object".into()));
    };

    // The version is checked first so that a newer file is refused with
    // the upgrade advice rather than a confusing complaint about a field.
    let version = match top.remove("version") {
        Some(v) => v.as_u64().ok_or_else(|| invalid("\"version\" must be a positive integer".into()))?,
        None => return Err(invalid("missing field \"version\"".into())),
    };
    if version > u64::from(STATE_VERSION) {
        return Err(StateError::FutureVersion { path: path.to_path_buf(), version });
    }
    if version == 0 {
        return Err(invalid("\"version\" must be at least 1".into()));
    }

    let serial = take(&mut top, "serial", "the state")
        .and_then(|v| v.as_u64().ok_or_else(|| "\"serial\" must be a non-negative integer".to_string()))
        .map_err(invalid)?;
    let lineage = take_string(&mut top, "lineage", "the state").map_err(invalid)?;
    let resources = match take(&mut top, "resources", "the state").map_err(invalid)? {
        Value::Array(items) => items,
        _ => return Err(invalid("\"resources\" must be an array".into())),
    };
    let outputs = match take(&mut top, "outputs", "the state").map_err(invalid)? {
        Value::Object(map) => map,
        _ => return Err(invalid("\"outputs\" must be an object".into())),
    };
    if let Some(key) = top.keys().next() {
        return Err(invalid(format!("unknown top-level field {key:?}")));
    }

    let mut state = State { serial, lineage, resources: BTreeMap::new(), outputs: BTreeMap::new() };
    // Where each address was first seen, to name both places of a duplicate.
    let mut seen: BTreeMap<InstanceAddr, usize> = BTreeMap::new();
    let mut dependencies = Interned::new();
    for (index, item) in resources.into_iter().enumerate() {
        let (addr, res) = parse_resource(index, item, &mut dependencies).map_err(invalid)?;
        if let Some(first) = seen.get(&addr) {
            return Err(invalid(format!("resource #{index}: duplicate address {addr} (also resource #{first})")));
        }
        seen.insert(addr.clone(), index);
        state.resources.insert(addr, res);
    }
    for (name, item) in outputs {
        let out = parse_output(&name, item).map_err(invalid)?;
        state.outputs.insert(name, out);
    }
    Ok(state)
}

/// The state file's top-level object, keys in sorted order.
struct CanonicalState<'a>(&'a State);

impl Serialize for CanonicalState<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let state = self.0;
        let mut top = serializer.serialize_map(Some(5))?;
        top.serialize_entry("lineage", &state.lineage)?;
        top.serialize_entry("outputs", &CanonicalOutputs(&state.outputs))?;
        top.serialize_entry("resources", &CanonicalResources(&state.resources))?;
        top.serialize_entry("serial", &state.serial)?;
        top.serialize_entry("version", &STATE_VERSION)?;
        top.end()
    }
}

struct CanonicalOutputs<'a>(&'a BTreeMap<String, OutputState>);

impl Serialize for CanonicalOutputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, out) in self.0 {
            map.serialize_entry(name, &CanonicalOutput(out))?;
        }
        map.end()
    }
}

/// An output as `{ "sensitive": …, "value": … }`.
struct CanonicalOutput<'a>(&'a OutputState);

impl Serialize for CanonicalOutput<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut obj = serializer.serialize_map(Some(2))?;
        obj.serialize_entry("sensitive", &self.0.sensitive)?;
        obj.serialize_entry("value", &Canonical(&self.0.value))?;
        obj.end()
    }
}

struct CanonicalResources<'a>(&'a BTreeMap<InstanceAddr, ResourceState>);

impl Serialize for CanonicalResources<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (addr, res) in self.0 {
            seq.serialize_element(&CanonicalResource(addr, res))?;
        }
        seq.end()
    }
}

/// A resource as it appears in the state file's `resources` array, keys
/// in sorted order.
struct CanonicalResource<'a>(&'a InstanceAddr, &'a ResourceState);

impl Serialize for CanonicalResource<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (addr, res) = (self.0, self.1);
        let mut obj = serializer.serialize_map(Some(6 + usize::from(res.unhealthy.is_some())))?;
        obj.serialize_entry("address", &Displayed(addr))?;
        obj.serialize_entry("attributes", &Canonical(&res.attributes.json()))?;
        obj.serialize_entry("dependencies", &CanonicalDependencies(&res.dependencies))?;
        obj.serialize_entry("provider", &res.provider)?;
        obj.serialize_entry("schema_version", &res.schema_version)?;
        obj.serialize_entry("type", &res.rtype)?;
        if let Some(why) = &res.unhealthy {
            obj.serialize_entry("unhealthy", why)?;
        }
        obj.end()
    }
}

struct CanonicalDependencies<'a>(&'a [Arc<ResourceAddr>]);

impl Serialize for CanonicalDependencies<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|d| Displayed(&**d)))
    }
}

/// A value serialised as the JSON string of its `Display` form.
struct Displayed<'a, T: std::fmt::Display>(&'a T);

impl<T: std::fmt::Display> Serialize for Displayed<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// A writer that checks what is written against the bytes that remain of
/// a text, failing at the first difference.
struct SameAs<'a> {
    rest: &'a [u8],
}

impl std::io::Write for SameAs<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.rest.strip_prefix(buf) {
            Some(rest) => {
                self.rest = rest;
                Ok(buf.len())
            }
            None => Err(std::io::Error::other("differs")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads one element of `resources`; errors name the index and, once it
/// is known, the address.
/// One shared copy of each dependency address seen while parsing.
type Interned = std::collections::HashMap<String, Arc<ResourceAddr>>;

fn parse_resource(index: usize, item: Value, interned: &mut Interned) -> Result<(InstanceAddr, ResourceState), String> {
    let Value::Object(mut obj) = item else {
        return Err(format!("resource #{index} must be a JSON object"));
    };
    let where_ = format!("resource #{index}");
    let address = take_string(&mut obj, "address", &where_)?;
    let addr: InstanceAddr = address.parse().map_err(|e| format!("{where_}: {e}"))?;
    let where_ = format!("resource #{index} ({addr})");
    let rtype = take_string(&mut obj, "type", &where_)?;
    if rtype != addr.resource.rtype {
        return Err(format!("{where_}: \"type\" is {rtype:?} but the address says {:?}", addr.resource.rtype));
    }
    let provider = take_string(&mut obj, "provider", &where_)?;
    let schema_version = take(&mut obj, "schema_version", &where_)?
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| format!("{where_}: \"schema_version\" must be a small non-negative integer"))?;
    let attributes = take(&mut obj, "attributes", &where_)?;
    let dependencies = match take(&mut obj, "dependencies", &where_)? {
        Value::Array(items) => items
            .into_iter()
            .map(|d| match d {
                Value::String(s) => match interned.get(&s) {
                    Some(shared) => Ok(shared.clone()),
                    None => {
                        let addr: Arc<ResourceAddr> = Arc::new(s.parse().map_err(|e| format!("{where_}: \"dependencies\": {e}"))?);
                        interned.insert(s, addr.clone());
                        Ok(addr)
                    }
                },
                _ => Err(format!("{where_}: \"dependencies\" must be an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            // Collected in place, into the JSON array's larger buffer.
            .map(|mut deps| {
                deps.shrink_to_fit();
                deps
            })?,
        _ => return Err(format!("{where_}: \"dependencies\" must be an array of strings")),
    };
    let unhealthy = match obj.remove("unhealthy") {
        None => None,
        Some(Value::String(why)) => Some(why),
        Some(_) => return Err(format!("{where_}: \"unhealthy\" must be a string")),
    };
    if let Some(key) = obj.keys().next() {
        return Err(format!("{where_}: unknown field {key:?}"));
    }
    Ok((addr, ResourceState { rtype, provider, schema_version, attributes: attributes.into(), dependencies, unhealthy }))
}

fn parse_output(name: &str, item: Value) -> Result<OutputState, String> {
    let where_ = format!("output {name:?}");
    let Value::Object(mut obj) = item else {
        return Err(format!("{where_} must be an object {{\"value\": …, \"sensitive\": …}}"));
    };
    let value = take(&mut obj, "value", &where_)?;
    let sensitive =
        take(&mut obj, "sensitive", &where_)?.as_bool().ok_or_else(|| format!("{where_}: \"sensitive\" must be true or false"))?;
    if let Some(key) = obj.keys().next() {
        return Err(format!("{where_}: unknown field {key:?}"));
    }
    Ok(OutputState { value, sensitive })
}

fn take(obj: &mut Map<String, Value>, key: &str, where_: &str) -> Result<Value, String> {
    obj.remove(key).ok_or_else(|| format!("{where_}: missing field {key:?}"))
}

fn take_string(obj: &mut Map<String, Value>, key: &str, where_: &str) -> Result<String, String> {
    match take(obj, key, where_)? {
        Value::String(s) => Ok(s),
        _ => Err(format!("{where_}: {key:?} must be a string")),
    }
}

/// A [`StateError::Corrupt`] from a JSON syntax error, without serde_json's
/// own "at line … column …" suffix (the error prints its own).
pub(crate) fn corrupt(path: &Path, err: &serde_json::Error) -> StateError {
    let (line, col) = (err.line(), err.column());
    let text = err.to_string();
    let suffix = format!(" at line {line} column {col}");
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_string();
    StateError::Corrupt { path: path.to_path_buf(), line, col, message }
}

/// Serialises a JSON value with the keys of every object sorted, whatever
/// map type serde_json was built with (`preserve_order` would otherwise
/// keep insertion order). Sorting already sorted keys is linear.
struct Canonical<'a>(&'a Value);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Canonical(value))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Canonical(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A state with `n` resources of one type, keyed by count index.
    pub(crate) fn sample_state(n: usize) -> State {
        let mut state = State::new_lineage();
        state.serial = 7;
        for i in 0..n {
            let addr: InstanceAddr = format!("aws_instance.web[{i}]").parse().expect("valid address");
            state.resources.insert(
                addr,
                ResourceState {
                    rtype: "aws_instance".into(),
                    provider: "aws".into(),
                    schema_version: 1,
                    attributes: json!({ "zeta": i, "id": format!("i-{i:08x}"), "tags": { "b": "2", "a": "1" } }).into(),
                    dependencies: vec![Arc::new("aws_subnet.main".parse().unwrap())],
                    unhealthy: None,
                },
            );
        }
        state.outputs.insert("ip".into(), OutputState { value: json!("10.0.0.1"), sensitive: false });
        state
    }

    #[test]
    fn a_large_number_reads_back_to_the_same_text() {
        // Found by fuzzing (state_file): a 96-digit number was written as 9.999999999999999e+95, which read back as 1e96.
        let state = sample_state(0);
        let text = to_canonical_json(&state).replace("\"10.0.0.1\"", &format!("{}1", "9".repeat(95)));
        let once = to_canonical_json(&parse(&text, Path::new("s.json")).expect("parses"));
        let twice = to_canonical_json(&parse(&once, Path::new("s.json")).expect("parses again"));
        assert_eq!(once, twice);
    }

    #[test]
    fn reading_by_resource_gives_what_the_whole_tree_gives() {
        // A well-formed file read one resource at a time is the state the whole-tree read builds.
        let text = to_canonical_json(&sample_state(50));
        let by_resource = parse_by_resource(&text).expect("well formed");
        assert_eq!(by_resource, parse_whole(&text, Path::new("s.json")).expect("parses"));
        assert_eq!(parse_reader(text.as_bytes()).expect("well formed"), by_resource);
    }

    #[test]
    fn nesting_is_limited_from_the_top_of_the_file_in_both_reads() {
        // A value nested near serde_json's limit (128, counted from the file's top) is read, or refused, the same both ways.
        for depth in [100, 124, 125, 126, 127, 200] {
            let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
            let text = to_canonical_json(&sample_state(1)).replace("\"10.0.0.1\"", &deep);
            let whole = parse_whole(&text, Path::new("s.json")).ok();
            assert_eq!(parse_by_resource(&text), whole, "depth {depth}");
            assert_eq!(parse_reader(text.as_bytes()), whole, "depth {depth}");
        }
        let deep = format!("{}1{}", "[".repeat(126), "]".repeat(126));
        let text = to_canonical_json(&sample_state(1)).replace("\"10.0.0.1\"", &deep);
        assert!(parse_whole(&text, Path::new("s.json")).is_err(), "the limit is reached within these depths");
    }

    #[test]
    fn canonical_text_is_compared_as_printed() {
        // Only the exact canonical text of a state counts as its text.
        let state = sample_state(3);
        let text = to_canonical_json(&state);
        assert!(is_canonical_text_of(&state, &text));
        assert!(!is_canonical_text_of(&state, &text[..text.len() - 1]));
        assert!(!is_canonical_text_of(&state, &format!("{text}\n")));
        let mut later = state.clone();
        later.serial += 1;
        assert!(!is_canonical_text_of(&later, &text));
    }

    #[test]
    fn canonical_output_is_stable_and_sorted() {
        // Two prints of one state are identical and every object's keys are sorted.
        let state = sample_state(3);
        let a = to_canonical_json(&state);
        let b = to_canonical_json(&state.clone());
        assert_eq!(a, b);
        assert!(a.ends_with("}\n"));
        assert!(a.starts_with("{\n  \"lineage\": "), "{a}");
        let order = ["\"lineage\"", "\"outputs\"", "\"resources\"", "\"serial\"", "\"version\""];
        let pos: Vec<usize> = order.iter().map(|k| a.find(k).expect("key present")).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{a}");
        let tags = a.find("\"a\": \"1\"").expect("tag a");
        assert!(tags < a.find("\"b\": \"2\"").expect("tag b"));
        assert!(a.find("\"id\"").expect("id") < a.find("\"zeta\"").expect("zeta"));
        assert_eq!(parse(&a, Path::new("s.json")).expect("parses"), state);
    }

    #[test]
    fn numeric_keys_sort_as_numbers_in_the_file() {
        // web[2] comes before web[10] in the resources array.
        let mut state = sample_state(0);
        for i in [10, 2] {
            let addr: InstanceAddr = format!("aws_instance.web[{i}]").parse().expect("valid");
            let res = ResourceState {
                rtype: "aws_instance".into(),
                provider: "aws".into(),
                schema_version: 0,
                attributes: json!({}).into(),
                dependencies: vec![],
                unhealthy: None,
            };
            state.resources.insert(addr, res);
        }
        let text = to_canonical_json(&state);
        let two = text.find("aws_instance.web[2]").expect("web[2]");
        let ten = text.find("aws_instance.web[10]").expect("web[10]");
        assert!(two < ten);
    }

    #[test]
    fn corrupt_file_names_line_and_column() {
        // A truncated file is reported with its path, line, column and the way out.
        let text = "{\n  \"version\": 1,\n  \"serial\": \n";
        let err = parse(text, Path::new("/x/state.json")).expect_err("corrupt");
        let StateError::Corrupt { line, .. } = &err else { panic!("wrong error {err:?}") };
        assert_eq!(*line, 4);
        let msg = err.to_string();
        assert!(msg.contains("/x/state.json") && msg.contains("line 4") && msg.contains("column"), "{msg}");
        assert!(msg.contains("/x/state.json.backup"), "{msg}");
    }

    #[test]
    fn future_version_is_refused() {
        // A file from a newer himaplan is refused with upgrade advice, even with unknown fields.
        let text = r#"{"version": 9, "something_new": true}"#;
        let err = parse(text, Path::new("s.json")).expect_err("future");
        assert!(matches!(err, StateError::FutureVersion { version: 9, .. }));
        assert!(err.to_string().contains("newer himaplan (version 9); upgrade himaplan"));
    }

    #[test]
    fn invalid_resources_are_named() {
        // Missing fields, bad addresses and duplicates name the resource.
        let base = |resources: &str| format!(r#"{{"version":1,"serial":1,"lineage":"l","outputs":{{}},"resources":[{resources}]}}"#);
        let ok = r#"{"address":"a_b.c","type":"a_b","provider":"a","schema_version":0,"attributes":{},"dependencies":[]}"#;
        let cases = [
            (base(r#"{"address":"a_b.c"}"#), "resource #0 (a_b.c): missing field \"type\""),
            (base(r#"{"address":"nonsense"}"#), "resource #0: invalid resource address"),
            (base(&format!("{ok},{ok}")), "resource #1: duplicate address a_b.c (also resource #0)"),
            (base(&ok.replace("\"type\":\"a_b\"", "\"type\":\"x\"")), "the address says"),
            (base("3"), "resource #0 must be a JSON object"),
        ];
        for (text, expected) in cases {
            let err = parse(&text, Path::new("s.json")).expect_err("invalid");
            assert!(err.to_string().contains(expected), "{err} should contain {expected}");
        }
        assert!(parse(&base(ok), Path::new("s.json")).is_ok());
    }

    #[test]
    fn ten_thousand_resources_round_trip() {
        // A large state prints and parses back unchanged, in linear time.
        let state = sample_state(10_000);
        let start = std::time::Instant::now();
        let text = to_canonical_json(&state);
        let back = parse(&text, Path::new("s.json")).expect("parses");
        assert_eq!(back, state);
        // Generous for unoptimised test builds on a shared machine.
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "{:?}", start.elapsed());
    }
}
