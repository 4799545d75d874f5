//! The `docker` provider's schemas and its pure, network-free judgements:
//! the `docker_service` attribute set (SPEC §4), the desired service read
//! from a planned value ([`ServiceSpec`]), memory sizes in Docker's binary
//! units, configuration checks beyond types, and how disruptive an update is.
//!
//! Must not talk to Docker or depend on bollard: everything here is decided
//! from values alone, so `validate` and `plan` work offline.

use himaplan_engine::provider::{AttrSchema, AttrType, ChangeShape, ConfigProblem, ResourceType, Schema, TypeDocs};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::BTreeMap;

/// The resource type: the containers of one compose service.
pub const SERVICE_TYPE: &str = "docker_service";

/// Docker Compose's labels: a service's identity (SPEC §4).
pub const PROJECT_LABEL: &str = "com.docker.compose.project";
pub const SERVICE_LABEL: &str = "com.docker.compose.service";
pub const NUMBER_LABEL: &str = "com.docker.compose.container-number";
/// Compose marks `docker compose run` containers `True`; they are not replicas.
pub const ONEOFF_LABEL: &str = "com.docker.compose.oneoff";
/// Every compose label starts with this; none of them is a user label.
pub const COMPOSE_PREFIX: &str = "com.docker.compose.";

/// Label prefix reserved for himaplan's own labels; users may not set it.
pub const HIMAPLAN_PREFIX: &str = "himaplan.io/";
pub const ADDRESS_LABEL: &str = "himaplan.io/address";
pub const LINEAGE_LABEL: &str = "himaplan.io/lineage";
pub const TOKEN_LABEL: &str = "himaplan.io/token";
/// JSON list of the env keys himaplan set, so that read can tell them from
/// the image's own environment (which Docker merges into the container's).
pub const ENV_KEYS_LABEL: &str = "himaplan.io/env-keys";
/// JSON list of the user label keys himaplan set (image labels merge too).
pub const LABEL_KEYS_LABEL: &str = "himaplan.io/label-keys";

/// Compose's bookkeeping labels that a new replica copies from an existing
/// one (SPEC §4), so `docker compose ps` lists it and `up` leaves it alone.
pub const COMPOSE_COPIED_LABELS: &[&str] = &[
    PROJECT_LABEL,
    SERVICE_LABEL,
    ONEOFF_LABEL,
    "com.docker.compose.version",
    "com.docker.compose.project.working_dir",
    "com.docker.compose.project.config_files",
    "com.docker.compose.project.environment_file",
    "com.docker.compose.depends_on",
];
/// Compose's hash of the service configuration a container was made from.
pub const CONFIG_HASH_LABEL: &str = "com.docker.compose.config-hash";
/// The id of the image compose made the container from.
pub const IMAGE_LABEL: &str = "com.docker.compose.image";
/// Set by compose on a container being replaced; never copied.
pub const REPLACE_LABEL: &str = "com.docker.compose.replace";
/// Present on every container compose made (and on replicas copied from one).
pub const VERSION_LABEL: &str = "com.docker.compose.version";

/// Docker refuses memory limits below 6 MiB.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Attributes whose change recreates the containers.
pub const RECREATE_ATTRS: &[&str] = &["image", "command", "env", "labels", "network_mode"];
/// Attributes changed live through the container update API.
pub const LIMIT_ATTRS: &[&str] = &["cpus", "memory", "memory_reservation", "cpu_shares"];
/// Attributes that change what compose hashes (`config --hash`) when they
/// differ from what the containers run: the plan then warns that the next
/// `docker compose up` recreates them.
pub const COMPOSE_HASHED_ATTRS: &[&str] =
    &["image", "command", "env", "labels", "network_mode", "cpus", "memory", "memory_reservation", "cpu_shares", "restart"];
/// The service-level `state` when every container runs.
pub const RUNNING: &str = "running";

/// The attributes of `provider "docker" { ... }`.
pub fn provider_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("host", AttrType::String)
                .describe("Docker daemon address (unix:// or tcp://); defaults to DOCKER_HOST, else unix:///var/run/docker.sock")
                .example("\"unix:///run/docker.sock\""),
            AttrSchema::new("compose_bin", AttrType::String).describe(
                "Docker Compose v2 CLI run at plan time for compose_file; defaults to HIMAPLAN_DOCKER_COMPOSE, else docker-compose on PATH",
            )
            .example("\"/usr/local/bin/docker-compose\""),
        ],
        blocks: vec![],
    }
}

/// The resource types the `docker` provider offers.
pub fn resource_types() -> Vec<ResourceType> {
    vec![ResourceType { name: SERVICE_TYPE, schema_version: 0, schema: service_schema() }]
}

/// The reference text of `docker_service` (SPEC §4).
pub fn type_docs(rtype: &str) -> TypeDocs {
    if rtype != SERVICE_TYPE {
        return TypeDocs::default();
    }
    TypeDocs {
        summary: "The containers of one Docker Compose service, found by compose's own labels \
(`com.docker.compose.project`, `.service`, `.container-number`), so a stack `docker compose` started is recognised and \
adopted without `import`. `replicas = N` means containers numbered exactly 1..N named `PROJECT-SERVICE-N`. Limits \
(`cpus`, `memory`, `memory_reservation`, `cpu_shares`) change live through the container update API; a change of \
`image`, `command`, `env`, `labels` or `network_mode` recreates the containers, `rollout { max_unavailable }` at a time, \
each batch drained from what lists it. New replicas of a compose-made service are created as compose would create \
them, so `docker compose ps` lists them. See [Docker Compose side by side](../docker-compose.md).",
        example: r#"resource "docker_service" "web" {
  project      = "himalytix"
  service      = "web"
  replicas     = 4
  image        = "himaplan/busybox:1"
  command      = ["sh", "-c", "echo gunicorn; sleep 3600"]
  network_mode = "host"
  cpus         = 1
  memory       = "512M"

  rollout {
    max_unavailable = 1
  }
}"#,
    }
}

fn string_map() -> AttrType {
    AttrType::Map(Box::new(AttrType::String))
}

fn service_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("project", AttrType::String)
                .required()
                .replace()
                .describe("compose project (label com.docker.compose.project)")
                .example("\"himalytix\""),
            AttrSchema::new("service", AttrType::String)
                .required()
                .replace()
                .describe("compose service (label com.docker.compose.service)")
                .example("\"web\""),
            AttrSchema::new("replicas", AttrType::Number)
                .default(Value::from(1))
                .describe("containers numbered exactly 1..N, named PROJECT-SERVICE-N: scale-up fills the missing numbers, scale-down removes the numbers above N (stopped first)")
                .example("4"),
            AttrSchema::new("image", AttrType::String)
                .required()
                .disruption("recreate")
                .describe("the image, already on the daemon (himaplan does not pull); a change recreates the containers")
                .example("\"registry.example/himalytix/web:2026.11.1\""),
            // Optional and computed: when omitted the containers run the
            // image's CMD, as under compose, and that is not drift.
            AttrSchema::new("command", AttrType::List(Box::new(AttrType::String)))
                .optional_computed()
                .disruption("recreate")
                .describe("a change recreates the containers; default: the image's CMD")
                .example("[\"gunicorn\", \"himalytix.wsgi:application\", \"--workers\", \"3\"]"),
            AttrSchema::new("env", string_map())
                .default(Value::Map(ValueMap::new()))
                .disruption("recreate")
                .describe("environment variables; a change recreates the containers")
                .example("{ DJANGO_SETTINGS_MODULE = \"himalytix.settings.production\" }"),
            AttrSchema::new("labels", string_map())
                .default(Value::Map(ValueMap::new()))
                .disruption("recreate")
                .describe("user labels (himaplan.io/ and com.docker.compose. are reserved); a change recreates the containers")
                .example("{ tier = \"web\" }"),
            AttrSchema::new("network_mode", AttrType::String)
                .optional_computed()
                .disruption("recreate")
                .describe("\"none\", \"host\", ...; default: the daemon's; himaplan never creates networks; a change recreates the containers")
                .example("\"host\""),
            AttrSchema::new("cpus", AttrType::Number).describe("CPU limit in cores; live update, no restart").example("0.5"),
            AttrSchema::new("memory", AttrType::String).describe("memory limit, \"512M\", \"8G\" (binary units); live update").example("\"512M\""),
            AttrSchema::new("memory_reservation", AttrType::String).describe("soft memory limit, at most memory; live update").example("\"256M\""),
            AttrSchema::new("cpu_shares", AttrType::Number).describe("relative CPU weight, at least 2; live update").example("512"),
            // Passed to the stop call, never to the container: changing it
            // recreates nothing.
            AttrSchema::new("stop_timeout", AttrType::Number)
                .describe("seconds between SIGTERM and SIGKILL on scale-down, delete and recreate; default: the container's own, else 10")
                .example("30"),
            // Not declared: left as the containers have it, and not compared.
            AttrSchema::new("restart", AttrType::String)
                .describe("restart policy: no, always, unless-stopped, on-failure[:N]; in place; unset: not managed")
                .example("\"unless-stopped\""),
            AttrSchema::new("compose_file", AttrType::String)
                .describe("the compose file defining this service; plan compares compose's own hash with the containers'")
                .example("\"docker-compose.yml\""),
            // Filled by plan from `docker compose config --hash`, so that
            // apply labels new replicas without running compose.
            AttrSchema::new("compose_hash", AttrType::String)
                .optional_computed()
                .describe("set by himaplan: compose's config hash of compose_file's service, filled at plan time; leave unset"),
            AttrSchema::new("state", AttrType::String)
                .default(Value::from(RUNNING))
                .describe("\"running\": every container runs; a container exited, created or paused is drift and apply starts it"),
            AttrSchema::new("containers", AttrType::List(Box::new(AttrType::Map(Box::new(AttrType::Any)))))
                .computed()
                .describe("{ number, name, id, ip, state, config_hash } sorted by number; ip is empty under none/host"),
            AttrSchema::new("id", AttrType::String).computed().describe("PROJECT/SERVICE"),
        ],
        blocks: vec![],
    }
}

// ---------------------------------------------------------------------------
// Memory sizes

/// Parses a memory size: a number with an optional unit K, M, G or T (binary:
/// K = 1024) and an optional B, case-insensitive; a bare number is bytes.
pub fn parse_memory(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let bad = || format!("{text:?} is not a memory size: use a number with K, M, G or T (binary units), e.g. \"512M\" or \"8G\"");
    let value: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit.strip_suffix('B').unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= 9.0e18 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes as i64)
}

/// The canonical spelling of a byte count: the largest unit that divides it.
pub fn format_memory(bytes: i64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        let size = 1i64 << shift;
        if bytes != 0 && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// How a size read back from Docker is reported: in the spelling `prior`
/// used when it means the same number of bytes ("512MB" stays "512MB"),
/// so a different spelling of the same size is never drift.
pub fn memory_value(bytes: Option<i64>, prior: Option<&str>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => match prior {
            Some(p) if parse_memory(p) == Ok(b) => Value::from(p),
            _ => Value::from(format_memory(b)),
        },
    }
}

/// CPUs as reported: NanoCpus / 1e9, keeping the prior number when it rounds
/// to the same NanoCpus (0.1 + 0.2 style noise is not drift).
pub fn cpus_value(nano: Option<i64>, prior: Option<f64>) -> Value {
    match nano {
        None => Value::Null,
        Some(n) => match prior {
            Some(p) if nano_cpus(p) == n => Value::from(p),
            _ => Value::from(n as f64 / 1e9),
        },
    }
}

pub fn nano_cpus(cpus: f64) -> i64 {
    (cpus * 1e9).round() as i64
}

// ---------------------------------------------------------------------------
// The desired service

/// Resource limits in Docker's units; `None` = not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<i64>,
}

/// A `docker_service` as apply must make it, decoded from a planned value.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub project: String,
    pub service: String,
    pub replicas: i64,
    pub image: String,
    /// `None`: the image's CMD.
    pub command: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `None`: the daemon's default.
    pub network_mode: Option<String>,
    pub limits: Limits,
    /// Seconds between SIGTERM and SIGKILL; `None`: the container's own.
    pub stop_timeout: Option<i64>,
    /// Restart policy as written (`no`, `always`, `on-failure:3`); `None`: leave it.
    pub restart: Option<String>,
    /// Compose's hash of the service, computed at plan time from
    /// `compose_file` when it agrees with the declaration.
    pub compose_hash: Option<String>,
}

/// Upper bound on `replicas`: one service's containers on one daemon. A
/// host runs far fewer; the bound keeps a typo like `1e12` from becoming
/// a plan of 10¹² containers.
pub const MAX_REPLICAS: i64 = 10_000;

fn replicas_problem(r: &Value) -> String {
    if r.as_f64().is_some_and(|n| n > MAX_REPLICAS as f64) {
        format!("replicas must be at most {MAX_REPLICAS}, not {r}")
    } else {
        format!("replicas must be a whole number ≥ 0, not {r}")
    }
}

impl ServiceSpec {
    /// Decodes a planned value; errors name the attribute at fault.
    pub fn from_value(planned: &Value) -> Result<ServiceSpec, String> {
        let v = planned.deep_unmarked();
        let text = |name: &str| -> Result<String, String> {
            v.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("attribute {name:?} is missing"))
        };
        let opt_text = |name: &str| v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let replicas = match v.get("replicas") {
            None | Some(Value::Null) => 1,
            Some(r) => r.as_i64().filter(|n| (0..=MAX_REPLICAS).contains(n)).ok_or_else(|| replicas_problem(r))?,
        };
        let command = match v.get("command") {
            None | Some(Value::Null) => None,
            Some(c) => Some(string_list(c).ok_or("command must be a list of strings")?),
        };
        let memory = |name: &str| -> Result<Option<i64>, String> {
            opt_text(name).map(|m| parse_memory(m).map_err(|e| format!("{name}: {e}"))).transpose()
        };
        Ok(ServiceSpec {
            project: text("project")?,
            service: text("service")?,
            replicas,
            image: text("image")?,
            command,
            env: string_map_of(v.get("env")),
            labels: string_map_of(v.get("labels")),
            network_mode: opt_text("network_mode").map(str::to_string),
            limits: Limits {
                nano_cpus: v.get("cpus").and_then(Value::as_f64).map(nano_cpus),
                memory: memory("memory")?,
                memory_reservation: memory("memory_reservation")?,
                cpu_shares: v.get("cpu_shares").and_then(Value::as_i64),
            },
            stop_timeout: v.get("stop_timeout").and_then(Value::as_i64),
            restart: opt_text("restart").map(str::to_string),
            compose_hash: opt_text("compose_hash").map(str::to_string),
        })
    }

    /// `PROJECT/SERVICE`, the resource's id.
    pub fn id(&self) -> String {
        service_id(&self.project, &self.service)
    }

    /// The name of container number `n`, as compose v2 names it.
    pub fn container_name(&self, n: i64) -> String {
        format!("{}-{}-{n}", self.project, self.service)
    }
}

pub fn service_id(project: &str, service: &str) -> String {
    format!("{project}/{service}")
}

/// A list of strings, or `None` when any element is not a primitive.
pub fn string_list(v: &Value) -> Option<Vec<String>> {
    v.as_list()?.iter().map(Value::to_template_string).collect()
}

/// A map of strings; non-primitive values are skipped (type-checked earlier).
pub fn string_map_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.to_template_string()?))).collect())
        .unwrap_or_default()
}

/// Parses a restart policy as compose writes it (`no`, `always`,
/// `unless-stopped`, `on-failure`, `on-failure:N`) into Docker's name and
/// maximum retry count.
pub fn parse_restart(text: &str) -> Result<(&str, Option<i64>), String> {
    let bad = || format!("restart {text:?} must be no, always, unless-stopped, on-failure or on-failure:N");
    match text.split_once(':') {
        None if matches!(text, "no" | "always" | "unless-stopped" | "on-failure") => Ok((text, None)),
        Some(("on-failure", n)) => n.parse::<i64>().ok().filter(|n| *n >= 0).map(|n| ("on-failure", Some(n))).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// A restart policy as compose writes it, from Docker's name and retries
/// (Docker reports an empty name for `no`).
pub fn restart_text(name: &str, retries: Option<i64>) -> String {
    match (name, retries) {
        ("" | "no", _) => "no".to_string(),
        ("on-failure", Some(n)) if n > 0 => format!("on-failure:{n}"),
        (other, _) => other.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Validation and change shape

/// Checks a `docker_service` configuration beyond types, collecting every
/// problem. Unknown values are left alone: they are checked when known.
pub fn validate_service(config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut problem = |attr: &str, message: String| problems.push(ConfigProblem { attribute: Some(attr.into()), message });
    // Compose's own rule for project names; container names allow a bit more.
    if let Some(p) = config.get("project").and_then(Value::as_str)
        && !valid_name(p, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        problem("project", format!("project {p:?} must be lowercase letters, digits, '-' or '_', starting with a letter or digit"));
    }
    if let Some(s) = config.get("service").and_then(Value::as_str)
        && !valid_name(s, |c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        problem("service", format!("service {s:?} must be letters, digits, '-', '_' or '.', starting with a letter or digit"));
    }
    if let Some(r) = config.get("replicas").filter(|r| !r.has_unknown() && !r.is_null())
        && r.as_i64().is_none_or(|n| !(0..=MAX_REPLICAS).contains(&n))
    {
        problem("replicas", replicas_problem(r));
    }
    if let Some(c) = config.get("cpus").and_then(Value::as_f64)
        && !(c > 0.0 && c.is_finite())
    {
        problem("cpus", format!("cpus must be greater than 0, not {}", himaplan_engine::value::format_number(c)));
    }
    if let Some(s) = config.get("cpu_shares").filter(|s| !s.has_unknown() && !s.is_null())
        && s.as_i64().is_none_or(|n| n < 2)
    {
        problem("cpu_shares", format!("cpu_shares must be a whole number ≥ 2, not {s}"));
    }
    let mut sizes = BTreeMap::new();
    for name in ["memory", "memory_reservation"] {
        if let Some(text) = config.get(name).and_then(Value::as_str) {
            match parse_memory(text) {
                Ok(b) if b < MIN_MEMORY => problem(name, format!("{name} {text:?} is below Docker's minimum of 6M")),
                Ok(b) => {
                    sizes.insert(name, b);
                }
                Err(e) => problem(name, e),
            }
        }
    }
    if let (Some(m), Some(r)) = (sizes.get("memory"), sizes.get("memory_reservation"))
        && r > m
    {
        problem("memory_reservation", "memory_reservation must not exceed memory".into());
    }
    if let Some(labels) = config.get("labels").and_then(Value::as_map) {
        for key in labels.keys().filter(|k| k.starts_with(HIMAPLAN_PREFIX) || k.starts_with(COMPOSE_PREFIX)) {
            problem("labels", format!("label {key:?} is reserved (himaplan.io/ and com.docker.compose. labels identify the service)"));
        }
    }
    if let Some(r) = config.get("restart").and_then(Value::as_str)
        && let Err(e) = parse_restart(r)
    {
        problem("restart", e);
    }
    if let Some(t) = config.get("stop_timeout").filter(|t| !t.has_unknown() && !t.is_null())
        && t.as_i64().is_none_or(|n| n < 0)
    {
        problem("stop_timeout", format!("stop_timeout must be a whole number of seconds ≥ 0, not {t}"));
    }
    if let Some(st) = config.get("state").and_then(Value::as_str)
        && st != RUNNING
    {
        problem("state", format!("state {st:?} is not supported: a docker_service's containers are kept \"running\""));
    }
    if let Some(env) = config.get("env").and_then(Value::as_map) {
        for key in env.keys().filter(|k| k.is_empty() || k.contains('=')) {
            problem("env", format!("environment variable name {key:?} must be non-empty and contain no '='"));
        }
    }
    problems
}

fn valid_name(name: &str, allowed: impl Fn(char) -> bool) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) && name.chars().all(allowed)
}

/// The provider steps that bring stopped containers back: one line per
/// container of `prior` that is not running.
pub fn start_steps(prior: &Value) -> Vec<String> {
    let Some(items) = prior.get("containers").and_then(Value::as_list) else { return Vec::new() };
    items
        .iter()
        .filter_map(|c| {
            let name = c.get("name").and_then(Value::as_str)?;
            match c.get("state").and_then(Value::as_str)? {
                RUNNING => None,
                "paused" => Some(format!("unpause {name} (paused)")),
                other => Some(format!("start {name} ({other}; recreated if it cannot start)")),
            }
        })
        .collect()
}

/// Whether the next `docker compose up` recreates containers because of this
/// change (SPEC §4): the containers carry compose's bookkeeping (a config
/// hash), the update changes what compose hashes, and no hash of
/// `compose_file` agreeing with the declaration is recorded for the new ones.
pub fn compose_recreate_warning(prior: &Value, planned: &Value, changed: &[String]) -> Option<String> {
    if !changed.iter().any(|c| COMPOSE_HASHED_ATTRS.contains(&c.as_str())) {
        return None;
    }
    let carries_hash = prior
        .get("containers")
        .and_then(Value::as_list)
        .is_some_and(|cs| cs.iter().any(|c| c.get("config_hash").and_then(Value::as_str).is_some_and(|h| !h.is_empty())));
    let has_compose_hash = planned.get("compose_file").and_then(Value::as_str).is_some()
        && planned.get("compose_hash").and_then(Value::as_str).is_some_and(|h| !h.is_empty());
    // With compose_file, plan's comparison with compose says it (adjust_desired).
    let _ = has_compose_hash;
    if !carries_hash || planned.get("compose_file").and_then(Value::as_str).is_some() {
        return None;
    }
    let n = planned.get("replicas").and_then(Value::as_i64).unwrap_or(1);
    let text = |k: &str| planned.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let file = planned.get("compose_file").and_then(Value::as_str).unwrap_or("docker-compose.yml");
    Some(compose_warning(n, &text("project"), &text("service"), file))
}

/// The plan's warning that compose will recreate `n` containers.
pub fn compose_warning(n: i64, project: &str, service: &str, file: &str) -> String {
    format!("warning: the next `docker compose up` recreates {n} containers of {project}/{service} unless {file} is updated")
}

/// How disruptive a `docker_service` update is. Config changes recreate the
/// containers (one at a time); limits change live; scaling disrupts nothing
/// that stays. Docker's update API cannot unset a limit, so removing one
/// recreates too.
pub fn shape_service_change(prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
    let mut shape = ChangeShape::default();
    let has = |name: &str| changed.iter().any(|c| c == name);
    let recreate_for: Vec<&str> = RECREATE_ATTRS.iter().copied().filter(|a| has(a)).collect();
    let unset: Vec<&str> = LIMIT_ATTRS
        .iter()
        .copied()
        .filter(|a| has(a) && planned.get(a).is_none_or(Value::is_null) && prior.get(a).is_some_and(|v| !v.is_null()))
        .collect();
    if !recreate_for.is_empty() || !unset.is_empty() {
        shape.disruption = Some("recreate".into());
        shape.recomputed.push("containers".into());
    }
    if !recreate_for.is_empty() {
        shape
            .notes
            .push(format!("{} changed: containers are recreated one at a time (stop, remove, create, start)", recreate_for.join(", ")));
    }
    for a in &unset {
        shape.notes.push(format!("{a} removed: Docker cannot unset a limit live, so the containers are recreated"));
    }
    for a in LIMIT_ATTRS.iter().filter(|a| has(a) && !unset.contains(a)) {
        shape.notes.push(format!("{a}: live update, no restart"));
    }
    if has("restart") {
        shape.notes.push("restart: policy changed live, no restart".into());
    }
    if has("stop_timeout") {
        shape.notes.push("stop_timeout: used by the next stop; nothing is recreated".into());
    }
    if has("state") {
        // Starting a container disrupts nothing: it takes no rollout slot.
        shape.notes.extend(start_steps(prior));
        if !shape.recomputed.iter().any(|r| r == "containers") {
            shape.recomputed.push("containers".into());
        }
    }
    if let Some(note) = compose_recreate_warning(prior, planned, changed) {
        shape.notes.push(note);
    }
    if has("replicas") {
        let before = prior.get("replicas").and_then(Value::as_i64).unwrap_or(0);
        let after = planned.get("replicas").and_then(Value::as_i64).unwrap_or(1);
        let name = |n: i64| {
            format!(
                "{}-{}-{n}",
                planned.get("project").and_then(Value::as_str).unwrap_or("PROJECT"),
                planned.get("service").and_then(Value::as_str).unwrap_or("SERVICE")
            )
        };
        if after > before {
            shape.notes.push(format!("scale {before} → {after}: creates {}", name_range(before + 1, after, &name)));
        } else if after < before {
            shape.notes.push(format!("scale {before} → {after}: removes {}, highest first", name_range(after + 1, before, &name)));
        }
        let recreating = shape.recomputed.iter().any(|r| r == "containers");
        if after < before && !recreating {
            // A pure scale-down keeps containers 1..N as they are: say so now,
            // so whatever lists them (an upstream) is updated before they go.
            let kept: Vec<Value> = prior
                .get("containers")
                .and_then(Value::as_list)
                .map(|items| {
                    items.iter().filter(|c| c.get("number").and_then(Value::as_i64).is_some_and(|n| n <= after)).cloned().collect()
                })
                .unwrap_or_default();
            shape.predicted.insert("containers".into(), Value::List(kept));
            shape.shrinks = true;
        } else if !recreating {
            shape.recomputed.push("containers".into());
        }
    }
    shape
}

/// The containers numbered `first..=last` in ascending order: one name,
/// two joined by "and", or the first and last of a longer run.
fn name_range(first: i64, last: i64, name: &dyn Fn(i64) -> String) -> String {
    match last - first {
        0 => name(first),
        1 => format!("{} and {}", name(first), name(last)),
        _ => format!("{} .. {}", name(first), name(last)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn changed(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The reference pages say which attributes recreate the containers
    /// from the schema; the plan decides it from RECREATE_ATTRS: they agree.
    #[test]
    fn the_schema_marks_exactly_the_recreating_attributes_disruptive() {
        let rt = resource_types().remove(0);
        let marked: Vec<&str> = rt.schema.attributes.iter().filter(|a| a.disruption == Some("recreate")).map(|a| a.name).collect();
        assert_eq!(marked, RECREATE_ATTRS);
    }

    #[test]
    fn scale_notes_name_the_containers_in_ascending_order() {
        // A scale-down 4 → 2 once said "removes web-4 .. web-3": the range
        // is now written low to high, and two containers are named as two.
        let service = |replicas: i64| obj(&[("project", "hx".into()), ("service", "web".into()), ("replicas", Value::from(replicas))]);
        let notes = |from: i64, to: i64| shape_service_change(&service(from), &service(to), &changed(&["replicas"])).notes;
        assert_eq!(notes(4, 2), ["scale 4 → 2: removes hx-web-3 and hx-web-4, highest first"]);
        assert_eq!(notes(6, 2), ["scale 6 → 2: removes hx-web-3 .. hx-web-6, highest first"]);
        assert_eq!(notes(3, 2), ["scale 3 → 2: removes hx-web-3, highest first"]);
        assert_eq!(notes(6, 8), ["scale 6 → 8: creates hx-web-7 and hx-web-8"]);
        assert_eq!(notes(2, 5), ["scale 2 → 5: creates hx-web-3 .. hx-web-5"]);
    }

    #[test]
    fn memory_sizes_use_binary_units_and_keep_the_prior_spelling() {
        assert_eq!(parse_memory("512M"), Ok(512 << 20));
        assert_eq!(parse_memory("8G"), Ok(8 << 30));
        assert_eq!(parse_memory("8gb"), Ok(8 << 30));
        assert_eq!(parse_memory("1.5G"), Ok(3 << 29));
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert!(parse_memory("8X").is_err());
        assert!(parse_memory("M").is_err());
        assert!(parse_memory("").is_err());
        assert!(parse_memory("99999999T").is_err());
        assert_eq!(format_memory(512 << 20), "512M");
        assert_eq!(format_memory(1 << 40), "1T");
        assert_eq!(format_memory(1536 << 20), "1536M");
        assert_eq!(format_memory(1000), "1000");
        assert_eq!(memory_value(Some(512 << 20), Some("512MB")), Value::from("512MB"));
        assert_eq!(memory_value(Some(512 << 20), Some("1G")), Value::from("512M"));
        assert_eq!(memory_value(None, Some("1G")), Value::Null);
        assert_eq!(cpus_value(Some(300_000_000), Some(0.1 + 0.2)), Value::from(0.1 + 0.2));
        assert_eq!(cpus_value(Some(1_500_000_000), None), Value::from(1.5));
    }

    #[test]
    fn validate_collects_every_problem_with_its_attribute() {
        let config = obj(&[
            ("project", Value::from("erp")),
            ("service", Value::from("celery")),
            ("replicas", Value::from(-1.0)),
            ("memory", Value::from("8X")),
            ("memory_reservation", Value::from("1M")),
            ("cpus", Value::from(0.0)),
            ("labels", obj(&[("himaplan.io/address", Value::from("x"))])),
        ]);
        let problems = validate_service(&config);
        let attrs: Vec<&str> = problems.iter().filter_map(|p| p.attribute.as_deref()).collect();
        assert_eq!(attrs, vec!["replicas", "cpus", "memory", "memory_reservation", "labels"], "{problems:?}");
        let ok = obj(&[
            ("project", Value::from("erp")),
            ("service", Value::from("web.v2")),
            ("replicas", Value::from(0.0)),
            ("memory", Value::from("512M")),
            ("memory_reservation", Value::from("256M")),
            ("cpus", Value::from(0.5)),
        ]);
        assert!(validate_service(&ok).is_empty());
        assert!(validate_service(&obj(&[("replicas", Value::Unknown), ("project", Value::from("Bad Name"))])).len() == 1);
        assert!(!validate_service(&obj(&[("replicas", Value::from(1.5))])).is_empty());
        let too_big = obj(&[("memory", Value::from("64M")), ("memory_reservation", Value::from("1G"))]);
        assert_eq!(validate_service(&too_big)[0].attribute.as_deref(), Some("memory_reservation"));
    }

    #[test]
    fn config_changes_recreate_and_limits_are_live() {
        let prior = obj(&[("replicas", Value::from(2.0)), ("memory", Value::from("64M"))]);
        let planned = obj(&[
            ("project", Value::from("erp")),
            ("service", Value::from("w")),
            ("replicas", Value::from(4.0)),
            ("memory", Value::from("128M")),
        ]);
        let shape = shape_service_change(&prior, &planned, &changed(&["memory", "replicas"]));
        assert_eq!(shape.disruption, None);
        assert!(shape.notes.iter().any(|n| n == "memory: live update, no restart"), "{:?}", shape.notes);
        assert!(shape.notes.iter().any(|n| n.contains("creates erp-w-3 and erp-w-4")), "{:?}", shape.notes);
        let shape = shape_service_change(&prior, &planned, &changed(&["command"]));
        assert_eq!(shape.disruption.as_deref(), Some("recreate"));
        let unset = obj(&[("replicas", Value::from(2.0))]);
        let shape = shape_service_change(&prior, &unset, &changed(&["memory"]));
        assert_eq!(shape.disruption.as_deref(), Some("recreate"));
    }

    #[test]
    fn spec_decodes_a_planned_value() {
        let planned = obj(&[
            ("project", Value::from("erp")),
            ("service", Value::from("celery")),
            ("replicas", Value::from(3.0)),
            ("image", Value::from("busybox")),
            ("command", Value::List(vec![Value::from("sleep"), Value::from(3600.0)])),
            ("env", obj(&[("A", Value::from("1").into_sensitive())])),
            ("memory", Value::from("512M")),
            ("cpus", Value::from(0.5)),
        ]);
        let spec = ServiceSpec::from_value(&planned).expect("spec");
        assert_eq!(spec.command, Some(vec!["sleep".to_string(), "3600".to_string()]));
        assert_eq!(spec.env.get("A").map(String::as_str), Some("1"));
        assert_eq!(spec.limits.memory, Some(512 << 20));
        assert_eq!(spec.limits.nano_cpus, Some(500_000_000));
        assert_eq!(spec.container_name(2), "erp-celery-2");
        assert_eq!(spec.id(), "erp/celery");
        assert!(ServiceSpec::from_value(&Value::Null).is_err());
    }
}
