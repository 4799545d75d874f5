//! `kubernetes_deployment`: an `apps/v1` Deployment with one container,
//! applied server-side as field manager `himaplan` with only the declared
//! fields, and the hand-over of `spec.replicas` to an HPA the way the
//! Kubernetes documentation describes ("Server-Side Apply", "Transferring
//! ownership").
//!
//! Must not wait for a rollout (no controller runs here or is assumed), and
//! must not send `replicas` while an HPA owns them.

use super::client::{self, FIELD_MANAGER, Fetched, FieldPaths, HANDOVER_MANAGER, apply_params, kube_error, metadata, object_id};
use super::schema::{FIELDS_SET_BY, REPLICAS_MANAGED_BY, SELECTOR_LABEL, same_quantity};
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::Value;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Container;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;

const REPLICAS_PATH: &[&str] = &["f:spec", "f:replicas"];

/// Reads every requested deployment and the others of the lineage.
pub async fn read(client: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
    let Fetched { current, others } = client::fetch::<Deployment>(client, req, "deployments").await?;
    let current = current.iter().zip(&req.items).map(|(obj, item)| obj.as_ref().map(|d| observe(d, &item.prior))).collect();
    let others = others.iter().map(|d| client::found(d, observe(d, &Value::Null))).collect();
    Ok(ReadResponse { current, others })
}

/// The attributes of a live deployment. `prior` (state or planned) decides
/// what is reported: undeclared optional fields stay null (himaplan does not
/// own them), quantities keep their declared spelling when equal in value,
/// and replicas are not reported while an HPA owns them.
pub fn observe(d: &Deployment, prior: &Value) -> Value {
    let namespace = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let spec = &d.spec;
    let pod = spec.template.spec.as_ref();
    let wanted_container = prior.get("container_name").and_then(Value::as_str);
    let container: Option<&Container> =
        pod.and_then(|p| p.containers.iter().find(|c| Some(c.name.as_str()) == wanted_container).or_else(|| p.containers.first()));
    let managed_by = prior.get(REPLICAS_MANAGED_BY).and_then(Value::as_str).unwrap_or_default().to_string();
    let mut attrs = BTreeMap::new();
    attrs.insert("namespace".to_string(), Value::from(namespace.as_str()));
    attrs.insert("name".to_string(), Value::from(name.as_str()));
    attrs.insert("id".to_string(), Value::from(object_id(&namespace, &name)));
    attrs.insert("image".to_string(), container.and_then(|c| c.image.clone()).map(Value::from).unwrap_or(Value::Null));
    attrs.insert("container_name".to_string(), container.map(|c| Value::from(c.name.as_str())).unwrap_or(Value::Null));
    let replicas = if managed_by.is_empty() {
        spec.replicas.map(|r| Value::from(i64::from(r))).unwrap_or(Value::Null)
    } else {
        // The HPA owns the count: neither reported nor drift.
        Value::Null
    };
    attrs.insert("replicas".to_string(), replicas);
    let paths = field_paths(d, container.map(|c| c.name.as_str()), managed_by.is_empty());
    attrs.insert(FIELDS_SET_BY.to_string(), Value::Map(client::fields_set_by(d, &paths).into()));
    attrs.insert(REPLICAS_MANAGED_BY.to_string(), Value::from(managed_by));
    let labels: BTreeMap<String, Value> =
        d.labels().iter().filter(|(k, _)| !k.starts_with("himaplan.io/")).map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    attrs.insert("labels".to_string(), Value::Map(labels.into()));
    let resources = container.and_then(|c| c.resources.as_ref());
    for (attr, limits, key) in
        [("cpu_request", false, "cpu"), ("cpu_limit", true, "cpu"), ("memory_request", false, "memory"), ("memory_limit", true, "memory")]
    {
        let live = resources
            .and_then(|r| if limits { r.limits.as_ref() } else { r.requests.as_ref() })
            .and_then(|m| m.get(key))
            .map(|q| q.0.clone());
        let declared = prior.get(attr).and_then(Value::as_str);
        let value = match (declared, live) {
            (Some(d), Some(l)) if same_quantity(d, l.as_str()) => Value::from(d),
            // Undeclared: a value someone else set on a field himaplan does
            // not own is not reported (an import, with no prior, reports it).
            (None, Some(_)) if !prior.is_null() => Value::Null,
            (_, Some(l)) => Value::from(l),
            (_, None) => Value::Null,
        };
        attrs.insert(attr.to_string(), value);
    }
    let port = container.and_then(|c| c.ports.as_ref()).and_then(|p| p.first()).map(|p| Value::from(i64::from(p.container_port)));
    let port = if !prior.is_null() && prior.get("port").is_none_or(Value::is_null) { Value::Null } else { port.unwrap_or(Value::Null) };
    attrs.insert("port".to_string(), port);
    Value::Map(attrs.into())
}

/// Where each attribute himaplan may send lives in `managedFields`, for
/// naming the other managers a forced apply overrides. `replicas` counts
/// only while himaplan sends them (not under an HPA). `port` is left out:
/// a changed port is a different entry of the ports list (keyed by port
/// and protocol), so the apply takes nothing over from whoever owns the
/// old entry.
fn field_paths(d: &Deployment, container: Option<&str>, with_replicas: bool) -> FieldPaths {
    let mut fields: FieldPaths = Vec::new();
    if with_replicas {
        fields.push(("replicas".into(), vec![client::path(REPLICAS_PATH)]));
    }
    if let Some(c) = container {
        let entry = client::list_key("name", c);
        let in_container = |steps: &[&str]| {
            let mut p = client::path(&["f:spec", "f:template", "f:spec", "f:containers", &entry]);
            p.extend(steps.iter().map(|s| s.to_string()));
            p
        };
        fields.push(("image".into(), vec![in_container(&["f:image"])]));
        for (attr, kind, key) in [
            ("cpu_request", "f:requests", "f:cpu"),
            ("cpu_limit", "f:limits", "f:cpu"),
            ("memory_request", "f:requests", "f:memory"),
            ("memory_limit", "f:limits", "f:memory"),
        ] {
            fields.push((attr.into(), vec![in_container(&["f:resources", kind, key])]));
        }
    }
    // Labels go on the deployment and on its pod template.
    for key in d.labels().keys().filter(|k| !k.starts_with("himaplan.io/")) {
        let field = format!("f:{key}");
        fields.push((
            format!("labels.{key}"),
            vec![
                client::path(&["f:metadata", "f:labels", &field]),
                client::path(&["f:spec", "f:template", "f:metadata", "f:labels", &field]),
            ],
        ));
    }
    fields
}

/// The applied object: only the declared fields, plus `replicas` when
/// `replicas` is `Some`.
pub fn manifest(planned: &Value, address: &str, lineage: &str, token: Option<&str>, replicas: Option<i64>) -> serde_json::Value {
    let s = |k: &str| planned.get(k).and_then(Value::as_str).map(str::to_string);
    let name = s("name").unwrap_or_default();
    let namespace = s("namespace").unwrap_or_else(|| "default".into());
    let labels: BTreeMap<String, String> = planned
        .get("labels")
        .and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    let mut template_labels = labels.clone();
    template_labels.insert(SELECTOR_LABEL.into(), name.clone());
    let mut container = serde_json::Map::new();
    container.insert("name".into(), s("container_name").unwrap_or_else(|| name.clone()).into());
    container.insert("image".into(), s("image").unwrap_or_default().into());
    let mut requests = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    for (attr, key) in [("cpu_request", "cpu"), ("memory_request", "memory")] {
        if let Some(q) = s(attr) {
            requests.insert(key.into(), q.into());
        }
    }
    for (attr, key) in [("cpu_limit", "cpu"), ("memory_limit", "memory")] {
        if let Some(q) = s(attr) {
            limits.insert(key.into(), q.into());
        }
    }
    if !requests.is_empty() || !limits.is_empty() {
        let mut resources = serde_json::Map::new();
        if !requests.is_empty() {
            resources.insert("requests".into(), requests.into());
        }
        if !limits.is_empty() {
            resources.insert("limits".into(), limits.into());
        }
        container.insert("resources".into(), resources.into());
    }
    if let Some(port) = planned.get("port").and_then(Value::as_i64) {
        container.insert("ports".into(), json!([{ "containerPort": port, "protocol": "TCP" }]));
    }
    let mut selector = serde_json::Map::new();
    selector.insert(SELECTOR_LABEL.into(), name.clone().into());
    let mut spec = json!({
        "selector": { "matchLabels": selector },
        "template": {
            "metadata": { "labels": template_labels },
            "spec": { "containers": [container] }
        }
    });
    if let Some(r) = replicas {
        spec["replicas"] = json!(r);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&name, &namespace, address, lineage, token, &labels),
        "spec": spec,
    })
}

/// Creates, updates or deletes one deployment.
pub async fn apply(client: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    if req.action == ApplyAction::Delete {
        let Some((ns, name)) = client::item_key(&req.prior) else { return Ok(Value::Null) };
        let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
        client::delete_and_wait(&api, &name, &format!("Deployment {ns}/{name}")).await?;
        return Ok(Value::Null);
    }
    let planned = &req.planned;
    let name = planned.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let ns = planned.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string();
    let what = format!("Deployment {ns}/{name}");
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let address = req.addr.to_string();
    let token = req.token.as_deref();
    let managed = planned.get(REPLICAS_MANAGED_BY).and_then(Value::as_str).is_some_and(|m| !m.is_empty());
    let replicas = planned.get("replicas").and_then(Value::as_i64);
    let existing = if req.action == ApplyAction::Create { None } else { client::get_opt(&api, &name, &what).await? };
    let himaplan_owns = existing.as_ref().is_some_and(|d| client::owners(d, REPLICAS_PATH).iter().any(|m| m == FIELD_MANAGER));

    let ssa = |body: serde_json::Value| {
        let api = api.clone();
        let what = what.clone();
        async move {
            api.patch(&name_of(&body), &apply_params(), &Patch::Apply(&body)).await.map_err(|e| kube_error(&format!("apply {what}"), e))
        }
    };
    let result = if managed {
        // Hand replicas over without resetting them: himaplan applies them
        // while it still owns the field (or on create), a private manager
        // then claims the current count, and only then does himaplan apply
        // without the field (kubernetes.io, Server-Side Apply,
        // "Transferring ownership").
        let current = match (&existing, himaplan_owns) {
            (None, _) => Some(ssa(manifest(planned, &address, &req.lineage, token, replicas)).await?.spec.replicas),
            (Some(d), true) => Some(d.spec.replicas),
            (Some(_), false) => None,
        };
        if let Some(Some(count)) = current {
            hand_over(&api, &ns, &name, count).await?;
        }
        ssa(manifest(planned, &address, &req.lineage, token, None)).await?
    } else {
        // Replicas are sent when declared and changed, on create, or while
        // himaplan owns them (omitting an owned field would reset it).
        let send = replicas.filter(|_| existing.is_none() || himaplan_owns || req.changed.iter().any(|c| c == "replicas"));
        ssa(manifest(planned, &address, &req.lineage, token, send)).await?
    };
    Ok(observe(&result, planned))
}

/// Applies `{spec: {replicas: count}}` as the private hand-over manager,
/// without force: a conflict means the HPA controller already owns the
/// field, which is the goal.
async fn hand_over(api: &Api<Deployment>, ns: &str, name: &str, count: i32) -> Result<(), ProviderError> {
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": ns },
        "spec": { "replicas": count },
    });
    match api.patch(name, &PatchParams::apply(HANDOVER_MANAGER), &Patch::Apply(&body)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(kube_error(&format!("hand replicas of Deployment {ns}/{name} over"), e)),
    }
}

fn name_of(body: &serde_json::Value) -> String {
    body["metadata"]["name"].as_str().unwrap_or_default().to_string()
}

/// Adopts an existing deployment (`NAMESPACE/NAME`): annotates it with the
/// address and lineage (as a separate field manager, so that himaplan's
/// own apply set stays the declared fields) and reads it.
pub async fn import(client: &Client, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
    let (ns, name) = client::split_id(id)?;
    let what = format!("Deployment {ns}/{name}");
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let Some(_) = client::get_opt(&api, &name, &what).await? else {
        return Err(ProviderError::not_found(format!("{what} does not exist")));
    };
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(&name, &ns, &addr.to_string(), lineage, None, &BTreeMap::new()),
    });
    let d = api
        .patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&body))
        .await
        .map_err(|e| kube_error(&format!("annotate {what}"), e))?;
    Ok(observe(&d, &Value::Null))
}
