//! The rules of evaluation against an in-test metric source: gaps and NaN
//! are not held, up wins over down, a scale-down needs every down rule,
//! and a query must return exactly one series.

use super::*;
use crate::config::load::load_snapshot;
use std::sync::Mutex;

/// The queries a [`Fake`] was asked: (query, start, end, step).
type Asked = Vec<(String, i64, i64, i64)>;

/// Answers each query with the series it was given (by query text), and
/// records what it was asked.
struct Fake {
    answers: BTreeMap<String, Vec<Series>>,
    asked: Mutex<Asked>,
}

#[async_trait::async_trait]
impl MetricSource for Fake {
    async fn range_query(&self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> Result<Vec<Series>, String> {
        self.asked.lock().unwrap().push((query.to_string(), start_ms, end_ms, step_ms));
        Ok(self.answers.get(query).cloned().unwrap_or_default())
    }
}

const AT: i64 = 1_793_577_600_000;

fn config() -> Config {
    let hcl = r#"
variable "n" {
  type    = number
  default = 4
}
scaling_policy "n" {
  variable = "n"
  min      = 1
  max      = 9
  up "hot" {
    query = "hot"
    above = 0.8
    for   = "5m"
  }
  down "cold" {
    query = "cold"
    below = 0.3
    for   = "5m"
  }
  down "idle" {
    query = "idle"
    below = 10
    for   = "5m"
  }
}
"#;
    let sources = BTreeMap::from([(".".to_string(), vec![("main.hcl".to_string(), hcl.to_string())])]);
    load_snapshot(std::path::Path::new("."), &sources, Default::default()).expect("config loads")
}

/// 21 evaluations of a 5-minute window ending at AT.
fn series(value: impl Fn(i64) -> Option<f64>) -> Vec<Series> {
    let points = (0..21).filter_map(|k| value(k).map(|v| (AT - 300_000 + k * 15_000, v))).collect();
    vec![Series { labels: "{}".into(), points }]
}

fn run(hot: Vec<Series>, cold: Vec<Series>, idle: Vec<Series>) -> Result<(Advice, Asked), Diags> {
    let fake = Fake {
        answers: BTreeMap::from([("hot".into(), hot), ("cold".into(), cold), ("idle".into(), idle)]),
        asked: Mutex::new(Vec::new()),
    };
    let current = BTreeMap::from([("n".to_string(), Value::from(4i64))]);
    let at = chrono::DateTime::from_timestamp_millis(AT).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let advice = rt.block_on(evaluate(&config(), &current, &fake, at))?;
    Ok((advice, fake.asked.into_inner().unwrap()))
}

#[test]
fn asks_each_window_at_its_step_and_fires_only_when_every_evaluation_held() {
    let (advice, asked) = run(series(|_| Some(0.9)), series(|_| Some(0.5)), series(|_| Some(50.0))).unwrap();
    assert_eq!(asked.len(), 3);
    assert!(asked.iter().all(|(_, start, end, step)| (*start, *end, *step) == (AT - 300_000, AT, 15_000)), "{asked:?}");
    let p = &advice.policies[0];
    assert_eq!((p.outcome, p.proposed.clone()), (Outcome::Up, Some(Value::from(5i64))));
    assert_eq!((p.rules[0].held, p.rules[0].evaluations, p.rules[0].fired), (21, 21, true));
}

#[test]
fn a_gap_in_the_window_is_not_held() {
    let (advice, _) = run(series(|k| (k != 10).then_some(0.9)), series(|_| Some(0.5)), series(|_| Some(50.0))).unwrap();
    let r = &advice.policies[0].rules[0];
    assert_eq!((r.held, r.missing, r.fired), (20, 1, false));
    assert_eq!(advice.policies[0].outcome, Outcome::Hold);
}

#[test]
fn nan_is_not_held() {
    let (advice, _) = run(series(|k| Some(if k == 3 { f64::NAN } else { 0.9 })), series(|_| Some(0.5)), series(|_| Some(50.0))).unwrap();
    assert_eq!((advice.policies[0].rules[0].held, advice.policies[0].outcome), (20, Outcome::Hold));
}

#[test]
fn scale_up_wins_over_scale_down() {
    let (advice, _) = run(series(|_| Some(0.9)), series(|_| Some(0.1)), series(|_| Some(1.0))).unwrap();
    let p = &advice.policies[0];
    assert_eq!((p.outcome, p.proposed.clone()), (Outcome::Up, Some(Value::from(5i64))));
    assert!(p.reason.contains("scale-up wins over down \"cold\", down \"idle\""), "{}", p.reason);
}

#[test]
fn a_scale_down_needs_every_down_rule() {
    let (advice, _) = run(series(|_| Some(0.5)), series(|_| Some(0.1)), series(|_| Some(50.0))).unwrap();
    assert_eq!(advice.policies[0].outcome, Outcome::Hold);
    let (advice, _) = run(series(|_| Some(0.5)), series(|_| Some(0.1)), series(|_| Some(1.0))).unwrap();
    assert_eq!((advice.policies[0].outcome, advice.policies[0].proposed.clone()), (Outcome::Down, Some(Value::from(3i64))));
}

#[test]
fn a_query_with_two_series_is_an_error_naming_policy_rule_and_query() {
    let mut two = series(|_| Some(0.9));
    two.push(Series { labels: "{instance=\"b\"}".into(), points: vec![] });
    let err = run(two, series(|_| Some(0.5)), series(|_| Some(50.0))).unwrap_err().to_string();
    assert!(err.contains("scaling_policy \"n\", up rule \"hot\": the query returned 2 series") && err.contains("query: hot"), "{err}");
}
