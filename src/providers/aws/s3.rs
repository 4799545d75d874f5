//! `aws_s3_bucket` and `aws_s3_bucket_lifecycle`: refresh, create, update,
//! delete and import of S3 buckets and of their lifecycle configuration,
//! plus the pure mapping between lifecycle rules as himaplan values and as
//! the SDK's types.
//!
//! A bucket is labelled with the `himaplan:address` / `himaplan:lineage`
//! (and create token) bucket tags; a lifecycle configuration cannot carry
//! tags, so it is identified by its bucket alone and has no `others`. The
//! whole lifecycle configuration is put at once; fields S3 adds on read
//! (`TransitionDefaultMinimumObjectSize`, generated filters) are not mapped
//! back and so are never drift. Must not delete a bucket's objects unless
//! the bucket's state says `force_destroy = true`, and must not decide
//! plans: it carries out what it is asked.

use super::client::s3_error;
use super::schema::days;
use super::schema::{ADDRESS_TAG, LINEAGE_TAG, TOKEN_TAG};
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketLocationConstraint, CreateBucketConfiguration, Delete, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration, ObjectIdentifier, Tag, Tagging, Transition, TransitionStorageClass,
};
use aws_smithy_types::date_time::Format;
use futures::StreamExt;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, FoundObject, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Buckets whose tags are looked up at once when listing the lineage's others.
const TAG_LOOKUPS_IN_FLIGHT: usize = 16;
/// At most this many unrequested buckets are examined for the lineage tag,
/// so that refresh stays bounded in an account with very many buckets.
const MAX_TAG_LOOKUPS: usize = 1000;

// ---------------------------------------------------------------------------
// Pure mapping

/// The attributes of a bucket as state records them.
pub fn bucket_attrs(name: &str, force_destroy: bool) -> Value {
    Value::Map(BTreeMap::from([
        ("bucket".to_string(), Value::from(name)),
        ("force_destroy".to_string(), Value::Bool(force_destroy)),
        ("id".to_string(), Value::from(name)),
        ("arn".to_string(), Value::from(format!("arn:aws:s3:::{name}"))),
    ]))
}

/// The attributes of a lifecycle configuration as state records them.
pub fn lifecycle_attrs(bucket: &str, rules: Value) -> Value {
    Value::Map(BTreeMap::from([
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
    let number = |n: Option<i32>| n.map_or(Value::Null, |n| Value::Number(f64::from(n)));
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
                Value::Map(BTreeMap::from([
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
        out.insert(id.to_string(), Value::Map(body));
    }
    Value::Map(out)
}

fn text<'a>(attrs: &'a Value, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The bucket an instance refers to: its `id`, else its `bucket`.
fn bucket_of(attrs: &Value) -> Option<&str> {
    text(attrs, "id").or_else(|| text(attrs, "bucket"))
}

fn tag(key: &str, value: &str) -> Result<Tag, ProviderError> {
    Tag::builder().key(key).value(value).build().map_err(invalid_request)
}

fn missing(addr: &InstanceAddr, attr: &str) -> ProviderError {
    ProviderError::invalid(format!("{addr}: attribute {attr:?} is missing"))
}

/// A request the SDK refused to build (a missing required field).
fn invalid_request(e: aws_sdk_s3::error::BuildError) -> ProviderError {
    ProviderError::invalid(e.to_string()).with_source(e)
}

// ---------------------------------------------------------------------------
// aws_s3_bucket

/// Refreshes the requested buckets (one HeadBucket each) and lists the
/// lineage's other buckets (ListBuckets, then their tags).
pub async fn read_buckets(s3: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
    let mut current = Vec::with_capacity(req.items.len());
    for item in &req.items {
        let Some(name) = bucket_of(&item.prior) else {
            current.push(None);
            continue;
        };
        let force_destroy = item.prior.get("force_destroy").and_then(Value::as_bool).unwrap_or(false);
        current.push(head_bucket(s3, name).await?.then(|| bucket_attrs(name, force_destroy)));
    }
    let requested: BTreeSet<&str> = req.items.iter().filter_map(|i| bucket_of(&i.prior)).collect();
    let mut candidates = Vec::new();
    let mut pages = s3.list_buckets().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| s3_error("ListBuckets", e))?;
        for b in page.buckets() {
            if let Some(name) = b.name().filter(|n| !requested.contains(n)) {
                let created = b.creation_date().and_then(|t| t.fmt(Format::DateTime).ok()).unwrap_or_default();
                candidates.push((name.to_string(), created));
            }
        }
    }
    candidates.truncate(MAX_TAG_LOOKUPS);
    let found: Vec<Result<Option<FoundObject>, ProviderError>> = futures::stream::iter(candidates)
        .map(|(name, created)| async move {
            let tags = match bucket_tags(s3, &name).await {
                Ok(tags) => tags,
                // A bucket we may not read (another owner's policy, another
                // region's redirect) cannot be ours.
                Err(e) if !e.is_transient() => return Ok(None),
                Err(e) => return Err(e),
            };
            if tags.get(LINEAGE_TAG).map(String::as_str) != Some(req.lineage.as_str()) {
                return Ok(None);
            }
            Ok(Some(FoundObject {
                id: name.clone(),
                address: tags.get(ADDRESS_TAG).cloned(),
                token: tags.get(TOKEN_TAG).cloned(),
                created,
                attrs: bucket_attrs(&name, false),
            }))
        })
        .buffer_unordered(TAG_LOOKUPS_IN_FLIGHT)
        .collect()
        .await;
    let mut others = Vec::new();
    for f in found {
        others.extend(f?);
    }
    others.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    Ok(ReadResponse { current, others })
}

/// Whether the bucket exists (and is reachable with these credentials).
async fn head_bucket(s3: &Client, name: &str) -> Result<bool, ProviderError> {
    match s3.head_bucket().bucket(name).send().await.map_err(|e| s3_error("HeadBucket", e)) {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The bucket's tags; empty when it has none.
async fn bucket_tags(s3: &Client, name: &str) -> Result<BTreeMap<String, String>, ProviderError> {
    match s3.get_bucket_tagging().bucket(name).send().await {
        Ok(out) => Ok(out.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect()),
        Err(e) if e.as_service_error().and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s)) == Some("NoSuchTagSet") => {
            Ok(BTreeMap::new())
        }
        Err(e) => Err(s3_error("GetBucketTagging", e)),
    }
}

/// Replaces the bucket's tag set (S3 has no "add tags" call).
async fn put_tags(s3: &Client, name: &str, tags: &BTreeMap<String, String>) -> Result<(), ProviderError> {
    let set = tags.iter().map(|(k, v)| tag(k, v)).collect::<Result<Vec<_>, _>>()?;
    let tagging = Tagging::builder().set_tag_set(Some(set)).build().map_err(invalid_request)?;
    s3.put_bucket_tagging().bucket(name).tagging(tagging).send().await.map_err(|e| s3_error("PutBucketTagging", e))?;
    Ok(())
}

/// Carries out one create, update or delete of a bucket.
pub async fn apply_bucket(s3: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    match req.action {
        ApplyAction::Create => create_bucket(s3, req).await,
        // Only force_destroy changes in place, and it lives in state alone.
        ApplyAction::Update => {
            let planned = req.planned.deep_unmarked();
            let name = text(&planned, "bucket").ok_or_else(|| missing(&req.addr, "bucket"))?;
            if !head_bucket(s3, name).await? {
                return Err(ProviderError::not_found(format!("bucket {name} does not exist")));
            }
            Ok(bucket_attrs(name, planned.get("force_destroy").and_then(Value::as_bool).unwrap_or(false)))
        }
        ApplyAction::Delete => delete_bucket(s3, req).await,
    }
}

async fn create_bucket(s3: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let planned = req.planned.deep_unmarked();
    let name = text(&planned, "bucket").ok_or_else(|| missing(&req.addr, "bucket"))?;
    let address = req.addr.to_string();
    // S3 in us-east-1 answers a second CreateBucket of one's own bucket with
    // success, so an existing bucket is found first: it is only taken over
    // when it carries this very address and lineage (a retried create).
    if head_bucket(s3, name).await? {
        let tags = bucket_tags(s3, name).await?;
        let ours = tags.get(ADDRESS_TAG) == Some(&address) && tags.get(LINEAGE_TAG) == Some(&req.lineage);
        if !ours {
            return Err(ProviderError::conflict(format!(
                "bucket {name} already exists and is not managed by this state; adopt it with `himaplan import {address} {name}` or choose another name"
            )));
        }
    } else {
        let region = s3.config().region().map(|r| r.as_ref().to_string()).unwrap_or_default();
        let mut create = s3.create_bucket().bucket(name);
        // us-east-1 is the default location and must not be named.
        if !region.is_empty() && region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region.as_str())).build(),
            );
        }
        create.send().await.map_err(|e| s3_error("CreateBucket", e))?;
    }
    let mut labels = BTreeMap::from([(ADDRESS_TAG.to_string(), address), (LINEAGE_TAG.to_string(), req.lineage.clone())]);
    if let Some(token) = &req.token {
        labels.insert(TOKEN_TAG.to_string(), token.clone());
    }
    put_tags(s3, name, &labels).await?;
    Ok(bucket_attrs(name, planned.get("force_destroy").and_then(Value::as_bool).unwrap_or(false)))
}

async fn delete_bucket(s3: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let Some(name) = bucket_of(&req.prior) else {
        return Ok(Value::Null);
    };
    let force = req.prior.get("force_destroy").and_then(Value::as_bool).unwrap_or(false);
    if force {
        empty_bucket(s3, name).await?;
    }
    match s3.delete_bucket().bucket(name).send().await {
        Ok(_) => Ok(Value::Null),
        Err(e) => match s3_error("DeleteBucket", e) {
            e if e.is_not_found() => Ok(Value::Null),
            e if !e.is_transient() && e.message().contains("BucketNotEmpty") => Err(ProviderError::invalid(format!(
                "bucket {name} is not empty, and deleting it would delete its objects: set force_destroy = true on {} and apply, \
                 then destroy it again (or empty the bucket yourself)",
                req.addr
            ))
            .with_source(e)),
            other => Err(other),
        },
    }
}

/// Deletes every object version and delete marker, 1,000 per request.
async fn empty_bucket(s3: &Client, name: &str) -> Result<(), ProviderError> {
    loop {
        let page = match s3.list_object_versions().bucket(name).send().await {
            Ok(page) => page,
            Err(e) => match s3_error("ListObjectVersions", e) {
                e if e.is_not_found() => return Ok(()),
                other => return Err(other),
            },
        };
        let ids: Vec<ObjectIdentifier> = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(page.delete_markers().iter().map(|m| (m.key(), m.version_id())))
            .filter_map(|(key, version)| ObjectIdentifier::builder().key(key?).set_version_id(version.map(str::to_string)).build().ok())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build().map_err(invalid_request)?;
        let out = s3.delete_objects().bucket(name).delete(delete).send().await.map_err(|e| s3_error("DeleteObjects", e))?;
        if let Some(err) = out.errors().first() {
            return Err(ProviderError::other(format!(
                "emptying bucket {name}: cannot delete {}: {}",
                err.key().unwrap_or("?"),
                err.message().or(err.code()).unwrap_or("unknown error")
            )));
        }
    }
}

/// Adopts an existing bucket: labels it (keeping its other tags) and
/// returns its attributes.
pub async fn import_bucket(s3: &Client, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
    if !head_bucket(s3, id).await? {
        return Err(ProviderError::not_found(format!("bucket {id} does not exist")));
    }
    let mut tags = bucket_tags(s3, id).await?;
    tags.insert(ADDRESS_TAG.to_string(), addr.to_string());
    tags.insert(LINEAGE_TAG.to_string(), lineage.to_string());
    put_tags(s3, id, &tags).await?;
    Ok(bucket_attrs(id, false))
}

// ---------------------------------------------------------------------------
// aws_s3_bucket_lifecycle

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
pub async fn read_lifecycles(s3: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
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
pub async fn apply_lifecycle(s3: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
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
    let rules_value = planned.get("rule").cloned().unwrap_or(Value::Map(BTreeMap::new()));
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
pub async fn import_lifecycle(s3: &Client, id: &str) -> Result<Value, ProviderError> {
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
        let declared = Value::Map(BTreeMap::from([
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
        let declared = Value::Map(BTreeMap::from([("r".to_string(), rule(vec![("expiration_days", Value::Number(2.5))]))]));
        let err = rules_to_sdk(&declared).expect_err("fractional");
        assert!(err.to_string().contains("lifecycle rule \"r\""), "{err}");
    }
}
