//! The `nginx` provider: one `upstream` block in an include file of a
//! running nginx (`nginx_upstream`, SPEC §4).
//!
//! This file is the `Provider` impl only. Files: [`schema`] (attributes,
//! servers normalisation, offline checks), [`client`] (`nginx -t`, reload,
//! worker wait), [`upstream`] (the resource's read, apply and import), and
//! [`render`] (the include file's text format). Apply writes the include file atomically (keeping owner and
//! mode), tests the whole configuration, restores the previous file and
//! fails with nginx's message when nginx rejects it, else reloads and waits
//! until the old workers are gone — so a server removed from the upstream
//! really receives no new requests once apply returns.
//!
//! A drain marks the servers that come from the disrupted members `down`
//! (nginx's own flag) and a restore clears it: the upstream keeps its shape,
//! so it never becomes empty, and refresh reports `down` in the server's
//! object.
//!
//! Delete forgets: it leaves the include file in place, because the main
//! configuration includes it and an upstream without servers is invalid,
//! so there is nothing safe to write. `others` is always empty: an include
//! file carries no labels. Must not start or stop nginx.

pub mod client;
pub mod render;
pub mod schema;
pub mod upstream;

use crate::providers::shared::ServedTypes;
use async_trait::async_trait;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyAction, ApplyRequest, ConfigProblem, DrainPlan, DrainRequest, Provider, ProviderError, ReadRequest, ReadResponse, ResourceType,
};
use himaplan_engine::value::Value;

/// The `nginx` provider.
#[derive(Debug, Default)]
pub struct NginxProvider;

impl NginxProvider {
    pub fn new() -> Self {
        NginxProvider
    }
}

/// The resource types this provider serves.
const SERVED: ServedTypes = ServedTypes { provider: "nginx", types: &[schema::UPSTREAM_TYPE] };

#[async_trait]
impl Provider for NginxProvider {
    fn name(&self) -> &'static str {
        "nginx"
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        schema::resource_types()
    }

    fn type_docs(&self, rtype: &str) -> himaplan_engine::provider::TypeDocs {
        schema::type_docs(rtype)
    }

    fn validate(&self, rtype: &str, config: &Value) -> Vec<ConfigProblem> {
        match rtype {
            schema::UPSTREAM_TYPE => schema::validate(config),
            _ => Vec::new(),
        }
    }

    async fn configure(&self, _config: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        SERVED.check(&req.rtype)?;
        let current = req.items.iter().map(|i| upstream::read(&i.prior)).collect::<Result<_, _>>()?;
        Ok(ReadResponse { current, others: Vec::new() })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        SERVED.check(&req.rtype)?;
        match req.action {
            // Forget only: see the module documentation.
            ApplyAction::Delete => Ok(Value::Null),
            ApplyAction::Create | ApplyAction::Update => upstream::apply(&req).await,
        }
    }

    fn drain_entries(&self, rtype: &str, config: &Value, marked: &Value) -> Option<Result<DrainPlan, String>> {
        (rtype == schema::UPSTREAM_TYPE).then(|| schema::drain_entries(config, marked))
    }

    async fn drain(&self, req: DrainRequest) -> Result<Value, ProviderError> {
        SERVED.check(&req.request.rtype)?;
        upstream::drain(&req).await
    }

    /// Import takes `CONFIG_FILE#NAME#NGINX_CONF[#PREFIX]` (see [`upstream::import`]).
    async fn import(&self, rtype: &str, _addr: &InstanceAddr, id: &str, _lineage: &str) -> Result<Value, ProviderError> {
        SERVED.check(rtype)?;
        upstream::import(id)
    }
}
