//! `yamlencode` and `yamldecode`, byte for byte as Terraform's (go-cty-yaml,
//! a port of libyaml).
//!
//! The encoder reproduces libyaml's layout: block style, two-space indent,
//! sequences under a mapping key not indented, strings double-quoted with
//! YAML escapes and folded at column 80, multi-line strings as literal
//! blocks (`|`, `|-`, `|+`, `|2` hints) when libyaml allows it, and `...`
//! after a document that is one plain scalar. Mapping keys longer than 128
//! characters, which libyaml writes as complex keys (`? key`), are written
//! as simple keys here. The decoder reads events from `yaml-rust2` and
//! resolves plain scalars as go-cty-yaml does (YAML 1.1 booleans such as
//! `yes`, dates to RFC 3339 strings), with aliases expanded within a budget.

use super::{Args, MAX_ELEMENTS};
use crate::value::{Number, Value};
use std::collections::BTreeMap;
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::TScalarStyle;

/// Upper bound on nesting depth when decoding.
const MAX_DEPTH: usize = 256;

pub(super) fn yamlencode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let mut e = Emitter { out: String::new(), column: 0 };
    let v = f.arg(0)?;
    match v {
        Value::Map(m) if !m.is_empty() => e.map(m, 0, false),
        Value::List(l) if !l.is_empty() => e.seq(l, 0, false),
        Value::String(s) => e.string(s, 2, true),
        other => {
            e.scalar(other);
            if !matches!(other, Value::List(_) | Value::Map(_)) {
                e.out.push_str("\n...");
            }
        }
    }
    if e.column != 0 || !e.out.ends_with('\n') {
        e.out.push('\n');
    }
    f.bounded(e.out.len())?;
    Ok(Value::String(e.out))
}

struct Emitter {
    out: String,
    column: usize,
}

impl Emitter {
    fn push(&mut self, s: &str) {
        match s.rfind('\n') {
            Some(i) => self.column = s[i + 1..].chars().count(),
            None => self.column += s.chars().count(),
        }
        self.out.push_str(s);
    }

    /// Starts a line at `indent`, unless the cursor is already there.
    fn line(&mut self, indent: usize) {
        if self.column > indent || (self.column == indent && !self.out.is_empty() && !self.out.ends_with('\n')) {
            self.out.push('\n');
            self.column = 0;
        }
        let pad = indent - self.column.min(indent);
        self.push(&" ".repeat(pad));
    }

    /// A mapping with keys at `indent`; `inline` when the first key goes
    /// where the cursor is (after `- `).
    fn map(&mut self, map: &crate::value::ValueMap, indent: usize, inline: bool) {
        for (i, (k, v)) in map.iter().enumerate() {
            if i > 0 || !inline {
                self.line(indent);
            }
            self.double_quoted(k, indent + 2, false);
            self.push(":");
            self.value(v, indent, true);
        }
    }

    fn seq(&mut self, items: &[Value], indent: usize, inline: bool) {
        for (i, v) in items.iter().enumerate() {
            if i > 0 || !inline {
                self.line(indent);
            }
            self.push("-");
            self.value(v, indent, false);
        }
    }

    /// A node after `key:` (in a mapping at `indent`) or after `-`.
    fn value(&mut self, v: &Value, indent: usize, in_map: bool) {
        match v.unmarked() {
            Value::Map(m) if !m.is_empty() => {
                if in_map {
                    self.map(m, indent + 2, false);
                } else {
                    self.push(" ");
                    self.map(m, indent + 2, true);
                }
            }
            Value::List(l) if !l.is_empty() => {
                if in_map {
                    self.seq(l, indent, false);
                } else {
                    self.push(" ");
                    self.seq(l, indent + 2, true);
                }
            }
            Value::String(s) => {
                self.push(" ");
                self.string(s, indent + 2, true);
            }
            other => {
                self.push(" ");
                self.scalar(other);
            }
        }
    }

    fn scalar(&mut self, v: &Value) {
        match v.unmarked() {
            Value::Null | Value::Unknown => self.push("null"),
            Value::Bool(b) => self.push(if *b { "true" } else { "false" }),
            Value::Number(n) => self.push(&n.to_string()),
            Value::List(_) => self.push("[]"),
            Value::Map(_) => self.push("{}"),
            Value::String(s) => self.double_quoted(s, 2, true),
            Value::Sensitive(_) => {}
        }
    }

    fn string(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        if s.contains('\n') && block_allowed(s) {
            self.literal(s, indent);
        } else {
            self.double_quoted(s, indent, allow_breaks);
        }
    }

    fn literal(&mut self, s: &str, indent: usize) {
        let mut head = String::from("|");
        if s.starts_with(' ') || s.starts_with(is_break) {
            head.push('2');
        }
        let mut rev = s.chars().rev();
        match (rev.next(), rev.next()) {
            (Some(last), _) if !is_break(last) => head.push('-'),
            (Some(_), None) => head.push('+'),
            (Some(_), Some(prev)) if is_break(prev) => head.push('+'),
            _ => {}
        }
        self.push(&head);
        self.out.push('\n');
        self.column = 0;
        let mut at_break = true;
        for c in s.chars() {
            if is_break(c) {
                self.out.push(if c == '\n' { '\n' } else { c });
                if c != '\n' {
                    self.out.push('\n');
                }
                self.column = 0;
                at_break = true;
            } else {
                if at_break {
                    self.push(&" ".repeat(indent));
                    at_break = false;
                }
                self.out.push(c);
                self.column += 1;
            }
        }
    }

    /// libyaml's double-quoted writer: escapes, and folding at a space
    /// past column 80 when `allow_breaks`.
    fn double_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.push("\"");
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let esc = match c {
                    '\0' => "\\0".to_string(),
                    '\u{7}' => "\\a".into(),
                    '\u{8}' => "\\b".into(),
                    '\t' => "\\t".into(),
                    '\n' => "\\n".into(),
                    '\u{b}' => "\\v".into(),
                    '\u{c}' => "\\f".into(),
                    '\r' => "\\r".into(),
                    '\u{1b}' => "\\e".into(),
                    '"' => "\\\"".into(),
                    '\\' => "\\\\".into(),
                    '\u{85}' => "\\N".into(),
                    '\u{a0}' => "\\_".into(),
                    '\u{2028}' => "\\L".into(),
                    '\u{2029}' => "\\P".into(),
                    c if u32::from(c) <= 0xff => format!("\\x{:02X}", u32::from(c)),
                    c if u32::from(c) <= 0xffff => format!("\\u{:04X}", u32::from(c)),
                    c => format!("\\U{:08X}", u32::from(c)),
                };
                self.push(&esc);
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > 80 && i != 0 && i != chars.len() - 1 {
                    self.out.push('\n');
                    self.column = 0;
                    self.push(&" ".repeat(indent));
                    if chars.get(i + 1) == Some(&' ') {
                        self.push("\\");
                    }
                } else {
                    self.push(" ");
                }
                spaces = true;
            } else {
                self.out.push(c);
                self.column += 1;
                spaces = false;
            }
        }
        self.push("\"");
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's printable set (which leaves out characters beyond U+FFFF).
fn is_printable(c: char) -> bool {
    let u = u32::from(c);
    u == 0x0a || (0x20..=0x7e).contains(&u) || (0xa0..=0xd7ff).contains(&u) || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
}

/// Whether libyaml may write the string as a literal block: no trailing
/// space, no space before a line break, only printable characters.
fn block_allowed(s: &str) -> bool {
    let mut previous_space = false;
    for c in s.chars() {
        if !is_printable(c) || c == '\u{feff}' {
            return false;
        }
        if is_break(c) && previous_space {
            return false;
        }
        previous_space = c == ' ';
    }
    !s.ends_with(' ')
}

pub(super) fn yamldecode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let src = f.str(0)?;
    let mut d = Decoder { parser: Parser::new_from_str(&src), anchors: BTreeMap::new(), budget: MAX_ELEMENTS };
    let fail = |e: String| f.error(e);
    loop {
        match d.next().map_err(fail)? {
            Event::StreamStart => {}
            Event::DocumentStart => break,
            Event::StreamEnd => return Err(f.error("on line 1, column 1: missing start of document")),
            _ => return Err(f.error("malformed YAML stream")),
        }
    }
    let first = d.next().map_err(fail)?;
    let value = d.node(first, 0).map_err(fail)?;
    match d.next().map_err(fail)? {
        Event::DocumentEnd => {}
        _ => return Err(f.error("malformed YAML document")),
    }
    match d.next().map_err(fail)? {
        Event::StreamEnd => Ok(value),
        _ => Err(f.error("unexpected extra content after value")),
    }
}

struct Decoder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    anchors: BTreeMap<usize, Value>,
    /// Nodes still allowed, aliases counted at their expanded size.
    budget: usize,
}

impl Decoder<'_> {
    fn next(&mut self) -> Result<Event, String> {
        self.parser.next_token().map(|(e, _)| e).map_err(|e| e.to_string())
    }

    fn spend(&mut self, n: usize) -> Result<(), String> {
        self.budget = self.budget.checked_sub(n).ok_or_else(|| format!("the document expands to more than {MAX_ELEMENTS} nodes"))?;
        Ok(())
    }

    fn node(&mut self, event: Event, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the document is nested deeper than {MAX_DEPTH} levels"));
        }
        self.spend(1)?;
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag.map(|t| t.suffix);
                (resolve(&text, style, tag.as_deref())?, anchor)
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().ok_or("unknown anchor")?;
                self.spend(count(&v))?;
                return Ok(v);
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Event::SequenceEnd => break,
                        e => items.push(self.node(e, depth + 1)?),
                    }
                }
                (Value::List(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut map = crate::value::ValueMap::new();
                loop {
                    let key = match self.next()? {
                        Event::MappingEnd => break,
                        e => self.node(e, depth + 1)?,
                    };
                    let key = match key {
                        Value::Null => return Err("mapping key cannot be null".into()),
                        k => k.to_template_string().ok_or("mapping keys must be strings")?,
                    };
                    let e = self.next()?;
                    let value = self.node(e, depth + 1)?;
                    map.insert(key, value);
                }
                (Value::Map(map), anchor)
            }
            _ => return Err("malformed YAML document".into()),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }
}

fn count(v: &Value) -> usize {
    match v {
        Value::List(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(m) => 1 + m.values().map(count).sum::<usize>(),
        _ => 1,
    }
}

/// Resolves a scalar as go-cty-yaml does.
fn resolve(text: &str, style: TScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    let s = || Ok(Value::String(text.to_string()));
    match tag {
        Some("str") => return s(),
        Some("null") => return Ok(Value::Null),
        Some("bool") | Some("int") | Some("float") => {}
        Some("binary") | Some("timestamp") | None => {}
        Some(other) => return Err(format!("unsupported tag !!{other}")),
    }
    if style != TScalarStyle::Plain && tag.is_none() {
        return s();
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "-.inf" | ".nan" | ".NaN" | ".NAN" => {
            return Err(format!("{text} cannot be represented as a number"));
        }
        _ => {}
    }
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let radix = |prefix: &str, base: u32| body.strip_prefix(prefix).and_then(|d| i64::from_str_radix(d, base).ok());
    if let Some(n) = radix("0x", 16).or_else(|| radix("0o", 8)).or_else(|| radix("0b", 2)) {
        return Ok(Value::from(if negative { -n } else { n }));
    }
    if !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && body.bytes().any(|b| b.is_ascii_digit())
    {
        if let Ok(n) = Number::parse(body) {
            return Ok(Value::Number(if negative { n.neg().map_err(|e| e.to_string())? } else { n }));
        }
    }
    if is_date(text) {
        return Ok(Value::String(format!("{text}T00:00:00Z")));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
    }
    s()
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10 && b[4] == b'-' && b[7] == b'-' && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
