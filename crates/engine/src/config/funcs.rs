//! The built-in functions of the configuration language, with Terraform's
//! semantics, over [`Value`]s that may carry the unknown and sensitive marks.
//!
//! Marks are handled once, in [`call`]: an argument that is or contains an
//! unknown value makes the result unknown (except where a function only
//! combines or counts values), and a sensitive argument makes the whole
//! result sensitive. The functions themselves see plain values. Nothing here
//! does I/O, and no input can make a function panic: bad arguments and
//! oversized results are errors with a user-facing message.

use crate::value::{Value, format_number};
use std::collections::BTreeMap;

/// Upper bound on the number of elements `range` may produce.
const MAX_RANGE_ELEMENTS: usize = 1_000_000;

/// Upper bound on a `format` width or precision, so a verb such as
/// `%999999999d` cannot allocate without limit.
const MAX_FORMAT_WIDTH: usize = 10_000;

const FUNCTIONS: &[&str] = &[
    "abs",
    "ceil",
    "coalesce",
    "concat",
    "contains",
    "distinct",
    "element",
    "endswith",
    "flatten",
    "floor",
    "format",
    "formatlist",
    "join",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "max",
    "merge",
    "min",
    "range",
    "replace",
    "reverse",
    "sort",
    "split",
    "startswith",
    "substr",
    "sum",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trimspace",
    "upper",
    "values",
    "zipmap",
];

/// True when `name` is a built-in function.
pub fn is_known_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Calls the built-in function `name`.
///
/// The error is a message for the user, naming the function, e.g.
/// `join: second argument must be a list of strings, got number`.
///
/// Guarantees: a result derived from a sensitive argument is sensitive
/// (wrapped once, at the top); a result derived from an unknown argument is
/// [`Value::Unknown`] (sensitive-wrapped when an argument was sensitive),
/// except that `length` counts a list or map whose elements are unknown and
/// `concat`, `merge` and `tolist` keep unknown elements in place.
pub fn call(name: &str, args: Vec<Value>) -> Result<Value, String> {
    if !is_known_function(name) {
        return Err(format!("unknown function \"{name}\""));
    }
    let sensitive = args.iter().any(Value::has_sensitive);
    let args: Vec<Value> = if sensitive { args.iter().map(Value::deep_unmarked).collect() } else { args };
    let result = if propagates_unknown(name, &args) { Value::Unknown } else { dispatch(name, &args)? };
    Ok(if sensitive { result.into_sensitive() } else { result })
}

/// Whether the call's result is unknown without evaluating it.
fn propagates_unknown(name: &str, args: &[Value]) -> bool {
    match name {
        // These only count or combine values, so unknown elements are fine;
        // only an argument that is unknown as a whole makes the result so.
        "length" | "concat" | "merge" | "tolist" => args.iter().any(|a| matches!(a, Value::Unknown)),
        _ => args.iter().any(Value::has_unknown),
    }
}

fn dispatch(name: &str, args: &[Value]) -> Result<Value, String> {
    let f = Args { name, args };
    match name {
        "length" => length(&f),
        "concat" => concat(&f),
        "merge" => merge(&f),
        "lookup" => lookup(&f),
        "keys" => {
            f.arity(1, 1)?;
            Ok(Value::List(f.map(0)?.keys().map(|k| Value::String(k.clone())).collect()))
        }
        "values" => {
            f.arity(1, 1)?;
            Ok(Value::List(f.map(0)?.values().cloned().collect()))
        }
        "range" => range(&f),
        "min" | "max" => min_max(&f),
        "format" => {
            f.at_least(1)?;
            Ok(Value::String(format_values(name, &f.string(0)?, args.get(1..).unwrap_or(&[]))?))
        }
        "formatlist" => formatlist(&f),
        "join" => join(&f),
        "split" => split(&f),
        "lower" => f.unary_string(|s| s.to_lowercase()),
        "upper" => f.unary_string(|s| s.to_uppercase()),
        "trimspace" => f.unary_string(|s| s.trim().to_string()),
        "tostring" => tostring(&f),
        "tonumber" => tonumber(&f),
        "coalesce" => args
            .iter()
            .find(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
            .ok_or_else(|| "coalesce: no non-null, non-empty-string arguments".to_string()),
        "element" => element(&f),
        "jsonencode" => {
            f.arity(1, 1)?;
            let json = args.first().map(Value::to_json).unwrap_or_default();
            Ok(Value::String(json.to_string()))
        }
        "contains" => {
            f.arity(2, 2)?;
            Ok(Value::Bool(f.list(0)?.contains(f.arg(1)?)))
        }
        "distinct" => {
            f.arity(1, 1)?;
            Ok(Value::List(distinct(f.list(0)?)))
        }
        "flatten" => {
            f.arity(1, 1)?;
            let mut out = Vec::new();
            flatten_into(f.list(0)?, &mut out);
            Ok(Value::List(out))
        }
        "toset" => toset(&f),
        "tolist" => convert(&f, "list", |v| matches!(v, Value::List(_))),
        "tomap" => convert(&f, "map", |v| matches!(v, Value::Map(_))),
        "abs" => f.unary_number(f64::abs),
        "ceil" => f.unary_number(f64::ceil),
        "floor" => f.unary_number(f64::floor),
        "replace" => replace(&f),
        "substr" => substr(&f),
        "startswith" => {
            f.arity(2, 2)?;
            Ok(Value::Bool(f.string(0)?.starts_with(f.string(1)?.as_str())))
        }
        "endswith" => {
            f.arity(2, 2)?;
            Ok(Value::Bool(f.string(0)?.ends_with(f.string(1)?.as_str())))
        }
        "zipmap" => zipmap(&f),
        "sort" => sort(&f),
        "reverse" => {
            f.arity(1, 1)?;
            Ok(Value::List(f.list(0)?.iter().rev().cloned().collect()))
        }
        "sum" => sum(&f),
        _ => Err(format!("unknown function \"{name}\"")),
    }
}

/// A function's name and arguments, with typed accessors whose errors name
/// the function and the argument's position.
struct Args<'a> {
    name: &'a str,
    args: &'a [Value],
}

fn ordinal(i: usize) -> String {
    match i {
        0 => "first".into(),
        1 => "second".into(),
        2 => "third".into(),
        3 => "fourth".into(),
        n => format!("argument {}", n + 1),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl Args<'_> {
    fn arity(&self, min: usize, max: usize) -> Result<(), String> {
        let n = self.args.len();
        if (min..=max).contains(&n) {
            return Ok(());
        }
        let expected = if min == max { format!("{min}") } else { format!("{min} to {max}") };
        Err(format!("{}: expected {expected} argument{}, got {n}", self.name, plural(max)))
    }

    fn at_least(&self, min: usize) -> Result<(), String> {
        let n = self.args.len();
        if n >= min {
            return Ok(());
        }
        Err(format!("{}: expected at least {min} argument{}, got {n}", self.name, plural(min)))
    }

    fn arg(&self, i: usize) -> Result<&Value, String> {
        self.args.get(i).ok_or_else(|| format!("{}: missing {} argument", self.name, ordinal(i)))
    }

    fn type_error(&self, i: usize, expected: &str, got: &Value) -> String {
        format!("{}: {} argument must be {expected}, got {}", self.name, ordinal(i), got.type_name())
    }

    /// A string argument; numbers and bools convert as Terraform does.
    fn string(&self, i: usize) -> Result<String, String> {
        let v = self.arg(i)?;
        v.to_template_string().ok_or_else(|| self.type_error(i, "a string", v))
    }

    /// A number argument; strings holding a number convert.
    fn number(&self, i: usize) -> Result<f64, String> {
        let v = self.arg(i)?;
        to_number(v).ok_or_else(|| self.type_error(i, "a number", v))
    }

    fn integer(&self, i: usize) -> Result<i64, String> {
        let n = self.number(i)?;
        if n.fract() != 0.0 || n.abs() >= 9.0e15 {
            return Err(format!("{}: {} argument must be a whole number, got {}", self.name, ordinal(i), format_number(n)));
        }
        Ok(n as i64)
    }

    fn list(&self, i: usize) -> Result<&[Value], String> {
        let v = self.arg(i)?;
        v.as_list().ok_or_else(|| self.type_error(i, "a list", v))
    }

    fn map(&self, i: usize) -> Result<&BTreeMap<String, Value>, String> {
        let v = self.arg(i)?;
        v.as_map().ok_or_else(|| self.type_error(i, "a map", v))
    }

    fn strings(&self, i: usize) -> Result<Vec<String>, String> {
        let v = self.arg(i)?;
        let items = v.as_list().ok_or_else(|| self.type_error(i, "a list of strings", v))?;
        items
            .iter()
            .map(|item| {
                item.to_template_string().ok_or_else(|| {
                    format!("{}: {} argument must be a list of strings, got an element of type {}", self.name, ordinal(i), item.type_name())
                })
            })
            .collect()
    }

    fn unary_string(&self, f: impl Fn(&str) -> String) -> Result<Value, String> {
        self.arity(1, 1)?;
        Ok(Value::String(f(&self.string(0)?)))
    }

    fn unary_number(&self, f: impl Fn(f64) -> f64) -> Result<Value, String> {
        self.arity(1, 1)?;
        Ok(Value::Number(f(self.number(0)?)))
    }
}

fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// Parses a decimal number the way HCL writes one; `inf`, `NaN` and
/// surrounding whitespace are rejected.
fn parse_number(s: &str) -> Option<f64> {
    let looks_numeric = s.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    let n: f64 = if looks_numeric {
        s.parse().ok()?
    } else {
        return None;
    };
    n.is_finite().then_some(n)
}

fn length(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let v = f.arg(0)?;
    let n = match v {
        Value::String(s) => s.chars().count(),
        Value::List(items) => items.len(),
        Value::Map(map) => map.len(),
        other => return Err(f.type_error(0, "a string, list or map", other)),
    };
    Ok(Value::Number(n as f64))
}

fn concat(f: &Args) -> Result<Value, String> {
    let mut out = Vec::new();
    for i in 0..f.args.len() {
        out.extend(f.list(i)?.iter().cloned());
    }
    Ok(Value::List(out))
}

fn merge(f: &Args) -> Result<Value, String> {
    let mut out = BTreeMap::new();
    for (i, v) in f.args.iter().enumerate() {
        if v.is_null() {
            continue;
        }
        out.extend(f.map(i)?.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Ok(Value::Map(out))
}

fn lookup(f: &Args) -> Result<Value, String> {
    f.arity(2, 3)?;
    let map = f.map(0)?;
    let key = f.string(1)?;
    match (map.get(&key), f.args.get(2)) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(format!("lookup: key \"{key}\" not found in the map and no default given")),
    }
}

/// `range(limit)`, `range(start, limit)` or `range(start, limit, step)`;
/// the limit is exclusive and the default step runs towards it.
fn range(f: &Args) -> Result<Value, String> {
    f.arity(1, 3)?;
    let (start, limit) = match f.args.len() {
        1 => (0.0, f.number(0)?),
        _ => (f.number(0)?, f.number(1)?),
    };
    let step = match f.args.get(2) {
        Some(_) => f.number(2)?,
        None if limit < start => -1.0,
        None => 1.0,
    };
    if step == 0.0 {
        return Err("range: step must not be zero".into());
    }
    if start < limit && step < 0.0 {
        return Err("range: step must be positive when start is less than limit".into());
    }
    if start > limit && step > 0.0 {
        return Err("range: step must be negative when start is greater than limit".into());
    }
    let count = ((limit - start) / step).ceil().max(0.0);
    if !count.is_finite() || count > MAX_RANGE_ELEMENTS as f64 {
        return Err(format!("range: more than {MAX_RANGE_ELEMENTS} elements requested"));
    }
    Ok(Value::List((0..count as usize).map(|i| Value::Number(start + i as f64 * step)).collect()))
}

fn min_max(f: &Args) -> Result<Value, String> {
    f.at_least(1)?;
    let mut best = f.number(0)?;
    for i in 1..f.args.len() {
        let n = f.number(i)?;
        best = if f.name == "min" { best.min(n) } else { best.max(n) };
    }
    Ok(Value::Number(best))
}

fn join(f: &Args) -> Result<Value, String> {
    f.at_least(2)?;
    let sep = f.string(0)?;
    let mut parts = Vec::new();
    for i in 1..f.args.len() {
        parts.extend(f.strings(i)?);
    }
    Ok(Value::String(parts.join(&sep)))
}

fn split(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let sep = f.string(0)?;
    let s = f.string(1)?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_str()).map(Value::from).collect()
    };
    Ok(Value::List(parts))
}

fn tostring(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    match f.arg(0)? {
        Value::Null => Ok(Value::Null),
        v => v.to_template_string().map(Value::String).ok_or_else(|| format!("tostring: cannot convert {} to string", v.type_name())),
    }
}

fn tonumber(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    match f.arg(0)? {
        Value::Null => Ok(Value::Null),
        Value::String(s) => parse_number(s).map(Value::Number).ok_or_else(|| format!("tonumber: cannot convert \"{s}\" to number")),
        v => to_number(v).map(Value::Number).ok_or_else(|| format!("tonumber: cannot convert {} to number", v.type_name())),
    }
}

fn element(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let list = f.list(0)?;
    let index = f.integer(1)?;
    if list.is_empty() {
        return Err("element: cannot use element function with an empty list".into());
    }
    if index < 0 {
        return Err("element: cannot use element function with a negative index".into());
    }
    let len = list.len() as i64;
    list.get((index % len) as usize).cloned().ok_or_else(|| "element: index out of range".to_string())
}

fn distinct(items: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

fn flatten_into(items: &[Value], out: &mut Vec<Value>) {
    for item in items {
        match item {
            Value::List(inner) => flatten_into(inner, out),
            other => out.push(other.clone()),
        }
    }
}

/// A set is represented as a sorted list without duplicates: numbers in
/// numeric order when all elements are numbers, otherwise by their text.
fn toset(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    if f.arg(0)?.is_null() {
        return Ok(Value::Null);
    }
    let mut items = distinct(f.list(0)?);
    if items.iter().all(|v| matches!(v, Value::Number(_))) {
        items.sort_by(|a, b| a.as_f64().partial_cmp(&b.as_f64()).unwrap_or(std::cmp::Ordering::Equal));
    } else {
        items.sort_by_cached_key(|v| v.to_template_string().unwrap_or_else(|| v.to_string()));
    }
    Ok(Value::List(items))
}

fn convert(f: &Args, kind: &str, is_kind: fn(&Value) -> bool) -> Result<Value, String> {
    f.arity(1, 1)?;
    let v = f.arg(0)?;
    if v.is_null() || is_kind(v) { Ok(v.clone()) } else { Err(format!("{}: cannot convert {} to {kind}", f.name, v.type_name())) }
}

fn replace(f: &Args) -> Result<Value, String> {
    f.arity(3, 3)?;
    let (s, search, with) = (f.string(0)?, f.string(1)?, f.string(2)?);
    if search.len() > 1 && search.starts_with('/') && search.ends_with('/') {
        return Err("replace: regular expression patterns are not supported".into());
    }
    if search.is_empty() {
        return Ok(Value::String(s));
    }
    Ok(Value::String(s.replace(&search, &with)))
}

/// `substr(string, offset, length)` in characters; a negative offset counts
/// from the end and a length of -1 takes the rest.
fn substr(f: &Args) -> Result<Value, String> {
    f.arity(3, 3)?;
    let s = f.string(0)?;
    let (offset, length) = (f.integer(1)?, f.integer(2)?);
    let total = s.chars().count() as i64;
    let start = if offset < 0 { (total + offset).max(0) } else { offset };
    if start > total {
        return Ok(Value::String(String::new()));
    }
    let take = match length {
        -1 => total - start,
        n if n < 0 => return Err("substr: length must be -1 or a non-negative number".into()),
        n => n.min(total - start),
    };
    Ok(Value::String(s.chars().skip(start as usize).take(take as usize).collect()))
}

fn zipmap(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let keys = f.strings(0)?;
    let values = f.list(1)?;
    if keys.len() != values.len() {
        return Err(format!("zipmap: {} keys but {} values; the lists must have the same length", keys.len(), values.len()));
    }
    Ok(Value::Map(keys.into_iter().zip(values.iter().cloned()).collect()))
}

/// Sorts strings lexicographically, as Terraform does (numbers are sorted
/// by their text).
fn sort(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let mut items = f.strings(0)?;
    items.sort();
    Ok(Value::List(items.into_iter().map(Value::String).collect()))
}

fn sum(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let items = f.list(0)?;
    if items.is_empty() {
        return Err("sum: cannot sum an empty list".into());
    }
    let mut total = 0.0;
    for item in items {
        total += to_number(item).ok_or_else(|| format!("sum: elements must be numbers, got {}", item.type_name()))?;
    }
    Ok(Value::Number(total))
}

/// `formatlist(format, args...)`: list arguments (all of one length) are
/// iterated together; other arguments repeat on every element.
fn formatlist(f: &Args) -> Result<Value, String> {
    f.at_least(1)?;
    let spec = f.string(0)?;
    let rest = f.args.get(1..).unwrap_or(&[]);
    let mut len: Option<usize> = None;
    for v in rest {
        if let Value::List(items) = v {
            match len {
                Some(n) if n != items.len() => {
                    return Err(format!("formatlist: list arguments must have the same length, got {n} and {}", items.len()));
                }
                _ => len = Some(items.len()),
            }
        }
    }
    let mut out = Vec::new();
    for i in 0..len.unwrap_or(1) {
        let row: Vec<Value> = rest
            .iter()
            .map(|v| match v {
                Value::List(items) => items.get(i).cloned().unwrap_or_default(),
                other => other.clone(),
            })
            .collect();
        out.push(Value::String(format_values("formatlist", &spec, &row)?));
    }
    Ok(Value::List(out))
}

/// The `%` verbs of `format`, as in Terraform (Go's fmt): flags `-+ 0#`,
/// width, `.precision`, an explicit `[n]` argument index, and the verbs
/// `v t s q d b o x X e E f F g G` plus `%%`.
fn format_values(fname: &str, spec: &str, args: &[Value]) -> Result<String, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut next = 0usize;
    let mut explicit_index = false;
    let mut i = 0usize;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let mut verb = Verb::default();
        while let Some(&flag) = chars.get(i).filter(|c| "-+ 0#".contains(**c)) {
            match flag {
                '-' => verb.left = true,
                '+' => verb.plus = true,
                ' ' => verb.space = true,
                '0' => verb.zero = true,
                _ => verb.sharp = true,
            }
            i += 1;
        }
        if chars.get(i) == Some(&'[') {
            let (n, after) = read_digits(fname, &chars, i + 1)?;
            if chars.get(after) != Some(&']') || n == 0 {
                return Err(format!("{fname}: invalid argument index in format string"));
            }
            next = n - 1;
            explicit_index = true;
            i = after + 1;
        }
        let (width, after) = read_digits(fname, &chars, i)?;
        verb.width = (after > i).then_some(width);
        i = after;
        if chars.get(i) == Some(&'.') {
            let (precision, after) = read_digits(fname, &chars, i + 1)?;
            verb.precision = Some(precision);
            i = after;
        }
        let Some(&letter) = chars.get(i) else {
            return Err(format!("{fname}: format string ends in the middle of a verb"));
        };
        i += 1;
        let Some(arg) = args.get(next) else {
            return Err(format!("{fname}: not enough arguments for %{letter} (verb #{})", next + 1));
        };
        next += 1;
        out.push_str(&verb.render(fname, letter, arg)?);
    }
    if !explicit_index && next < args.len() {
        return Err(format!("{fname}: too many arguments; no verb for argument {}", next + 1));
    }
    Ok(out)
}

fn read_digits(fname: &str, chars: &[char], mut i: usize) -> Result<(usize, usize), String> {
    let mut n = 0usize;
    while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
        n = n.saturating_mul(10).saturating_add(d as usize);
        i += 1;
    }
    if n > MAX_FORMAT_WIDTH {
        return Err(format!("{fname}: width or precision {n} is larger than {MAX_FORMAT_WIDTH}"));
    }
    Ok((n, i))
}

#[derive(Default)]
struct Verb {
    left: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

impl Verb {
    fn render(&self, fname: &str, letter: char, arg: &Value) -> Result<String, String> {
        let unsupported = || format!("{fname}: unsupported value for \"%{letter}\": {}", arg.type_name());
        if arg.is_null() {
            return Err(format!("{fname}: null value cannot be formatted with \"%{letter}\""));
        }
        let number = || to_number(arg).ok_or_else(unsupported);
        let integer = || {
            let n = number()?;
            if n.fract() != 0.0 || n.abs() >= 9.0e15 {
                return Err(format!("{fname}: \"%{letter}\" needs a whole number, got {}", format_number(n)));
            }
            Ok(n as i64)
        };
        let text = match letter {
            'v' if self.sharp => arg.to_json().to_string(),
            'v' => arg.to_template_string().unwrap_or_else(|| arg.to_json().to_string()),
            't' => arg.as_bool().ok_or_else(unsupported)?.to_string(),
            's' => {
                let s = arg.to_template_string().ok_or_else(unsupported)?;
                match self.precision {
                    Some(p) => s.chars().take(p).collect(),
                    None => s,
                }
            }
            'q' => serde_json::Value::String(arg.to_template_string().ok_or_else(unsupported)?).to_string(),
            'd' | 'b' | 'o' | 'x' | 'X' => {
                let n = integer()?;
                let abs = n.unsigned_abs();
                let digits = match letter {
                    'b' => format!("{abs:b}"),
                    'o' => format!("{abs:o}"),
                    'x' => format!("{abs:x}"),
                    'X' => format!("{abs:X}"),
                    _ => abs.to_string(),
                };
                self.signed(n as f64, digits)
            }
            'f' | 'F' => {
                let n = number()?;
                self.signed(n, format!("{:.*}", self.precision.unwrap_or(6), n.abs()))
            }
            'e' | 'E' => {
                let n = number()?;
                let s = exponent(n.abs(), self.precision.unwrap_or(6));
                self.signed(n, if letter == 'E' { s.to_uppercase() } else { s })
            }
            'g' | 'G' => {
                let n = number()?;
                self.signed(n, format_number(n.abs()))
            }
            _ => return Err(format!("{fname}: unsupported format verb \"%{letter}\"")),
        };
        Ok(self.pad(text, matches!(letter, 'd' | 'b' | 'o' | 'x' | 'X' | 'f' | 'F' | 'e' | 'E' | 'g' | 'G')))
    }

    /// Prefixes the digits of a number with its sign, as the flags ask.
    fn signed(&self, n: f64, digits: String) -> String {
        let sign = if n < 0.0 {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        };
        format!("{sign}{digits}")
    }

    fn pad(&self, text: String, numeric: bool) -> String {
        let len = text.chars().count();
        let Some(width) = self.width.filter(|w| *w > len) else {
            return text;
        };
        let fill = width - len;
        if self.left {
            format!("{text}{}", " ".repeat(fill))
        } else if self.zero && numeric {
            // Zeros go between the sign and the digits.
            let sign_len = text.chars().take_while(|c| matches!(c, '-' | '+' | ' ')).count();
            let (sign, digits) = text.split_at(sign_len);
            format!("{sign}{}{digits}", "0".repeat(fill))
        } else {
            format!("{}{text}", " ".repeat(fill))
        }
    }
}

/// Go's `%e`: one digit, fraction of `precision` digits, exponent with a
/// sign and at least two digits (`1.500000e+03`).
fn exponent(n: f64, precision: usize) -> String {
    let rust = format!("{:.*e}", precision, n);
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => rust,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    fn n(number: f64) -> Value {
        Value::Number(number)
    }

    fn list(items: &[Value]) -> Value {
        Value::List(items.to_vec())
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn ok(name: &str, args: &[Value]) -> Value {
        match call(name, args.to_vec()) {
            Ok(v) => v,
            Err(err) => panic!("{name} failed: {err}"),
        }
    }

    fn err(name: &str, args: &[Value]) -> String {
        match call(name, args.to_vec()) {
            Ok(v) => panic!("{name} unexpectedly returned {v}"),
            Err(err) => err,
        }
    }

    fn secret(v: Value) -> Value {
        v.into_sensitive()
    }

    #[test]
    fn unknown_function_is_named_in_the_error() {
        // A typo in a function name says which name was not found.
        assert_eq!(err("foo", &[]), "unknown function \"foo\"");
        assert!(!is_known_function("foo"));
        assert!(FUNCTIONS.iter().all(|f| is_known_function(f)));
    }

    #[test]
    fn length_counts_chars_elements_and_keys() {
        // Strings count characters, not bytes; collections count entries.
        assert_eq!(ok("length", &[s("héllo")]), n(5.0));
        assert_eq!(ok("length", &[list(&[n(1.0), n(2.0)])]), n(2.0));
        assert_eq!(ok("length", &[map(&[("a", n(1.0))])]), n(1.0));
        assert_eq!(err("length", &[n(3.0)]), "length: first argument must be a string, list or map, got number");
        assert_eq!(err("length", &[]), "length: expected 1 argument, got 0");
    }

    #[test]
    fn length_of_unknowns() {
        // Unknown elements still have a known count; an unknown list does not.
        assert_eq!(ok("length", &[list(&[Value::Unknown, Value::Unknown])]), n(2.0));
        assert_eq!(ok("length", &[Value::Unknown]), Value::Unknown);
    }

    #[test]
    fn concat_and_merge_combine_and_keep_unknown_elements() {
        // Combining functions pass unknown elements through untouched.
        assert_eq!(ok("concat", &[list(&[n(1.0)]), list(&[Value::Unknown, n(3.0)])]), list(&[n(1.0), Value::Unknown, n(3.0)]));
        assert_eq!(ok("concat", &[list(&[]), Value::Unknown]), Value::Unknown);
        assert_eq!(err("concat", &[list(&[]), s("x")]), "concat: second argument must be a list, got string");
        assert_eq!(
            ok("merge", &[map(&[("a", n(1.0)), ("b", n(1.0))]), Value::Null, map(&[("b", Value::Unknown)])]),
            map(&[("a", n(1.0)), ("b", Value::Unknown)])
        );
        assert_eq!(err("merge", &[list(&[])]), "merge: first argument must be a map, got list");
    }

    #[test]
    fn lookup_uses_default_only_when_key_missing() {
        // A missing key without a default is an error, not null.
        let m = map(&[("a", s("x"))]);
        assert_eq!(ok("lookup", &[m.clone(), s("a")]), s("x"));
        assert_eq!(ok("lookup", &[m.clone(), s("b"), s("d")]), s("d"));
        assert_eq!(err("lookup", &[m, s("b")]), "lookup: key \"b\" not found in the map and no default given");
    }

    #[test]
    fn keys_and_values_follow_key_order() {
        // Keys are sorted and values come in the same order.
        let m = map(&[("b", n(2.0)), ("a", n(1.0))]);
        assert_eq!(ok("keys", std::slice::from_ref(&m)), list(&[s("a"), s("b")]));
        assert_eq!(ok("values", &[m]), list(&[n(1.0), n(2.0)]));
        assert_eq!(err("keys", &[list(&[])]), "keys: first argument must be a map, got list");
    }

    #[test]
    fn range_follows_terraform() {
        // One, two and three argument forms, including counting down.
        assert_eq!(ok("range", &[n(3.0)]), list(&[n(0.0), n(1.0), n(2.0)]));
        assert_eq!(ok("range", &[n(1.0), n(4.0)]), list(&[n(1.0), n(2.0), n(3.0)]));
        assert_eq!(ok("range", &[n(4.0), n(1.0)]), list(&[n(4.0), n(3.0), n(2.0)]));
        assert_eq!(ok("range", &[n(0.0), n(1.0), n(0.25)]), list(&[n(0.0), n(0.25), n(0.5), n(0.75)]));
        assert_eq!(ok("range", &[n(0.0)]), list(&[]));
        assert_eq!(err("range", &[n(0.0), n(3.0), n(0.0)]), "range: step must not be zero");
        assert!(err("range", &[n(0.0), n(3.0), n(-1.0)]).contains("positive"));
    }

    #[test]
    fn huge_range_is_an_error_not_an_allocation() {
        // A range of more than a million elements is refused up front.
        assert!(err("range", &[n(1e12)]).contains("1000000"));
        assert!(err("range", &[n(0.0), n(1.0), n(1e-300)]).contains("1000000"));
        assert!(err("range", &[n(f64::INFINITY)]).contains("1000000"));
    }

    #[test]
    fn min_and_max_take_numbers() {
        // Numeric strings convert like Terraform; other types do not.
        assert_eq!(ok("min", &[n(3.0), n(-1.0), s("2")]), n(-1.0));
        assert_eq!(ok("max", &[n(3.0), n(7.5)]), n(7.5));
        assert_eq!(err("max", &[]), "max: expected at least 1 argument, got 0");
        assert_eq!(err("min", &[n(1.0), s("x")]), "min: second argument must be a number, got string");
    }

    #[test]
    fn format_verbs() {
        // The common verbs, widths, precision and the literal percent.
        let f = |spec: &str, args: &[Value]| {
            let mut all = vec![s(spec)];
            all.extend_from_slice(args);
            ok("format", &all)
        };
        assert_eq!(f("Hello, %s!", &[s("Ander")]), s("Hello, Ander!"));
        assert_eq!(f("%d items, 100%%", &[n(3.0)]), s("3 items, 100%"));
        assert_eq!(f("%5d|%-5d|%05d", &[n(42.0), n(42.0), n(-42.0)]), s("   42|42   |-0042"));
        assert_eq!(f("%.2f %f", &[n(2.345), n(1.5)]), s("2.35 1.500000"));
        assert_eq!(f("%q", &[s("a \"b\"")]), s("\"a \\\"b\\\"\""));
        assert_eq!(f("%v %v %v", &[s("x"), n(2.0), list(&[n(1.0), s("a")])]), s("x 2 [1,\"a\"]"));
        assert_eq!(f("%#v", &[s("x")]), s("\"x\""));
        assert_eq!(f("%t %x %X %o %b", &[Value::Bool(true), n(255.0), n(255.0), n(8.0), n(5.0)]), s("true ff FF 10 101"));
        assert_eq!(f("%e", &[n(1500.0)]), s("1.500000e+03"));
        assert_eq!(f("%+d %[1]d", &[n(7.0)]), s("+7 7"));
        assert_eq!(f("%.3s", &[s("abcdef")]), s("abc"));
    }

    #[test]
    fn format_errors() {
        // Argument count and type mismatches are reported, never guessed.
        assert_eq!(err("format", &[s("%s %s"), s("a")]), "format: not enough arguments for %s (verb #2)");
        assert_eq!(err("format", &[s("%s"), s("a"), s("b")]), "format: too many arguments; no verb for argument 2");
        assert!(err("format", &[s("%d"), n(1.5)]).contains("whole number"));
        assert!(err("format", &[s("%s"), list(&[])]).contains("unsupported value"));
        assert!(err("format", &[s("%s"), Value::Null]).contains("null"));
        assert!(err("format", &[s("%"), s("a")]).contains("middle of a verb"));
        assert!(err("format", &[s("%y"), s("a")]).contains("unsupported format verb"));
        assert!(err("format", &[s("%99999999999999999999d"), n(1.0)]).contains("larger than"));
    }

    #[test]
    fn formatlist_iterates_lists_together() {
        // List arguments advance together; scalars repeat.
        assert_eq!(ok("formatlist", &[s("%s-%s"), list(&[s("a"), s("b")]), s("x")]), list(&[s("a-x"), s("b-x")]));
        assert!(err("formatlist", &[s("%s%s"), list(&[s("a")]), list(&[])]).contains("same length"));
    }

    #[test]
    fn join_and_split() {
        // join takes one or more lists; split on "" splits characters.
        assert_eq!(ok("join", &[s(","), list(&[s("a"), n(1.0)])]), s("a,1"));
        assert_eq!(ok("join", &[s("-"), list(&[s("a")]), list(&[s("b")])]), s("a-b"));
        assert_eq!(err("join", &[s(","), n(1.0)]), "join: second argument must be a list of strings, got number");
        assert!(err("join", &[s(","), list(&[list(&[])])]).contains("element of type list"));
        assert_eq!(ok("split", &[s(","), s("a,b,")]), list(&[s("a"), s("b"), s("")]));
        assert_eq!(ok("split", &[s(""), s("ab")]), list(&[s("a"), s("b")]));
    }

    #[test]
    fn string_functions() {
        // Case, trimming, replacing, prefixes and substrings by character.
        assert_eq!(ok("lower", &[s("AbC")]), s("abc"));
        assert_eq!(ok("upper", &[s("AbC")]), s("ABC"));
        assert_eq!(ok("trimspace", &[s("  a b \n")]), s("a b"));
        assert_eq!(ok("replace", &[s("a-b-c"), s("-"), s("+")]), s("a+b+c"));
        assert!(err("replace", &[s("abc"), s("/b/"), s("x")]).contains("regular expression"));
        assert_eq!(ok("startswith", &[s("hello"), s("he")]), Value::Bool(true));
        assert_eq!(ok("endswith", &[s("hello"), s("he")]), Value::Bool(false));
        assert_eq!(ok("substr", &[s("héllo"), n(1.0), n(3.0)]), s("éll"));
        assert_eq!(ok("substr", &[s("hello"), n(-3.0), n(-1.0)]), s("llo"));
        assert_eq!(ok("substr", &[s("hello"), n(2.0), n(100.0)]), s("llo"));
        assert_eq!(ok("substr", &[s("hello"), n(9.0), n(1.0)]), s(""));
        assert!(err("substr", &[s("hello"), n(0.0), n(-2.0)]).contains("length"));
        assert!(err("substr", &[s("hello"), n(0.5), n(1.0)]).contains("whole number"));
    }

    #[test]
    fn tostring_and_tonumber_convert_primitives_only() {
        // Collections are not strings; only numeric strings are numbers.
        assert_eq!(ok("tostring", &[n(3.0)]), s("3"));
        assert_eq!(ok("tostring", &[Value::Bool(true)]), s("true"));
        assert_eq!(ok("tostring", &[Value::Null]), Value::Null);
        assert_eq!(err("tostring", &[list(&[])]), "tostring: cannot convert list to string");
        assert_eq!(ok("tonumber", &[s("1.5")]), n(1.5));
        assert_eq!(ok("tonumber", &[n(2.0)]), n(2.0));
        assert_eq!(err("tonumber", &[s("abc")]), "tonumber: cannot convert \"abc\" to number");
        assert!(err("tonumber", &[s("inf")]).contains("cannot convert"));
        assert!(err("tonumber", &[Value::Bool(true)]).contains("cannot convert bool"));
    }

    #[test]
    fn coalesce_skips_null_and_empty_strings() {
        // The first meaningful argument wins.
        assert_eq!(ok("coalesce", &[Value::Null, s(""), s("b"), s("c")]), s("b"));
        assert_eq!(ok("coalesce", &[Value::Null, n(0.0)]), n(0.0));
        assert!(err("coalesce", &[Value::Null, s("")]).contains("no non-null"));
    }

    #[test]
    fn element_wraps_around() {
        // Indexes past the end wrap modulo the length.
        let l = list(&[s("a"), s("b"), s("c")]);
        assert_eq!(ok("element", &[l.clone(), n(4.0)]), s("b"));
        assert!(err("element", &[list(&[]), n(0.0)]).contains("empty list"));
        assert!(err("element", &[l, n(-1.0)]).contains("negative"));
    }

    #[test]
    fn jsonencode_writes_integers_without_fraction() {
        // Numbers that are whole print as integers.
        let v = map(&[("n", n(3.0)), ("f", n(1.5)), ("l", list(&[Value::Bool(true), Value::Null]))]);
        assert_eq!(ok("jsonencode", &[v]), s("{\"f\":1.5,\"l\":[true,null],\"n\":3}"));
    }

    #[test]
    fn collection_functions() {
        // contains, distinct, flatten, toset, tolist, tomap, zipmap, sort, reverse.
        let l = list(&[s("b"), s("a"), s("b")]);
        assert_eq!(ok("contains", &[l.clone(), s("a")]), Value::Bool(true));
        assert_eq!(ok("contains", &[l.clone(), s("z")]), Value::Bool(false));
        assert_eq!(ok("distinct", std::slice::from_ref(&l)), list(&[s("b"), s("a")]));
        assert_eq!(ok("toset", std::slice::from_ref(&l)), list(&[s("a"), s("b")]));
        assert_eq!(ok("toset", &[list(&[n(10.0), n(9.0), n(10.0)])]), list(&[n(9.0), n(10.0)]));
        assert_eq!(ok("flatten", &[list(&[list(&[n(1.0), list(&[n(2.0)])]), n(3.0)])]), list(&[n(1.0), n(2.0), n(3.0)]));
        assert_eq!(ok("tolist", &[list(&[Value::Unknown])]), list(&[Value::Unknown]));
        assert_eq!(err("tolist", &[s("x")]), "tolist: cannot convert string to list");
        assert_eq!(ok("tomap", &[map(&[("a", n(1.0))])]), map(&[("a", n(1.0))]));
        assert_eq!(err("tomap", &[list(&[])]), "tomap: cannot convert list to map");
        assert_eq!(ok("zipmap", &[list(&[s("a"), s("b")]), list(&[n(1.0), n(2.0)])]), map(&[("a", n(1.0)), ("b", n(2.0))]));
        assert!(err("zipmap", &[list(&[s("a")]), list(&[])]).contains("same length"));
        assert_eq!(ok("sort", &[list(&[s("b"), s("a"), n(10.0), n(9.0)])]), list(&[s("10"), s("9"), s("a"), s("b")]));
        assert_eq!(ok("reverse", &[l]), list(&[s("b"), s("a"), s("b")]));
    }

    #[test]
    fn number_functions() {
        // abs, ceil, floor and sum.
        assert_eq!(ok("abs", &[n(-2.5)]), n(2.5));
        assert_eq!(ok("ceil", &[n(1.2)]), n(2.0));
        assert_eq!(ok("floor", &[n(-1.2)]), n(-2.0));
        assert_eq!(ok("sum", &[list(&[n(1.0), n(2.5)])]), n(3.5));
        assert!(err("sum", &[list(&[])]).contains("empty"));
        assert!(err("sum", &[list(&[s("x")])]).contains("must be numbers"));
        assert_eq!(err("abs", &[s("x")]), "abs: first argument must be a number, got string");
    }

    #[test]
    fn unknown_arguments_make_unknown_results() {
        // A function that needs a value it does not have cannot guess.
        assert_eq!(ok("upper", &[Value::Unknown]), Value::Unknown);
        assert_eq!(ok("join", &[s(","), list(&[s("a"), Value::Unknown])]), Value::Unknown);
        assert_eq!(ok("lookup", &[Value::Unknown, s("a")]), Value::Unknown);
        assert_eq!(ok("format", &[s("%s"), Value::Unknown]), Value::Unknown);
    }

    #[test]
    fn sensitive_arguments_make_sensitive_results() {
        // The result is computed on plain values and marked once, at the top.
        assert_eq!(ok("upper", &[secret(s("pw"))]), secret(s("PW")));
        assert_eq!(ok("join", &[s("-"), list(&[s("a"), secret(s("b"))])]), secret(s("a-b")));
        assert_eq!(ok("length", &[secret(s("abc"))]), secret(n(3.0)));
        assert_eq!(ok("upper", &[secret(Value::Unknown)]), secret(Value::Unknown));
        assert_eq!(ok("lower", &[s("A")]), s("a"));
        assert!(err("upper", &[secret(list(&[]))]).contains("got list"));
    }
}
