//! The `docker` provider: `docker_service`, the containers of one compose
//! service, through the Docker Engine API (bollard).
//!
//! Owns the provider's connection (one negotiated bollard client, made by
//! `configure`) and dispatches the engine's calls to [`service`]. Files:
//! [`schema`] (what the resource looks like, offline judgements), [`client`]
//! (connection and error classification), [`service`] (container calls).
//! Must not print, keep state of its own between calls, create networks, or
//! talk to any daemon but the configured one.

pub mod client;
pub mod schema;
pub mod service;

use crate::providers::shared::ServedTypes;
use async_trait::async_trait;
use bollard::Docker;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyRequest, ChangeShape, ConfigProblem, Provider, ProviderError, ReadRequest, ReadResponse, ResourceType, Schema,
};
use himaplan_engine::value::Value;
use tokio::sync::OnceCell;

/// The `docker` provider.
#[derive(Debug, Default)]
pub struct DockerProvider {
    docker: OnceCell<Docker>,
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

    fn provider_schema(&self) -> Schema {
        schema::provider_schema()
    }

    fn validate(&self, rtype: &str, config: &Value) -> Vec<ConfigProblem> {
        match rtype {
            schema::SERVICE_TYPE => schema::validate_service(config),
            _ => Vec::new(),
        }
    }

    fn shape_change(&self, rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
        match rtype {
            schema::SERVICE_TYPE => schema::shape_service_change(prior, planned, changed),
            _ => ChangeShape::default(),
        }
    }

    async fn configure(&self, config: &Value) -> Result<(), ProviderError> {
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

    async fn import(&self, rtype: &str, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
        SERVED.check(rtype)?;
        service::import(self.docker()?, addr, id, lineage).await
    }
}
