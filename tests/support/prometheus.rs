//! A real Prometheus (Debian `prometheus` 2.42, installed by
//! `scripts/servers/prometheus.sh install`) per test, holding a history
//! the test wrote: [`History`] collects samples with known shapes, is
//! written as OpenMetrics text and loaded with the real
//! `promtool tsdb create-blocks-from openmetrics` into the test's own data
//! directory; then `prometheus` starts on 127.0.0.1 with a free port and
//! answers range queries over that past. Stopped (and its directory
//! removed) on drop. Without the packages the test skips, except under
//! `CI=true`, where it fails and says why.
//!
//! Declare it with `#[path = "support/prometheus.rs"] mod prometheus;`.

#![allow(dead_code, reason = "each test uses a different subset of the helpers")]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Samples by series (`name{labels}`, labels in the text's order), each
/// series' samples by time in milliseconds.
#[derive(Debug, Default, Clone)]
pub struct History {
    series: BTreeMap<(String, String), BTreeMap<i64, f64>>,
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    /// Sets one sample (a later call for the same instant replaces it).
    pub fn sample(&mut self, name: &str, labels: &str, t_ms: i64, value: f64) {
        self.series.entry((name.to_string(), labels.to_string())).or_default().insert(t_ms, value);
    }

    /// A gauge sampled at `start + k * step` for `k` in `ks`, wherever
    /// `value(k)` is `Some`.
    pub fn gauge(
        &mut self,
        name: &str,
        labels: &str,
        start_ms: i64,
        step_ms: i64,
        ks: std::ops::Range<i64>,
        value: impl Fn(i64) -> Option<f64>,
    ) {
        for k in ks {
            if let Some(v) = value(k) {
                self.sample(name, labels, start_ms + k * step_ms, v);
            }
        }
    }

    /// A counter sampled at `start + k * step` for `k` in `ks`, growing by
    /// `rate(k) * step` from sample `k - 1` to sample `k` (so `rate(k)` is
    /// the per-second rate over the interval ending at sample `k`). It
    /// continues from the series' last sample before `start`, if any.
    pub fn counter(&mut self, name: &str, labels: &str, start_ms: i64, step_ms: i64, ks: std::ops::Range<i64>, rate: impl Fn(i64) -> f64) {
        let key = (name.to_string(), labels.to_string());
        let first = start_ms + ks.start * step_ms;
        let previous = self.series.get(&key).and_then(|s| s.range(..first).next_back().map(|(_, v)| *v));
        let mut started = previous.is_some();
        let mut total = previous.unwrap_or(0.0);
        for k in ks {
            if started {
                total += rate(k) * step_ms as f64 / 1000.0;
            }
            started = true;
            self.sample(name, labels, start_ms + k * step_ms, total);
        }
    }

    /// The history as OpenMetrics text: one `unknown`-typed family per
    /// metric name, series in order, samples in time order, `# EOF`.
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        let mut last_name = None;
        for ((name, labels), samples) in &self.series {
            if last_name != Some(name) {
                let _ = writeln!(out, "# TYPE {name} unknown");
                last_name = Some(name);
            }
            for (t, v) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {v} {}.{:03}", t.div_euclid(1000), t.rem_euclid(1000));
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// A Prometheus serving one history, for one test.
pub struct Prometheus {
    pub url: String,
    dir: PathBuf,
    child: Child,
}

impl Prometheus {
    /// Loads `history` and starts Prometheus for the test `name`, or
    /// `None` to skip.
    pub fn start(name: &str, history: &History) -> Option<Prometheus> {
        match Prometheus::try_start(name, history) {
            Ok(p) => Some(p),
            Err(why) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("Prometheus is required under CI=true and could not be started: {why}")
            }
            Err(why) => {
                eprintln!("skipping: Prometheus is not available ({why})");
                None
            }
        }
    }

    fn try_start(name: &str, history: &History) -> Result<Prometheus, String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/servers/prometheus.sh");
        let out = Command::new("bash").arg(&script).arg("install").output().map_err(|e| format!("cannot run prometheus.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!("prometheus.sh install failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let dir = std::env::temp_dir().join(format!("himaplan-test-prometheus-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let input = dir.join("history.om");
        std::fs::write(&input, history.openmetrics()).map_err(|e| e.to_string())?;
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(&input)
            .arg(&data)
            .output()
            .map_err(|e| format!("cannot run promtool: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "promtool create-blocks-from failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let config = dir.join("prometheus.yml");
        // No scrape jobs: the history is all there is.
        std::fs::write(&config, "global:\n  scrape_interval: 15s\n").map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let log = std::fs::File::create(dir.join("prometheus.log")).map_err(|e| e.to_string())?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start prometheus: {e}"))?;
        let url = format!("http://127.0.0.1:{port}");
        let server = Prometheus { url, dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ureq::get(&format!("{}/-/ready", server.url)).call().is_ok_and(|r| r.status() == 200) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(server.dir.join("prometheus.log")).unwrap_or_default();
                return Err(format!("prometheus was not ready within 60 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
