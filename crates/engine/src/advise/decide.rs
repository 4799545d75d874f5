//! One policy's proposal from its rules' evidence: up when any up rule
//! fired, else down when every down rule fired; bounded by `min`/`max` or
//! the ladder's ends (and saying so); nothing when a rule had no data.

use super::{Outcome, PolicyAdvice, RuleEvidence};
use crate::config::policy::{Direction, Moves, ScalingPolicy, step_size};
use crate::diag::Diags;
use crate::value::{Value, format_number};

pub(super) fn decide(policy: &ScalingPolicy, current: Value, rules: Vec<RuleEvidence>) -> Result<PolicyAdvice, Diags> {
    let advice = |outcome, proposed, reason: String, rules| PolicyAdvice {
        name: policy.name.clone(),
        variable: policy.variable.clone(),
        current: current.clone(),
        proposed,
        outcome,
        reason,
        rules,
    };
    let no_data: Vec<String> = rules.iter().filter(|r| r.no_data).map(|r| format!("{} {:?}", r.direction.as_str(), r.id)).collect();
    if !no_data.is_empty() {
        let reason = format!("no data for {}: proposing nothing", no_data.join(", "));
        return Ok(advice(Outcome::NoData, None, reason, rules));
    }
    let fired = |d: Direction| -> Vec<String> {
        rules.iter().filter(|r| r.direction == d && r.fired).map(|r| format!("{} {:?}", d.as_str(), r.id)).collect()
    };
    let (ups, downs) = (fired(Direction::Up), fired(Direction::Down));
    let down_rules = rules.iter().filter(|r| r.direction == Direction::Down).count();
    let direction = if !ups.is_empty() {
        Direction::Up
    } else if down_rules > 0 && downs.len() == down_rules {
        Direction::Down
    } else {
        let reason = if downs.is_empty() {
            "no rule fired".to_string()
        } else {
            format!("{} fired, but a scale-down needs every down rule", downs.join(", "))
        };
        return Ok(advice(Outcome::Hold, None, reason, rules));
    };
    let mut why = match direction {
        Direction::Up => format!("{} fired", ups.join(", ")),
        Direction::Down => format!("{} fired", downs.join(", ")),
    };
    if direction == Direction::Up && !downs.is_empty() {
        why.push_str(&format!(" (scale-up wins over {})", downs.join(", ")));
    }
    let (target, bound) = match &policy.moves {
        Moves::Steps { min, max, step } => {
            let Some(now) = current.as_f64() else { return Ok(advice(Outcome::Hold, None, "the variable is not a number".into(), rules)) };
            let size = step_size(step, &current)?;
            match direction {
                Direction::Up if now >= *max => (None, format!("already at max {}", format_number(*max))),
                Direction::Down if now <= *min => (None, format!("already at min {}", format_number(*min))),
                Direction::Up if now + size > *max => (Some(Value::from(*max)), format!("capped at max {}", format_number(*max))),
                Direction::Down if now - size < *min => (Some(Value::from(*min)), format!("capped at min {}", format_number(*min))),
                Direction::Up => (Some(number(now + size)), String::new()),
                Direction::Down => (Some(number(now - size)), String::new()),
            }
        }
        Moves::Ladder { rungs, .. } => {
            let now = current.as_str().unwrap_or_default();
            let Some(i) = rungs.iter().position(|r| r == now) else {
                return Ok(advice(Outcome::Hold, None, format!("{now:?} is not on the ladder"), rules));
            };
            match direction {
                Direction::Up if i + 1 == rungs.len() => (None, "already at the top of the ladder".to_string()),
                Direction::Down if i == 0 => (None, "already at the bottom of the ladder".to_string()),
                Direction::Up => (Some(Value::from(rungs[i + 1].as_str())), String::new()),
                Direction::Down => (Some(Value::from(rungs[i - 1].as_str())), String::new()),
            }
        }
    };
    let reason = if bound.is_empty() { why } else { format!("{why}; {bound}") };
    match target {
        Some(v) => {
            let outcome = if direction == Direction::Up { Outcome::Up } else { Outcome::Down };
            Ok(advice(outcome, Some(v), reason, rules))
        }
        None => Ok(advice(Outcome::Hold, None, reason, rules)),
    }
}

/// An integral result stays an integer (`4`, not `4.0000000001` from a
/// fractional step's rounding).
fn number(n: f64) -> Value {
    let rounded = (n * 1e9).round() / 1e9;
    if rounded.fract() == 0.0 && rounded.abs() < 9.0e15 { Value::from(rounded as i64) } else { Value::from(rounded) }
}
