//! The `nginx` provider against a real nginx 1.22 on loopback with local
//! python http.server backends: an upstream grown from 2 to 4 servers while
//! requests keep succeeding, the old workers gone when apply returns, and a
//! configuration nginx rejects leaving the old file in place and nginx
//! serving, with nginx's message in the error.
//!
//! Each test starts its own nginx and backends with
//! `scripts/servers/nginx.sh` (own prefix, free ports) and stops them when
//! it ends. Without nginx the tests skip, except under `CI=true`, where
//! they fail and say why. Everything listens on and dials 127.0.0.1 only.

use himaplan::providers::nginx::NginxProvider;
use himaplan::providers::nginx::client;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, Provider, ProviderError, ProviderErrorKind, ReadItem, ReadRequest};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// nginx and its backends for one test; stopped on drop.
struct Servers {
    env: BTreeMap<String, String>,
    run: PathBuf,
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").env("HIMAPLAN_RUN", &self.run).output();
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

impl Servers {
    fn var(&self, name: &str) -> String {
        self.env.get(name).cloned().unwrap_or_default()
    }
    fn backends(&self) -> Vec<String> {
        self.var("NGINX_BACKENDS").split(',').map(str::to_string).collect()
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/servers/nginx.sh")
}

fn start_servers(name: &str) -> Result<Servers, String> {
    let run = std::env::temp_dir().join(format!("himaplan-test-nginx-{}-{name}", std::process::id()));
    let out = Command::new("bash")
        .arg(script())
        .args(["start", "4"])
        .env("HIMAPLAN_RUN", &run)
        .env_remove("NGINX_PORT")
        .output()
        .map_err(|e| format!("cannot run nginx.sh: {e}"))?;
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let servers = Servers { env, run };
    if !out.status.success() {
        return Err(format!("nginx.sh start failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(servers)
}

fn servers(name: &str) -> Option<Servers> {
    match start_servers(name) {
        Ok(s) => Some(s),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("nginx is required under CI=true: {why}"),
        Err(why) => {
            eprintln!("skipping: nginx is not available ({why})");
            None
        }
    }
}

fn addr() -> InstanceAddr {
    "nginx_upstream.backend".parse().expect("address")
}

fn planned(s: &Servers, servers: &[String], fail_timeout: &str) -> Value {
    Value::Map(ValueMap::from([
        ("config_file".to_string(), Value::from(s.var("NGINX_UPSTREAM_FILE"))),
        ("name".to_string(), Value::from("backend")),
        ("method".to_string(), Value::from("least_conn")),
        ("servers".to_string(), Value::List(servers.iter().map(|a| Value::from(a.as_str())).collect())),
        ("max_fails".to_string(), Value::from(3_i64)),
        ("fail_timeout".to_string(), Value::from(fail_timeout)),
        ("nginx_conf".to_string(), Value::from(s.var("NGINX_CONF"))),
        ("nginx_prefix".to_string(), Value::from(s.var("NGINX_PREFIX"))),
        ("nginx_bin".to_string(), Value::from("nginx")),
        ("id".to_string(), Value::Null),
    ]))
}

async fn apply(p: &NginxProvider, action: ApplyAction, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
    p.apply(ApplyRequest {
        rollout: Default::default(),
        rtype: "nginx_upstream".into(),
        addr: addr(),
        action,
        prior: prior.clone(),
        planned: planned.clone(),
        changed: vec![],
        lineage: "lineage-nginx".into(),
        token: None,
        part: None,
    })
    .await
}

/// Sends GET / through nginx on a fresh connection each time until `stop`;
/// returns (requests, failures).
fn request_loop(port: String, stop: Arc<AtomicBool>) -> (Arc<AtomicU64>, Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (o, f) = (ok.clone(), failed.clone());
    let handle = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let agent = ureq::Agent::new_with_defaults();
            match agent.get(format!("http://127.0.0.1:{port}/")).call() {
                Ok(_) => o.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    eprintln!("request failed: {e}");
                    f.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    });
    (ok, failed, handle)
}

fn master_pid(s: &Servers) -> u32 {
    std::fs::read_to_string(format!("{}/nginx.pid", s.var("NGINX_PREFIX"))).ok().and_then(|t| t.trim().parse().ok()).expect("master pid")
}

/// The upstream grows from 2 to 4 servers with no failed request, the old
/// workers are gone when apply returns, and read reports the 4 servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_grows_without_failed_requests() {
    let Some(s) = servers("grow") else { return };
    let p = NginxProvider::new();
    p.configure(&Value::Null).await.expect("configure");
    let all = s.backends();
    assert_eq!(all.len(), 4);
    let two = planned(&s, &all[..2], "30s");
    let created = apply(&p, ApplyAction::Create, &Value::Null, &two).await.expect("create");

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, handle) = request_loop(s.var("NGINX_PORT"), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let workers_before = client::children(master_pid(&s));
    let four = planned(&s, &all, "30s");
    let started = Instant::now();
    let updated = apply(&p, ApplyAction::Update, &created, &four).await.expect("update");
    let took = started.elapsed();
    let workers_after = client::children(master_pid(&s));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = handle.join();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "nginx figures: apply (write + nginx -t + reload + old workers gone) took {took:?}; {ok} requests during the window, {failed} failed"
    );
    assert_eq!(failed, 0, "requests failed during the reload");
    assert!(ok > 0);
    assert!(workers_before.is_disjoint(&workers_after), "old workers remain: {workers_before:?} {workers_after:?}");
    assert!(!workers_after.is_empty());

    let text = std::fs::read_to_string(s.var("NGINX_UPSTREAM_FILE")).expect("include file");
    for a in &all {
        assert!(text.contains(&format!("server {a} max_fails=3 fail_timeout=30s;")), "{text}");
    }
    let resp = p
        .read(ReadRequest {
            rtype: "nginx_upstream".into(),
            lineage: "lineage-nginx".into(),
            items: vec![ReadItem::new(addr(), updated.clone())],
        })
        .await
        .expect("read");
    assert_eq!(resp.current[0].as_ref(), Some(&updated), "no drift after apply");
}

/// nginx rejects fail_timeout "abc": apply fails with nginx's message, the
/// old file is back, and nginx keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_configuration_restores_the_old_file() {
    let Some(s) = servers("reject") else { return };
    let p = NginxProvider::new();
    p.configure(&Value::Null).await.expect("configure");
    let all = s.backends();
    let good = apply(&p, ApplyAction::Create, &Value::Null, &planned(&s, &all[..2], "30s")).await.expect("create");
    let before = std::fs::read_to_string(s.var("NGINX_UPSTREAM_FILE")).expect("include file");

    let started = Instant::now();
    let err = apply(&p, ApplyAction::Update, &good, &planned(&s, &all, "abc")).await.expect_err("nginx rejects");
    eprintln!("nginx figures: rejected apply took {:?}: {err}", started.elapsed());
    assert_eq!(err.kind(), ProviderErrorKind::Invalid, "{err:?}");
    assert!(err.to_string().contains("fail_timeout") || err.to_string().contains("invalid"), "{err}");
    assert_eq!(std::fs::read_to_string(s.var("NGINX_UPSTREAM_FILE")).expect("include file"), before);
    let body = ureq::get(format!("http://127.0.0.1:{}/", s.var("NGINX_PORT")))
        .call()
        .expect("nginx still serves")
        .body_mut()
        .read_to_string()
        .expect("body");
    assert_eq!(body.trim(), "ok");
}
