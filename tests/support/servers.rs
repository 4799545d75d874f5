//! Starters for the daemons of the end-to-end upstream tests: an nginx on
//! loopback whose managed upstream is defined but never proxied to, an
//! `nginx` wrapper that records every reload, and PostgreSQL + PgBouncer
//! from `scripts/servers/pgbouncer.sh`.
//!
//! Declare it with `#[path = "support/servers.rs"] mod servers;`. Each
//! starter owns one run directory and the processes started from it and
//! stops them on drop. Without the packages a starter returns `None` (the
//! test skips), except under `CI=true`, where it panics and says why.
//!
//! Why the nginx here is not `scripts/servers/nginx.sh start`: that script's
//! `location /` proxies to the upstream it manages, and these tests fill
//! the upstream with moto's private-range instance addresses, to which no
//! request may ever be sent. This nginx (installed by the same script, laid
//! out the same way) answers `location /` itself and only *defines* the
//! upstream `web_backend`, so nginx loads it and never connects to it.

#![allow(dead_code, reason = "each test uses a different subset of the starters")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free port on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// `Some(value)`, `None` to skip, or a panic under `CI=true`.
fn required<T>(what: &str, started: Result<T, String>) -> Option<T> {
    match started {
        Ok(s) => Some(s),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{what} is required under CI=true and could not be started: {why}")
        }
        Err(why) => {
            eprintln!("skipping: {what} is not available ({why})");
            None
        }
    }
}

fn unique_dir(kind: &str, name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("himaplan-test-{kind}-{}-{name}", std::process::id()))
}

// ---------------------------------------------------------------------------
// nginx

/// The upstream name the nginx below defines (and never proxies to).
pub const UPSTREAM_NAME: &str = "web_backend";

/// An nginx on loopback, started for one test; stopped on drop.
pub struct Nginx {
    /// `-p`: holds the configuration, pid file, logs and temp dirs.
    pub prefix: PathBuf,
    /// `-c`: the main configuration.
    pub conf: PathBuf,
    /// The include file holding `upstream web_backend { ... }`.
    pub upstream_file: PathBuf,
    /// The port `location /` answers on (with a static "ok").
    pub port: u16,
}

impl Nginx {
    /// Starts nginx for the test `name`, or `None` to skip.
    pub fn start(name: &str) -> Option<Nginx> {
        required("nginx", Nginx::try_start(name))
    }

    fn try_start(name: &str) -> Result<Nginx, String> {
        let script = repo().join("scripts/servers/nginx.sh");
        let out = Command::new("bash").arg(&script).arg("install").output().map_err(|e| format!("cannot run nginx.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!("nginx.sh install failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let prefix = unique_dir("nginx-e2e", name);
        let _ = std::fs::remove_dir_all(&prefix);
        std::fs::create_dir_all(prefix.join("tmp")).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(prefix.join("logs")).map_err(|e| e.to_string())?;
        let port = free_port()?;
        let p = prefix.display();
        let conf = prefix.join("nginx.conf");
        let upstream_file = prefix.join("web_upstream.conf");
        // A placeholder server until himaplan writes the real list; port 9
        // on loopback (discard) is never connected to either.
        std::fs::write(&upstream_file, format!("upstream {UPSTREAM_NAME} {{\n    server 127.0.0.1:9;\n}}\n")).map_err(|e| e.to_string())?;
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\n\
                 pid {p}/nginx.pid;\n\
                 error_log {p}/logs/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n\
                 \x20   access_log off;\n\
                 \x20   client_body_temp_path {p}/tmp/client_body;\n\
                 \x20   proxy_temp_path {p}/tmp/proxy;\n\
                 \x20   fastcgi_temp_path {p}/tmp/fastcgi;\n\
                 \x20   uwsgi_temp_path {p}/tmp/uwsgi;\n\
                 \x20   scgi_temp_path {p}/tmp/scgi;\n\
                 \x20   # Proxied to only under /app/, which only tests whose upstream\n\
                 \x20   # lists loopback backends request (the others list moto's\n\
                 \x20   # private-range addresses and must never send it traffic).\n\
                 \x20   include web_upstream.conf;\n\
                 \x20   server {{\n\
                 \x20       listen 127.0.0.1:{port};\n\
                 \x20       location / {{ return 200 \"ok\\n\"; }}\n\
                 \x20       location /app/ {{ proxy_pass http://{UPSTREAM_NAME}; }}\n\
                 \x20   }}\n\
                 }}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let nginx = Nginx { prefix, conf, upstream_file, port };
        let run = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("nginx")
                .arg("-p")
                .arg(&nginx.prefix)
                .arg("-e")
                .arg(nginx.prefix.join("logs/error.log"))
                .arg("-c")
                .arg(&nginx.conf)
                .args(args)
                .output()
                .map_err(|e| format!("cannot run nginx: {e}"))?;
            if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
        };
        run(&["-t", "-q"])?;
        run(&[])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while nginx.master_pid().is_none() {
            if Instant::now() > deadline {
                return Err("nginx wrote no pid file within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(nginx)
    }

    /// The master's pid, once nginx runs.
    pub fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.prefix.join("nginx.pid")).ok()?.trim().parse().ok()
    }

    /// The upstream include file as it is now.
    pub fn upstream_text(&self) -> String {
        std::fs::read_to_string(&self.upstream_file).unwrap_or_default()
    }

    /// Writes a wrapper around `nginx` into the prefix and returns its path,
    /// for `nginx_bin`: every `-s reload` logs the include file as it is
    /// being loaded (see [`reloads`]) and then, once the signal is sent,
    /// POSTs a marker request to moto at `moto_endpoint`, so that the
    /// reload shows up in moto's request recording in sequence with the
    /// EC2 calls. The marker is a harmless `DescribeRegions` whose
    /// `RegionName.1` is the reload's id.
    pub fn reload_logging_wrapper(&self, moto_endpoint: &str) -> PathBuf {
        let path = self.prefix.join("nginx-wrapper.sh");
        let script = format!(
            r#"#!/bin/bash
# Test wrapper: logs each reload with the upstream file, then tells moto.
case " $* " in
  *" -s reload "*)
    id="reload-$$-$(date +%s%N)"
    {{ echo "=== $id $(date +%s.%N)"; cat '{file}'; echo "=== end"; }} >>'{log}'
    nginx "$@"; rc=$?
    echo "reload $rc" >>'{checks}'
    curl -s -o /dev/null -X POST '{moto}/' \
      -H 'Content-Type: application/x-www-form-urlencoded' \
      -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0' \
      --data "Action=DescribeRegions&Version=2016-11-15&RegionName.1=$id"
    exit $rc ;;
  *" -t "*)
    nginx "$@"; rc=$?
    echo "test $rc" >>'{checks}'
    exit $rc ;;
esac
exec nginx "$@"
"#,
            file = self.upstream_file.display(),
            log = self.reload_log().display(),
            checks = self.checks_log().display(),
            moto = moto_endpoint,
        );
        std::fs::write(&path, script).expect("write the nginx wrapper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod the nginx wrapper");
        path
    }

    /// `test RC` / `reload RC` lines, one per `nginx -t` / `-s reload` the
    /// wrapper ran.
    pub fn checks_log(&self) -> PathBuf {
        self.prefix.join("checks.log")
    }

    /// The wrapper's log.
    pub fn reload_log(&self) -> PathBuf {
        self.prefix.join("reloads.log")
    }

    /// The reloads the wrapper logged so far, in order.
    pub fn reloads(&self) -> Vec<Reload> {
        reloads(&std::fs::read_to_string(self.reload_log()).unwrap_or_default())
    }

    /// Forgets the reloads logged so far.
    pub fn clear_reloads(&self) {
        let _ = std::fs::remove_file(self.reload_log());
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(pid) = self.master_pid() {
            let _ = Command::new("kill").arg("-QUIT").arg(pid.to_string()).output();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// One `nginx -s reload` as the wrapper logged it.
#[derive(Debug, Clone)]
pub struct Reload {
    /// The marker sent to moto after the signal.
    pub id: String,
    /// Seconds since the epoch when the wrapper started the reload.
    pub at: f64,
    /// The include file's text being loaded.
    pub text: String,
}

impl Reload {
    /// Whether the upstream routes to `host` (any port): it lists it, not
    /// marked `down` (how a drain takes a server out of rotation).
    pub fn lists(&self, host: &str) -> bool {
        self.text.lines().any(|l| {
            l.trim().strip_prefix("server ").is_some_and(|rest| {
                rest.starts_with(&format!("{host}:")) && !rest.trim_end_matches(';').split_whitespace().any(|w| w == "down")
            })
        })
    }
}

/// Parses the wrapper's log.
pub fn reloads(log: &str) -> Vec<Reload> {
    let mut out = Vec::new();
    let mut current: Option<Reload> = None;
    for line in log.lines() {
        if line == "=== end" {
            out.extend(current.take());
        } else if let Some(head) = line.strip_prefix("=== ") {
            let mut parts = head.split_whitespace();
            let id = parts.next().unwrap_or_default().to_string();
            let at = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0.0);
            current = Some(Reload { id, at, text: String::new() });
        } else if let Some(r) = current.as_mut() {
            r.text.push_str(line);
            r.text.push('\n');
        }
    }
    out
}

// ---------------------------------------------------------------------------
// PostgreSQL + PgBouncer

/// PostgreSQL and PgBouncer from `scripts/servers/pgbouncer.sh`, on free
/// loopback ports, for one test; stopped on drop (also on panic).
pub struct Pgbouncer {
    /// The script's exports: `PG_PORT`, `PGBOUNCER_PORT`, `PGBOUNCER_INI`,
    /// `PGBOUNCER_USERLIST`, `PGBOUNCER_RUN`, `PGBOUNCER_ADMIN_URL`,
    /// `PGBOUNCER_APP_URL`.
    pub env: BTreeMap<String, String>,
    run: PathBuf,
}

impl Pgbouncer {
    /// Starts both daemons for the test `name`, or `None` to skip.
    pub fn start(name: &str) -> Option<Pgbouncer> {
        required("PostgreSQL + PgBouncer", Pgbouncer::try_start(name))
    }

    fn try_start(name: &str) -> Result<Pgbouncer, String> {
        let run = unique_dir("pgb-e2e", name);
        let (pg, pgb) = (free_port()?, free_port()?);
        let out = Command::new("bash")
            .arg(repo().join("scripts/servers/pgbouncer.sh"))
            .arg("start")
            .env("HIMAPLAN_RUN", &run)
            .env("PG_PORT", pg.to_string())
            .env("PGBOUNCER_PORT", pgb.to_string())
            .output()
            .map_err(|e| format!("cannot run pgbouncer.sh: {e}"))?;
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .flat_map(|l| l.split_whitespace())
            .filter_map(|p| p.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect();
        let servers = Pgbouncer { env, run };
        if !out.status.success() {
            return Err(format!("pgbouncer.sh start failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(servers)
    }

    /// One of the script's exports.
    pub fn var(&self, name: &str) -> String {
        self.env.get(name).cloned().unwrap_or_else(|| panic!("pgbouncer.sh did not export {name}"))
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo().join("scripts/servers/pgbouncer.sh")).arg("stop").env("HIMAPLAN_RUN", &self.run).output();
        let _ = std::fs::remove_dir_all(&self.run);
    }
}
