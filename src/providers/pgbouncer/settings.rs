//! The `pgbouncer` resource: one PgBouncer's ini file and live settings.
//! Read overlays the console's live values on the file; apply renders the
//! ini atomically, sends `RELOAD` and checks that the console reports the
//! declared values (resuming a database an interrupted drain left paused);
//! a drain `PAUSE`s the databases on a disrupted host and a restore
//! `RESUME`s them; import reads a file by its path.
//!
//! Owns the order of file writes and console calls; the attribute mapping
//! is [`schema`]'s, the ini text [`config`]'s, the console [`client`]'s.
//! Must not restart or signal PgBouncer, and must not put the admin URL in
//! an error or a plain-text attribute.

use super::client::Console;
use super::{config, schema};
use crate::providers::shared::files;
use himaplan_engine::provider::{ApplyRequest, DrainRequest, ProviderError};
use himaplan_engine::value::Value;
use std::path::Path;
use std::time::Duration;

/// The resource's `config_file`, its id.
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

/// Writes the file of a create or update, reloads, and checks the result.
pub async fn apply(req: &ApplyRequest) -> Result<Value, ProviderError> {
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
    // A database left paused (an interrupted drain) is resumed unless the
    // configuration says paused.
    for (name, body) in planned.get("database").and_then(Value::as_map).into_iter().flatten() {
        let want = body.get("paused").and_then(Value::as_bool).unwrap_or(false);
        let live = dbs.get(name).is_some_and(schema::is_paused);
        match (want, live) {
            (false, true) => console.resume(name).await?,
            (true, false) => console.pause(url, name, pause_timeout(planned)).await?,
            _ => {}
        }
    }
    let mut attrs = planned.as_map().cloned().unwrap_or_default();
    attrs.insert("id".into(), Value::from(path));
    // Keep the mark: the returned attributes go to state, which hashes it.
    if let Some(url) = attrs.remove("admin_url") {
        attrs.insert("admin_url".into(), url.into_sensitive());
    }
    Ok(Value::Map(attrs))
}

/// How long a `PAUSE` may wait, from the resource's `pause_timeout`.
fn pause_timeout(attrs: &Value) -> Duration {
    let seconds = attrs.get("pause_timeout").and_then(Value::as_f64).unwrap_or(schema::DEFAULT_PAUSE_TIMEOUT as f64);
    Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0))
}

/// Pauses the drained databases (or resumes them) on the console the
/// configuration names; returns state's attributes with `paused` set.
pub async fn drain(req: &DrainRequest) -> Result<Value, ProviderError> {
    let planned = &req.request.planned;
    let url = planned.get("admin_url").and_then(Value::as_str).ok_or_else(|| ProviderError::invalid("pgbouncer: admin_url is missing"))?;
    let console = Console::connect(url).await?;
    for db in &req.entries {
        if req.restore {
            console.resume(db).await?;
        } else {
            console.pause(url, db, pause_timeout(planned)).await?;
        }
    }
    let mut attrs = req.request.prior.as_map().cloned().unwrap_or_default();
    if let Some(Value::Map(databases)) = attrs.get_mut("database") {
        for db in &req.entries {
            if let Some(Value::Map(body)) = databases.get_mut(db) {
                body.insert("paused".into(), Value::Bool(!req.restore));
            }
        }
    }
    Ok(Value::Map(attrs))
}

/// Refreshes one instance with the console at `url`; `None` when its file
/// is gone, whatever the console says.
pub async fn read(prior: &Value, url: impl FnOnce() -> Result<String, ProviderError>) -> Result<Option<Value>, ProviderError> {
    let path = config_file(prior)?;
    if !Path::new(path).exists() {
        return Ok(None);
    }
    let url = url()?;
    // Report the prior admin_url (plain-marked or the state's hash):
    // the secret cannot be read back from PgBouncer.
    let admin_url = match prior.get("admin_url") {
        Some(v @ Value::String(_)) => v.clone().into_sensitive(),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    let mut found = read_one(path, &url, admin_url).await?;
    // Not PgBouncer's setting but the drain's: kept as configured.
    if let (Some(Value::Map(attrs)), Some(t)) = (&mut found, prior.get("pause_timeout")) {
        attrs.insert("pause_timeout".into(), t.clone());
    }
    Ok(found)
}

/// Reads the file at `id` and the console at `url` for `import`.
pub async fn import(id: &str, url: &str) -> Result<Value, ProviderError> {
    let mut found = read_one(id, url, Value::from(url).into_sensitive()).await?;
    if let Some(Value::Map(attrs)) = &mut found {
        attrs.insert("pause_timeout".into(), Value::from(schema::DEFAULT_PAUSE_TIMEOUT));
    }
    found.ok_or_else(|| ProviderError::not_found(format!("pgbouncer: {id} does not exist")))
}
