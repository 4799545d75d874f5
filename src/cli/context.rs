//! What every command needs: the configuration of the working directory,
//! its graph, variable values, the provider registry and the state store
//! (local file, or the S3 backend).

use super::Failure;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::config::vars::{self, VarInputs};
use himaplan_engine::config::{Config, load};
use himaplan_engine::diag::{Diag, Diags};
use himaplan_engine::graph::{self, ConfigGraph};
use himaplan_engine::provider::Registry;
use himaplan_engine::state::{LocalStore, StateStore};
use himaplan_engine::value::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The loaded configuration of the working directory.
pub struct Workspace {
    pub config: Arc<Config>,
    pub graph: Arc<ConfigGraph>,
    pub registry: Registry,
}

impl Workspace {
    /// Loads and checks the configuration in the current directory.
    pub fn load() -> Result<Workspace, Failure> {
        Self::from_config(load::load_dir(Path::new("."))?)
    }

    pub fn from_config(config: Config) -> Result<Workspace, Failure> {
        let graph = graph::build(&config)?;
        Ok(Workspace { config: Arc::new(config), graph: Arc::new(graph), registry: crate::providers::registry() })
    }

    /// Root variable values from defaults, files, environment and flags.
    pub fn variables(&self, cli: &[String], files: &[PathBuf]) -> Result<BTreeMap<String, Value>, Failure> {
        Ok(vars::root_values(&self.config, &var_inputs(cli, files))?)
    }
}

/// Variable inputs from flags and the process environment.
pub fn var_inputs(cli: &[String], files: &[PathBuf]) -> VarInputs {
    VarInputs { cli: cli.to_vec(), files: files.to_vec(), env: VarInputs::env_from_process() }
}

/// Opens the state store: `--state FILE`, else the `himaplan` block's
/// setting, else `state/default.json` beside the configuration.
pub async fn open_store(config: Option<&Config>, state_flag: Option<&Path>) -> Result<Box<dyn StateStore>, Failure> {
    if let Some(path) = state_flag {
        return Ok(Box::new(LocalStore::new(path)));
    }
    if let Some(config) = config {
        if let Some(backend) = &config.settings.backend {
            return open_backend(backend).await;
        }
        if let Some(path) = &config.settings.state_path {
            return Ok(Box::new(LocalStore::new(config.root_dir.join(path))));
        }
    }
    Ok(Box::new(LocalStore::new(Path::new("state/default.json"))))
}

async fn open_backend(backend: &himaplan_engine::config::Backend) -> Result<Box<dyn StateStore>, Failure> {
    match backend.kind.as_str() {
        "s3" => {
            if let Some(unknown) = backend.attributes.keys().find(|k| !matches!(k.as_str(), "bucket" | "key" | "region")) {
                return Err(Diag::error(format!("Unsupported argument {unknown:?} in backend \"s3\""))
                    .at(backend.location.clone())
                    .with_detail(
                        "backend \"s3\" takes bucket, key and region; the endpoint comes from AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3.",
                    )
                    .into());
            }
            let get = |k: &str| backend.attributes.get(k).cloned();
            let (Some(bucket), Some(key)) = (get("bucket"), get("key")) else {
                return Err(Diag::error("backend \"s3\" needs bucket and key").at(backend.location.clone()).into());
            };
            // Without `region` the store falls back to AWS_REGION, the profile, else us-east-1.
            let store = crate::state_s3::S3Store::new(bucket, key, get("region"))
                .await
                .map_err(|e| Failure::from(Diag::error(e.to_string()).at(backend.location.clone())))?;
            Ok(Box::new(store))
        }
        other => Err(Diag::error(format!("Unsupported backend {other:?}"))
            .at(backend.location.clone())
            .with_detail("Supported backends: s3 (or the default local file).")
            .into()),
    }
}

/// Opens the store for commands that may run without a valid configuration
/// (state inspection): the configuration is used only to find the state.
pub async fn store_for_state_commands(state_flag: Option<&Path>) -> Result<Box<dyn StateStore>, Failure> {
    if state_flag.is_some() {
        return open_store(None, state_flag).await;
    }
    match load::load_dir(Path::new(".")) {
        Ok(config) => open_store(Some(&config), None).await,
        Err(_) => open_store(None, None).await,
    }
}

/// Parses addresses given on the command line.
pub fn parse_addrs(items: &[String], what: &str) -> Result<Vec<InstanceAddr>, Failure> {
    let mut diags = Diags::new();
    let mut out = Vec::new();
    for item in items {
        match item.parse::<InstanceAddr>() {
            Ok(a) => out.push(a),
            Err(e) => diags.push(
                Diag::error(format!("Invalid {what}: {e}"))
                    .with_detail("Addresses look like aws_instance.web[2] or module.db.docker_service.pg."),
            ),
        }
    }
    if diags.has_errors() { Err(diags.into()) } else { Ok(out) }
}

/// Takes the run lock, waiting up to `timeout`.
pub async fn lock(
    store: &dyn StateStore,
    operation: &str,
    timeout: Option<Duration>,
) -> Result<Box<dyn himaplan_engine::state::StateLockGuard>, Failure> {
    let timeout = timeout.unwrap_or(Duration::ZERO);
    if !timeout.is_zero() {
        eprintln!("Acquiring the state lock of {} (waiting up to {})...", store.location(), humantime::format_duration(timeout));
    }
    store.lock(operation, timeout).await.map_err(|e| {
        Failure::Diags(
            Diag::error(e.to_string())
                .with_detail("Another himaplan run holds the state lock. Wait for it, pass --lock-timeout 5m to wait, or if it died, `himaplan force-unlock ID`.")
                .into(),
        )
    })
}
