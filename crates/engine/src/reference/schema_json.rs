//! `himaplan providers schema --json`: every provider's schemas in the
//! shape of `terraform providers schema -json` (format 1.0): providers
//! keyed by address, each with its `provider` block and `resource_schemas`;
//! a block has `attributes` (type in cty's JSON type syntax, `required` /
//! `optional` / `computed`, `sensitive`, `description`) and `block_types`
//! (`nesting_mode` `single`, `list` or `map` for labelled blocks).

use crate::provider::{AttrType, BlockNesting, Registry, Schema};
use serde_json::{Map, Value, json};

/// The address a provider is keyed by, like Terraform's
/// `registry.terraform.io/hashicorp/aws`: every provider is built into the
/// binary, so the host is himaplan's own.
pub fn provider_address(name: &str) -> String {
    format!("himaplan.io/builtin/{name}")
}

/// The whole document.
pub fn schema_json(registry: &Registry) -> Value {
    let mut providers = Map::new();
    for (name, provider) in registry.providers() {
        let mut resources = Map::new();
        for rt in provider.resource_types() {
            let mut block = block(&rt.schema);
            let summary = provider.type_docs(rt.name).summary;
            if !summary.is_empty() {
                block.insert("description".into(), Value::String(summary.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
            resources.insert(rt.name.to_string(), json!({ "version": rt.schema_version, "block": block }));
        }
        providers.insert(
            provider_address(name),
            json!({
                "provider": { "version": 0, "block": block(&provider.provider_schema()) },
                "resource_schemas": resources,
            }),
        );
    }
    json!({ "format_version": "1.0", "provider_schemas": providers })
}

/// cty's JSON type syntax: `"string"`, `["list","string"]`, `"dynamic"`.
fn cty_type(ty: &AttrType) -> Value {
    match ty {
        AttrType::String => json!("string"),
        AttrType::Number => json!("number"),
        AttrType::Bool => json!("bool"),
        AttrType::List(inner) => json!(["list", cty_type(inner)]),
        AttrType::Map(inner) => json!(["map", cty_type(inner)]),
        AttrType::Any => json!("dynamic"),
    }
}

fn block(schema: &Schema) -> Map<String, Value> {
    let mut out = Map::new();
    let mut attributes = Map::new();
    for a in &schema.attributes {
        let mut attr = Map::new();
        attr.insert("type".into(), cty_type(&a.ty));
        if !a.description.is_empty() {
            attr.insert("description".into(), Value::String(a.description.to_string()));
        }
        attr.insert("description_kind".into(), json!("plain"));
        if a.required {
            attr.insert("required".into(), json!(true));
        }
        if !a.required && !a.computed {
            attr.insert("optional".into(), json!(true));
        }
        if a.computed || a.optional_computed {
            attr.insert("computed".into(), json!(true));
        }
        if a.sensitive {
            attr.insert("sensitive".into(), json!(true));
        }
        attributes.insert(a.name.to_string(), Value::Object(attr));
    }
    if !attributes.is_empty() {
        out.insert("attributes".into(), Value::Object(attributes));
    }
    let mut block_types = Map::new();
    for b in &schema.blocks {
        let mode = match b.nesting {
            BlockNesting::Single => "single",
            BlockNesting::List => "list",
            BlockNesting::Labelled => "map",
        };
        let mut inner = block(&b.body);
        if !b.description.is_empty() {
            inner.insert("description".into(), Value::String(b.description.to_string()));
        }
        block_types.insert(b.name.to_string(), json!({ "nesting_mode": mode, "block": inner }));
    }
    if !block_types.is_empty() {
        out.insert("block_types".into(), Value::Object(block_types));
    }
    out.insert("description_kind".into(), json!("plain"));
    out
}
