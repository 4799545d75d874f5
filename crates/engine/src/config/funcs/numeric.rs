//! Numeric functions: `abs ceil floor log max min parseint pow signum sum`.
//!
//! Numbers are Terraform's 512-bit floats (see `number.rs`): `abs`, `ceil`,
//! `floor`, `max`, `min`, `parseint`, `signum` and `sum` are exact; `log`
//! and `pow` compute in `f64`, as Terraform's do (Go's `math.Log` and
//! `math.Pow`). A result that is not finite (`log(0, 10)`) is an error:
//! no value of the language is infinite.

use super::Args;
use super::args::to_number;
use crate::value::{Number, Value};

/// Upper bound on the digits `parseint` reads.
const MAX_PARSEINT_DIGITS: usize = 4096;

pub(super) fn abs(f: &Args) -> Result<Value, String> {
    f.unary_number(Number::abs)
}

pub(super) fn ceil(f: &Args) -> Result<Value, String> {
    f.unary_number(Number::ceil)
}

pub(super) fn floor(f: &Args) -> Result<Value, String> {
    f.unary_number(Number::floor)
}

pub(super) fn signum(f: &Args) -> Result<Value, String> {
    // Terraform's signum takes whole numbers only.
    f.arity(1, 1)?;
    let n = f.exact(0)?;
    match n.to_i64() {
        Some(i) => Ok(Value::from(i.signum())),
        None => Err(f.error(format!("value must be a whole number, between {} and {}, got {n}", i64::MIN, i64::MAX))),
    }
}

/// `log(number, base)`: natural logarithms divided, as Go's `math.Log`.
pub(super) fn log(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (n, base) = (f.number(0)?, f.number(1)?);
    f.float_result(n.ln() / base.ln())
}

pub(super) fn pow(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    f.float_result(f.number(0)?.powf(f.number(1)?))
}

pub(super) fn min(f: &Args) -> Result<Value, String> {
    extreme(f, std::cmp::Ordering::Less)
}

pub(super) fn max(f: &Args) -> Result<Value, String> {
    extreme(f, std::cmp::Ordering::Greater)
}

/// The argument that compares `wins` against every other.
fn extreme(f: &Args, wins: std::cmp::Ordering) -> Result<Value, String> {
    if f.len() == 0 {
        return Err(f.error("must pass at least one number"));
    }
    let mut best = f.exact(0)?;
    for i in 1..f.len() {
        let n = f.exact(i)?;
        if n.cmp(&best) == wins {
            best = n;
        }
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
    let mut total = Number::Int(0);
    for item in items {
        if item.is_null() {
            return Err(f.error("argument must be list, set, or tuple of number values; null elements are not allowed"));
        }
        let n = to_number(item).ok_or_else(|| f.error(format!("elements must be numbers, got {}", item.type_name())))?;
        total = total.add(&n).map_err(|e| f.error(e.to_string()))?;
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
    let mut n = num_bigint::BigInt::from(0);
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
        n = n * base + d;
    }
    f.number_result(Number::from_bigint(if negative { -n } else { n }))
}
