//! Engine tests with a small in-test provider: the apply walk's ordering,
//! rollout bounds, parallelism, failure handling, retries and the
//! resolution of values known only after apply, driven through
//! `engine::plan::plan` and `engine::apply::apply` with a `LocalStore` in a
//! temporary directory, wired the way the CLI wires them.
//!
//! The provider offers `test_thing { name (replace), size (in place,
//! disruption "restart"), input (any), id (computed) }`. It records every
//! apply call in order and counts how many calls, and how many disruptive
//! ones, run at once; each call sleeps briefly so that concurrent calls
//! overlap. Nothing here touches the network.

use async_trait::async_trait;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::builtin::BuiltinProvider;
use himaplan_engine::config::load;
use himaplan_engine::diag::Diags;
use himaplan_engine::engine::NoHooks;
use himaplan_engine::engine::apply::{self, ApplyOptions, ApplyOutcome};
use himaplan_engine::engine::plan::{self, PlanInput, PlanOptions, Planned};
use himaplan_engine::graph;
use himaplan_engine::plan::Action;
use himaplan_engine::plan::render;
use himaplan_engine::provider::{
    ApplyAction, ApplyRequest, AttrSchema, AttrType, DrainPlan, DrainRequest, FoundObject, Member, Provider, ProviderError, ReadRequest,
    ReadResponse, Registry, ResourceType, Schema,
};
use himaplan_engine::state::journal::JournalEntry;
use himaplan_engine::state::{LocalStore, Snapshot, StateStore};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One recorded apply call.
#[derive(Debug, Clone)]
struct Call {
    /// "create", "update", "delete", "drain" or "restore".
    verb: &'static str,
    addr: String,
    planned: Value,
}

/// The in-test provider serving `test_thing`.
#[derive(Default)]
struct TestProvider {
    calls: Mutex<Vec<Call>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    disrupting: AtomicUsize,
    max_disrupting: AtomicUsize,
    /// Addresses whose every apply fails permanently.
    fail: Mutex<HashSet<String>>,
    /// Addresses whose next N applies fail transiently.
    transient: Mutex<HashMap<String, u32>>,
    attempts: Mutex<HashMap<String, u32>>,
    /// Objects of the lineage that reads report besides the requested ones.
    others: Mutex<Vec<FoundObject>>,
}

const TYPE: &str = "test_thing";
/// A service of `replicas` containers `svc-N`, recreated piece by piece.
const SERVICE: &str = "test_service";

fn bump_max(current: usize, max: &AtomicUsize) {
    max.fetch_max(current, Ordering::SeqCst);
}

#[async_trait]
impl Provider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        vec![
            ResourceType {
                name: TYPE,
                schema_version: 0,
                schema: Schema {
                    attributes: vec![
                        AttrSchema::new("name", AttrType::String).replace(),
                        AttrSchema::new("size", AttrType::Number).disruption("restart"),
                        AttrSchema::new("input", AttrType::Any),
                        AttrSchema::new("id", AttrType::String).computed(),
                    ],
                    blocks: vec![],
                },
            },
            ResourceType {
                name: SERVICE,
                schema_version: 0,
                schema: Schema {
                    attributes: vec![
                        AttrSchema::new("image", AttrType::String).disruption("recreate"),
                        AttrSchema::new("replicas", AttrType::Number),
                        AttrSchema::new("containers", AttrType::Any).computed(),
                    ],
                    blocks: vec![],
                },
            },
        ]
    }

    /// A `test_service`'s containers whose image is not the planned one.
    fn members(&self, rtype: &str, prior: &Value, planned: &Value, _changed: &[String]) -> Vec<Member> {
        let image = planned.get("image");
        let containers = prior.get("containers").and_then(Value::as_list).unwrap_or_default();
        containers
            .iter()
            .enumerate()
            .filter(|(_, c)| rtype == SERVICE && c.get("image") != image)
            .map(|(index, c)| Member {
                name: c.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                attribute: "containers".into(),
                index,
            })
            .collect()
    }

    async fn configure(&self, _config: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        let others = self.others.lock().unwrap().clone();
        Ok(ReadResponse { current: req.items.into_iter().map(|i| Some(i.prior)).collect(), others })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        let addr = req.addr.to_string();
        *self.attempts.lock().unwrap().entry(addr.clone()).or_default() += 1;
        let disruptive = req.action == ApplyAction::Update && req.changed.iter().any(|c| c == "size");
        bump_max(self.running.fetch_add(1, Ordering::SeqCst) + 1, &self.max_running);
        if disruptive {
            bump_max(self.disrupting.fetch_add(1, Ordering::SeqCst) + 1, &self.max_disrupting);
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        if disruptive {
            self.disrupting.fetch_sub(1, Ordering::SeqCst);
        }
        self.running.fetch_sub(1, Ordering::SeqCst);

        if self.fail.lock().unwrap().contains(&addr) {
            return Err(ProviderError::invalid(format!("{addr} is refused by the test")));
        }
        if let Some(left) = self.transient.lock().unwrap().get_mut(&addr).filter(|n| **n > 0) {
            *left -= 1;
            return Err(ProviderError::transient("503 Slow Down"));
        }
        let logged = match &req.part {
            Some(part) => format!("{addr} {}", part.join(",")),
            None => addr.clone(),
        };
        self.calls.lock().unwrap().push(Call { verb: verb(req.action), addr: logged, planned: req.planned.clone() });
        if req.rtype == SERVICE {
            return Ok(service_after(&req));
        }
        match req.action {
            ApplyAction::Delete => Ok(Value::Null),
            ApplyAction::Create | ApplyAction::Update => {
                let mut attrs = req.planned.as_map().cloned().unwrap_or_default();
                let id = match req.prior.get("id") {
                    Some(Value::String(id)) => id.clone(),
                    _ => format!("id-{addr}"),
                };
                attrs.insert("id".into(), Value::String(id));
                Ok(Value::Map(attrs))
            }
        }
    }

    /// A `test_thing` is a listing of the members in its `input` list (a
    /// listing named "pool…" restores after a failed disruption, as
    /// PgBouncer does); an `input` that is not a list cannot be drained.
    fn drain_entries(&self, _rtype: &str, config: &Value, marked: &Value) -> Option<Result<DrainPlan, String>> {
        let (Some(now), Some(marked)) = (config.get("input"), marked.get("input")) else { return None };
        let (Some(now), Some(marked)) = (now.as_list(), marked.as_list()) else {
            return Some(Err("input as a whole depends on the members".into()));
        };
        let entries = now.iter().zip(marked).filter(|(_, m)| m.has_unknown()).map(|(v, _)| v.to_string()).collect();
        let pool = config.get("name").and_then(Value::as_str).is_some_and(|n| n.starts_with("pool"));
        Some(Ok(DrainPlan { entries, how: "left out".into(), undo: "back in".into(), restore_after_failure: pool }))
    }

    async fn drain(&self, req: DrainRequest) -> Result<Value, ProviderError> {
        let verb = if req.restore { "restore" } else { "drain" };
        self.calls.lock().unwrap().push(Call {
            verb,
            addr: req.request.addr.to_string(),
            planned: Value::List(req.entries.iter().map(|e| Value::from(e.as_str())).collect()),
        });
        Ok(req.request.prior)
    }

    async fn import(&self, _rtype: &str, _addr: &InstanceAddr, _id: &str, _lineage: &str) -> Result<Value, ProviderError> {
        Err(ProviderError::other("import is not supported by the test provider"))
    }
}

/// A `test_service` after a create, or after an update of `req.part`.
fn service_after(req: &ApplyRequest) -> Value {
    let image = req.planned.get("image").cloned().unwrap_or(Value::Null);
    let n = req.planned.get("replicas").and_then(Value::as_i64).unwrap_or(0);
    let before = req.prior.get("containers").and_then(Value::as_list).unwrap_or_default().to_vec();
    let containers = (1..=n)
        .map(|i| {
            let name = format!("svc-{i}");
            let old = before.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(name.as_str()));
            let replaced = req.part.as_ref().is_none_or(|p| p.contains(&name));
            let image = match (old, replaced) {
                (Some(c), false) => c.get("image").cloned().unwrap_or(Value::Null),
                _ => image.clone(),
            };
            Value::Map(ValueMap::from([("name".to_string(), Value::from(name)), ("image".to_string(), image)]))
        })
        .collect();
    let mut attrs = req.planned.as_map().cloned().unwrap_or_default();
    attrs.insert("containers".into(), Value::List(containers));
    Value::Map(attrs)
}

/// A configuration directory with its state, and the provider applying it.
struct Harness {
    dir: tempfile::TempDir,
    provider: Arc<TestProvider>,
}

impl Harness {
    fn new() -> Harness {
        Harness { dir: tempfile::tempdir().expect("tempdir"), provider: Arc::new(TestProvider::default()) }
    }

    fn store(&self) -> LocalStore {
        LocalStore::new(self.dir.path().join("state.json"))
    }

    /// Forgets what earlier runs recorded.
    fn reset(&self) {
        self.provider.calls.lock().unwrap().clear();
        self.provider.max_running.store(0, Ordering::SeqCst);
        self.provider.max_disrupting.store(0, Ordering::SeqCst);
    }

    /// Plans `hcl` against the state and applies the whole plan, as
    /// `himaplan apply --auto-approve --parallelism N` does.
    async fn apply(&self, hcl: &str, parallelism: usize) -> Result<ApplyOutcome, Diags> {
        let (planned, snapshot) = self.plan(self.dir.path(), hcl).await?;
        let changes = planned.plan.changes.clone();
        let options = ApplyOptions { parallelism, ..ApplyOptions::default() };
        apply::apply(planned, changes, &self.store(), snapshot.text.clone(), options, &NoHooks).await
    }

    /// Plans `hcl`, written to `config_dir`, against the state, taking no
    /// lock, as `himaplan plan` does; also returns the snapshot it read.
    async fn plan(&self, config_dir: &std::path::Path, hcl: &str) -> Result<(Planned, Snapshot), Diags> {
        std::fs::create_dir_all(config_dir).expect("config dir");
        std::fs::write(config_dir.join("main.hcl"), hcl).expect("write main.hcl");
        let config = Arc::new(load::load_dir(config_dir)?);
        let graph = Arc::new(graph::build(&config)?);
        let mut registry = Registry::new();
        registry.register(Arc::new(BuiltinProvider));
        registry.register(self.provider.clone());
        let snapshot = self.store().read().await.map_err(|e| Diags::from(himaplan_engine::diag::Diag::error(e.to_string())))?;
        let input = PlanInput {
            config,
            graph,
            registry,
            root_vars: BTreeMap::new(),
            state: snapshot.state.clone(),
            intents: snapshot.unfinished_intents.clone(),
            options: PlanOptions::default(),
        };
        Ok((plan::plan(input, &NoHooks).await?, snapshot))
    }

    /// Applies and expects no errors.
    async fn converge(&self, hcl: &str) -> ApplyOutcome {
        let outcome = self.apply(hcl, 10).await.unwrap_or_else(|d| panic!("plan failed:\n{d}"));
        assert!(!outcome.errors.has_errors(), "apply failed:\n{}", outcome.errors);
        outcome
    }

    fn calls(&self) -> Vec<Call> {
        self.provider.calls.lock().unwrap().clone()
    }

    /// `"create test_thing.a"`-style lines of every call, in order.
    fn log(&self) -> Vec<String> {
        self.calls().iter().map(|c| format!("{} {}", c.verb, c.addr)).collect()
    }

    fn position(&self, line: &str) -> usize {
        let log = self.log();
        log.iter().position(|l| l == line).unwrap_or_else(|| panic!("{line:?} not in {log:?}"))
    }

    async fn state_addresses(&self) -> Vec<String> {
        self.store().read().await.expect("read state").state.resources.keys().map(|a| a.to_string()).collect()
    }
}

fn verb(action: ApplyAction) -> &'static str {
    match action {
        ApplyAction::Create => "create",
        ApplyAction::Update => "update",
        ApplyAction::Delete => "delete",
    }
}

const CHAIN: &str = r#"
resource "test_thing" "a" {
  name = "a"
}

resource "test_thing" "b" {
  name  = "b"
  input = test_thing.a.id
}
"#;

#[tokio::test]
async fn dependencies_are_created_first() {
    // b refers to a, so a's create is sent and finished before b's.
    let h = Harness::new();
    h.converge(CHAIN).await;
    assert!(h.position("create test_thing.a") < h.position("create test_thing.b"), "{:?}", h.log());
}

#[tokio::test]
async fn known_after_apply_values_are_resolved_before_the_dependent_is_applied() {
    // b.input = a.id is unknown at plan time; the create request for b carries a's real id.
    let h = Harness::new();
    h.converge(CHAIN).await;
    let b = h.calls().into_iter().find(|c| c.addr == "test_thing.b").expect("b was created");
    assert_eq!(b.planned.get("input"), Some(&Value::String("id-test_thing.a".into())), "{:?}", b.planned);
}

#[tokio::test]
async fn destroys_run_in_reverse_dependency_order() {
    // Removing both resources destroys b (the dependent) before a.
    let h = Harness::new();
    h.converge(CHAIN).await;
    h.reset();
    h.converge("").await;
    assert!(h.position("delete test_thing.b") < h.position("delete test_thing.a"), "{:?}", h.log());
    assert!(h.state_addresses().await.is_empty());
}

#[tokio::test]
async fn a_dependency_is_destroyed_only_after_its_dependents_are_updated() {
    // Scaling web 2 → 1 updates the lb listing the web ids before web[1] is destroyed (it leaves the upstream first).
    let config = |count: u32| {
        format!(
            r#"
resource "test_thing" "web" {{
  count = {count}
  name  = "web-${{count.index}}"
}}

resource "test_thing" "lb" {{
  name  = "lb"
  input = [for w in test_thing.web : w.id]
}}
"#
        )
    };
    let h = Harness::new();
    h.converge(&config(2)).await;
    h.reset();
    h.converge(&config(1)).await;
    assert!(h.position("update test_thing.lb") < h.position("delete test_thing.web[1]"), "{:?}", h.log());
    let lb = h.calls().into_iter().find(|c| c.addr == "test_thing.lb").expect("lb updated");
    assert_eq!(lb.planned.get("input"), Some(&Value::List(vec![Value::String("id-test_thing.web[0]".into())])));
}

fn fleet(count: usize, size: u32, rollout: Option<&str>) -> String {
    let rollout = rollout.map(|r| format!("  rollout {{\n    max_unavailable = {r}\n  }}\n")).unwrap_or_default();
    format!("resource \"test_thing\" \"web\" {{\n  count = {count}\n  name  = \"web-${{count.index}}\"\n  size  = {size}\n{rollout}}}\n")
}

/// Resizes a fleet of `count` and returns the most disruptive updates seen at once.
async fn resize_fleet(count: usize, rollout: Option<&str>, parallelism: usize) -> usize {
    let h = Harness::new();
    h.converge(&fleet(count, 1, rollout)).await;
    h.reset();
    let outcome = h.apply(&fleet(count, 2, rollout), parallelism).await.expect("plan");
    assert!(!outcome.errors.has_errors(), "{}", outcome.errors);
    let updates = h.log().iter().filter(|l| l.starts_with("update ")).count();
    assert_eq!(updates, count, "every instance is resized in place: {:?}", h.log());
    h.provider.max_disrupting.load(Ordering::SeqCst)
}

#[tokio::test]
async fn rollout_bounds_concurrent_disruptive_updates() {
    // A disruptive resize of a fleet disrupts at most max_unavailable instances at a time (default 1, a number, or a rounded-down percentage).
    let cases: &[(&str, usize, Option<&str>, usize)] = &[
        ("default is 1", 4, None, 1),
        ("max_unavailable = 1", 4, Some("1"), 1),
        ("max_unavailable = 2", 4, Some("2"), 2),
        ("50% of 6 is 3", 6, Some("\"50%\""), 3),
        ("10% of 4 rounds down to the minimum of 1", 4, Some("\"10%\""), 1),
    ];
    for (what, count, rollout, want) in cases {
        let seen = resize_fleet(*count, *rollout, 10).await;
        assert_eq!(seen, *want, "{what}: at most {want} disruptive updates at once (and the bound is used), saw {seen}");
    }
}

#[tokio::test]
async fn parallelism_one_runs_every_action_serially() {
    // Eight independent creates with --parallelism 1 never overlap; with 10 they do.
    let config = "resource \"test_thing\" \"n\" {\n  count = 8\n  name  = \"n-${count.index}\"\n}\n";
    let serial = Harness::new();
    let outcome = serial.apply(config, 1).await.expect("plan");
    assert!(!outcome.errors.has_errors(), "{}", outcome.errors);
    assert_eq!(serial.calls().len(), 8);
    assert_eq!(serial.provider.max_running.load(Ordering::SeqCst), 1);

    let parallel = Harness::new();
    parallel.apply(config, 10).await.expect("plan");
    assert!(parallel.provider.max_running.load(Ordering::SeqCst) > 1, "independent creates run concurrently");
}

#[tokio::test]
async fn a_failure_stops_dependents_but_not_independent_actions() {
    // a fails permanently: b (which needs a) is never sent, c (independent) is created and recorded in state.
    let h = Harness::new();
    h.provider.fail.lock().unwrap().insert("test_thing.a".into());
    let config = format!("{CHAIN}\nresource \"test_thing\" \"c\" {{\n  name = \"c\"\n}}\n");
    let outcome = h.apply(&config, 10).await.expect("plan");
    assert!(outcome.errors.has_errors());
    let text = outcome.errors.to_string();
    assert!(text.contains("test_thing.a") && text.contains("refused by the test"), "{text}");
    assert_eq!(h.log(), vec!["create test_thing.c".to_string()]);
    assert_eq!(outcome.completed, 1);
    assert!(outcome.committed, "the completed create is committed");
    assert_eq!(h.state_addresses().await, vec!["test_thing.c".to_string()]);
    assert!(!h.store().journal_path().exists(), "the journal is folded into the state file");

    // The next apply converges once the provider accepts a.
    h.provider.fail.lock().unwrap().clear();
    h.reset();
    h.converge(&config).await;
    assert_eq!(h.state_addresses().await, ["test_thing.a", "test_thing.b", "test_thing.c"]);
}

#[tokio::test]
async fn transient_errors_are_retried() {
    // Two 503s in a row on a's create are retried with backoff; the apply succeeds and b follows.
    let h = Harness::new();
    h.provider.transient.lock().unwrap().insert("test_thing.a".into(), 2);
    h.converge(CHAIN).await;
    assert_eq!(h.provider.attempts.lock().unwrap()["test_thing.a"], 3);
    assert_eq!(h.state_addresses().await, ["test_thing.a", "test_thing.b"]);
}

#[tokio::test]
async fn regression_replacing_a_dependency_of_an_updated_resource_did_nothing() {
    // a is replaced (name changed) while b, which reads a.id, is updated: delete a, create a, then update b with the new id.
    // Bug: the apply steps waited on each other in a cycle, nothing ran, and apply still reported success.
    let h = Harness::new();
    h.converge(CHAIN).await;
    h.reset();
    let outcome = h.converge(&CHAIN.replacen("name = \"a\"", "name = \"a2\"", 1)).await;
    assert_eq!(outcome.completed, 3, "{:?}", h.log());
    assert!(h.position("delete test_thing.a") < h.position("create test_thing.a"), "{:?}", h.log());
    assert!(h.position("create test_thing.a") < h.position("update test_thing.b"), "{:?}", h.log());
}

#[test]
fn a_cycle_lists_every_member_with_file_and_line() {
    // Three resources referring to each other in a ring: graph::build fails naming all three with file:line.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("main.hcl"),
        "resource \"test_thing\" \"a\" {\n  input = test_thing.c.id\n}\n\
         resource \"test_thing\" \"b\" {\n  input = test_thing.a.id\n}\n\
         resource \"test_thing\" \"c\" {\n  input = test_thing.b.id\n}\n",
    )
    .expect("write");
    let config = load::load_dir(dir.path()).expect("loads");
    let err = graph::build(&config).expect_err("a cycle is an error").to_string();
    for (member, line) in [("test_thing.a", 1), ("test_thing.b", 4), ("test_thing.c", 7)] {
        let listed = err.lines().any(|l| l.trim_start().starts_with(&format!("{member} (")) && l.ends_with(&format!("main.hcl:{line})")));
        assert!(listed, "{member} at main.hcl:{line} missing from:\n{err}");
    }
}

/// web (count, size) listed by lb, plus db and the app that reads db.
fn mixed(count: u32, size: u32, lb_name: &str, app: bool) -> String {
    let app = if app { "resource \"test_thing\" \"app\" {\n  name  = \"app\"\n  input = test_thing.db.id\n}\n" } else { "" };
    format!(
        r#"
resource "test_thing" "web" {{
  count = {count}
  name  = "web-${{count.index}}"
  size  = {size}
}}

resource "test_thing" "lb" {{
  name  = "{lb_name}"
  input = [for w in test_thing.web : w.id]
}}

resource "test_thing" "db" {{
  name = "db"
}}

resource "test_thing" "old" {{
  count = {old}
  name  = "old"
}}
{app}"#,
        old = if app.is_empty() { 1 } else { 0 }
    )
}

#[tokio::test]
async fn snapshot_of_the_apply_order_of_a_mixed_change() {
    // With --parallelism 1 the walk is deterministic: the exact order of a scale-down, a disruptive resize of listed instances, a destroy and a create.
    let h = Harness::new();
    h.converge(&mixed(3, 1, "lb", false)).await;
    h.reset();
    let outcome = h.apply(&mixed(2, 2, "lb", true), 1).await.expect("plan");
    assert!(!outcome.errors.has_errors(), "{}", outcome.errors);
    insta::assert_snapshot!("apply_order_parallelism_1", h.log().join("\n"));
}

#[tokio::test]
async fn nothing_touches_an_instance_between_its_delete_and_its_re_create() {
    // lb is replaced while the web instances it lists are resized: no update may be sent to lb while it does not exist.
    let h = Harness::new();
    h.converge(&mixed(3, 1, "lb", false)).await;
    h.reset();
    let outcome = h.apply(&mixed(2, 2, "lb2", false), 1).await.expect("plan");
    assert!(!outcome.errors.has_errors(), "{}", outcome.errors);
    let log = h.log();
    let deleted = h.position("delete test_thing.lb");
    let created = h.position("create test_thing.lb");
    assert!(deleted < created, "{log:?}");
    assert!(!log[deleted..created].iter().any(|l| l == "update test_thing.lb"), "lb updated while deleted: {log:?}");
}

/// A keyless `test_thing.db` (resized, so restarted) listed by `listing`.
fn keyless_db(size: u32, listing: &str) -> String {
    format!("resource \"test_thing\" \"db\" {{\n  name = \"db\"\n  size = {size}\n}}\n\n{listing}")
}

#[tokio::test]
async fn a_keyless_instance_listed_by_another_resource_is_drained_around_its_disruption() {
    // The issue's reproducer in engine terms: evaluating the listing with the whole keyless resource null failed the plan.
    let listing = "resource \"test_thing\" \"lb\" {\n  name  = \"lb\"\n  input = [test_thing.db.id]\n}\n";
    let h = Harness::new();
    h.converge(&keyless_db(1, listing)).await;
    h.reset();
    let (planned, _) = h.plan(h.dir.path(), &keyless_db(2, listing)).await.unwrap_or_else(|d| panic!("plan failed:\n{d}"));
    let steps = planned.plan.steps.join("\n");
    assert!(
        steps.contains("test_thing.db batch 1/1 (max_unavailable = 1): drain test_thing.db from test_thing.lb (\"id-test_thing.db\": left out) → restart → restore test_thing.lb (back in)"),
        "{steps}"
    );
    h.converge(&keyless_db(2, listing)).await;
    assert_eq!(h.log(), ["drain test_thing.lb", "update test_thing.db", "restore test_thing.lb"]);
}

#[tokio::test]
async fn a_record_listing_an_instance_is_never_drained() {
    // himaplan_data carries no traffic: its provider has no drain capability, so a resize is not wrapped in drains.
    let listing = "resource \"himaplan_data\" \"release\" {\n  input = { hosts = [test_thing.db.id] }\n}\n";
    let h = Harness::new();
    h.converge(&keyless_db(1, listing)).await;
    h.reset();
    let (planned, _) = h.plan(h.dir.path(), &keyless_db(2, listing)).await.unwrap_or_else(|d| panic!("plan failed:\n{d}"));
    assert_eq!(planned.plan.steps, ["test_thing.db batch 1/1 (max_unavailable = 1): restart test_thing.db"]);
    h.converge(&keyless_db(2, listing)).await;
    assert_eq!(h.log(), ["update test_thing.db"]);
}

#[tokio::test]
async fn a_drain_that_cannot_be_computed_fails_the_plan_at_the_listing() {
    let listing = "resource \"test_thing\" \"lb\" {\n  name  = \"lb\"\n  input = join(\",\", [test_thing.db.id])\n}\n";
    let h = Harness::new();
    h.converge(&keyless_db(1, listing)).await;
    let err = h.plan(h.dir.path(), &keyless_db(2, listing)).await.err().expect("the plan fails").to_string();
    assert!(err.contains("Cannot drain test_thing.db from test_thing.lb"), "{err}");
    assert!(err.contains("main.hcl:6:1"), "the error points at the listing: {err}");
}

/// Three counted members resized one at a time, listed by `lb` or a "pool".
fn listed_web(size: u32, listing_name: &str) -> String {
    format!(
        "resource \"test_thing\" \"web\" {{\n  count = 3\n  name  = \"web-${{count.index}}\"\n  size  = {size}\n}}\n\n\
         resource \"test_thing\" \"lb\" {{\n  name  = \"{listing_name}\"\n  input = [for w in test_thing.web : w.id]\n}}\n"
    )
}

#[tokio::test]
async fn snapshot_of_a_drained_resize_lists_each_instance_once() {
    // A resize of three listed members once showed three batches and then
    // the same instances again as separate drain steps: each batch is one
    // step with its drain inside, and the comment summarises the rollout.
    let h = Harness::new();
    h.converge(&listed_web(1, "lb")).await;
    let (planned, _) = h.plan(h.dir.path(), &listed_web(2, "lb")).await.unwrap_or_else(|d| panic!("plan failed:\n{d}"));
    let plan = &planned.plan;
    assert_eq!(plan.steps.len(), 3, "{:#?}", plan.steps);
    let human = render::human(plan, &render::RenderOptions { color: false });
    for member in ["test_thing.web[0]", "test_thing.web[1]", "test_thing.web[2]"] {
        let apply_order = &human[human.find("Apply order:").expect("apply order")..];
        assert_eq!(apply_order.matches(&format!("drain {member} ")).count(), 1, "{apply_order}");
    }
    insta::assert_snapshot!("drained_resize_human", human);
    insta::assert_snapshot!("drained_resize_markdown", render::markdown(plan));
}

#[tokio::test]
async fn a_failed_disruption_stops_the_rollout_and_restores_only_listings_that_restore_after_failure() {
    for (name, restored) in [("lb", false), ("pool", true)] {
        let h = Harness::new();
        h.converge(&listed_web(1, name)).await;
        h.reset();
        h.provider.fail.lock().unwrap().insert("test_thing.web[0]".into());
        let outcome = h.apply(&listed_web(2, name), 10).await.expect("plan");
        assert!(outcome.errors.has_errors(), "web[0] fails");
        let expected: &[&str] = if restored { &["drain test_thing.lb", "restore test_thing.lb"] } else { &["drain test_thing.lb"] };
        assert_eq!(h.log(), expected, "{name}: the next batches never start; the failed member stays drained unless the listing resumes");
    }
}

/// Three members resized one at a time, each gated by a TCP check of `port`.
fn gated_web(size: u32, port: u16) -> String {
    format!(
        "resource \"test_thing\" \"web\" {{\n  count = 3\n  name  = \"web-${{count.index}}\"\n  size  = {size}\n  \
         rollout {{\n    max_unavailable = 1\n    health_check {{\n      tcp      = \"127.0.0.1:{port}\"\n      \
         interval = \"100ms\"\n      timeout  = \"1s\"\n    }}\n  }}\n}}\n"
    )
}

#[tokio::test]
async fn a_failing_health_gate_stops_the_rollout_and_the_next_apply_gates_the_member_again() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let h = Harness::new();
    h.converge(&gated_web(1, port)).await;
    let (planned, _) = h.plan(h.dir.path(), &gated_web(2, port)).await.expect("plan");
    insta::assert_snapshot!("gated_rollout_steps", planned.plan.steps.join("\n").replace(&port.to_string(), "PORT"));
    assert!(
        planned.plan.steps[0].ends_with(&format!(
            "restart test_thing.web[0] → test_thing.web[0]: wait until 127.0.0.1:{port} accepts a connection, at most 1s"
        )),
        "{:?}",
        planned.plan.steps
    );

    // Nothing listens any more: the first batch fails its gate.
    drop(listener);
    h.reset();
    let outcome = h.apply(&gated_web(2, port), 10).await.expect("plan");
    let errors = outcome.errors.to_string();
    assert!(errors.contains("test_thing.web[0] is not healthy"), "{errors}");
    assert_eq!(h.log(), ["update test_thing.web[0]"], "the later batches are not touched");
    let state = h.store().read().await.expect("state").state;
    let marked: Vec<String> = state.resources.iter().filter(|(_, e)| e.unhealthy.is_some()).map(|(a, _)| a.to_string()).collect();
    assert_eq!(marked, ["test_thing.web[0]"], "state records which member failed its gate");

    // Healthy again: web[0] is gated again (nothing sent to it), then the rest roll.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the same port again");
    h.reset();
    let (planned, _) = h.plan(h.dir.path(), &gated_web(2, port)).await.expect("plan");
    let again = planned.plan.changes.iter().find(|c| c.addr.to_string() == "test_thing.web[0]").expect("web[0] is planned again");
    assert_eq!(again.reason.as_ref().map(|r| r.as_str()), Some("gate_again"));
    let outcome = h.apply(&gated_web(2, port), 10).await.expect("plan");
    assert!(!outcome.errors.has_errors(), "{}", outcome.errors);
    assert_eq!(h.log(), ["update test_thing.web[1]", "update test_thing.web[2]"]);
    let state = h.store().read().await.expect("state").state;
    assert!(state.resources.values().all(|e| e.unhealthy.is_none()), "the marks are cleared once healthy");
    drop(listener);
}

fn service(image: &str) -> String {
    format!(
        "resource \"test_service\" \"svc\" {{\n  image    = \"{image}\"\n  replicas = 4\n  rollout {{\n    max_unavailable = 2\n  }}\n}}\n\n\
         resource \"test_thing\" \"lb\" {{\n  name  = \"lb\"\n  input = [for c in test_service.svc.containers : c.name]\n}}\n"
    )
}

#[tokio::test]
async fn a_service_recreate_rolls_its_containers_in_batches_each_drained_on_its_own() {
    let h = Harness::new();
    h.converge(&service("v1")).await;
    h.reset();
    let (planned, _) = h.plan(h.dir.path(), &service("v2")).await.expect("plan");
    assert_eq!(
        planned.plan.steps,
        [
            "test_service.svc batch 1/2 (max_unavailable = 2): drain svc-1, svc-2 from test_thing.lb (\"svc-1\", \"svc-2\": left out) → recreate → restore test_thing.lb (back in)",
            "test_service.svc batch 2/2 (max_unavailable = 2): drain svc-3, svc-4 from test_thing.lb (\"svc-3\", \"svc-4\": left out) → recreate → restore test_thing.lb (back in)",
        ]
    );
    h.converge(&service("v2")).await;
    assert_eq!(
        h.log(),
        [
            "drain test_thing.lb",
            "update test_service.svc svc-1,svc-2",
            "restore test_thing.lb",
            "drain test_thing.lb",
            "update test_service.svc svc-3,svc-4",
            "restore test_thing.lb",
        ]
    );
    let drained: Vec<Value> = h.calls().iter().filter(|c| c.verb == "drain").map(|c| c.planned.clone()).collect();
    assert_eq!(
        drained,
        [Value::List(vec!["\"svc-1\"".into(), "\"svc-2\"".into()]), Value::List(vec!["\"svc-3\"".into(), "\"svc-4\"".into()])]
    );
    let (planned, _) = h.plan(h.dir.path(), &service("v2")).await.expect("plan");
    assert!(planned.plan.changes.is_empty(), "converged: {:?}", planned.plan.changes);
}

#[tokio::test]
async fn a_created_member_joins_its_listing_only_after_passing_its_gate() {
    let hcl = |count: u32, port: u16| {
        gated_web(1, port).replace("count = 3", &format!("count = {count}"))
            + "\nresource \"test_thing\" \"lb\" {\n  name  = \"lb\"\n  input = [for w in test_thing.web : w.id]\n}\n"
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let h = Harness::new();
    h.converge(&hcl(2, port)).await;
    drop(listener);
    h.reset();
    let (planned, _) = h.plan(h.dir.path(), &hcl(3, port)).await.expect("plan");
    assert!(planned.plan.steps.iter().any(|s| s.starts_with("test_thing.web[2]: created, then wait until")), "{:?}", planned.plan.steps);
    let outcome = h.apply(&hcl(3, port), 10).await.expect("plan");
    assert!(outcome.errors.to_string().contains("test_thing.web[2] is not healthy"), "{}", outcome.errors);
    assert_eq!(h.log(), ["create test_thing.web[2]"], "the listing is not updated to include an unhealthy member");
}

/// Thirty applies, each under the lock, each changing one `himaplan_data`, while lock-free plans run
/// against the same state in a loop.
fn race_config(round: usize) -> String {
    let mut hcl = format!("resource \"himaplan_data\" \"round\" {{\n  input = {round}\n}}\n");
    for i in 0..200 {
        hcl.push_str(&format!("\nresource \"himaplan_data\" \"fixed_{i}\" {{\n  input = \"{i}\"\n}}\n"));
    }
    hcl
}

/// Lowers the scheduling priority of the calling thread (Linux: `renice`
/// of its thread id), so that it is preempted whenever an apply wants a core.
fn deprioritise_this_thread() {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else { return };
    let Some(tid) = link.file_name().and_then(|t| t.to_str()).map(str::to_string) else { return };
    let _ = std::process::Command::new("renice").args(["-n", "19", "-p", &tid]).stdout(std::process::Stdio::null()).status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_free_plan_racing_applies_never_fails() {
    // A plan may read the state just before an apply commits and the journal just after the next apply began
    // its own: it must read again, not report a journal ahead of the state ("restored from a backup?").
    // The planners outnumber the cores at the lowest priority, so they stall mid-read while applies run.
    const ROUNDS: usize = 30;
    const PLANNERS: usize = 6;
    let h = Arc::new(Harness::new());
    h.converge(&race_config(0)).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = std::time::Instant::now();
    let planners: Vec<_> = (0..PLANNERS)
        .map(|n| {
            let (h, done) = (h.clone(), done.clone());
            std::thread::spawn(move || {
                deprioritise_this_thread();
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("planner runtime");
                let dir = h.dir.path().join(format!("planner-{n}"));
                let mut plans = 0usize;
                while !done.load(Ordering::SeqCst) {
                    if let Err(d) = runtime.block_on(h.plan(&dir, &race_config(0))) {
                        return Err(format!("plan {plans} of planner {n} failed while applies ran:\n{d}"));
                    }
                    plans += 1;
                }
                Ok(plans)
            })
        })
        .collect();
    for round in 1..=ROUNDS {
        let _lock = h.store().lock("apply", Duration::from_secs(30)).await.expect("the apply lock");
        let outcome = h.apply(&race_config(round), 10).await.unwrap_or_else(|d| panic!("apply of round {round} failed:\n{d}"));
        assert!(outcome.committed && !outcome.errors.has_errors(), "round {round}: {}", outcome.errors);
    }
    done.store(true, Ordering::SeqCst);
    let results: Vec<Result<usize, String>> = planners.into_iter().map(|p| p.join().expect("planner thread")).collect();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let plans: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    assert!(failures.is_empty(), "{} of {PLANNERS} planners failed; the first:\n{}", failures.len(), failures[0]);
    assert_eq!(h.store().read().await.expect("read").state.serial, 1 + ROUNDS as u64);
    eprintln!("{ROUNDS} applies raced {plans} plans in {:?}", started.elapsed());
}

/// An object of `test_thing.a` labelled with `token`, created at `created`.
fn found_a(id: &str, token: &str, created: &str) -> FoundObject {
    FoundObject {
        id: id.into(),
        address: Some("test_thing.a".parse().expect("address")),
        token: Some(token.into()),
        created: created.into(),
        attrs: Value::from_json(&serde_json::json!({ "name": "a", "id": id })),
    }
}

#[tokio::test]
async fn an_intent_adopts_only_the_object_carrying_its_token() {
    // A crashed create of test_thing.a left intent tok-a. An object at that address with another token is not
    // its object: alone it is unmanaged (and a is created); beside tok-a's object, that one is adopted even
    // though the other is older, and the other is a duplicate to delete.
    for with_own in [false, true] {
        let h = Harness::new();
        h.store()
            .append_journal(&[
                JournalEntry::Begin { serial: 0, lineage: "lin-intents".into() },
                JournalEntry::Intent { address: "test_thing.a".parse().expect("address"), rtype: TYPE.into(), token: "tok-a".into() },
            ])
            .await
            .expect("journal");
        let mut others = vec![found_a("obj-other", "tok-other", "2026-01-01T00:00:00Z")];
        if with_own {
            others.push(found_a("obj-own", "tok-a", "2026-01-02T00:00:00Z"));
        }
        *h.provider.others.lock().unwrap() = others;
        let dir = h.dir.path().to_path_buf();
        let (planned, _) = h.plan(&dir, "resource \"test_thing\" \"a\" {\n  name = \"a\"\n}\n").await.expect("plan");
        let plan = &planned.plan;
        let unmanaged: Vec<&str> = plan.unmanaged.iter().map(|u| u.id.as_str()).collect();
        let actions: Vec<(String, Action)> = plan.changes.iter().map(|c| (c.addr.to_string(), c.action)).collect();
        let adopted = planned.state.resources.get(&"test_thing.a".parse().expect("address")).map(|r| r.attributes.json()["id"].clone());
        if with_own {
            assert_eq!(adopted, Some(serde_json::json!("obj-own")), "the intent's own object is adopted");
            let duplicates: Vec<&str> = plan
                .changes
                .iter()
                .filter(|c| c.is_duplicate_delete())
                .filter_map(|c| c.before.as_ref().and_then(|b| b["id"].as_str()))
                .collect();
            assert_eq!(duplicates, ["obj-other"], "{actions:?}");
            assert!(unmanaged.is_empty(), "{unmanaged:?}");
        } else {
            assert_eq!(adopted, None, "an object with another token was adopted");
            assert_eq!(unmanaged, ["obj-other"]);
            assert_eq!(actions, [("test_thing.a".to_string(), Action::Create)]);
        }
    }
}
