//! `docker_service`: refresh, converge (create/update), delete and import of
//! the containers of one compose service, plus the pure mapping from what
//! the daemon reports to attributes.
//!
//! A service IS the containers carrying its compose labels (project,
//! service, container-number; `oneoff=True` ones are `docker compose run`
//! leftovers and are ignored), so a stack started by `docker compose` is
//! recognised and adopted. Create and update share one convergence: remove
//! numbers above N (highest first), create missing numbers, change limits
//! live through the update API, recreate containers whose configuration
//! differs one at a time. Must not create networks, pull images, or touch
//! containers outside the requested project/service.
//!
//! How read avoids false drift on containers created by plain compose:
//! Docker merges the image's ENV and labels into every container's config,
//! and compose adds its own `com.docker.compose.*` labels. Read reports
//! `env` as the container's environment minus entries identical to the
//! image's, and `labels` minus compose's, himaplan's and the image's. When
//! himaplan created the container it also recorded which env and label keys
//! it set (`himaplan.io/env-keys`, `himaplan.io/label-keys`), and read then
//! reports exactly those keys, so a user value that happens to equal the
//! image default is still reported. `command` is optional-and-computed: left
//! out, it is the image's CMD, as under compose.

use super::client::docker_error;
use super::schema::{
    self, ADDRESS_LABEL, COMPOSE_PREFIX, CONFIG_HASH_LABEL, ENV_KEYS_LABEL, HIMAPLAN_PREFIX, IMAGE_LABEL, LABEL_KEYS_LABEL, LINEAGE_LABEL,
    Limits, NUMBER_LABEL, ONEOFF_LABEL, PROJECT_LABEL, SERVICE_LABEL, ServiceSpec, TOKEN_LABEL,
};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ContainerUpdateBody, HostConfig, Mount, MountType, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder, StopContainerOptionsBuilder};
use futures::{StreamExt, TryStreamExt, future::try_join_all};
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, FoundObject, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Containers created at once when scaling up (creating is no disruption).
const CREATE_PARALLELISM: usize = 4;

/// Inspect calls in flight against the daemon at once, across every
/// service a refresh reads (dockerd answers a few dozen concurrent
/// inspects well; hundreds at once only queue inside it).
static INSPECTS_IN_FLIGHT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(32);

// ---------------------------------------------------------------------------
// Pure mapping

/// One container of a service as the daemon reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    /// `com.docker.compose.container-number`; `None` when absent or not a number.
    pub number: Option<i64>,
    pub running: bool,
    /// Unix seconds, from the container list.
    pub created: i64,
    /// The image as asked for (`Config.Image`).
    pub image: String,
    /// The image's id, to look up its defaults.
    pub image_id: String,
    pub command: Vec<String>,
    /// `Config.Env`, raw `K=V` entries.
    pub env: Vec<String>,
    /// Every label, compose's and himaplan's included.
    pub labels: BTreeMap<String, String>,
    pub network_mode: String,
    pub limits: Limits,
    pub ip: String,
    pub started_at: String,
    /// Docker's status: `running`, `exited`, `created`, `paused`,
    /// `restarting`, `dead`, `removing`.
    pub state: String,
    /// The restart policy as compose writes it (`no`, `on-failure:3`).
    pub restart: String,
    /// Anonymous volumes (name, destination): a recreate inherits them.
    pub anonymous_volumes: Vec<(String, String)>,
}

/// What an image contributes to its containers' configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageDefaults {
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// The service's part of one container's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub image: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub network_mode: String,
}

fn positive(n: Option<i64>) -> Option<i64> {
    n.filter(|n| *n > 0)
}

/// Builds an [`Observed`] from a list entry and its inspection.
pub fn observed(summary: &ContainerSummary, inspect: &ContainerInspectResponse) -> Observed {
    let config = inspect.config.clone().unwrap_or_default();
    let host = inspect.host_config.clone().unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let state = inspect.state.clone().unwrap_or_default();
    // The first address of the container's networks, by network name; none
    // under network_mode none/host.
    let mut networks: Vec<(String, String)> = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, ep)| (name, ep.ip_address.unwrap_or_default()))
        .filter(|(_, ip)| !ip.is_empty())
        .collect();
    networks.sort();
    Observed {
        id: inspect.id.clone().or_else(|| summary.id.clone()).unwrap_or_default(),
        name: inspect.name.clone().unwrap_or_default().trim_start_matches('/').to_string(),
        number: labels.get(NUMBER_LABEL).and_then(|n| n.parse().ok()),
        running: state.running.unwrap_or(false),
        created: summary.created.unwrap_or(0),
        image: config.image.unwrap_or_default(),
        image_id: inspect.image.clone().unwrap_or_default(),
        command: config.cmd.unwrap_or_default(),
        env: config.env.unwrap_or_default(),
        labels,
        network_mode: host.network_mode.unwrap_or_default(),
        limits: Limits {
            nano_cpus: positive(host.nano_cpus),
            memory: positive(host.memory),
            memory_reservation: positive(host.memory_reservation),
            cpu_shares: positive(host.cpu_shares),
        },
        ip: networks.into_iter().next().map(|(_, ip)| ip).unwrap_or_default(),
        started_at: state.started_at.unwrap_or_default(),
        state: state.status.map(|s| s.to_string()).filter(|s| !s.is_empty()).unwrap_or_else(|| "created".into()),
        restart: host
            .restart_policy
            .as_ref()
            .map(|r| schema::restart_text(&r.name.map(|n| n.to_string()).unwrap_or_default(), r.maximum_retry_count))
            .unwrap_or_else(|| "no".into()),
        anonymous_volumes: inspect
            .mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.typ.as_ref().map(|t| t.to_string()).as_deref() == Some("volume"))
            .filter_map(|m| Some((m.name?, m.destination?)))
            .filter(|(name, _)| is_anonymous_volume(name))
            .collect(),
    }
}

/// Docker names an anonymous volume by 64 hex digits.
fn is_anonymous_volume(name: &str) -> bool {
    name.len() == 64 && name.chars().all(|c| c.is_ascii_hexdigit())
}

fn recorded_keys(labels: &BTreeMap<String, String>, label: &str) -> Option<BTreeSet<String>> {
    labels.get(label).and_then(|j| serde_json::from_str(j).ok())
}

/// The service's configuration of a container, image defaults and foreign
/// labels taken out (see the module documentation).
pub fn service_config(c: &Observed, image: &ImageDefaults) -> ServiceConfig {
    let env_keys = recorded_keys(&c.labels, ENV_KEYS_LABEL);
    let env = c
        .env
        .iter()
        .filter(|entry| match &env_keys {
            Some(keys) => entry.split_once('=').is_some_and(|(k, _)| keys.contains(k)),
            None => !image.env.contains(entry),
        })
        .filter_map(|entry| entry.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let label_keys = recorded_keys(&c.labels, LABEL_KEYS_LABEL);
    let labels = c
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with(COMPOSE_PREFIX) && !k.starts_with(HIMAPLAN_PREFIX))
        .filter(|(k, v)| match &label_keys {
            Some(keys) => keys.contains(*k),
            None => image.labels.get(*k) != Some(*v),
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ServiceConfig { image: c.image.clone(), command: c.command.clone(), env, labels, network_mode: c.network_mode.clone() }
}

/// True when the container must be recreated to match `spec`: its
/// configuration differs, or it has a limit the spec drops (the update API
/// cannot unset a limit).
pub fn needs_recreate(spec: &ServiceSpec, c: &Observed, image: &ImageDefaults) -> bool {
    let cfg = service_config(c, image);
    let unset = |want: Option<i64>, have: Option<i64>| want.is_none() && have.is_some();
    cfg.image != spec.image
        || spec.command.as_ref().is_some_and(|cmd| *cmd != cfg.command)
        || cfg.env != spec.env
        || cfg.labels != spec.labels
        || spec.network_mode.as_ref().is_some_and(|m| *m != cfg.network_mode)
        || unset(spec.limits.nano_cpus, c.limits.nano_cpus)
        || unset(spec.limits.memory, c.limits.memory)
        || unset(spec.limits.memory_reservation, c.limits.memory_reservation)
        || unset(spec.limits.cpu_shares, c.limits.cpu_shares)
}

/// True when what compose hashes is the same for `spec` and container `c`
/// (configuration, every limit and the restart policy): only then may a
/// new replica carry `c`'s config hash.
pub fn hashed_config_identical(spec: &ServiceSpec, c: &Observed, image: &ImageDefaults) -> bool {
    !needs_recreate(spec, c, image)
        && spec.limits == c.limits
        && spec.restart.as_deref().is_none_or(|r| r == c.restart)
        && spec.command.is_some()
        && spec.network_mode.is_some()
}

/// The restart policy body for `text` (validated earlier).
fn restart_policy(text: &str) -> Option<RestartPolicy> {
    let (name, retries) = schema::parse_restart(text).ok()?;
    let name = match name {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    };
    Some(RestartPolicy { name: Some(name), maximum_retry_count: retries })
}

/// The update body bringing `have` to `want`, or `None` when they agree.
/// MemorySwap travels with Memory (twice it, Docker's own default): the
/// daemon refuses a memory raise above the current swap limit otherwise.
pub fn limits_update(want: &Limits, have: &Limits) -> Option<ContainerUpdateBody> {
    let differs = |w: Option<i64>, h: Option<i64>| w.is_some() && w != h;
    if !(differs(want.nano_cpus, have.nano_cpus)
        || differs(want.memory, have.memory)
        || differs(want.memory_reservation, have.memory_reservation)
        || differs(want.cpu_shares, have.cpu_shares))
    {
        return None;
    }
    limits_body(want)
}

/// The update body of a container: its limits when they differ, and its
/// restart policy when `restart` is declared and differs (both live).
fn update_body(spec: &ServiceSpec, c: &Observed) -> Option<ContainerUpdateBody> {
    let limits = limits_update(&spec.limits, &c.limits);
    let restart = spec.restart.as_deref().filter(|r| *r != c.restart).and_then(restart_policy);
    match (limits, restart) {
        (None, None) => None,
        (limits, restart) => Some(ContainerUpdateBody { restart_policy: restart, ..limits.unwrap_or_default() }),
    }
}

fn limits_body(want: &Limits) -> Option<ContainerUpdateBody> {
    Some(ContainerUpdateBody {
        nano_cpus: want.nano_cpus,
        memory: want.memory,
        memory_swap: want.memory.map(|m| m.saturating_mul(2)),
        memory_reservation: want.memory_reservation,
        cpu_shares: want.cpu_shares,
        ..Default::default()
    })
}

/// The configuration attributes one container reports; sizes keep the
/// spelling of `prior` when they mean the same (see [`schema::memory_value`]).
fn config_attrs(c: &Observed, image: &ImageDefaults, prior: &Value) -> BTreeMap<String, Value> {
    let cfg = service_config(c, image);
    let strings = |m: BTreeMap<String, String>| Value::Map(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect());
    let prior_str = |name: &str| prior.get(name).and_then(Value::as_str);
    BTreeMap::from([
        ("image".to_string(), Value::from(cfg.image)),
        ("command".to_string(), Value::List(cfg.command.into_iter().map(Value::from).collect())),
        ("env".to_string(), strings(cfg.env)),
        ("labels".to_string(), strings(cfg.labels)),
        ("network_mode".to_string(), Value::from(cfg.network_mode)),
        ("cpus".to_string(), schema::cpus_value(c.limits.nano_cpus, prior.get("cpus").and_then(Value::as_f64))),
        ("memory".to_string(), schema::memory_value(c.limits.memory, prior_str("memory"))),
        ("memory_reservation".to_string(), schema::memory_value(c.limits.memory_reservation, prior_str("memory_reservation"))),
        ("cpu_shares".to_string(), c.limits.cpu_shares.map_or(Value::Null, |s| Value::from(s as f64))),
        // Reported only when declared: an undeclared policy is not managed.
        (
            "restart".to_string(),
            if prior.get("restart").is_some_and(|r| !r.is_null()) { Value::from(c.restart.as_str()) } else { Value::Null },
        ),
    ])
}

/// A service's attributes from its containers, sorted by number.
///
/// Values come from the lowest-numbered container, unless a container
/// differs from `prior`: then the first such one reports, so that a half
/// finished rollout (some containers still old) shows as drift.
pub fn service_attrs(
    project: &str,
    service: &str,
    containers: &[Observed],
    images: &HashMap<String, ImageDefaults>,
    prior: &Value,
) -> Value {
    let none = ImageDefaults::default();
    let per_container: Vec<BTreeMap<String, Value>> =
        containers.iter().map(|c| config_attrs(c, images.get(&c.image_id).unwrap_or(&none), prior)).collect();
    let differs = |attrs: &BTreeMap<String, Value>| attrs.iter().any(|(k, v)| prior.get(k).unwrap_or(&Value::Null) != v);
    let mut attrs = per_container.iter().find(|a| differs(a)).or(per_container.first()).cloned().unwrap_or_else(|| {
        // No containers (replicas = 0): the configuration is what state says.
        let keep = ["image", "command", "env", "labels", "network_mode", "cpus", "memory", "memory_reservation", "cpu_shares", "restart"];
        keep.iter().map(|k| (k.to_string(), prior.get(k).cloned().unwrap_or(Value::Null))).collect()
    });
    attrs.insert("project".into(), Value::from(project));
    attrs.insert("service".into(), Value::from(service));
    attrs.insert("id".into(), Value::from(schema::service_id(project, service)));
    attrs.insert("replicas".into(), Value::from(containers.len() as f64));
    // Attributes the daemon does not hold: what the configuration said.
    for k in ["stop_timeout", "compose_file", "compose_hash"] {
        attrs.insert(k.into(), prior.get(k).cloned().unwrap_or(Value::Null));
    }
    attrs.insert("state".into(), Value::from(service_state(containers)));
    let list = containers
        .iter()
        .map(|c| {
            Value::Map(ValueMap::from([
                ("number".to_string(), c.number.map_or(Value::Null, |n| Value::from(n as f64))),
                ("name".to_string(), Value::from(c.name.as_str())),
                ("id".to_string(), Value::from(c.id.as_str())),
                ("ip".to_string(), Value::from(c.ip.as_str())),
                ("state".to_string(), Value::from(c.state.as_str())),
                ("config_hash".to_string(), Value::from(c.labels.get(CONFIG_HASH_LABEL).map(String::as_str).unwrap_or(""))),
            ]))
        })
        .collect();
    attrs.insert("containers".into(), Value::List(list));
    Value::Map(attrs.into())
}

/// The service-level `state`: `running` when every container runs (or
/// there are none), else how many do not, which plan turns into start steps.
pub fn service_state(containers: &[Observed]) -> String {
    let down = containers.iter().filter(|c| c.state != schema::RUNNING).count();
    if down == 0 { schema::RUNNING.to_string() } else { format!("{down} of {} not running", containers.len()) }
}

/// The project and service a prior value names (attributes, else `id`).
pub fn identity(prior: &Value) -> Option<(String, String)> {
    let text = |k: &str| prior.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    match (text("project"), text("service")) {
        (Some(p), Some(s)) => Some((p.to_string(), s.to_string())),
        _ => text("id")
            .and_then(|id| id.split_once('/'))
            .filter(|(p, s)| !p.is_empty() && !s.is_empty())
            .map(|(p, s)| (p.to_string(), s.to_string())),
    }
}

/// The container ids a service's prior attributes record.
fn prior_container_ids(prior: &Value) -> Vec<String> {
    let containers = prior.get("containers").and_then(Value::as_list).unwrap_or_default();
    containers.iter().filter_map(|c| c.get("id").and_then(Value::as_str)).filter(|id| !id.is_empty()).map(str::to_string).collect()
}

fn sort_containers(containers: &mut [Observed]) {
    containers.sort_by_key(|c| (c.number.unwrap_or(i64::MAX), c.state != schema::RUNNING, c.created, c.id.clone()));
}

/// Compose's labels of a new or recreated container number `n` (SPEC §4):
/// the bookkeeping labels of `template` (an existing replica, or the
/// container being replaced), `image_id` as the image label, and a config
/// hash only when one is known to describe what the container runs. Never
/// himaplan's own labels, `replace`, or anything else of the template.
pub fn compose_labels(template: Option<&Observed>, image_id: &str, config_hash: Option<&str>) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = template
        .map(|t| {
            t.labels
                .iter()
                .filter(|(k, _)| schema::COMPOSE_COPIED_LABELS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if !image_id.is_empty() {
        labels.insert(IMAGE_LABEL.into(), image_id.into());
    }
    if let Some(h) = config_hash.filter(|h| !h.is_empty()) {
        labels.insert(CONFIG_HASH_LABEL.into(), h.into());
    }
    labels
}

/// What a new container carries besides the spec: compose's labels and the
/// anonymous volumes of the container it replaces.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    pub compose_labels: BTreeMap<String, String>,
    pub volumes: Vec<(String, String)>,
}

/// The container `create` sends for number `n` of `spec`.
pub fn create_body(spec: &ServiceSpec, n: i64, req: &ApplyRequest, from: &Lineage) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = from.compose_labels.clone().into_iter().collect();
    labels.extend(spec.labels.clone());
    let keys_json = |keys: Vec<&String>| serde_json::to_string(&keys).unwrap_or_else(|_| "[]".into());
    labels.insert(ENV_KEYS_LABEL.into(), keys_json(spec.env.keys().collect()));
    labels.insert(LABEL_KEYS_LABEL.into(), keys_json(spec.labels.keys().collect()));
    labels.insert(PROJECT_LABEL.into(), spec.project.clone());
    labels.insert(SERVICE_LABEL.into(), spec.service.clone());
    labels.insert(NUMBER_LABEL.into(), n.to_string());
    labels.insert(ONEOFF_LABEL.into(), "False".into());
    labels.insert(ADDRESS_LABEL.into(), req.addr.to_string());
    labels.insert(LINEAGE_LABEL.into(), req.lineage.clone());
    if let Some(token) = &req.token {
        labels.insert(TOKEN_LABEL.into(), token.clone());
    }
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: spec.network_mode.clone(),
            nano_cpus: spec.limits.nano_cpus,
            memory: spec.limits.memory,
            memory_swap: spec.limits.memory.map(|m| m.saturating_mul(2)),
            memory_reservation: spec.limits.memory_reservation,
            cpu_shares: spec.limits.cpu_shares,
            restart_policy: spec.restart.as_deref().and_then(restart_policy),
            mounts: (!from.volumes.is_empty()).then(|| {
                from.volumes
                    .iter()
                    .map(|(name, target)| Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(name.clone()),
                        target: Some(target.clone()),
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------
// Daemon calls

/// Containers carrying every label filter given (`key=value`, or `key`
/// for any value), `oneoff` ones left out.
async fn list<S: AsRef<str>>(docker: &Docker, labels: &[S]) -> Result<Vec<ContainerSummary>, ProviderError> {
    let filters = HashMap::from([("label".to_string(), labels.iter().map(|l| l.as_ref().to_string()).collect::<Vec<_>>())]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let found = docker.list_containers(Some(options)).await.map_err(|e| docker_error("list containers", e))?;
    Ok(found.into_iter().filter(|c| c.labels.as_ref().and_then(|l| l.get(ONEOFF_LABEL)).map(String::as_str) != Some("True")).collect())
}

/// What a caller already knows of some of the containers it lists.
#[derive(Clone, Copy)]
enum Seen<'a> {
    Nothing,
    /// Inspected by this apply and not touched since.
    Observed(&'a [Observed]),
    /// Inspected while the list ran (a refresh), by id.
    Inspected(&'a HashMap<String, ContainerInspectResponse>),
}

/// One container's inspection, at most [`INSPECTS_IN_FLIGHT`] at once;
/// `None` when it is gone.
async fn inspect_one(docker: &Docker, id: &str) -> Result<Option<ContainerInspectResponse>, ProviderError> {
    let _permit = INSPECTS_IN_FLIGHT.acquire().await.map_err(|e| ProviderError::other(format!("inspect container: {e}")))?;
    match docker.inspect_container(id, None).await.map_err(|e| docker_error("inspect container", e)) {
        Ok(i) => Ok(Some(i)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Inspects containers by id, concurrently; those gone are left out.
async fn inspect_ids(docker: &Docker, ids: &[String]) -> Result<HashMap<String, ContainerInspectResponse>, ProviderError> {
    let found =
        try_join_all(ids.iter().map(|id| async move { Ok::<_, ProviderError>(inspect_one(docker, id).await?.map(|i| (id.clone(), i))) }))
            .await?;
    Ok(found.into_iter().flatten().collect())
}

/// Inspects the listed containers concurrently (at most
/// [`INSPECTS_IN_FLIGHT`] at once), except those already `seen`; one
/// removed meanwhile is skipped. The result is sorted by number.
async fn inspect_all(docker: &Docker, summaries: &[ContainerSummary], seen: Seen<'_>) -> Result<Vec<Observed>, ProviderError> {
    let known: HashMap<&str, &Observed> = match seen {
        Seen::Observed(known) => known.iter().map(|k| (k.id.as_str(), k)).collect(),
        _ => HashMap::new(),
    };
    let known = &known;
    let inspected = try_join_all(summaries.iter().map(|s| async move {
        let Some(id) = s.id.as_deref() else { return Ok(None) };
        if let Some(seen) = known.get(id) {
            return Ok(Some((*seen).clone()));
        }
        if let Seen::Inspected(early) = seen
            && let Some(i) = early.get(id)
        {
            return Ok(Some(observed(s, i)));
        }
        Ok(inspect_one(docker, id).await?.map(|i| observed(s, &i)))
    }))
    .await?;
    let mut containers: Vec<Observed> = inspected.into_iter().flatten().collect();
    sort_containers(&mut containers);
    Ok(containers)
}

/// The defaults of every image the containers run, by image id; an image
/// deleted since contributes nothing.
async fn image_defaults(docker: &Docker, containers: &[&Observed]) -> Result<HashMap<String, ImageDefaults>, ProviderError> {
    let ids: BTreeSet<&str> = containers.iter().map(|c| c.image_id.as_str()).filter(|i| !i.is_empty()).collect();
    let found = try_join_all(ids.into_iter().map(|id| async move {
        match docker.inspect_image(id).await.map_err(|e| docker_error("inspect image", e)) {
            Ok(image) => {
                let config = image.config.unwrap_or_default();
                let defaults =
                    ImageDefaults { env: config.env.unwrap_or_default(), labels: config.labels.unwrap_or_default().into_iter().collect() };
                Ok((id.to_string(), defaults))
            }
            Err(e) if e.is_not_found() => Ok((id.to_string(), ImageDefaults::default())),
            Err(e) => Err(e),
        }
    }))
    .await?;
    Ok(found.into_iter().collect())
}

/// Inspects a service's listed containers (but those `seen`, see
/// [`inspect_all`]); `restarting` is transient, so it waits briefly for
/// such containers and judges what they became.
async fn inspect_settled(docker: &Docker, summaries: &[ContainerSummary], seen: Seen<'_>) -> Result<Vec<Observed>, ProviderError> {
    let mut containers = inspect_all(docker, summaries, seen).await?;
    let deadline = std::time::Instant::now() + RESTARTING_WAIT;
    while containers.iter().any(|c| c.state == "restarting") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        containers = inspect_all(docker, summaries, Seen::Nothing).await?;
    }
    Ok(containers)
}

/// Inspects a service's listed containers (see [`inspect_settled`]) and
/// the images they run, and reports its attributes.
async fn observe_service(
    docker: &Docker,
    project: &str,
    service: &str,
    summaries: &[ContainerSummary],
    known: &[Observed],
    prior: &Value,
) -> Result<Value, ProviderError> {
    let containers = inspect_settled(docker, summaries, Seen::Observed(known)).await?;
    let images = image_defaults(docker, &containers.iter().collect::<Vec<_>>()).await?;
    Ok(service_attrs(project, service, &containers, &images, prior))
}

/// Treats "already in that state" (304) and "gone" (404) as success.
fn settled(op: &str, result: Result<(), DockerError>) -> Result<(), ProviderError> {
    match result {
        Ok(()) => Ok(()),
        Err(DockerError::DockerResponseServerError { status_code: 304 | 404, .. }) => Ok(()),
        Err(e) => Err(docker_error(op, e)),
    }
}

async fn start(docker: &Docker, id: &str) -> Result<(), ProviderError> {
    settled("start container", docker.start_container(id, None).await)
}

/// Stops a container gracefully, as compose does: SIGTERM (or the image's
/// stop signal), up to `timeout` seconds (`None`: the container's own stop
/// timeout, else Docker's 10 s), then SIGKILL; and removes it, without force.
async fn stop_and_remove(docker: &Docker, c: &Observed, timeout: Option<i64>) -> Result<(), ProviderError> {
    let options = timeout.and_then(|t| i32::try_from(t).ok()).map(|t| StopContainerOptionsBuilder::new().t(t).build());
    if c.state == "paused" {
        // A paused container cannot receive SIGTERM; unpause it first.
        settled("unpause container", docker.unpause_container(&c.id).await)?;
    }
    settled(&format!("stop container {}", c.name), docker.stop_container(&c.id, options).await)?;
    settled(&format!("remove container {}", c.name), docker.remove_container(&c.id, None).await)
}

async fn create_and_start(docker: &Docker, spec: &ServiceSpec, n: i64, req: &ApplyRequest, from: &Lineage) -> Result<(), ProviderError> {
    let name = spec.container_name(n);
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let created = docker
        .create_container(Some(options), create_body(spec, n, req, from))
        .await
        .map_err(|e| docker_error(&format!("create container {name}"), e))?;
    start(docker, &created.id).await
}

/// The image id of `spec.image` (himaplan does not pull: a missing image is
/// a permanent error before anything is disrupted).
async fn image_id(docker: &Docker, spec: &ServiceSpec, req: &ApplyRequest) -> Result<String, ProviderError> {
    match docker.inspect_image(&spec.image).await {
        Ok(image) => Ok(image.id.unwrap_or_default()),
        Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => Err(ProviderError::invalid(format!(
            "{}: image {:?} is not present on the Docker daemon (himaplan does not pull images; pull or build it first)",
            req.addr, spec.image
        ))),
        Err(e) => Err(docker_error("inspect image", e)),
    }
}

/// How new containers of one apply are made: the spec, the request, the
/// image id and the config hash the plan recorded from `compose_file`.
pub struct Maker<'a> {
    pub docker: &'a Docker,
    pub spec: &'a ServiceSpec,
    pub req: &'a ApplyRequest,
    pub image_id: String,
}

impl Maker<'_> {
    /// The hash compose computed at plan time, when `compose_file` agreed
    /// with the declaration (the plan recorded it; apply never runs compose).
    fn compose_hash(&self) -> Option<&str> {
        self.req.planned.get("compose_file").and_then(Value::as_str)?;
        self.spec.compose_hash.as_deref().filter(|h| !h.is_empty())
    }

    /// Stops, removes and recreates `containers` together (one rollout
    /// batch): each keeps its number, compose's bookkeeping labels and its
    /// anonymous volumes. The engine may drive this per batch.
    pub async fn recreate(&self, containers: &[&Observed]) -> Result<(), ProviderError> {
        try_join_all(containers.iter().map(|old| async move {
            let n = old.number.unwrap_or(1);
            let from = Lineage {
                compose_labels: compose_labels(Some(old), &self.image_id, self.compose_hash()),
                volumes: old.anonymous_volumes.clone(),
            };
            stop_and_remove(self.docker, old, self.spec.stop_timeout).await?;
            create_and_start(self.docker, self.spec, n, self.req, &from).await
        }))
        .await
        .map(drop)
    }
}

// ---------------------------------------------------------------------------
// Refresh

/// How long refresh waits for containers in `restarting` to settle.
const RESTARTING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Refreshes the requested services and finds the lineage's others: one
/// list call serves both (every container of any compose project; the
/// daemon walks all its containers for any filter), then every container
/// is inspected, at most [`INSPECTS_IN_FLIGHT`] at once, and every image
/// they run once. The containers state knows are inspected while the
/// list runs (it takes dockerd tens of milliseconds): the list only says
/// which of them still belong to their service and which others do.
pub async fn read(docker: &Docker, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
    let keys: Vec<Option<(String, String)>> = req.items.iter().map(|i| identity(&i.prior)).collect();
    let requested: BTreeSet<&(String, String)> = keys.iter().flatten().collect();
    let known_ids: Vec<String> = req.items.iter().flat_map(|i| prior_container_ids(&i.prior)).collect();
    let (listed, early) = futures::future::join(list(docker, &[PROJECT_LABEL]), inspect_ids(docker, &known_ids)).await;
    let early = early?;
    let (mut groups, mut strays) = (BTreeMap::new(), BTreeMap::new());
    for c in listed? {
        let label = |k: &str| c.labels.as_ref().and_then(|l| l.get(k)).cloned();
        let (Some(project), Some(service)) = (label(PROJECT_LABEL), label(SERVICE_LABEL)) else { continue };
        let key = (project, service);
        if requested.contains(&key) {
            groups.entry(key).or_insert_with(Vec::new).push(c);
        } else if label(LINEAGE_LABEL).as_deref() == Some(req.lineage.as_str()) {
            strays.entry(key).or_insert_with(Vec::new).push(c);
        }
    }
    let (current, others) = futures::future::try_join(
        read_requested(docker, req, &keys, &groups, &early),
        try_join_all(strays.iter().map(|((p, s), found)| found_object(docker, p, s, found))),
    )
    .await?;
    Ok(ReadResponse { current, others })
}

/// The requested services (`keys`, from their priors) from their listed
/// containers (`groups`): every container inspected, every image once.
async fn read_requested(
    docker: &Docker,
    req: &ReadRequest,
    keys: &[Option<(String, String)>],
    groups: &BTreeMap<(String, String), Vec<ContainerSummary>>,
    early: &HashMap<String, ContainerInspectResponse>,
) -> Result<Vec<Option<Value>>, ProviderError> {
    // Every requested service's containers, then every image they run
    // once for the whole read (services mostly share their images).
    let inspected: Vec<Option<Vec<Observed>>> = try_join_all(req.items.iter().zip(keys).map(|(item, key)| async move {
        let Some(key) = key else { return Ok(None) };
        match groups.get(key) {
            Some(found) => inspect_settled(docker, found, Seen::Inspected(early)).await.map(Some),
            // A service scaled to zero has no containers and still exists.
            None if item.prior.get("replicas").and_then(Value::as_i64) == Some(0) => Ok(Some(Vec::new())),
            None => Ok(None),
        }
    }))
    .await?;
    let images = image_defaults(docker, &inspected.iter().flatten().flatten().collect::<Vec<_>>()).await?;
    Ok(req
        .items
        .iter()
        .zip(keys)
        .zip(&inspected)
        .map(|((item, key), containers)| {
            let ((project, service), containers) = (key.as_ref()?, containers.as_ref()?);
            Some(service_attrs(project, service, containers, &images, &item.prior))
        })
        .collect())
}

/// An unrequested service of the lineage, as reported in `others`.
async fn found_object(docker: &Docker, project: &str, service: &str, summaries: &[ContainerSummary]) -> Result<FoundObject, ProviderError> {
    let containers = inspect_all(docker, summaries, Seen::Nothing).await?;
    let images = image_defaults(docker, &containers.iter().collect::<Vec<_>>()).await?;
    let first = containers.first();
    let label = |k: &str| first.and_then(|c| c.labels.get(k)).cloned();
    let oldest = summaries.iter().filter_map(|s| s.created).min().unwrap_or(0);
    Ok(FoundObject {
        id: schema::service_id(project, service),
        address: label(ADDRESS_LABEL).and_then(|a| a.parse().ok()),
        token: label(TOKEN_LABEL),
        created: chrono::DateTime::from_timestamp(oldest, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        attrs: service_attrs(project, service, &containers, &images, &Value::Null),
    })
}

// ---------------------------------------------------------------------------
// Apply and import

/// Carries out one create, update or delete.
pub async fn apply(docker: &Docker, req: &ApplyRequest) -> Result<Value, ProviderError> {
    match req.action {
        ApplyAction::Delete => delete(docker, req).await,
        ApplyAction::Create | ApplyAction::Update => {
            let spec = ServiceSpec::from_value(&req.planned).map_err(|e| ProviderError::invalid(format!("{}: {e}", req.addr)))?;
            // What converge inspected and left alone is not asked again:
            // a batch of a rollout inspects only what it recreated.
            let untouched = converge(docker, &spec, req).await?;
            let found = list(docker, &[format!("{PROJECT_LABEL}={}", spec.project), format!("{SERVICE_LABEL}={}", spec.service)]).await?;
            observe_service(docker, &spec.project, &spec.service, &found, &untouched, &req.planned).await
        }
    }
}

/// Brings the service's containers to `spec` (see the module documentation
/// for the order). Starting from any mix of containers it ends with exactly
/// numbers 1..N running the spec, so running it again after a failure
/// converges. Returns the containers it inspected and left as they were
/// (running, not updated, not recreated).
async fn converge(docker: &Docker, spec: &ServiceSpec, req: &ApplyRequest) -> Result<Vec<Observed>, ProviderError> {
    let found = list(docker, &[format!("{PROJECT_LABEL}={}", spec.project), format!("{SERVICE_LABEL}={}", spec.service)]).await?;
    let containers = inspect_all(docker, &found, Seen::Nothing).await?;
    let mut keep: BTreeMap<i64, &Observed> = BTreeMap::new();
    let mut extras: Vec<&Observed> = Vec::new();
    // Sorted by number, running first, oldest first: the first container of
    // a number is the one kept; duplicates and numbers above N go.
    for c in &containers {
        match c.number {
            Some(n) if (1..=spec.replicas).contains(&n) && !keep.contains_key(&n) => {
                keep.insert(n, c);
            }
            _ => extras.push(c),
        }
    }
    let images = image_defaults(docker, &keep.values().copied().collect::<Vec<_>>()).await?;
    let none = ImageDefaults::default();
    let outdated: Vec<&Observed> =
        keep.values().copied().filter(|c| needs_recreate(spec, c, images.get(&c.image_id).unwrap_or(&none))).collect();
    let missing: Vec<i64> = (1..=spec.replicas).filter(|n| !keep.contains_key(n)).collect();

    // Check the image before disrupting anything: himaplan does not pull,
    // and a recreate that cannot create would leave a container missing.
    let image_id = if !missing.is_empty() || !outdated.is_empty() { image_id(docker, spec, req).await? } else { String::new() };
    let maker = Maker { docker, spec, req, image_id };

    // Scale down first, highest number first (unnumbered ones before all),
    // each stopped gracefully before it is removed.
    extras.sort_by_key(|c| std::cmp::Reverse(c.number.unwrap_or(i64::MAX)));
    for c in extras {
        stop_and_remove(docker, c, spec.stop_timeout).await?;
    }
    // New containers next: capacity is added before any is disrupted. They
    // copy compose's bookkeeping from a kept replica that stays as it is.
    let template = keep.values().copied().find(|c| !outdated.iter().any(|o| o.id == c.id) && c.labels.contains_key(PROJECT_LABEL));
    let template_hash = template
        .filter(|t| hashed_config_identical(spec, t, images.get(&t.image_id).unwrap_or(&none)))
        .and_then(|t| t.labels.get(CONFIG_HASH_LABEL))
        .map(String::as_str);
    let new_labels = compose_labels(template, &maker.image_id, template_hash.or(maker.compose_hash()));
    let from = Lineage { compose_labels: new_labels, volumes: Vec::new() };
    let creates: Vec<_> = missing.into_iter().map(|n| create_and_start(docker, spec, n, req, &from)).collect();
    futures::stream::iter(creates).buffer_unordered(CREATE_PARALLELISM).try_collect::<Vec<()>>().await?;
    // Live limit and restart-policy changes, and starting stopped
    // containers, disrupt nothing: no rollout slot. One that cannot start
    // is recreated (with the rest, in batches).
    let unstartable: Vec<Option<&Observed>> =
        try_join_all(keep.values().filter(|c| !outdated.iter().any(|o| o.id == c.id)).map(|c| async move {
            if let Some(body) = update_body(spec, c) {
                docker.update_container(&c.id, body).await.map_err(|e| docker_error(&format!("update container {}", c.name), e))?;
            }
            match c.state.as_str() {
                schema::RUNNING => Ok(None),
                "paused" => settled(&format!("unpause container {}", c.name), docker.unpause_container(&c.id).await).map(|_| None),
                _ => Ok(start(docker, &c.id).await.err().map(|_| *c)),
            }
        }))
        .await?;
    let mut outdated = outdated;
    outdated.extend(unstartable.into_iter().flatten());
    // One batch of the engine's rollout (its drains around it): only the
    // containers it names are recreated now.
    if let Some(part) = &req.part {
        outdated.retain(|c| part.contains(&c.name));
    }
    // SPEC §6: at most max_unavailable containers down at once; "P%" is
    // a share of the service's replicas.
    let batch = req.rollout.resolve(usize::try_from(spec.replicas).unwrap_or(0).max(1));
    for group in outdated.chunks(batch.max(1)) {
        maker.recreate(group).await?;
    }
    let recreated: BTreeSet<&str> = outdated.iter().map(|c| c.id.as_str()).collect();
    Ok(keep
        .values()
        .filter(|c| c.state == schema::RUNNING && update_body(spec, c).is_none() && !recreated.contains(c.id.as_str()))
        .map(|c| (*c).clone())
        .collect())
}

async fn delete(docker: &Docker, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let Some((project, service)) = identity(&req.prior) else {
        return Ok(Value::Null);
    };
    let found = list(docker, &[format!("{PROJECT_LABEL}={}", project), format!("{SERVICE_LABEL}={}", service)]).await?;
    let containers = inspect_all(docker, &found, Seen::Nothing).await?;
    let timeout = req.prior.get("stop_timeout").and_then(Value::as_i64);
    try_join_all(containers.iter().map(|c| stop_and_remove(docker, c, timeout))).await?;
    Ok(Value::Null)
}

/// Reads an existing service by `PROJECT/SERVICE`. Docker cannot relabel a
/// container, so the lineage label arrives with the next recreate; the
/// compose labels already identify the service.
pub async fn import(docker: &Docker, _addr: &InstanceAddr, id: &str, _lineage: &str) -> Result<Value, ProviderError> {
    let id_value = Value::Map(ValueMap::from([("id".to_string(), Value::from(id))]));
    let Some((project, service)) = identity(&id_value) else {
        return Err(ProviderError::invalid(format!("docker_service import id must be PROJECT/SERVICE, not {id:?}")));
    };
    let found = list(docker, &[format!("{PROJECT_LABEL}={}", project), format!("{SERVICE_LABEL}={}", service)]).await?;
    if found.is_empty() {
        return Err(ProviderError::not_found(format!("no containers carry the compose labels of {id}")));
    }
    observe_service(docker, &project, &service, &found, &[], &Value::Null).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(number: i64, env: &[&str], labels: &[(&str, &str)]) -> Observed {
        Observed {
            id: format!("id{number}"),
            name: format!("erp-w-{number}"),
            number: Some(number),
            running: true,
            image: "busybox".into(),
            image_id: "sha256:img".into(),
            command: vec!["sleep".into(), "3600".into()],
            env: env.iter().map(|s| s.to_string()).collect(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            network_mode: "none".into(),
            ..Default::default()
        }
    }

    fn image() -> ImageDefaults {
        ImageDefaults { env: vec!["PATH=/bin".into()], labels: BTreeMap::from([("maintainer".to_string(), "x".to_string())]) }
    }

    #[test]
    fn compose_containers_report_only_their_own_env_and_labels() {
        let c = container(
            1,
            &["PATH=/bin", "A=1"],
            &[(PROJECT_LABEL, "erp"), ("com.docker.compose.config-hash", "abc"), ("maintainer", "x"), ("tier", "web")],
        );
        let cfg = service_config(&c, &image());
        assert_eq!(cfg.env, BTreeMap::from([("A".to_string(), "1".to_string())]));
        assert_eq!(cfg.labels, BTreeMap::from([("tier".to_string(), "web".to_string())]));
    }

    #[test]
    fn recorded_keys_keep_a_user_value_equal_to_the_image_default() {
        let c = container(
            1,
            &["PATH=/bin", "A=1"],
            &[(ENV_KEYS_LABEL, r#"["A","PATH"]"#), (LABEL_KEYS_LABEL, r#"["maintainer"]"#), ("maintainer", "x")],
        );
        let cfg = service_config(&c, &image());
        assert_eq!(cfg.env.len(), 2);
        assert_eq!(cfg.labels.len(), 1);
    }

    #[test]
    fn a_half_finished_rollout_reports_the_outdated_container() {
        let mut old = container(2, &[], &[]);
        old.command = vec!["sleep".into(), "1".into()];
        let new = container(1, &[], &[]);
        let images = HashMap::from([("sha256:img".to_string(), image())]);
        let prior = service_attrs("erp", "w", std::slice::from_ref(&new), &images, &Value::Null);
        let attrs = service_attrs("erp", "w", &[new, old], &images, &prior);
        assert_eq!(attrs.get("command").map(ToString::to_string).as_deref(), Some("[\"sleep\", \"1\"]"));
        assert_eq!(attrs.get("replicas").and_then(Value::as_i64), Some(2));
        assert_eq!(attrs.get("id").and_then(Value::as_str), Some("erp/w"));
    }

    #[test]
    fn limits_update_only_when_a_set_limit_differs_and_swap_follows_memory() {
        let have = Limits { memory: Some(64 << 20), ..Default::default() };
        assert!(limits_update(&Limits::default(), &have).is_none());
        assert!(limits_update(&have, &have).is_none());
        let want = Limits { memory: Some(128 << 20), nano_cpus: Some(500_000_000), ..Default::default() };
        let body = limits_update(&want, &have).expect("update");
        assert_eq!(body.memory_swap, Some(256 << 20));
        assert_eq!(body.nano_cpus, Some(500_000_000));
    }

    #[test]
    fn dropping_a_limit_or_changing_config_needs_a_recreate() {
        let spec = ServiceSpec {
            project: "erp".into(),
            service: "w".into(),
            replicas: 1,
            image: "busybox".into(),
            command: Some(vec!["sleep".into(), "3600".into()]),
            env: BTreeMap::new(),
            labels: BTreeMap::new(),
            network_mode: Some("none".into()),
            limits: Limits::default(),
            stop_timeout: None,
            restart: None,
            compose_hash: None,
        };
        let c = container(1, &["PATH=/bin"], &[]);
        let mut c = c;
        c.restart = "no".into();
        c.state = "running".into();
        assert!(hashed_config_identical(&spec, &c, &image()));
        let mut restarting = spec.clone();
        restarting.restart = Some("always".into());
        assert!(!hashed_config_identical(&restarting, &c, &image()));
        assert!(!needs_recreate(&spec, &c, &image()));
        let mut limited = c.clone();
        limited.limits.memory = Some(64 << 20);
        assert!(needs_recreate(&spec, &limited, &image()));
        let mut other = spec.clone();
        other.command = None;
        other.network_mode = None;
        assert!(!needs_recreate(&other, &c, &image()));
        other.image = "busybox:2".into();
        assert!(needs_recreate(&other, &c, &image()));
    }

    #[test]
    fn new_replicas_copy_only_compose_bookkeeping() {
        let t = container(
            1,
            &[],
            &[
                (PROJECT_LABEL, "erp"),
                ("com.docker.compose.version", "2.40.3"),
                (CONFIG_HASH_LABEL, "old"),
                ("com.docker.compose.replace", "x"),
                (TOKEN_LABEL, "tok"),
                (NUMBER_LABEL, "1"),
            ],
        );
        let labels = compose_labels(Some(&t), "sha256:img", None);
        assert_eq!(labels.keys().map(String::as_str).collect::<Vec<_>>(), vec![IMAGE_LABEL, PROJECT_LABEL, "com.docker.compose.version"]);
        assert_eq!(compose_labels(Some(&t), "", Some("h")).get(CONFIG_HASH_LABEL).map(String::as_str), Some("h"));
    }

    #[test]
    fn service_state_counts_containers_not_running() {
        let mut a = container(1, &[], &[]);
        a.state = "running".into();
        let mut b = container(2, &[], &[]);
        b.state = "exited".into();
        assert_eq!(service_state(&[a.clone()]), "running");
        assert_eq!(service_state(&[a, b]), "1 of 2 not running");
    }

    #[test]
    fn identity_comes_from_attributes_or_id() {
        let v = Value::Map(ValueMap::from([("id".to_string(), Value::from("erp/w"))]));
        assert_eq!(identity(&v), Some(("erp".into(), "w".into())));
        assert_eq!(identity(&Value::Null), None);
        let bad = Value::Map(ValueMap::from([("id".to_string(), Value::from("erp"))]));
        assert_eq!(identity(&bad), None);
    }
}
