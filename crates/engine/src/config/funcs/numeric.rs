//! Numeric functions: `abs ceil floor log max min parseint pow signum sum`.
//!
//! Numbers are `f64` (see `value.rs`); results that are not finite (such as
//! `log(0, 10)`) stay infinite, as in Terraform, and serialise as null.

use super::Args;
use super::args::to_number;
use crate::value::Value;

/// Upper bound on the digits `parseint` reads.
const MAX_PARSEINT_DIGITS: usize = 4096;

pub(super) fn abs(f: &Args) -> Result<Value, String> {
    f.unary_number(f64::abs)
}

pub(super) fn ceil(f: &Args) -> Result<Value, String> {
    f.unary_number(f64::ceil)
}

pub(super) fn floor(f: &Args) -> Result<Value, String> {
    f.unary_number(f64::floor)
}

pub(super) fn signum(f: &Args) -> Result<Value, String> {
    // Terraform's signum takes whole numbers only.
    f.arity(1, 1)?;
    Ok(Value::Number(f.integer(0)?.signum() as f64))
}

/// `log(number, base)`: natural logarithms divided, as Go's `math.Log`.
pub(super) fn log(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (n, base) = (f.number(0)?, f.number(1)?);
    Ok(Value::Number(n.ln() / base.ln()))
}

pub(super) fn pow(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    Ok(Value::Number(f.number(0)?.powf(f.number(1)?)))
}

pub(super) fn min(f: &Args) -> Result<Value, String> {
    extreme(f, f64::min)
}

pub(super) fn max(f: &Args) -> Result<Value, String> {
    extreme(f, f64::max)
}

fn extreme(f: &Args, pick: fn(f64, f64) -> f64) -> Result<Value, String> {
    if f.len() == 0 {
        return Err(f.error("must pass at least one number"));
    }
    let mut best = f.number(0)?;
    for i in 1..f.len() {
        best = pick(best, f.number(i)?);
    }
    Ok(Value::Number(best))
}

pub(super) fn sum(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    let items = match f.arg(0)?.unmarked() {
        Value::List(items) => items,
        Value::Map(_) => return Err(f.error("argument must be list, set, or tuple, got object")),
        other => return Err(f.type_error(0, "a list, set, or tuple", other)),
    };
    if items.is_empty() {
        return Err(f.error("cannot sum an empty list"));
    }
    let mut total = 0.0;
    for item in items {
        if item.is_null() {
            return Err(f.error("argument must be list, set, or tuple of number values; null elements are not allowed"));
        }
        total += to_number(item).ok_or_else(|| f.error(format!("elements must be numbers, got {}", item.type_name())))?;
    }
    Ok(Value::Number(total))
}

/// `parseint(string, base)` for bases 2 to 62, with Go's digits: for bases
/// up to 36 letters are case-insensitive; above, `a`–`z` are 10–35 and
/// `A`–`Z` are 36–61. An optional sign may lead.
pub(super) fn parseint(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let text = f.arg(0)?.as_str().ok_or_else(|| f.type_error(0, "a string", f.args.first().unwrap_or(&Value::Null)))?.to_string();
    let base = f.integer(1)?;
    if !(2..=62).contains(&base) {
        return Err(f.error(format!("base must be a whole number between 2 and 62 inclusive, got {base}")));
    }
    if text.len() > MAX_PARSEINT_DIGITS {
        return Err(f.error(format!("the number is longer than {MAX_PARSEINT_DIGITS} digits")));
    }
    let cannot = || f.error(format!("cannot parse {text:?} as a base {base} integer"));
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text.as_str()),
    };
    if digits.is_empty() {
        return Err(cannot());
    }
    let mut n = 0.0f64;
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 10,
            'A'..='Z' if base <= 36 => c as u32 - 'A' as u32 + 10,
            'A'..='Z' => c as u32 - 'A' as u32 + 36,
            _ => return Err(cannot()),
        };
        if i64::from(d) >= base {
            return Err(cannot());
        }
        n = n * base as f64 + f64::from(d);
    }
    Ok(Value::Number(if negative { -n } else { n }))
}
