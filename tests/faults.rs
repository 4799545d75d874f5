//! Faults (issue 2): with the tests' fault-injecting proxy between himaplan
//! and moto — 503 and 500 errors, throttling, answers dropped after moto
//! carried the request out, slow answers — a resize-and-scale apply still
//! converges (possibly after another apply), the state is right, and no
//! address ends up with two instances. moto ignores `ClientToken`, so a
//! dropped `RunInstances` answer that the SDK retries really creates a
//! second instance: the next plan must show its deletion as a duplicate
//! and the next apply must remove it.
//!
//! Verification (plans, moto's instance list) talks to moto directly; only
//! the applies go through the proxy. The RNG is seeded; set
//! `HIMAPLAN_TEST_SEED` to replay a run.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/proxy.rs"]
mod proxy;

use fleet::{Fleet, check_converged, extras, planned_duplicate_deletes, text};
use moto::Moto;
use proxy::{Counts, Fault, FaultPlan, Proxy, seed_from_env};
use std::time::Duration;

const START: (usize, &str) = (3, "t3.small");
const TARGET: (usize, &str) = (5, "t3.medium");
/// Apply runs allowed before the fleet must have converged.
const MAX_RUNS: usize = 4;

struct Scenario {
    name: &'static str,
    faults: fn(u64) -> FaultPlan,
    /// Live duplicates the first apply must leave (deterministic faults only).
    duplicates_after_first: Option<usize>,
    /// Times the scenario runs, with seeds `seed`, `seed + 1`, ….
    repeat: u64,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        // About 20 % of EC2 requests faulted, of every kind.
        name: "random_faults_20_percent",
        faults: |seed| FaultPlan {
            seed,
            unavailable: 0.05,
            internal: 0.02,
            throttle: 0.05,
            drop: 0.05,
            slow: 0.03,
            slow_delay: Duration::from_secs(2),
            ..FaultPlan::default()
        },
        duplicates_after_first: None,
        repeat: 3,
    },
    Scenario {
        // The answers of the first two RunInstances are lost after moto ran
        // them: the SDK's retries create two extra instances.
        name: "dropped_run_instances_answers_leave_duplicates",
        faults: |seed| FaultPlan { seed, drop_first: vec![("RunInstances", 2)], ..FaultPlan::default() },
        duplicates_after_first: Some(2),
        repeat: 1,
    },
];

/// What one scenario did.
struct Outcome {
    runs: usize,
    counts: Counts,
    duplicates_seen: Vec<String>,
}

fn run_scenario(m: &Moto, sc: &Scenario, seed: u64) -> Outcome {
    m.reset();
    let fleet = Fleet::new();
    let out = fleet.run(&m.endpoint, &["apply", "--auto-approve"], START.0, START.1);
    assert!(out.status.success(), "{}: initial apply failed:\n{}", sc.name, text(&out));
    let proxy = Proxy::start(&m.endpoint, (sc.faults)(seed));

    let mut log = String::new();
    let mut duplicates_seen = Vec::new();
    for run in 1..=MAX_RUNS {
        let out = fleet.run(&proxy.endpoint, &["apply", "--auto-approve"], TARGET.0, TARGET.1);
        log.push_str(&format!("=== apply run {run} through the proxy\n{}\n", text(&out)));

        // What the run left, judged directly against moto.
        let extra = extras(&fleet, m);
        let plan = fleet.run(&m.endpoint, &["plan", "--detailed-exitcode", "--format", "json"], TARGET.0, TARGET.1);
        log.push_str(&format!("=== plan after run {run}\n{}\n", text(&plan)));
        let planned = planned_duplicate_deletes(&String::from_utf8_lossy(&plan.stdout));
        if run == 1
            && let Some(n) = sc.duplicates_after_first
        {
            assert_eq!(extra.len(), n, "{} (seed {seed}): live instances outside state after run 1:\n{log}", sc.name);
        }
        // Every extra that carries an address state holds is a duplicate:
        // the plan must delete exactly those.
        let mut expected: Vec<String> = extra
            .iter()
            .filter(|l| {
                let state = fleet.state().unwrap_or_default();
                state["resources"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|r| Some(r["address"].as_str().unwrap_or_default()) == l.address.as_deref()))
            })
            .map(|l| l.id.clone())
            .collect();
        expected.sort();
        let mut got = planned.clone();
        got.sort();
        assert_eq!(got, expected, "{} (seed {seed}): duplicate deletes planned after run {run}:\n{log}", sc.name);
        duplicates_seen.extend(planned);

        if out.status.success() && plan.status.code() == Some(0) {
            if let Err(problems) = check_converged(&fleet, m, TARGET.0, TARGET.1) {
                panic!("{} (seed {seed}): plan is clean after run {run} but:\n{problems}\n{log}", sc.name);
            }
            return Outcome { runs: run, counts: proxy.counts(), duplicates_seen };
        }
        assert_eq!(plan.status.code(), Some(2), "{} (seed {seed}): plan after run {run} failed:\n{log}", sc.name);
    }
    panic!("{} (seed {seed}): no convergence after {MAX_RUNS} apply runs:\n{log}", sc.name);
}

#[test]
fn resize_and_scale_converges_through_faults() {
    // For each fault scenario, a 3 × t3.small fleet is resized and scaled to
    // 5 × t3.medium through the proxy until plan is clean; the final state
    // matches moto with one instance per address.
    let Some(turn) = moto::turn() else { return };
    let m = turn.moto;
    let seed = seed_from_env();
    println!("fault scenarios: seed {seed} (HIMAPLAN_TEST_SEED={seed} to replay)");
    for sc in SCENARIOS {
        for round in 0..sc.repeat {
            let seed = seed.wrapping_add(round);
            let o = run_scenario(m, sc, seed);
            let c = &o.counts;
            println!(
                "{} (seed {seed}): converged after {} apply run(s); {} requests, {} faults: {} × 503, {} × 500, {} × throttled, {} × dropped after forwarding {:?}, {} × slow; duplicates deleted: {:?}",
                sc.name,
                o.runs,
                c.requests,
                c.total_faults(),
                c.fault(Fault::Unavailable),
                c.fault(Fault::Internal),
                c.fault(Fault::Throttle),
                c.fault(Fault::Drop),
                c.dropped_actions,
                c.fault(Fault::Slow),
                o.duplicates_seen
            );
            if let Some(n) = sc.duplicates_after_first {
                assert_eq!(o.duplicates_seen.len(), n, "{}: duplicates planned for deletion", sc.name);
                assert_eq!(o.runs, 2, "{}: a duplicate takes exactly one more apply to remove", sc.name);
            }
        }
    }
}
