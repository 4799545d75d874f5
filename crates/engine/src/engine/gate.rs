//! Health gates (SPEC §6): `rollout { health_check { http | tcp | command,
//! interval, attempt_timeout, timeout, healthy_threshold } }`, resolved by
//! plan for each disrupted member (`target` is the member's value), and
//! waited on by apply after the member's disruption and before the batch
//! is restored or the next batch starts.
//!
//! `http` (GET, 2xx/3xx healthy) and `tcp` (a connection) are probed from
//! here; `command` runs inside the target through its provider
//! ([`Provider::probe`](crate::provider::Provider::probe)). Several checks
//! in one block must all pass. The probes are the engine's only network
//! I/O besides providers, and go only where the configuration says.

use super::world::{Expansion, World};
use crate::addr::InstanceAddr;
use crate::config::Resource;
use crate::diag::{Diag, Diags, Location};
use crate::provider::{AttrSchema, AttrType, Provider, Schema};
use crate::value::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One check of a gate.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// GET this `http://` URL; a 2xx or 3xx answer is healthy.
    Http(String),
    /// Connect to this `host:port`.
    Tcp(String),
    /// Run this command inside the target (exit 0 is healthy).
    Command(Vec<String>),
}

/// A member's gate, as plan resolved it.
#[derive(Debug, Clone)]
pub struct Gate {
    pub member: InstanceAddr,
    /// For a piece of the member (a container): which one; probes then run
    /// against that piece.
    pub part: Option<crate::provider::Member>,
    pub probes: Vec<Probe>,
    pub interval: Duration,
    pub attempt_timeout: Duration,
    /// The whole wait; past it the member is unhealthy.
    pub timeout: Duration,
    /// Consecutive healthy rounds needed.
    pub healthy_threshold: u32,
    pub location: Location,
}

impl Gate {
    /// What the gate checks, as the plan and progress lines name it: the
    /// piece (a container's name), else the member.
    pub fn target_name(&self) -> String {
        self.part.as_ref().map(|p| p.name.clone()).unwrap_or_else(|| self.member.to_string())
    }
}

/// Upper bounds, so that a typo cannot make apply wait for days.
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
const MAX_THRESHOLD: f64 = 1000.0;
/// How often a wait reports while the member is not yet healthy.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How much of an HTTP answer is read (the status line is enough).
const MAX_ANSWER: usize = 16 * 1024;

fn schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("http", AttrType::String),
            AttrSchema::new("tcp", AttrType::String),
            AttrSchema::new("command", AttrType::List(Box::new(AttrType::String))),
            AttrSchema::new("interval", AttrType::String).default("2s"),
            AttrSchema::new("attempt_timeout", AttrType::String).default("5s"),
            AttrSchema::new("timeout", AttrType::String).default("60s"),
            AttrSchema::new("healthy_threshold", AttrType::Number).default(1),
        ],
        blocks: vec![],
    }
}

/// What a check whose values are known only after apply means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknowns {
    /// An error: a disrupted member's check must be known when planning.
    Refuse,
    /// No gate: a created member's address may be the cloud's to assign.
    Skip,
}

/// The gate of one member of `resource`, `None` without a `health_check`.
pub fn resolve(
    world: &World,
    resource: &Resource,
    expansion: &Expansion,
    member: &InstanceAddr,
    target: Value,
    unknowns: Unknowns,
) -> Result<Option<Gate>, Diags> {
    let Some(hc) = &resource.health_check else { return Ok(None) };
    let value = world.eval_block(resource, expansion, &hc.body, &schema(), &[], &hc.location, &[("target", target)])?;
    let bad = |what: String| -> Diags { Diag::error(format!("Invalid health_check of {member}: {what}")).at(hc.location.clone()).into() };
    if value.has_unknown() && unknowns == Unknowns::Skip {
        return Ok(None);
    }
    if value.has_unknown() {
        return Err(bad("its values must be known when planning (use values of variables, tags or count.index)".into()));
    }
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let mut probes = Vec::new();
    if let Some(url) = text("http") {
        if !url.starts_with("http://") || url_parts(&url).is_none() {
            return Err(bad(format!("http must be an http://HOST:PORT/PATH URL, not {url:?}")));
        }
        probes.push(Probe::Http(url));
    }
    if let Some(addr) = text("tcp") {
        if !addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) {
            return Err(bad(format!("tcp must be HOST:PORT, not {addr:?}")));
        }
        probes.push(Probe::Tcp(addr));
    }
    if let Some(items) = value.get("command").and_then(Value::as_list) {
        let argv: Vec<String> = items.iter().filter_map(Value::as_str).map(str::to_string).collect();
        if argv.is_empty() {
            return Err(bad("command must name a program".into()));
        }
        probes.push(Probe::Command(argv));
    }
    if probes.is_empty() {
        return Err(bad("give at least one of http, tcp or command".into()));
    }
    let duration = |name: &str| -> Result<Duration, Diags> {
        let t = text(name).unwrap_or_default();
        parse_duration(&t)
            .filter(|d| *d <= MAX_WAIT && !d.is_zero())
            .ok_or_else(|| bad(format!("{name} must be a duration like \"2s\", \"500ms\" or \"1m\" (at most 24h), not {t:?}")))
    };
    let threshold = value.get("healthy_threshold").and_then(Value::as_f64).unwrap_or(1.0);
    if !(1.0..=MAX_THRESHOLD).contains(&threshold) || threshold.fract() != 0.0 {
        return Err(bad(format!("healthy_threshold must be a whole number from 1 to {MAX_THRESHOLD}")));
    }
    Ok(Some(Gate {
        member: member.clone(),
        part: None,
        probes,
        interval: duration("interval")?,
        attempt_timeout: duration("attempt_timeout")?,
        timeout: duration("timeout")?,
        healthy_threshold: threshold as u32,
        location: hc.location.clone(),
    }))
}

/// `"500ms"`, `"2s"`, `"1m"`, `"1h"`, or combinations like `"1m30s"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().ok().filter(|n| *n <= 1_000_000_000)?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit..];
    }
    Some(total)
}

/// The gates of one batch of pieces: one per piece, `target` bound to the
/// piece as state holds it (a container's `name`, `number`, `id`).
pub fn resolve_parts(
    world: &World,
    resource: &Resource,
    expansion: &Expansion,
    member: &InstanceAddr,
    prior: &Value,
    parts: &[crate::provider::Member],
) -> Result<Vec<Gate>, Diags> {
    let mut gates = Vec::new();
    for p in parts {
        let piece = prior.get(&p.attribute).and_then(Value::as_list).and_then(|l| l.get(p.index)).cloned().unwrap_or(Value::Null);
        if let Some(mut gate) = resolve(world, resource, expansion, member, piece, Unknowns::Refuse)? {
            gate.part = Some(p.clone());
            gates.push(gate);
        }
    }
    Ok(gates)
}

/// A reviewer's line: "wait until http://127.0.0.1:8001/health/ answers
/// 2xx twice, at most 60s".
pub fn describe(gate: &Gate) -> String {
    let times = match gate.healthy_threshold {
        1 => String::new(),
        2 => " twice".to_string(),
        n => format!(" {n} times in a row"),
    };
    let checks: Vec<String> = gate
        .probes
        .iter()
        .map(|p| match p {
            Probe::Http(url) => format!("{url} answers 2xx/3xx"),
            Probe::Tcp(addr) => format!("{addr} accepts a connection"),
            Probe::Command(argv) => format!("`{}` exits 0 inside it", argv.join(" ")),
        })
        .collect();
    format!("wait until {}{times}, at most {}s", checks.join(" and "), gate.timeout.as_secs())
}

/// `(host:port, path)` of an `http://` URL.
fn url_parts(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let hostport = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
    (!hostport.starts_with(':')).then(|| (hostport, path.to_string()))
}

/// One HTTP probe: `Ok` with the status on 2xx/3xx, else what went wrong.
pub async fn probe_http(url: &str, timeout: Duration) -> Result<String, String> {
    let (hostport, path) = url_parts(url).ok_or_else(|| format!("{url} is not an http:// URL"))?;
    let attempt = async {
        let mut stream = TcpStream::connect(&hostport).await.map_err(|e| format!("connect {hostport}: {e}"))?;
        let host = hostport.split(':').next().unwrap_or_default();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: himaplan\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 2048];
        while answer.len() < MAX_ANSWER && !answer.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_string();
        match line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok()) {
            Some(code) if (200..400).contains(&code) => Ok(format!("HTTP {code}")),
            Some(code) => Err(format!("HTTP {code}")),
            None => Err(format!("not an HTTP answer: {line:?}")),
        }
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| Err(format!("no answer within {}s", timeout.as_secs_f64())))
}

/// One TCP probe.
pub async fn probe_tcp(addr: &str, timeout: Duration) -> Result<String, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok("connected".into()),
        Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
        Err(_) => Err(format!("no connection within {}s", timeout.as_secs_f64())),
    }
}

/// Probes until the gate passes (`healthy_threshold` healthy rounds in a
/// row) or its timeout; `Ok` and `Err` both say how it went, the error
/// with the last result of each check.
pub async fn wait(
    gate: &Gate,
    provider: &dyn Provider,
    rtype: &str,
    value: &Value,
    progress: &(dyn Fn(String) + Send + Sync),
) -> Result<String, String> {
    let started = Instant::now();
    let (mut streak, mut rounds) = (0, 0u32);
    let mut reported = Duration::ZERO;
    loop {
        rounds += 1;
        let mut healthy = true;
        let mut results = Vec::new();
        for probe in &gate.probes {
            let result = match probe {
                Probe::Http(url) => probe_http(url, gate.attempt_timeout).await,
                Probe::Tcp(addr) => probe_tcp(addr, gate.attempt_timeout).await,
                Probe::Command(argv) => tokio::time::timeout(gate.attempt_timeout, provider.probe(rtype, value, argv))
                    .await
                    .unwrap_or_else(|_| Err(format!("no exit within {}s", gate.attempt_timeout.as_secs_f64()))),
            };
            healthy &= result.is_ok();
            results.push(result.unwrap_or_else(|e| e));
        }
        let last = results.join("; ");
        streak = if healthy { streak + 1 } else { 0 };
        let took = started.elapsed();
        if streak >= gate.healthy_threshold {
            return Ok(format!("healthy after {rounds} probe round(s) in {:.1}s: {last}", took.as_secs_f64()));
        }
        // While waiting: a line at the first unhealthy round, then every
        // few seconds, so a terminal and a CI log both show the wait.
        if !healthy && (rounds == 1 || took >= reported + PROGRESS_EVERY) {
            reported = took;
            let what = gate.target_name();
            progress(format!(
                "{what}: waiting for health ({rounds} probe round(s), {:.0}s of {}s): {last}",
                took.as_secs_f64(),
                gate.timeout.as_secs()
            ));
        }
        if took + gate.interval > gate.timeout {
            return Err(format!(
                "{} is not healthy after {rounds} probe round(s) in {:.1}s ({}); last result: {last}",
                gate.member,
                took.as_secs_f64(),
                describe(gate)
            ));
        }
        tokio::time::sleep(gate.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_written_and_refuse_the_rest() {
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        for bad in ["", "2", "s", "2x", "-1s", "99999999999999999999s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn urls_split_into_address_and_path() {
        assert_eq!(url_parts("http://127.0.0.1:8001/health/"), Some(("127.0.0.1:8001".into(), "/health/".into())));
        assert_eq!(url_parts("http://localhost"), Some(("localhost:80".into(), "/".into())));
        assert_eq!(url_parts("http://:80/"), None);
    }
}
