//! The crash and fault tests' fleet: a directory with a resizable,
//! scalable `aws_instance` configuration, a `himaplan` runner with a clean
//! environment, and the convergence check that compares the state file with
//! what moto really runs. Include it after the shared moto starter:
//! `#[path = "support/moto.rs"] mod moto;` and
//! `#[path = "support/fleet.rs"] mod fleet;`. Nothing here contacts a
//! non-loopback address: the IPs moto hands out are never dialled.

#![allow(dead_code, reason = "each test binary uses a different part of this toolkit")]

use crate::moto::{self, Moto};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// One EC2 instance as moto reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveInstance {
    pub id: String,
    pub instance_type: String,
    /// `pending`, `running`, `stopping`, `stopped` (terminated ones are left out).
    pub state: String,
    pub address: Option<String>,
    pub token: Option<String>,
}

/// Every instance of `lineage` that is not terminated or shutting down,
/// asked of moto directly (never through a fault proxy), by id.
pub fn live_instances(moto: &Moto, lineage: &str) -> Vec<LiveInstance> {
    let mut found: Vec<LiveInstance> = moto
        .lineage_instances(lineage)
        .into_iter()
        .filter(|i| i.state != "terminated" && i.state != "shutting-down")
        .map(|i| LiveInstance {
            address: i.tag("himaplan:address").map(str::to_string),
            token: i.tag("himaplan:token").map(str::to_string),
            id: i.id,
            instance_type: i.instance_type,
            state: i.state,
        })
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found
}

// ---------------------------------------------------------------------------
// The fleet directory and the runner

/// A fleet of `web_count` × `web_type` instances, both variables.
pub const FLEET_HCL: &str = r#"
variable "web_count" {
  type    = number
  default = 3
}

variable "web_type" {
  type    = string
  default = "t3.small"
}

resource "aws_instance" "web" {
  count         = var.web_count
  ami           = "ami-03cf127a"
  instance_type = var.web_type

  tags = {
    Name = "web-${count.index}"
  }

  rollout {
    max_unavailable = 1
  }
}
"#;

/// A temporary directory holding the fleet configuration and its state.
pub struct Fleet {
    pub dir: tempfile::TempDir,
}

impl Fleet {
    pub fn new() -> Fleet {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("main.hcl"), FLEET_HCL).expect("write main.hcl");
        Fleet { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state_path(&self) -> PathBuf {
        self.path().join("state/default.json")
    }

    pub fn journal_path(&self) -> PathBuf {
        self.path().join("state/default.json.journal")
    }

    /// The committed state file, parsed (`None` when absent).
    pub fn state(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.state_path()).ok()?;
        Some(serde_json::from_str(&text).expect("state file is JSON"))
    }

    pub fn serial(&self) -> u64 {
        self.state().and_then(|s| s["serial"].as_u64()).unwrap_or(0)
    }

    pub fn lineage(&self) -> String {
        self.state().and_then(|s| s["lineage"].as_str().map(str::to_string)).expect("state has a lineage")
    }

    /// `himaplan ARGS` in the fleet directory against `endpoint`, with the
    /// fleet's variables.
    pub fn command(&self, endpoint: &str, args: &[&str], count: usize, itype: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_himaplan"));
        cmd.current_dir(self.path()).args(args);
        cmd.arg("--var").arg(format!("web_count={count}"));
        cmd.arg("--var").arg(format!("web_type={itype}"));
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("HIMAPLAN_VAR_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(moto::env_via(endpoint)).env("NO_COLOR", "1").stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, endpoint: &str, args: &[&str], count: usize, itype: &str) -> Output {
        self.command(endpoint, args, count, itype).output().expect("run himaplan")
    }

    pub fn spawn(&self, endpoint: &str, args: &[&str], count: usize, itype: &str) -> Child {
        self.command(endpoint, args, count, itype).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn himaplan")
    }
}

/// Text of an output, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Checks that the fleet converged: state holds exactly `web[0..count]`,
/// each of type `itype` and running; moto's live instances of the lineage
/// are exactly the state's (same ids, types, running), one per address and
/// each tagged with its own address. Returns what differs.
pub fn check_converged(fleet: &Fleet, moto: &Moto, count: usize, itype: &str) -> Result<(), String> {
    let state = fleet.state().ok_or("no state file")?;
    let lineage = fleet.lineage();
    let mut problems = Vec::new();
    let mut in_state: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    for r in state["resources"].as_array().cloned().unwrap_or_default() {
        if r["type"] != "aws_instance" {
            continue;
        }
        let a = &r["attributes"];
        let field = |k: &str| a[k].as_str().unwrap_or_default().to_string();
        in_state.insert(r["address"].as_str().unwrap_or_default().to_string(), (field("id"), field("instance_type"), field("state")));
    }
    let want: BTreeSet<String> = (0..count).map(|i| format!("aws_instance.web[{i}]")).collect();
    let have: BTreeSet<String> = in_state.keys().cloned().collect();
    if want != have {
        problems.push(format!("state addresses {have:?}, want {want:?}"));
    }
    for (addr, (_, t, s)) in &in_state {
        if t != itype || s != "running" {
            problems.push(format!("state: {addr} is {t}/{s}, want {itype}/running"));
        }
    }
    let live = live_instances(moto, &lineage);
    let live_by_id: BTreeMap<&str, &LiveInstance> = live.iter().map(|l| (l.id.as_str(), l)).collect();
    for (addr, (id, t, _)) in &in_state {
        match live_by_id.get(id.as_str()) {
            None => problems.push(format!("{addr}: instance {id} of state is not live in moto")),
            Some(l) => {
                if &l.instance_type != t || l.state != "running" {
                    problems.push(format!("{addr}: moto has {id} as {}/{}, state says {t}/running", l.instance_type, l.state));
                }
                if l.address.as_deref() != Some(addr) {
                    problems.push(format!("{addr}: moto's {id} is tagged {:?}", l.address));
                }
            }
        }
    }
    let state_ids: BTreeSet<&str> = in_state.values().map(|(id, _, _)| id.as_str()).collect();
    for l in &live {
        if !state_ids.contains(l.id.as_str()) {
            problems.push(format!(
                "orphan: moto runs {} ({}, {}, address {:?}, token {:?}) of this lineage that state does not hold",
                l.id, l.instance_type, l.state, l.address, l.token
            ));
        }
    }
    let mut per_address: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &live {
        *per_address.entry(l.address.as_deref().unwrap_or("<none>")).or_default() += 1;
    }
    for (a, n) in per_address {
        if n > 1 {
            problems.push(format!("address {a} has {n} live instances"));
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
}

/// Live instances of the fleet's lineage that state does not hold.
pub fn extras(fleet: &Fleet, moto: &Moto) -> Vec<LiveInstance> {
    let state = fleet.state().unwrap_or_default();
    let ids: BTreeSet<String> = state["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["attributes"]["id"].as_str().map(str::to_string))
        .collect();
    live_instances(moto, &fleet.lineage()).into_iter().filter(|l| !ids.contains(&l.id)).collect()
}

/// The ids of instances a JSON plan deletes as duplicates
/// (`action_reason = "delete_duplicate"`).
pub fn planned_duplicate_deletes(plan_json: &str) -> Vec<String> {
    let plan: serde_json::Value = serde_json::from_str(plan_json).expect("plan JSON");
    plan["resource_changes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|c| c["action_reason"] == "delete_duplicate")
        .filter_map(|c| c["change"]["before"]["id"].as_str().map(str::to_string))
        .collect()
}
