//! The `aws` provider's S3 types against a real moto server on loopback:
//! `aws_s3_bucket` (create with labels, refresh, `others`, import, the
//! non-empty delete guard and `force_destroy`) and `aws_s3_bucket_lifecycle`
//! (create, change, out-of-band drift, removal), through the `Provider`
//! trait as the engine uses it.
//!
//! One moto server serves the whole binary (installed by
//! `scripts/servers/moto.sh install`, started on a free 127.0.0.1 port, and
//! ended when this process exits); tests take turns on it and reset it
//! first. Without moto the tests skip, except under `CI=true`, where they
//! fail and say why. Must never contact a non-loopback address.

#[path = "support/moto.rs"]
mod moto;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter};
use himaplan::providers::aws::{AwsProvider, client};
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyAction, ApplyRequest, Provider, ProviderError, ProviderErrorKind, ReadItem, ReadRequest, ReadResponse,
};
use himaplan_engine::value::{Value, ValueMap};
use std::collections::BTreeMap;

const LINEAGE: &str = "lineage-s3-test";

/// This binary's moto: threaded, and exported to the process environment,
/// from which the provider under test builds its clients.
const SETUP: moto::Setup = moto::Setup { export_env: true, ..moto::THREADED };

// ---------------------------------------------------------------------------
// Helpers

async fn provider() -> AwsProvider {
    let p = AwsProvider::new();
    p.configure(&Value::Null).await.expect("configure");
    p
}

async fn sdk() -> aws_sdk_s3::Client {
    client::connect_s3(None).await
}

fn addr(s: &str) -> InstanceAddr {
    s.parse().expect("address")
}

fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn bucket_config(name: &str, force_destroy: bool) -> Value {
    obj(vec![("bucket", Value::from(name)), ("force_destroy", Value::Bool(force_destroy)), ("id", Value::Null), ("arn", Value::Null)])
}

/// The lifecycle as the engine evaluates `rule "expire-backups" { prefix = "postgres/", expiration_days = N }`.
fn lifecycle_config(bucket: &str, days: i64) -> Value {
    let rule = obj(vec![
        ("prefix", Value::from("postgres/")),
        ("enabled", Value::Bool(true)),
        ("expiration_days", Value::from(days)),
        ("noncurrent_expiration_days", Value::Null),
        ("transition", Value::List(vec![obj(vec![("days", Value::from(7i64)), ("storage_class", Value::from("GLACIER"))])])),
    ]);
    obj(vec![
        ("bucket", Value::from(bucket)),
        ("id", Value::Null),
        ("rule", Value::Map(ValueMap::from([("expire-backups".to_string(), rule)]))),
    ])
}

async fn apply(
    p: &AwsProvider,
    rtype: &str,
    address: &str,
    action: ApplyAction,
    prior: Value,
    planned: Value,
) -> Result<Value, ProviderError> {
    p.apply(ApplyRequest {
        rollout: Default::default(),
        rtype: rtype.into(),
        addr: addr(address),
        action,
        prior,
        planned,
        changed: vec![],
        lineage: LINEAGE.into(),
        token: (action == ApplyAction::Create).then(|| format!("tok-{address}")),
        part: None,
    })
    .await
}

async fn read(p: &AwsProvider, rtype: &str, items: &[(&str, &Value)]) -> ReadResponse {
    p.read(ReadRequest {
        rtype: rtype.into(),
        lineage: LINEAGE.into(),
        items: items.iter().map(|(a, prior)| ReadItem::new(addr(a), (*prior).clone())).collect(),
    })
    .await
    .expect("read")
}

fn expiration_of(v: &Value) -> Option<f64> {
    v.get("rule")?.get("expire-backups")?.get("expiration_days")?.as_f64()
}

// ---------------------------------------------------------------------------
// Scenarios

/// A lifecycle rule is created, changed from 30 to 14 days, changed out of
/// band (drift seen by refresh, S3's extra read-only fields ignored), and
/// deleted with the resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_create_change_drift_and_remove() {
    let Some(_moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    apply(&p, "aws_s3_bucket", "aws_s3_bucket.backups", ApplyAction::Create, Value::Null, bucket_config("himalytix-backups", false))
        .await
        .expect("bucket");
    let lc = "aws_s3_bucket_lifecycle.backups";
    let created = apply(&p, "aws_s3_bucket_lifecycle", lc, ApplyAction::Create, Value::Null, lifecycle_config("himalytix-backups", 30))
        .await
        .expect("create lifecycle");
    assert_eq!(created.get("id").and_then(Value::as_str), Some("himalytix-backups"));
    assert_eq!(expiration_of(&created), Some(30.0));

    // Refresh reads back exactly what was applied: no drift from server-added fields.
    let resp = read(&p, "aws_s3_bucket_lifecycle", &[(lc, &created)]).await;
    assert_eq!(resp.current[0].as_ref(), Some(&created), "read differs from applied");
    assert!(resp.others.is_empty());

    let mut planned = lifecycle_config("himalytix-backups", 14);
    if let Value::Map(m) = &mut planned {
        m.insert("id".into(), Value::from("himalytix-backups"));
    }
    let updated = apply(&p, "aws_s3_bucket_lifecycle", lc, ApplyAction::Update, created.clone(), planned).await.expect("update");
    let resp = read(&p, "aws_s3_bucket_lifecycle", &[(lc, &updated)]).await;
    assert_eq!(expiration_of(resp.current[0].as_ref().expect("present")), Some(14.0));
    assert_eq!(resp.current[0].as_ref(), Some(&updated));

    // Someone changes the rule outside himaplan: refresh sees 60 days.
    let s3 = sdk().await;
    let rule = LifecycleRule::builder()
        .id("expire-backups")
        .filter(LifecycleRuleFilter::builder().prefix("postgres/").build())
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().days(60).build())
        .build()
        .expect("rule");
    s3.put_bucket_lifecycle_configuration()
        .bucket("himalytix-backups")
        .lifecycle_configuration(BucketLifecycleConfiguration::builder().rules(rule).build().expect("config"))
        .send()
        .await
        .expect("out-of-band put");
    let resp = read(&p, "aws_s3_bucket_lifecycle", &[(lc, &updated)]).await;
    let drifted = resp.current[0].as_ref().expect("present");
    assert_eq!(expiration_of(drifted), Some(60.0));
    assert_ne!(drifted, &updated, "the out-of-band change must show as drift");

    // Removing the resource deletes the configuration.
    apply(&p, "aws_s3_bucket_lifecycle", lc, ApplyAction::Delete, updated.clone(), Value::Null).await.expect("delete");
    let err = s3.get_bucket_lifecycle_configuration().bucket("himalytix-backups").send().await.expect_err("gone");
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&err), Some("NoSuchLifecycleConfiguration"));
    let resp = read(&p, "aws_s3_bucket_lifecycle", &[(lc, &updated)]).await;
    assert!(resp.current[0].is_none());
}

/// A bucket is labelled at create, refreshed by HeadBucket, and the
/// lineage's unrequested buckets (only those) appear in `others`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_labels_refresh_and_others() {
    let Some(_moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let a =
        apply(&p, "aws_s3_bucket", "aws_s3_bucket.a", ApplyAction::Create, Value::Null, bucket_config("bucket-a", false)).await.expect("a");
    assert_eq!(a.get("arn").and_then(Value::as_str), Some("arn:aws:s3:::bucket-a"));
    assert_eq!(a.get("id").and_then(Value::as_str), Some("bucket-a"));
    apply(&p, "aws_s3_bucket", "aws_s3_bucket.orphan", ApplyAction::Create, Value::Null, bucket_config("bucket-orphan", false))
        .await
        .expect("orphan");
    let s3 = sdk().await;
    s3.create_bucket().bucket("someone-elses").send().await.expect("foreign bucket");

    let tags = s3.get_bucket_tagging().bucket("bucket-a").send().await.expect("tags");
    let tags: BTreeMap<&str, &str> = tags.tag_set().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags.get("himaplan:address"), Some(&"aws_s3_bucket.a"));
    assert_eq!(tags.get("himaplan:lineage"), Some(&LINEAGE));

    let gone = bucket_config("never-made", false);
    let resp = read(&p, "aws_s3_bucket", &[("aws_s3_bucket.a", &a), ("aws_s3_bucket.gone", &gone)]).await;
    assert_eq!(resp.current[0].as_ref(), Some(&a));
    assert!(resp.current[1].is_none());
    let others: Vec<(&str, Option<String>)> =
        resp.others.iter().map(|o| (o.id.as_str(), o.address.as_ref().map(ToString::to_string))).collect();
    assert_eq!(others, vec![("bucket-orphan", Some("aws_s3_bucket.orphan".to_string()))]);
    assert_eq!(resp.others[0].token.as_deref(), Some("tok-aws_s3_bucket.orphan"));

    // Creating over an existing bucket that is not this state's is refused with the import advice.
    let err = apply(&p, "aws_s3_bucket", "aws_s3_bucket.x", ApplyAction::Create, Value::Null, bucket_config("someone-elses", false))
        .await
        .expect_err("not ours");
    assert!(err.to_string().contains("himaplan import aws_s3_bucket.x someone-elses"), "{err}");

    // Import adopts it, keeping its own tags.
    s3.put_bucket_tagging()
        .bucket("someone-elses")
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(aws_sdk_s3::types::Tag::builder().key("team").value("ops").build().expect("tag"))
                .build()
                .expect("tagging"),
        )
        .send()
        .await
        .expect("tag");
    let imported = p.import("aws_s3_bucket", &addr("aws_s3_bucket.x"), "someone-elses", LINEAGE).await.expect("import");
    assert_eq!(imported.get("bucket").and_then(Value::as_str), Some("someone-elses"));
    let tags = s3.get_bucket_tagging().bucket("someone-elses").send().await.expect("tags");
    assert_eq!(tags.tag_set().len(), 3, "{:?}", tags.tag_set());
}

/// Deleting a non-empty bucket is refused (telling the user about
/// force_destroy) and changes nothing; with force_destroy = true in state
/// every object and version goes, then the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_empty_bucket_delete_needs_force_destroy() {
    let Some(_moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let s3 = sdk().await;
    let b = apply(&p, "aws_s3_bucket", "aws_s3_bucket.b", ApplyAction::Create, Value::Null, bucket_config("full-bucket", false))
        .await
        .expect("create");
    s3.put_bucket_versioning()
        .bucket("full-bucket")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build(),
        )
        .send()
        .await
        .expect("versioning");
    for i in 0..3 {
        for body in ["v1", "v2"] {
            s3.put_object()
                .bucket("full-bucket")
                .key(format!("postgres/{i}.dump"))
                .body(ByteStream::from_static(body.as_bytes()))
                .send()
                .await
                .expect("put");
        }
    }
    s3.delete_object().bucket("full-bucket").key("postgres/0.dump").send().await.expect("delete marker");

    let err = apply(&p, "aws_s3_bucket", "aws_s3_bucket.b", ApplyAction::Delete, b.clone(), Value::Null).await.expect_err("refused");
    assert!(err.to_string().contains("set force_destroy = true"), "{err}");
    assert!(s3.head_object().bucket("full-bucket").key("postgres/1.dump").send().await.is_ok(), "an object was deleted");

    let forced = apply(
        &p,
        "aws_s3_bucket",
        "aws_s3_bucket.b",
        ApplyAction::Update,
        b.clone(),
        obj(vec![
            ("bucket", Value::from("full-bucket")),
            ("force_destroy", Value::Bool(true)),
            ("id", Value::from("full-bucket")),
            ("arn", Value::Null),
        ]),
    )
    .await
    .expect("update force_destroy");
    assert_eq!(forced.get("force_destroy"), Some(&Value::Bool(true)));
    apply(&p, "aws_s3_bucket", "aws_s3_bucket.b", ApplyAction::Delete, forced.clone(), Value::Null).await.expect("forced delete");
    let resp = read(&p, "aws_s3_bucket", &[("aws_s3_bucket.b", &forced)]).await;
    assert!(resp.current[0].is_none());
    // Deleting what is already gone succeeds.
    apply(&p, "aws_s3_bucket", "aws_s3_bucket.b", ApplyAction::Delete, forced, Value::Null).await.expect("idempotent delete");
}

/// An existing lifecycle configuration is imported by bucket name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_import_by_bucket() {
    let Some(_moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    apply(&p, "aws_s3_bucket", "aws_s3_bucket.l", ApplyAction::Create, Value::Null, bucket_config("lc-bucket", false))
        .await
        .expect("bucket");
    let err = p.import("aws_s3_bucket_lifecycle", &addr("aws_s3_bucket_lifecycle.l"), "lc-bucket", LINEAGE).await.expect_err("none yet");
    assert_eq!(err.kind(), ProviderErrorKind::NotFound, "{err:?}");
    let created = apply(
        &p,
        "aws_s3_bucket_lifecycle",
        "aws_s3_bucket_lifecycle.l",
        ApplyAction::Create,
        Value::Null,
        lifecycle_config("lc-bucket", 30),
    )
    .await
    .expect("lifecycle");
    let imported = p.import("aws_s3_bucket_lifecycle", &addr("aws_s3_bucket_lifecycle.l"), "lc-bucket", LINEAGE).await.expect("import");
    assert_eq!(imported, created);
}
