//! Attribute-level differences of two JSON values, drawn the way Terraform
//! draws them: one line per changed attribute (`~ a = 1 -> 2`), nested
//! blocks for objects and lists with per-element `+`/`~`/`-`, unchanged
//! attributes hidden behind a count, `(known after apply)` for unknowns and
//! `(sensitive value)` for secrets. It only appends text to a [`Canvas`];
//! the sections around the blocks belong to `human`.

use super::canvas::Canvas;
use super::{KNOWN, any_unknown, is_secret, is_unknown, unknown_index, unknown_key};
use serde_json::{Map, Value};

/// What kind of object a block body draws.
#[derive(Clone, Copy)]
pub(super) enum Body {
    /// A resource's attributes; unchanged `id` and `name` stay visible so a
    /// reader knows which object the block is about.
    Resource,
    /// Top-level attributes without identification (outputs).
    Attributes,
    /// The entries of a nested map or object.
    Nested,
}

/// What a hidden-count line calls the things it hides.
#[derive(Clone, Copy)]
enum Noun {
    Attribute,
    Element,
}

impl Noun {
    fn hidden(self, n: usize) -> String {
        let word = match (self, n) {
            (Noun::Attribute, 1) => "attribute",
            (Noun::Attribute, _) => "attributes",
            (Noun::Element, 1) => "element",
            (Noun::Element, _) => "elements",
        };
        format!("# ({n} unchanged {word} hidden)")
    }
}

/// Draws the differences of one resource (or output) onto a canvas.
pub(super) struct Differ<'a> {
    pub canvas: &'a mut Canvas,
    /// Paths whose change forces replacement, annotated where they appear.
    pub replace_paths: &'a [String],
}

/// Where an attribute line goes and how it is labelled.
struct Slot<'k> {
    depth: usize,
    /// `key = ` already padded, or empty for a list element.
    label: String,
    path: &'k str,
    /// Inside a collection that is created or destroyed as a whole: its
    /// elements do not repeat `-> null`.
    whole: bool,
    /// A list element, followed by a comma.
    element: bool,
}

impl Differ<'_> {
    /// The attributes of an object at `depth`, sorted by key: changed ones
    /// drawn, unchanged ones counted in a `# (N unchanged … hidden)` line.
    pub fn object_body(
        &mut self,
        depth: usize,
        path: &str,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
        unknown: &Value,
        body: Body,
    ) {
        let identify = matches!(body, Body::Resource);
        let noun = if matches!(body, Body::Nested) { Noun::Element } else { Noun::Attribute };
        let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
        if let Value::Object(map) = unknown {
            keys.extend(map.keys());
        }
        keys.sort();
        keys.dedup();

        let mut shown = Vec::new();
        let mut hidden = 0;
        for key in keys {
            let (b, a, u) = (present(before.get(key.as_str())), after.get(key.as_str()), unknown_key(unknown, key));
            let a = present(a);
            match (b, a) {
                (None, None) if !any_unknown(u) => {}
                (Some(b), Some(a)) if b == a && !any_unknown(u) => {
                    if identify && depth == 1 && (key == "id" || key == "name") && !is_collection(b) {
                        shown.push((key, true));
                    } else {
                        hidden += 1;
                    }
                }
                _ => shown.push((key, false)),
            }
        }

        let width = shown.iter().map(|(key, _)| label(key).chars().count()).max().unwrap_or(0);
        for (key, unchanged) in shown {
            let padded = format!("{:<width$} = ", label(key));
            let child_path = child_path(path, key);
            if unchanged {
                let value = before.get(key.as_str()).map(scalar).unwrap_or_default();
                self.canvas.symbol_line(depth, " ", &format!("{padded}{value}"));
                continue;
            }
            let slot = Slot { depth, label: padded, path: &child_path, whole: false, element: false };
            self.item(&slot, before.get(key.as_str()), after.get(key.as_str()), unknown_key(unknown, key));
        }
        if hidden > 0 {
            self.canvas.plain_line(4 * depth + 4, &noun.hidden(hidden));
        }
    }

    /// Every attribute of an object as created (`+`) at `depth`.
    pub fn created_body(&mut self, depth: usize, after: &Map<String, Value>, unknown: &Value) {
        self.object_body(depth, "", &Map::new(), after, unknown, Body::Attributes);
    }

    /// Every attribute of an object as destroyed (`-  … -> null`) at `depth`.
    pub fn deleted_body(&mut self, depth: usize, before: &Map<String, Value>) {
        self.object_body(depth, "", before, &Map::new(), &KNOWN, Body::Attributes);
    }

    /// One attribute or list element, whatever happened to it.
    fn item(&mut self, slot: &Slot<'_>, before: Option<&Value>, after: Option<&Value>, unknown: &Value) {
        let (before, after) = (present(before), present(after));
        match (before, after) {
            (None, _) if is_unknown(unknown) => self.line(slot, "+", "(known after apply)", true),
            (None, None) => {}
            (None, Some(after)) => self.created(slot, after, unknown),
            (Some(before), _) if is_unknown(unknown) => self.became_unknown(slot, before),
            (Some(before), None) => self.deleted(slot, before),
            (Some(before), Some(after)) => {
                if before == after && !any_unknown(unknown) {
                    self.line(slot, " ", &scalar(before), true);
                } else {
                    self.changed(slot, before, after, unknown);
                }
            }
        }
    }

    fn created(&mut self, slot: &Slot<'_>, after: &Value, unknown: &Value) {
        match after {
            Value::Object(map) if !map.is_empty() && !is_secret(after) => {
                self.open(slot, "+", "{");
                self.object_body(slot.depth + 1, slot.path, &Map::new(), map, unknown, Body::Nested);
                self.close(slot, "}", "");
            }
            Value::Array(items) if !items.is_empty() => {
                self.open(slot, "+", "[");
                self.list_body(slot.depth + 1, slot.path, &[], items, unknown);
                self.close(slot, "]", "");
            }
            _ => self.line(slot, "+", &scalar(after), true),
        }
    }

    fn deleted(&mut self, slot: &Slot<'_>, before: &Value) {
        let tail = if slot.whole || slot.element { "" } else { " -> null" };
        match before {
            Value::Object(map) if !map.is_empty() && !is_secret(before) => {
                self.open(slot, "-", "{");
                let inner = Slot { whole: true, ..self.nested(slot) };
                self.deleted_entries(&inner, map);
                self.close(slot, "}", tail);
            }
            Value::Array(items) if !items.is_empty() => {
                self.open(slot, "-", "[");
                self.list_body(slot.depth + 1, slot.path, items, &[], &KNOWN);
                self.close(slot, "]", tail);
            }
            _ => self.line(slot, "-", &format!("{}{tail}", scalar(before)), true),
        }
    }

    /// The entries of a destroyed object, aligned, without `-> null`.
    fn deleted_entries(&mut self, inner: &Slot<'_>, map: &Map<String, Value>) {
        let mut entries: Vec<(&String, &Value)> = map.iter().filter(|(_, v)| !v.is_null()).collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let width = entries.iter().map(|(k, _)| label(k).chars().count()).max().unwrap_or(0);
        for (key, value) in entries {
            let path = child_path(inner.path, key);
            let slot = Slot { label: format!("{:<width$} = ", label(key)), path: &path, ..*inner };
            self.deleted(&slot, value);
        }
    }

    fn became_unknown(&mut self, slot: &Slot<'_>, before: &Value) {
        match before {
            Value::Object(map) if !map.is_empty() && !is_secret(before) => {
                self.open(slot, "~", "{");
                let inner = Slot { whole: true, ..self.nested(slot) };
                self.deleted_entries(&inner, map);
                self.close(slot, "}", " -> (known after apply)");
            }
            Value::Array(items) if !items.is_empty() => {
                self.open(slot, "~", "[");
                self.list_body(slot.depth + 1, slot.path, items, &[], &KNOWN);
                self.close(slot, "]", " -> (known after apply)");
            }
            _ => self.line(slot, "~", &format!("{} -> (known after apply)", scalar(before)), true),
        }
    }

    fn changed(&mut self, slot: &Slot<'_>, before: &Value, after: &Value, unknown: &Value) {
        if is_secret(before) && is_secret(after) {
            return self.line(slot, "~", "(sensitive value)", true);
        }
        match (before, after) {
            (Value::Object(b), Value::Object(a)) if !is_secret(before) && !is_secret(after) => {
                self.open(slot, "~", "{");
                self.object_body(slot.depth + 1, slot.path, b, a, unknown, Body::Nested);
                self.close(slot, "}", "");
            }
            (Value::Array(b), Value::Array(a)) => {
                self.open(slot, "~", "[");
                self.list_body(slot.depth + 1, slot.path, b, a, unknown);
                self.close(slot, "]", "");
            }
            _ if is_collection(before) || is_collection(after) => {
                // A change of type: Terraform shows the old value going and
                // the new one coming.
                self.deleted(slot, before);
                self.created(slot, after, unknown);
            }
            _ => self.line(slot, "~", &format!("{} -> {}", scalar(before), scalar(after)), true),
        }
    }

    /// The elements of a list, matched by value so that a removed or added
    /// element shows as one `-` or `+` line instead of shifting the rest.
    fn list_body(&mut self, depth: usize, path: &str, before: &[Value], after: &[Value], unknown: &Value) {
        let old_keys: Vec<String> = before.iter().map(|v| v.to_string()).collect();
        let new_keys: Vec<String> = after
            .iter()
            .enumerate()
            .map(|(i, v)| if any_unknown(unknown_index(unknown, i)) { format!("\u{0}unknown {i}") } else { v.to_string() })
            .collect();
        let ops = similar::capture_diff_slices(similar::Algorithm::Myers, &old_keys, &new_keys);
        let mut hidden = 0;
        for op in ops {
            match op {
                similar::DiffOp::Equal { len, .. } => hidden += len,
                similar::DiffOp::Delete { old_index, old_len, .. } => {
                    for i in old_index..old_index + old_len {
                        self.element(depth, path, i, before.get(i), None, &KNOWN);
                    }
                }
                similar::DiffOp::Insert { new_index, new_len, .. } => {
                    for i in new_index..new_index + new_len {
                        self.element(depth, path, i, None, after.get(i), unknown_index(unknown, i));
                    }
                }
                similar::DiffOp::Replace { old_index, old_len, new_index, new_len } => {
                    let pairs_of_objects = old_len == new_len
                        && (0..old_len).all(|k| {
                            matches!((before.get(old_index + k), after.get(new_index + k)), (Some(b @ Value::Object(_)), Some(a @ Value::Object(_))) if !is_secret(b) && !is_secret(a))
                        });
                    if pairs_of_objects {
                        for k in 0..old_len {
                            let i = new_index + k;
                            self.element(depth, path, i, before.get(old_index + k), after.get(i), unknown_index(unknown, i));
                        }
                    } else {
                        for i in old_index..old_index + old_len {
                            self.element(depth, path, i, before.get(i), None, &KNOWN);
                        }
                        for i in new_index..new_index + new_len {
                            self.element(depth, path, i, None, after.get(i), unknown_index(unknown, i));
                        }
                    }
                }
            }
        }
        if hidden > 0 {
            self.canvas.plain_line(4 * depth + 4, &Noun::Element.hidden(hidden));
        }
    }

    fn element(&mut self, depth: usize, path: &str, index: usize, before: Option<&Value>, after: Option<&Value>, unknown: &Value) {
        let path = format!("{path}[{index}]");
        let slot = Slot { depth, label: String::new(), path: &path, whole: false, element: true };
        // A list element that is null still deserves a line, though an
        // attribute that is null counts as unset.
        match (before, after) {
            (Some(Value::Null), None) => self.line(&slot, "-", "null", true),
            (None, Some(Value::Null)) if !is_unknown(unknown) => self.line(&slot, "+", "null", true),
            _ => self.item(&slot, before, after, unknown),
        }
    }

    fn nested<'k>(&self, slot: &Slot<'k>) -> Slot<'k> {
        Slot { depth: slot.depth + 1, label: String::new(), path: slot.path, whole: slot.whole, element: false }
    }

    /// A single-line attribute: `~ key = old -> new`.
    fn line(&mut self, slot: &Slot<'_>, symbol: &str, value: &str, leaf: bool) {
        let comma = if slot.element { "," } else { "" };
        let forces = if self.forces(slot.path, leaf) { " # forces replacement" } else { "" };
        self.canvas.symbol_line(slot.depth, symbol, &format!("{}{value}{comma}{forces}", slot.label));
    }

    /// The first line of a nested block: `~ tags = {`.
    fn open(&mut self, slot: &Slot<'_>, symbol: &str, bracket: &str) {
        let forces = if self.forces(slot.path, false) { " # forces replacement" } else { "" };
        self.canvas.symbol_line(slot.depth, symbol, &format!("{}{bracket}{forces}", slot.label));
    }

    fn close(&mut self, slot: &Slot<'_>, bracket: &str, tail: &str) {
        let comma = if slot.element { "," } else { "" };
        self.canvas.plain_line(4 * slot.depth + 4, &format!("{bracket}{tail}{comma}"));
    }

    /// Whether the line for `path` carries `# forces replacement`: it is a
    /// replace path, or (for a one-line value) contains one.
    fn forces(&self, path: &str, leaf: bool) -> bool {
        !path.is_empty()
            && self
                .replace_paths
                .iter()
                .any(|p| p == path || (leaf && p.strip_prefix(path).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))))
    }
}

/// A value that counts as set: `null` does not.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn is_collection(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty() && !is_secret(value),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

/// An attribute name as written: bare when it is an identifier, quoted
/// otherwise (map keys such as `"kubernetes.io/name"`).
fn label(key: &str) -> String {
    let mut chars = key.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if identifier { key.to_string() } else { Value::String(key.to_string()).to_string() }
}

/// The path of an attribute below `parent`, as replace paths spell it.
fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else if label(key) == key {
        format!("{parent}.{key}")
    } else {
        format!("{parent}[{}]", Value::String(key.to_string()))
    }
}

/// A value on one line: strings quoted, integers without a fraction,
/// secrets as `(sensitive value)`, collections inline.
pub(super) fn scalar(value: &Value) -> String {
    match value {
        _ if is_secret(value) => "(sensitive value)".to_string(),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if n.is_i64() || n.is_u64() {
                n.to_string()
            } else {
                n.as_f64().map(crate::value::format_number).unwrap_or_else(|| n.to_string())
            }
        }
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{} = {}", label(k), scalar(v))).collect();
            if parts.is_empty() { "{}".to_string() } else { format!("{{ {} }}", parts.join(", ")) }
        }
    }
}
