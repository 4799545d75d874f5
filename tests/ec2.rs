//! End to end through the real `himaplan` binary against a real moto
//! server: EC2 fleets shaped like `examples/himalytix` (`aws_instance` with
//! `count`, `instance_type` from a variable, `rollout { max_unavailable }`)
//! are created, resized, scaled, drifted, imported, planned to files and
//! applied concurrently. What really exists is always checked through
//! moto (the SDK or its request recorder), never through himaplan.
//!
//! Tests take turns on one moto server per binary (see `support/moto.rs`),
//! which is reset before each test. Without moto they skip, except under
//! `CI=true`, where they fail and say why.

#[path = "support/moto.rs"]
mod moto;
mod support;

use moto::{Moto, Request, Seen};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Run, StateFiles, TestDir};

const AMI: &str = moto::AMI;

// ---------------------------------------------------------------------------
// Fixtures

/// A fleet `aws_instance.NAME` shaped like the Himalytix web tier: count
/// and instance type from variables, a literal rollout limit.
fn fleet(name: &str, count: usize, instance_type: &str, max_unavailable: usize) -> String {
    format!(
        r#"
variable "{name}_count" {{
  type    = number
  default = {count}
}}

variable "{name}_type" {{
  type    = string
  default = "{instance_type}"
}}

variable "{name}_release" {{
  type    = string
  default = "r1"
}}

resource "aws_instance" "{name}" {{
  count         = var.{name}_count
  ami           = "{AMI}"
  instance_type = var.{name}_type

  tags = {{
    Name    = format("{name}-%02d", count.index + 1)
    Release = var.{name}_release
  }}

  rollout {{
    max_unavailable = {max_unavailable}
  }}
}}
"#
    )
}

const PROVIDER: &str = "provider \"aws\" {\n  region = \"us-east-1\"\n}\n";

/// A configuration of the given fleets.
fn config(fleets: &[String]) -> String {
    let mut text = PROVIDER.to_string();
    for f in fleets {
        text.push_str(f);
    }
    text
}

/// A configuration directory wired to the moto server.
struct Stack<'m> {
    dir: TestDir,
    moto: &'m Moto,
}

impl<'m> Stack<'m> {
    fn new(moto: &'m Moto, hcl: &str) -> Stack<'m> {
        Stack { dir: TestDir::new(hcl), moto }
    }

    fn run(&self, args: &[&str]) -> Run {
        let env = self.moto.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.dir.run_with(args, &env, None)
    }

    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        run.assert_code(0);
        run
    }

    /// Starts `himaplan ARGS` without waiting for it.
    fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = Command::new(support::binary());
        cmd.args(args).current_dir(self.dir.path()).env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("HIMAPLAN_VAR_") || k.starts_with("AWS_") {
                cmd.env_remove(&key);
            }
        }
        for (k, v) in self.moto.env() {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().expect("start himaplan")
    }

    fn lineage(&self) -> String {
        self.dir.state()["lineage"].as_str().expect("lineage").to_string()
    }

    /// The instance id state records for `address`.
    fn id(&self, address: &str) -> String {
        self.dir.state_attrs(address)["id"].as_str().expect("id").to_string()
    }

    /// Address → id of every resource in state.
    fn ids(&self) -> BTreeMap<String, String> {
        self.dir
            .state_addresses()
            .into_iter()
            .map(|a| {
                let id = self.id(&a);
                (a, id)
            })
            .collect()
    }

    /// The live (not terminated) instances of this state's lineage in moto.
    fn live(&self) -> Vec<Seen> {
        let mut live: Vec<Seen> = self
            .moto
            .lineage_instances(&self.lineage())
            .into_iter()
            .filter(|s| s.state != "terminated" && s.state != "shutting-down")
            .collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        live
    }
}

/// The stop/modify/start requests of a recording, as (action, instance id).
fn disruptions(recorded: &[Request]) -> Vec<(String, String)> {
    recorded
        .iter()
        .filter(|r| matches!(r.action.as_str(), "StopInstances" | "ModifyInstanceAttribute" | "StartInstances"))
        .flat_map(|r| r.instance_ids().into_iter().map(|id| (r.action.clone(), id.to_string())))
        .collect()
}

/// The most instances ever stopped at once: stopped from their Stop request
/// until their Start request, walking the recording in order.
fn max_concurrently_stopped(events: &[(String, String)]) -> usize {
    let mut stopped = BTreeSet::new();
    let mut most = 0;
    for (action, id) in events {
        match action.as_str() {
            "StopInstances" => {
                stopped.insert(id.clone());
                most = most.max(stopped.len());
            }
            "StartInstances" => {
                stopped.remove(id);
            }
            _ => {}
        }
    }
    most
}

/// Creates `count` instances, resizes them t3.micro → t3.small with the
/// given rollout limit, checks the plan, the result in moto and the request
/// order per instance, and returns the most instances stopped at once.
fn resize_fleet(moto: &Moto, count: usize, max_unavailable: usize) -> usize {
    let stack = Stack::new(moto, &config(&[fleet("web", count, "t3.micro", max_unavailable)]));
    stack.ok(&["apply", "--auto-approve"]);
    let before = stack.ids();
    assert_eq!(before.len(), count);

    let plan = stack.run(&["plan", "--var", "web_type=t3.small", "--detailed-exitcode"]);
    plan.assert_code(2);
    let out = plan.stdout();
    for i in 0..count {
        assert!(
            out.contains(&format!("# aws_instance.web[{i}] will be updated in place (disruptive: stop/start)")),
            "web[{i}] is not an in-place, disruptive change:\n{out}"
        );
    }
    assert!(out.contains("\"t3.micro\" -> \"t3.small\""), "{out}");
    assert!(out.contains(&format!("Plan: 0 to add, {count} to change, 0 to destroy.")), "{out}");

    moto.start_recording();
    stack.ok(&["apply", "--auto-approve", "--var", "web_type=t3.small"]);
    let recorded = moto.recorded();

    assert_eq!(stack.ids(), before, "a resize must keep every instance");
    for (address, id) in &before {
        let seen = moto.instance(id);
        assert_eq!((seen.instance_type.as_str(), seen.state.as_str()), ("t3.small", "running"), "{address}: {seen:?}");
    }
    let events = disruptions(&recorded);
    for (address, id) in &before {
        let order: Vec<&str> = events.iter().filter(|(_, i)| i == id).map(|(a, _)| a.as_str()).collect();
        assert_eq!(order, ["StopInstances", "ModifyInstanceAttribute", "StartInstances"], "requests for {address} ({id}); all: {events:?}");
    }
    let most = max_concurrently_stopped(&events);
    assert!(most <= max_unavailable, "{most} instances stopped at once with max_unavailable = {max_unavailable}: {events:?}");
    most
}

// ---------------------------------------------------------------------------
// Resize

/// Three instances resized with max_unavailable = 1: an in-place,
/// disruptive plan; each instance is stopped, modified and started in that
/// order, ends running with the new type, and never two are stopped at once.
#[test]
fn resize_of_three_stops_one_instance_at_a_time() {
    let Some(moto) = moto::turn() else { return };
    let most = resize_fleet(&moto, 3, 1);
    assert_eq!(most, 1);
}

/// Four instances resized with max_unavailable = 2: never more than two are
/// stopped at once, and the limit is used (two at once at least once).
#[test]
fn resize_of_four_with_max_unavailable_two_stops_two_at_a_time() {
    let Some(moto) = moto::turn() else { return };
    let most = resize_fleet(&moto, 4, 2);
    eprintln!("max_unavailable = 2 on 4 instances: at most {most} stopped at once");
    assert_eq!(most, 2, "the rollout never used its second slot");
}

// ---------------------------------------------------------------------------
// Scale

/// Scaling 3 → 5 → 2 adds [3] and [4], then removes the highest indexes
/// ([2], [3], [4] terminated) while [0] and [1] keep their instances.
#[test]
fn scale_three_to_five_to_two_removes_the_highest_indexes() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 3, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    let three = stack.ids();

    stack.ok(&["apply", "--auto-approve", "--var", "web_count=5"]);
    let five = stack.ids();
    assert_eq!(five.len(), 5, "{five:?}");
    for (address, id) in &three {
        assert_eq!(five.get(address), Some(id), "{address} was replaced while scaling up");
    }
    assert_eq!(stack.live().len(), 5);

    let plan = stack.run(&["plan", "--var", "web_count=2"]);
    plan.assert_code(0);
    assert!(plan.stdout().contains("Plan: 0 to add, 0 to change, 3 to destroy."), "{}", plan.stdout());
    stack.ok(&["apply", "--auto-approve", "--var", "web_count=2"]);
    assert_eq!(stack.dir.state_addresses(), ["aws_instance.web[0]", "aws_instance.web[1]"]);
    for address in ["aws_instance.web[0]", "aws_instance.web[1]"] {
        assert_eq!(stack.id(address), three[address], "{address} changed instance");
        assert_eq!(moto.instance(&three[address]).state, "running");
    }
    for i in 2..5 {
        let address = format!("aws_instance.web[{i}]");
        assert_eq!(moto.instance(&five[&address]).state, "terminated", "{address}");
    }
    let live: Vec<String> = stack.live().into_iter().map(|s| s.id).collect();
    let mut kept = vec![three["aws_instance.web[0]"].clone(), three["aws_instance.web[1]"].clone()];
    kept.sort();
    assert_eq!(live, kept);
}

// ---------------------------------------------------------------------------
// Drift

/// An instance stopped out of band is drift (`drift --detailed-exitcode`
/// exits 2); apply starts it again and a following plan has no changes.
#[test]
fn instance_stopped_out_of_band_is_drift_and_apply_restores_it() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 2, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    stack.run(&["drift", "--detailed-exitcode"]).assert_code(0);
    let id = stack.id("aws_instance.web[1]");
    let state_before = stack.dir.state_text();

    moto.stop_instance(&id);
    assert_eq!(moto.instance(&id).state, "stopped");
    let drift = stack.run(&["drift", "--detailed-exitcode"]);
    drift.assert_code(2);
    assert!(drift.stdout().contains("aws_instance.web[1]"), "{}", drift.stdout());
    assert!(drift.stdout().contains("stopped"), "{}", drift.stdout());
    assert_eq!(stack.dir.state_text(), state_before, "drift is read-only");

    stack.run(&["plan", "--detailed-exitcode"]).assert_code(2);
    stack.ok(&["apply", "--auto-approve"]);
    assert_eq!(moto.instance(&id).state, "running");
    assert_eq!(stack.id("aws_instance.web[1]"), id, "restoring must not replace the instance");
    stack.run(&["plan", "--detailed-exitcode"]).assert_code(0);
    stack.run(&["drift", "--detailed-exitcode"]).assert_code(0);
}

// ---------------------------------------------------------------------------
// Plan files

/// A saved resize of `web` is refused once another apply changed the same
/// instances (their tags): exit 1, state file unchanged, no instance touched.
#[test]
fn saved_plan_is_refused_when_its_own_instances_changed() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 2, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    stack.ok(&["plan", "--var", "web_type=t3.small", "--out", "A.plan"]);
    stack.ok(&["apply", "--auto-approve", "--var", "web_release=r2"]);

    let files = StateFiles::capture(&stack.dir, support::DEFAULT_STATE);
    moto.start_recording();
    let refused = stack.run(&["apply", "A.plan"]);
    let recorded = moto.recorded();
    refused.assert_code(1);
    assert!(refused.stderr().contains("stale"), "{}", refused.stderr());
    assert!(refused.stderr().contains("aws_instance.web[0]"), "{}", refused.stderr());
    assert_eq!(StateFiles::capture(&stack.dir, support::DEFAULT_STATE), files, "a refused plan changed state files");
    let writes: Vec<&str> = recorded.iter().map(|r| r.action.as_str()).filter(|a| !a.starts_with("Describe")).collect();
    assert!(writes.is_empty(), "a refused plan sent {writes:?}");
    for (address, id) in stack.ids() {
        let seen = moto.instance(&id);
        assert_eq!((seen.instance_type.as_str(), seen.state.as_str()), ("t3.micro", "running"), "{address}");
        assert_eq!(seen.tag("Release"), Some("r2"), "{address}");
    }
}

/// A saved resize of `worker` still applies after an apply that changed
/// only `web`; it resizes the workers and leaves web's new tags alone.
#[test]
fn saved_plan_for_other_resources_still_applies() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 2, "t3.micro", 1), fleet("worker", 2, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    let plan = stack.ok(&["plan", "--var", "worker_type=t3.small", "--out", "W.plan"]);
    assert!(plan.stdout().contains("Plan: 0 to add, 2 to change, 0 to destroy."), "{}", plan.stdout());
    stack.ok(&["apply", "--auto-approve", "--var", "web_release=r2"]);

    let applied = stack.run(&["apply", "W.plan"]);
    applied.assert_code(0);
    for (address, id) in stack.ids() {
        let seen = moto.instance(&id);
        let (want_type, want_release) = if address.starts_with("aws_instance.worker") { ("t3.small", "r1") } else { ("t3.micro", "r2") };
        assert_eq!((seen.instance_type.as_str(), seen.state.as_str()), (want_type, "running"), "{address}");
        assert_eq!(seen.tag("Release"), Some(want_release), "{address}: the saved plan must apply only its own changes");
    }
}

/// A saved resize of `worker` commits nothing beyond itself: a web instance
/// stopped out of band after the plan is not recorded as stopped by
/// `apply W.plan` (state keeps what it knew), and the next plan still
/// shows that drift and restores it.
#[test]
fn saved_plan_commits_no_drift_of_resources_it_does_not_change() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 2, "t3.micro", 1), fleet("worker", 1, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    stack.ok(&["plan", "--var", "worker_type=t3.small", "--out", "W.plan"]);
    let web = stack.id("aws_instance.web[1]");
    let web_entry = stack.dir.state_attrs("aws_instance.web[1]");
    moto.stop_instance(&web);

    stack.ok(&["apply", "W.plan"]);
    assert_eq!(moto.instance(&stack.id("aws_instance.worker[0]")).instance_type, "t3.small");
    assert_eq!(stack.dir.state_attrs("aws_instance.web[1]"), web_entry, "drift of a resource the plan does not change is not committed");
    assert_eq!(moto.instance(&web).state, "stopped", "nothing beyond the plan was carried out");
    stack.run(&["plan", "--detailed-exitcode"]).assert_code(2);
    stack.ok(&["apply", "--auto-approve"]);
    assert_eq!(moto.instance(&web).state, "running");
}

// ---------------------------------------------------------------------------
// Locking

/// Two applies started at once against one state: exactly one fails naming
/// the lock holder, the other creates all five instances, and nothing is
/// lost or doubled.
#[test]
fn concurrent_applies_one_fails_naming_the_holder() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 5, "t3.micro", 1)]));
    let children = [stack.spawn(&["apply", "--auto-approve"]), stack.spawn(&["apply", "--auto-approve"])];
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().expect("wait for himaplan")).collect();
    let codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
    let describe = |o: &std::process::Output| {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 1], "one must win, one must fail:\n{}\n{}", describe(&outputs[0]), describe(&outputs[1]));
    let loser = &outputs[codes.iter().position(|c| *c == 1).expect("a loser")];
    let message = String::from_utf8_lossy(&loser.stderr);
    assert!(message.contains("held by"), "the failure must name the holder: {message}");
    assert!(message.contains("\"apply\""), "the failure must say what holds the lock: {message}");

    let ids = stack.ids();
    assert_eq!(ids.len(), 5, "{ids:?}");
    let live: BTreeSet<String> = stack.live().into_iter().map(|s| s.id).collect();
    assert_eq!(live, ids.values().cloned().collect::<BTreeSet<_>>());
    stack.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

/// While a run holds the state lock, `plan` (which takes no lock) succeeds
/// and `apply` fails at once naming the holder.
#[test]
fn plan_succeeds_while_an_apply_holds_the_lock() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 2, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    let lock_path = stack.dir.join(&format!("{}.lock", support::DEFAULT_STATE));
    let held = himaplan_engine::state::lock::StateLock::acquire(&lock_path, "apply", Duration::ZERO).expect("take the lock");

    let plan = stack.run(&["plan", "--var", "web_count=3", "--detailed-exitcode"]);
    plan.assert_code(2);
    assert!(plan.stdout().contains("Plan: 1 to add, 0 to change, 0 to destroy."), "{}", plan.stdout());
    let apply = stack.run(&["apply", "--auto-approve", "--var", "web_count=3"]);
    apply.assert_code(1);
    assert!(apply.stderr().contains(&held.info().id), "{}", apply.stderr());
    assert!(apply.stderr().contains("held by"), "{}", apply.stderr());
    assert_eq!(stack.live().len(), 2);
    drop(held);
    stack.ok(&["apply", "--auto-approve", "--var", "web_count=3"]);
    assert_eq!(stack.live().len(), 3);
}

// ---------------------------------------------------------------------------
// Import and unmanaged objects

/// An instance created outside himaplan is imported into `legacy[0]`; the
/// next plan shows only the real difference (one tag), not a replacement.
#[test]
fn imported_instance_plans_only_real_differences() {
    let Some(moto) = moto::turn() else { return };
    let id = moto.run_instances(1, "t3.micro", &[("Name", "legacy-01")]).remove(0);
    let hcl = format!(
        r#"{PROVIDER}
resource "aws_instance" "legacy" {{
  count         = 1
  ami           = "{AMI}"
  instance_type = "t3.micro"
  tags = {{
    Name  = "legacy-01"
    Owner = "ops"
  }}
}}
"#
    );
    let stack = Stack::new(&moto, &hcl);
    stack.ok(&["import", "aws_instance.legacy[0]", &id]);
    assert_eq!(stack.id("aws_instance.legacy[0]"), id);
    let seen = moto.instance(&id);
    assert_eq!(seen.tag("himaplan:address"), Some("aws_instance.legacy[0]"));
    assert_eq!(seen.tag("himaplan:lineage"), Some(stack.lineage().as_str()));

    let plan = stack.run(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    let out = plan.stdout();
    assert!(out.contains("# aws_instance.legacy[0] will be updated in place"), "{out}");
    assert!(out.contains("+ Owner = \"ops\""), "{out}");
    assert!(out.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{out}");
    assert!(!out.contains("disruptive"), "a tag change is not disruptive:\n{out}");
    for attr in ["ami", "instance_type", "state", "subnet_id"] {
        assert!(!out.lines().any(|l| l.trim_start().starts_with(&format!("~ {attr} "))), "{attr} shows as changed:\n{out}");
    }
    stack.ok(&["apply", "--auto-approve"]);
    assert_eq!(moto.instance(&id).tag("Owner"), Some("ops"));
    stack.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

/// Instances carrying this state's lineage but absent from state and from
/// any intent (another run's leftovers) are reported by `plan` and
/// `drift` (exit 2), and neither adopted nor destroyed by `apply`.
#[test]
fn lineage_instance_not_in_state_is_reported_not_adopted() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 1, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    let lineage = stack.lineage();
    let labelled =
        moto.run_instances(1, "t3.micro", &[("himaplan:lineage", &lineage), ("himaplan:address", "aws_instance.web[7]")]).remove(0);
    let bare = moto.run_instances(1, "t3.micro", &[("himaplan:lineage", &lineage)]).remove(0);
    let state_before = stack.dir.state_text();

    let plan = stack.run(&["plan", "--detailed-exitcode"]);
    let out = plan.stdout();
    assert!(matches!(plan.code(), 0 | 2), "plan failed:\n{}", plan.stderr());
    for id in [&labelled, &bare] {
        assert!(out.contains(id.as_str()), "plan does not mention {id}:\n{out}");
    }
    assert!(out.contains("lineage"), "{out}");
    assert!(out.contains("aws_instance.web[7]"), "{out}");
    let drift = stack.run(&["drift", "--detailed-exitcode"]);
    drift.assert_code(2);
    assert!(drift.stdout().contains(&labelled) && drift.stdout().contains(&bare), "{}", drift.stdout());

    stack.ok(&["apply", "--auto-approve"]);
    let in_state: Vec<String> = stack.ids().into_values().collect();
    assert!(!in_state.contains(&labelled) && !in_state.contains(&bare), "adopted: {in_state:?}");
    assert_eq!(stack.dir.state_addresses(), ["aws_instance.web[0]"]);
    assert_eq!(moto.instance(&labelled).state, "running", "a leftover must not be destroyed");
    assert_eq!(moto.instance(&bare).state, "running", "a leftover must not be destroyed");
    let state_after = stack.dir.state_text();
    assert_eq!(state_after, state_before, "nothing changed, so state must not either");
}

// ---------------------------------------------------------------------------
// Measurement

/// `plan` with 1,000 instances in state (launched through the SDK, state
/// written by hand) refreshes them with at most two DescribeInstances calls;
/// the call count and the plan's wall time are reported.
#[test]
fn plan_of_a_thousand_instances_uses_at_most_two_describe_calls() {
    let Some(moto) = moto::turn() else { return };
    const N: usize = 1000;
    let lineage = "3f1c0e52-8a4b-4d7e-9c61-0b2d5e7f1000";
    let ids = moto.run_instances(N as i32, "t3.micro", &[("himaplan:lineage", lineage)]);
    assert_eq!(ids.len(), N);
    let by_id: BTreeMap<String, Seen> = moto.lineage_instances(lineage).into_iter().map(|s| (s.id.clone(), s)).collect();
    let full = moto.ec2();
    let details = moto::block_on(async move {
        let mut pages = full
            .describe_instances()
            .filters(aws_sdk_ec2::types::Filter::builder().name("tag:himaplan:lineage").values(lineage).build())
            .max_results(1000)
            .into_paginator()
            .send();
        let mut out = BTreeMap::new();
        while let Some(page) = pages.next().await {
            for i in page.expect("describe").reservations().iter().flat_map(|r| r.instances()) {
                let text = |s: Option<&str>| s.unwrap_or("").to_string();
                out.insert(
                    text(i.instance_id()),
                    serde_json::json!({
                        "ami": text(i.image_id()),
                        "availability_zone": text(i.placement().and_then(|p| p.availability_zone())),
                        "id": text(i.instance_id()),
                        "instance_type": "t3.micro",
                        "private_ip": text(i.private_ip_address()),
                        "public_ip": text(i.public_ip_address()),
                        "state": "running",
                        "subnet_id": text(i.subnet_id()),
                        "tags": {},
                    }),
                );
            }
        }
        out
    });
    assert_eq!(details.len(), by_id.len());
    let resources: Vec<serde_json::Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            serde_json::json!({
                "address": format!("aws_instance.fleet[{i}]"),
                "attributes": details[id],
                "dependencies": [],
                "provider": "aws",
                "schema_version": 0,
                "type": "aws_instance",
            })
        })
        .collect();
    let mut state = serde_json::to_string_pretty(&serde_json::json!({
        "lineage": lineage,
        "outputs": {},
        "resources": resources,
        "serial": 1,
        "version": 1,
    }))
    .expect("state JSON");
    state.push('\n');
    let hcl = format!(
        r#"{PROVIDER}
resource "aws_instance" "fleet" {{
  count         = {N}
  ami           = "{AMI}"
  instance_type = "t3.micro"
}}
"#
    );
    let stack = Stack::new(&moto, &hcl);
    stack.dir.write(support::DEFAULT_STATE, &state);

    moto.start_recording();
    let started = Instant::now();
    let plan = stack.run(&["plan", "--detailed-exitcode"]);
    let took = started.elapsed();
    let recorded = moto.recorded();
    let calls = recorded.iter().filter(|r| r.action == "DescribeInstances").count();
    eprintln!("plan of {N} instances in state: {calls} DescribeInstances call(s), {} request(s) in all, {took:.2?}", recorded.len());
    plan.assert_code(0);
    assert!(calls <= 2, "{calls} DescribeInstances calls for {N} instances");
}

/// `moved` from `aws_instance.web[0]` to `aws_instance.app[0]` relabels the
/// real instance: the plan shows the relabel as a step, and after apply its
/// `himaplan:address` tag is the new address (the same instance, nothing
/// else changed).
#[test]
fn moved_relabels_the_instance_tag() {
    let Some(moto) = moto::turn() else { return };
    let web = format!(
        "{PROVIDER}resource \"aws_instance\" \"web\" {{\n  count         = 1\n  ami           = \"{AMI}\"\n  instance_type = \"t3.micro\"\n}}\n"
    );
    let stack = Stack::new(&moto, &web);
    stack.ok(&["apply", "--auto-approve"]);
    let id = stack.dir.state_attrs("aws_instance.web[0]")["id"].as_str().expect("id").to_string();
    assert_eq!(moto.instance(&id).tags.get("himaplan:address").map(String::as_str), Some("aws_instance.web[0]"));
    let app = web.replace("\"web\"", "\"app\"") + "\nmoved {\n  from = aws_instance.web[0]\n  to   = aws_instance.app[0]\n}\n";
    stack.dir.write("main.hcl", &app);
    let plan = stack.run(&["plan", "--detailed-exitcode"]);
    plan.assert_code(2);
    let out = plan.stdout();
    assert!(out.contains("relabel aws_instance.web[0] as aws_instance.app[0] (CreateTags himaplan:address)"), "{out}");
    stack.ok(&["apply", "--auto-approve"]);
    let seen = moto.instance(&id);
    assert_eq!(seen.tags.get("himaplan:address").map(String::as_str), Some("aws_instance.app[0]"), "{seen:?}");
    assert_eq!(stack.dir.state_attrs("aws_instance.app[0]")["id"], id.as_str());
    stack.ok(&["plan", "--detailed-exitcode"]);
}

// ---------------------------------------------------------------------------
// graph --plan

/// A saved resize of three instances with max_unavailable = 1, drawn by
/// `graph --plan` and read back by Graphviz (`dot -Tjson`): one cluster per
/// rollout batch holding its instance, each batch after the previous one.
#[test]
fn a_saved_resize_plan_graphs_one_cluster_per_rollout_batch_in_order() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 3, "t3.micro", 1)]));
    stack.ok(&["apply", "--auto-approve"]);
    stack.ok(&["plan", "--var", "web_type=t3.small", "--out", "resize.plan"]);
    let dot = stack.ok(&["graph", "--plan", "resize.plan"]).stdout();
    let Some(doc) = support::graphviz(&dot) else { return };
    let objects = doc["objects"].as_array().expect("objects");
    let clusters = support::dot_clusters(&doc);
    let want: Vec<(String, Vec<String>)> = (0..3)
        .map(|i| {
            (format!("aws_instance.web batch {}/3 (max_unavailable = 1)", i + 1), vec![format!("~ aws_instance.web[{i}] (stop/start)")])
        })
        .collect();
    assert_eq!(clusters, want, "{dot}");
    let by_id = |id: &serde_json::Value| objects.iter().find(|o| o["_gvid"] == *id).map(support::dot_label).unwrap_or_default();
    let edges: BTreeSet<(String, String)> =
        doc["edges"].as_array().expect("edges").iter().map(|e| (by_id(&e["tail"]), by_id(&e["head"]))).collect();
    let step = |i: usize| format!("~ aws_instance.web[{i}] (stop/start)");
    assert_eq!(edges, BTreeSet::from([(step(0), step(1)), (step(1), step(2))]), "{dot}");
}

/// The lines of an `apply --json` run, each parsed as one JSON object
/// (a line that is not one fails the test), with Terraform's common keys.
fn json_stream(run: &Run) -> Vec<serde_json::Value> {
    run.stdout()
        .lines()
        .map(|line| {
            let message: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
            for key in ["@level", "@message", "@module", "@timestamp", "type"] {
                assert!(message[key].is_string(), "no {key} in {line}");
            }
            message
        })
        .collect()
}

fn of_type<'a>(stream: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    stream.iter().filter(|m| m["type"] == kind).collect()
}

/// `apply --json` against moto: creating two instances, resizing them from
/// a saved plan, and a create EC2 refuses, each streamed as one JSON object
/// per line in Terraform's machine-readable UI format; without a plan file
/// or --auto-approve it refuses (nothing created).
#[test]
fn apply_json_streams_terraforms_ui_messages() {
    let Some(moto) = moto::turn() else { return };
    let stack = Stack::new(&moto, &config(&[fleet("web", 2, "t3.micro", 1)]));
    let refused = stack.run(&["apply", "--json"]);
    refused.assert_code(1);
    let stream = json_stream(&refused);
    assert_eq!(stream[0]["type"], "version");
    assert_eq!(of_type(&stream, "diagnostic")[0]["diagnostic"]["summary"], "apply --json needs a plan file or --auto-approve");
    assert!(moto.instances(vec![]).is_empty(), "nothing was created");

    let created = stack.ok(&["apply", "--json", "--auto-approve"]);
    let stream = json_stream(&created);
    assert_eq!(stream[0]["type"], "version");
    assert_eq!(stream[0]["ui"], "1.2");
    let planned = of_type(&stream, "planned_change");
    let addrs: Vec<&str> = planned.iter().map(|m| m["change"]["resource"]["addr"].as_str().unwrap_or_default()).collect();
    assert_eq!(addrs, ["aws_instance.web[0]", "aws_instance.web[1]"]);
    assert!(planned.iter().all(|m| m["change"]["action"] == "create"));
    assert_eq!(planned[1]["change"]["resource"]["resource_key"], 1);
    assert_eq!(planned[1]["change"]["resource"]["resource_type"], "aws_instance");
    let summaries = of_type(&stream, "change_summary");
    assert_eq!(summaries[0]["changes"], serde_json::json!({"add": 2, "change": 0, "import": 0, "remove": 0, "operation": "plan"}));
    assert_eq!(summaries[1]["changes"]["operation"], "apply");
    assert_eq!(summaries[1]["@message"], "Apply complete! Resources: 2 added, 0 changed, 0 destroyed.");
    for addr in addrs {
        let position = |kind: &str| {
            stream
                .iter()
                .position(|m| m["type"] == kind && m["hook"]["resource"]["addr"] == addr)
                .unwrap_or_else(|| panic!("no {kind} of {addr}"))
        };
        assert!(position("apply_start") < position("apply_complete"), "{addr} starts before it completes");
        assert!(stream[position("apply_complete")]["hook"]["elapsed_seconds"].is_u64());
    }
    assert_eq!(stack.live().len(), 2, "moto runs both instances");
    assert_eq!(stream.last().map(|m| m["type"].clone()), Some("outputs".into()));

    // A resize from a saved plan: updates, streamed in rollout order.
    stack.dir.write("main.hcl", &config(&[fleet("web", 2, "t3.small", 1)]));
    stack.ok(&["plan", "--out", "resize.plan"]);
    let resized = stack.ok(&["apply", "--json", "resize.plan"]);
    let stream = json_stream(&resized);
    assert!(
        of_type(&stream, "planned_change").iter().all(|m| m["change"]["action"] == "update" && m["change"]["disruption"] == "stop/start")
    );
    let starts: Vec<&str> =
        of_type(&stream, "apply_start").iter().map(|m| m["hook"]["resource"]["addr"].as_str().unwrap_or_default()).collect();
    assert_eq!(starts, ["aws_instance.web[0]", "aws_instance.web[1]"], "max_unavailable = 1: one after the other");
    let completes = of_type(&stream, "apply_complete");
    assert_eq!(completes.len(), 2, "{stream:#?}");
    assert!(completes.iter().all(|m| m["@message"].as_str().is_some_and(|t| t.contains(": Modifications complete after "))));
    assert!(stack.live().iter().all(|i| i.instance_type == "t3.small"), "moto resized both");

    // EC2 refuses an unknown instance type: apply_errored and an error diagnostic.
    stack.dir.write("main.hcl", &config(&[fleet("web", 2, "t3.small", 1), fleet("bad", 1, "t9.nonesuch", 1)]));
    let failed = stack.run(&["apply", "--json", "--auto-approve"]);
    failed.assert_code(1);
    let stream = json_stream(&failed);
    let errored = of_type(&stream, "apply_errored");
    assert_eq!(errored.len(), 1, "{stream:#?}");
    assert_eq!(errored[0]["@level"], "error");
    assert_eq!(errored[0]["hook"]["resource"]["addr"], "aws_instance.bad[0]");
    let diagnostics = of_type(&stream, "diagnostic");
    assert!(diagnostics.iter().any(|d| d["diagnostic"]["severity"] == "error"), "{stream:#?}");
    assert!(of_type(&stream, "outputs").is_empty(), "no outputs after a failed apply");
}
