//! The real dockerd of the end-to-end Docker tests, and what they ask it
//! directly: the containers of one compose service, the event stream (with
//! nanosecond times), a running-count poller, and the real Docker Compose v2
//! CLI (`scripts/servers/compose.sh`) with compose files that never make a
//! bridge network.
//!
//! Declare it with `#[path = "support/docker.rs"] mod docker;`. The daemon
//! is started once per test binary by `scripts/servers/dockerd.sh start`
//! (`--bridge=none --iptables=false`, installing docker.io when missing)
//! and the image `himaplan/busybox:1` built by `dockerd.sh image`; it is
//! left running for the next binary (`dockerd.sh stop` ends it). Without it
//! the tests skip, except under `CI=true`, where they fail and say why.
//! Containers use network_mode "none": nothing here sends traffic anywhere.
//!
//! Also here: an `nginx_bin` wrapper that records the upstream include file
//! at every `nginx -s reload`, with the wall-clock time before and after
//! the signal, to compare with Docker's event times (same host clock).

#![allow(dead_code, reason = "each test uses a different subset of the helpers")]

use bollard::Docker;
use bollard::query_parameters::{EventsOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The image `dockerd.sh image` builds from Debian's busybox-static.
pub const IMAGE: &str = "himaplan/busybox:1";

static DAEMON: OnceLock<Result<String, String>> = OnceLock::new();

fn dockerd_sh(arg: &str) -> Result<String, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/servers/dockerd.sh");
    let out = Command::new("bash").arg(&script).arg(arg).output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("dockerd.sh {arg} failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn start_daemon() -> Result<String, String> {
    let out = dockerd_sh("start")?;
    let host = out
        .lines()
        .find_map(|l| l.strip_prefix("export DOCKER_HOST="))
        .map(str::to_string)
        .ok_or_else(|| format!("dockerd.sh start printed no DOCKER_HOST: {out}"))?;
    dockerd_sh("image")?;
    Ok(host)
}

/// The daemon's address (`unix://...`), or `None` when the test should be
/// skipped; panics under `CI=true` when the daemon cannot be started.
pub fn daemon() -> Option<&'static str> {
    match DAEMON.get_or_init(start_daemon) {
        Ok(host) => Some(host),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("dockerd is required under CI=true and could not be started: {why}")
        }
        Err(why) => {
            eprintln!("skipping: dockerd is not available ({why})");
            None
        }
    }
}

/// A bollard client of the test daemon.
pub fn client(host: &str) -> Docker {
    Docker::connect_with_host(host).expect("bollard client")
}

/// A compose project name unique to this process and call (compose's rule:
/// lowercase letters, digits, '-').
pub fn project(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("cli{}{}-{tag}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// One container of a service as the daemon reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub number: i64,
    pub name: String,
    pub id: String,
    pub running: bool,
    pub started_at: String,
    pub cmd: Vec<String>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub labels: HashMap<String, String>,
}

fn label_filter(project: &str, service: &str) -> HashMap<&'static str, Vec<String>> {
    HashMap::from([("label", vec![format!("com.docker.compose.project={project}"), format!("com.docker.compose.service={service}")])])
}

/// Every container (running or not) of `project`/`service`, inspected,
/// sorted by number.
pub async fn containers(docker: &Docker, project: &str, service: &str) -> Vec<Container> {
    let filters = label_filter(project, service);
    let list = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build()))
        .await
        .expect("list containers");
    let mut out = Vec::new();
    for c in list {
        let Some(id) = c.id else { continue };
        let Ok(i) = docker.inspect_container(&id, None).await else { continue };
        let config = i.config.unwrap_or_default();
        let host = i.host_config.unwrap_or_default();
        let state = i.state.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        out.push(Container {
            number: labels.get("com.docker.compose.container-number").and_then(|n| n.parse().ok()).unwrap_or(-1),
            name: i.name.unwrap_or_default().trim_start_matches('/').to_string(),
            id,
            running: state.running.unwrap_or(false),
            started_at: state.started_at.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            nano_cpus: host.nano_cpus.filter(|n| *n > 0),
            memory: host.memory.filter(|n| *n > 0),
            labels,
        });
    }
    out.sort_by_key(|c| c.number);
    out
}

/// Running containers of `project`/`service` (one list call).
pub async fn running(docker: &Docker, project: &str, service: &str) -> usize {
    let filters = label_filter(project, service);
    docker.list_containers(Some(ListContainersOptionsBuilder::new().filters(&filters).build())).await.map(|l| l.len()).unwrap_or(0)
}

/// Removes every container of the project (test cleanup).
pub async fn cleanup(docker: &Docker, project: &str) {
    let filters = HashMap::from([("label", vec![format!("com.docker.compose.project={project}")])]);
    let list =
        docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filters).build())).await.unwrap_or_default();
    for c in list {
        if let Some(id) = c.id {
            let _ = docker.remove_container(&id, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
        }
    }
}

// ---------------------------------------------------------------------------
// The real Docker Compose v2 CLI

static COMPOSE: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn find_compose() -> Result<PathBuf, String> {
    if let Some(b) = std::env::var_os("HIMAPLAN_DOCKER_COMPOSE").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(b));
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/servers/compose.sh");
    // `install` finds the cached binary in milliseconds; builds it otherwise.
    let out = Command::new("bash").arg(&script).arg("install").output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("compose.sh install failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let out = Command::new("bash").arg(&script).arg("path").output().map_err(|e| e.to_string())?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The Compose v2 binary (`HIMAPLAN_DOCKER_COMPOSE`, else the one
/// `scripts/servers/compose.sh` caches), or `None` when the test should be
/// skipped; panics under `CI=true` when it cannot be had.
pub fn compose_bin() -> Option<&'static Path> {
    match COMPOSE.get_or_init(find_compose) {
        Ok(p) => Some(p.as_path()),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Docker Compose v2 is required under CI=true and could not be found or built: {why}")
        }
        Err(why) => {
            eprintln!("skipping: Docker Compose v2 is not available ({why})");
            None
        }
    }
}

/// A compose file with one service `web` running `sleep 3600` on
/// `network_mode: none` (never a bridge), QUEUE=default, `extra` lines
/// appended to the service (indented four spaces).
pub fn compose_file(extra: &str) -> String {
    format!(
        "services:\n  web:\n    image: {IMAGE}\n    pull_policy: never\n    network_mode: none\n    command: [\"sleep\", \"3600\"]\n    environment:\n      QUEUE: default\n{extra}"
    )
}

/// Runs `docker-compose -p PROJECT ARGS` in `dir` against the test daemon;
/// panics with compose's output when it fails.
pub fn compose(bin: &Path, host: &str, dir: &Path, project: &str, args: &[&str]) -> String {
    let out =
        Command::new(bin).arg("-p").arg(project).args(args).current_dir(dir).env("DOCKER_HOST", host).output().expect("run docker-compose");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "docker-compose -p {project} {args:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker compose ps` as (name, service) pairs, sorted by name.
pub fn compose_ps(bin: &Path, host: &str, dir: &Path, project: &str) -> Vec<String> {
    let out = compose(bin, host, dir, project, &["ps", "--all", "--format", "{{.Name}}"]);
    let mut names: Vec<String> = out.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    names.sort();
    names
}

/// The daemon's networks (`docker network ls`), by name: tests assert no
/// bridge on a private range was created.
pub async fn networks(docker: &Docker) -> Vec<String> {
    let mut names: Vec<String> = docker
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await
        .expect("list networks")
        .into_iter()
        .filter_map(|n| n.name)
        .collect();
    names.sort();
    names
}

/// One container event: seconds since the epoch (nanosecond precision),
/// the action (`create`, `start`, `kill`, `die`, `stop`, `destroy`, ...),
/// the container's name and id.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: f64,
    pub action: String,
    pub name: String,
    pub id: String,
    /// `die`: the exit code; `kill`: the signal number; else empty.
    pub detail: String,
}

/// The container events of `project` between `since` and `until` (Unix
/// seconds), in the daemon's order.
pub async fn events(docker: &Docker, project: &str, since: i64, until: i64) -> Vec<Event> {
    let filters =
        HashMap::from([("type", vec!["container".to_string()]), ("label", vec![format!("com.docker.compose.project={project}")])]);
    let (since, until) = (since.to_string(), until.to_string());
    docker
        .events(Some(EventsOptionsBuilder::new().since(&since).until(&until).filters(&filters).build()))
        .filter_map(|e| async move {
            let e = e.ok()?;
            let actor = e.actor?;
            Some(Event {
                at: e.time_nano? as f64 / 1e9,
                // "exec_start: sh" style actions keep only their verb.
                action: e.action?.split(':').next().unwrap_or_default().to_string(),
                name: actor.attributes.as_ref().and_then(|a| a.get("name")).cloned().unwrap_or_default(),
                detail: actor.attributes.as_ref().and_then(|a| a.get("exitCode").or_else(|| a.get("signal"))).cloned().unwrap_or_default(),
                id: actor.id.unwrap_or_default(),
            })
        })
        .collect()
        .await
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The largest number of containers unavailable at once, from the events of
/// a rollout: container N is unavailable from the first `kill`/`stop`/`die`
/// of its old id until the `start` of its new id (same name).
pub fn max_down_at_once(events: &[Event], old_ids: &[String]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for old in old_ids {
        let Some(down) = events.iter().find(|e| &e.id == old && matches!(e.action.as_str(), "kill" | "stop" | "die")) else { continue };
        let up = events.iter().find(|e| e.name == down.name && e.id != *old && e.action == "start" && e.at >= down.at);
        edges.push((down.at, 1));
        // Never started again: down until the end of the window.
        edges.push((up.map_or(f64::MAX, |e| e.at), -1));
    }
    // At equal times count the start (-1) first: a container back up at the
    // very instant another goes down was never down together with it.
    edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// Polls the running count of `project`/`service` every 50 ms until
/// stopped; `stop()` returns the fewest seen.
pub struct RunningPoller {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<usize>,
}

impl RunningPoller {
    pub fn start(docker: &Docker, project: &str, service: &str) -> RunningPoller {
        let stop = Arc::new(AtomicBool::new(false));
        let (docker, project, service, flag) = (docker.clone(), project.to_string(), service.to_string(), stop.clone());
        let handle = tokio::spawn(async move {
            let mut fewest = usize::MAX;
            while !flag.load(Ordering::Relaxed) {
                fewest = fewest.min(running(&docker, &project, &service).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            fewest
        });
        RunningPoller { stop, handle }
    }

    pub async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.expect("poller")
    }
}

// ---------------------------------------------------------------------------
// nginx reloads

/// Writes `DIR/nginx-reload-recorder.sh`, a wrapper around `nginx` for
/// `nginx_bin`: every `-s reload` appends to `DIR/reloads.log` the include
/// file `upstream_file` as it is being loaded, between the time before the
/// signal and the time after it was sent. Every other call runs nginx as is.
pub fn reload_recorder(dir: &Path, upstream_file: &Path) -> PathBuf {
    let path = dir.join("nginx-reload-recorder.sh");
    let script = format!(
        r#"#!/bin/bash
# Test wrapper: records each reload with the upstream file it loads.
case " $* " in
  *" -s reload "*)
    before="$(date +%s.%N)"
    text="$(cat '{file}')"
    nginx "$@"; rc=$?
    {{ echo "=== $before $(date +%s.%N) $rc"; echo "$text"; echo "=== end"; }} >>'{log}'
    exit $rc ;;
esac
exec nginx "$@"
"#,
        file = upstream_file.display(),
        log = dir.join("reloads.log").display(),
    );
    std::fs::write(&path, script).expect("write the nginx wrapper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod the nginx wrapper");
    path
}

/// One reload the recorder logged.
#[derive(Debug, Clone)]
pub struct Reload {
    /// Seconds since the epoch just before the signal.
    pub before: f64,
    /// Seconds since the epoch once `nginx -s reload` returned.
    pub after: f64,
    pub exit: i32,
    /// The include file being loaded.
    pub text: String,
}

impl Reload {
    /// Whether the loaded upstream routes to `address` (`host:port`): it
    /// lists it, not marked `down` (how a drain takes it out of rotation).
    pub fn lists(&self, address: &str) -> bool {
        self.text.lines().any(|l| {
            l.trim().strip_prefix("server ").is_some_and(|rest| {
                (rest.starts_with(&format!("{address} ")) || rest.starts_with(&format!("{address};")))
                    && !rest.trim_end_matches(';').split_whitespace().any(|w| w == "down")
            })
        })
    }
}

/// The reloads logged in `DIR/reloads.log`, in order.
pub fn reloads(dir: &Path) -> Vec<Reload> {
    let log = std::fs::read_to_string(dir.join("reloads.log")).unwrap_or_default();
    let mut out = Vec::new();
    let mut current: Option<Reload> = None;
    for line in log.lines() {
        if line == "=== end" {
            out.extend(current.take());
        } else if let Some(head) = line.strip_prefix("=== ") {
            let f: Vec<&str> = head.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
            current = Some(Reload { before: num(0), after: num(1), exit: num(2) as i32, text: String::new() });
        } else if let Some(r) = current.as_mut() {
            r.text.push_str(line);
            r.text.push('\n');
        }
    }
    out
}

/// Forgets the reloads logged so far.
pub fn clear_reloads(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("reloads.log"));
}

/// Removes one container behind himaplan's back.
pub async fn cleanup_one(docker: &Docker, id: &str) {
    docker.remove_container(id, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await.expect("remove container");
}

// ---------------------------------------------------------------------------
// A counting proxy in front of dockerd

/// A Unix socket of its own in front of dockerd's: bytes pass through
/// unchanged both ways, and every request line is counted as `METHOD
/// path` with the API version dropped and container and image names folded
/// to `{id}`; `(connections)` counts the connections. Stops when dropped.
pub struct DockerCounter {
    pub host: String,
    counts: Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
    _runtime: tokio::runtime::Runtime,
    socket: PathBuf,
}

impl DockerCounter {
    pub fn start(daemon_host: &str) -> DockerCounter {
        let upstream = PathBuf::from(daemon_host.strip_prefix("unix://").expect("dockerd on a unix socket"));
        let socket = std::env::temp_dir().join(format!("counted-{}-{}.sock", std::process::id(), COUNTERS.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_file(&socket);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let listener = runtime.block_on(async { tokio::net::UnixListener::bind(&socket) }).expect("bind the counting socket");
        let counts = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let shared = counts.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counts) = (upstream.clone(), shared.clone());
                *counts.lock().expect("counts").entry("(connections)".to_string()).or_default() += 1;
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::UnixStream::connect(&upstream).await else { return };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let answers = tokio::spawn(async move { tokio::io::copy(&mut server_read, &mut client_write).await });
                    let _ = forward_counting(&mut client_read, &mut server_write, &counts).await;
                    let _ = answers.await;
                });
            }
        });
        DockerCounter { host: format!("unix://{}", socket.display()), counts, _runtime: runtime, socket }
    }

    /// The counts since the last take.
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.counts.lock().expect("counts"))
    }
}

impl Drop for DockerCounter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Copies the client's bytes to dockerd, counting the request lines in them.
async fn forward_counting(
    from: &mut tokio::net::unix::OwnedReadHalf,
    to: &mut tokio::net::unix::OwnedWriteHalf,
    counts: &std::sync::Mutex<BTreeMap<String, usize>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    // The current line so far (bounded: request lines are short, and a
    // body's long line only needs its tail).
    let mut line: Vec<u8> = Vec::new();
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                if let Some(key) = request_key(&line) {
                    *counts.lock().expect("counts").entry(key).or_default() += 1;
                }
                line.clear();
            } else {
                if line.len() >= 4096 {
                    line.drain(..2048);
                }
                line.push(b);
            }
        }
        to.write_all(&buf[..n]).await?;
    }
}

/// Counting proxies started by this process (each has its own socket).
static COUNTERS: AtomicUsize = AtomicUsize::new(0);

/// `GET containers/{id}/json` for `GET /v1.47/containers/3f…/json HTTP/1.1`;
/// the request may follow a body on the same line (bodies end without a
/// newline).
pub fn request_key(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?.strip_suffix('\r')?;
    let text = text.strip_suffix(" HTTP/1.1").or_else(|| text.strip_suffix(" HTTP/1.0"))?;
    let (start, method) = ["GET /", "POST /", "DELETE /", "PUT /", "HEAD /"]
        .iter()
        .filter_map(|m| text.rfind(m).map(|at| (at, m.split(' ').next().unwrap_or_default())))
        .max()?;
    let path = text[start + method.len() + 1..].split('?').next().unwrap_or_default();
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segs.first().is_some_and(|s| s.starts_with('v') && s[1..].contains('.')) {
        segs.remove(0);
    }
    let folded = match segs.as_slice() {
        [kind @ ("containers" | "images"), rest @ ..] if rest.len() >= 2 => format!("{kind}/{{id}}/{}", rest[rest.len() - 1]),
        ["containers", one] if !matches!(*one, "json" | "create" | "prune") => "containers/{id}".to_string(),
        _ => segs.join("/"),
    };
    Some(format!("{method} {folded}"))
}
