//! `format` and `formatlist`: the `%` verbs of Terraform's `format`, which
//! follow Go's `fmt` — flags `-+ 0#`, width, `.precision`, an explicit
//! `[n]` argument index, and the verbs `v t s q d b o x X e E f F g G`
//! plus `%%`. Widths and precisions are bounded.

use super::args::to_number;
use super::{Args, MAX_WIDTH};
use crate::value::Value;

pub(super) fn format(f: &Args) -> Result<Value, String> {
    f.at_least(1)?;
    let text = format_values(f.name, &f.str(0)?, f.args.get(1..).unwrap_or(&[]))?;
    f.bounded(text.len())?;
    Ok(Value::String(text))
}

/// `formatlist(format, args...)`: list arguments (all of one length) are
/// iterated together; other arguments repeat on every element.
pub(super) fn formatlist(f: &Args) -> Result<Value, String> {
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
    if n > MAX_WIDTH {
        return Err(format!("{fname}: width or precision {n} is larger than {MAX_WIDTH}"));
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
        let exact = || to_number(arg).ok_or_else(unsupported);
        let number = || exact().map(|n| n.to_f64());
        let integer = || {
            let n = exact()?;
            n.to_bigint().ok_or_else(|| format!("{fname}: \"%{letter}\" needs a whole number, got {n}"))
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
                let abs = n.magnitude();
                let digits = match letter {
                    'b' => format!("{abs:b}"),
                    'o' => format!("{abs:o}"),
                    'x' => format!("{abs:x}"),
                    'X' => format!("{abs:X}"),
                    _ => abs.to_string(),
                };
                self.signed(if n.sign() == num_bigint::Sign::Minus { -1.0 } else { 1.0 }, digits)
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
                let n = exact()?;
                let sign = if n.is_negative() { -1.0 } else { 1.0 };
                self.signed(sign, n.abs().map_err(|e| format!("{fname}: {e}"))?.to_string())
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
