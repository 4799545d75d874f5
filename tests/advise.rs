//! `himaplan advise` against a real Prometheus: each test writes a history
//! with known shapes, loads it with the real `promtool` and starts
//! Prometheus on loopback (tests/support/prometheus.rs), then runs advise
//! `--at` instants inside that past.
//!
//! The per-indicator tests run the Himalytix example's own policies
//! (`examples/himalytix/scaling.hcl`) beside a stand-in for the variables
//! they drive (same names and defaults, recorded by a `himaplan_data`), so
//! the plan of a proposal needs no other server. Every indicator of the
//! runbook's two tables gets four histories: the condition held at every
//! evaluation of the window (→ the proposal), at all but one (→ hold),
//! flapping (→ hold), and no data (→ says so, proposes nothing).
//!
//! How the histories meet the evaluations: advise evaluates a rule at
//! `at - for + i * step` for `i = 0..=for/step`, step `max(15s, for/10000)`.
//! Gauges are sampled exactly there, so evaluation `i` sees sample `i`.
//! Counters (CPU, request histogram) are sampled on the same grid and
//! queried through `rate(...[5m])`: evaluation `i` sees the mean rate of
//! the 20 intervals (of 15 s) ending at sample `i`, so interval `-19` is
//! seen by evaluation 0 alone — that is where "all but one" puts its odd
//! interval.

#[path = "support/docker.rs"]
mod docker;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/prometheus.rs"]
mod prometheus;
mod support;

use prometheus::{History, Prometheus};
use serde_json::Value as Json;
use support::{Run, TestDir};

const SCALING: &str = include_str!("../examples/himalytix/scaling.hcl");

/// The variables the example's policies drive, with the example's
/// defaults, recorded so that a plan shows a proposal as a change.
const STAND_IN: &str = r#"variable "web_count" {
  type    = number
  default = 3
}

variable "web_instance_type" {
  type    = string
  default = "t3.small"
}

variable "celery_replicas" {
  type    = number
  default = 6
}

variable "pgbouncer_default_pool_size" {
  type    = number
  default = 25
}

resource "himaplan_data" "sizes" {
  input = {
    web_count         = var.web_count
    web_instance_type = var.web_instance_type
    celery_replicas   = var.celery_replicas
    pool_size         = var.pgbouncer_default_pool_size
  }
}
"#;

/// 2026-11-02T00:00:00Z: the histories' first instant, in milliseconds.
const BASE: i64 = 1_793_577_600_000;
const STEP: i64 = 15_000;
const HOUR: i64 = 3_600_000;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).expect("instant").to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The example's policies and the stand-in, applied once (so plans show
/// proposals as in-place updates).
fn example_dir() -> TestDir {
    let dir = TestDir::with_files(&[("scaling.hcl", SCALING), ("main.hcl", STAND_IN)]);
    dir.ok(&["apply", "--auto-approve"]);
    dir
}

fn advise(dir: &TestDir, prom: &Prometheus, at: i64, extra: &[&str]) -> Run {
    let at = rfc3339(at);
    let mut args = vec!["advise", "--at", at.as_str()];
    args.extend_from_slice(extra);
    dir.run_with(&args, &[("HIMAPLAN_PROMETHEUS_URL", prom.url.as_str())], None)
}

/// advise's JSON for `at`, exit code 0.
fn advice(dir: &TestDir, prom: &Prometheus, at: i64, extra: &[&str]) -> Json {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let run = advise(dir, prom, at, &args);
    run.assert_code(0);
    run.json()
}

fn policy<'a>(advice: &'a Json, name: &str) -> &'a Json {
    advice["policies"].as_array().expect("policies").iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no policy {name}"))
}

fn rule<'a>(policy: &'a Json, direction: &str, id: &str) -> &'a Json {
    policy["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["direction"] == direction && r["id"] == id)
        .unwrap_or_else(|| panic!("no {direction} rule {id} in {policy}"))
}

/// A number of the evidence, equal to `want` up to float rounding.
fn assert_near(got: &Json, want: f64) {
    let v = got.as_f64().unwrap_or_else(|| panic!("{got} is not a number"));
    assert!((v - want).abs() < 1e-9, "{v} != {want}");
}

/// What the four histories of one indicator must give.
struct Expect<'a> {
    policy: &'a str,
    direction: &'a str,
    id: &'a str,
    evaluations: u64,
    /// The proposal when the condition held throughout.
    proposed: Json,
}

/// Checks the four scenarios of one indicator at their instants.
fn check_four(dir: &TestDir, prom: &Prometheus, ats: [i64; 4], e: &Expect<'_>, extra: &[&str]) {
    let [whole, all_but_one, flapping, no_data] = ats;
    let a = advice(dir, prom, whole, extra);
    let p = policy(&a, e.policy);
    let r = rule(p, e.direction, e.id);
    assert_eq!(r["evaluations"], e.evaluations, "{r}");
    assert_eq!((r["held"].as_u64(), r["fired"].as_bool()), (Some(e.evaluations), Some(true)), "held throughout: {p}");
    assert_eq!(p["proposed"], e.proposed, "held throughout → the proposal: {p}");
    assert!(p["reason"].as_str().unwrap().contains(&format!("{} \"{}\" fired", e.direction, e.id)), "{p}");

    let a = advice(dir, prom, all_but_one, extra);
    let p = policy(&a, e.policy);
    let r = rule(p, e.direction, e.id);
    assert_eq!((r["held"].as_u64(), r["fired"].as_bool()), (Some(e.evaluations - 1), Some(false)), "all but one: {p}");
    assert_eq!((&p["proposed"], &p["outcome"]), (&Json::Null, &Json::from("hold")), "all but one → hold: {p}");

    let a = advice(dir, prom, flapping, extra);
    let p = policy(&a, e.policy);
    let r = rule(p, e.direction, e.id);
    let held = r["held"].as_u64().unwrap();
    assert!(held > 0 && held < e.evaluations && r["fired"] == false, "flapping: some evaluations held, not all: {p}");
    assert_eq!(p["proposed"], Json::Null, "flapping → hold: {p}");

    let a = advice(dir, prom, no_data, extra);
    let p = policy(&a, e.policy);
    let r = rule(p, e.direction, e.id);
    assert_eq!((r["no_data"].as_bool(), &p["outcome"], &p["proposed"]), (Some(true), &Json::from("no_data"), &Json::Null), "{p}");
    let reason = p["reason"].as_str().unwrap();
    assert!(reason.starts_with("no data for ") && reason.contains(&format!("{} \"{}\"", e.direction, e.id)), "{p}");
}

/// Four instants three hours apart: each scenario of a short-window
/// indicator has its own slot, far enough from the others (beyond the
/// 5-minute lookback) that no sample of one is seen from another.
fn slots() -> [i64; 4] {
    [BASE + 3 * HOUR, BASE + 6 * HOUR, BASE + 9 * HOUR, BASE + 12 * HOUR]
}

/// Sample indices of a slot: 40 before the window's start (the rate
/// range and lookback) to the last evaluation.
fn span(evaluations: i64) -> std::ops::Range<i64> {
    -40..evaluations
}

const CPU: &str = "container_cpu_usage_seconds_total";
const WEB: &str = r#"service="web""#;
const BUCKET: &str = "django_http_request_duration_seconds_bucket";
const LE: [&str; 5] = ["0.25", "0.5", "1", "2.5", "+Inf"];

/// Requests per second by kind over the interval ending at sample `i`:
/// fast ones (0.25–0.5 s) and slow ones (1–2.5 s), as cumulative buckets.
fn requests(h: &mut History, start: i64, ks: std::ops::Range<i64>, rates: impl Fn(i64) -> (f64, f64)) {
    for le in LE {
        let labels = format!(r#"le="{le}""#);
        let bound: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap() };
        h.counter(BUCKET, &labels, start, STEP, ks.clone(), |i| {
            let (fast, slow) = rates(i);
            (if bound >= 0.5 { fast } else { 0.0 }) + (if bound >= 2.5 { slow } else { 0.0 })
        });
    }
}

/// Neutral data of the web tier around `at`: CPU at 50 %, fast requests.
fn web_neutral(h: &mut History, at: i64, cpu: bool, latency: bool) {
    let start = at - 20 * STEP;
    if cpu {
        h.counter(CPU, WEB, start, STEP, span(21), |_| 0.5);
    }
    if latency {
        requests(h, start, span(21), |_| (10.0, 0.0));
    }
}

/// Memory use of the web containers as a share of their limit.
fn memory(h: &mut History, start: i64, step: i64, ks: std::ops::Range<i64>, share: impl Fn(i64) -> Option<f64>) {
    h.gauge("container_spec_memory_limit_bytes", WEB, start, step, ks.clone(), |i| share(i).map(|_| 1e9));
    h.gauge("container_memory_working_set_bytes", WEB, start, step, ks, |i| share(i).map(|s| s * 1e9));
}

// ---------------------------------------------------------------------------
// The up table

/// CPU above 80 % for 5 minutes → one more web instance (3 → 4).
#[test]
fn cpu_above_80_percent_for_5_minutes_adds_a_web_instance() {
    let [whole, one, flap, none] = slots();
    let mut h = History::new();
    for at in [whole, one, flap, none] {
        web_neutral(&mut h, at, false, true);
    }
    let window = |at: i64| at - 20 * STEP;
    h.counter(CPU, WEB, window(whole), STEP, span(21), |_| 0.9);
    // 0.81 everywhere, but nothing in interval -19: evaluation 0 sees
    // 0.81 * 19/20 = 0.7695.
    h.counter(CPU, WEB, window(one), STEP, span(21), |i| if i == -19 { 0.0 } else { 0.81 });
    // 1.0, with 0.5 over intervals 5..45: from evaluation 12 on, the
    // 5-minute mean is at most 0.8.
    h.counter(CPU, WEB, window(flap), STEP, span(21), |i| if (5..45).contains(&i) { 0.5 } else { 1.0 });
    let Some(prom) = Prometheus::start("cpu-up", &h) else { return };
    let dir = example_dir();
    let e = Expect { policy: "web_count", direction: "up", id: "cpu", evaluations: 21, proposed: Json::from(4) };
    check_four(&dir, &prom, [whole, one, flap, none], &e, &[]);
    let a = advice(&dir, &prom, one, &[]);
    assert_near(&rule(policy(&a, "web_count"), "up", "cpu")["min"], 0.81 * 19.0 / 20.0);

    // max is respected: at 10 the same evidence proposes nothing, and says so.
    let a = advice(&dir, &prom, whole, &["--var", "web_count=10"]);
    let p = policy(&a, "web_count");
    assert_eq!(p["proposed"], Json::Null, "{p}");
    assert!(p["reason"].as_str().unwrap().contains("already at max 10"), "{p}");
    let a = advice(&dir, &prom, whole, &["--var", "web_count=10", "--detailed-exitcode"]);
    assert_eq!(a["policies"].as_array().unwrap().iter().filter(|p| !p["proposed"].is_null()).count(), 0);
}

/// p95 above 1 s for 5 minutes → one more web instance.
#[test]
fn p95_latency_above_1_second_for_5_minutes_adds_a_web_instance() {
    let [whole, one, flap, none] = slots();
    let mut h = History::new();
    for at in [whole, one, flap, none] {
        web_neutral(&mut h, at, true, false);
    }
    let window = |at: i64| at - 20 * STEP;
    // All slow: p95 = 1 + 1.5 * 0.95 = 2.425 s.
    requests(&mut h, window(whole), span(21), |_| (0.0, 10.0));
    // A burst of 4,000 fast requests/s in interval -19 alone: evaluation 0
    // sees 95 % fast requests, so its p95 is below 0.5 s.
    requests(&mut h, window(one), span(21), |i| if i == -19 { (4000.0, 0.0) } else { (0.0, 10.0) });
    // Fast only over intervals -10..30: evaluations 9..20 see no slow request.
    requests(&mut h, window(flap), span(21), |i| if (-10..30).contains(&i) { (10.0, 0.0) } else { (0.0, 10.0) });
    let Some(prom) = Prometheus::start("p95-up", &h) else { return };
    let dir = example_dir();
    let e = Expect { policy: "web_count", direction: "up", id: "latency_p95", evaluations: 21, proposed: Json::from(4) };
    check_four(&dir, &prom, [whole, one, flap, none], &e, &[]);
    let a = advice(&dir, &prom, whole, &[]);
    assert_near(&rule(policy(&a, "web_count"), "up", "latency_p95")["last"], 1.0 + 1.5 * 0.95);
}

/// Memory above 85 % for 5 minutes → the next bigger type; the ladder
/// stops at its top.
#[test]
fn memory_above_85_percent_moves_up_the_instance_type_ladder_and_stops_at_the_top() {
    let [whole, one, flap, none] = slots();
    let mut h = History::new();
    for at in [whole, one, flap, none] {
        web_neutral(&mut h, at, true, true);
    }
    let window = |at: i64| at - 20 * STEP;
    memory(&mut h, window(whole), STEP, span(21), |_| Some(0.9));
    memory(&mut h, window(one), STEP, span(21), |i| Some(if i == 0 { 0.8 } else { 0.9 }));
    memory(&mut h, window(flap), STEP, span(21), |i| Some(if i.rem_euclid(6) < 3 { 0.9 } else { 0.7 }));
    let Some(prom) = Prometheus::start("memory-up", &h) else { return };
    let dir = example_dir();
    let e = Expect { policy: "web_instance_type", direction: "up", id: "memory", evaluations: 21, proposed: Json::from("t3.medium") };
    check_four(&dir, &prom, [whole, one, flap, none], &e, &[]);
    let a = advice(&dir, &prom, whole, &["--var", "web_instance_type=t3.large"]);
    assert_eq!(policy(&a, "web_instance_type")["proposed"], "t3.xlarge");
    let a = advice(&dir, &prom, whole, &["--var", "web_instance_type=t3.xlarge"]);
    let p = policy(&a, "web_instance_type");
    assert_eq!(p["proposed"], Json::Null, "{p}");
    assert!(p["reason"].as_str().unwrap().contains("already at the top of the ladder"), "{p}");
}

/// Database connections above 80 % of max_connections → 5 more per pool.
#[test]
fn database_connections_above_80_percent_of_the_maximum_grow_the_pool() {
    let [whole, one, flap, none] = slots();
    let mut h = History::new();
    let backends = |h: &mut History, at: i64, used: &dyn Fn(i64) -> Option<f64>| {
        h.gauge("pg_stat_database_numbackends", r#"datname="appdb""#, at - 20 * STEP, STEP, span(21), |i| used(i).map(|u| u - 5.0));
        h.gauge("pg_stat_database_numbackends", r#"datname="postgres""#, at - 20 * STEP, STEP, span(21), |i| used(i).map(|_| 5.0));
    };
    for at in [whole, one, flap, none] {
        h.gauge("pg_settings_max_connections", "", at - 20 * STEP, STEP, span(21), |_| Some(100.0));
    }
    backends(&mut h, whole, &|_| Some(90.0));
    backends(&mut h, one, &|i| Some(if i == 0 { 75.0 } else { 90.0 }));
    backends(&mut h, flap, &|i| Some(if i.rem_euclid(6) < 3 { 90.0 } else { 70.0 }));
    let Some(prom) = Prometheus::start("connections-up", &h) else { return };
    let dir = example_dir();
    let e = Expect { policy: "pgbouncer_pool_size", direction: "up", id: "connections", evaluations: 21, proposed: Json::from(30) };
    check_four(&dir, &prom, [whole, one, flap, none], &e, &[]);
    // max 80 caps the step: 78 + 5 → 80, and says so.
    let a = advice(&dir, &prom, whole, &["--var", "pgbouncer_default_pool_size=78"]);
    let p = policy(&a, "pgbouncer_pool_size");
    assert_eq!(p["proposed"], 80);
    assert!(p["reason"].as_str().unwrap().contains("capped at max 80"), "{p}");
}

/// More than 1,000 queued tasks for 5 minutes → a quarter more Celery
/// workers (the step is an expression of `current`).
#[test]
fn celery_queue_above_1000_tasks_adds_workers() {
    let [whole, one, flap, none] = slots();
    let mut h = History::new();
    let queue = |h: &mut History, at: i64, f: &dyn Fn(i64) -> f64| {
        h.gauge("redis_list_length", r#"list="celery""#, at - 20 * STEP, STEP, span(21), |i| Some(f(i)));
    };
    queue(&mut h, whole, &|_| 1500.0);
    queue(&mut h, one, &|i| if i == 0 { 900.0 } else { 1500.0 });
    queue(&mut h, flap, &|i| if i.rem_euclid(6) < 3 { 1500.0 } else { 800.0 });
    let Some(prom) = Prometheus::start("queue-up", &h) else { return };
    let dir = example_dir();
    let e = Expect { policy: "celery_replicas", direction: "up", id: "queue", evaluations: 21, proposed: Json::from(7) };
    check_four(&dir, &prom, [whole, one, flap, none], &e, &[]);
    let a = advice(&dir, &prom, whole, &["--var", "celery_replicas=12"]);
    assert_eq!(policy(&a, "celery_replicas")["proposed"], 15, "12 + floor(12 / 4)");
}

// ---------------------------------------------------------------------------
// The down table

/// Fewer than 100 queued tasks for an hour → fewer Celery workers.
#[test]
fn celery_queue_below_100_tasks_for_an_hour_removes_workers() {
    let [whole, one, flap, none] = slots();
    let n = 241; // 1h at 15 s, both ends
    let mut h = History::new();
    let queue = |h: &mut History, at: i64, f: &dyn Fn(i64) -> f64| {
        h.gauge("redis_list_length", r#"list="celery""#, at - (n - 1) * STEP, STEP, span(n), |i| Some(f(i)));
    };
    queue(&mut h, whole, &|_| 50.0);
    queue(&mut h, one, &|i| if i == 0 { 150.0 } else { 50.0 });
    queue(&mut h, flap, &|i| if i.rem_euclid(40) < 30 { 50.0 } else { 150.0 });
    let Some(prom) = Prometheus::start("queue-down", &h) else { return };
    let dir = example_dir();
    let e = Expect { policy: "celery_replicas", direction: "down", id: "queue", evaluations: n as u64, proposed: Json::from(5) };
    check_four(&dir, &prom, [whole, one, flap, none], &e, &[]);
    // min 2 is respected and said.
    let a = advice(&dir, &prom, whole, &["--var", "celery_replicas=2"]);
    let p = policy(&a, "celery_replicas");
    assert_eq!(p["proposed"], Json::Null);
    assert!(p["reason"].as_str().unwrap().contains("already at min 2"), "{p}");
}

/// CPU below 30 % for 24 hours → one fewer web instance (3 → 2), never
/// below min 2.
#[test]
fn cpu_below_30_percent_for_24_hours_removes_a_web_instance() {
    let n: i64 = 5_761; // 24h at 15 s
    let whole = BASE + 25 * HOUR;
    let start = whole - (n - 1) * STEP;
    // The all-but-one window is the same grid one step earlier: its
    // evaluation 0 is index -1, which alone sees interval -20.
    let one = whole - STEP;
    let flap = whole + HOUR;
    let none = whole + 31 * HOUR;
    let mut h = History::new();
    let flapping = n + 240;
    h.counter(CPU, WEB, start, STEP, -41..flapping, |i| match i {
        -20 => 2.67,
        i if i >= n && (i / 20) % 2 == 0 => 0.6,
        _ => 0.2,
    });
    requests(&mut h, whole - 40 * STEP, -40..(flap - whole) / STEP + 41, |_| (10.0, 0.0));
    web_neutral(&mut h, none, false, true);
    let Some(prom) = Prometheus::start("cpu-down", &h) else { return };
    let dir = example_dir();
    let e = Expect { policy: "web_count", direction: "down", id: "cpu", evaluations: n as u64, proposed: Json::from(2) };
    check_four(&dir, &prom, [whole, one, flap, none], &e, &[]);
    let a = advice(&dir, &prom, whole, &["--var", "web_count=2"]);
    let p = policy(&a, "web_count");
    assert_eq!(p["proposed"], Json::Null);
    assert!(p["reason"].as_str().unwrap().contains("already at min 2"), "{p}");
}

/// Right-sizing: memory below 40 % and CPU below 30 % over 7 days → one
/// type smaller; each alone is not enough; the ladder stops at its bottom.
#[test]
fn memory_and_cpu_low_for_7_days_move_down_the_instance_type_ladder_and_stop_at_the_bottom() {
    let step: i64 = 60_480; // 168h / 10000
    let n: i64 = 10_001;
    let whole = BASE + 170 * HOUR;
    let start = whole - (n - 1) * step;
    // Memory's odd evaluation is index -1 (first of the window one step
    // earlier); CPU's is index n (last of the window one step later).
    let memory_one = whole - step;
    let cpu_one = whole + step;
    let flap = whole + 60 * step;
    // A week apart, so neither no-data window sees the other's few minutes.
    let memory_none = whole + 8 * 24 * HOUR;
    let cpu_none = memory_none + 8 * 24 * HOUR;
    let mut h = History::new();
    memory(&mut h, start, step, -10..n + 61, |i| {
        Some(match i {
            -1 => 0.5,
            i if i > n && (i / 3) % 2 == 0 => 0.5,
            _ => 0.3,
        })
    });
    h.counter(CPU, WEB, start, step, -10..n + 61, |i| match i {
        i if i == n => 1.0,
        i if i > n && (i / 5) % 2 == 0 => 0.6,
        _ => 0.2,
    });
    // No memory series near memory_none, no CPU series near cpu_none;
    // the other one is there (a few minutes of it, so not "no data").
    h.counter(CPU, WEB, memory_none - 20 * step, step, 0..21, |_| 0.2);
    memory(&mut h, cpu_none - 20 * step, step, 0..21, |_| Some(0.3));
    let Some(prom) = Prometheus::start("right-sizing", &h) else { return };
    let dir = example_dir();
    let large = ["--var", "web_instance_type=t3.large"];

    let a = advice(&dir, &prom, whole, &large);
    let p = policy(&a, "web_instance_type");
    assert_eq!(p["proposed"], "t3.medium", "{p}");
    for id in ["memory", "cpu"] {
        let r = rule(p, "down", id);
        assert_eq!(
            (r["evaluations"].as_u64(), r["held"].as_u64(), r["step_seconds"].as_f64()),
            (Some(10_001), Some(10_001), Some(60.48)),
            "{r}"
        );
    }

    // All but one evaluation of either rule: hold (each alone is not enough).
    for (at, odd) in [(memory_one, "memory"), (cpu_one, "cpu")] {
        let a = advice(&dir, &prom, at, &large);
        let p = policy(&a, "web_instance_type");
        assert_eq!(p["proposed"], Json::Null, "{p}");
        assert_eq!(rule(p, "down", odd)["held"], 10_000, "{p}");
        let other = if odd == "memory" { "cpu" } else { "memory" };
        assert_eq!(rule(p, "down", other)["fired"], true, "{p}");
        assert!(p["reason"].as_str().unwrap().contains("needs every down rule"), "{p}");
    }

    let a = advice(&dir, &prom, flap, &large);
    let p = policy(&a, "web_instance_type");
    assert_eq!(p["proposed"], Json::Null, "{p}");
    for id in ["memory", "cpu"] {
        let held = rule(p, "down", id)["held"].as_u64().unwrap();
        assert!(held > 9_900 && held < 10_001, "flapping {id}: {p}");
    }

    for (at, missing) in [(memory_none, "memory"), (cpu_none, "cpu")] {
        let a = advice(&dir, &prom, at, &large);
        let p = policy(&a, "web_instance_type");
        assert_eq!((&p["outcome"], &p["proposed"]), (&Json::from("no_data"), &Json::Null), "{p}");
        assert!(p["reason"].as_str().unwrap().contains(&format!("down \"{missing}\"")), "{p}");
        assert_eq!(rule(p, "down", missing)["no_data"], true);
    }

    // The bottom of the ladder: t3.small stays.
    let a = advice(&dir, &prom, whole, &[]);
    let p = policy(&a, "web_instance_type");
    assert_eq!(p["proposed"], Json::Null);
    assert!(p["reason"].as_str().unwrap().contains("already at the bottom of the ladder"), "{p}");
}

// ---------------------------------------------------------------------------
// Output, --write, and what reads it

/// A history where web CPU held above 80 % for the 5 minutes before
/// `whole`, everything else neutral: the proposal web_count 3 → 4.
fn cpu_high(whole: i64) -> History {
    let mut h = History::new();
    web_neutral(&mut h, whole, false, true);
    h.counter(CPU, WEB, whole - 20 * STEP, STEP, span(21), |_| 0.9);
    memory(&mut h, whole - 20 * STEP, STEP, span(21), |_| Some(0.6));
    h.gauge("redis_list_length", r#"list="celery""#, whole - 20 * STEP, STEP, span(21), |_| Some(500.0));
    h.gauge("pg_stat_database_numbackends", r#"datname="appdb""#, whole - 20 * STEP, STEP, span(21), |_| Some(40.0));
    h.gauge("pg_settings_max_connections", "", whole - 20 * STEP, STEP, span(21), |_| Some(100.0));
    h
}

/// The markdown a pull request's body gets: the summary table, the
/// evidence, then the plan of the proposed values in plan's own markdown.
#[test]
fn markdown_output_for_a_pull_request_body() {
    let whole = BASE + 3 * HOUR;
    let Some(prom) = Prometheus::start("markdown", &cpu_high(whole)) else { return };
    let dir = example_dir();
    let run = advise(&dir, &prom, whole, &["--format", "markdown", "--detailed-exitcode"]);
    run.assert_code(2);
    // The record's id is random per apply; the snapshot names it (id).
    let id = dir.state_attrs("himaplan_data.sizes")["id"].as_str().expect("id").to_string();
    insta::assert_snapshot!("advise_markdown", run.stdout().replace(&id, "(id)"));
}

/// `--write` puts the proposal into a variables file, keeping its
/// comments; `plan` then reads it and plans exactly what advise showed; a
/// higher-precedence source of the same variable is warned about.
#[test]
fn write_keeps_comments_and_plan_reads_what_advise_wrote() {
    let whole = BASE + 3 * HOUR;
    let Some(prom) = Prometheus::start("write", &cpu_high(whole)) else { return };
    let dir = example_dir();
    dir.write("scaling.auto.hvars", "# Scaling values, proposed by CI.\nweb_count = 3 # the EC2 web tier\n");

    let run = advise(&dir, &prom, whole, &["--write", "scaling.auto.hvars", "--detailed-exitcode"]);
    run.assert_code(2);
    assert_eq!(dir.read("scaling.auto.hvars"), "# Scaling values, proposed by CI.\nweb_count = 4 # the EC2 web tier\n");
    assert!(run.stdout().contains("var.web_count = 3 → 4"), "{}", run.stdout());
    assert!(!run.stderr().contains("Warning"), "no source overrides the file: {}", run.stderr());
    let shown = run.stdout().split("Plan of the proposed values:\n\n").nth(1).expect("the plan section").to_string();

    // plan (no Prometheus needed) reads the file and plans the same change.
    let plan = dir.run(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    assert_eq!(plan.stdout(), shown, "advise showed the plan that plan makes from the written file");
    assert!(
        plan.stdout().contains("web_count") && plan.stdout().contains("3 -> 4") || plan.stdout().contains("3 → 4"),
        "{}",
        plan.stdout()
    );

    // A value from HIMAPLAN_VAR_* wins over the file: said, and the file is still written.
    let at = rfc3339(whole);
    let run = dir.run_with(
        &["advise", "--at", &at, "--write", "scaling.auto.hvars"],
        &[("HIMAPLAN_PROMETHEUS_URL", prom.url.as_str()), ("HIMAPLAN_VAR_web_count", "4")],
        None,
    );
    run.assert_code(0);
    assert!(
        run.stderr().contains(
            "Warning: The value written for \"web_count\" to scaling.auto.hvars will not take effect: HIMAPLAN_VAR_web_count is set"
        ),
        "{}",
        run.stderr()
    );
    assert_eq!(dir.read("scaling.auto.hvars"), "# Scaling values, proposed by CI.\nweb_count = 5 # the EC2 web tier\n");

    // So does a --var-file that sets it.
    dir.write("over.hvars", "web_count = 7\n");
    let run = advise(&dir, &prom, whole, &["--write", "scaling.auto.hvars", "--var-file", "over.hvars"]);
    run.assert_code(0);
    assert!(run.stderr().contains("will not take effect: over.hvars sets it too and takes precedence"), "{}", run.stderr());
    assert_eq!(dir.read("scaling.auto.hvars"), "# Scaling values, proposed by CI.\nweb_count = 8 # the EC2 web tier\n");

    // Nothing proposed: nothing written, exit 0 even with --detailed-exitcode.
    let before = dir.read("scaling.auto.hvars");
    let run = advise(&dir, &prom, whole + 6 * HOUR, &["--write", "scaling.auto.hvars", "--detailed-exitcode"]);
    run.assert_code(0);
    assert!(run.stdout().contains("No change proposed."), "{}", run.stdout());
    assert_eq!(dir.read("scaling.auto.hvars"), before);
}

// ---------------------------------------------------------------------------
// Failures

/// An unreachable Prometheus, a query Prometheus refuses and a query with
/// two series: exit 1 naming the policy, the rule (file:line) and the
/// query; the --write file is never created.
#[test]
fn unreachable_prometheus_or_a_bad_query_exits_1_naming_policy_and_query_and_writes_nothing() {
    let whole = BASE + 3 * HOUR;
    let dir = example_dir();
    let closed = support_free_port();
    let run = dir.run_with(
        &["advise", "--at", &rfc3339(whole), "--write", "scaling.auto.hvars"],
        &[("HIMAPLAN_PROMETHEUS_URL", &format!("http://127.0.0.1:{closed}"))],
        None,
    );
    run.assert_code(1);
    let err = run.stderr();
    assert!(err.contains("Error: scaling_policy \"celery_replicas\", up rule \"queue\": Prometheus at http://127.0.0.1:"), "{err}");
    assert!(
        err.contains("is unreachable")
            && err.contains("--> scaling.hcl:")
            && err.contains("query: sum(redis_list_length{list=\"celery\"})"),
        "{err}"
    );
    assert!(run.stdout().is_empty(), "no advice printed: {}", run.stdout());
    assert!(!dir.exists("scaling.auto.hvars"));

    let mut h = cpu_high(whole);
    h.gauge("redis_list_length", r#"list="reports""#, whole - 20 * STEP, STEP, span(21), |_| Some(5.0));
    let Some(prom) = Prometheus::start("failures", &h) else { return };
    let bad = |query: &str| {
        let dir = TestDir::with_files(&[
            ("main.hcl", STAND_IN),
            (
                "policy.hcl",
                &format!(
                    "scaling_policy \"queue\" {{\n  variable = \"celery_replicas\"\n  min      = 1\n  max      = 9\n  up \"q\" {{\n    query = {}\n    above = 1\n    for   = \"5m\"\n  }}\n}}\n",
                    serde_json::to_string(query).unwrap()
                ),
            ),
        ]);
        let run = advise(&dir, &prom, whole, &["--write", "scaling.auto.hvars"]);
        run.assert_code(1);
        assert!(!dir.exists("scaling.auto.hvars"));
        run.stderr()
    };
    let err = bad("sum(rate(redis_list_length[5m])");
    assert!(err.contains("scaling_policy \"queue\", up rule \"q\": Prometheus refused the query (HTTP 400, bad_data)"), "{err}");
    assert!(err.contains("--> policy.hcl:5:3") && err.contains("query: sum(rate(redis_list_length[5m])"), "{err}");
    let err = bad("redis_list_length");
    assert!(err.contains("the query returned 2 series, it must return exactly one"), "{err}");
    assert!(err.contains("query: redis_list_length"), "{err}");
}

fn support_free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Bad policies fail `validate` (offline, no Prometheus) with file and
/// line; `plan` ignores policies and needs no Prometheus.
#[test]
fn bad_policies_fail_validate_with_file_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "scaling_policy \"p\" {\n  variable = \"web_cuont\"\n  min = 1\n  max = 3\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:2:3",
            "unknown variable \"web_cuont\"",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_count\"\n  ladder   = [\"a\", \"b\"]\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:2:3",
            "variable \"web_count\" must be a string",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_instance_type\"\n  ladder   = [\"t3.medium\", \"t3.large\"]\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:3:3",
            "the ladder does not hold the current value \"t3.small\"",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_count\"\n  min = 1\n  max = 3\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5 minutes\"\n  }\n}\n",
            "policy.hcl:8:11",
            "Invalid duration",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_instance_type\"\n  ladder   = [\"t3.small\"]\n  step     = 1\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:4:3",
            "step and ladder are exclusive",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_count\"\n  min = 1\n  max = 3\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\nscaling_policy \"q\" {\n  variable = \"web_count\"\n  min = 1\n  max = 3\n  down \"a\" {\n    query = \"up\"\n    below = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:12:3",
            "Two scaling policies drive variable \"web_count\"",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_count\"\n  min = 5\n  max = 3\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:3:3",
            "min is greater than max",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_count\"\n  min = 1\n  max = 3\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    below = 2\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:5:3",
            "needs exactly one of above or below",
        ),
        (
            "scaling_policy \"p\" {\n  variable = \"web_count\"\n  min = 1\n  max = 3\n  step = current - 3\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:5:10",
            "step must give a positive number, got 0 for current = 3",
        ),
        ("scaling_policy \"p\" {\n  variable = \"web_count\"\n  min = 1\n  max = 3\n}\n", "policy.hcl:1:1", "has no up or down rule"),
        (
            "variable \"secret\" {\n  type      = number\n  default   = 1\n  sensitive = true\n}\nscaling_policy \"p\" {\n  variable = \"secret\"\n  min = 1\n  max = 3\n  up \"a\" {\n    query = \"up\"\n    above = 1\n    for = \"5m\"\n  }\n}\n",
            "policy.hcl:7:3",
            "variable \"secret\" is sensitive",
        ),
        (
            "provider \"prometheus\" {\n  address = \"http://127.0.0.1:9090\"\n}\n",
            "policy.hcl:2:3",
            "Unsupported argument \"address\" in provider \"prometheus\"",
        ),
    ];
    for (policy, at, message) in cases {
        let dir = TestDir::with_files(&[("main.hcl", STAND_IN), ("policy.hcl", policy)]);
        let run = dir.run(&["validate"]);
        run.assert_code(1);
        let err = run.stderr();
        assert!(err.contains(message) && err.contains(&format!("--> {at}")), "expected {message:?} at {at}:\n{err}");
        let run = dir.run_with(&["advise"], &[("HIMAPLAN_PROMETHEUS_URL", "http://127.0.0.1:9")], None);
        run.assert_code(1);
        assert!(run.stderr().contains(message), "advise refuses it too, before any query: {}", run.stderr());
        assert!(!run.stderr().contains("unreachable"), "{}", run.stderr());
    }

    // The example's policies are valid, and plan ignores them: no Prometheus anywhere.
    let dir = TestDir::with_files(&[("scaling.hcl", SCALING), ("main.hcl", STAND_IN)]);
    dir.ok(&["validate"]);
    let run = dir.run(&["plan", "--detailed-exitcode"]);
    run.assert_code(2);
    assert!(run.stdout().contains("Plan: 1 to add, 0 to change, 0 to destroy."), "{}", run.stdout());
}

// ---------------------------------------------------------------------------
// The whole example: advise → plan against moto (and dockerd)

/// The Himalytix example itself, applied to moto: memory above 85 % for
/// 5 minutes proposes t3.small → t3.medium, and advise shows the plan of
/// it — each web instance stopped, resized and started, one batch at a
/// time. `--write` + `plan` then plan exactly that.
#[test]
fn advise_then_plan_on_the_himalytix_example_shows_the_type_change_batches() {
    let whole = BASE + 3 * HOUR;
    let mut h = History::new();
    memory(&mut h, whole - 20 * STEP, STEP, span(21), |_| Some(0.9));
    h.counter(CPU, WEB, whole - 20 * STEP, STEP, span(21), |_| 0.5);
    let Some(prom) = Prometheus::start("himalytix", &h) else { return };
    let Some(host) = docker::daemon() else { return };
    let Some(moto) = moto::turn() else { return };

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TestDir::empty();
    for sub in ["examples/himalytix", "modules/web_tier"] {
        for entry in std::fs::read_dir(root.join(sub)).expect("read the example") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "hcl") {
                dir.write(&format!("{sub}/{}", path.file_name().unwrap().to_string_lossy()), &std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut env: Vec<(&str, String)> = moto.env();
    env.push(("DOCKER_HOST", host.to_string()));
    // Few containers: this test is about the EC2 web tier.
    env.push(("HIMAPLAN_VAR_web_replicas", "1".into()));
    env.push(("HIMAPLAN_VAR_celery_replicas", "2".into()));
    env.push(("HIMAPLAN_PROMETHEUS_URL", prom.url.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str]| support::himaplan_with(&dir.join("examples/himalytix"), args, &env, None);
    // A run that failed earlier may have left the project's containers.
    moto::block_on(docker::cleanup(&docker::client(host), "himalytix"));
    run(&["apply", "--auto-approve"]).assert_code(0);

    let at = rfc3339(whole);
    let advised = run(&["advise", "--at", &at, "--write", "scaling.auto.hvars", "--detailed-exitcode"]);
    advised.assert_code(2);
    let out = advised.stdout();
    assert!(out.contains("scaling_policy.web_instance_type: var.web_instance_type = \"t3.small\" → \"t3.medium\""), "{out}");
    assert!(out.contains("Scaling advice at 2026-11-02T03:00:00Z (9 range queries)"), "{out}");
    let shown = out.split("Plan of the proposed values:\n\n").nth(1).expect("the plan section").to_string();
    for i in 0..3 {
        assert!(shown.contains(&format!("module.web.aws_instance.this[{i}]")), "{shown}");
    }
    assert!(shown.contains("# module.web.aws_instance.this[0] will be updated in place (disruptive: stop/start)"), "{shown}");
    assert!(shown.contains("~ instance_type = \"t3.small\" -> \"t3.medium\""), "{shown}");
    for i in 0..3 {
        let batch = format!(
            "  {}. module.web.aws_instance.this batch {}/3 (max_unavailable = 1): stop/start module.web.aws_instance.this[{i}]\n",
            i + 1,
            i + 1
        );
        assert!(shown.contains(&batch), "one instance per batch, in order: {shown}");
    }
    assert!(shown.contains("Plan: 0 to add, 3 to change, 0 to destroy."), "{shown}");
    assert_eq!(
        std::fs::read_to_string(dir.join("examples/himalytix/scaling.auto.hvars")).unwrap(),
        "# Written by `himaplan advise --write`: the values its scaling policies\n# proposed. Review them in the pull request; edit or delete freely.\nweb_instance_type = \"t3.medium\"\n"
    );
    let plan = run(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    assert_eq!(plan.stdout(), shown, "plan of the written file = the plan advise showed");
    moto::block_on(docker::cleanup(&docker::client(host), "himalytix"));
}
