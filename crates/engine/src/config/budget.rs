//! The work budget of one evaluation: how many values and string bytes a
//! single expression (or resource body) may build in total.
//!
//! Each function bounds its own result ([`super::funcs`]), but nesting
//! multiplies: `[for a in range(1e6) : range(1e6)]` asks for 10¹² values,
//! and `join("", [for i in range(1e6) : local.big])` for a million copies
//! of a large string, before `join` could refuse. The evaluator charges
//! every value it builds — elements of list and object literals, each
//! iteration of a `for` (expression or template directive) and what it
//! yields, every function result, template text — to one budget per
//! top-level evaluation, and stops with a diagnostic at the expression
//! that overdraws it. Real configurations stay orders of magnitude below.
//!
//! Measuring a value walks it, but only as far as the remaining budget:
//! charging costs no more than building the value did.

use crate::value::Value;
use std::cell::Cell;

/// Values (scalars, elements, `for` iterations) one evaluation may build.
pub const MAX_EVAL_VALUES: usize = 10_000_000;

/// Bytes of strings one evaluation may build.
pub const MAX_EVAL_BYTES: usize = 256 * 1024 * 1024;

/// What one evaluation has spent so far.
#[derive(Default)]
pub(crate) struct Budget {
    values: Cell<usize>,
    bytes: Cell<usize>,
}

impl Budget {
    /// Charges `value` (deeply); an error message once a limit is passed.
    pub(crate) fn charge(&self, value: &Value) -> Result<(), String> {
        let (mut values, mut bytes) = (self.values.get(), self.bytes.get());
        measure(value, &mut values, &mut bytes);
        self.settle(values, bytes)
    }

    /// Charges `n` values and `b` string bytes without a value to measure
    /// (loop iterations, template text).
    pub(crate) fn charge_raw(&self, n: usize, b: usize) -> Result<(), String> {
        self.settle(self.values.get().saturating_add(n), self.bytes.get().saturating_add(b))
    }

    fn settle(&self, values: usize, bytes: usize) -> Result<(), String> {
        self.values.set(values);
        self.bytes.set(bytes);
        if values > MAX_EVAL_VALUES {
            return Err(format!(
                "this expression builds more than {MAX_EVAL_VALUES} values (nested for expressions or function calls multiply)"
            ));
        }
        if bytes > MAX_EVAL_BYTES {
            return Err(format!("this expression builds more than {} MiB of strings", MAX_EVAL_BYTES / (1024 * 1024)));
        }
        Ok(())
    }
}

/// Adds `value`'s size to the counters, stopping once either is over its
/// limit (the caller then reports it).
fn measure(value: &Value, values: &mut usize, bytes: &mut usize) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        if *values > MAX_EVAL_VALUES || *bytes > MAX_EVAL_BYTES {
            return;
        }
        *values += 1;
        match v {
            Value::String(s) => *bytes += s.len(),
            Value::List(items) => stack.extend(items.iter()),
            Value::Map(map) => {
                for (k, item) in map {
                    *bytes += k.len();
                    stack.push(item);
                }
            }
            Value::Sensitive(inner) => stack.push(inner),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_charged_by_its_elements_and_string_bytes() {
        // A list of two strings is three values and their bytes.
        let b = Budget::default();
        b.charge(&Value::List(vec![Value::from("ab"), Value::from("c")])).expect("within budget");
        assert_eq!((b.values.get(), b.bytes.get()), (3, 3));
    }

    #[test]
    fn overdrawing_either_limit_is_an_error() {
        // Many small charges add up to the limit, and a huge string overdraws the bytes.
        let b = Budget::default();
        assert!(b.charge_raw(MAX_EVAL_VALUES, 0).is_ok());
        assert!(b.charge_raw(1, 0).unwrap_err().contains("more than"));
        let b = Budget::default();
        assert!(b.charge_raw(0, MAX_EVAL_BYTES + 1).unwrap_err().contains("MiB"));
    }
}
