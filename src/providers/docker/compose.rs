//! The Docker Compose v2 CLI, run at plan time for a `docker_service` that
//! names its `compose_file`: compose's own hash of the service
//! (`config --hash`) and its normalised configuration (`config --format
//! json`), compared with the declaration.
//!
//! Owns finding the binary (`provider "docker" { compose_bin }`, else
//! `HIMAPLAN_DOCKER_COMPOSE`, else `docker-compose` on PATH), refusing
//! Compose v1, and the pure comparison of compose's JSON with a declared
//! configuration. Must not be called by apply: the plan records what it
//! found (`compose_hash`), so applying never runs compose. `config` reads
//! only the compose file and the environment; it never contacts the daemon.

use super::schema::{self, COMPOSE_HASHED_ATTRS};
use himaplan_engine::value::Value;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Fields of a compose service that a `docker_service` reproduces, or that
/// do not change what its containers run. Any other field makes the
/// service one himaplan cannot create as compose would.
const UNDERSTOOD: &[&str] = &[
    "image",
    "command",
    "entrypoint",
    "environment",
    "labels",
    "network_mode",
    "cpus",
    "mem_limit",
    "mem_reservation",
    "cpu_shares",
    "restart",
    "stop_grace_period",
    "pull_policy",
    "scale",
    "deploy",
    "depends_on",
    "profiles",
    "build",
];

/// What compose says about one service of a compose file.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeService {
    /// `docker compose config --hash SERVICE`.
    pub hash: String,
    /// The service's entry of `docker compose config --format json`.
    pub config: Json,
}

/// The compose binary: configured, else `HIMAPLAN_DOCKER_COMPOSE`, else
/// `docker-compose` on PATH.
pub fn binary(configured: Option<&str>) -> PathBuf {
    configured
        .filter(|b| !b.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HIMAPLAN_DOCKER_COMPOSE").filter(|b| !b.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("docker-compose"))
}

fn run(bin: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin).args(args).output().map_err(|e| {
        format!(
            "cannot run Docker Compose {}: {e}; install Compose v2 (scripts/servers/compose.sh install) and set HIMAPLAN_DOCKER_COMPOSE or provider \"docker\" {{ compose_bin }}",
            bin.display()
        )
    })?;
    if !out.status.success() {
        return Err(format!("`{} {}` failed: {}", bin.display(), args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The major version of a `version --short` answer ("2.40.3", "v2.40.3",
/// "1.29.2").
pub fn major_version(short: &str) -> Option<u32> {
    short.trim().trim_start_matches('v').split('.').next()?.parse().ok()
}

/// Refuses anything but Compose v2 or later (Debian's `docker-compose` is
/// v1: other names, no `config --hash`).
pub fn check_version(bin: &Path) -> Result<String, String> {
    let short = run(bin, &["version", "--short"])?;
    match major_version(&short) {
        Some(m) if m >= 2 => Ok(short.trim().to_string()),
        _ => Err(format!(
            "{} is Docker Compose {} — himaplan needs Compose v2 (v1 names containers project_service_1 and has no `config --hash`); set HIMAPLAN_DOCKER_COMPOSE to a v2 binary",
            bin.display(),
            short.trim()
        )),
    }
}

/// Runs compose on `file` for `project`/`service`.
pub fn load(bin: &Path, file: &Path, project: &str, service: &str) -> Result<ComposeService, String> {
    check_version(bin)?;
    let f = file.to_string_lossy();
    let base = ["-p", project, "-f", f.as_ref(), "config"];
    let json_text = run(bin, &[&base[..], &["--format", "json"]].concat())?;
    let all: Json = serde_json::from_str(&json_text).map_err(|e| format!("compose printed no JSON configuration: {e}"))?;
    let config = all
        .get("services")
        .and_then(|s| s.get(service))
        .cloned()
        .ok_or_else(|| format!("{} defines no service {service:?}", file.display()))?;
    // The normalised JSON merges env_file into environment and drops it;
    // only the unresolved form still says the service uses one.
    let raw_text = run(bin, &[&base[..], &["--no-env-resolution", "--no-interpolate", "--format", "json"]].concat())?;
    let raw: Json = serde_json::from_str(&raw_text).map_err(|e| format!("compose printed no JSON configuration: {e}"))?;
    let mut config = config;
    if let (Some(env_file), Some(obj)) =
        (raw.get("services").and_then(|s| s.get(service)).and_then(|s| s.get("env_file")), config.as_object_mut())
    {
        obj.insert("env_file".into(), env_file.clone());
    }
    let hash_text = run(bin, &[&base[..], &["--hash", service]].concat())?;
    let hash = hash_text
        .lines()
        .find_map(|l| l.split_once(' ').filter(|(s, _)| *s == service).map(|(_, h)| h.trim().to_string()))
        .ok_or_else(|| format!("compose printed no hash for {service:?}: {hash_text:?}"))?;
    Ok(ComposeService { hash, config })
}

/// A problem that makes himaplan refuse the compose file outright.
/// Compose v2.40.3's `config --hash` ignores `env_file` (docker/compose
/// #14001), so a hash of such a service would not describe its containers.
pub fn refusal(config: &Json) -> Option<String> {
    config.get("env_file").filter(|e| !e.is_null()).map(|_| {
        "the compose service sets env_file, which Compose v2.40.3's config --hash ignores (docker/compose#14001): declare the variables in the compose file's environment and in env instead".to_string()
    })
}

fn json_strings(v: Option<&Json>) -> Option<Vec<String>> {
    v?.as_array()?.iter().map(|x| x.as_str().map(str::to_string)).collect()
}

fn json_map(v: Option<&Json>) -> Option<std::collections::BTreeMap<String, String>> {
    v.and_then(Json::as_object).map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_default())).collect())
}

fn bytes(v: Option<&Json>) -> Option<i64> {
    match v? {
        Json::String(s) => s.parse().ok().or_else(|| schema::parse_memory(s).ok()),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The declared attributes (of a `docker_service` configuration) that
/// disagree with compose's view of the service, each with both values; also
/// the compose fields himaplan does not reproduce.
pub fn disagreements(declared: &Value, compose: &Json) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |attr: &str, compose_says: String, declared_says: String| {
        if compose_says != declared_says {
            out.push(format!("{attr} (compose: {compose_says}, declared: {declared_says})"));
        }
    };
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    let d = declared.deep_unmarked();
    let dtext = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    differ("image", show(&compose.get("image").and_then(Json::as_str).map(str::to_string)), show(&dtext("image")));
    let dcommand = d.get("command").and_then(schema::string_list);
    if dcommand.is_some() || !compose.get("command").is_none_or(Json::is_null) {
        differ("command", format!("{:?}", json_strings(compose.get("command"))), format!("{dcommand:?}"));
    }
    let denv = schema::string_map_of(d.get("env"));
    differ("env", format!("{:?}", json_map(compose.get("environment")).unwrap_or_default()), format!("{denv:?}"));
    let dlabels = schema::string_map_of(d.get("labels"));
    differ("labels", format!("{:?}", json_map(compose.get("labels")).unwrap_or_default()), format!("{dlabels:?}"));
    differ("network_mode", show(&compose.get("network_mode").and_then(Json::as_str).map(str::to_string)), show(&dtext("network_mode")));
    let num = |v: Option<f64>| v.map(himaplan_engine::value::format_number).unwrap_or_else(|| "none".into());
    differ("cpus", num(compose.get("cpus").and_then(Json::as_f64)), num(d.get("cpus").and_then(Value::as_f64)));
    let mem = |v: Option<i64>| v.map(schema::format_memory).unwrap_or_else(|| "none".into());
    let dmem = |k: &str| dtext(k).and_then(|m| schema::parse_memory(&m).ok());
    differ("memory", mem(bytes(compose.get("mem_limit"))), mem(dmem("memory")));
    differ("memory_reservation", mem(bytes(compose.get("mem_reservation"))), mem(dmem("memory_reservation")));
    differ("cpu_shares", num(compose.get("cpu_shares").and_then(Json::as_f64)), num(d.get("cpu_shares").and_then(Value::as_f64)));
    differ("restart", show(&compose.get("restart").and_then(Json::as_str).map(str::to_string)), show(&dtext("restart")));
    if let Some(t) = d.get("stop_timeout").and_then(Value::as_i64)
        && let Some(grace) = compose.get("stop_grace_period").and_then(Json::as_str)
        && let Ok(g) = humantime::parse_duration(grace)
    {
        differ("stop_timeout", format!("{}s", g.as_secs()), format!("{t}s"));
    }
    if let Some(fields) = compose.as_object() {
        for (k, v) in fields {
            let understood = (k != "entrypoint" || v.is_null()) && UNDERSTOOD.contains(&k.as_str());
            if !understood && !v.is_null() {
                out.push(format!("{k} (set by compose, not declared by docker_service)"));
            }
        }
    }
    out
}

/// The hashed attributes whose declared value differs from `prior`'s (what
/// the containers run).
pub fn hashed_changes(declared: &Value, prior: &Value) -> Vec<&'static str> {
    COMPOSE_HASHED_ATTRS
        .iter()
        .copied()
        .filter(|a| {
            let want = declared.get(a).cloned().unwrap_or(Value::Null);
            !want.is_null() && prior.get(a).cloned().unwrap_or(Value::Null) != want.deep_unmarked()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use himaplan_engine::value::ValueMap;
    use serde_json::json;

    fn declared(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect::<ValueMap>())
    }

    #[test]
    fn versions_below_two_are_refused_by_major() {
        assert_eq!(major_version("2.40.3\n"), Some(2));
        assert_eq!(major_version("v5.5.0"), Some(5));
        assert_eq!(major_version("1.29.2"), Some(1));
        assert_eq!(major_version("docker-compose version"), None);
    }

    #[test]
    fn agreeing_service_has_no_disagreements_and_each_difference_is_named() {
        let compose = json!({
            "image": "himaplan/busybox:1", "command": ["sleep", "3600"], "entrypoint": null,
            "environment": {"QUEUE": "default"}, "network_mode": "none", "mem_limit": "67108864",
            "cpus": 0.5, "pull_policy": "never", "restart": "unless-stopped", "stop_grace_period": "5s"
        });
        let mut d = declared(&[
            ("image", Value::from("himaplan/busybox:1")),
            ("command", Value::List(vec![Value::from("sleep"), Value::from("3600")])),
            ("env", declared(&[("QUEUE", Value::from("default"))])),
            ("network_mode", Value::from("none")),
            ("memory", Value::from("64M")),
            ("cpus", Value::from(0.5)),
            ("restart", Value::from("unless-stopped")),
            ("stop_timeout", Value::from(5.0)),
        ]);
        assert_eq!(disagreements(&d, &compose), Vec::<String>::new());
        if let Value::Map(m) = &mut d {
            m.insert("image".into(), Value::from("himaplan/busybox:2"));
            m.insert("memory".into(), Value::from("128M"));
        }
        let found = disagreements(&d, &compose);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("image (compose: himaplan/busybox:1, declared: himaplan/busybox:2)"), "{found:?}");
        assert!(found[1].starts_with("memory (compose: 64M, declared: 128M)"), "{found:?}");
        let extra = json!({"image": "x", "healthcheck": {"test": ["CMD", "true"]}});
        assert!(disagreements(&declared(&[("image", Value::from("x"))]), &extra).iter().any(|p| p.starts_with("healthcheck")));
    }

    #[test]
    fn env_file_is_refused() {
        assert!(refusal(&json!({"env_file": [{"path": "a.env"}]})).is_some());
        assert!(refusal(&json!({"image": "x"})).is_none());
    }
}
