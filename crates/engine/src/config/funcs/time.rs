//! Date and time functions: `formatdate timeadd timecmp plantimestamp`
//! and `timestamp`, which is known only after apply (the table marks it;
//! its value is the time of the call at apply).
//!
//! Timestamps are RFC 3339. `plantimestamp` is the time of the plan: the
//! first call while planning, so every call of one plan agrees, and the
//! recorded one when applying a plan file (`config/inputs.rs`).

use super::Args;
use crate::value::Value;
use chrono::{DateTime, Datelike, Duration, FixedOffset, Timelike};

fn parse(f: &Args, i: usize) -> Result<DateTime<FixedOffset>, String> {
    let s = f.str(i)?;
    DateTime::parse_from_rfc3339(&s).map_err(|e| f.error(format!("not a valid RFC3339 timestamp: {s:?}: {e}")))
}

/// Go's `time.RFC3339` layout: whole seconds, `Z` for UTC.
fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(super) fn timestamp(f: &Args) -> Result<Value, String> {
    f.arity(0, 0)?;
    Ok(Value::String(rfc3339(&chrono::Utc::now().fixed_offset())))
}

pub(super) fn plantimestamp(f: &Args) -> Result<Value, String> {
    f.arity(0, 0)?;
    Ok(Value::String(rfc3339(&f.ctx.inputs.plan_time().fixed_offset())))
}

pub(super) fn timecmp(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (a, b) = (parse(f, 0)?, parse(f, 1)?);
    Ok(Value::from(match a.cmp(&b) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }))
}

pub(super) fn timeadd(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let t = parse(f, 0)?;
    let d = go_duration(&f.str(1)?).map_err(|e| f.error(e))?;
    let sum = t.checked_add_signed(d).ok_or_else(|| f.error("the result is out of range"))?;
    Ok(Value::String(rfc3339(&sum)))
}

/// Parses a Go duration such as `1h30m`, `-2.5s` or `300ms`.
fn go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::zero());
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(invalid());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        rest = &rest[unit_len..];
        nanos += n * scale;
    }
    if nanos > i64::MAX as f64 {
        return Err(invalid());
    }
    let d = Duration::nanoseconds(nanos as i64);
    Ok(if negative { -d } else { d })
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// `formatdate(spec, timestamp)` with Terraform's letter sequences and
/// single-quoted literals.
pub(super) fn formatdate(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let spec: Vec<char> = f.str(0)?.chars().collect();
    let t = parse(f, 1)?;
    let mut out = String::new();
    let mut i = 0;
    while i < spec.len() {
        let c = spec[i];
        if c == '\'' {
            if spec.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let Some(end) = spec[i + 1..].iter().position(|&c| c == '\'') else {
                return Err(f.error("unterminated literal '"));
            };
            out.extend(&spec[i + 1..i + 1 + end]);
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = spec[i..].iter().take_while(|&&d| d == c).count();
        let token: String = spec[i..i + run].iter().collect();
        i += run;
        let offset = t.offset().local_minus_utc();
        let (sign, abs) = if offset < 0 { ('-', -offset) } else { ('+', offset) };
        let text = match token.as_str() {
            "YYYY" => format!("{:04}", t.year()),
            "YY" => format!("{:02}", t.year() % 100),
            "MMMM" => MONTHS[t.month0() as usize].to_string(),
            "MMM" => MONTHS[t.month0() as usize][..3].to_string(),
            "MM" => format!("{:02}", t.month()),
            "M" => t.month().to_string(),
            "DD" => format!("{:02}", t.day()),
            "D" => t.day().to_string(),
            "EEEE" => DAYS[t.weekday().num_days_from_monday() as usize].to_string(),
            "EEE" => DAYS[t.weekday().num_days_from_monday() as usize][..3].to_string(),
            "hh" => format!("{:02}", t.hour()),
            "h" => t.hour().to_string(),
            "HH" => format!("{:02}", (t.hour() + 11) % 12 + 1),
            "H" => ((t.hour() + 11) % 12 + 1).to_string(),
            "AA" => if t.hour() < 12 { "AM" } else { "PM" }.to_string(),
            "aa" => if t.hour() < 12 { "am" } else { "pm" }.to_string(),
            "mm" => format!("{:02}", t.minute()),
            "m" => t.minute().to_string(),
            "ss" => format!("{:02}", t.second()),
            "s" => t.second().to_string(),
            "ZZZZZ" => format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60),
            "ZZZZ" => format!("{sign}{:02}{:02}", abs / 3600, abs / 60 % 60),
            "ZZZ" if offset == 0 => "UTC".to_string(),
            "ZZZ" => format!("{sign}{:02}{:02}", abs / 3600, abs / 60 % 60),
            "Z" if offset == 0 => "Z".to_string(),
            "Z" => format!("{sign}{:02}:{:02}", abs / 3600, abs / 60 % 60),
            other => return Err(f.error(format!("invalid date format verb {other:?}: unrecognized"))),
        };
        out.push_str(&text);
    }
    Ok(Value::String(out))
}
