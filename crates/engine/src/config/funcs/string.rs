//! String functions: `chomp endswith indent join lower split startswith
//! strcontains strrev substr templatestring title trim trimprefix trimspace
//! trimsuffix upper` (`format`, `formatlist` are in `format.rs`; `regex`,
//! `regexall`, `replace` in `regex.rs`).
//!
//! Positions and lengths count grapheme clusters, as Terraform does, and
//! case mapping is Go's: one character to one character.

use super::{Args, MAX_WIDTH};
use crate::value::Value;
use unicode_segmentation::UnicodeSegmentation;

pub(super) use super::regex::{regex, regexall, replace};

pub(super) fn chomp(f: &Args) -> Result<Value, String> {
    f.unary_string(|s| s.trim_end_matches(['\n', '\r']).to_string())
}

pub(super) fn lower(f: &Args) -> Result<Value, String> {
    f.unary_string(go_lower)
}

pub(super) fn upper(f: &Args) -> Result<Value, String> {
    f.unary_string(go_upper)
}

/// Go's `strings.ToLower`: each character maps to one character.
pub(crate) fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\u{130}' {
                return 'i';
            }
            let mut m = c.to_lowercase();
            match (m.next(), m.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: each character maps to one character.
pub(crate) fn go_upper(s: &str) -> String {
    s.chars().map(upper_char).collect()
}

fn upper_char(c: char) -> char {
    let mut m = c.to_uppercase();
    match (m.next(), m.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Go's `strings.Title`: upper-cases a letter that follows a separator.
pub(super) fn title(f: &Args) -> Result<Value, String> {
    f.unary_string(|s| {
        let mut prev_separator = true;
        s.chars()
            .map(|c| {
                let out = if prev_separator { upper_char(c) } else { c };
                prev_separator = is_separator(c);
                out
            })
            .collect()
    })
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

pub(super) fn trimspace(f: &Args) -> Result<Value, String> {
    f.unary_string(|s| s.trim().to_string())
}

/// `trim(string, cutset)`: removes any of the cutset's characters from
/// both ends.
pub(super) fn trim(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let cutset: Vec<char> = f.str(1)?.chars().collect();
    Ok(Value::String(f.str(0)?.trim_matches(cutset.as_slice()).to_string()))
}

pub(super) fn trimprefix(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (s, prefix) = (f.str(0)?, f.str(1)?);
    Ok(Value::String(s.strip_prefix(prefix.as_ref()).unwrap_or(&s).to_string()))
}

pub(super) fn trimsuffix(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (s, suffix) = (f.str(0)?, f.str(1)?);
    Ok(Value::String(s.strip_suffix(suffix.as_ref()).unwrap_or(&s).to_string()))
}

pub(super) fn startswith(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    Ok(Value::Bool(f.str(0)?.starts_with(f.str(1)?.as_ref())))
}

pub(super) fn endswith(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    Ok(Value::Bool(f.str(0)?.ends_with(f.str(1)?.as_ref())))
}

pub(super) fn strcontains(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    Ok(Value::Bool(f.str(0)?.contains(f.str(1)?.as_ref())))
}

/// Reverses by grapheme cluster, so combining marks stay on their letter.
pub(super) fn strrev(f: &Args) -> Result<Value, String> {
    f.unary_string(|s| s.graphemes(true).rev().collect())
}

/// `indent(spaces, string)`: every line but the first gets the spaces.
pub(super) fn indent(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let spaces = f.integer(0)?;
    let s = f.str(1)?;
    if spaces < 0 {
        return Err(f.error("the number of spaces must not be negative"));
    }
    if spaces as usize > MAX_WIDTH {
        return Err(f.error(format!("the number of spaces must be at most {MAX_WIDTH}")));
    }
    let lines = s.matches('\n').count();
    f.bounded(s.len().saturating_add(lines.saturating_mul(spaces as usize)))?;
    Ok(Value::String(s.replace('\n', &format!("\n{}", " ".repeat(spaces as usize)))))
}

/// `join(separator, list, …)`: one or more lists of strings.
pub(super) fn join(f: &Args) -> Result<Value, String> {
    f.at_least(2).map_err(|_| f.error("at least one list is required"))?;
    let sep = f.str(0)?;
    let mut parts = Vec::new();
    for i in 1..f.len() {
        parts.extend(f.strings(i)?);
    }
    let total = parts.iter().map(String::len).sum::<usize>().saturating_add(sep.len().saturating_mul(parts.len()));
    f.bounded(total)?;
    Ok(Value::String(parts.join(&sep)))
}

/// `split(separator, string)`; an empty separator splits characters.
pub(super) fn split(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (sep, s) = (f.str(0)?, f.str(1)?);
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_ref()).map(Value::from).collect()
    };
    if parts.len() > super::MAX_ELEMENTS {
        return Err(f.error(format!("more than {} parts", super::MAX_ELEMENTS)));
    }
    Ok(Value::List(parts))
}

/// `substr(string, offset, length)` in grapheme clusters; a negative
/// offset counts from the end and a length of -1 takes the rest.
pub(super) fn substr(f: &Args) -> Result<Value, String> {
    f.arity(3, 3)?;
    let s = f.str(0)?;
    let (offset, length) = (f.integer(1)?, f.integer(2)?);
    let graphemes: Vec<&str> = s.graphemes(true).collect();
    let total = graphemes.len() as i64;
    let start = if offset < 0 { total + offset } else { offset };
    if start < 0 {
        return Err(f.error("offset must be within the string's length"));
    }
    if start > total {
        return Ok(Value::String(String::new()));
    }
    let take = match length {
        -1 => total - start,
        n if n < 0 => return Err(f.error("length must be -1 or a non-negative number")),
        n => n.min(total - start),
    };
    Ok(Value::String(graphemes[start as usize..(start + take) as usize].concat()))
}

/// `templatestring(template, vars)`: renders a string as a template.
pub(super) fn templatestring(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let source = f.str(0)?;
    let vars = match f.arg(1)?.unmarked() {
        Value::Map(m) => m.clone(),
        other => return Err(f.type_error(1, "an object of template variables", other)),
    };
    crate::config::eval::render_template(f.name, &source, &vars, f.ctx)
}
