//! The `kubernetes` provider: `kubernetes_deployment`, `kubernetes_hpa` and
//! `kubernetes_scale_schedule` through kube-rs, with server-side apply as
//! field manager `himaplan` (SPEC §4).
//!
//! Owns the provider's connection, made lazily on the first call that needs
//! the network (so a configuration that declares no Kubernetes objects, e.g.
//! `count = 0` without a cluster, still plans), and dispatches the engine's
//! calls. Files: [`schema`] (attributes and offline checks), [`schedule`]
//! (cron grammar, time zones, latest firing), [`desired`] (HPA ownership and
//! schedule-aware desired values), [`client`] (connection, errors, shared
//! object conventions), [`deployment`], [`hpa`], [`scale_schedule`] (API
//! calls per type). Must not print, keep state of its own between calls
//! beyond the client, or talk to any API server but the configured one.

pub mod client;
pub mod deployment;
pub mod desired;
pub mod hpa;
pub mod relabel;
pub mod scale_schedule;
pub mod schedule;
pub mod schema;

use crate::providers::shared::ServedTypes;
use async_trait::async_trait;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyRequest, ChangeShape, ConfigProblem, DesiredItem, Provider, ProviderError, ReadRequest, ReadResponse, ResourceType, Schema,
};
use himaplan_engine::value::Value;
use std::sync::Mutex;
use tokio::sync::OnceCell;

/// The `kubernetes` provider.
#[derive(Default)]
pub struct KubernetesProvider {
    connection: Mutex<Option<client::Connection>>,
    client: OnceCell<kube::Client>,
}

impl std::fmt::Debug for KubernetesProvider {
    // kube::Client is not Debug; the connection settings are what matter.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesProvider").field("connection", &self.connection).field("connected", &self.client.initialized()).finish()
    }
}

impl KubernetesProvider {
    pub fn new() -> Self {
        KubernetesProvider::default()
    }

    /// The client, connecting on first use with the configured connection
    /// (kubectl's defaults when `configure` was not called).
    async fn client(&self) -> Result<&kube::Client, ProviderError> {
        self.client
            .get_or_try_init(|| async {
                let connection = self.connection.lock().map(|c| c.clone()).unwrap_or_default().unwrap_or_default();
                connection.connect().await
            })
            .await
    }
}

/// The resource types this provider serves.
const SERVED: ServedTypes =
    ServedTypes { provider: "kubernetes", types: &[schema::DEPLOYMENT_TYPE, schema::HPA_TYPE, schema::SCHEDULE_TYPE] };

#[async_trait]
impl Provider for KubernetesProvider {
    fn name(&self) -> &'static str {
        "kubernetes"
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
        schema::validate(rtype, config)
    }

    fn shape_change(&self, rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
        schema::shape_change(rtype, prior, planned, changed)
    }

    fn wants_adjust(&self) -> bool {
        true
    }

    fn adjust_desired(&self, at: chrono::DateTime<chrono::Utc>, items: &mut [DesiredItem]) -> Vec<(usize, ConfigProblem)> {
        // The engine keeps what this changed in each instance's plan record
        // and lays it over every apply-time re-evaluation.
        desired::adjust(at, items)
    }

    async fn configure(&self, config: &Value) -> Result<(), ProviderError> {
        let connection = client::Connection::from_block(config)?;
        if let Ok(mut slot) = self.connection.lock() {
            *slot = Some(connection);
        }
        Ok(())
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        SERVED.check(&req.rtype)?;
        // Nothing requested: look for objects of the lineage only where a
        // cluster is configured and answering; a configuration without
        // Kubernetes objects must not need one.
        let nothing_requested = req.items.is_empty();
        let client = match self.client().await {
            Ok(c) => c,
            Err(_) if nothing_requested => return Ok(ReadResponse::default()),
            Err(e) => return Err(e),
        };
        let result = match req.rtype.as_str() {
            schema::DEPLOYMENT_TYPE => deployment::read(client, &req).await,
            schema::HPA_TYPE => hpa::read(client, &req).await,
            _ => scale_schedule::read(client, &req).await,
        };
        match result {
            Err(_) if nothing_requested => Ok(ReadResponse::default()),
            other => other,
        }
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        SERVED.check(&req.rtype)?;
        let client = self.client().await?;
        match req.rtype.as_str() {
            schema::DEPLOYMENT_TYPE => deployment::apply(client, &req).await,
            schema::HPA_TYPE => hpa::apply(client, &req).await,
            _ => scale_schedule::apply(client, &req).await,
        }
    }

    fn relabel_step(&self, rtype: &str) -> Option<&'static str> {
        matches!(rtype, schema::DEPLOYMENT_TYPE | schema::HPA_TYPE).then_some("annotate himaplan.io/address")
    }

    async fn relabel(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        SERVED.check(&req.rtype)?;
        relabel::relabel(self.client().await?.clone(), &req).await
    }

    async fn import(&self, rtype: &str, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
        SERVED.check(rtype)?;
        let client = self.client().await?;
        match rtype {
            schema::DEPLOYMENT_TYPE => deployment::import(client, addr, id, lineage).await,
            schema::HPA_TYPE => hpa::import(client, addr, id, lineage).await,
            _ => scale_schedule::import(client, addr, id, lineage).await,
        }
    }
}
