//! `aws_s3_bucket_lifecycle`: refresh, put, delete and import of a
//! bucket's lifecycle configuration, plus the pure mapping between
//! lifecycle rules as himaplan values and as the SDK's types.
//!
//! A lifecycle configuration cannot carry tags, so it is identified by its
//! bucket alone and has no `others`. The whole configuration is put at
//! once; fields S3 adds on read (`TransitionDefaultMinimumObjectSize`,
//! generated filters) are not mapped back and so are never drift. Must not
//! decide plans: it carries out what it is asked.

use super::client::{invalid_request, missing, s3_error};
use super::s3_bucket::{bucket_of, text};
use super::schema::days;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    Transition, TransitionStorageClass,
};
use himaplan_engine::provider::{ApplyAction, ApplyRequest, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::BTreeMap;

/// The attributes of a lifecycle configuration as state records them.
pub fn lifecycle_attrs(bucket: &str, rules: Value) -> Value {
    Value::Map(ValueMap::from([
        ("bucket".to_string(), Value::from(bucket)),
        ("id".to_string(), Value::from(bucket)),
        ("rule".to_string(), rules),
    ]))
}

/// Builds the SDK's rules from the `rule` blocks (a map from rule id to
/// its body, as the engine passes labelled blocks).
pub fn rules_to_sdk(rules: &Value) -> Result<Vec<LifecycleRule>, ProviderError> {
    let bad = |m: String| ProviderError::invalid(m);
    let Some(rules) = rules.as_map() else {
        return Err(bad("aws_s3_bucket_lifecycle: \"rule\" must be a map of rule blocks".into()));
    };
    let mut out = Vec::with_capacity(rules.len());
    for (id, rule) in rules {
        let rule = rule.deep_unmarked();
        let prefix = rule.get("prefix").and_then(Value::as_str).unwrap_or_default();
        let enabled = rule.get("enabled").and_then(Value::as_bool).unwrap_or(true);
        let in_rule = |m: String| bad(format!("lifecycle rule {id:?}: {m}"));
        let mut b = LifecycleRule::builder().id(id).filter(LifecycleRuleFilter::builder().prefix(prefix).build()).status(if enabled {
            ExpirationStatus::Enabled
        } else {
            ExpirationStatus::Disabled
        });
        if let Some(n) = days(rule.get("expiration_days")).map_err(|m| in_rule(format!("expiration_days {m}")))? {
            b = b.expiration(LifecycleExpiration::builder().days(n).build());
        }
        if let Some(n) = days(rule.get("noncurrent_expiration_days")).map_err(|m| in_rule(format!("noncurrent_expiration_days {m}")))? {
            b = b.noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(n).build());
        }
        for t in rule.get("transition").and_then(Value::as_list).unwrap_or_default() {
            let d = days(t.get("days")).map_err(|m| in_rule(format!("transition days {m}")))?;
            let class = t.get("storage_class").and_then(Value::as_str).unwrap_or_default();
            b = b.transitions(Transition::builder().set_days(d).storage_class(TransitionStorageClass::from(class)).build());
        }
        out.push(b.build().map_err(|e| in_rule(e.to_string()))?);
    }
    Ok(out)
}

/// Maps the rules S3 reports back to the `rule` blocks' shape. Anything
/// himaplan does not declare (dates, tag and size filters, S3's defaults)
/// is left out, so it cannot show as drift.
#[allow(deprecated, reason = "rules written by older tools still carry the top-level Prefix, which must be read")]
pub fn rules_from_sdk(rules: &[LifecycleRule]) -> Value {
    let number = |n: Option<i32>| n.map_or(Value::Null, |n| Value::from(f64::from(n)));
    let mut out = BTreeMap::new();
    for rule in rules {
        let Some(id) = rule.id() else { continue };
        let filter = rule.filter();
        let prefix = filter
            .and_then(LifecycleRuleFilter::prefix)
            .or_else(|| filter.and_then(|f| f.and()).and_then(|a| a.prefix()))
            .or(rule.prefix())
            .unwrap_or_default();
        let transitions = rule
            .transitions()
            .iter()
            .map(|t| {
                Value::Map(ValueMap::from([
                    ("days".to_string(), number(t.days())),
                    ("storage_class".to_string(), Value::from(t.storage_class().map_or("", |c| c.as_str()))),
                ]))
            })
            .collect();
        let body = BTreeMap::from([
            ("prefix".to_string(), Value::from(prefix)),
            ("enabled".to_string(), Value::Bool(*rule.status() == ExpirationStatus::Enabled)),
            ("expiration_days".to_string(), number(rule.expiration().and_then(LifecycleExpiration::days))),
            (
                "noncurrent_expiration_days".to_string(),
                number(rule.noncurrent_version_expiration().and_then(NoncurrentVersionExpiration::noncurrent_days)),
            ),
            ("transition".to_string(), Value::List(transitions)),
        ]);
        out.insert(id.to_string(), Value::Map(body.into()));
    }
    Value::Map(out.into())
}

/// The bucket's lifecycle rules, or `None` when it has no configuration
/// (or the bucket is gone).
async fn get_rules(s3: &Client, bucket: &str) -> Result<Option<Value>, ProviderError> {
    match s3.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
        Ok(out) => Ok(Some(rules_from_sdk(out.rules()))),
        Err(e) => match s3_error("GetBucketLifecycleConfiguration", e) {
            e if e.is_not_found() => Ok(None),
            other => Err(other),
        },
    }
}

/// Refreshes the requested lifecycle configurations, one request each.
/// They carry no labels, so there are never `others`.
pub async fn read(s3: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
    let mut current = Vec::with_capacity(req.items.len());
    for item in &req.items {
        let Some(bucket) = bucket_of(&item.prior) else {
            current.push(None);
            continue;
        };
        current.push(get_rules(s3, bucket).await?.map(|rules| lifecycle_attrs(bucket, rules)));
    }
    Ok(ReadResponse { current, others: Vec::new() })
}

/// Puts the whole configuration (create, update) or deletes it.
pub async fn apply(s3: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    if req.action == ApplyAction::Delete {
        let Some(bucket) = bucket_of(&req.prior) else {
            return Ok(Value::Null);
        };
        return match s3.delete_bucket_lifecycle().bucket(bucket).send().await.map_err(|e| s3_error("DeleteBucketLifecycle", e)) {
            Ok(_) => Ok(Value::Null),
            Err(e) if e.is_not_found() => Ok(Value::Null),
            Err(e) => Err(e),
        };
    }
    let planned = req.planned.deep_unmarked();
    let bucket = text(&planned, "bucket").ok_or_else(|| missing(&req.addr, "bucket"))?;
    let rules_value = planned.get("rule").cloned().unwrap_or(Value::Map(ValueMap::new()));
    let rules = rules_to_sdk(&rules_value)?;
    if rules.is_empty() {
        // S3 refuses an empty configuration; no rules means none at all.
        s3.delete_bucket_lifecycle().bucket(bucket).send().await.map_err(|e| s3_error("DeleteBucketLifecycle", e))?;
    } else {
        let config = BucketLifecycleConfiguration::builder().set_rules(Some(rules)).build().map_err(invalid_request)?;
        s3.put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| s3_error("PutBucketLifecycleConfiguration", e))?;
    }
    // What read will report: the declared rules in their mapped shape.
    let echoed = rules_from_sdk(&rules_to_sdk(&rules_value)?);
    Ok(lifecycle_attrs(bucket, echoed))
}

/// Adopts a bucket's existing lifecycle configuration (`id` = bucket name).
pub async fn import(s3: &Client, id: &str) -> Result<Value, ProviderError> {
    match get_rules(s3, id).await? {
        Some(rules) => Ok(lifecycle_attrs(id, rules)),
        None => Err(ProviderError::not_found(format!("bucket {id} has no lifecycle configuration (or does not exist)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    #[test]
    fn rules_round_trip_through_the_sdk_types() {
        // What is put reads back in the same shape, so an unchanged rule is never drift.
        let declared = Value::Map(ValueMap::from([
            (
                "expire-backups".to_string(),
                rule(vec![
                    ("prefix", Value::from("postgres/")),
                    ("enabled", Value::Bool(true)),
                    ("expiration_days", Value::from(30i64)),
                    ("noncurrent_expiration_days", Value::Null),
                    ("transition", Value::List(vec![rule(vec![("days", Value::from(7i64)), ("storage_class", Value::from("GLACIER"))])])),
                ]),
            ),
            (
                "old-versions".to_string(),
                rule(vec![
                    ("prefix", Value::from("")),
                    ("enabled", Value::Bool(false)),
                    ("expiration_days", Value::Null),
                    ("noncurrent_expiration_days", Value::from(14i64)),
                    ("transition", Value::List(vec![])),
                ]),
            ),
        ]));
        let sdk = rules_to_sdk(&declared).expect("to sdk");
        assert_eq!(sdk.len(), 2);
        assert_eq!(rules_from_sdk(&sdk), declared);
    }

    #[test]
    #[allow(deprecated, reason = "builds a rule with the legacy top-level Prefix S3 may still report")]
    fn legacy_prefix_and_server_defaults_map_cleanly() {
        // A rule S3 reports with the old top-level Prefix and an expiration date is read without inventing values.
        let r = LifecycleRule::builder()
            .id("r")
            .prefix("logs/")
            .status(ExpirationStatus::Enabled)
            .expiration(LifecycleExpiration::builder().expired_object_delete_marker(true).build())
            .build()
            .expect("rule");
        let v = rules_from_sdk(&[r]);
        let body = v.get("r").expect("rule r");
        assert_eq!(body.get("prefix").and_then(Value::as_str), Some("logs/"));
        assert_eq!(body.get("expiration_days"), Some(&Value::Null));
    }

    #[test]
    fn fractional_days_are_refused() {
        let declared = Value::Map(ValueMap::from([("r".to_string(), rule(vec![("expiration_days", Value::from(2.5))]))]));
        let err = rules_to_sdk(&declared).expect_err("fractional");
        assert!(err.to_string().contains("lifecycle rule \"r\""), "{err}");
    }
}
