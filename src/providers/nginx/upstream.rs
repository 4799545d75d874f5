//! The `nginx_upstream` resource: reading the upstream block back from the
//! include file, writing it (test, restore on refusal, reload and wait),
//! draining servers by marking them `down`, and
//! importing one by `CONFIG_FILE#NAME#NGINX_CONF[#PREFIX]`.
//!
//! Owns the resource's attribute handling and the order of file writes and
//! daemon calls; the text format is [`render`]'s, the daemon calls are
//! [`client`]'s. Must not start or stop nginx.

use super::client::Nginx;
use super::render::{self, Upstream};
use super::schema::{self, Server};
use crate::providers::shared::files;
use himaplan_engine::provider::{ApplyRequest, DrainRequest, ProviderError};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn string<'a>(attrs: &'a Value, name: &str) -> Result<&'a str, ProviderError> {
    attrs
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::invalid(format!("nginx_upstream: {name} is missing")))
}

/// A failed read or write of the include file, keeping the I/O error.
fn io_error(doing: &str, path: &str, e: std::io::Error) -> ProviderError {
    ProviderError::other(format!("nginx_upstream: {doing} {path}: {e}")).with_source(e)
}

fn nginx_of(attrs: &Value) -> Result<Nginx, ProviderError> {
    Ok(Nginx {
        bin: attrs.get("nginx_bin").and_then(Value::as_str).unwrap_or("nginx").to_string(),
        conf: PathBuf::from(string(attrs, "nginx_conf")?),
        prefix: attrs.get("nginx_prefix").and_then(Value::as_str).filter(|s| !s.is_empty()).map(PathBuf::from),
    })
}

/// The value of `servers` to report for what the file holds: the prior's
/// own value when it normalises to the same servers (so strings stay
/// strings and no drift appears), else a string per server that only
/// carries the defaults and an object per other server.
fn servers_value(found: &[Server], prior: &Value) -> Value {
    if schema::servers(prior).is_ok_and(|declared| declared == found)
        && let Some(v) = prior.get("servers")
    {
        return v.clone();
    }
    let default_fails = prior.get("max_fails").and_then(Value::as_i64);
    let default_timeout = prior.get("fail_timeout").and_then(Value::to_template_string);
    let items = found
        .iter()
        .map(|s| {
            if s.weight.is_none() && !s.backup && !s.down && s.max_fails == default_fails && s.fail_timeout == default_timeout {
                return Value::from(s.address.as_str());
            }
            let mut obj = BTreeMap::from([("address".to_string(), Value::from(s.address.as_str()))]);
            let mut put = |k: &str, v: Value| {
                obj.insert(k.to_string(), v);
            };
            put("weight", s.weight.map_or(Value::Null, Value::from));
            put("max_fails", s.max_fails.map_or(Value::Null, Value::from));
            put("fail_timeout", s.fail_timeout.clone().map_or(Value::Null, Value::from));
            put("backup", Value::from(s.backup));
            if s.down {
                put("down", Value::from(true));
            }
            Value::Map(obj.into())
        })
        .collect();
    Value::List(items)
}

/// Reads the upstream the prior names; `None` when the file or the block is gone.
pub fn read(prior: &Value) -> Result<Option<Value>, ProviderError> {
    let path = string(prior, "config_file")?;
    let name = string(prior, "name")?;
    let Some(text) = files::read_optional(Path::new(path)).map_err(|e| io_error("reading", path, e))? else {
        return Ok(None);
    };
    let Some(found) = render::parse(&text, name) else { return Ok(None) };
    let mut attrs = prior.as_map().cloned().unwrap_or_default();
    attrs.insert("method".into(), Value::from(found.method.as_str()));
    attrs.insert("servers".into(), servers_value(&found.servers, prior));
    attrs.insert("id".into(), Value::from(path));
    Ok(Some(Value::Map(attrs)))
}

/// Writes the upstream of a create or update and makes nginx serve it.
pub async fn apply(req: &ApplyRequest) -> Result<Value, ProviderError> {
    let planned = &req.planned;
    let upstream = Upstream {
        name: string(planned, "name")?.to_string(),
        method: planned.get("method").and_then(Value::as_str).unwrap_or("least_conn").to_string(),
        servers: schema::servers(planned).map_err(|e| ProviderError::invalid(format!("nginx_upstream: {e}")))?,
    };
    write(planned, &upstream).await?;
    let mut attrs = planned.as_map().cloned().unwrap_or_default();
    attrs.insert("id".into(), Value::from(string(planned, "config_file")?));
    Ok(Value::Map(attrs))
}

/// Marks the drained servers `down` (or back up) in the upstream as state
/// holds it, and makes nginx serve that; every other line stays as it is.
pub async fn drain(req: &DrainRequest) -> Result<Value, ProviderError> {
    let current = &req.request.prior;
    let mut servers = schema::servers(current).map_err(|e| ProviderError::invalid(format!("nginx_upstream: {e}")))?;
    for s in servers.iter_mut().filter(|s| req.entries.contains(&s.address)) {
        s.down = !req.restore;
    }
    let upstream = Upstream {
        name: string(current, "name")?.to_string(),
        method: current.get("method").and_then(Value::as_str).unwrap_or("least_conn").to_string(),
        servers,
    };
    write(current, &upstream).await?;
    let mut attrs = current.as_map().cloned().unwrap_or_default();
    attrs.insert("servers".into(), servers_value(&upstream.servers, current));
    Ok(Value::Map(attrs))
}

/// Writes `upstream` into the include file `attrs` names, has nginx test
/// the whole configuration (restoring the file when it refuses), then
/// reloads and waits for the old workers.
async fn write(attrs: &Value, upstream: &Upstream) -> Result<(), ProviderError> {
    let path = string(attrs, "config_file")?;
    if upstream.servers.is_empty() {
        return Err(ProviderError::invalid("nginx_upstream: servers is empty, and nginx refuses an upstream without servers"));
    }
    let nginx = nginx_of(attrs)?;
    let text = render::render(upstream);
    let previous = files::read_optional(Path::new(path)).map_err(|e| io_error("reading", path, e))?;
    if previous.as_deref() != Some(text.as_str()) {
        files::write_atomic(Path::new(path), text.as_bytes()).map_err(|e| io_error("writing", path, e))?;
    }
    if let Err(message) = nginx.test().await {
        files::restore(Path::new(path), previous.as_deref()).map_err(|e| io_error("restoring", path, e))?;
        return Err(ProviderError::invalid(format!("nginx_upstream: nginx rejected the configuration; {path} was restored: {message}")));
    }
    // Reload even when the file was unchanged: the file may have been
    // edited and never reloaded, and a reload of an identical file is cheap.
    nginx.reload_and_wait().await
}

/// Reads an existing upstream for `import`; the id names the include
/// file, the upstream and the daemon's main configuration, since an include
/// file alone does not say which daemon runs it.
pub fn import(id: &str) -> Result<Value, ProviderError> {
    let parts: Vec<&str> = id.split('#').collect();
    let (file, name, conf) = match parts.as_slice() {
        [file, name, conf] | [file, name, conf, _] => (*file, *name, *conf),
        _ => {
            return Err(ProviderError::invalid(format!(
                "nginx_upstream: import id must be CONFIG_FILE#NAME#NGINX_CONF[#PREFIX], not {id:?}"
            )));
        }
    };
    let prior = Value::Map(ValueMap::from([
        ("config_file".to_string(), Value::from(file)),
        ("name".to_string(), Value::from(name)),
        ("nginx_conf".to_string(), Value::from(conf)),
        ("nginx_prefix".to_string(), parts.get(3).map_or(Value::Null, |p| Value::from(*p))),
        ("nginx_bin".to_string(), Value::from("nginx")),
        ("max_fails".to_string(), Value::Null),
        ("fail_timeout".to_string(), Value::Null),
    ]));
    read(&prior)?.ok_or_else(|| ProviderError::not_found(format!("nginx_upstream: no upstream {name} in {file}")))
}
