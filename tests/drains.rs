//! Draining a keyless resource, end to end through the `himaplan` binary:
//! one `aws_instance.db` (moto, behind the tests' fault proxy) listed by an
//! `nginx_upstream` (real nginx) and by a `pgbouncer` database (real
//! PostgreSQL + PgBouncer). A resize must plan with the drain shown, mark
//! the server `down` and `PAUSE` the database while EC2 stops the instance,
//! and restore both afterwards.
//!
//! No traffic reaches moto's private-range addresses: the instance is
//! mapped to loopback through its tags (`web_port`, `pg_port`), which are
//! known at plan time. The nginx backends are small HTTP servers of the
//! test on 127.0.0.1, and requests through nginx's `/app/` go only to them.

#[path = "support/moto.rs"]
mod moto;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/servers.rs"]
mod servers;
mod support;

use proxy::{FaultPlan, Proxy};
use servers::{Nginx, Pgbouncer};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use support::TestDir;

/// A loopback HTTP backend answering 200 to everything, counting requests.
struct Backend {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Backend {
    fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback backend");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 2048];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            }
        });
        Backend { port, hits }
    }
}

/// GETs `http://127.0.0.1:PORT/app/` in a loop until `stop`; counts (ok, failed).
fn load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let (mut ok, mut failed) = (0, 0);
        while !stop.load(Ordering::SeqCst) {
            let answer = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET /app/ HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
                let mut text = String::new();
                s.read_to_string(&mut text)?;
                Ok(text)
            });
            match answer {
                Ok(text) if text.starts_with("HTTP/1.1 200") => ok += 1,
                _ => failed += 1,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        (ok, failed)
    })
}

/// The keyless database instance, the upstream listing it beside `others`,
/// and (with `pgb`) a PgBouncer database on it.
fn config(nginx: &Nginx, wrapper: &std::path::Path, web_port: u16, others: &[u16], pgb: Option<&Pgbouncer>) -> String {
    let mut servers = vec!["\"127.0.0.1:${aws_instance.db.tags.web_port}\"".to_string()];
    servers.extend(others.iter().map(|p| format!("\"127.0.0.1:{p}\"")));
    let pg_port = pgb.map(|s| s.var("PG_PORT")).unwrap_or_else(|| "5432".into());
    let mut hcl = format!(
        r#"
variable "db_type" {{
  type    = string
  default = "t3.small"
}}

resource "aws_instance" "db" {{
  ami           = "{ami}"
  instance_type = var.db_type
  tags = {{
    Name     = "db"
    web_port = "{web_port}"
    pg_port  = "{pg_port}"
  }}
}}

resource "nginx_upstream" "web" {{
  config_file  = "{file}"
  name         = "{name}"
  method       = "round_robin"
  servers      = [{servers}]
  nginx_conf   = "{conf}"
  nginx_prefix = "{prefix}"
  nginx_bin    = "{bin}"
}}
"#,
        ami = moto::AMI,
        file = nginx.upstream_file.display(),
        name = servers::UPSTREAM_NAME,
        servers = servers.join(", "),
        conf = nginx.conf.display(),
        prefix = nginx.prefix.display(),
        bin = wrapper.display(),
    );
    if let Some(s) = pgb {
        hcl.push_str(&format!(
            r#"
resource "pgbouncer" "main" {{
  config_file   = "{ini}"
  admin_url     = "{admin}"
  listen_addr   = "127.0.0.1"
  listen_port   = {pgb_port}
  auth_type     = "md5"
  auth_file     = "{userlist}"
  admin_users   = "admin"
  pool_mode     = "transaction"
  min_pool_size = 0
  pause_timeout = 20
  settings = {{
    unix_socket_dir = "{run}"
    logfile         = "{run}/pgbouncer.log"
    pidfile         = "{run}/pgbouncer.pid"
  }}
  database "appdb" {{
    host   = "127.0.0.1"
    port   = aws_instance.db.tags.pg_port
    dbname = "appdb"
    user   = "app"
  }}
}}
"#,
            ini = s.var("PGBOUNCER_INI"),
            admin = s.var("PGBOUNCER_ADMIN_URL"),
            pgb_port = s.var("PGBOUNCER_PORT"),
            userlist = s.var("PGBOUNCER_USERLIST"),
            run = s.var("PGBOUNCER_RUN"),
        ));
    }
    hcl
}

/// `SHOW DATABASES`' `paused` of `db`, asked on PgBouncer's console.
fn paused(admin_url: &str, db: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await.expect("connect to the admin console");
        tokio::spawn(conn);
        let rows = client.simple_query("SHOW DATABASES").await.expect("SHOW DATABASES");
        rows.into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) if r.get("name") == Some(db) => r.get("paused").map(str::to_string),
                _ => None,
            })
            .unwrap_or_else(|| panic!("SHOW DATABASES has no {db}"))
    })
}

/// The `server 127.0.0.1:PORT ...;` line of the include file.
fn server_line(text: &str, port: u16) -> String {
    let prefix = format!("server 127.0.0.1:{port}");
    text.lines().map(str::trim).find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix} in:\n{text}")).to_string()
}

#[test]
fn resize_of_a_keyless_instance_drains_it_from_nginx_and_pgbouncer_while_ec2_stops_it() {
    let Some(moto) = moto::turn() else { return };
    let Some(nginx) = Nginx::start("keyless") else { return };
    let Some(pgb) = Pgbouncer::start("keyless") else { return };
    let (db, a, b) = (Backend::start(), Backend::start(), Backend::start());
    // StopInstances is forwarded at once and its answer held 3 s: the window
    // in which the instance is stopping and must be out of rotation.
    let plan = FaultPlan { action_delay: vec![("StopInstances", Duration::from_secs(3))], ..FaultPlan::default() };
    let proxy = Proxy::start(&moto.endpoint, plan);
    let wrapper = nginx.reload_logging_wrapper(&moto.endpoint);
    let dir = TestDir::new(&config(&nginx, &wrapper, db.port, &[a.port, b.port], Some(&pgb)));
    let env = moto.env_via(&proxy.endpoint);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dir.run_with(&["apply", "--auto-approve"], &env, None).assert_code(0);
    let admin = pgb.var("PGBOUNCER_ADMIN_URL");
    assert_eq!(paused(&admin, "appdb"), "0");

    let planned = dir.run_with(&["plan", "--var", "db_type=t3.medium"], &env, None);
    planned.assert_code(0);
    let out = planned.stdout();
    let line = format!(
        "aws_instance.db batch 1/1 (max_unavailable = 1): drain aws_instance.db from nginx_upstream.web (127.0.0.1:{}: marked down, reload), \
         pgbouncer.main (appdb: PAUSE) → stop/start → restore nginx_upstream.web (back up, reload), pgbouncer.main (RESUME)",
        db.port
    );
    assert!(out.contains(&line), "the plan does not show the batch with its drains ({line:?}):\n{out}");

    let stop = Arc::new(AtomicBool::new(false));
    let client = load(nginx.port, stop.clone());
    proxy.reset_counts();
    let applying = {
        let (dir_path, env) = (dir.path().to_path_buf(), env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
        std::thread::spawn(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            support::himaplan_with(&dir_path, &["apply", "--auto-approve", "--var", "db_type=t3.medium"], &env, None)
        })
    };
    // Watch the servers while EC2 is asked to stop the instance.
    let mut seen_while_stopping = Vec::new();
    while !applying.is_finished() {
        let actions = proxy.counts().actions;
        let stopping = actions.get("StopInstances").copied().unwrap_or(0) == 1 && !actions.contains_key("StartInstances");
        if stopping {
            seen_while_stopping.push((server_line(&nginx.upstream_text(), db.port), paused(&admin, "appdb")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let applied = applying.join().expect("apply thread");
    applied.assert_code(0);
    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = client.join().expect("client thread");

    assert!(!seen_while_stopping.is_empty(), "the test never saw the StopInstances window");
    for (server, paused) in &seen_while_stopping {
        assert!(server.split_whitespace().any(|w| w.trim_end_matches(';') == "down"), "not marked down while stopping: {server}");
        assert_eq!(paused, "1", "appdb is not paused while its host stops");
    }
    let server = server_line(&nginx.upstream_text(), db.port);
    assert!(!server.contains("down"), "the server is back up after apply: {server}");
    assert_eq!(paused(&admin, "appdb"), "0", "appdb is resumed after apply");
    assert_eq!(failed, 0, "requests through nginx failed during the drain ({ok} succeeded)");
    assert!(ok > 0, "the client sent requests");
    assert_eq!(moto.instance(dir.state_attrs("aws_instance.db")["id"].as_str().expect("id")).instance_type, "t3.medium");
    dir.run_with(&["plan", "--detailed-exitcode", "--var", "db_type=t3.medium"], &env, None).assert_code(0);
    eprintln!(
        "keyless drain: {} observations in the 3 s StopInstances window, all drained; {ok} requests through nginx, {failed} failed; \
         backend hits db/a/b = {}/{}/{}",
        seen_while_stopping.len(),
        db.hits.load(Ordering::SeqCst),
        a.hits.load(Ordering::SeqCst),
        b.hits.load(Ordering::SeqCst)
    );
}

#[test]
fn draining_the_only_server_of_an_upstream_never_empties_it() {
    let Some(moto) = moto::turn() else { return };
    let Some(nginx) = Nginx::start("single") else { return };
    let db = Backend::start();
    let wrapper = nginx.reload_logging_wrapper(&moto.endpoint);
    let dir = TestDir::new(&config(&nginx, &wrapper, db.port, &[], None));
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dir.run_with(&["apply", "--auto-approve"], &env, None).assert_code(0);
    nginx.clear_reloads();
    let _ = std::fs::remove_file(nginx.checks_log());
    dir.run_with(&["apply", "--auto-approve", "--var", "db_type=t3.medium"], &env, None).assert_code(0);
    let reloads = nginx.reloads();
    assert!(reloads.len() >= 2, "drain and restore each reload: {reloads:?}");
    for r in &reloads {
        let servers: Vec<&str> = r.text.lines().map(str::trim).filter(|l| l.starts_with("server ")).collect();
        assert_eq!(servers.len(), 1, "the upstream keeps its one server in every reload:\n{}", r.text);
    }
    assert!(reloads.iter().any(|r| r.text.contains(" down;")), "the drain marked the server down: {reloads:?}");
    assert!(!reloads.last().expect("reloads").text.contains(" down;"), "the last reload has it back up");
    let checks = std::fs::read_to_string(nginx.checks_log()).unwrap_or_default();
    assert!(checks.lines().any(|l| l.starts_with("test ")), "nginx -t ran: {checks}");
    assert!(checks.lines().all(|l| l.ends_with(" 0")), "every nginx -t and reload succeeded:\n{checks}");
}
