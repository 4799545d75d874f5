//! A function call's arguments with typed accessors whose errors name the
//! function and the argument's position, and the conversions Terraform
//! applies to primitive arguments (numbers and bools to strings, numeric
//! strings to numbers).
//!
//! Accessors see plain values: the caller ([`super::call_in`]) has removed
//! sensitive marks already, except for functions that handle marks
//! themselves.

use super::{Context, MAX_STRING_BYTES};
use crate::value::{Number, NumberError, Value};

/// A function's name, arguments and calling context.
pub(crate) struct Args<'a> {
    pub name: &'a str,
    pub args: &'a [Value],
    pub ctx: &'a Context,
}

/// "first", "second", … for messages.
pub(crate) fn ordinal(i: usize) -> String {
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
    pub fn len(&self) -> usize {
        self.args.len()
    }

    pub fn arity(&self, min: usize, max: usize) -> Result<(), String> {
        let n = self.args.len();
        if (min..=max).contains(&n) {
            return Ok(());
        }
        let expected = if min == max { format!("{min}") } else { format!("{min} to {max}") };
        Err(format!("{}: expected {expected} argument{}, got {n}", self.name, plural(max)))
    }

    pub fn at_least(&self, min: usize) -> Result<(), String> {
        let n = self.args.len();
        if n >= min {
            return Ok(());
        }
        Err(format!("{}: expected at least {min} argument{}, got {n}", self.name, plural(min)))
    }

    pub fn arg(&self, i: usize) -> Result<&Value, String> {
        self.args.get(i).ok_or_else(|| format!("{}: missing {} argument", self.name, ordinal(i)))
    }

    pub fn error(&self, message: impl std::fmt::Display) -> String {
        format!("{}: {message}", self.name)
    }

    pub fn type_error(&self, i: usize, expected: &str, got: &Value) -> String {
        if got.is_null() {
            return format!("{}: {} argument must not be null", self.name, ordinal(i));
        }
        format!("{}: {} argument must be {expected}, got {}", self.name, ordinal(i), got.type_name())
    }

    /// A string argument; numbers and bools convert as Terraform does.
    pub fn string(&self, i: usize) -> Result<String, String> {
        let v = self.arg(i)?;
        v.to_template_string().ok_or_else(|| self.type_error(i, "a string", v))
    }

    /// A string argument, borrowed when it is a string already.
    pub fn str(&self, i: usize) -> Result<std::borrow::Cow<'_, str>, String> {
        let v = self.arg(i)?;
        match v.unmarked() {
            Value::String(s) => Ok(std::borrow::Cow::Borrowed(s.as_str())),
            other => other.to_template_string().map(std::borrow::Cow::Owned).ok_or_else(|| self.type_error(i, "a string", v)),
        }
    }

    /// A number argument; strings holding a number convert.
    /// The argument as the nearest `f64`, for functions that compute in
    /// floats as Terraform's do (`pow`, `log`).
    pub fn number(&self, i: usize) -> Result<f64, String> {
        self.exact(i).map(|n| n.to_f64())
    }

    /// The argument as a number at its full precision.
    pub fn exact(&self, i: usize) -> Result<Number, String> {
        let v = self.arg(i)?;
        to_number(v).ok_or_else(|| self.type_error(i, "a number", v))
    }

    pub fn integer(&self, i: usize) -> Result<i64, String> {
        let n = self.exact(i)?;
        match n.to_i64() {
            Some(i) => Ok(i),
            None if n.is_integer() => Err(format!("{}: {} argument is too large, got {n}", self.name, ordinal(i))),
            None => Err(format!("{}: {} argument must be a whole number, got {n}", self.name, ordinal(i))),
        }
    }

    /// A number result; an out-of-range or infinite one is an error.
    pub fn number_result(&self, n: Result<Number, NumberError>) -> Result<Value, String> {
        n.map(Value::Number).map_err(|e| self.error(e.to_string()))
    }

    /// A float result, as Terraform's float functions give.
    pub fn float_result(&self, n: f64) -> Result<Value, String> {
        self.number_result(Number::from_f64(n))
    }

    pub fn list(&self, i: usize) -> Result<&[Value], String> {
        let v = self.arg(i)?;
        v.as_list().ok_or_else(|| self.type_error(i, "a list", v))
    }

    pub fn map(&self, i: usize) -> Result<&crate::value::ValueMap, String> {
        let v = self.arg(i)?;
        v.as_map().ok_or_else(|| self.type_error(i, "a map", v))
    }

    pub fn strings(&self, i: usize) -> Result<Vec<String>, String> {
        let v = self.arg(i)?;
        let items = v.as_list().ok_or_else(|| self.type_error(i, "a list of strings", v))?;
        items
            .iter()
            .map(|item| {
                item.to_template_string().ok_or_else(|| {
                    if item.is_null() {
                        format!("{}: {} argument must be a list of strings, got a null element", self.name, ordinal(i))
                    } else {
                        format!(
                            "{}: {} argument must be a list of strings, got an element of type {}",
                            self.name,
                            ordinal(i),
                            item.type_name()
                        )
                    }
                })
            })
            .collect()
    }

    pub fn unary_string(&self, f: impl Fn(&str) -> String) -> Result<Value, String> {
        self.arity(1, 1)?;
        Ok(Value::String(f(&self.str(0)?)))
    }

    pub fn unary_number(&self, f: impl Fn(&Number) -> Result<Number, NumberError>) -> Result<Value, String> {
        self.arity(1, 1)?;
        self.number_result(f(&self.exact(0)?))
    }

    /// Refuses a string result larger than [`MAX_STRING_BYTES`].
    pub fn bounded(&self, len: usize) -> Result<(), String> {
        if len > MAX_STRING_BYTES {
            return Err(format!("{}: the result would be larger than {MAX_STRING_BYTES} bytes", self.name));
        }
        Ok(())
    }
}

pub(crate) fn to_number(v: &Value) -> Option<Number> {
    match v.unmarked() {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// Parses a decimal number the way HCL writes one; `inf`, `NaN` and
/// surrounding whitespace are rejected.
pub(crate) fn parse_number(s: &str) -> Option<Number> {
    if s.trim() != s {
        return None;
    }
    Number::parse(s).ok()
}
