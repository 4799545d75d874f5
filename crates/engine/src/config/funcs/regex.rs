//! Regular-expression functions: `regex`, `regexall` and `replace` (whose
//! substring is a pattern when written between slashes).
//!
//! Patterns are RE2 syntax, as Go's `regexp` reads them. The `regex` crate
//! implements the same syntax; where the two differ by default (`\d`, `\w`,
//! `\s`, `\b` are ASCII-only in Go, Unicode-aware in Rust) the pattern is
//! rewritten to Go's meaning. Pattern size and compiled size are bounded.

use super::{Args, MAX_ELEMENTS};
use crate::value::Value;
use regex::{Regex, RegexBuilder};

/// Upper bound on the text of a pattern.
const MAX_PATTERN_BYTES: usize = 64 * 1024;

/// Upper bound on a compiled pattern's memory.
const MAX_COMPILED_BYTES: usize = 8 * 1024 * 1024;

/// Compiles an RE2 pattern with Go's meaning of the Perl classes.
pub(crate) fn compile(f: &Args, pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(f.error(format!("the pattern is longer than {MAX_PATTERN_BYTES} bytes")));
    }
    RegexBuilder::new(&go_classes(pattern))
        .size_limit(MAX_COMPILED_BYTES)
        .dfa_size_limit(MAX_COMPILED_BYTES)
        .build()
        .map_err(|e| f.error(format!("invalid regexp pattern: {}", first_line(&e.to_string()))))
}

fn first_line(message: &str) -> String {
    // The crate's messages draw the pattern with a caret over several lines;
    // the last line says what is wrong.
    message.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(message).trim().trim_start_matches("error: ").to_string()
}

/// Rewrites `\d \D \w \W \s \S \b \B` to their ASCII meaning, inside and
/// outside character classes.
fn go_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let (outside, inside) = match next {
                    'd' => ("[0-9]", "0-9"),
                    'D' => ("[^0-9]", ""),
                    'w' => ("[0-9A-Za-z_]", "0-9A-Za-z_"),
                    'W' => ("[^0-9A-Za-z_]", ""),
                    's' => ("[\\t\\n\\f\\r ]", "\\t\\n\\f\\r "),
                    'S' => ("[^\\t\\n\\f\\r ]", ""),
                    'b' if !in_class => ("(?-u:\\b)", ""),
                    'B' if !in_class => ("(?-u:\\B)", ""),
                    _ => ("", ""),
                };
                let replacement = if in_class { inside } else { outside };
                if replacement.is_empty() {
                    out.push('\\');
                    out.push(next);
                } else {
                    out.push_str(replacement);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // A leading `^` and a leading `]` belong to the class.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:] inside a class.
                out.push('[');
                for d in chars.by_ref() {
                    out.push(d);
                    if d == ']' {
                        break;
                    }
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            other => out.push(other),
        }
    }
    out
}

/// The value of one match: the whole match without groups, a list of the
/// groups when unnamed, an object of them when named.
fn captures_value(f: &Args, re: &Regex, caps: &regex::Captures) -> Result<Value, String> {
    let names: Vec<Option<&str>> = re.capture_names().skip(1).collect();
    if names.is_empty() {
        return Ok(Value::String(caps.get(0).map(|m| m.as_str()).unwrap_or_default().to_string()));
    }
    let text = |i: usize| caps.get(i).map(|m| Value::String(m.as_str().to_string())).unwrap_or(Value::Null);
    if names.iter().all(Option::is_some) {
        let map: crate::value::ValueMap = names.iter().enumerate().filter_map(|(i, n)| n.map(|n| (n.to_string(), text(i + 1)))).collect();
        return Ok(Value::Map(map));
    }
    if names.iter().any(Option::is_some) {
        return Err(f.error("invalid regexp pattern: cannot mix both named and unnamed capture groups"));
    }
    Ok(Value::List((1..=names.len()).map(text).collect()))
}

pub(crate) fn regex(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let re = compile(f, &f.str(0)?)?;
    let s = f.str(1)?;
    match re.captures(&s) {
        Some(caps) => captures_value(f, &re, &caps),
        None => Err(f.error("pattern did not match any part of the given string")),
    }
}

pub(crate) fn regexall(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let re = compile(f, &f.str(0)?)?;
    let s = f.str(1)?;
    let mut out = Vec::new();
    for caps in re.captures_iter(&s) {
        if out.len() >= MAX_ELEMENTS {
            return Err(f.error(format!("more than {MAX_ELEMENTS} matches")));
        }
        out.push(captures_value(f, &re, &caps)?);
    }
    Ok(Value::List(out))
}

/// `replace(string, substring, replacement)`; a `/pattern/` substring is a
/// regular expression and the replacement may name groups (`$1`, `${n}`).
pub(crate) fn replace(f: &Args) -> Result<Value, String> {
    f.arity(3, 3)?;
    let (s, search, with) = (f.str(0)?, f.str(1)?, f.str(2)?);
    let result = match search.strip_prefix('/').and_then(|r| r.strip_suffix('/')) {
        Some(pattern) if search.len() > 1 => {
            let re = compile(f, pattern)?;
            let mut out = String::new();
            let mut last = 0;
            for caps in re.captures_iter(&s) {
                let Some(m) = caps.get(0) else { continue };
                out.push_str(&s[last..m.start()]);
                caps.expand(&with, &mut out);
                f.bounded(out.len())?;
                last = m.end();
            }
            out.push_str(&s[last..]);
            out
        }
        _ if search.is_empty() => {
            // Go's strings.Replace with an empty old string inserts the
            // replacement around every character.
            let count = s.chars().count() + 1;
            f.bounded(s.len().saturating_add(count.saturating_mul(with.len())))?;
            let mut out = String::with_capacity(s.len() + count * with.len());
            out.push_str(&with);
            for c in s.chars() {
                out.push(c);
                out.push_str(&with);
            }
            out
        }
        _ => {
            let count = s.matches(search.as_ref()).count();
            f.bounded(s.len().saturating_add(count.saturating_mul(with.len())))?;
            s.replace(search.as_ref(), &with)
        }
    };
    Ok(Value::String(result))
}
