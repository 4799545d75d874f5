//! `backend "s3"` through the real `himaplan` binary against a real,
//! single-threaded moto on loopback: plan / apply / state / output on the
//! S3 backend, an unchanged apply that writes no state, two `apply`
//! processes racing for the lock for 20 rounds (failing at once, and
//! waiting with `--lock-timeout`), a corrupted state object and a stale lock
//! each refused with a way out, `state push` / `state pull`, and the S3
//! requests of one `plan` and one `apply`.
//!
//! The server is `scripts/servers/moto.sh serve-single PORT` (werkzeug with
//! `threaded=False`): threaded moto's conditional PUT checks, then writes,
//! without a lock, so two racing `If-None-Match: *` PUTs could both win
//! there, while real S3's are atomic. A shell watchdog ends the server when
//! this process exits. Tests take turns on it and reset it first. Without
//! moto the tests skip, except under `CI=true`, where they fail and say why.
//! Only the bucket holding the state is created (through the SDK); the
//! configuration's resources are `himaplan_data`. Nothing here contacts an
//! address outside 127.0.0.0/8.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/proxy.rs"]
mod proxy;
mod support;

use aws_sdk_s3::primitives::ByteStream;
use himaplan::state_s3::{CHECKSUM_METADATA, sha256_hex};
use moto::{Moto, Turn, block_on};
use proxy::{Fault, FaultPlan, Proxy};
use std::io::Write;
use std::time::{Duration, Instant};
use support::{Run, TestDir};

const BUCKET: &str = "himalytix-state";
const KEY: &str = "himalytix/state.json";

/// The configuration of most tests: three `himaplan_data` resources, each
/// fed by its own variable, so that two runs can change different ones.
const CONFIG: &str = r#"
himaplan {
  backend "s3" {
    bucket = "himalytix-state"
    key    = "himalytix/state.json"
    region = "us-east-1"
  }
}

variable "round" {
  type    = number
  default = 0
}

variable "a" {
  type    = string
  default = ""
}

variable "b" {
  type    = string
  default = ""
}

resource "himaplan_data" "round" {
  input = var.round
}

resource "himaplan_data" "a" {
  input = var.a
}

resource "himaplan_data" "b" {
  input = var.b
}

output "round" {
  value = himaplan_data.round.output
}
"#;

// ---------------------------------------------------------------------------
// The single-threaded moto server

/// This binary's moto: single-threaded (see above); `himaplan` processes get
/// its environment explicitly.
const SETUP: moto::Setup = moto::Setup { single_threaded: true, export_env: false };

/// Waits for this test's turn, resets moto and creates the state bucket;
/// `None` when moto cannot run here (never under `CI=true`).
fn turn() -> Option<Turn> {
    let turn = moto::turn_with(SETUP)?;
    block_on(turn.s3().create_bucket().bucket(BUCKET).send()).expect("create the state bucket");
    Some(turn)
}

/// The state object as the tests see it, straight from S3.
#[derive(Debug, Clone, PartialEq)]
struct Object {
    body: Vec<u8>,
    checksum: Option<String>,
    etag: Option<String>,
}

impl Object {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the state object is JSON")
    }
}

impl Moto {
    fn object(&self, key: &str) -> Option<Object> {
        let s3 = self.s3();
        block_on(async move {
            let out = s3.get_object().bucket(BUCKET).key(key).send().await.ok()?;
            let checksum = out.metadata().and_then(|m| m.get(CHECKSUM_METADATA)).cloned();
            let etag = out.e_tag().map(str::to_string);
            let body = out.body.collect().await.ok()?.into_bytes().to_vec();
            Some(Object { body, checksum, etag })
        })
    }

    /// The state object, asserted present and carrying a matching checksum.
    fn state(&self) -> Object {
        let object = self.object(KEY).expect("the state object exists");
        assert_eq!(object.checksum.as_deref(), Some(sha256_hex(&object.body).as_str()), "checksum metadata of the state object");
        object
    }

    /// Puts `body` at `key` out of band, with `checksum` metadata if given.
    fn put(&self, key: &str, body: &[u8], checksum: Option<&str>) {
        let mut put = self.s3().put_object().bucket(BUCKET).key(key).body(ByteStream::from(body.to_vec()));
        if let Some(sum) = checksum {
            put = put.metadata(CHECKSUM_METADATA, sum);
        }
        block_on(put.send()).expect("out-of-band PutObject");
    }

    /// The keys under the state's journal prefix.
    fn journal_keys(&self) -> Vec<String> {
        let out = block_on(self.s3().list_objects_v2().bucket(BUCKET).prefix(format!("{KEY}.journal/")).send()).expect("list");
        out.contents().iter().filter_map(|o| o.key().map(str::to_string)).collect()
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Runs `himaplan ARGS` in `dir` against `moto`.
fn run(dir: &TestDir, moto: &Moto, args: &[&str]) -> Run {
    dir.run_with(args, &env_refs(&moto.env()), None)
}

fn resource<'a>(state: &'a serde_json::Value, address: &str) -> &'a serde_json::Value {
    state["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in state"))
}

fn input(state: &serde_json::Value, address: &str) -> serde_json::Value {
    resource(state, address)["attributes"]["input"].clone()
}

fn serial(state: &serde_json::Value) -> u64 {
    state["serial"].as_u64().expect("serial")
}

/// Asserts the lock and journal objects are gone (a run finished cleanly).
fn assert_no_leftovers(moto: &Moto, context: &str) {
    assert!(moto.object(&format!("{KEY}.lock")).is_none(), "{context}: the lock object was left behind");
    assert_eq!(moto.journal_keys(), Vec::<String>::new(), "{context}: journal objects were left behind");
}

// ---------------------------------------------------------------------------
// A relay that adds latency

/// A TCP relay on 127.0.0.1 in front of moto that holds back every chunk of
/// every answer by `delay`, like the round trips to a remote S3 endpoint.
/// Used by the contention test so that the run holding the lock holds it
/// for several round trips: without it, one run can finish before the
/// other process has even started, and the round tests nothing.
struct Latency {
    endpoint: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Latency {
    fn start(upstream: &str, delay: Duration) -> Latency {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream: std::net::SocketAddr = upstream.strip_prefix("http://").expect("http://IP:PORT").parse().expect("IP:PORT");
        assert!(upstream.ip().is_loopback(), "the relay only forwards to loopback");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("relay runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind a loopback port");
        let port = listener.local_addr().expect("local addr").port();
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = server_write.shutdown().await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match server_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                tokio::time::sleep(delay).await;
                                if client_write.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = client_write.shutdown().await;
                    requests.abort();
                });
            }
        });
        Latency { endpoint: format!("http://127.0.0.1:{port}"), runtime: Some(runtime) }
    }
}

impl Drop for Latency {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

// ---------------------------------------------------------------------------
// Scenarios

/// plan, apply, state list/show and output work on the S3 backend, write
/// nothing locally, and a second apply without changes writes no state.
#[test]
fn plan_apply_state_and_output_work_on_the_s3_backend() {
    let Some(moto) = turn() else { return };
    let dir = TestDir::new(CONFIG);

    let plan = run(&dir, &moto, &["plan", "--var", "round=1"]);
    plan.assert_code(0);
    assert!(plan.stdout().contains("Plan: 3 to add, 0 to change, 0 to destroy."), "{}", plan.stdout());
    assert!(moto.object(KEY).is_none(), "plan must not write state");
    assert!(moto.object(&format!("{KEY}.lock")).is_none(), "plan takes no lock");

    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=1", "--var", "a=x"]).assert_code(0);
    let first = moto.state();
    let state = first.json();
    assert_eq!(serial(&state), 1);
    assert_eq!(input(&state, "himaplan_data.round"), 1);
    assert_eq!(input(&state, "himaplan_data.a"), "x");
    assert!(!dir.exists(support::DEFAULT_STATE), "the S3 backend must not write a local state file");
    assert!(moto.object(&format!("{KEY}.backup")).is_none(), "no backup before a previous state existed");
    assert_no_leftovers(&moto, "first apply");

    let list = run(&dir, &moto, &["state", "list"]);
    list.assert_code(0);
    assert_eq!(list.stdout(), "himaplan_data.a\nhimaplan_data.b\nhimaplan_data.round\n");
    let show = run(&dir, &moto, &["state", "show", "himaplan_data.a"]);
    show.assert_code(0);
    assert!(show.stdout().contains("input") && show.stdout().contains("\"x\""), "{}", show.stdout());
    let output = run(&dir, &moto, &["output", "round"]);
    output.assert_code(0);
    assert_eq!(output.stdout().trim(), "1");
    assert_eq!(run(&dir, &moto, &["output", "--json"]).json()["round"]["value"], 1);
    run(&dir, &moto, &["plan", "--detailed-exitcode", "--var", "round=1", "--var", "a=x"]).assert_code(0);

    // The same configuration again: the state object is neither rewritten nor backed up.
    moto.start_recording();
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=1", "--var", "a=x"]).assert_code(0);
    let requests = moto.recorded_paths();
    assert_eq!(moto.state(), first, "an unchanged apply changed the state object");
    let writes: Vec<&String> = requests.iter().filter(|r| r.starts_with("PUT") && !r.contains(".lock")).collect();
    assert!(writes.is_empty(), "an unchanged apply wrote {writes:?} (all requests: {requests:?})");
    assert_no_leftovers(&moto, "unchanged apply");

    // A change bumps the serial by one and keeps the previous state as the backup.
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=2", "--var", "a=x"]).assert_code(0);
    let second = moto.state();
    assert_eq!(serial(&second.json()), 2);
    assert_eq!(moto.object(&format!("{KEY}.backup")).expect("backup").body, first.body);
}

/// How the loser of a round behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Contention {
    /// Both runs make the same change without --lock-timeout: one applies,
    /// the other fails at once naming the holder.
    FailFast,
    /// Each run changes its own resource (--target) with --lock-timeout:
    /// one applies, the other waits for the lock and then applies too.
    Wait,
}

/// Two `himaplan apply` processes started together against one S3 state,
/// 20 rounds with a change each (10 failing fast, 10 waiting): every round
/// exactly one proceeds at first, the serial goes up by one per apply that
/// changed the state, no apply's change is lost, and S3 holds exactly that.
#[test]
fn twenty_rounds_of_concurrent_applies_lose_nothing() {
    let Some(moto) = turn() else { return };
    let dir = TestDir::new(CONFIG);
    run(&dir, &moto, &["apply", "--auto-approve"]).assert_code(0);
    let relay = Latency::start(&moto.endpoint, Duration::from_millis(40));
    let env = moto.env_via(&relay.endpoint);
    let env = env_refs(&env);

    let rounds: Vec<Contention> = [Contention::FailFast; 10].into_iter().chain([Contention::Wait; 10]).collect();
    let mut expected_serial = serial(&moto.state().json());
    let (mut last_round, mut last_a, mut last_b) = (serde_json::json!(0), serde_json::json!(""), serde_json::json!(""));
    let start = Instant::now();
    for (i, mode) in rounds.iter().enumerate() {
        let round = i + 1;
        let (args_a, args_b): (Vec<String>, Vec<String>) = match mode {
            Contention::FailFast => {
                let args = vec![
                    "apply".into(),
                    "--auto-approve".into(),
                    "--target".into(),
                    "himaplan_data.round".into(),
                    "--var".into(),
                    format!("round={round}"),
                ];
                (args.clone(), args)
            }
            Contention::Wait => {
                let args = |name: &str| -> Vec<String> {
                    let mut a: Vec<String> = vec!["apply".into(), "--auto-approve".into(), "--lock-timeout".into(), "60s".into()];
                    a.extend(["--target".into(), format!("himaplan_data.{name}"), "--var".into(), format!("{name}=round-{round}")]);
                    a
                };
                (args("a"), args("b"))
            }
        };
        let spawn = |args: &[String]| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut child = support::himaplan_command(dir.path(), &args, &env).spawn().expect("start himaplan");
            drop(child.stdin.take());
            child
        };
        let (a, b) = (spawn(&args_a), spawn(&args_b));
        let pids = [a.id(), b.id()];
        let outputs = [a.wait_with_output().expect("wait a"), b.wait_with_output().expect("wait b")];
        let codes: Vec<i32> = outputs.iter().map(|o| o.status.code().unwrap_or(-1)).collect();
        let stderr: Vec<String> = outputs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect();
        let context = format!("round {round} ({mode:?}): exit codes {codes:?}\n--- a\n{}\n--- b\n{}", stderr[0], stderr[1]);
        match mode {
            Contention::FailFast => {
                let winners: Vec<usize> = (0..2).filter(|&k| codes[k] == 0).collect();
                assert_eq!(winners.len(), 1, "{context}");
                let (winner, loser) = (winners[0], 1 - winners[0]);
                assert_eq!(codes[loser], 1, "{context}");
                assert!(stderr[loser].contains("state is locked"), "{context}");
                assert!(stderr[loser].contains(&format!("(pid {})", pids[winner])), "the loser must name the winner: {context}");
                expected_serial += 1;
                last_round = serde_json::json!(round);
            }
            Contention::Wait => {
                assert_eq!(codes, vec![0, 0], "{context}");
                expected_serial += 2;
                last_a = serde_json::json!(format!("round-{round}"));
                last_b = serde_json::json!(format!("round-{round}"));
            }
        }
        let state = moto.state().json();
        assert_eq!(serial(&state), expected_serial, "{context}");
        assert_eq!(input(&state, "himaplan_data.round"), last_round, "{context}");
        assert_eq!(input(&state, "himaplan_data.a"), last_a, "{context}");
        assert_eq!(input(&state, "himaplan_data.b"), last_b, "{context}");
        assert_no_leftovers(&moto, &context);
    }
    let elapsed = start.elapsed();
    drop(relay);
    let _ = writeln!(std::io::stderr(), "20 contention rounds (2 processes each, 40 ms added per answer chunk) took {elapsed:?}");

    // What himaplan itself reads back agrees with the object.
    let state = moto.state().json();
    assert_eq!(serial(&state), 1 + 10 + 20);
    let pulled = run(&dir, &moto, &["state", "pull"]);
    pulled.assert_code(0);
    assert_eq!(pulled.json(), state);
    run(&dir, &moto, &["plan", "--detailed-exitcode", "--var", "round=10", "--var", "a=round-20", "--var", "b=round-20"]).assert_code(0);
}

/// A state object that no longer matches its checksum (garbage, truncated,
/// or edited by hand, the checksum metadata kept) makes plan and apply fail
/// with exit 1 naming the object and the way out, and nothing is written;
/// `state push --force` of a good file, or copying the backup over it (the
/// ways out the error names), makes the backend usable again.
#[test]
fn corrupted_state_object_is_refused_and_never_overwritten() {
    let Some(moto) = turn() else { return };
    let dir = TestDir::new(CONFIG);
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=1"]).assert_code(0);
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=2"]).assert_code(0);
    let good = moto.state();
    let sum = good.checksum.clone().expect("checksum");
    let backup = moto.object(&format!("{KEY}.backup")).expect("backup");

    let text = String::from_utf8(good.body.clone()).expect("utf-8");
    let cases: [(&str, Vec<u8>); 4] = [
        ("garbage", b"<html>this is not a state file</html>".to_vec()),
        ("binary", b"\x00\x01\xfe\xff not even text".to_vec()),
        ("truncated", good.body[..good.body.len() / 2].to_vec()),
        ("edited", text.replace("\"serial\": 2", "\"serial\": 7").into_bytes()),
    ];
    for (what, body) in cases {
        moto.put(KEY, &body, Some(&sum));
        let before = moto.object(KEY).expect("corrupted object");
        for args in [&["plan", "--var", "round=3"][..], &["apply", "--auto-approve", "--var", "round=3"][..], &["state", "list"][..]] {
            let out = run(&dir, &moto, args);
            out.assert_code(1);
            let err = out.stderr();
            assert!(err.contains(&format!("s3://{BUCKET}/{KEY}")), "{what} / {args:?}: {err}");
            assert!(err.contains("checksum mismatch"), "{what} / {args:?}: {err}");
            assert!(err.contains(&format!("s3://{BUCKET}/{KEY}.backup")), "{what} / {args:?}: the error must name the way out: {err}");
            assert!(!err.contains("panicked"), "{what} / {args:?}: {err}");
            assert_eq!(moto.object(KEY).as_ref(), Some(&before), "{what} / {args:?}: the corrupted object was overwritten");
            assert_eq!(moto.object(&format!("{KEY}.backup")).as_ref(), Some(&backup), "{what} / {args:?}: the backup was overwritten");
            assert_no_leftovers(&moto, &format!("{what} / {args:?}"));
        }
    }

    // One way out the errors name: push a good state file. Without --force
    // the unusable object is refused; with it, it is replaced and the good
    // backup kept.
    dir.write("good.json", &text);
    let out = run(&dir, &moto, &["state", "push", "good.json"]);
    out.assert_code(1);
    assert!(out.stderr().contains("checksum mismatch"), "{}", out.stderr());
    run(&dir, &moto, &["state", "push", "--force", "good.json"]).assert_code(0);
    assert_eq!(moto.state().body, good.body);
    assert_eq!(moto.object(&format!("{KEY}.backup")).as_ref(), Some(&backup), "the push replaced the good backup");
    run(&dir, &moto, &["plan", "--detailed-exitcode", "--var", "round=2"]).assert_code(0);
    moto.put(KEY, b"<html>broken again</html>", Some(&sum));

    // The other: copy the backup (with its metadata) over the object.
    block_on(moto.s3().copy_object().bucket(BUCKET).key(KEY).copy_source(format!("{BUCKET}/{KEY}.backup")).send()).expect("CopyObject");
    let out = run(&dir, &moto, &["plan", "--detailed-exitcode", "--var", "round=2"]);
    out.assert_code(2);
    assert!(out.stdout().contains("1 to change"), "{}", out.stdout());
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=2"]).assert_code(0);
    assert_eq!(input(&moto.state().json(), "himaplan_data.round"), 2);
}

/// A lock left by a run that died makes apply fail naming the holder, with
/// nothing written; force-unlock with a wrong id changes nothing, with the
/// holder's id it removes the lock, and apply then proceeds.
#[test]
fn stale_lock_names_the_holder_until_force_unlocked() {
    let Some(moto) = turn() else { return };
    let dir = TestDir::new(CONFIG);
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=1"]).assert_code(0);
    let before = moto.state();
    let lock_key = format!("{KEY}.lock");
    let stale = serde_json::json!({
        "id": "0f6c1e2a-dead-4e1f-9d4b-stale0000001",
        "operation": "apply",
        "who": "ci@runner-7",
        "created": "2026-01-05T03:00:00Z",
        "pid": 4_194_000,
    });
    moto.put(&lock_key, serde_json::to_string_pretty(&stale).expect("json").as_bytes(), None);

    let out = run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=2"]);
    out.assert_code(1);
    let err = out.stderr();
    for needle in ["0f6c1e2a-dead-4e1f-9d4b-stale0000001", "ci@runner-7", "pid 4194000", "force-unlock"] {
        assert!(err.contains(needle), "the lock error must mention {needle:?}: {err}");
    }
    assert_eq!(moto.state(), before, "a locked-out apply wrote state");
    assert_eq!(moto.journal_keys(), Vec::<String>::new());

    let out = run(&dir, &moto, &["force-unlock", "not-the-id"]);
    out.assert_code(1);
    assert!(out.stderr().contains("not-the-id"), "{}", out.stderr());
    assert!(moto.object(&lock_key).is_some(), "a refused force-unlock removed the lock");

    run(&dir, &moto, &["force-unlock", "0f6c1e2a-dead-4e1f-9d4b-stale0000001"]).assert_code(0);
    assert!(moto.object(&lock_key).is_none(), "force-unlock left the lock");
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=2"]).assert_code(0);
    let state = moto.state().json();
    assert_eq!((serial(&state), input(&state, "himaplan_data.round")), (2, serde_json::json!(2)));
    assert_no_leftovers(&moto, "apply after force-unlock");
}

/// The answer to the lock's conditional PUT is lost after S3 created the
/// lock (opentofu#4405): the SDK retries the PUT, S3 answers 412 against
/// the lock this very run holds, and the run must take that as its own lock
/// (its body carries the run's id), apply, and release it at the end.
#[test]
fn lost_answer_to_the_lock_put_still_takes_and_releases_the_lock() {
    const LOCK_PUT: &str = "PUT /himalytix-state/himalytix/state.json.lock";
    let Some(moto) = turn() else { return };
    let dir = TestDir::new(CONFIG);
    let proxy = Proxy::start(&moto.endpoint, FaultPlan { drop_first: vec![(LOCK_PUT, 1)], ..FaultPlan::default() });
    let mut env = moto.env();
    env.push(("AWS_ENDPOINT_URL_S3", proxy.endpoint.clone()));

    let started = Instant::now();
    let apply = dir.run_with(&["apply", "--auto-approve", "--var", "round=1"], &env_refs(&env), None);
    let took = started.elapsed();
    apply.assert_code(0);
    let counts = proxy.counts();
    assert_eq!(counts.fault(Fault::Drop), 1, "the proxy must have dropped exactly the lock PUT's answer: {counts:?}");
    assert_eq!(counts.dropped_actions.get(LOCK_PUT), Some(&1), "{counts:?}");
    assert!(counts.actions.get(LOCK_PUT).is_some_and(|n| *n >= 2), "the SDK must have retried the lock PUT: {counts:?}");
    let state = moto.state().json();
    assert_eq!((serial(&state), input(&state, "himaplan_data.round")), (1, serde_json::json!(1)));
    assert_no_leftovers(&moto, "apply whose lock PUT answer was lost");
    eprintln!("apply with the lock PUT's answer lost took {took:?} ({} requests through the proxy)", counts.requests);
}

/// A local state file moves into S3 with `state push` and back out with
/// `state pull` unchanged; pushing an older serial or another lineage is
/// refused (the object unchanged) unless --force.
#[test]
fn state_push_and_pull_round_trip_between_a_file_and_s3() {
    let Some(moto) = turn() else { return };
    // The same configuration on the default local state, as before the switch.
    let local_config = CONFIG.split_once("variable \"round\"").map(|(_, rest)| format!("variable \"round\"{rest}")).expect("split");
    let local = TestDir::new(&local_config);
    run(&local, &moto, &["apply", "--auto-approve", "--var", "round=5"]).assert_code(0);
    let local_text = local.state_text();
    let local_path = local.join(support::DEFAULT_STATE);
    let local_path = local_path.to_str().expect("utf-8 path");
    let dir = TestDir::new(CONFIG);

    let out = run(&dir, &moto, &["state", "pull"]);
    out.assert_code(1);
    assert!(out.stderr().contains("No state at s3://"), "{}", out.stderr());
    let out = run(&dir, &moto, &["state", "push", "missing.json"]);
    out.assert_code(1);
    assert!(moto.object(KEY).is_none());

    let out = run(&dir, &moto, &["state", "push", local_path]);
    out.assert_code(0);
    assert!(out.stdout().contains("Pushed"), "{}", out.stdout());
    assert_eq!(String::from_utf8(moto.state().body).expect("utf-8"), local_text, "the pushed object differs from the file");
    assert_no_leftovers(&moto, "push");
    let pulled = run(&dir, &moto, &["state", "pull"]);
    pulled.assert_code(0);
    assert_eq!(pulled.stdout(), local_text, "pull must print the pushed state");
    run(&dir, &moto, &["plan", "--detailed-exitcode", "--var", "round=5"]).assert_code(0);

    // Pushing the same state again writes nothing.
    let pushed = moto.state();
    let out = run(&dir, &moto, &["state", "push", local_path]);
    out.assert_code(0);
    assert!(out.stdout().contains("nothing was written"), "{}", out.stdout());
    assert_eq!(moto.state(), pushed);

    // S3 moves on; the old file is refused, then forced.
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=6"]).assert_code(0);
    let newer = moto.state();
    let out = run(&dir, &moto, &["state", "push", local_path]);
    out.assert_code(1);
    assert!(out.stderr().contains("newer") && out.stderr().contains("--force"), "{}", out.stderr());
    assert_eq!(moto.state(), newer, "a refused push wrote state");
    let foreign = TestDir::new(&local_config);
    run(&foreign, &moto, &["apply", "--auto-approve"]).assert_code(0);
    let foreign_path = foreign.join(support::DEFAULT_STATE);
    let out = run(&dir, &moto, &["state", "push", foreign_path.to_str().expect("utf-8")]);
    out.assert_code(1);
    assert!(out.stderr().contains("lineage"), "{}", out.stderr());
    assert_eq!(moto.state(), newer, "a push of another lineage wrote state");
    assert_no_leftovers(&moto, "refused pushes");

    run(&dir, &moto, &["state", "push", "--force", local_path]).assert_code(0);
    assert_eq!(String::from_utf8(moto.state().body).expect("utf-8"), local_text);
    assert_eq!(
        moto.object(&format!("{KEY}.backup")).expect("backup").body,
        newer.body,
        "--force keeps the overwritten state as the backup"
    );

    // Pulled state is a working local state file.
    let pulled = run(&dir, &moto, &["state", "pull"]);
    local.write("pulled.json", &pulled.stdout());
    let list = run(&local, &moto, &["state", "list", "--state", "pulled.json"]);
    list.assert_code(0);
    assert_eq!(list.stdout().lines().count(), 3);
}

/// The S3 requests of one `plan` and one `apply` with a change, through the
/// CLI, counted by moto's recorder.
#[test]
fn s3_requests_of_one_plan_and_one_apply() {
    let Some(moto) = turn() else { return };
    let dir = TestDir::new(CONFIG);
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=1"]).assert_code(0);

    moto.start_recording();
    run(&dir, &moto, &["plan", "--var", "round=2"]).assert_code(0);
    let plan = moto.recorded_paths();
    moto.start_recording();
    run(&dir, &moto, &["apply", "--auto-approve", "--var", "round=2"]).assert_code(0);
    let apply = moto.recorded_paths();
    let _ = writeln!(std::io::stderr(), "plan: {} S3 requests {plan:#?}\napply: {} S3 requests {apply:#?}", plan.len(), apply.len());
    // GET state, LIST journal.
    assert_eq!(plan.len(), 2, "{plan:?}");
    assert!(plan.iter().all(|r| r.starts_with("GET")), "plan must only read: {plan:?}");
    // PUT lock, GET state, LIST journal, journal PUTs, PUT backup, PUT state, DELETE journal, DELETE lock.
    assert!(apply.len() <= 12, "{apply:?}");
    assert_eq!(
        apply.iter().filter(|r| r.starts_with(&format!("PUT /{BUCKET}/{KEY}?")) || **r == format!("PUT /{BUCKET}/{KEY}")).count(),
        1,
        "{apply:?}"
    );
}
