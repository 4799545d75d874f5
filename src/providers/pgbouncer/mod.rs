//! The `pgbouncer` provider: one PgBouncer's ini file and live settings
//! (`pgbouncer` resource, SPEC §4).
//!
//! Files: [`schema`] (attributes, offline judgements, attrs ↔ ini),
//! [`config`] (ini text), [`admin`] (admin console). Apply renders the ini
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

pub mod admin;
pub mod config;
pub mod schema;

use crate::providers::files;
use admin::Console;
use async_trait::async_trait;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyAction, ApplyRequest, ChangeShape, ConfigProblem, Provider, ProviderError, ReadRequest, ReadResponse, ResourceType, Schema,
};
use himaplan_engine::value::Value;
use std::path::Path;
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
    /// text (e.g. just applied), else the provider block's, else the
    /// environment's.
    fn read_url(&self, prior: &Value) -> Result<String, ProviderError> {
        if let Some(url) = prior.get("admin_url").and_then(Value::as_str) {
            return Ok(url.to_string());
        }
        if let Some(url) = self.admin_url.lock().ok().and_then(|g| g.clone()) {
            return Ok(url);
        }
        std::env::var(ADMIN_URL_ENV).map_err(|_| {
            ProviderError::invalid(format!(
                "pgbouncer: state keeps only a hash of admin_url, so refreshing needs the admin console's URL: \
                 set admin_url in provider \"pgbouncer\" {{}} or {ADMIN_URL_ENV}"
            ))
        })
    }
}

fn check_type(rtype: &str) -> Result<(), ProviderError> {
    if rtype == schema::PGBOUNCER_TYPE {
        Ok(())
    } else {
        Err(ProviderError::other(format!("the pgbouncer provider has no resource type {rtype:?}")))
    }
}

fn config_file(attrs: &Value) -> Result<&str, ProviderError> {
    attrs
        .get("config_file")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::invalid("pgbouncer: config_file is missing"))
}

fn io_error(doing: &str, path: &str, e: std::io::Error) -> ProviderError {
    ProviderError::other(format!("pgbouncer: {doing} {path}: {e}")).with_source(e)
}

/// Reads one file and the console; `None` when the file is missing.
async fn read_one(path: &str, url: &str, admin_url: Value) -> Result<Option<Value>, ProviderError> {
    let Some(text) = files::read_optional(Path::new(path)).map_err(|e| io_error("reading", path, e))? else {
        return Ok(None);
    };
    let ini = config::parse(&text).map_err(|e| ProviderError::invalid(format!("pgbouncer: {path}: {e}")))?;
    let console = Console::connect(url).await?;
    let live = console.show_config().await?;
    let dbs = console.show_databases().await?;
    Ok(Some(schema::to_attrs(&ini, &live, &dbs, path, admin_url)))
}

async fn apply_config(req: &ApplyRequest) -> Result<Value, ProviderError> {
    let planned = &req.planned;
    let path = config_file(planned)?;
    let url = planned.get("admin_url").and_then(Value::as_str).ok_or_else(|| ProviderError::invalid("pgbouncer: admin_url is missing"))?;
    let ini = schema::to_ini(planned).map_err(|e| ProviderError::invalid(format!("pgbouncer: {e}")))?;
    let text = config::render(&ini);
    // Connect before touching the file: an unreachable console should fail
    // the apply with the file unchanged.
    let console = Console::connect(url).await?;
    let previous = files::read_optional(Path::new(path)).map_err(|e| io_error("reading", path, e))?;
    if previous.as_deref() != Some(text.as_str()) {
        files::write_atomic(Path::new(path), text.as_bytes()).map_err(|e| io_error("writing", path, e))?;
    }
    // Always reload, even with an unchanged file: that is what undoes a
    // runtime SET found as drift.
    console.reload().await?;
    let live = console.show_config().await?;
    let dbs = console.show_databases().await?;
    if let Some((key, wanted, got)) = schema::first_mismatch(&ini, &live, &dbs) {
        return Err(ProviderError::invalid(format!(
            "pgbouncer: after RELOAD of {path}, {key} is {got:?} but the configuration wants {wanted:?} \
             (PgBouncer's log says why it kept the old value)"
        )));
    }
    let mut attrs = planned.as_map().cloned().unwrap_or_default();
    attrs.insert("id".into(), Value::from(path));
    // Keep the mark: the returned attributes go to state, which hashes it.
    if let Some(url) = attrs.remove("admin_url") {
        attrs.insert("admin_url".into(), url.into_sensitive());
    }
    Ok(Value::Map(attrs))
}

#[async_trait]
impl Provider for PgbouncerProvider {
    fn name(&self) -> &'static str {
        "pgbouncer"
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        schema::resource_types()
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
        check_type(&req.rtype)?;
        let mut current = Vec::with_capacity(req.items.len());
        for item in &req.items {
            let path = config_file(&item.prior)?;
            // A missing file is a gone object, whatever the console says.
            if !Path::new(path).exists() {
                current.push(None);
                continue;
            }
            let url = self.read_url(&item.prior)?;
            // Report the prior admin_url (plain-marked or the state's hash):
            // the secret cannot be read back from PgBouncer.
            let admin_url = match item.prior.get("admin_url") {
                Some(v @ Value::String(_)) => v.clone().into_sensitive(),
                Some(v) => v.clone(),
                None => Value::Null,
            };
            current.push(read_one(path, &url, admin_url).await?);
        }
        Ok(ReadResponse { current, others: Vec::new() })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        check_type(&req.rtype)?;
        match req.action {
            // Forget only: see the module documentation.
            ApplyAction::Delete => Ok(Value::Null),
            ApplyAction::Create | ApplyAction::Update => apply_config(&req).await,
        }
    }

    async fn import(&self, rtype: &str, _addr: &InstanceAddr, id: &str, _lineage: &str) -> Result<Value, ProviderError> {
        check_type(rtype)?;
        let url = self.read_url(&Value::Null)?;
        read_one(id, &url, Value::from(url.as_str()).into_sensitive())
            .await?
            .ok_or_else(|| ProviderError::not_found(format!("pgbouncer: {id} does not exist")))
    }
}
