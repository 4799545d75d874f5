//! `kubernetes_hpa`: an `autoscaling/v2` HorizontalPodAutoscaler scaling a
//! deployment of the same namespace on average CPU and memory utilization,
//! applied server-side as field manager `himaplan`.
//!
//! Must not touch the deployment it targets: the hand-over of its replica
//! count is the deployment's own apply (see `deployment.rs`).

use super::client::{self, Fetched, FieldPaths, apply_params, kube_error, metadata, object_id};
use super::schema::FIELDS_SET_BY;
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::Value;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;

/// Reads every requested HPA and the others of the lineage.
pub async fn read(client: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
    let Fetched { current, others } = client::fetch::<HorizontalPodAutoscaler>(client, req, "horizontalpodautoscalers").await?;
    Ok(ReadResponse {
        current: current.iter().map(|h| h.as_ref().map(observe)).collect(),
        others: others.iter().map(|h| client::found(h, observe(h))).collect(),
    })
}

/// The utilization target of resource metric `name` ("cpu", "memory").
fn utilization(h: &HorizontalPodAutoscaler, name: &str) -> Value {
    h.spec
        .metrics
        .as_ref()
        .into_iter()
        .flatten()
        .filter(|m| m.type_ == "Resource")
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == name && r.target.type_ == "Utilization")
        .and_then(|r| r.target.average_utilization)
        .map(|u| Value::from(i64::from(u)))
        .unwrap_or(Value::Null)
}

pub fn observe(h: &HorizontalPodAutoscaler) -> Value {
    let namespace = h.namespace().unwrap_or_default();
    let name = h.name_any();
    let spec = Some(&h.spec);
    let mut attrs = BTreeMap::new();
    attrs.insert("namespace".to_string(), Value::from(namespace.as_str()));
    attrs.insert("name".to_string(), Value::from(name.as_str()));
    attrs.insert("id".to_string(), Value::from(object_id(&namespace, &name)));
    attrs.insert("target".to_string(), spec.map(|s| Value::from(s.scale_target_ref.name.as_str())).unwrap_or(Value::Null));
    attrs.insert("min_replicas".to_string(), spec.and_then(|s| s.min_replicas).map(|m| Value::from(i64::from(m))).unwrap_or(Value::Null));
    attrs.insert("max_replicas".to_string(), spec.map(|s| Value::from(i64::from(s.max_replicas))).unwrap_or(Value::Null));
    attrs.insert("cpu_utilization".to_string(), utilization(h, "cpu"));
    attrs.insert("memory_utilization".to_string(), utilization(h, "memory"));
    attrs.insert(FIELDS_SET_BY.to_string(), Value::Map(client::fields_set_by(h, &field_paths()).into()));
    Value::Map(attrs.into())
}

/// Where each attribute lives in `managedFields`. The metrics list is
/// atomic (one owner for the whole list), so both utilization targets are
/// that list.
fn field_paths() -> FieldPaths {
    let spec = |field: &str| vec![client::path(&["f:spec", field])];
    vec![
        ("target".into(), vec![client::path(&["f:spec", "f:scaleTargetRef", "f:name"])]),
        ("min_replicas".into(), spec("f:minReplicas")),
        ("max_replicas".into(), spec("f:maxReplicas")),
        ("cpu_utilization".into(), spec("f:metrics")),
        ("memory_utilization".into(), spec("f:metrics")),
    ]
}

/// The applied object: only the declared fields.
pub fn manifest(planned: &Value, address: &str, lineage: &str, token: Option<&str>) -> serde_json::Value {
    let s = |k: &str| planned.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let n = |k: &str| planned.get(k).and_then(Value::as_i64);
    let name = s("name");
    let namespace = planned.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string();
    let metrics: Vec<serde_json::Value> = [("cpu", n("cpu_utilization")), ("memory", n("memory_utilization"))]
        .into_iter()
        .filter_map(|(resource, target)| {
            target.map(|t| json!({ "type": "Resource", "resource": { "name": resource, "target": { "type": "Utilization", "averageUtilization": t } } }))
        })
        .collect();
    let mut spec = json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": s("target") },
        "maxReplicas": n("max_replicas").unwrap_or(1),
    });
    if let Some(min) = n("min_replicas") {
        spec["minReplicas"] = json!(min);
    }
    if !metrics.is_empty() {
        spec["metrics"] = json!(metrics);
    }
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(&name, &namespace, address, lineage, token, &BTreeMap::new()),
        "spec": spec,
    })
}

pub async fn apply(client: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    if req.action == ApplyAction::Delete {
        let Some((ns, name)) = client::item_key(&req.prior) else { return Ok(Value::Null) };
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
        client::delete_and_wait(&api, &name, &format!("HorizontalPodAutoscaler {ns}/{name}")).await?;
        return Ok(Value::Null);
    }
    let body = manifest(&req.planned, &req.addr.to_string(), &req.lineage, req.token.as_deref());
    let name = body["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let ns = body["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let h = api
        .patch(&name, &apply_params(), &Patch::Apply(&body))
        .await
        .map_err(|e| kube_error(&format!("apply HorizontalPodAutoscaler {ns}/{name}"), e))?;
    Ok(observe(&h))
}

pub async fn import(client: &Client, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
    let (ns, name) = client::split_id(id)?;
    let what = format!("HorizontalPodAutoscaler {ns}/{name}");
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    if client::get_opt(&api, &name, &what).await?.is_none() {
        return Err(ProviderError::not_found(format!("{what} does not exist")));
    }
    let body = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(&name, &ns, &addr.to_string(), lineage, None, &BTreeMap::new()),
    });
    let h = api
        .patch(&name, &PatchParams::apply(client::FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(|e| kube_error(&format!("annotate {what}"), e))?;
    Ok(observe(&h))
}
