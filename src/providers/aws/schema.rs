//! The `aws` provider's schemas and its pure, network-free judgements:
//! the attribute sets of `aws_instance`, `aws_s3_bucket` and
//! `aws_s3_bucket_lifecycle` (SPEC §4), configuration checks beyond types
//! (instance types and tags; bucket names, whole days, storage classes, a
//! rule that does something), and how disruptive a planned update is.
//!
//! Must not talk to AWS or depend on the SDK: everything here is decided
//! from values alone, so `validate` and `plan` work offline.

use himaplan_engine::provider::{
    AttrSchema, AttrType, BlockNesting, BlockSchema, ChangeShape, ConfigProblem, ResourceType, Schema, TypeDocs,
};
use himaplan_engine::value::{Value, ValueMap};

/// The EC2 instance resource type.
pub const INSTANCE_TYPE: &str = "aws_instance";
/// The S3 bucket resource type.
pub const BUCKET_TYPE: &str = "aws_s3_bucket";
/// The S3 bucket lifecycle configuration resource type.
pub const LIFECYCLE_TYPE: &str = "aws_s3_bucket_lifecycle";

/// Storage classes a lifecycle transition may move objects to.
pub const STORAGE_CLASSES: &[&str] = &["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"];

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
                .describe("AWS region; defaults to AWS_REGION / AWS_DEFAULT_REGION / the profile, else us-east-1")
                .example("\"eu-central-1\""),
        ],
        blocks: vec![],
    }
}

/// The resource types the `aws` provider offers.
pub fn resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType { name: INSTANCE_TYPE, schema_version: 0, schema: instance_schema() },
        ResourceType { name: BUCKET_TYPE, schema_version: 0, schema: bucket_schema() },
        ResourceType { name: LIFECYCLE_TYPE, schema_version: 0, schema: lifecycle_schema() },
    ]
}

/// The reference text of each type (SPEC §4).
pub fn type_docs(rtype: &str) -> TypeDocs {
    match rtype {
        INSTANCE_TYPE => TypeDocs {
            summary: "An EC2 instance. Refresh reads every instance of the state's lineage in batched `DescribeInstances` calls \
(a tag filter, 1,000 per page). Each instance is tagged `himaplan:address` and `himaplan:lineage`, and created with an \
idempotency `ClientToken`. A resize (`instance_type`) stops the instance, waits until it is stopped, modifies it, starts it \
and waits until it runs: a disruption, so instances of a counted resource are resized `rollout { max_unavailable }` at a time, \
each drained first from what lists it (an `nginx_upstream`).",
            example: r#"resource "aws_instance" "web" {
  count         = 3
  ami           = "ami-03cf127a"
  instance_type = "t3.small"
  tags          = { Name = "himalytix-web-${count.index}" }

  rollout {
    max_unavailable = 1
  }
}"#,
        },
        BUCKET_TYPE => TypeDocs {
            summary: "An S3 bucket. Destroying a bucket that still holds objects fails unless `force_destroy = true`.",
            example: r#"resource "aws_s3_bucket" "backups" {
  bucket = "himalytix-backups"
}"#,
        },
        LIFECYCLE_TYPE => TypeDocs {
            summary: "The whole lifecycle configuration of one bucket: every `rule` is put at once \
(`PutBucketLifecycleConfiguration`), and removing the resource deletes the bucket's lifecycle configuration. \
Fields S3 adds on read (`TransitionDefaultMinimumObjectSize`) are not drift.",
            example: r#"resource "aws_s3_bucket_lifecycle" "backups" {
  bucket = aws_s3_bucket.backups.bucket

  rule "delete-old-backups" {
    prefix          = "postgres/"
    expiration_days = 30
  }
}"#,
        },
        _ => TypeDocs::default(),
    }
}

fn instance_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("ami", AttrType::String).required().replace().describe("AMI id; a change replaces").example("\"ami-03cf127a\""),
            AttrSchema::new("instance_type", AttrType::String)
                .required()
                .disruption("stop/start")
                .describe("in place: stop, wait stopped, modify-instance-attribute, start, wait running; an instance declared stopped is resized without being started")
                .example("\"t3.small\""),
            AttrSchema::new("state", AttrType::String)
                .default(RUNNING)
                .disruption("stop")
                .describe("\"running\" or \"stopped\"; stopping a running instance disrupts it, starting one does not")
                .example("\"stopped\""),
            AttrSchema::new("subnet_id", AttrType::String)
                .optional_computed()
                .replace()
                .describe("subnet to launch in (default: the account's default subnet); a change replaces")
                .example("\"subnet-0a1b2c3d\""),
            AttrSchema::new("tags", AttrType::Map(Box::new(AttrType::String)))
                .default(Value::Map(ValueMap::new()))
                .describe("user tags; updated in place; the himaplan: prefix is reserved for himaplan's own labels")
                .example("{ Name = \"himalytix-web-0\", tier = \"web\" }"),
            AttrSchema::new("id", AttrType::String).computed().describe("the instance id, e.g. i-0123456789abcdef0"),
            AttrSchema::new("private_ip", AttrType::String).computed().describe("the private IPv4 address, e.g. for an nginx upstream"),
            AttrSchema::new("public_ip", AttrType::String).computed().describe("empty when the instance has none"),
            AttrSchema::new("availability_zone", AttrType::String).computed().describe("the zone the instance runs in"),
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

// ---------------------------------------------------------------------------
// aws_s3_bucket and aws_s3_bucket_lifecycle

fn bucket_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("bucket", AttrType::String)
                .required()
                .replace()
                .describe("bucket name (S3 naming rules: 3-63 lower-case letters, digits, - and .); a change replaces")
                .example("\"himalytix-backups\""),
            AttrSchema::new("force_destroy", AttrType::Bool)
                .default(false)
                .describe("delete every object and version when the bucket is destroyed; otherwise a non-empty bucket is not destroyed")
                .example("true"),
            AttrSchema::new("id", AttrType::String).computed().describe("the bucket name"),
            AttrSchema::new("arn", AttrType::String).computed().describe("arn:aws:s3:::BUCKET"),
        ],
        blocks: vec![],
    }
}

fn lifecycle_schema() -> Schema {
    let transition = Schema {
        attributes: vec![
            AttrSchema::new("days", AttrType::Number).required().describe("whole days after creation, at least 1").example("90"),
            AttrSchema::new("storage_class", AttrType::String)
                .required()
                .describe("STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER, GLACIER_IR or DEEP_ARCHIVE")
                .example("\"GLACIER\""),
        ],
        blocks: vec![],
    };
    let rule = Schema {
        attributes: vec![
            AttrSchema::new("prefix", AttrType::String)
                .default("")
                .describe("key prefix the rule applies to; empty: every object")
                .example("\"postgres/\""),
            AttrSchema::new("enabled", AttrType::Bool)
                .default(true)
                .describe("a disabled rule is kept but not applied by S3")
                .example("false"),
            AttrSchema::new("expiration_days", AttrType::Number)
                .describe("delete current objects after this many whole days")
                .example("30"),
            AttrSchema::new("noncurrent_expiration_days", AttrType::Number)
                .describe("delete non-current versions (versioned buckets) this many whole days after they became non-current")
                .example("7"),
        ],
        blocks: vec![BlockSchema {
            name: "transition",
            nesting: BlockNesting::List,
            body: transition,
            description: "Moves current objects to another storage class after `days`.",
        }],
    };
    Schema {
        attributes: vec![
            AttrSchema::new("bucket", AttrType::String)
                .required()
                .replace()
                .describe("the bucket whose lifecycle this is, usually aws_s3_bucket.NAME.bucket")
                .example("aws_s3_bucket.backups.bucket"),
            AttrSchema::new("id", AttrType::String).computed().describe("the bucket name"),
        ],
        blocks: vec![BlockSchema {
            name: "rule",
            nesting: BlockNesting::Labelled,
            body: rule,
            description: "One lifecycle rule; the label is its ID (1 to 255 characters). A rule must do something: `expiration_days`, `noncurrent_expiration_days` or a `transition`.",
        }],
    }
}

/// Checks an `aws_s3_bucket` configuration beyond types.
pub fn validate_bucket(config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    if let Some(name) = config.get("bucket").and_then(Value::as_str)
        && let Err(why) = check_bucket_name(name)
    {
        problems.push(problem("bucket", format!("bucket name {name:?} is not valid: {why}")));
    }
    problems
}

/// Checks an `aws_s3_bucket_lifecycle` configuration beyond types: whole,
/// positive day counts, known storage classes, and at least one action per
/// rule (S3 refuses a rule that does nothing). Unknown values are left alone.
pub fn validate_lifecycle(config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let Some(rules) = config.get("rule").and_then(Value::as_map) else {
        return problems;
    };
    if rules.len() > 1000 {
        problems.push(problem("rule", format!("S3 allows at most 1000 lifecycle rules, not {}", rules.len())));
    }
    for (id, rule) in rules {
        if id.is_empty() || id.len() > 255 {
            problems.push(problem("rule", format!("rule id {id:?} must be 1 to 255 characters long")));
        }
        let mut actions = 0;
        for name in ["expiration_days", "noncurrent_expiration_days"] {
            match rule.get(name).map(Value::unmarked) {
                None | Some(Value::Null) => {}
                // Not known until apply: it may well be set then.
                Some(Value::Unknown) => actions += 1,
                Some(v) => {
                    actions += 1;
                    if let Err(why) = check_days(v) {
                        problems.push(problem("rule", format!("rule {id:?}: {name} {why}")));
                    }
                }
            }
        }
        for (i, t) in rule.get("transition").and_then(Value::as_list).unwrap_or_default().iter().enumerate() {
            actions += 1;
            if let Some(Err(why)) =
                t.get("days").map(|v| v.unmarked()).filter(|v| !matches!(v, Value::Unknown | Value::Null)).map(check_days)
            {
                problems.push(problem("rule", format!("rule {id:?}: transition {}: days {why}", i + 1)));
            }
            if let Some(class) = t.get("storage_class").and_then(Value::as_str)
                && !STORAGE_CLASSES.contains(&class)
            {
                problems.push(problem(
                    "rule",
                    format!("rule {id:?}: transition {}: storage_class {class:?} is not one of {}", i + 1, STORAGE_CLASSES.join(", ")),
                ));
            }
        }
        let unknown_transitions = matches!(rule.get("transition"), Some(Value::Unknown));
        if actions == 0 && !unknown_transitions {
            problems.push(problem(
                "rule",
                format!("rule {id:?} does nothing: set expiration_days, noncurrent_expiration_days or a transition block"),
            ));
        }
    }
    problems
}

fn problem(attribute: &str, message: String) -> ConfigProblem {
    ConfigProblem { attribute: Some(attribute.into()), message }
}

/// A day count must be a whole number of at least one.
fn check_days(v: &Value) -> Result<i32, String> {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && (1.0..=i32::MAX as f64).contains(&n) => Ok(n as i32),
        Some(n) => Err(format!("must be a whole number of days, at least 1 (got {n})")),
        None => Err(format!("must be a number, not {}", v.type_name())),
    }
}

/// A day count as S3 takes it; `Ok(None)` when unset.
pub fn days(v: Option<&Value>) -> Result<Option<i32>, String> {
    match v.map(Value::unmarked) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => check_days(v).map(Some),
    }
}

/// S3's bucket naming rules (the subset that matters for new buckets).
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    if !(3..=63).contains(&name.len()) {
        return Err("it must be 3 to 63 characters long".into());
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.') {
        return Err("it may hold only lower-case letters, digits, '-' and '.'".into());
    }
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge_ok(name.bytes().next()) || !edge_ok(name.bytes().last()) {
        return Err("it must begin and end with a letter or digit".into());
    }
    if name.contains("..") {
        return Err("it must not contain two adjacent periods".into());
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("it must not look like an IP address".into());
    }
    Ok(())
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
        let mut config = ValueMap::new();
        config.insert("state".to_string(), Value::from("paused"));
        config.insert("tags".to_string(), Value::Map(ValueMap::from([("himaplan:address".to_string(), Value::from("x"))])));
        let problems = validate_instance(&Value::Map(config.into()));
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].attribute.as_deref(), Some("state"));
        assert_eq!(problems[1].attribute.as_deref(), Some("tags"));
        assert!(validate_instance(&attrs(&[("state", "stopped")])).is_empty());
        assert!(validate_instance(&Value::Map(ValueMap::from([("state".to_string(), Value::Unknown)]))).is_empty());
    }

    // S3

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn lifecycle(rule: Value) -> Value {
        map(vec![("bucket", Value::from("b")), ("rule", Value::Map(ValueMap::from([("r1".to_string(), rule)])))])
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(check_bucket_name("himalytix-backups").is_ok());
        assert!(check_bucket_name("a.b-c1").is_ok());
        for bad in ["ab", "Upper", "-lead", "trail-", "a..b", "192.168.1.1", "under_score"] {
            assert!(check_bucket_name(bad).is_err(), "{bad}");
        }
        let problems = validate_bucket(&map(vec![("bucket", Value::from("Bad_Name"))]));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].attribute.as_deref(), Some("bucket"));
    }

    #[test]
    fn lifecycle_rules_need_an_action_and_whole_days() {
        let ok = lifecycle(map(vec![("expiration_days", Value::from(30i64)), ("transition", Value::List(vec![]))]));
        assert!(validate_lifecycle(&ok).is_empty());
        let idle = lifecycle(map(vec![("prefix", Value::from("x/")), ("transition", Value::List(vec![]))]));
        assert!(validate_lifecycle(&idle)[0].message.contains("does nothing"));
        let half = lifecycle(map(vec![("expiration_days", Value::from(1.5))]));
        assert!(validate_lifecycle(&half)[0].message.contains("whole number"));
        let zero = lifecycle(map(vec![("noncurrent_expiration_days", Value::from(0i64))]));
        assert!(validate_lifecycle(&zero)[0].message.contains("at least 1"));
        let class = lifecycle(map(vec![(
            "transition",
            Value::List(vec![map(vec![("days", Value::from(30i64)), ("storage_class", Value::from("COLD"))])]),
        )]));
        assert!(validate_lifecycle(&class)[0].message.contains("storage_class \"COLD\""));
        let unknown = lifecycle(map(vec![("expiration_days", Value::Unknown)]));
        assert!(validate_lifecycle(&unknown).is_empty());
    }

    #[test]
    fn day_counts_convert_for_the_api() {
        assert_eq!(days(None), Ok(None));
        assert_eq!(days(Some(&Value::Null)), Ok(None));
        assert_eq!(days(Some(&Value::from(14i64))), Ok(Some(14)));
        assert!(days(Some(&Value::from("14"))).is_err());
    }
}
