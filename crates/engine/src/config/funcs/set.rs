//! Set functions (`setintersection setproduct setsubtract setunion`) and
//! the order in which sets are kept.
//!
//! A set is a [`Value::List`] without duplicates in Terraform's set order:
//! strings lexically, numbers numerically, `false` before `true`; sets of
//! other elements (Terraform orders those by hash) are ordered by their
//! JSON text so that plans stay stable.

use super::conversion::unify;
use super::{Args, MAX_ELEMENTS};
use crate::value::Value;
use std::cmp::Ordering;

/// Deduplicates and orders values as a set, after unifying their types.
pub(crate) fn to_set(items: &[Value]) -> Result<Vec<Value>, String> {
    let mut items = super::collection::distinct_values(&unify(items)?);
    items.sort_by(set_order);
    items.dedup();
    Ok(items)
}

fn set_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        // Unknown and null elements go last, as cty keeps them.
        (Value::Unknown | Value::Null, Value::Unknown | Value::Null) => Ordering::Equal,
        (Value::Unknown | Value::Null, _) => Ordering::Greater,
        (_, Value::Unknown | Value::Null) => Ordering::Less,
        _ => a.to_json().to_string().cmp(&b.to_json().to_string()),
    }
}

fn sets(f: &Args, min: usize) -> Result<Vec<Vec<Value>>, String> {
    if f.len() < min {
        return Err(f.error(format!("at least {min} argument{} required", if min == 1 { " is" } else { "s are" })));
    }
    (0..f.len()).map(|i| f.list(i).map(<[Value]>::to_vec)).collect()
}

pub(super) fn setunion(f: &Args) -> Result<Value, String> {
    let all: Vec<Value> = sets(f, 1)?.into_iter().flatten().collect();
    Ok(Value::List(to_set(&all).map_err(|e| f.error(e))?))
}

pub(super) fn setintersection(f: &Args) -> Result<Value, String> {
    let mut sets = sets(f, 1)?.into_iter();
    let mut acc = to_set(&sets.next().unwrap_or_default()).map_err(|e| f.error(e))?;
    for set in sets {
        let set = to_set(&set).map_err(|e| f.error(e))?;
        acc.retain(|v| set.contains(v));
    }
    Ok(Value::List(acc))
}

pub(super) fn setsubtract(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let a = to_set(f.list(0)?).map_err(|e| f.error(e))?;
    let b = to_set(f.list(1)?).map_err(|e| f.error(e))?;
    Ok(Value::List(a.into_iter().filter(|v| !b.contains(v)).collect()))
}

/// Every combination of one element from each argument, in order.
pub(super) fn setproduct(f: &Args) -> Result<Value, String> {
    let sets = sets(f, 2)?;
    let mut total: usize = 1;
    for s in &sets {
        total = total.saturating_mul(s.len());
    }
    if total > MAX_ELEMENTS {
        return Err(f.error(format!("the product would have more than {MAX_ELEMENTS} elements")));
    }
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for set in &sets {
        let mut next = Vec::with_capacity(out.len() * set.len());
        for prefix in &out {
            for v in set {
                let mut row = prefix.clone();
                row.push(v.clone());
                next.push(row);
            }
        }
        out = next;
    }
    Ok(Value::List(out.into_iter().map(Value::List).collect()))
}
