//! The one moto server (AWS EC2/S3 emulation) of a test binary, on a free
//! 127.0.0.1 port, with instance-type and AMI validation on. Every test
//! binary that needs moto includes this file with
//! `#[path = "support/moto.rs"] mod moto;`.
//!
//! The server is installed by `scripts/servers/moto.sh install`, started
//! once per test binary and ended when the binary exits (it watches its
//! stdin, which only this process holds). Tests take turns on it: [`turn`]
//! (or [`turn_async`] in async tests) serialises them and resets moto, so
//! each test starts with an empty account and its own recording. Without
//! moto a test is skipped, except under `CI=true`, where it fails and says
//! why. A binary picks its server once with a [`Setup`]: threaded moto, or
//! `moto.sh serve-single` (werkzeug with `threaded=False`) for the lock
//! contention tests, where threaded moto's conditional PUT checks then
//! writes without a lock; and whether the server's endpoint is exported to
//! this process's environment, for SDK clients built from it.
//!
//! Also here: the environment that points a `himaplan` child process at
//! the server, EC2 and S3 clients for checking what really exists (never
//! through himaplan), and moto's request recorder decoded into
//! [`Request`]s, actions, or `METHOD /path` lines. Nothing here ever
//! contacts an address outside 127.0.0.0/8: the private IPs moto hands out
//! are compared, never dialled.

#![allow(dead_code, reason = "each test binary uses a different subset of the helper")]

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::types::{Filter, Instance, ResourceType, Tag, TagSpecification};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The AMI every test launches; moto's AMI validation knows it.
pub const AMI: &str = "ami-03cf127a";

/// How a test binary wants its server; one binary uses one setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// `moto.sh serve-single`: one request at a time, so racing conditional
    /// PUTs are decided atomically as real S3 does.
    pub single_threaded: bool,
    /// Point this process's `AWS_*` environment at the server (before any
    /// test builds an SDK client), for clients that read it.
    pub export_env: bool,
}

/// Threaded moto, the process environment untouched.
pub const THREADED: Setup = Setup { single_threaded: false, export_env: false };

/// The moto server of this test binary.
pub struct Moto {
    pub endpoint: String,
    /// Kept so the server's stdin stays open; it exits at EOF, i.e. when
    /// this test process ends.
    _child: Mutex<Child>,
}

/// A test's exclusive use of the (freshly reset) server.
pub struct Turn {
    pub moto: &'static Moto,
    _guard: tokio::sync::MutexGuard<'static, ()>,
}

impl std::ops::Deref for Turn {
    type Target = Moto;
    fn deref(&self) -> &Moto {
        self.moto
    }
}

static MOTO: OnceLock<(Setup, Result<Moto, String>)> = OnceLock::new();
/// Tests share one server and reset it: they must not interleave. (An
/// async mutex, so that async tests can hold a turn across `.await`; it
/// is never poisoned by a test that panicked, and the reset clears what
/// such a test left behind.)
static TURNS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for this test's turn on the threaded server and resets it; `None`
/// when moto cannot run here and the test should be skipped (never under
/// `CI=true`).
pub fn turn() -> Option<Turn> {
    turn_with(THREADED)
}

/// [`turn`] on the server `setup` describes, for a synchronous test.
pub fn turn_with(setup: Setup) -> Option<Turn> {
    begin(setup, TURNS.blocking_lock())
}

/// [`turn`] on the server `setup` describes, for an async test.
pub async fn turn_async(setup: Setup) -> Option<Turn> {
    begin(setup, TURNS.lock().await)
}

fn begin(setup: Setup, guard: tokio::sync::MutexGuard<'static, ()>) -> Option<Turn> {
    let (started, result) = MOTO.get_or_init(|| (setup, start(setup)));
    assert_eq!(*started, setup, "one test binary asked for two different moto setups");
    match result {
        Ok(moto) => {
            moto.reset();
            moto.post("/moto-api/recorder/stop-recording");
            moto.post("/moto-api/recorder/reset-recording");
            Some(Turn { moto, _guard: guard })
        }
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("these tests need a moto server and CI=true forbids skipping them: {why}")
        }
        Err(why) => {
            eprintln!("skipping: moto is not available ({why})");
            None
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn venv() -> PathBuf {
    let cache = std::env::var_os("HIMAPLAN_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/himaplan")))
        .unwrap_or_else(|| PathBuf::from("/root/.cache/himaplan"));
    cache.join("venv")
}

fn start(setup: Setup) -> Result<Moto, String> {
    let script = repo().join("scripts/servers/moto.sh");
    let out = Command::new("bash").arg(&script).arg("install").output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("moto.sh install failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| format!("no free loopback port: {e}"))?.port();
    let mut cmd = if setup.single_threaded {
        // The server runs in the background of a shell that waits for its
        // stdin to close, then stops the server.
        let watchdog = "bash \"$0\" serve-single \"$1\" >/dev/null 2>&1 & pid=$!; cat >/dev/null; kill $pid 2>/dev/null";
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(watchdog).arg(&script).arg(port.to_string());
        cmd
    } else {
        // moto_server in a Python process with a watchdog thread that exits
        // when our end of its stdin closes.
        let launcher = "import os, sys, threading\n\
            threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n\
            from moto.server import main\n\
            main(['-H', '127.0.0.1', '-p', sys.argv[1]])\n";
        let mut cmd = Command::new(venv().join("bin/python"));
        cmd.arg("-c")
            .arg(launcher)
            .arg(port.to_string())
            .env("MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION", "true")
            .env("MOTO_ENABLE_AMI_VALIDATION", "true")
            // The recorder writes a file in the working directory: keep it
            // out of the checkout.
            .env("MOTO_RECORDER_FILEPATH", std::env::temp_dir().join(format!("himaplan-moto-recording-{port}")))
            .current_dir(std::env::temp_dir());
        cmd
    };
    // Either way, the server never outlives the tests.
    let child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().map_err(|e| format!("cannot start moto: {e}"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(format!("{endpoint}/moto-api/data.json")).call().is_err() {
        if Instant::now() > deadline {
            return Err(format!("moto did not answer on {endpoint} within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if setup.export_env {
        // SAFETY: set once, inside the OnceLock initialiser, before any test
        // builds an SDK client; every test waits on this initialiser (under
        // the turn lock) first, so no thread of ours reads the environment
        // concurrently.
        unsafe {
            std::env::remove_var("AWS_PROFILE");
            for (k, v) in env_via(&endpoint) {
                std::env::set_var(k, v);
            }
        }
    }
    Ok(Moto { endpoint, _child: Mutex::new(child) })
}

/// The environment that points a `himaplan` child process (or any AWS
/// client) at `endpoint` (moto, or a proxy in front of it) and nowhere else.
pub fn env_via(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
    ]
}

/// An EC2 client of `endpoint` (moto, or a proxy in front of it),
/// independent of the process environment.
pub fn ec2_client(endpoint: &str) -> aws_sdk_ec2::Client {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let config = aws_sdk_ec2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .http_client(http)
        .build();
    aws_sdk_ec2::Client::from_conf(config)
}

/// One runtime for the blocking SDK helpers of the whole binary.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime"))
}

/// Runs a future to completion on the helper runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// An instance as the tests look at it, read straight from moto.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub id: String,
    pub instance_type: String,
    /// `running`, `stopped`, `terminated`, ...
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

impl Seen {
    fn from_sdk(i: &Instance) -> Seen {
        Seen {
            id: i.instance_id().unwrap_or_default().to_string(),
            instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            state: i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()).unwrap_or_default(),
            tags: i.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string()))).collect(),
        }
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

/// One EC2 request as moto's recorder saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub action: String,
    /// The form parameters of the request, decoded.
    pub params: BTreeMap<String, String>,
}

impl Request {
    /// The instance ids the request names (`InstanceId`, `InstanceId.N`).
    pub fn instance_ids(&self) -> Vec<&str> {
        self.params.iter().filter(|(k, _)| *k == "InstanceId" || k.starts_with("InstanceId.")).map(|(_, v)| v.as_str()).collect()
    }
}

impl Moto {
    fn post(&self, path: &str) {
        let _ = ureq::post(format!("{}{path}", self.endpoint)).send_empty();
    }

    /// Empties the server: every account, bucket and instance.
    pub fn reset(&self) {
        ureq::post(format!("{}/moto-api/reset", self.endpoint)).send_empty().expect("moto reset");
    }

    /// The environment that points a `himaplan` child process (or any AWS
    /// client) at this server and nowhere else.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_via(&self.endpoint)
    }

    /// [`env_via`] the endpoint of a proxy in front of this server.
    pub fn env_via(&self, endpoint: &str) -> Vec<(&'static str, String)> {
        env_via(endpoint)
    }

    /// An EC2 client for this server, independent of the process environment.
    pub fn ec2(&self) -> aws_sdk_ec2::Client {
        ec2_client(&self.endpoint)
    }

    /// An S3 client for this server (path-style), independent of the
    /// process environment.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
        let http = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "moto"))
            .http_client(http)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Every instance moto knows, terminated ones included, by filters.
    pub fn instances(&self, filters: Vec<Filter>) -> Vec<Seen> {
        let ec2 = self.ec2();
        block_on(async move {
            let mut pages = ec2.describe_instances().set_filters(Some(filters)).max_results(1000).into_paginator().send();
            let mut seen = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.expect("DescribeInstances");
                seen.extend(page.reservations().iter().flat_map(|r| r.instances()).map(Seen::from_sdk));
            }
            seen
        })
    }

    /// The instances carrying `lineage` in their `himaplan:lineage` tag.
    pub fn lineage_instances(&self, lineage: &str) -> Vec<Seen> {
        self.instances(vec![Filter::builder().name("tag:himaplan:lineage").values(lineage).build()])
    }

    /// One instance by id.
    pub fn instance(&self, id: &str) -> Seen {
        self.instances(vec![Filter::builder().name("instance-id").values(id).build()])
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("moto does not know instance {id}"))
    }

    /// Launches `count` instances of `instance_type` directly (not through
    /// himaplan) with `tags`, and returns their ids.
    pub fn run_instances(&self, count: i32, instance_type: &str, tags: &[(&str, &str)]) -> Vec<String> {
        let ec2 = self.ec2();
        let mut req = ec2.run_instances().image_id(AMI).instance_type(instance_type.into()).min_count(count).max_count(count);
        if !tags.is_empty() {
            let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
            req = req.tag_specifications(TagSpecification::builder().resource_type(ResourceType::Instance).set_tags(Some(tags)).build());
        }
        let out = block_on(req.send()).expect("RunInstances");
        out.instances().iter().filter_map(|i| i.instance_id().map(str::to_string)).collect()
    }

    /// Stops an instance out of band.
    pub fn stop_instance(&self, id: &str) {
        block_on(self.ec2().stop_instances().instance_ids(id).send()).expect("StopInstances");
    }

    /// Starts recording requests (after discarding any earlier recording).
    pub fn start_recording(&self) {
        self.post("/moto-api/recorder/reset-recording");
        self.post("/moto-api/recorder/start-recording");
    }

    /// Stops recording and returns the recorder's entries since
    /// [`Moto::start_recording`] (one JSON object per request, with its
    /// method, URL and body, base64 when `body_encoded`), in the order moto
    /// received them.
    pub fn recording(&self) -> Vec<serde_json::Value> {
        self.post("/moto-api/recorder/stop-recording");
        let text = ureq::get(format!("{}/moto-api/recorder/download-recording", self.endpoint))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        text.lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()).collect()
    }

    /// Stops recording and returns the EC2 requests recorded since
    /// [`Moto::start_recording`], in the order moto received them.
    pub fn recorded(&self) -> Vec<Request> {
        self.recording()
            .into_iter()
            .filter_map(|entry| {
                let mut body = entry["body"].as_str().unwrap_or_default().to_string();
                if entry["body_encoded"].as_bool() == Some(true) {
                    body = aws_smithy_types::base64::decode(&body).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                }
                let query = entry["url"].as_str().unwrap_or_default().split_once('?').map(|(_, q)| q.to_string());
                let mut params = parse_form(&body);
                if let Some(q) = query {
                    params.extend(parse_form(&q));
                }
                let action = params.get("Action")?.clone();
                Some(Request { action, params })
            })
            .collect()
    }

    /// The EC2 actions recorded since [`Moto::start_recording`], in order.
    pub fn recorded_actions(&self) -> Vec<String> {
        self.recorded().into_iter().map(|r| r.action).collect()
    }

    /// `METHOD /path?query` of every request (S3 ones included) recorded
    /// since [`Moto::start_recording`], in order.
    pub fn recorded_paths(&self) -> Vec<String> {
        self.recording()
            .iter()
            .map(|e| {
                let url = e["url"].as_str().unwrap_or_default();
                let path = url.split_once("://").map_or(url, |(_, rest)| rest.split_once('/').map_or("", |(_, p)| p));
                format!("{} /{}", e["method"].as_str().unwrap_or("?"), path)
            })
            .collect()
    }
}

/// Decodes `application/x-www-form-urlencoded` text.
pub fn parse_form(text: &str) -> BTreeMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi * 16 + lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
