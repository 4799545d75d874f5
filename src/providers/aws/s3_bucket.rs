//! `aws_s3_bucket`: refresh, create, update, delete and import of S3
//! buckets.
//!
//! A bucket is labelled with the `himaplan:address` / `himaplan:lineage`
//! (and create token) bucket tags, by which refresh finds the lineage's
//! other buckets. Must not delete a bucket's objects unless the bucket's
//! state says `force_destroy = true`, and must not decide plans: it carries
//! out what it is asked.

use super::client::{invalid_request, missing, s3_error};
use super::schema::{ADDRESS_TAG, LINEAGE_TAG, TOKEN_TAG};
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier, Tag, Tagging};
use aws_smithy_types::date_time::Format;
use futures::StreamExt;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, FoundObject, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::{BTreeMap, BTreeSet};

/// Buckets whose tags are looked up at once when listing the lineage's others.
const TAG_LOOKUPS_IN_FLIGHT: usize = 16;
/// At most this many unrequested buckets are examined for the lineage tag,
/// so that refresh stays bounded in an account with very many buckets.
const MAX_TAG_LOOKUPS: usize = 1000;

/// The attributes of a bucket as state records them.
pub fn bucket_attrs(name: &str, force_destroy: bool) -> Value {
    Value::Map(ValueMap::from([
        ("bucket".to_string(), Value::from(name)),
        ("force_destroy".to_string(), Value::Bool(force_destroy)),
        ("id".to_string(), Value::from(name)),
        ("arn".to_string(), Value::from(format!("arn:aws:s3:::{name}"))),
    ]))
}

/// A non-empty string attribute.
pub fn text<'a>(attrs: &'a Value, name: &str) -> Option<&'a str> {
    attrs.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The bucket an instance refers to: its `id`, else its `bucket`.
pub fn bucket_of(attrs: &Value) -> Option<&str> {
    text(attrs, "id").or_else(|| text(attrs, "bucket"))
}

fn tag(key: &str, value: &str) -> Result<Tag, ProviderError> {
    Tag::builder().key(key).value(value).build().map_err(invalid_request)
}

/// Refreshes the requested buckets (one HeadBucket each) and lists the
/// lineage's other buckets (ListBuckets, then their tags).
pub async fn read(s3: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
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
                address: tags.get(ADDRESS_TAG).and_then(|a| a.parse().ok()),
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
pub async fn apply(s3: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
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
pub async fn import(s3: &Client, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
    if !head_bucket(s3, id).await? {
        return Err(ProviderError::not_found(format!("bucket {id} does not exist")));
    }
    let mut tags = bucket_tags(s3, id).await?;
    tags.insert(ADDRESS_TAG.to_string(), addr.to_string());
    tags.insert(LINEAGE_TAG.to_string(), lineage.to_string());
    put_tags(s3, id, &tags).await?;
    Ok(bucket_attrs(id, false))
}
