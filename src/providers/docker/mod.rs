//! The `docker` provider: `docker_service`, the containers of one compose
//! service, through the Docker Engine API (bollard).
//!
//! Owns the provider's connection (one negotiated bollard client, made by
//! `configure`) and dispatches the engine's calls to [`service`]. Files:
//! [`schema`] (what the resource looks like, offline judgements), [`client`]
//! (connection and error classification), [`service`] (container calls),
//! [`compose`] (the Compose v2 CLI, at plan time only).
//! Must not print, keep state of its own between calls, create networks, or
//! talk to any daemon but the configured one.

pub mod client;
pub mod compose;
pub mod probe;
pub mod schema;
pub mod service;

use crate::providers::shared::ServedTypes;
use async_trait::async_trait;
use bollard::Docker;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyRequest, ChangeShape, ConfigProblem, DesiredItem, Member, Provider, ProviderError, ReadRequest, ReadResponse, ResourceType, Schema,
};
use himaplan_engine::value::Value;
use tokio::sync::OnceCell;

/// The `docker` provider.
#[derive(Debug, Default)]
pub struct DockerProvider {
    docker: OnceCell<Docker>,
    /// `provider "docker" { compose_bin }`, kept from `configure`.
    compose_bin: std::sync::OnceLock<Option<String>>,
}

impl DockerProvider {
    pub fn new() -> Self {
        DockerProvider::default()
    }

    fn docker(&self) -> Result<&Docker, ProviderError> {
        self.docker.get().ok_or_else(|| ProviderError::other("the docker provider was used before it was configured"))
    }
}

/// The resource types this provider serves.
const SERVED: ServedTypes = ServedTypes { provider: "docker", types: &[schema::SERVICE_TYPE] };

#[async_trait]
impl Provider for DockerProvider {
    fn adopts_by_identity(&self, rtype: &str) -> bool {
        rtype == "docker_service"
    }

    fn name(&self) -> &'static str {
        "docker"
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        schema::resource_types()
    }

    fn type_docs(&self, rtype: &str) -> himaplan_engine::provider::TypeDocs {
        schema::type_docs(rtype)
    }

    fn provider_schema(&self) -> Schema {
        schema::provider_schema()
    }

    fn validate(&self, rtype: &str, config: &Value) -> Vec<ConfigProblem> {
        match rtype {
            schema::SERVICE_TYPE => schema::validate_service(config),
            _ => Vec::new(),
        }
    }

    fn wants_adjust(&self) -> bool {
        true
    }

    /// For services naming a `compose_file`: runs compose's `config` (local,
    /// no daemon) and records its hash in `compose_hash` when the file
    /// agrees with the declaration, else `""` and notes naming what
    /// disagrees. The plan keeps the result; apply only reads it.
    fn adjust_desired(&self, _at: chrono::DateTime<chrono::Utc>, items: &mut [DesiredItem]) -> Vec<(usize, ConfigProblem)> {
        let bin = compose::binary(self.compose_bin.get().and_then(|b| b.as_deref()));
        let mut problems = Vec::new();
        for (i, item) in items.iter_mut().enumerate().filter(|(_, it)| it.rtype == schema::SERVICE_TYPE) {
            match adjust_for_compose(&bin, item) {
                Ok(()) => {}
                Err(message) => problems.push((i, ConfigProblem { attribute: Some("compose_file".into()), message })),
            }
        }
        problems
    }

    fn shape_change(&self, rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
        match rtype {
            schema::SERVICE_TYPE => schema::shape_service_change(prior, planned, changed),
            _ => ChangeShape::default(),
        }
    }

    /// A recreate replaces the containers one batch at a time: each kept
    /// container (number within the planned replicas) is a member, so the
    /// engine drains exactly the batch it recreates.
    fn members(&self, rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> Vec<Member> {
        if rtype != schema::SERVICE_TYPE || schema::shape_service_change(prior, planned, changed).disruption.is_none() {
            return Vec::new();
        }
        let replicas = planned.get("replicas").and_then(Value::as_f64).unwrap_or(0.0);
        let containers = prior.get("containers").and_then(Value::as_list).unwrap_or_default();
        containers
            .iter()
            .enumerate()
            .filter(|(_, c)| c.get("number").and_then(Value::as_f64).is_some_and(|n| n >= 1.0 && n <= replicas))
            .filter_map(|(index, c)| {
                let name = c.get("name").and_then(Value::as_str)?.to_string();
                Some(Member { name, attribute: "containers".into(), index })
            })
            .collect()
    }

    async fn configure(&self, config: &Value) -> Result<(), ProviderError> {
        let bin = config.get("compose_bin").and_then(Value::as_str).map(str::to_string);
        let _ = self.compose_bin.set(bin);
        // The engine configures once; a second call keeps the first client.
        self.docker.get_or_try_init(|| client::connect(config)).await.map(drop)
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        SERVED.check(&req.rtype)?;
        service::read(self.docker()?, &req).await
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        SERVED.check(&req.rtype)?;
        service::apply(self.docker()?, &req).await
    }

    /// `value` is the gated container (`name`, `number`, `id`), or a whole
    /// service (a created one): then the command must pass in each container.
    async fn probe(&self, rtype: &str, value: &Value, command: &[String]) -> Result<String, String> {
        SERVED.check(rtype).map_err(|e| e.to_string())?;
        let docker = self.docker().map_err(|e| e.to_string())?;
        if let Some(name) = value.get("name").and_then(Value::as_str) {
            return probe::run(docker, name, command).await;
        }
        let names: Vec<&str> = value
            .get("containers")
            .and_then(Value::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .collect();
        let mut passed = Vec::new();
        for name in names {
            passed.push(probe::run(docker, name, command).await?);
        }
        Ok(passed.join("; "))
    }

    async fn import(&self, rtype: &str, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
        SERVED.check(rtype)?;
        service::import(self.docker()?, addr, id, lineage).await
    }
}

/// One service's compose comparison (see [`DockerProvider::adjust_desired`]).
fn adjust_for_compose(bin: &std::path::Path, item: &mut DesiredItem) -> Result<(), String> {
    let Some(file) = item.config.get("compose_file").and_then(Value::as_str).map(str::to_string) else { return Ok(()) };
    let text = |k: &str| item.config.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(project), Some(service)) = (text("project"), text("service")) else { return Ok(()) };
    // Applying a saved plan: its hash was computed when it was planned.
    if let Some(hash) = item.saved.as_ref().and_then(|s| s.get("compose_hash")).filter(|h| h.as_str().is_some()).cloned() {
        if let Value::Map(m) = &mut item.config {
            m.insert("compose_hash".into(), hash);
        }
        return Ok(());
    }
    let found = compose::load(bin, std::path::Path::new(&file), &project, &service)?;
    if let Some(why) = compose::refusal(&found.config) {
        return Err(format!("{file}: {why}"));
    }
    let disagree = compose::disagreements(&item.config, &found.config);
    let replicas = item.config.get("replicas").and_then(Value::as_i64).unwrap_or(1);
    let hash = if disagree.is_empty() { found.hash.clone() } else { String::new() };
    if let Value::Map(m) = &mut item.config {
        m.insert("compose_hash".into(), Value::from(hash.as_str()));
    }
    if !disagree.is_empty() {
        item.notes.push(format!("{file} disagrees with the declaration: {}", disagree.join("; ")));
        item.notes.push(schema::compose_warning(replicas, &project, &service, &file));
        return Ok(());
    }
    // The file agrees: containers himaplan keeps as they are but that carry
    // another hash are recreated by the next `docker compose up`.
    if let Some(prior) = &item.prior
        && compose::hashed_changes(&item.config, prior).is_empty()
    {
        let stale = prior
            .get("containers")
            .and_then(Value::as_list)
            .map(|cs| cs.iter().filter(|c| c.get("config_hash").and_then(Value::as_str) != Some(found.hash.as_str())).count())
            .unwrap_or(0);
        if stale > 0 {
            item.notes.push(format!(
                "{} (they carry another config hash than compose's {})",
                schema::compose_warning(stale as i64, &project, &service, &file),
                &found.hash[..12.min(found.hash.len())]
            ));
        }
    }
    Ok(())
}
