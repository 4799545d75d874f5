//! Encoding functions: `base64decode base64encode base64gzip csvdecode
//! jsondecode jsonencode textdecodebase64 textencodebase64 urlencode`
//! (`yamldecode` and `yamlencode` are in `yaml.rs`).
//!
//! `jsonencode` writes exactly what Terraform writes: keys sorted, no
//! spaces, and Go's escapes (`<`, `>`, `&`, U+2028 and U+2029 as `\uXXXX`).

use super::{Args, MAX_ELEMENTS};
use crate::value::{Number, Value};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::io::Write as _;

pub(super) fn base64encode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::String(STANDARD.encode(f.str(0)?.as_bytes())))
}

pub(super) fn base64decode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let s = f.str(0)?;
    let bytes = STANDARD.decode(s.as_bytes()).map_err(|_| f.error(format!("failed to decode base64 data {s:?}")))?;
    String::from_utf8(bytes).map(Value::String).map_err(|_| f.error("the result of decoding the provided string is not valid UTF-8"))
}

/// Gzip (default level, no file name or time in the header, as Go writes
/// it) then base64. The compressed bytes may differ from Go's encoder;
/// both decompress to the same text.
pub(super) fn base64gzip(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let s = f.str(0)?;
    let mut gz = flate2::GzBuilder::new().operating_system(255).write(Vec::new(), flate2::Compression::default());
    gz.write_all(s.as_bytes()).map_err(|e| f.error(format!("failed to write gzip raw data: {e}")))?;
    let bytes = gz.finish().map_err(|e| f.error(format!("failed to finish gzip: {e}")))?;
    Ok(Value::String(STANDARD.encode(bytes)))
}

pub(super) fn textencodebase64(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (s, enc) = (f.str(0)?, f.str(1)?);
    let bytes = match encoding(&enc) {
        Some(Encoding::Utf8) => s.as_bytes().to_vec(),
        Some(Encoding::Utf16Le) => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        Some(Encoding::Utf16Be) => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        Some(Encoding::Latin1) => s
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c))
                    .map_err(|_| f.error(format!("the given string contains characters that cannot be represented in {enc}")))
            })
            .collect::<Result<_, _>>()?,
        Some(Encoding::Ascii) => s
            .chars()
            .map(|c| {
                if c.is_ascii() {
                    Ok(c as u8)
                } else {
                    Err(f.error(format!("the given string contains characters that cannot be represented in {enc}")))
                }
            })
            .collect::<Result<_, _>>()?,
        None => return Err(unsupported(f, &enc)),
    };
    Ok(Value::String(STANDARD.encode(bytes)))
}

pub(super) fn textdecodebase64(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (s, enc) = (f.str(0)?, f.str(1)?);
    let bytes = STANDARD.decode(s.as_bytes()).map_err(|_| f.error(format!("the given value is has an invalid base64 symbol")))?;
    let invalid = || f.error(format!("the given string contains symbols that are not defined for {enc}"));
    let text = match encoding(&enc) {
        Some(Encoding::Utf8) => String::from_utf8(bytes).map_err(|_| invalid())?,
        Some(e @ (Encoding::Utf16Le | Encoding::Utf16Be)) => {
            if bytes.len() % 2 != 0 {
                return Err(invalid());
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| if e == Encoding::Utf16Le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
                .collect();
            String::from_utf16(&units).map_err(|_| invalid())?
        }
        Some(Encoding::Latin1) => bytes.iter().map(|b| char::from(*b)).collect(),
        Some(Encoding::Ascii) => {
            bytes.iter().map(|b| if b.is_ascii() { Ok(char::from(*b)) } else { Err(invalid()) }).collect::<Result<_, _>>()?
        }
        None => return Err(unsupported(f, &enc)),
    };
    Ok(Value::String(text))
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Latin1,
    Ascii,
}

/// The IANA names and aliases of the encodings himaplan supports.
fn encoding(name: &str) -> Option<Encoding> {
    match name.to_ascii_uppercase().as_str() {
        "UTF-8" | "UTF8" => Some(Encoding::Utf8),
        "UTF-16LE" => Some(Encoding::Utf16Le),
        "UTF-16BE" => Some(Encoding::Utf16Be),
        "ISO-8859-1" | "ISO_8859-1" | "LATIN1" | "L1" | "ISO-IR-100" | "IBM819" | "CP819" | "CSISOLATIN1" => Some(Encoding::Latin1),
        "US-ASCII" | "ASCII" | "ANSI_X3.4-1968" | "CSASCII" => Some(Encoding::Ascii),
        _ => None,
    }
}

fn unsupported(f: &Args, enc: &str) -> String {
    f.error(format!(
        "{enc:?} is not a supported IANA encoding name or alias in this himaplan version (UTF-8, UTF-16LE, UTF-16BE, ISO-8859-1, US-ASCII)"
    ))
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space is `+`, the rest
/// is `%XX`.
pub(super) fn urlencode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let s = f.str(0)?;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    Ok(Value::String(out))
}

/// `csvdecode(string)`: the first line names the columns; every row
/// becomes an object of strings.
pub(super) fn csvdecode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let s = f.str(0)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(false).from_reader(s.as_bytes());
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        Some(Ok(r)) => r.iter().map(str::to_string).collect(),
        Some(Err(e)) => return Err(f.error(csv_error(&e))),
        None => return Err(f.error("missing header line")),
    };
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|e| f.error(csv_error(&e)))?;
        if rows.len() >= MAX_ELEMENTS {
            return Err(f.error(format!("more than {MAX_ELEMENTS} rows")));
        }
        let row: crate::value::ValueMap = header.iter().cloned().zip(record.iter().map(Value::from)).collect();
        rows.push(Value::Map(row));
    }
    Ok(Value::List(rows))
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            let line = pos.as_ref().map(|p| p.line()).unwrap_or(0);
            format!("record on line {line}: wrong number of fields (expected {expected_len}, got {len})")
        }
        _ => e.to_string(),
    }
}

pub(super) fn jsondecode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let s = f.str(0)?;
    let raw: Box<RawValue> = serde_json::from_str(&s).map_err(|e| f.error(format!("invalid JSON: {e}")))?;
    decode_exact(&raw).map_err(|e| f.error(format!("invalid JSON: {e}")))
}

/// A JSON document with its numbers read from their text at full
/// precision (`serde_json::Value` keeps only 64-bit integers and doubles).
/// The document was checked when `raw` was parsed; each level is parsed
/// again from its own text, and serde_json bounds the nesting.
fn decode_exact(raw: &RawValue) -> Result<Value, serde_json::Error> {
    let text = raw.get().trim();
    Ok(match text.as_bytes().first() {
        Some(b'{') => {
            let map: BTreeMap<String, Box<RawValue>> = serde_json::from_str(text)?;
            Value::Map(map.into_iter().map(|(k, v)| decode_exact(&v).map(|v| (k, v))).collect::<Result<_, _>>()?)
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
            Value::List(items.iter().map(|v| decode_exact(v)).collect::<Result<_, _>>()?)
        }
        Some(b'-' | b'0'..=b'9') => match Number::parse(text) {
            Ok(n) => Value::Number(n),
            Err(e) => return Err(serde::de::Error::custom(format!("{text}: {e}"))),
        },
        _ => Value::from_json(&serde_json::from_str(text)?),
    })
}

pub(super) fn jsonencode(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let mut out = String::new();
    encode_json(f.arg(0)?, &mut out);
    f.bounded(out.len())?;
    Ok(Value::String(out))
}

/// Writes a value as Terraform's JSON.
pub(crate) fn encode_json(v: &Value, out: &mut String) {
    match v.unmarked() {
        Value::Null | Value::Unknown => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => json_string(s, out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode_json(item, out);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                encode_json(v, out);
            }
            out.push('}');
        }
        Value::Sensitive(_) => {}
    }
}

/// A JSON string with Go's `encoding/json` escapes.
pub(crate) fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
