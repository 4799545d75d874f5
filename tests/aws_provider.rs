//! The `aws` provider against a real moto server on loopback: batched
//! refresh, resize order, lineage isolation, `others`, import, delete and
//! error mapping, through the `Provider` trait as the engine uses it.
//!
//! One moto server serves the whole binary (installed by
//! `scripts/servers/moto.sh install`, started on a free 127.0.0.1 port, and
//! ended when this process exits); tests take turns on it and reset its
//! state first. Without moto the tests skip, except under `CI=true`, where
//! they fail and say why. This file must never contact a non-loopback
//! address: the private IPs moto hands out are only compared, never dialled.

#[path = "support/moto.rs"]
mod moto;

use aws_sdk_ec2::types::{InstanceStateName, ResourceType, Tag, TagSpecification};
use himaplan::providers::aws::{AwsProvider, client};
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{
    ApplyAction, ApplyRequest, Provider, ProviderError, ProviderErrorKind, ReadItem, ReadRequest, ReadResponse,
};
use himaplan_engine::value::{Value, ValueMap};
use moto::AMI;

const LINEAGE: &str = "lineage-test-1";

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

async fn sdk() -> aws_sdk_ec2::Client {
    client::connect(&Value::Null).await.expect("sdk client")
}

fn addr(s: &str) -> InstanceAddr {
    s.parse().expect("address")
}

fn planned(itype: &str, state: &str, tags: &[(&str, &str)]) -> Value {
    let tags = tags.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
    Value::Map(ValueMap::from([
        ("ami".to_string(), Value::from(AMI)),
        ("instance_type".to_string(), Value::from(itype)),
        ("state".to_string(), Value::from(state)),
        ("subnet_id".to_string(), Value::Null),
        ("tags".to_string(), Value::Map(tags)),
    ]))
}

async fn create(p: &AwsProvider, address: &str, attrs: Value) -> Result<Value, ProviderError> {
    p.apply(ApplyRequest {
        rollout: Default::default(),
        rtype: "aws_instance".into(),
        addr: addr(address),
        action: ApplyAction::Create,
        prior: Value::Null,
        planned: attrs,
        changed: vec![],
        lineage: LINEAGE.into(),
        token: Some(format!("tok-{address}")),
        part: None,
    })
    .await
}

fn id_of(v: &Value) -> String {
    v.get("id").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn attr<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or_default()
}

async fn read(p: &AwsProvider, items: &[(&str, &Value)]) -> ReadResponse {
    p.read(ReadRequest {
        rtype: "aws_instance".into(),
        lineage: LINEAGE.into(),
        items: items.iter().map(|(a, prior)| ReadItem::new(addr(a), (*prior).clone())).collect(),
    })
    .await
    .expect("read")
}

/// Launches `count` instances directly through the SDK, with the given tags.
async fn run_raw(ec2: &aws_sdk_ec2::Client, count: i32, tags: &[(&str, &str)]) -> Vec<String> {
    let mut req = ec2.run_instances().image_id(AMI).instance_type("t3.micro".into()).min_count(count).max_count(count);
    if !tags.is_empty() {
        let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
        req = req.tag_specifications(TagSpecification::builder().resource_type(ResourceType::Instance).set_tags(Some(tags)).build());
    }
    let out = req.send().await.expect("run instances");
    out.instances().iter().filter_map(|i| i.instance_id().map(str::to_string)).collect()
}

fn describe_count(actions: &[String]) -> usize {
    actions.iter().filter(|a| *a == "DescribeInstances").count()
}

// ---------------------------------------------------------------------------
// Scenarios

/// Three created instances are refreshed by one DescribeInstances call, and
/// an instance of another lineage is neither current nor other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_refresh_in_one_call_and_foreign_lineage_is_ignored() {
    let Some(moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let mut created = Vec::new();
    for i in 0..3 {
        let a = format!("aws_instance.web[{i}]");
        let v = create(&p, &a, planned("t3.micro", "running", &[("Name", "web")])).await.expect("create");
        assert_eq!(attr(&v, "state"), "running");
        assert_eq!(v.get("tags").and_then(Value::as_map).map(|m| m.len()), Some(1), "labels are hidden: {v}");
        created.push((a, v));
    }
    run_raw(&sdk().await, 1, &[("himaplan:lineage", "some-other-lineage")]).await;

    moto.start_recording();
    let items: Vec<(&str, &Value)> = created.iter().map(|(a, v)| (a.as_str(), v)).collect();
    let resp = read(&p, &items).await;
    let actions = moto.recorded_actions();
    assert_eq!(describe_count(&actions), 1, "recorded: {actions:?}");
    assert_eq!(resp.current.len(), 3);
    for ((_, v), cur) in created.iter().zip(&resp.current) {
        let cur = cur.as_ref().expect("found");
        assert_eq!(id_of(cur), id_of(v));
        assert_eq!(attr(cur, "ami"), AMI);
        assert!(!attr(cur, "private_ip").is_empty());
        assert!(!attr(cur, "availability_zone").is_empty());
    }
    assert!(resp.others.is_empty(), "foreign lineage leaked: {:?}", resp.others);
}

/// A resize of a running instance stops it, modifies it and starts it, in
/// that order, and it ends running with the new type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_stops_modifies_then_starts() {
    let Some(moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let prior = create(&p, "aws_instance.db", planned("t3.micro", "running", &[])).await.expect("create");
    moto.start_recording();
    let after = p
        .apply(ApplyRequest {
            rollout: Default::default(),
            rtype: "aws_instance".into(),
            addr: addr("aws_instance.db"),
            action: ApplyAction::Update,
            prior: prior.clone(),
            planned: planned("t3.large", "running", &[("Role", "db")]),
            changed: vec!["instance_type".into(), "tags".into()],
            lineage: LINEAGE.into(),
            token: None,
            part: None,
        })
        .await
        .expect("update");
    let actions = moto.recorded_actions();
    let mutating: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| matches!(*a, "StopInstances" | "ModifyInstanceAttribute" | "StartInstances"))
        .collect();
    assert_eq!(mutating, vec!["StopInstances", "ModifyInstanceAttribute", "StartInstances"], "recorded: {actions:?}");
    // Live before deciding, stopped, running: the waits' last descriptions
    // are the result, not asked again (issue 17, rollout floor).
    assert_eq!(describe_count(&actions), 3, "recorded: {actions:?}");
    assert_eq!(attr(&after, "instance_type"), "t3.large");
    assert_eq!(attr(&after, "state"), "running");
    assert_eq!(after.get("tags").and_then(|t| t.get("Role")).and_then(Value::as_str), Some("db"));
    assert_eq!(id_of(&after), id_of(&prior));
}

/// A stopped instance is resized without being started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_instance_stays_stopped_after_resize() {
    let Some(moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let prior = create(&p, "aws_instance.batch", planned("t3.micro", "stopped", &[])).await.expect("create");
    assert_eq!(attr(&prior, "state"), "stopped");
    moto.start_recording();
    let after = p
        .apply(ApplyRequest {
            rollout: Default::default(),
            rtype: "aws_instance".into(),
            addr: addr("aws_instance.batch"),
            action: ApplyAction::Update,
            prior,
            planned: planned("t3.small", "stopped", &[]),
            changed: vec!["instance_type".into()],
            lineage: LINEAGE.into(),
            token: None,
            part: None,
        })
        .await
        .expect("update");
    let actions = moto.recorded_actions();
    assert!(!actions.iter().any(|a| a == "StartInstances" || a == "StopInstances"), "recorded: {actions:?}");
    assert_eq!(attr(&after, "instance_type"), "t3.small");
    assert_eq!(attr(&after, "state"), "stopped");
}

/// An instance of this lineage that was not requested shows up in `others`
/// with its address and token; one imported before labelling is found by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrequested_lineage_instance_is_reported_in_others() {
    let Some(moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let kept = create(&p, "aws_instance.web[0]", planned("t3.micro", "running", &[])).await.expect("create");
    let stray = create(&p, "aws_instance.web[7]", planned("t3.micro", "running", &[])).await.expect("create");
    let unlabelled = run_raw(&sdk().await, 1, &[("Name", "legacy")]).await;
    let legacy_prior = Value::Map(ValueMap::from([("id".to_string(), Value::from(unlabelled[0].as_str()))]));
    let gone_prior = Value::Map(ValueMap::from([("id".to_string(), Value::from("i-00000000deadbeef0"))]));

    moto.start_recording();
    let resp =
        read(&p, &[("aws_instance.web[0]", &kept), ("aws_instance.legacy", &legacy_prior), ("aws_instance.gone", &gone_prior)]).await;
    let actions = moto.recorded_actions();
    assert_eq!(describe_count(&actions), 2, "lineage query plus one by id: {actions:?}");
    assert_eq!(resp.current[0].as_ref().map(id_of), Some(id_of(&kept)));
    assert_eq!(resp.current[1].as_ref().map(id_of), Some(unlabelled[0].clone()));
    assert!(resp.current[2].is_none());
    assert_eq!(resp.others.len(), 1, "{:?}", resp.others);
    assert_eq!(resp.others[0].id, id_of(&stray));
    assert_eq!(resp.others[0].address.as_ref().map(ToString::to_string).as_deref(), Some("aws_instance.web[7]"));
    assert_eq!(resp.others[0].token.as_deref(), Some("tok-aws_instance.web[7]"));
    assert!(resp.others[0].created.ends_with('Z'), "{}", resp.others[0].created);
}

/// Import labels an existing instance, after which the lineage query finds
/// it; delete terminates it and refresh no longer does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_labels_and_delete_terminates() {
    let Some(_moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let ec2 = sdk().await;
    let id = run_raw(&ec2, 1, &[("Name", "old-web")]).await.remove(0);
    let imported = p.import("aws_instance", &addr("aws_instance.old"), &id, LINEAGE).await.expect("import");
    assert_eq!(id_of(&imported), id);
    assert_eq!(imported.get("tags").and_then(|t| t.get("Name")).and_then(Value::as_str), Some("old-web"));
    let tags = ec2.describe_instances().instance_ids(&id).send().await.expect("describe").reservations()[0].instances()[0].tags().to_vec();
    let label = |k: &str| tags.iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_string);
    assert_eq!(label("himaplan:address").as_deref(), Some("aws_instance.old"));
    assert_eq!(label("himaplan:lineage").as_deref(), Some(LINEAGE));

    let missing = p.import("aws_instance", &addr("aws_instance.nope"), "i-0123456789abcdef0", LINEAGE).await;
    assert!(matches!(&missing, Err(e) if e.kind() == ProviderErrorKind::NotFound), "{missing:?}");

    let deleted = p
        .apply(ApplyRequest {
            rollout: Default::default(),
            rtype: "aws_instance".into(),
            addr: addr("aws_instance.old"),
            action: ApplyAction::Delete,
            prior: imported.clone(),
            planned: Value::Null,
            changed: vec![],
            lineage: LINEAGE.into(),
            token: None,
            part: None,
        })
        .await
        .expect("delete");
    assert_eq!(deleted, Value::Null);
    let state = ec2.describe_instances().instance_ids(&id).send().await.expect("describe").reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .cloned();
    assert_eq!(state, Some(InstanceStateName::Terminated));
    let resp = read(&p, &[("aws_instance.old", &imported)]).await;
    assert!(resp.current[0].is_none());
    assert!(resp.others.is_empty());
}

/// An unknown AMI is a permanent error carrying EC2's code and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ami_is_a_permanent_error_with_the_service_message() {
    let Some(_moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let mut attrs = planned("t3.micro", "running", &[]);
    if let Value::Map(m) = &mut attrs {
        m.insert("ami".into(), Value::from("ami-00000000"));
    }
    match create(&p, "aws_instance.bad", attrs).await {
        Err(e) if e.kind() == ProviderErrorKind::Invalid => assert!(e.message().starts_with("InvalidAMIID.NotFound: "), "{e}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

/// 1,000 instances of the lineage are refreshed in at most two
/// DescribeInstances calls (MaxResults = 1000, paginated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_instances_refresh_in_at_most_two_calls() {
    let Some(moto) = moto::turn_async(SETUP).await else { return };
    let p = provider().await;
    let ec2 = sdk().await;
    let ids = run_raw(&ec2, 1000, &[("himaplan:lineage", LINEAGE), ("himaplan:address", "aws_instance.fleet")]).await;
    assert_eq!(ids.len(), 1000);
    // Request half of them: the rest must come back as others.
    let priors: Vec<(String, Value)> = ids
        .iter()
        .take(500)
        .enumerate()
        .map(|(i, id)| (format!("aws_instance.fleet[{i}]"), Value::Map(ValueMap::from([("id".to_string(), Value::from(id.as_str()))]))))
        .collect();
    let items: Vec<(&str, &Value)> = priors.iter().map(|(a, v)| (a.as_str(), v)).collect();
    moto.start_recording();
    let resp = read(&p, &items).await;
    let actions = moto.recorded_actions();
    let calls = describe_count(&actions);
    eprintln!("1,000 instances refreshed with {calls} DescribeInstances call(s)");
    assert!(calls <= 2, "{calls} DescribeInstances calls");
    assert!(resp.current.iter().all(Option::is_some));
    assert_eq!(resp.others.len(), 500);
}
