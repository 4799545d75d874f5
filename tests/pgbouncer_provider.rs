//! The `pgbouncer` provider against a real PostgreSQL 15 + PgBouncer 1.18
//! on loopback: pool sizes changed by RELOAD while clients keep querying,
//! a runtime `SET` seen as drift and undone by apply, a value PgBouncer
//! refuses reported as an apply error, the ini file's owner and mode kept,
//! and the admin URL never returned in plain text.
//!
//! Each test starts its own servers with `scripts/servers/pgbouncer.sh`
//! (own run directory, free ports) and stops them when it ends. Without
//! the packages the tests skip, except under `CI=true`, where they fail and
//! say why. Everything listens on and dials 127.0.0.1 only.

use himaplan::providers::pgbouncer::PgbouncerProvider;
use himaplan::providers::pgbouncer::client::Console;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, Provider, ProviderError, ProviderErrorKind, ReadItem, ReadRequest};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The servers

/// PostgreSQL + PgBouncer started for one test; stopped on drop (also when
/// the test panics).
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
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/servers/pgbouncer.sh")
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Parses the script's `export A=1 B=2` lines.
fn parse_exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("export "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn start_servers(name: &str) -> Result<Servers, String> {
    let run = std::env::temp_dir().join(format!("himaplan-test-pgb-{}-{name}", std::process::id()));
    let (pg, pgb) = (free_port()?, free_port()?);
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .env("HIMAPLAN_RUN", &run)
        .env("PG_PORT", pg.to_string())
        .env("PGBOUNCER_PORT", pgb.to_string())
        .output()
        .map_err(|e| format!("cannot run pgbouncer.sh: {e}"))?;
    let servers = Servers { env: parse_exports(&String::from_utf8_lossy(&out.stdout)), run };
    if !out.status.success() {
        return Err(format!("pgbouncer.sh start failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(servers)
}

/// The servers, or `None` when the test should be skipped.
fn servers(name: &str) -> Option<Servers> {
    match start_servers(name) {
        Ok(s) => Some(s),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL and PgBouncer are required under CI=true: {why}")
        }
        Err(why) => {
            eprintln!("skipping: PgBouncer is not available ({why})");
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn addr() -> InstanceAddr {
    "pgbouncer.main".parse().expect("address")
}

/// The configuration the script started with, with the given pool sizes.
fn planned(s: &Servers, default_pool_size: i64, db_pool_size: i64, extra: &[(&str, &str)]) -> Value {
    let run = s.var("PGBOUNCER_RUN");
    let mut settings = ValueMap::from([
        ("unix_socket_dir".to_string(), Value::from(run.as_str())),
        ("logfile".to_string(), Value::from(format!("{run}/pgbouncer.log"))),
        ("pidfile".to_string(), Value::from(format!("{run}/pgbouncer.pid"))),
    ]);
    for (k, v) in extra {
        settings.insert(k.to_string(), Value::from(*v));
    }
    let db = Value::Map(ValueMap::from([
        ("host".to_string(), Value::from("127.0.0.1")),
        ("port".to_string(), Value::from(s.var("PG_PORT").parse().unwrap_or(0.0))),
        ("dbname".to_string(), Value::from("appdb")),
        ("user".to_string(), Value::from("app")),
        ("pool_size".to_string(), Value::from(db_pool_size)),
        ("pool_mode".to_string(), Value::Null),
    ]));
    Value::Map(ValueMap::from([
        ("config_file".to_string(), Value::from(s.var("PGBOUNCER_INI"))),
        ("admin_url".to_string(), Value::from(s.var("PGBOUNCER_ADMIN_URL")).into_sensitive()),
        ("listen_addr".to_string(), Value::from("127.0.0.1")),
        ("listen_port".to_string(), Value::from(s.var("PGBOUNCER_PORT").parse().unwrap_or(0.0))),
        ("auth_type".to_string(), Value::from("md5")),
        ("auth_file".to_string(), Value::from(s.var("PGBOUNCER_USERLIST"))),
        ("admin_users".to_string(), Value::from("admin")),
        ("pool_mode".to_string(), Value::from("session")),
        ("max_client_conn".to_string(), Value::from(100_i64)),
        ("default_pool_size".to_string(), Value::from(default_pool_size)),
        ("min_pool_size".to_string(), Value::Null),
        ("reserve_pool_size".to_string(), Value::Null),
        ("reserve_pool_timeout".to_string(), Value::Null),
        ("settings".to_string(), Value::Map(settings)),
        ("database".to_string(), Value::Map(ValueMap::from([("appdb".to_string(), db)]))),
        ("id".to_string(), Value::Null),
    ]))
}

async fn apply(p: &PgbouncerProvider, action: ApplyAction, prior: &Value, planned: &Value) -> Result<Value, ProviderError> {
    p.apply(ApplyRequest {
        rollout: Default::default(),
        rtype: "pgbouncer".into(),
        addr: addr(),
        action,
        prior: prior.clone(),
        planned: planned.clone(),
        changed: vec![],
        lineage: "lineage-pgb".into(),
        token: None,
        part: None,
    })
    .await
}

async fn read(p: &PgbouncerProvider, prior: &Value) -> Option<Value> {
    let resp = p
        .read(ReadRequest { rtype: "pgbouncer".into(), lineage: "lineage-pgb".into(), items: vec![ReadItem::new(addr(), prior.clone())] })
        .await
        .expect("read");
    assert!(resp.others.is_empty());
    resp.current.into_iter().next().flatten()
}

fn number(v: &Value, name: &str) -> Option<i64> {
    v.get(name).and_then(Value::as_i64)
}

fn db_pool_size(v: &Value) -> Option<i64> {
    v.get("database").and_then(|d| d.get("appdb")).and_then(|d| d.get("pool_size")).and_then(Value::as_i64)
}

/// Runs `SELECT 1` through PgBouncer until `stop`: one client on a kept
/// connection, one opening a new connection per query. Returns the
/// (queries, failures) counters.
fn query_loop(url: String, stop: Arc<AtomicBool>) -> (Arc<AtomicU64>, Arc<AtomicU64>, Vec<tokio::task::JoinHandle<()>>) {
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for reconnect in [false, true] {
        let (url, stop, ok, failed) = (url.clone(), stop.clone(), ok.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = None;
            while !stop.load(Ordering::Relaxed) {
                if client.is_none() || reconnect {
                    match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                        Ok((c, conn)) => {
                            tokio::spawn(conn);
                            client = Some(c);
                        }
                        Err(e) => {
                            eprintln!("client connect failed: {e}");
                            failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                let Some(c) = client.as_ref() else { continue };
                match c.simple_query("SELECT 1").await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("query failed: {e}");
                        client = None;
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    (ok, failed, tasks)
}

// ---------------------------------------------------------------------------
// Scenarios

/// default_pool_size 20 → 25 and appdb's pool_size 20 → 30 are live after
/// apply, clients querying meanwhile see no failure, the ini keeps its
/// owner and mode, and the admin URL stays marked sensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_sizes_change_on_reload_without_failed_queries() {
    let Some(s) = servers("pools") else { return };
    let p = PgbouncerProvider::new();
    p.configure(&Value::Null).await.expect("configure");
    let ini = PathBuf::from(s.var("PGBOUNCER_INI"));
    let before = std::fs::metadata(&ini).expect("ini metadata");
    // Held open, the original file's inode cannot be reused by a later write,
    // and its contents show whether it was replaced (rename) or rewritten.
    let original = std::fs::read_to_string(&ini).expect("read ini");
    let mut held = std::fs::File::open(&ini).expect("open ini");

    let v20 = planned(&s, 20, 20, &[]);
    let created = apply(&p, ApplyAction::Create, &Value::Null, &v20).await.expect("create");
    assert_eq!(created.get("id").and_then(Value::as_str), Some(s.var("PGBOUNCER_INI").as_str()));

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, tasks) = query_loop(s.var("PGBOUNCER_APP_URL"), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v25 = planned(&s, 25, 30, &[]);
    let started = Instant::now();
    let updated = apply(&p, ApplyAction::Update, &created, &v25).await.expect("update");
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("pgbouncer figures: apply (write + RELOAD + verify) took {took:?}; {ok} queries during the window, {failed} failed");
    assert_eq!(failed, 0, "queries failed during the reload");
    assert!(ok > 0, "no query ran during the reload");

    let console = Console::connect(&s.var("PGBOUNCER_ADMIN_URL")).await.expect("console");
    let live = console.show_config().await.expect("show config");
    assert_eq!(live.get("default_pool_size").map(|r| r.value.as_str()), Some("25"));
    let dbs = console.show_databases().await.expect("show databases");
    assert_eq!(dbs.get("appdb").and_then(|r| r.get("pool_size")).map(String::as_str), Some("30"));

    let after = std::fs::metadata(&ini).expect("ini metadata");
    assert_eq!((after.uid(), after.gid(), after.mode() & 0o7777), (before.uid(), before.gid(), before.mode() & 0o7777));
    assert_ne!(after.ino(), before.ino(), "the file was replaced by rename");
    let mut still = String::new();
    std::io::Read::read_to_string(&mut held, &mut still).expect("read the held file");
    assert_eq!(still, original, "the original file was rewritten in place instead of replaced");

    assert!(matches!(updated.get("admin_url"), Some(Value::Sensitive(_))), "admin_url lost its mark");
    let current = read(&p, &updated).await.expect("present");
    assert!(matches!(current.get("admin_url"), Some(Value::Sensitive(_))), "admin_url lost its mark on read");
    assert!(!current.deep_unmarked().to_string().is_empty());
    let visible = current.to_string();
    assert!(!visible.contains("admin-secret"), "the admin password is visible: {visible}");
    assert_eq!(number(&current, "default_pool_size"), Some(25));
    assert_eq!(db_pool_size(&current), Some(30));
}

/// A runtime `SET default_pool_size = 7` shows as drift, and apply of the
/// unchanged configuration restores 25; a missing file reads as gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_set_is_drift_and_apply_restores() {
    let Some(s) = servers("drift") else { return };
    let p = PgbouncerProvider::new();
    p.configure(&Value::Null).await.expect("configure");
    let v25 = planned(&s, 25, 20, &[]);
    let state = apply(&p, ApplyAction::Create, &Value::Null, &v25).await.expect("create");

    let console = Console::connect(&s.var("PGBOUNCER_ADMIN_URL")).await.expect("console");
    console.set("default_pool_size", "7").await.expect("set");
    let drifted = read(&p, &state).await.expect("present");
    assert_eq!(number(&drifted, "default_pool_size"), Some(7), "runtime SET not seen: {drifted}");
    // The restart-only listen_port reads from the file, not the console.
    assert_eq!(number(&drifted, "listen_port"), number(&v25, "listen_port"));

    let started = Instant::now();
    apply(&p, ApplyAction::Update, &drifted, &v25).await.expect("apply restores");
    eprintln!("pgbouncer figures: drift-restoring apply took {:?}", started.elapsed());
    let live = console.show_config().await.expect("show config");
    assert_eq!(live.get("default_pool_size").map(|r| r.value.as_str()), Some("25"));
    assert_eq!(number(&read(&p, &state).await.expect("present"), "default_pool_size"), Some(25));

    let mut gone = state.as_map().cloned().expect("map");
    gone.insert("config_file".into(), Value::from(format!("{}/absent.ini", s.var("PGBOUNCER_RUN"))));
    assert_eq!(read(&p, &Value::Map(gone)).await, None);
}

/// A value PgBouncer refuses on RELOAD makes apply fail naming the key,
/// the wanted and the live value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_value_is_an_apply_error_naming_the_key() {
    let Some(s) = servers("refused") else { return };
    let p = PgbouncerProvider::new();
    p.configure(&Value::Null).await.expect("configure");
    let bad = planned(&s, 20, 20, &[("server_lifetime", "soon")]);
    let err = apply(&p, ApplyAction::Create, &Value::Null, &bad).await.expect_err("refused");
    let text = err.to_string();
    eprintln!("refused value error: {text}");
    assert_eq!(err.kind(), ProviderErrorKind::Invalid, "{err:?}");
    assert!(text.contains("server_lifetime") && text.contains("soon"), "{text}");
    assert!(!text.contains("admin-secret"), "the password leaked: {text}");
}
