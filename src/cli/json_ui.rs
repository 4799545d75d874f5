//! `apply --json`: the run as one JSON object per line on stdout, in
//! Terraform's machine-readable UI format (`terraform apply -json`):
//! every message has `@level`, `@message`, `@module`, `@timestamp` and
//! `type` — `version`, `log`, `planned_change`, `change_summary`,
//! `apply_start`, `apply_progress` (every 10 s while an action runs),
//! `apply_complete`, `apply_errored`, `diagnostic`, `outputs` — with the
//! `change` / `hook` objects Terraform gives them. Steps Terraform does not
//! have (drains, restores and health gates of a rollout) are hooks like any
//! other, with `action` = `drain`, `restore` or `health_check`.
//!
//! It writes only to stdout, a whole line at a time under one lock, so the
//! stream stays parseable line by line while actions run in parallel.

use himaplan_engine::addr::{InstanceAddr, InstanceKey};
use himaplan_engine::diag::{Diag, Diags, Severity};
use himaplan_engine::engine::{Event, Hooks};
use himaplan_engine::plan::{Action, Plan};
use himaplan_engine::state::State;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The version of this message format, as Terraform's `ui` field.
const UI_VERSION: &str = "1.2";
/// How often a running action reports that it still runs.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Writes the event stream; also the engine's hooks while it runs.
pub struct JsonUi {
    inner: Arc<Inner>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

struct Inner {
    out: Mutex<std::io::Stdout>,
    /// Actions started and not finished: (address, what) → start.
    running: Mutex<BTreeMap<(InstanceAddr, String), Instant>>,
    stop: AtomicBool,
}

impl JsonUi {
    /// Starts the stream with its `version` message and the progress ticker.
    pub fn start() -> JsonUi {
        let inner =
            Arc::new(Inner { out: Mutex::new(std::io::stdout()), running: Mutex::new(BTreeMap::new()), stop: AtomicBool::new(false) });
        let version = env!("CARGO_PKG_VERSION");
        inner.emit("info", &format!("himaplan {version}"), "version", json!({ "himaplan": version, "ui": UI_VERSION }));
        let ticking = inner.clone();
        let ticker = std::thread::spawn(move || ticking.tick());
        JsonUi { inner, ticker: Some(ticker) }
    }

    /// One `planned_change` per change, then the plan's `change_summary`.
    pub fn planned(&self, plan: &Plan) {
        for change in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
            let action = change_action(change.action);
            let mut body = Map::new();
            body.insert("resource".into(), resource(&change.addr));
            body.insert("action".into(), action.into());
            if let Some(reason) = &change.reason {
                body.insert("reason".into(), reason.as_str().into());
            }
            if let Some(disruption) = &change.disruption {
                body.insert("disruption".into(), disruption.as_str().into());
            }
            let message = format!("{}: Plan to {action}", change.addr);
            self.inner.emit("info", &message, "planned_change", json!({ "change": body }));
        }
        let (add, change, remove) = plan.summary_counts();
        let counts = json!({ "add": add, "change": change, "import": plan.imports.len(), "remove": remove, "operation": "plan" });
        self.inner.emit("info", &plan.summary_line(), "change_summary", json!({ "changes": counts }));
    }

    /// The apply's `change_summary` and its `outputs`.
    pub fn applied(&self, counts: (usize, usize, usize), state: &State) {
        let (add, change, remove) = counts;
        let message = format!("Apply complete! Resources: {add} added, {change} changed, {remove} destroyed.");
        let changes = json!({ "add": add, "change": change, "import": 0, "remove": remove, "operation": "apply" });
        self.inner.emit("info", &message, "change_summary", json!({ "changes": changes }));
        let mut outputs = Map::new();
        for (name, out) in &state.outputs {
            // A sensitive output shows neither its value nor its shape.
            let entry = if out.sensitive {
                json!({ "sensitive": true, "type": "dynamic" })
            } else {
                json!({ "sensitive": false, "type": type_of(&out.value), "value": out.value })
            };
            outputs.insert(name.clone(), entry);
        }
        let message = format!("Outputs: {}", outputs.len());
        self.inner.emit("info", &message, "outputs", json!({ "outputs": outputs }));
    }

    /// Each diagnostic as a `diagnostic` message.
    pub fn diagnostics(&self, diags: &Diags) {
        for d in &diags.0 {
            self.diagnostic(d);
        }
    }

    pub fn diagnostic(&self, d: &Diag) {
        let (level, word) = if d.severity == Severity::Error { ("error", "Error") } else { ("warn", "Warning") };
        let body = super::check::diag_json(d);
        self.inner.emit(level, &format!("{word}: {}", d.summary), "diagnostic", json!({ "diagnostic": body }));
    }

    /// A failed command as diagnostics (a configuration error, a refused
    /// plan file, an unreachable server).
    pub fn failure(&self, failure: &super::Failure) {
        match failure {
            super::Failure::Diags(diags) => self.diagnostics(diags),
            super::Failure::Other(e) => self.diagnostic(&Diag::error(format!("{e:#}"))),
        }
    }
}

impl Drop for JsonUi {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(ticker) = self.ticker.take() {
            ticker.thread().unpark();
            let _ = ticker.join();
        }
    }
}

impl Hooks for JsonUi {
    fn event(&self, event: Event) {
        let inner = &self.inner;
        match event {
            Event::Refreshing { rtype, count } => {
                let objects = if count == 1 { "object" } else { "objects" };
                inner.emit("info", &format!("Refreshing {count} {rtype} {objects}..."), "log", json!({}));
            }
            Event::ActionStarted { addr, what } => {
                let (action, words) = hook_action(&what);
                if let Ok(mut running) = inner.running.lock() {
                    running.insert((addr.clone(), what.clone()), Instant::now());
                }
                let hook = json!({ "resource": resource(&addr), "action": action });
                inner.emit("info", &format!("{addr}: {}...", words.start), "apply_start", json!({ "hook": hook }));
            }
            Event::ActionFinished { addr, what, elapsed } => {
                inner.finished(&addr, &what);
                let (action, words) = hook_action(&what);
                let secs = elapsed.as_secs();
                let hook = json!({ "resource": resource(&addr), "action": action, "elapsed_seconds": secs });
                inner.emit("info", &format!("{addr}: {} after {secs}s", words.complete), "apply_complete", json!({ "hook": hook }));
            }
            Event::ActionFailed { addr, what, error } => {
                let started = inner.finished(&addr, &what);
                let (action, words) = hook_action(&what);
                let secs = started.map(|s| s.elapsed().as_secs()).unwrap_or(0);
                let hook = json!({ "resource": resource(&addr), "action": action, "elapsed_seconds": secs, "error": error });
                inner.emit("error", &format!("{addr}: {} errored after {secs}s", words.start), "apply_errored", json!({ "hook": hook }));
            }
            Event::Retrying { what, attempt, error } => {
                inner.emit("warn", &format!("{what}: retry {attempt} after transient error: {error}"), "log", json!({}));
            }
            Event::Note(text) => inner.emit("info", &text, "log", json!({})),
        }
    }
}

impl Inner {
    /// Writes one message as one line.
    fn emit(&self, level: &str, message: &str, kind: &str, extra: Value) {
        let mut object = Map::new();
        object.insert("@level".into(), level.into());
        object.insert("@message".into(), message.into());
        object.insert("@module".into(), "himaplan.ui".into());
        object.insert("@timestamp".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
        object.insert("type".into(), kind.into());
        if let Value::Object(extra) = extra {
            object.extend(extra);
        }
        let line = Value::Object(object).to_string();
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn finished(&self, addr: &InstanceAddr, what: &str) -> Option<Instant> {
        self.running.lock().ok()?.remove(&(addr.clone(), what.to_string()))
    }

    /// Every [`PROGRESS_EVERY`], an `apply_progress` per running action.
    fn tick(&self) {
        let mut next = Instant::now() + PROGRESS_EVERY;
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            if now < next {
                std::thread::park_timeout(next - now);
                continue;
            }
            next += PROGRESS_EVERY;
            let running: Vec<((InstanceAddr, String), Instant)> =
                self.running.lock().map(|r| r.iter().map(|(k, v)| (k.clone(), *v)).collect()).unwrap_or_default();
            for ((addr, what), started) in running {
                let (action, words) = hook_action(&what);
                let secs = started.elapsed().as_secs();
                let hook = json!({ "resource": resource(&addr), "action": action, "elapsed_seconds": secs });
                self.emit(
                    "info",
                    &format!("{addr}: Still {}... [{secs}s elapsed]", words.still),
                    "apply_progress",
                    json!({ "hook": hook }),
                );
            }
        }
    }
}

/// Terraform's words for an action's start, progress and completion.
struct Words {
    start: String,
    still: String,
    complete: String,
}

/// The hook `action` of an engine step (`create`, `drain web[0]`, …) and
/// its words.
fn hook_action(what: &str) -> (&'static str, Words) {
    let words = |start: &str, still: &str, complete: &str| Words { start: start.into(), still: still.into(), complete: complete.into() };
    let (verb, rest) = what.split_once(' ').unwrap_or((what, ""));
    match verb {
        "create" => ("create", words("Creating", "creating", "Creation complete")),
        "update" => ("update", words("Modifying", "modifying", "Modifications complete")),
        "delete" => ("delete", words("Destroying", "destroying", "Destruction complete")),
        "drain" => ("drain", words(&format!("Draining {rest}"), "draining", "Drain complete")),
        "restore" => ("restore", words(&format!("Restoring {rest}"), "restoring", "Restore complete")),
        "health" => ("health_check", words("Waiting for the health check", "waiting for the health check", "Health check passed")),
        _ => ("update", words(what, what, &format!("{what} complete"))),
    }
}

/// Terraform's plan action names.
fn change_action(action: Action) -> &'static str {
    match action {
        Action::NoOp => "noop",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
        Action::DeleteThenCreate | Action::CreateThenDelete => "replace",
    }
}

/// Terraform's `resource` object of a hook or change.
fn resource(addr: &InstanceAddr) -> Value {
    let module = if addr.resource.module.is_root() { String::new() } else { addr.resource.module.to_string() };
    let local = InstanceAddr {
        resource: himaplan_engine::addr::ResourceAddr::new(Default::default(), &addr.resource.rtype, &addr.resource.name),
        key: addr.key.clone(),
    };
    let key = match &addr.key {
        None => Value::Null,
        Some(InstanceKey::Int(n)) => Value::from(*n),
        Some(InstanceKey::Str(s)) => Value::from(s.as_str()),
    };
    json!({
        "addr": addr.to_string(),
        "module": module,
        "resource": local.to_string(),
        "implied_provider": addr.resource.rtype.split('_').next().unwrap_or_default(),
        "resource_type": addr.resource.rtype,
        "resource_name": addr.resource.name,
        "resource_key": key,
    })
}

/// The type of an output value in Terraform's JSON type notation.
fn type_of(value: &Value) -> Value {
    match value {
        Value::Null => json!("dynamic"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => json!(["tuple", items.iter().map(type_of).collect::<Vec<_>>()]),
        Value::Object(map) => json!(["object", map.iter().map(|(k, v)| (k.clone(), type_of(v))).collect::<Map<_, _>>()]),
    }
}
