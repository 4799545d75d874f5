//! criterion benchmarks of the engine's hot paths at 1,000 and 10,000
//! `himaplan_data` instances: HCL load and evaluation, graph build, plan
//! (diff) without and with changes, plan render, state serialise/parse and
//! journal append. The configuration is the one `bench/compare-terraform`
//! generates (ten counted resources, each `depends_on` the previous), so
//! these figures explain the side-by-side table. Setup (a real apply that
//! creates the matching state) is not timed. Nothing here asserts timings:
//! performance is judged from the numbers, not by tests.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use himaplan_engine::builtin::BuiltinProvider;
use himaplan_engine::config::vars::{self, VarInputs};
use himaplan_engine::config::{Config, load};
use himaplan_engine::engine::NoHooks;
use himaplan_engine::engine::apply::{self, ApplyOptions};
use himaplan_engine::engine::plan::{self, PlanInput, PlanOptions, Planned};
use himaplan_engine::graph::{self, ConfigGraph};
use himaplan_engine::plan::render::{self, RenderOptions};
use himaplan_engine::provider::Registry;
use himaplan_engine::state::{JournalEntry, JournalWriter, LocalStore, State, StateStore};
use himaplan_engine::value::Value;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SIZES: [usize; 2] = [1_000, 10_000];
const BLOCKS: usize = 10;

/// The benchmark configuration: BLOCKS counted resources of n/BLOCKS each.
fn config_text(n: usize) -> String {
    let per = n / BLOCKS;
    let mut s = String::from("variable \"ver\" {\n  type    = string\n  default = \"v1\"\n}\n");
    for b in 0..BLOCKS {
        let dep = if b > 0 { format!("\n  depends_on = [himaplan_data.r{}]", b - 1) } else { String::new() };
        s.push_str(&format!(
            "\nresource \"himaplan_data\" \"r{b}\" {{\n  count = {per}\n  input = \"${{var.ver}}-{b}-${{count.index}}\"{dep}\n}}\n"
        ));
    }
    s
}

fn load(n: usize) -> Config {
    let sources = BTreeMap::from([(".".to_string(), vec![("main.hcl".to_string(), config_text(n))])]);
    load::load_snapshot(Path::new("."), &sources, Default::default()).unwrap_or_else(|d| panic!("load: {d}"))
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(Arc::new(BuiltinProvider));
    r
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

/// Everything one size needs, built once.
struct Fixture {
    config: Arc<Config>,
    graph: Arc<ConfigGraph>,
    state: State,
    state_text: String,
    v2: BTreeMap<String, Value>,
}

fn root_vars(config: &Config, cli: &[&str]) -> BTreeMap<String, Value> {
    let inputs = VarInputs { cli: cli.iter().map(|s| s.to_string()).collect(), files: vec![], env: BTreeMap::new() };
    vars::root_values(config, &inputs).unwrap_or_else(|d| panic!("vars: {d}"))
}

fn plan_input(f: &Fixture, vars: BTreeMap<String, Value>) -> PlanInput {
    PlanInput {
        config: f.config.clone(),
        graph: f.graph.clone(),
        registry: registry(),
        root_vars: vars,
        state: f.state.clone(),
        intents: vec![],
        options: PlanOptions { refresh: false, ..PlanOptions::default() },
    }
}

fn fixture(rt: &tokio::runtime::Runtime, n: usize) -> Fixture {
    let config = Arc::new(load(n));
    let graph = Arc::new(graph::build(&config).unwrap_or_else(|d| panic!("graph: {d}")));
    // A real apply creates the state the plans run against.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path().join("state.json"));
    let v1 = root_vars(&config, &[]);
    let empty =
        Fixture { config: config.clone(), graph: graph.clone(), state: State::default(), state_text: String::new(), v2: BTreeMap::new() };
    rt.block_on(async {
        let planned = plan::plan(plan_input(&empty, v1), &NoHooks).await.unwrap_or_else(|d| panic!("plan: {d}"));
        let changes = planned.plan.changes.clone();
        let outcome =
            apply::apply(planned, changes, &store, None, ApplyOptions::default(), &NoHooks).await.unwrap_or_else(|d| panic!("apply: {d}"));
        assert!(!outcome.errors.has_errors(), "apply: {}", outcome.errors);
    });
    let snapshot = rt.block_on(store.read()).expect("read state");
    assert_eq!(snapshot.state.resources.len(), n);
    let v2 = root_vars(&config, &["ver=v2"]);
    Fixture { config, graph, state: snapshot.state, state_text: snapshot.text.unwrap_or_default(), v2 }
}

fn run_plan(rt: &tokio::runtime::Runtime, f: &Fixture, vars: BTreeMap<String, Value>) -> Planned {
    rt.block_on(plan::plan(plan_input(f, vars), &NoHooks)).unwrap_or_else(|d| panic!("plan: {d}"))
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let fixtures: Vec<(usize, Fixture)> = SIZES.iter().map(|&n| (n, fixture(&rt, n))).collect();

    let mut g = c.benchmark_group("config");
    g.sample_size(10);
    for &n in &SIZES {
        g.bench_with_input(BenchmarkId::new("load_and_check", n), &n, |b, &n| b.iter(|| black_box(load(n))));
    }
    for (n, f) in &fixtures {
        g.bench_with_input(BenchmarkId::new("graph_build", n), f, |b, f| b.iter(|| black_box(graph::build(&f.config).expect("graph"))));
    }
    g.finish();

    let mut g = c.benchmark_group("plan");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (n, f) in &fixtures {
        let v1 = root_vars(&f.config, &[]);
        g.bench_with_input(BenchmarkId::new("no_changes", n), f, |b, f| b.iter(|| black_box(run_plan(&rt, f, v1.clone()))));
        g.bench_with_input(BenchmarkId::new("n_updates", n), f, |b, f| b.iter(|| black_box(run_plan(&rt, f, f.v2.clone()))));
        let planned = run_plan(&rt, f, f.v2.clone());
        assert_eq!(planned.plan.changes.len(), *n);
        g.bench_with_input(BenchmarkId::new("render_human_n_updates", n), &planned.plan, |b, p| {
            b.iter(|| black_box(render::human(p, &RenderOptions { color: false })))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("state");
    g.sample_size(20);
    for (n, f) in &fixtures {
        g.bench_with_input(BenchmarkId::new("serialise", n), f, |b, f| {
            b.iter(|| black_box(himaplan_engine::state::to_canonical_json(&f.state)))
        });
        g.bench_with_input(BenchmarkId::new("parse", n), f, |b, f| {
            b.iter(|| black_box(himaplan_engine::state::parse(&f.state_text, Path::new("state.json")).expect("parse")))
        });
    }
    g.finish();

    // Journal: the Set entries of an apply of 1,000 updates, group-committed
    // ten at a time (the default parallelism), i.e. 100 fsyncs; and one
    // entry alone (one fsync), the floor of every completed action.
    let mut g = c.benchmark_group("journal");
    g.sample_size(10);
    let (n, f) = &fixtures[0];
    let entries: Vec<JournalEntry> = f
        .state
        .resources
        .iter()
        .map(|(address, resource)| JournalEntry::Set { address: address.clone(), resource: resource.clone(), token: None })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    g.bench_with_input(BenchmarkId::new("append_groups_of_10", n), &entries, |b, entries| {
        b.iter_batched(
            || {
                let path = dir.path().join("state.json.journal");
                let _ = std::fs::remove_file(&path);
                JournalWriter::open(&path).expect("open journal")
            },
            |mut w| {
                for chunk in entries.chunks(10) {
                    w.append(chunk).expect("append");
                }
            },
            BatchSize::PerIteration,
        )
    });
    let mut w = JournalWriter::open(&dir.path().join("single.journal")).expect("open journal");
    g.bench_function("append_one", |b| b.iter(|| w.append(&entries[..1]).expect("append")));
    g.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
