//! The `pgbouncer` provider: one PgBouncer's ini file and live settings
//! (`pgbouncer` resource, SPEC §4).
//!
//! This file is the `Provider` impl only. Files: [`schema`] (attributes,
//! offline judgements, attrs ↔ ini), [`client`] (the admin console:
//! connection and error classification), [`settings`] (the resource's
//! read, apply and import), and [`config`] (the ini file's text format).
//! Apply renders the ini
//! atomically (keeping owner and mode), sends `RELOAD`, then checks that
//! `SHOW CONFIG` / `SHOW DATABASES` report the declared values. Read
//! overlays the console's live values on the file, so a runtime `SET` is
//! drift.
//!
//! Delete forgets: it leaves the file and the daemon as they are (a
//! PgBouncer without its ini cannot restart, and there is no "previous"
//! configuration to go back to). `others` is always empty: an ini file
//! carries no labels. Must not restart or signal PgBouncer, and must not
//! put the admin URL in an error or a plain-text attribute.

pub mod client;
pub mod config;
pub mod schema;
pub mod settings;

use crate::providers::shared::ServedTypes;
use async_trait::async_trait;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyAction, ApplyRequest, ChangeShape, ConfigProblem, DrainPlan, DrainRequest, Provider, ProviderError, ReadRequest, ReadResponse,
    ResourceType, Schema,
};
use himaplan_engine::value::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Environment variable naming the admin console when neither state nor
/// the provider block can (state keeps only a hash of `admin_url`).
pub const ADMIN_URL_ENV: &str = "PGBOUNCER_ADMIN_URL";

/// The `pgbouncer` provider.
#[derive(Debug, Default)]
pub struct PgbouncerProvider {
    /// `provider "pgbouncer" { admin_url = ... }`, used by refresh.
    admin_url: Mutex<Option<String>>,
}

impl PgbouncerProvider {
    pub fn new() -> Self {
        PgbouncerProvider::default()
    }

    /// The admin URL a refresh uses: the prior's when it is still plain
    /// text (e.g. just applied), else the resource's own configuration when
    /// it is known before refresh (it reads only variables), else the
    /// provider block's, else the environment's.
    fn read_url(&self, prior: &Value, known: &BTreeMap<String, Value>) -> Result<String, ProviderError> {
        if let Some(url) = prior.get("admin_url").and_then(Value::as_str) {
            return Ok(url.to_string());
        }
        if let Some(url) = known.get("admin_url").map(Value::unmarked).and_then(Value::as_str) {
            return Ok(url.to_string());
        }
        if let Some(url) = self.admin_url.lock().ok().and_then(|g| g.clone()) {
            return Ok(url);
        }
        std::env::var(ADMIN_URL_ENV).map_err(|_| {
            ProviderError::invalid(format!(
                "pgbouncer: state keeps only a hash of admin_url, and the resource's own admin_url is not known before refresh \
                 (it reads other resources, or the resource is no longer configured), so refreshing needs the admin console's URL: \
                 set admin_url in provider \"pgbouncer\" {{}} or {ADMIN_URL_ENV}"
            ))
        })
    }
}

/// The resource types this provider serves.
const SERVED: ServedTypes = ServedTypes { provider: "pgbouncer", types: &[schema::PGBOUNCER_TYPE] };

#[async_trait]
impl Provider for PgbouncerProvider {
    fn name(&self) -> &'static str {
        "pgbouncer"
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
            schema::PGBOUNCER_TYPE => schema::validate(config),
            _ => Vec::new(),
        }
    }

    fn shape_change(&self, rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
        match rtype {
            schema::PGBOUNCER_TYPE => schema::shape_change(prior, planned, changed),
            _ => ChangeShape::default(),
        }
    }

    async fn configure(&self, config: &Value) -> Result<(), ProviderError> {
        let url = match config.get("admin_url").map(Value::unmarked) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(ProviderError::invalid(format!(
                    "provider \"pgbouncer\": admin_url must be a string, not {}",
                    other.type_name()
                )));
            }
        };
        if let Ok(mut slot) = self.admin_url.lock() {
            *slot = url;
        }
        Ok(())
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        SERVED.check(&req.rtype)?;
        let mut current = Vec::with_capacity(req.items.len());
        for item in &req.items {
            current.push(settings::read(&item.prior, || self.read_url(&item.prior, &item.known)).await?);
        }
        Ok(ReadResponse { current, others: Vec::new() })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        SERVED.check(&req.rtype)?;
        match req.action {
            // Forget only: see the module documentation.
            ApplyAction::Delete => Ok(Value::Null),
            ApplyAction::Create | ApplyAction::Update => settings::apply(&req).await,
        }
    }

    fn drain_entries(&self, rtype: &str, config: &Value, marked: &Value) -> Option<Result<DrainPlan, String>> {
        (rtype == schema::PGBOUNCER_TYPE).then(|| schema::drain_entries(config, marked))
    }

    async fn drain(&self, req: DrainRequest) -> Result<Value, ProviderError> {
        SERVED.check(&req.request.rtype)?;
        settings::drain(&req).await
    }

    async fn import(&self, rtype: &str, _addr: &InstanceAddr, id: &str, _lineage: &str) -> Result<Value, ProviderError> {
        SERVED.check(rtype)?;
        settings::import(id, &self.read_url(&Value::Null, &BTreeMap::new())?).await
    }
}
