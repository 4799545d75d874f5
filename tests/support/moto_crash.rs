//! The crash and fault tests' own toolkit: one moto server per test binary
//! (adapted from `tests/aws_provider.rs`), a fleet directory with a
//! resizable, scalable `aws_instance` configuration, a `himaplan` runner
//! with a clean environment, and the convergence check that compares the
//! state file with what moto really runs.
//!
//! moto is installed by `scripts/servers/moto.sh install`, started on a
//! free 127.0.0.1 port and ends when the test process does (it exits when
//! its stdin closes). Without moto the tests skip, except under `CI=true`,
//! where they fail and say why. Nothing here contacts a non-loopback
//! address: the IPs moto hands out are never dialled.

#![allow(dead_code, reason = "each test binary uses a different part of this toolkit")]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const AMI: &str = "ami-03cf127a";

// ---------------------------------------------------------------------------
// The moto server

pub struct Moto {
    pub endpoint: String,
    /// Kept so the server's stdin stays open until this process ends.
    _child: Mutex<Child>,
}

static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    let cache = std::env::var_os("HIMAPLAN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/himaplan")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache/himaplan"));
    cache.join("venv")
}

fn start_moto() -> Result<Moto, String> {
    let script = repo().join("scripts/servers/moto.sh");
    let out = Command::new("bash").arg(&script).arg("install").output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("moto.sh install failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| format!("no free loopback port: {e}"))?.port();
    let launcher = "import os, sys, threading\n\
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n\
        from moto.server import main\n\
        main(['-H', '127.0.0.1', '-p', sys.argv[1]])\n";
    let child = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(launcher)
        .arg(port.to_string())
        .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
        .env("MOTO_ENABLE_AMI_VALIDATION", "true")
        .env("MOTO_RECORDER_FILEPATH", std::env::temp_dir().join(format!("himaplan-moto-recording-{port}")))
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(format!("{endpoint}/moto-api/data.json")).call().is_err() {
        if Instant::now() > deadline {
            return Err(format!("moto_server did not answer on {endpoint} within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(Moto { endpoint, _child: Mutex::new(child) })
}

/// The binary's moto server, reset; `None` when the test should be skipped.
pub fn moto() -> Option<&'static Moto> {
    match MOTO.get_or_init(start_moto) {
        Ok(m) => {
            m.reset();
            Some(m)
        }
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("moto is required under CI=true: {why}")
        }
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "skipping: moto is not available ({why})");
            None
        }
    }
}

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

impl Moto {
    pub fn reset(&self) {
        ureq::post(format!("{}/moto-api/reset", self.endpoint)).send_empty().expect("moto reset");
    }

    /// Every instance of `lineage` that is not terminated or shutting down,
    /// asked of moto directly (never through a fault proxy).
    pub fn live_instances(&self, lineage: &str) -> Vec<LiveInstance> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let config = aws_sdk_ec2::Config::builder()
                .behavior_version(aws_sdk_ec2::config::BehaviorVersion::latest())
                .region(aws_sdk_ec2::config::Region::new("us-east-1"))
                .endpoint_url(&self.endpoint)
                .credentials_provider(aws_sdk_ec2::config::Credentials::new("test", "test", None, None, "tests"))
                .http_client(aws_smithy_http_client::Builder::new().build_http())
                .build();
            let ec2 = aws_sdk_ec2::Client::from_conf(config);
            let filter = aws_sdk_ec2::types::Filter::builder().name("tag:himaplan:lineage").values(lineage).build();
            let mut pages = ec2.describe_instances().filters(filter).max_results(1000).into_paginator().send();
            let mut found = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.expect("DescribeInstances against moto");
                for i in page.reservations().iter().flat_map(|r| r.instances()) {
                    let state = i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default();
                    if state == "terminated" || state == "shutting-down" {
                        continue;
                    }
                    let tag = |k: &str| i.tags().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
                    found.push(LiveInstance {
                        id: i.instance_id().unwrap_or_default().to_string(),
                        instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                        state,
                        address: tag("himaplan:address"),
                        token: tag("himaplan:token"),
                    });
                }
            }
            found.sort_by(|a, b| a.id.cmp(&b.id));
            found
        })
    }
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
        cmd.env("NO_COLOR", "1")
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .stdin(Stdio::null());
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
    let live = moto.live_instances(&lineage);
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
    moto.live_instances(&fleet.lineage()).into_iter().filter(|l| !ids.contains(&l.id)).collect()
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
