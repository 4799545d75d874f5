//! Collection functions: `alltrue anytrue chunklist coalesce coalescelist
//! compact concat contains distinct element flatten index keys length
//! lookup matchkeys merge one range reverse slice sort transpose values
//! zipmap` (the set functions are in `set.rs`).
//!
//! Lists, sets and tuples are all [`Value::List`]; maps and objects are
//! [`Value::Map`]. Every result is bounded by [`MAX_ELEMENTS`].

use super::conversion::unify;
use super::{Args, MAX_ELEMENTS};
use crate::value::{Number, Value};
use std::collections::BTreeMap;
use unicode_segmentation::UnicodeSegmentation;

fn bool_elements(f: &Args) -> Result<Vec<Option<bool>>, String> {
    f.arity(1, 1)?;
    f.list(0)?
        .iter()
        .map(|v| match v {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) if s == "true" || s == "false" => Ok(Some(s == "true")),
            other => Err(f.error(format!("elements must be bools, got {}", other.type_name()))),
        })
        .collect()
}

pub(super) fn alltrue(f: &Args) -> Result<Value, String> {
    Ok(Value::Bool(bool_elements(f)?.iter().all(|b| *b == Some(true))))
}

pub(super) fn anytrue(f: &Args) -> Result<Value, String> {
    Ok(Value::Bool(bool_elements(f)?.iter().any(|b| *b == Some(true))))
}

/// `chunklist(list, size)`; a size of zero gives the whole list as one chunk.
pub(super) fn chunklist(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let items = f.list(0)?;
    let size = f.integer(1)?;
    if size < 0 {
        return Err(f.error("the size argument must be positive"));
    }
    if size == 0 {
        return Ok(Value::List(vec![Value::List(items.to_vec())]));
    }
    Ok(Value::List(items.chunks(size as usize).map(|c| Value::List(c.to_vec())).collect()))
}

/// The first argument that is neither null nor an empty string, after the
/// arguments are unified to one type (`coalesce(1, "x")` is `"1"`).
pub(super) fn coalesce(f: &Args) -> Result<Value, String> {
    let unified = unify(f.args).map_err(|e| f.error(e))?;
    unified.into_iter().find(|v| !v.is_null() && v.as_str() != Some("")).ok_or_else(|| f.error("no non-null, non-empty-string arguments"))
}

pub(super) fn coalescelist(f: &Args) -> Result<Value, String> {
    for i in 0..f.len() {
        if f.args[i].is_null() {
            continue;
        }
        if !f.list(i)?.is_empty() {
            return Ok(f.args[i].clone());
        }
    }
    Err(f.error("no non-null arguments"))
}

pub(super) fn compact(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let items = f.list(0)?;
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::Null => {}
            Value::String(s) if s.is_empty() => {}
            other => out.push(Value::String(other.to_template_string().ok_or_else(|| f.error("argument must be a list of strings"))?)),
        }
    }
    Ok(Value::List(out))
}

pub(super) fn concat(f: &Args) -> Result<Value, String> {
    let mut out = Vec::new();
    for i in 0..f.len() {
        let items = f.list(i)?;
        if out.len() + items.len() > MAX_ELEMENTS {
            return Err(f.error(format!("more than {MAX_ELEMENTS} elements")));
        }
        out.extend(items.iter().cloned());
    }
    Ok(Value::List(out))
}

pub(super) fn contains(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let needle = f.arg(1)?;
    Ok(Value::Bool(f.list(0)?.contains(needle)))
}

/// Equality after converting primitives as `matchkeys` does: `"1"` and
/// `1` match (`contains` and `index` compare exactly, as Terraform does).
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(_), Value::Number(_) | Value::Bool(_)) | (Value::Number(_) | Value::Bool(_), Value::String(_)) => {
            a.to_template_string() == b.to_template_string()
        }
        _ => a == b,
    }
}

pub(super) fn distinct(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::List(distinct_values(f.list(0)?)))
}

pub(crate) fn distinct_values(items: &[Value]) -> Vec<Value> {
    // Sorting first keeps this O(n log n) at the million elements a list
    // may hold; only values the order cannot tell apart are compared with
    // each other. Ties go by position, so the first of equals is kept.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| distinct_order(&items[a], &items[b]).then(a.cmp(&b)));
    let mut keep = vec![false; items.len()];
    let mut run: Vec<usize> = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if pos > 0 && distinct_order(&items[order[pos - 1]], &items[i]) != std::cmp::Ordering::Equal {
            run.clear();
        }
        if !run.iter().any(|&j| items[j] == items[i]) {
            keep[i] = true;
            run.push(i);
        }
    }
    items.iter().zip(keep).filter(|(_, k)| *k).map(|(v, _)| v.clone()).collect()
}

/// A total order in which equal values compare equal (unequal ones may
/// too): kind first, then the value.
fn distinct_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::String(_) => 3,
            Value::List(_) => 4,
            Value::Map(_) => 5,
            Value::Unknown => 6,
            Value::Sensitive(_) => 7,
            _ => 2,
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::List(_) | Value::Map(_), _) => a.to_json().to_string().cmp(&b.to_json().to_string()),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => std::cmp::Ordering::Equal,
        },
    })
}

pub(super) fn element(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let list = f.list(0)?;
    let index = f.integer(1)?;
    if list.is_empty() {
        return Err(f.error("cannot use element function with an empty list"));
    }
    if index < 0 {
        return Err(f.error("cannot use element function with a negative index"));
    }
    Ok(list[(index as usize) % list.len()].clone())
}

/// Flattens nested lists; an unknown element anywhere in the nesting makes
/// the result unknown, since it might be a list.
pub(super) fn flatten(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let mut out = Vec::new();
    if !flatten_into(f.list(0)?, &mut out) {
        return Ok(Value::Unknown);
    }
    if out.len() > MAX_ELEMENTS {
        return Err(f.error(format!("more than {MAX_ELEMENTS} elements")));
    }
    Ok(Value::List(out))
}

fn flatten_into(items: &[Value], out: &mut Vec<Value>) -> bool {
    for item in items {
        match item {
            Value::List(inner) => {
                if !flatten_into(inner, out) {
                    return false;
                }
            }
            Value::Unknown => return false,
            other => out.push(other.clone()),
        }
    }
    true
}

pub(super) fn index(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let needle = f.arg(1)?;
    match f.list(0)?.iter().position(|v| v == needle) {
        Some(i) => Ok(Value::from(i)),
        None => Err(f.error("item not found")),
    }
}

pub(super) fn keys(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::List(f.map(0)?.keys().map(|k| Value::String(k.clone())).collect()))
}

pub(super) fn values(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::List(f.map(0)?.values().cloned().collect()))
}

/// Strings count grapheme clusters; collections count entries.
pub(super) fn length(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let n = match f.arg(0)? {
        Value::String(s) => s.graphemes(true).count(),
        Value::List(items) => items.len(),
        Value::Map(map) => map.len(),
        other => return Err(f.type_error(0, "a string, list or map", other)),
    };
    Ok(Value::from(n))
}

pub(super) fn lookup(f: &Args) -> Result<Value, String> {
    f.arity(2, 3)?;
    let map = f.map(0)?;
    let key = f.string(1)?;
    match (map.get(&key), f.args.get(2)) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(Value::Unknown)) => Ok(Value::Unknown),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(f.error(format!("key \"{key}\" not found in the map and no default given"))),
    }
}

pub(super) fn matchkeys(f: &Args) -> Result<Value, String> {
    f.arity(3, 3)?;
    let (values, keys, search) = (f.list(0)?, f.list(1)?, f.list(2)?);
    if values.len() != keys.len() {
        return Err(f.error("length of keys and values should be equal"));
    }
    let out = values.iter().zip(keys).filter(|(_, k)| search.iter().any(|s| loosely_equal(s, k))).map(|(v, _)| v.clone()).collect();
    Ok(Value::List(out))
}

pub(super) fn merge(f: &Args) -> Result<Value, String> {
    let mut out = crate::value::ValueMap::new();
    for (i, v) in f.args.iter().enumerate() {
        if v.is_null() {
            continue;
        }
        out.extend(f.map(i)?.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Ok(Value::Map(out))
}

pub(super) fn one(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    match f.list(0)? {
        [] => Ok(Value::Null),
        [only] => Ok(only.clone()),
        _ => Err(f.error("must be a list, set, or tuple value with either zero or one elements")),
    }
}

/// `range(limit)`, `range(start, limit)` or `range(start, limit, step)`;
/// the limit is exclusive and the default step runs towards it.
pub(super) fn range(f: &Args) -> Result<Value, String> {
    f.arity(1, 3)?;
    let (start, limit) = match f.len() {
        1 => (Number::Int(0), f.exact(0)?),
        _ => (f.exact(0)?, f.exact(1)?),
    };
    let step = match f.args.get(2) {
        Some(_) => f.exact(2)?,
        None if limit < start => Number::Int(-1),
        None => Number::Int(1),
    };
    if step.is_zero() {
        return Err(f.error("step must not be zero"));
    }
    if start < limit && step.is_negative() {
        return Err(f.error("step must be positive when start is less than limit"));
    }
    if start > limit && !step.is_negative() {
        return Err(f.error("step must be negative when start is greater than limit"));
    }
    let count = ((limit.to_f64() - start.to_f64()) / step.to_f64()).ceil().max(0.0);
    if !count.is_finite() || count > MAX_ELEMENTS as f64 {
        return Err(f.error(format!("more than {MAX_ELEMENTS} elements requested")));
    }
    // Each element is the previous plus the step, as Terraform adds them.
    let before_limit = |n: &Number| if step.is_negative() { n > &limit } else { n < &limit };
    let mut items = Vec::with_capacity(count as usize);
    let mut current = start;
    while before_limit(&current) && items.len() <= MAX_ELEMENTS {
        let next = current.add(&step).map_err(|e| f.error(e.to_string()))?;
        items.push(Value::Number(current));
        current = next;
    }
    Ok(Value::List(items))
}

pub(super) fn reverse(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::List(f.list(0)?.iter().rev().cloned().collect()))
}

pub(super) fn slice(f: &Args) -> Result<Value, String> {
    f.arity(3, 3)?;
    let items = f.list(0)?;
    let (start, end) = (f.integer(1)?, f.integer(2)?);
    if start < 0 {
        return Err(f.error("the starting index must be a non-negative integer"));
    }
    if end > items.len() as i64 {
        return Err(f.error("the ending index must not exceed the list length"));
    }
    if start > end {
        return Err(f.error("the starting index must be less than or equal to the ending index"));
    }
    Ok(Value::List(items[start as usize..end as usize].to_vec()))
}

/// Sorts strings lexicographically by bytes (numbers sort by their text).
pub(super) fn sort(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let mut items = f.strings(0)?;
    items.sort();
    Ok(Value::List(items.into_iter().map(Value::String).collect()))
}

pub(super) fn transpose(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (key, list) in f.map(0)? {
        let items = list.as_list().ok_or_else(|| f.error("input must be a map of lists of strings"))?;
        for item in items {
            let s = item.to_template_string().ok_or_else(|| f.error("input must be a map of lists of strings"))?;
            out.entry(s).or_default().push(Value::String(key.clone()));
        }
    }
    Ok(Value::Map(out.into_iter().map(|(k, v)| (k, Value::List(v))).collect()))
}

pub(super) fn zipmap(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    if f.args[0].has_unknown() {
        return Ok(Value::Unknown);
    }
    let keys = f.strings(0)?;
    let values = f.list(1)?;
    if keys.len() != values.len() {
        return Err(f.error(format!("number of keys ({}) does not match number of values ({})", keys.len(), values.len())));
    }
    Ok(Value::Map(keys.into_iter().zip(values.iter().cloned()).collect()))
}
