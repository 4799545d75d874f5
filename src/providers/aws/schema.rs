//! The `aws` provider's schemas and its pure, network-free judgements:
//! the `aws_instance` attribute set (SPEC §4), configuration checks beyond
//! types, and how disruptive a planned update is.
//!
//! Must not talk to AWS or depend on the SDK: everything here is decided
//! from values alone, so `validate` and `plan` work offline.

use himaplan_engine::provider::{AttrSchema, AttrType, ChangeShape, ConfigProblem, ResourceType, Schema};
use himaplan_engine::value::Value;
use std::collections::BTreeMap;

/// The EC2 instance resource type.
pub const INSTANCE_TYPE: &str = "aws_instance";

/// Tag prefix reserved for himaplan's own labels; users may not set it.
pub const LABEL_PREFIX: &str = "himaplan:";
/// Tag holding the instance's address in configuration.
pub const ADDRESS_TAG: &str = "himaplan:address";
/// Tag holding the lineage of the state that owns the instance.
pub const LINEAGE_TAG: &str = "himaplan:lineage";
/// Tag holding the create intent's token.
pub const TOKEN_TAG: &str = "himaplan:token";

/// Desired power state of a running instance.
pub const RUNNING: &str = "running";
/// Desired power state of a stopped instance.
pub const STOPPED: &str = "stopped";

/// The attributes of `provider "aws" { ... }`.
pub fn provider_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("region", AttrType::String)
                .describe("AWS region; defaults to AWS_REGION / AWS_DEFAULT_REGION / the profile, else us-east-1"),
        ],
        blocks: vec![],
    }
}

/// The resource types the `aws` provider offers.
pub fn resource_types() -> Vec<ResourceType> {
    vec![ResourceType { name: INSTANCE_TYPE, schema_version: 0, schema: instance_schema() }]
}

fn instance_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("ami", AttrType::String).required().replace().describe("AMI id; a change replaces"),
            AttrSchema::new("instance_type", AttrType::String)
                .required()
                .disruption("stop/start")
                .describe("in place: stop, wait stopped, modify, start"),
            AttrSchema::new("state", AttrType::String).default(RUNNING).describe("\"running\" or \"stopped\""),
            AttrSchema::new("subnet_id", AttrType::String).optional_computed().replace().describe("subnet to launch in; a change replaces"),
            AttrSchema::new("tags", AttrType::Map(Box::new(AttrType::String)))
                .default(Value::Map(BTreeMap::new()))
                .describe("user tags; updated in place"),
            AttrSchema::new("id", AttrType::String).computed(),
            AttrSchema::new("private_ip", AttrType::String).computed(),
            AttrSchema::new("public_ip", AttrType::String).computed().describe("empty when the instance has none"),
            AttrSchema::new("availability_zone", AttrType::String).computed(),
        ],
        blocks: vec![],
    }
}

/// Checks an `aws_instance` configuration beyond types. Unknown values are
/// left alone: they are checked again when known.
pub fn validate_instance(config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    if let Some(state) = config.get("state").and_then(Value::as_str)
        && state != RUNNING
        && state != STOPPED
    {
        problems.push(ConfigProblem {
            attribute: Some("state".into()),
            message: format!("state must be \"running\" or \"stopped\", not {state:?}"),
        });
    }
    if let Some(tags) = config.get("tags").and_then(Value::as_map) {
        for key in tags.keys().filter(|k| k.starts_with(LABEL_PREFIX)) {
            problems.push(ConfigProblem {
                attribute: Some("tags".into()),
                message: format!("tag {key:?} uses the prefix {LABEL_PREFIX:?}, which himaplan reserves for its own labels"),
            });
        }
    }
    problems
}

/// The power state a value declares or reports; absent means running.
pub fn power_state(attrs: &Value) -> &str {
    attrs.get("state").and_then(Value::as_str).unwrap_or(RUNNING)
}

/// How disruptive an `aws_instance` update is.
///
/// A resize stops and starts a running instance that stays running; a
/// stopped instance (or one being stopped anyway) is resized without being
/// started, so the resize itself disrupts nothing more.
pub fn shape_instance_change(prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
    let before = power_state(prior);
    let after = power_state(planned);
    let resized = changed.iter().any(|c| c == "instance_type");
    let state_changed = changed.iter().any(|c| c == "state") && before != after;
    let mut shape = ChangeShape::default();
    if state_changed && before == RUNNING && after == STOPPED {
        shape.disruption = Some("stop".into());
    } else if resized && before == RUNNING && after == RUNNING {
        shape.disruption = Some("stop/start".into());
    }
    if resized && after == STOPPED {
        shape.notes.push("resized while stopped: the instance is not started".into());
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect())
    }

    fn changed(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resize_of_running_instance_is_stop_start() {
        let prior = attrs(&[("state", "running"), ("instance_type", "t3.micro")]);
        let planned = attrs(&[("state", "running"), ("instance_type", "t3.large")]);
        let shape = shape_instance_change(&prior, &planned, &changed(&["instance_type"]));
        assert_eq!(shape.disruption.as_deref(), Some("stop/start"));
    }

    #[test]
    fn resize_of_stopped_instance_disrupts_nothing() {
        let prior = attrs(&[("state", "stopped")]);
        let planned = attrs(&[("state", "stopped")]);
        let shape = shape_instance_change(&prior, &planned, &changed(&["instance_type"]));
        assert_eq!(shape.disruption, None);
        assert_eq!(shape.notes.len(), 1);
    }

    #[test]
    fn stopping_is_a_stop_even_with_a_resize() {
        let prior = attrs(&[("state", "running")]);
        let planned = attrs(&[("state", "stopped")]);
        let shape = shape_instance_change(&prior, &planned, &changed(&["instance_type", "state"]));
        assert_eq!(shape.disruption.as_deref(), Some("stop"));
        let shape = shape_instance_change(&prior, &planned, &changed(&["state"]));
        assert_eq!(shape.disruption.as_deref(), Some("stop"));
    }

    #[test]
    fn starting_and_tagging_are_not_disruptions() {
        let shape = shape_instance_change(&attrs(&[("state", "stopped")]), &attrs(&[("state", "running")]), &changed(&["state", "tags"]));
        assert_eq!(shape.disruption, None);
    }

    #[test]
    fn validate_rejects_unknown_state_and_reserved_tags() {
        let mut config = BTreeMap::new();
        config.insert("state".to_string(), Value::from("paused"));
        config.insert("tags".to_string(), Value::Map(BTreeMap::from([("himaplan:address".to_string(), Value::from("x"))])));
        let problems = validate_instance(&Value::Map(config));
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].attribute.as_deref(), Some("state"));
        assert_eq!(problems[1].attribute.as_deref(), Some("tags"));
        assert!(validate_instance(&attrs(&[("state", "stopped")])).is_empty());
        assert!(validate_instance(&Value::Map(BTreeMap::from([("state".to_string(), Value::Unknown)]))).is_empty());
    }
}
