//! End to end through the `himaplan` binary: an nginx upstream kept in step
//! with an EC2 web tier (real moto + real nginx on loopback), and the
//! Himalytix example's PgBouncer (real PostgreSQL + PgBouncer).
//!
//! Every assertion rests on what the real servers saw, never on himaplan's
//! own report alone: moto's request recorder gives the order of the EC2
//! calls, and an `nginx_bin` wrapper logs the include file at each
//! `nginx -s reload` and then sends moto a marker request, so each reload
//! takes its place in that same recorded sequence. PgBouncer is asked
//! directly on its admin console.
//!
//! moto's instances have private-range addresses. The nginx of these tests
//! (tests/support/servers.rs) defines the upstream listing them, proxied to
//! only under `/app/`, and no test here sends nginx a request: nothing here
//! ever leaves 127.0.0.0/8. A drained server stays listed, marked `down`:
//! [`Reload::lists`] counts only servers in rotation.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/servers.rs"]
mod servers;
mod support;

use moto::{Moto, Request};
use servers::{Nginx, Pgbouncer, Reload};
use std::collections::{BTreeMap, BTreeSet};
use support::{Run, TestDir};

// ---------------------------------------------------------------------------
// The web tier behind nginx

/// `web_count` instances of `instance_type`, resized one at a time, listed
/// by the upstream of `nginx`, reloaded through `nginx_bin`.
fn web_tier_hcl(nginx: &Nginx, nginx_bin: &std::path::Path) -> String {
    format!(
        r#"
variable "web_count" {{
  type    = number
  default = 3
}}

variable "instance_type" {{
  type    = string
  default = "t3.small"
}}

resource "aws_instance" "web" {{
  count         = var.web_count
  ami           = "{ami}"
  instance_type = var.instance_type
  tags = {{
    Name = "web-${{count.index}}"
  }}
  rollout {{
    max_unavailable = 1
  }}
}}

resource "nginx_upstream" "web" {{
  config_file  = "{file}"
  name         = "{name}"
  servers      = [for i in aws_instance.web : "${{i.private_ip}}:8000"]
  max_fails    = 3
  fail_timeout = "30s"
  nginx_conf   = "{conf}"
  nginx_prefix = "{prefix}"
  nginx_bin    = "{bin}"
}}
"#,
        ami = moto::AMI,
        file = nginx.upstream_file.display(),
        name = servers::UPSTREAM_NAME,
        conf = nginx.conf.display(),
        prefix = nginx.prefix.display(),
        bin = nginx_bin.display(),
    )
}

/// Runs himaplan against `moto` with extra arguments.
fn run(dir: &TestDir, moto: &Moto, args: &[&str]) -> Run {
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dir.run_with(args, &env, None)
}

/// `aws_instance.web[i]` → (instance id, private ip), from the state file.
fn web_instances(dir: &TestDir) -> BTreeMap<String, (String, String)> {
    dir.state()["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| r["type"] == "aws_instance")
        .map(|r| {
            let a = &r["attributes"];
            (
                r["address"].as_str().expect("address").to_string(),
                (a["id"].as_str().expect("id").to_string(), a["private_ip"].as_str().expect("private_ip").to_string()),
            )
        })
        .collect()
}

/// What the servers saw, in moto's order.
#[derive(Debug)]
enum Event {
    Reload(Reload),
    Run,
    Stop(Vec<String>),
    Start(Vec<String>),
    Terminate(Vec<String>),
}

/// Merges moto's recording with the wrapper's reload log: each reload is
/// placed where its marker request arrived. Every logged reload must have
/// its marker in the recording (else the merge would hide one).
fn timeline(recorded: &[Request], reloads: &[Reload]) -> Vec<Event> {
    let by_id: BTreeMap<&str, &Reload> = reloads.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut seen = BTreeSet::new();
    let ids = |r: &Request| r.instance_ids().into_iter().map(str::to_string).collect::<Vec<_>>();
    let events: Vec<Event> = recorded
        .iter()
        .filter_map(|r| match r.action.as_str() {
            "DescribeRegions" => {
                let id = r.params.get("RegionName.1")?;
                let reload = by_id.get(id.as_str())?;
                seen.insert(id.clone());
                Some(Event::Reload((*reload).clone()))
            }
            "RunInstances" => Some(Event::Run),
            "StopInstances" => Some(Event::Stop(ids(r))),
            "StartInstances" => Some(Event::Start(ids(r))),
            "TerminateInstances" => Some(Event::Terminate(ids(r))),
            _ => None,
        })
        .collect();
    let missing: Vec<&str> = reloads.iter().map(|r| r.id.as_str()).filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "reloads whose marker moto did not record: {missing:?}");
    events
}

/// One line per event, instance ids shown as their private ips.
fn describe(events: &[Event], ips: &BTreeMap<&str, &str>) -> String {
    let ip = |ids: &[String]| {
        ids.iter().map(|id| ips.get(id.as_str()).copied().unwrap_or(id.as_str()).to_string()).collect::<Vec<_>>().join(",")
    };
    events
        .iter()
        .map(|e| match e {
            Event::Reload(r) => {
                let servers: Vec<&str> =
                    r.text.lines().filter_map(|l| l.trim().strip_prefix("server ")).map(|s| s.split(':').next().unwrap_or(s)).collect();
                format!("  reload [{}]", servers.join(" "))
            }
            Event::Run => "  RunInstances".to_string(),
            Event::Stop(ids) => format!("  StopInstances {}", ip(ids)),
            Event::Start(ids) => format!("  StartInstances {}", ip(ids)),
            Event::Terminate(ids) => format!("  TerminateInstances {}", ip(ids)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The include file's servers, one `host` per line it lists.
fn listed<'a>(text: &str, ips: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    let reload = Reload { id: String::new(), at: 0.0, text: text.to_string() };
    ips.into_iter().filter(|ip| reload.lists(ip)).cloned().collect()
}

/// Resizing 3 upstream-listed instances with `max_unavailable = 1`: the
/// plan shows the drain steps, each instance is out of the reloaded
/// upstream at its StopInstances, back in the first reload after its
/// StartInstances, and never are two out at once.
#[test]
fn resize_drains_each_instance_out_of_the_upstream() {
    let Some(moto) = moto::turn() else { return };
    let Some(nginx) = Nginx::start("drain") else { return };
    let wrapper = nginx.reload_logging_wrapper(&moto.endpoint);
    let dir = TestDir::new(&web_tier_hcl(&nginx, &wrapper));
    run(&dir, &moto, &["apply", "--auto-approve"]).assert_code(0);
    let web = web_instances(&dir);
    assert_eq!(web.len(), 3, "{web:?}");
    let ips: BTreeMap<&str, &str> = web.values().map(|(id, ip)| (id.as_str(), ip.as_str())).collect();
    let all_ips: Vec<String> = ips.values().map(|s| s.to_string()).collect();
    assert_eq!(listed(&nginx.upstream_text(), &all_ips).len(), 3, "the upstream lists every instance:\n{}", nginx.upstream_text());

    let plan = run(&dir, &moto, &["plan", "--var", "instance_type=t3.medium"]);
    plan.assert_code(0);
    let out = plan.stdout();
    let order = out.split_once("Apply order").map(|(_, rest)| rest).unwrap_or_else(|| panic!("no Apply order in the plan:\n{out}"));
    for i in 0..3 {
        let line =
            format!("aws_instance.web batch {}/3 (max_unavailable = 1): drain aws_instance.web[{i}] from nginx_upstream.web (", i + 1);
        assert!(order.contains(&line), "the plan does not show the drain of web[{i}] ({line:?}):\n{out}");
    }

    nginx.clear_reloads();
    moto.start_recording();
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "instance_type=t3.medium"]).assert_code(0);
    let recorded = moto.recorded();
    let reloads = nginx.reloads();
    let events = timeline(&recorded, &reloads);
    eprintln!("drain timeline (moto's order):\n{}", describe(&events, &ips));

    // Walk the merged sequence, holding what nginx last loaded.
    // Before the first reload nginx runs what the create left: all three.
    let mut live: BTreeSet<String> = all_ips.iter().cloned().collect();
    let mut awaiting_restore: BTreeSet<String> = BTreeSet::new();
    let (mut stops, mut starts, mut max_absent) = (0, 0, 0);
    for event in &events {
        match event {
            Event::Reload(r) => {
                live = listed(&r.text, &all_ips);
                let absent = all_ips.len() - live.len();
                max_absent = max_absent.max(absent);
                assert!(absent <= 1, "reload {} leaves {absent} web instances out:\n{}", r.id, r.text);
                for ip in std::mem::take(&mut awaiting_restore) {
                    assert!(live.contains(&ip), "{ip} is not back in the first reload after its start:\n{}", r.text);
                }
            }
            Event::Stop(ids) => {
                stops += 1;
                assert_eq!(ids.len(), 1, "one instance per StopInstances with max_unavailable = 1: {ids:?}");
                let ip = ips[ids[0].as_str()];
                assert!(!live.contains(ip), "{} ({ip}) was stopped while the reloaded upstream still listed it", ids[0]);
            }
            Event::Start(ids) => {
                starts += 1;
                awaiting_restore.extend(ids.iter().map(|id| ips[id.as_str()].to_string()));
            }
            Event::Run | Event::Terminate(_) => panic!("a resize must not create or terminate instances: {event:?}"),
        }
    }
    assert!(awaiting_restore.is_empty(), "started but never reloaded back in: {awaiting_restore:?}");
    assert_eq!((stops, starts), (3, 3), "every instance stopped and started once");
    assert_eq!(max_absent, 1, "each instance was drained");
    assert_eq!(listed(&nginx.upstream_text(), &all_ips).len(), 3, "all back at the end:\n{}", nginx.upstream_text());
    for (id, _) in web.values() {
        let seen = moto.instance(id);
        assert_eq!((seen.instance_type.as_str(), seen.state.as_str()), ("t3.medium", "running"), "{id}");
    }
    eprintln!(
        "drain figures: {} reloads, {stops} stops, {starts} starts, at most {max_absent} instance out of the upstream at once",
        reloads.len()
    );
}

/// Scale-down 4 → 2: instances [2] and [3] are out of the reloaded upstream
/// before their TerminateInstances; scale-up 2 → 3: the new instance is
/// launched before the first reload that lists it.
#[test]
fn scaling_orders_the_upstream_around_the_instances() {
    let Some(moto) = moto::turn() else { return };
    let Some(nginx) = Nginx::start("scale") else { return };
    let wrapper = nginx.reload_logging_wrapper(&moto.endpoint);
    let dir = TestDir::new(&web_tier_hcl(&nginx, &wrapper));
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "web_count=4"]).assert_code(0);
    let four = web_instances(&dir);
    assert_eq!(four.len(), 4);

    // Down to 2.
    nginx.clear_reloads();
    moto.start_recording();
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "web_count=2"]).assert_code(0);
    let reloads = nginx.reloads();
    let events = timeline(&moto.recorded(), &reloads);
    let ips: BTreeMap<&str, &str> = four.values().map(|(id, ip)| (id.as_str(), ip.as_str())).collect();
    eprintln!("scale-down timeline (moto's order):\n{}", describe(&events, &ips));
    let leaving: BTreeMap<String, String> = ["aws_instance.web[2]", "aws_instance.web[3]"].iter().map(|a| four[*a].clone()).collect();
    let mut last: Option<&Reload> = None;
    let mut terminated = BTreeSet::new();
    for event in &events {
        match event {
            Event::Reload(r) => last = Some(r),
            Event::Terminate(ids) => {
                for id in ids {
                    let ip = leaving.get(id).unwrap_or_else(|| panic!("{id} is not one of the removed instances {leaving:?}"));
                    let r = last.unwrap_or_else(|| panic!("{id} terminated before any reload of nginx"));
                    assert!(!r.lists(ip), "{id} ({ip}) terminated while the last reload still listed it:\n{}", r.text);
                    terminated.insert(id.clone());
                }
            }
            Event::Stop(_) | Event::Start(_) | Event::Run => panic!("a scale-down only terminates: {event:?}"),
        }
    }
    assert_eq!(terminated, leaving.keys().cloned().collect(), "both removed instances were terminated");
    for (id, _) in leaving.iter() {
        assert_eq!(moto.instance(id).state, "terminated", "{id}");
    }
    let down_reloads = reloads.len();

    // Up to 3.
    nginx.clear_reloads();
    moto.start_recording();
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "web_count=3"]).assert_code(0);
    let reloads = nginx.reloads();
    let events = timeline(&moto.recorded(), &reloads);
    let three = web_instances(&dir);
    let ips: BTreeMap<&str, &str> = three.values().map(|(id, ip)| (id.as_str(), ip.as_str())).collect();
    eprintln!("scale-up timeline (moto's order):\n{}", describe(&events, &ips));
    let (new_id, new_ip) = three["aws_instance.web[2]"].clone();
    assert!(!leaving.contains_key(&new_id), "a fresh instance, not a terminated one");
    let launched = events.iter().position(|e| matches!(e, Event::Run)).expect("RunInstances was called");
    let joined = events
        .iter()
        .position(|e| matches!(e, Event::Reload(r) if r.lists(&new_ip)))
        .unwrap_or_else(|| panic!("no reload lists the new instance {new_ip}: {reloads:?}"));
    assert!(launched < joined, "the new instance joined the upstream before it was launched: {events:?}");
    assert_eq!(moto.instance(&new_id).state, "running");
    assert!(nginx.upstream_text().contains(&format!("server {new_ip}:8000")), "{}", nginx.upstream_text());
    eprintln!("scale figures: 4 → 2 took {down_reloads} reload(s) before 2 terminations; 2 → 3 took {} reload(s)", reloads.len());
}

// ---------------------------------------------------------------------------
// PgBouncer of the Himalytix example

/// The example's PgBouncer declaration, unchanged.
fn example_pgbouncer() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/himalytix/pgbouncer.hcl");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The variables pointing the example at the test's PgBouncer, as CI would
/// pass them (HIMAPLAN_VAR_...).
fn pgbouncer_vars(s: &Pgbouncer) -> Vec<(String, String)> {
    [
        ("pgbouncer_config_file", s.var("PGBOUNCER_INI")),
        ("pgbouncer_admin_url", s.var("PGBOUNCER_ADMIN_URL")),
        ("pgbouncer_run_dir", s.var("PGBOUNCER_RUN")),
        ("pgbouncer_auth_file", s.var("PGBOUNCER_USERLIST")),
        ("pgbouncer_port", s.var("PGBOUNCER_PORT")),
        ("postgres_port", s.var("PG_PORT")),
    ]
    .into_iter()
    .map(|(k, v)| (format!("HIMAPLAN_VAR_{k}"), v))
    .collect()
}

/// The admin console, asked directly (simple query protocol only).
struct Console {
    client: tokio_postgres::Client,
    rt: tokio::runtime::Runtime,
}

impl Console {
    fn connect(url: &str) -> Console {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to the admin console");
            tokio::spawn(conn);
            client
        });
        Console { client, rt }
    }

    /// The rows of an admin command, each as column → value.
    fn rows(&self, sql: &str) -> Vec<BTreeMap<String, String>> {
        let messages = self.rt.block_on(self.client.simple_query(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    row.columns().iter().enumerate().map(|(i, c)| (c.name().to_string(), row.get(i).unwrap_or("").to_string())).collect(),
                ),
                _ => None,
            })
            .collect()
    }

    fn config(&self, key: &str) -> String {
        self.rows("SHOW CONFIG").into_iter().find(|r| r["key"] == key).unwrap_or_else(|| panic!("SHOW CONFIG has no {key}"))["value"]
            .clone()
    }

    fn database(&self, name: &str, column: &str) -> String {
        self.rows("SHOW DATABASES").into_iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("SHOW DATABASES has no {name}"))
            [column]
            .clone()
    }
}

/// The keys whose values differ between two JSON objects, nested keys
/// joined with dots.
fn changed_paths(before: &serde_json::Value, after: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match (before, after) {
        (serde_json::Value::Object(b), serde_json::Value::Object(a)) => {
            let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
            for k in keys {
                let null = serde_json::Value::Null;
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                changed_paths(b.get(k).unwrap_or(&null), a.get(k).unwrap_or(&null), &path, out);
            }
        }
        (b, a) if b != a => out.push(prefix.to_string()),
        _ => {}
    }
}

/// A `pgbouncer` whose admin URL (with its password) comes only from a
/// sensitive variable — no provider block, no PGBOUNCER_ADMIN_URL — keeps
/// working after its first apply: refresh takes the URL from the resource's
/// own configuration, known before refresh, while state keeps its hash.
#[test]
fn a_pgbouncer_whose_admin_url_is_only_in_its_configuration_refreshes_after_apply() {
    let Some(s) = Pgbouncer::start("own-url") else { return };
    let provider_block = "provider \"pgbouncer\" {\n  admin_url = var.pgbouncer_admin_url\n}\n";
    let example = example_pgbouncer();
    assert!(example.contains(provider_block), "the example's provider block moved");
    let dir = TestDir::new(&example.replace(provider_block, ""));
    let vars = pgbouncer_vars(&s);
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |args: &[&str], expect: i32| {
        let r = dir.run_with(args, &env, None);
        r.assert_code(expect);
        r
    };
    run(&["apply", "--auto-approve"], 0);
    assert!(dir.state_text().contains("$argon2id$"), "state keeps only the URL's hash");
    run(&["plan", "--detailed-exitcode"], 0);
    run(&["drift", "--detailed-exitcode"], 0);
    run(&["apply", "--auto-approve", "--var", "pgbouncer_default_pool_size=26"], 0);
    assert_eq!(Console::connect(&s.var("PGBOUNCER_ADMIN_URL")).config("default_pool_size"), "26");
}

/// The example's `pgbouncer`: default_pool_size 20 → 25 and appdb's
/// pool_size 20 → 30 plan as exactly those two attributes, are live after
/// apply, a runtime `SET default_pool_size = 7` is drift (exit 2) that
/// apply undoes — and the admin password is never printed or stored.
#[test]
fn example_pgbouncer_pools_follow_the_configuration() {
    let Some(s) = Pgbouncer::start("example") else { return };
    let password = s
        .var("PGBOUNCER_ADMIN_URL")
        .split_once("://")
        .and_then(|(_, r)| r.split_once('@'))
        .map(|(cred, _)| cred.split_once(':').expect("user:password").1.to_string())
        .expect("password in the admin URL");
    let dir = TestDir::new(&example_pgbouncer());
    let vars = pgbouncer_vars(&s);
    let mut runs: Vec<Run> = Vec::new();
    let mut himaplan = |args: &[&str], expect: i32| {
        let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = dir.run_with(args, &env, None);
        r.assert_code(expect);
        runs.push(r);
        runs.last().expect("just pushed").stdout()
    };

    himaplan(&["apply", "--auto-approve", "--var", "pgbouncer_default_pool_size=20", "--var", "appdb_pool_size=20"], 0);
    let console = Console::connect(&s.var("PGBOUNCER_ADMIN_URL"));
    assert_eq!(console.config("default_pool_size"), "20");
    assert_eq!(console.config("pool_mode"), "transaction", "the example's runbook settings are live");
    assert_eq!(console.config("max_client_conn"), "1000");
    assert_eq!(console.database("appdb", "pool_size"), "20");

    // The plan: one in-place update of exactly the two pool sizes.
    let json = himaplan(&["plan", "--format", "json"], 0);
    let plan: serde_json::Value = serde_json::from_str(&json).expect("plan JSON");
    let changes: Vec<&serde_json::Value> = plan["resource_changes"]
        .as_array()
        .expect("resource_changes")
        .iter()
        .filter(|c| c["change"]["actions"] != serde_json::json!(["no-op"]))
        .collect();
    assert_eq!(changes.len(), 1, "{json}");
    assert_eq!(changes[0]["address"], "pgbouncer.main[0]");
    assert_eq!(changes[0]["change"]["actions"], serde_json::json!(["update"]));
    let mut paths = Vec::new();
    changed_paths(&changes[0]["change"]["before"], &changes[0]["change"]["after"], "", &mut paths);
    assert_eq!(paths, ["database.appdb.pool_size", "default_pool_size"], "{json}");
    let human = himaplan(&["plan"], 0);
    assert!(human.contains("default_pool_size") && (human.contains("20 -> 25") || human.contains("20 → 25")), "{human}");
    assert!(human.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{human}");

    himaplan(&["apply", "--auto-approve"], 0);
    assert_eq!(console.config("default_pool_size"), "25");
    assert_eq!(console.database("appdb", "pool_size"), "30");
    himaplan(&["plan", "--detailed-exitcode"], 0);

    // A runtime SET is drift; apply restores the declared value.
    console.rows("SET default_pool_size = 7");
    assert_eq!(console.config("default_pool_size"), "7");
    let drift = himaplan(&["drift", "--detailed-exitcode"], 2);
    assert!(drift.contains("default_pool_size"), "{drift}");
    assert_eq!(console.config("default_pool_size"), "7", "drift changes nothing");
    himaplan(&["apply", "--auto-approve"], 0);
    assert_eq!(console.config("default_pool_size"), "25");
    himaplan(&["drift", "--detailed-exitcode"], 0);

    // The secret: in no output, in no file beside the state.
    for r in &runs {
        assert!(!r.all().contains(&password), "himaplan {:?} printed the admin password:\n{}", r.args, r.all());
    }
    for entry in std::fs::read_dir(dir.join("state")).expect("state dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(&password), "{} holds the admin password", path.display());
    }
    let state = dir.state_text();
    assert!(state.contains("$argon2id$"), "admin_url is kept as a hash:\n{state}");
}

/// A saved resize plan of the web tier behind nginx, drawn by `graph --plan`
/// and read back by Graphviz (`dot -Tjson`): one cluster per rollout batch
/// holding drain from the upstream → the instance's stop/start → restore,
/// each batch after the whole of the previous one.
#[test]
fn a_saved_resize_plan_graphs_each_batch_drained_from_the_upstream() {
    let Some(moto) = moto::turn() else { return };
    let Some(nginx) = Nginx::start("graph") else { return };
    let dir = TestDir::new(&web_tier_hcl(&nginx, std::path::Path::new("nginx")));
    run(&dir, &moto, &["apply", "--auto-approve"]).assert_code(0);
    run(&dir, &moto, &["plan", "--var", "instance_type=t3.medium", "--out", "resize.plan"]).assert_code(0);
    let dot = run(&dir, &moto, &["graph", "--plan", "resize.plan"]);
    dot.assert_code(0);
    let dot = dot.stdout();
    let Some(doc) = support::graphviz(&dot) else { return };
    let clusters: Vec<(String, BTreeSet<String>)> =
        support::dot_clusters(&doc).into_iter().map(|(label, nodes)| (label, nodes.into_iter().collect())).collect();
    let member = |i: usize| format!("~ aws_instance.web[{i}] (stop/start)");
    let want: Vec<(String, BTreeSet<String>)> = (0..3)
        .map(|i| {
            let nodes = ["drain from nginx_upstream.web".to_string(), member(i), "restore nginx_upstream.web".to_string()];
            (format!("aws_instance.web batch {}/3 (max_unavailable = 1)", i + 1), nodes.into_iter().collect())
        })
        .collect();
    assert_eq!(clusters, want, "{dot}");
    // Per batch: drain → member → restore (2), and batches 2 and 3 start after the whole previous batch
    // (its member and its restore, 2 each): 3 × 2 + 2 × 2 edges.
    assert_eq!(doc["edges"].as_array().expect("edges").len(), 10, "{dot}");
}
