//! `himaplan advise`: every `scaling_policy` rule evaluated over its window
//! through a [`MetricSource`] (Prometheus range queries, implemented by the
//! binary), and the proposal each policy makes. The result is plain data
//! ([`Advice`]) rendered by [`render`]; nothing here does I/O of its own.
//!
//! Rules (see docs/advise.md): a rule fires only when its condition held at
//! every evaluation of its window, at a step of `max(15s, for/10000)`; a
//! missing evaluation (a gap) is not held. A policy moves up when any up
//! rule fires (up wins over down), down when every down rule fires (one
//! indicator with room does not shrink what another still needs), and
//! never past `min`/`max` or the ends of its ladder. A rule whose query
//! returns no series makes its policy propose nothing.

mod decide;
pub mod render;

use crate::config::Config;
use crate::config::policy::{Direction, Rule, ScalingPolicy};
use crate::diag::{Diag, Diags};
use crate::value::Value;
use serde::Serialize;
use std::collections::BTreeMap;

/// One series of a range query: its labels as Prometheus prints them, and
/// its points (milliseconds since the epoch, value).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: String,
    pub points: Vec<(i64, f64)>,
}

/// Where advise reads metrics from.
#[async_trait::async_trait]
pub trait MetricSource: Send + Sync {
    /// A range query from `start_ms` to `end_ms` (both included) every
    /// `step_ms`: every series it returns (none when there is no data).
    async fn range_query(&self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> Result<Vec<Series>, String>;
}

/// What advise found: one entry per policy, in name order.
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    /// The instant evaluated (RFC 3339): the end of every window.
    pub at: String,
    pub queries: usize,
    pub policies: Vec<PolicyAdvice>,
}

impl Advice {
    /// The proposed values, by variable.
    pub fn proposals(&self) -> BTreeMap<String, Value> {
        self.policies.iter().filter_map(|p| Some((p.variable.clone(), p.proposed.clone()?))).collect()
    }

    pub fn has_changes(&self) -> bool {
        self.policies.iter().any(|p| p.proposed.is_some())
    }
}

/// One policy's evidence and proposal.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyAdvice {
    pub name: String,
    pub variable: String,
    #[serde(serialize_with = "as_json")]
    pub current: Value,
    /// The new value, when the policy proposes a change.
    #[serde(serialize_with = "as_json_opt")]
    pub proposed: Option<Value>,
    pub outcome: Outcome,
    /// Why, in one sentence: which rules fired, or what bounded the move.
    pub reason: String,
    pub rules: Vec<RuleEvidence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Up,
    Down,
    Hold,
    NoData,
}

/// One rule over its window, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct RuleEvidence {
    pub direction: Direction,
    pub id: String,
    pub query: String,
    /// `above 0.8` / `below 0.3`.
    pub condition: String,
    /// `for` as written.
    pub window: String,
    pub step_seconds: f64,
    pub evaluations: usize,
    /// Evaluations with a value meeting the condition.
    pub held: usize,
    /// Evaluations without a value (gaps).
    pub missing: usize,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The value at the last evaluation (the window's end), if any.
    pub last: Option<f64>,
    pub fired: bool,
    pub no_data: bool,
}

fn as_json<S: serde::Serializer>(v: &Value, s: S) -> Result<S::Ok, S::Error> {
    v.to_json().serialize(s)
}

fn as_json_opt<S: serde::Serializer>(v: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(Value::to_json).serialize(s)
}

/// Evaluates every policy of `config` at `at` against `source`, with the
/// variables' current values. Every query goes out at once; an
/// unreachable source, a query error or a query returning more than one
/// series is an error naming the policy, the rule and the query.
pub async fn evaluate(
    config: &Config,
    current: &BTreeMap<String, Value>,
    source: &dyn MetricSource,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Advice, Diags> {
    let policies: Vec<&ScalingPolicy> = config.root().policies.values().collect();
    let end_ms = at.timestamp_millis();
    let queries = policies.iter().flat_map(|p| p.rules.iter().map(move |r| (*p, r))).map(|(p, r)| async move {
        let start_ms = end_ms - r.window.as_millis() as i64;
        let result = source.range_query(&r.query, start_ms, end_ms, r.step_ms()).await;
        (p, r, start_ms, result)
    });
    let results = futures::future::join_all(queries).await;
    let mut diags = Diags::new();
    // The same failure of many queries (Prometheus down) is told once.
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut evidence: BTreeMap<&str, Vec<RuleEvidence>> = BTreeMap::new();
    for (policy, rule, start_ms, result) in results {
        let failed = |why: String| {
            Diag::error(format!("scaling_policy {:?}, {} rule {:?}: {why}", policy.name, rule.direction.as_str(), rule.id))
                .at(rule.location.clone())
                .with_detail(format!("query: {}", rule.query))
        };
        match result {
            Err(why) => {
                let seen = failures.entry(why.clone()).or_default();
                *seen += 1;
                if *seen == 1 {
                    diags.push(failed(why));
                }
            }
            Ok(series) if series.len() > 1 => diags.push(
                failed(format!(
                    "the query returned {} series, it must return exactly one (first two: {}, {})",
                    series.len(),
                    series[0].labels,
                    series[1].labels
                ))
                .with_detail(format!(
                    "query: {}\nAggregate it, e.g. avg(...) or sum(...), or select one series by its labels.",
                    rule.query
                )),
            ),
            Ok(series) => evidence.entry(policy.name.as_str()).or_default().push(summarise(rule, start_ms, series.into_iter().next())),
        }
    }
    let repeated: usize = failures.values().map(|n| n - 1).sum();
    if repeated > 0 {
        diags.push(Diag::error(format!("{repeated} more quer{} failed the same way", if repeated == 1 { "y" } else { "ies" })));
    }
    diags.into_result()?;
    let mut out = Vec::new();
    for policy in policies {
        let now = current.get(&policy.variable).map(Value::deep_unmarked).unwrap_or(Value::Null);
        let rules = evidence.remove(policy.name.as_str()).unwrap_or_default();
        out.push(decide::decide(policy, now, rules)?);
    }
    let queries = out.iter().map(|p| p.rules.len()).sum();
    Ok(Advice { at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), queries, policies: out })
}

/// Counts, per expected evaluation instant, whether the series had a value
/// there that met the condition.
fn summarise(rule: &Rule, start_ms: i64, series: Option<Series>) -> RuleEvidence {
    let evaluations = rule.evaluations();
    let step = rule.step_ms();
    let points: BTreeMap<i64, f64> = series.as_ref().map(|s| s.points.iter().copied().collect()).unwrap_or_default();
    let mut held = 0;
    let mut missing = 0;
    let (mut min, mut max, mut last) = (None::<f64>, None::<f64>, None);
    for k in 0..evaluations as i64 {
        let t = start_ms + k * step;
        last = points.get(&t).copied();
        match last {
            None => missing += 1,
            Some(v) => {
                if rule.threshold.holds(v) {
                    held += 1;
                }
                if !v.is_nan() {
                    min = Some(min.map_or(v, |m| m.min(v)));
                    max = Some(max.map_or(v, |m| m.max(v)));
                }
            }
        }
    }
    let no_data = series.is_none() || missing == evaluations;
    RuleEvidence {
        direction: rule.direction,
        id: rule.id.clone(),
        query: rule.query.clone(),
        condition: rule.threshold.to_string(),
        window: rule.window_text.clone(),
        step_seconds: step as f64 / 1000.0,
        evaluations,
        held,
        missing,
        min,
        max,
        last,
        fired: held == evaluations,
        no_data,
    }
}

#[cfg(test)]
mod tests;
