//! The built-in provider: `himaplan_data`, the counterpart of Terraform's
//! `terraform_data`. It needs no network; it records values in state and
//! triggers replacements, and it is what engine tests and benchmarks use.

use crate::addr::InstanceAddr;
use crate::provider::{
    ApplyAction, ApplyRequest, AttrSchema, AttrType, Provider, ProviderError, ReadRequest, ReadResponse, ResourceType, Schema,
};
use crate::value::{Value, ValueMap};
use async_trait::async_trait;

/// The `himaplan` provider serving `himaplan_data`.
#[derive(Debug, Default)]
pub struct BuiltinProvider;

pub const DATA_TYPE: &str = "himaplan_data";

#[async_trait]
impl Provider for BuiltinProvider {
    fn name(&self) -> &'static str {
        "himaplan"
    }

    fn resource_types(&self) -> Vec<ResourceType> {
        vec![ResourceType {
            name: DATA_TYPE,
            schema_version: 0,
            schema: Schema {
                attributes: vec![
                    AttrSchema::new("input", AttrType::Any)
                        .describe("any value, recorded in state; updated in place")
                        .example("{ version = var.release }"),
                    AttrSchema::new("triggers_replace", AttrType::Any)
                        .replace()
                        .describe("any value; a change replaces the record (and what depends on its id)")
                        .example("var.release"),
                    AttrSchema::new("output", AttrType::Any).computed().describe("equals input once applied"),
                    AttrSchema::new("id", AttrType::String).computed().describe("a fresh id per create"),
                ],
                blocks: vec![],
            },
        }]
    }

    fn type_docs(&self, _rtype: &str) -> crate::provider::TypeDocs {
        crate::provider::TypeDocs {
            summary: "Built in, the counterpart of Terraform's `terraform_data`: records values in state and triggers \
replacements, with no network. A `himaplan_data` never drains: it does not route traffic to what it lists.",
            example: r#"resource "himaplan_data" "release" {
  input            = { version = var.release, web_ips = aws_instance.web[*].private_ip }
  triggers_replace = var.release
}"#,
        }
    }

    fn shape_change(&self, _rtype: &str, _prior: &Value, _planned: &Value, changed: &[String]) -> crate::provider::ChangeShape {
        crate::provider::ChangeShape {
            recomputed: if changed.iter().any(|c| c == "input") { vec!["output".into()] } else { vec![] },
            ..Default::default()
        }
    }

    async fn configure(&self, _config: &Value) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ProviderError> {
        // The object lives only in state: what state says is what exists.
        Ok(ReadResponse { current: req.items.into_iter().map(|i| Some(i.prior)).collect(), others: vec![] })
    }

    async fn apply(&self, req: ApplyRequest) -> Result<Value, ProviderError> {
        match req.action {
            ApplyAction::Delete => Ok(Value::Null),
            ApplyAction::Create | ApplyAction::Update => {
                let mut attrs = req.planned.as_map().cloned().unwrap_or_default();
                let input = attrs.get("input").cloned().unwrap_or(Value::Null);
                attrs.insert("output".into(), input);
                let id = match (req.action, req.prior.get("id")) {
                    (ApplyAction::Update, Some(id)) if !id.is_null() => id.clone(),
                    _ => Value::String(req.token.clone().unwrap_or_else(crate::state::new_id)),
                };
                attrs.insert("id".into(), id);
                Ok(Value::Map(attrs))
            }
        }
    }

    async fn import(&self, _rtype: &str, _addr: &InstanceAddr, id: &str, _lineage: &str) -> Result<Value, ProviderError> {
        Ok(Value::Map(ValueMap::from([
            ("id".to_string(), Value::String(id.to_string())),
            ("input".to_string(), Value::Null),
            ("output".to_string(), Value::Null),
            ("triggers_replace".to_string(), Value::Null),
        ])))
    }
}
