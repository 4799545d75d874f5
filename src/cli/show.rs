//! `show`: a saved plan (as the reviewer saw it, or as JSON), or the
//! current state.

use super::context;
use super::{Failure, Format};
use himaplan_engine::engine::planfile::PlanFile;
use himaplan_engine::plan::render::{self, RenderOptions};
use himaplan_engine::state::{State, is_redacted};
use std::path::PathBuf;

pub async fn show(json: bool, planfile: Option<PathBuf>, state: Option<PathBuf>, color: bool) -> Result<i32, Failure> {
    if let Some(path) = planfile {
        let file = PlanFile::read(&path)?;
        let format = if json { Format::Json } else { Format::Human };
        match format {
            Format::Json => println!("{}", serde_json::to_string_pretty(&render::json(&file.plan)).unwrap_or_default()),
            _ => print!("{}", render::human(&file.plan, &RenderOptions { color })),
        }
        return Ok(0);
    }
    let store = context::store_for_state_commands(state.as_deref()).await?;
    let snapshot = store.read_state().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&state_json(&snapshot.state)).unwrap_or_default());
    } else if snapshot.state.resources.is_empty() {
        println!("The state is empty.");
    } else {
        print!("{}", state_text(&snapshot.state));
    }
    Ok(0)
}

/// Terraform-shaped JSON of the state (`show -json`).
pub fn state_json(state: &State) -> serde_json::Value {
    let resources: Vec<serde_json::Value> = state
        .resources
        .iter()
        .map(|(addr, r)| {
            let mut item = serde_json::json!({
                "address": addr.to_string(),
                "mode": "managed",
                "type": r.rtype,
                "name": addr.resource.name,
                "provider_name": r.provider,
                "schema_version": r.schema_version,
                "values": r.attributes,
                "depends_on": r.dependencies,
            });
            if let Some(key) = &addr.key {
                item["index"] = match key {
                    himaplan_engine::addr::InstanceKey::Int(i) => serde_json::json!(i),
                    himaplan_engine::addr::InstanceKey::Str(s) => serde_json::json!(s),
                };
            }
            item
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = state
        .outputs
        .iter()
        .map(|(k, o)| (k.clone(), serde_json::json!({ "sensitive": o.sensitive, "value": if o.sensitive { serde_json::Value::Null } else { o.value.clone() } })))
        .collect();
    serde_json::json!({
        "format_version": "1.0",
        "serial": state.serial,
        "lineage": state.lineage,
        "values": { "outputs": outputs, "root_module": { "resources": resources } },
    })
}

/// HCL-like text of every instance in state.
pub fn state_text(state: &State) -> String {
    let mut out = String::new();
    for (addr, r) in &state.resources {
        out.push_str(&format!("# {addr}:\nresource \"{}\" \"{}\" {{\n", r.rtype, addr.resource.name));
        out.push_str(&attributes_text(&r.attributes.json(), 1));
        out.push_str("}\n\n");
    }
    if !state.outputs.is_empty() {
        out.push_str("Outputs:\n\n");
        for (name, o) in &state.outputs {
            let v = if o.sensitive || is_redacted(&o.value) { "(sensitive value)".to_string() } else { o.value.to_string() };
            out.push_str(&format!("{name} = {v}\n"));
        }
    }
    out
}

/// Attributes as `key = value` lines, secrets hidden.
pub fn attributes_text(attrs: &serde_json::Value, depth: usize) -> String {
    let pad = "  ".repeat(depth);
    let Some(map) = attrs.as_object() else { return format!("{pad}{attrs}\n") };
    let width = map.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in map {
        let text = if is_redacted(v) {
            "(sensitive value)".to_string()
        } else {
            serde_json::to_string(v).unwrap_or_default().replace("\":", "\" = ").replace(",\"", ", \"")
        };
        out.push_str(&format!("{pad}{k:width$} = {text}\n"));
    }
    out
}
