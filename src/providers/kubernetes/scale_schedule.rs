//! `kubernetes_scale_schedule`: a `batch/v1` CronJob that scales a
//! deployment at the times of a cron schedule, plus the ServiceAccount,
//! Role and RoleBinding (all named like the schedule) that give its job
//! the rights SPEC §4 lists for its one kubectl command:
//! - `kubectl scale deployment TARGET --replicas=N` (Role: get on
//!   `deployments`, get/patch on `deployments/scale`), or
//! - when an HPA of the configuration targets the deployment (decided by
//!   `adjust_desired`, recorded in `scales_via_hpa`), `kubectl patch hpa
//!   NAME --type=merge -p '{"spec":{"minReplicas":N}}'` (Role: get/patch on
//!   `horizontalpodautoscalers`), since the HPA would undo a direct scale.
//!
//! Every rule is limited to the one object by `resourceNames`. Run for real
//! (tests/kubernetes_jobs.rs), kubectl v1.37.2 needs each of these verbs
//! except `get` on `deployments/scale`, which `kubectl scale` without
//! preconditions never uses; SPEC grants it, so it stays. Must not
//! decide the mode itself: it applies what the planned value says.

use super::client::{self, Fetched, FieldPaths, apply_params, kube_error, metadata, object_id};
use super::schema::{DEFAULT_KUBECTL_IMAGE, FIELDS_SET_BY, SCALES_VIA_HPA};
use himaplan_engine::addr::InstanceAddr;
use himaplan_engine::provider::{ApplyAction, ApplyRequest, ProviderError, ReadRequest, ReadResponse};
use himaplan_engine::value::Value;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, Patch};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::collections::BTreeMap;

/// The CronJob annotation naming the deployment (the HPA patch command
/// names only the HPA).
pub const TARGET_ANNOTATION: &str = "himaplan.io/scale-target";
/// What `scales_via_hpa` reads when the job's RBAC objects are missing or
/// differ from what its command needs: a value no plan desires, so the plan
/// shows a change and apply restores them.
pub const RBAC_DRIFTED: &str = "(RBAC objects missing or changed)";
/// The job's one container.
const CONTAINER_NAME: &str = "kubectl";

/// What the job's command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `kubectl scale deployment TARGET --replicas=N`.
    ScaleDeployment { target: String, replicas: i64 },
    /// `kubectl patch hpa NAME` setting `minReplicas`.
    PatchHpaMin { hpa: String, replicas: i64 },
}

impl Action {
    pub fn command(&self) -> Vec<String> {
        match self {
            Action::ScaleDeployment { target, replicas } => {
                vec!["kubectl".into(), "scale".into(), "deployment".into(), target.clone(), format!("--replicas={replicas}")]
            }
            Action::PatchHpaMin { hpa, replicas } => vec![
                "kubectl".into(),
                "patch".into(),
                "hpa".into(),
                hpa.clone(),
                "--type=merge".into(),
                "-p".into(),
                json!({ "spec": { "minReplicas": replicas } }).to_string(),
            ],
        }
    }

    /// Parses a command this module wrote; `None` for anything else.
    pub fn parse(command: &[String]) -> Option<Action> {
        let c: Vec<&str> = command.iter().map(String::as_str).collect();
        match c.as_slice() {
            ["kubectl", "scale", "deployment", target, r] => {
                Some(Action::ScaleDeployment { target: target.to_string(), replicas: r.strip_prefix("--replicas=")?.parse().ok()? })
            }
            ["kubectl", "patch", "hpa", hpa, "--type=merge", "-p", patch] => {
                let v: serde_json::Value = serde_json::from_str(patch).ok()?;
                Some(Action::PatchHpaMin { hpa: hpa.to_string(), replicas: v["spec"]["minReplicas"].as_i64()? })
            }
            _ => None,
        }
    }

    /// The Role rules of the command (SPEC §4).
    pub fn rules(&self) -> serde_json::Value {
        match self {
            Action::ScaleDeployment { target, .. } => json!([
                { "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [target], "verbs": ["get"] },
                { "apiGroups": ["apps"], "resources": ["deployments/scale"], "resourceNames": [target], "verbs": ["get", "patch"] },
            ]),
            Action::PatchHpaMin { hpa, .. } => json!([
                { "apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "resourceNames": [hpa], "verbs": ["get", "patch"] },
            ]),
        }
    }
}

/// The job's action from a planned value.
pub fn planned_action(planned: &Value) -> Action {
    let replicas = planned.get("replicas").and_then(Value::as_i64).unwrap_or(0);
    match planned.get(SCALES_VIA_HPA).and_then(Value::as_str).filter(|h| !h.is_empty()) {
        Some(hpa) => Action::PatchHpaMin { hpa: hpa.to_string(), replicas },
        None => Action::ScaleDeployment { target: planned.get("target").and_then(Value::as_str).unwrap_or_default().to_string(), replicas },
    }
}

/// The job's RBAC objects as found, for [`observe`].
pub struct Rbac<'a> {
    pub account: Option<&'a ServiceAccount>,
    pub role: Option<&'a Role>,
    pub binding: Option<&'a RoleBinding>,
}

pub async fn read(client: &Client, req: &ReadRequest) -> Result<ReadResponse, ProviderError> {
    let Fetched { current, others } = client::fetch::<CronJob>(client, req, "cronjobs").await?;
    let accounts = client::fetch::<ServiceAccount>(client, req, "serviceaccounts").await?.current;
    let roles = client::fetch::<Role>(client, req, "roles").await?.current;
    let bindings = client::fetch::<RoleBinding>(client, req, "rolebindings").await?.current;
    let current = current
        .iter()
        .enumerate()
        .map(|(i, cj)| {
            cj.as_ref().map(|cj| {
                let rbac = Rbac { account: accounts[i].as_ref(), role: roles[i].as_ref(), binding: bindings[i].as_ref() };
                observe(cj, &rbac)
            })
        })
        .collect();
    let none = Rbac { account: None, role: None, binding: None };
    let others = others.iter().map(|cj| client::found(cj, observe(cj, &none))).collect();
    Ok(ReadResponse { current, others })
}

fn job_container(cj: &CronJob) -> Option<&k8s_openapi::api::core::v1::Container> {
    cj.spec.job_template.spec.as_ref()?.template.spec.as_ref()?.containers.first()
}

pub fn observe(cj: &CronJob, rbac: &Rbac) -> Value {
    let namespace = cj.namespace().unwrap_or_default();
    let name = cj.name_any();
    let spec = Some(&cj.spec);
    let container = job_container(cj);
    let action = container.and_then(|c| c.command.as_ref()).and_then(|c| Action::parse(c));
    let annotated_target = cj.annotations().get(TARGET_ANNOTATION).cloned();
    let (target, replicas, via_hpa) = match &action {
        Some(Action::ScaleDeployment { target, replicas }) => (Some(target.clone()), Some(*replicas), String::new()),
        Some(Action::PatchHpaMin { hpa, replicas }) => (annotated_target, Some(*replicas), hpa.clone()),
        None => (annotated_target, None, RBAC_DRIFTED.to_string()),
    };
    let rbac_ok = action.as_ref().is_some_and(|a| rbac_matches(a, &namespace, &name, rbac));
    let mut attrs = BTreeMap::new();
    attrs.insert("namespace".to_string(), Value::from(namespace.as_str()));
    attrs.insert("name".to_string(), Value::from(name.as_str()));
    attrs.insert("id".to_string(), Value::from(object_id(&namespace, &name)));
    attrs.insert("schedule".to_string(), spec.map(|s| Value::from(s.schedule.as_str())).unwrap_or(Value::Null));
    attrs.insert("time_zone".to_string(), spec.and_then(|s| s.time_zone.clone()).map(Value::from).unwrap_or(Value::Null));
    attrs.insert("image".to_string(), container.and_then(|c| c.image.clone()).map(Value::from).unwrap_or(Value::Null));
    attrs.insert("target".to_string(), target.map(Value::from).unwrap_or(Value::Null));
    attrs.insert("replicas".to_string(), replicas.map(Value::from).unwrap_or(Value::Null));
    attrs.insert(SCALES_VIA_HPA.to_string(), Value::from(if rbac_ok { via_hpa } else { RBAC_DRIFTED.to_string() }));
    let mut set_by = client::fields_set_by(cj, &field_paths());
    // The mode also decides the Role's rules.
    if let Some(role) = rbac.role {
        let rules = client::fields_set_by(role, &vec![(SCALES_VIA_HPA.to_string(), vec![client::path(&["f:rules"])])]);
        for (attr, managers) in rules {
            set_by
                .entry(attr)
                .and_modify(|m| *m = Value::from(format!("{},{}", m.as_str().unwrap_or_default(), managers.as_str().unwrap_or_default())))
                .or_insert(managers);
        }
    }
    attrs.insert(FIELDS_SET_BY.to_string(), Value::Map(set_by.into()));
    Value::Map(attrs.into())
}

/// Where each attribute lives in the CronJob's `managedFields`: the
/// target, count and mode are all in the container's command (an atomic
/// list).
fn field_paths() -> FieldPaths {
    let container = |field: &str| {
        client::path(&[
            "f:spec",
            "f:jobTemplate",
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            &client::list_key("name", CONTAINER_NAME),
            field,
        ])
    };
    vec![
        ("schedule".into(), vec![client::path(&["f:spec", "f:schedule"])]),
        ("time_zone".into(), vec![client::path(&["f:spec", "f:timeZone"])]),
        ("image".into(), vec![container("f:image")]),
        ("target".into(), vec![container("f:command")]),
        ("replicas".into(), vec![container("f:command")]),
        (SCALES_VIA_HPA.into(), vec![container("f:command")]),
    ]
}

/// Whether the ServiceAccount exists, the Role grants exactly what the
/// command needs, and the RoleBinding ties them together.
fn rbac_matches(action: &Action, namespace: &str, name: &str, rbac: &Rbac) -> bool {
    let role_ok = rbac.role.is_some_and(|r| serde_json::to_value(r.rules.clone().unwrap_or_default()).ok() == Some(action.rules()));
    let binding_ok = rbac.binding.is_some_and(|b| {
        b.role_ref.kind == "Role"
            && b.role_ref.name == name
            && b.subjects
                .iter()
                .flatten()
                .any(|s| s.kind == "ServiceAccount" && s.name == name && s.namespace.as_deref().is_none_or(|ns| ns == namespace))
    });
    rbac.account.is_some() && role_ok && binding_ok
}

/// The four objects, in the order they are applied.
pub fn manifests(planned: &Value, address: &str, lineage: &str, token: Option<&str>) -> Vec<serde_json::Value> {
    let s = |k: &str| planned.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let name = s("name");
    let namespace = planned.get("namespace").and_then(Value::as_str).unwrap_or("default").to_string();
    let meta = || metadata(&name, &namespace, address, lineage, token, &BTreeMap::new());
    let action = planned_action(planned);
    let image = planned.get("image").and_then(Value::as_str).unwrap_or(DEFAULT_KUBECTL_IMAGE).to_string();
    let mut cron_meta = meta();
    cron_meta["annotations"][TARGET_ANNOTATION] = json!(s("target"));
    vec![
        json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta() }),
        json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(), "rules": action.rules() }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
            "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": namespace }],
        }),
        json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": cron_meta,
            "spec": {
                "schedule": s("schedule"),
                "timeZone": s("time_zone"),
                // One scaling at a time; a late run is still worth doing
                // within five minutes, not after an outage of hours.
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": { "spec": {
                    "backoffLimit": 3,
                    "template": { "spec": {
                        "serviceAccountName": name,
                        "restartPolicy": "OnFailure",
                        "containers": [{ "name": CONTAINER_NAME, "image": image, "command": action.command() }],
                    }},
                }},
            },
        }),
    ]
}

pub async fn apply(client: &Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    if req.action == ApplyAction::Delete {
        let Some((ns, name)) = client::item_key(&req.prior) else { return Ok(Value::Null) };
        let what = |kind: &str| format!("{kind} {ns}/{name}");
        client::delete_and_wait(&Api::<CronJob>::namespaced(client.clone(), &ns), &name, &what("CronJob")).await?;
        client::delete_and_wait(&Api::<RoleBinding>::namespaced(client.clone(), &ns), &name, &what("RoleBinding")).await?;
        client::delete_and_wait(&Api::<Role>::namespaced(client.clone(), &ns), &name, &what("Role")).await?;
        client::delete_and_wait(&Api::<ServiceAccount>::namespaced(client.clone(), &ns), &name, &what("ServiceAccount")).await?;
        return Ok(Value::Null);
    }
    let bodies = manifests(&req.planned, &req.addr.to_string(), &req.lineage, req.token.as_deref());
    let name = bodies[0]["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let ns = bodies[0]["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let pp = apply_params();
    let what = |kind: &str| format!("apply {kind} {ns}/{name}");
    let account = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&bodies[0]))
        .await
        .map_err(|e| kube_error(&what("ServiceAccount"), e))?;
    let role = Api::<Role>::namespaced(client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&bodies[1]))
        .await
        .map_err(|e| kube_error(&what("Role"), e))?;
    let binding = Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&bodies[2]))
        .await
        .map_err(|e| kube_error(&what("RoleBinding"), e))?;
    let cj = Api::<CronJob>::namespaced(client.clone(), &ns)
        .patch(&name, &pp, &Patch::Apply(&bodies[3]))
        .await
        .map_err(|e| kube_error(&what("CronJob"), e))?;
    Ok(observe(&cj, &Rbac { account: Some(&account), role: Some(&role), binding: Some(&binding) }))
}

/// Adopts an existing CronJob made by himaplan under another state: reads
/// it and its RBAC objects, and annotates the CronJob.
pub async fn import(client: &Client, addr: &InstanceAddr, id: &str, lineage: &str) -> Result<Value, ProviderError> {
    let (ns, name) = client::split_id(id)?;
    let what = format!("CronJob {ns}/{name}");
    let api: Api<CronJob> = Api::namespaced(client.clone(), &ns);
    if client::get_opt(&api, &name, &what).await?.is_none() {
        return Err(ProviderError::not_found(format!("{what} does not exist")));
    }
    let body = json!({ "apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata(&name, &ns, &addr.to_string(), lineage, None, &BTreeMap::new()) });
    let cj = api.patch(&name, &apply_params(), &Patch::Apply(&body)).await.map_err(|e| kube_error(&format!("annotate {what}"), e))?;
    let account = client::get_opt(&Api::<ServiceAccount>::namespaced(client.clone(), &ns), &name, "ServiceAccount").await?;
    let role = client::get_opt(&Api::<Role>::namespaced(client.clone(), &ns), &name, "Role").await?;
    let binding = client::get_opt(&Api::<RoleBinding>::namespaced(client.clone(), &ns), &name, "RoleBinding").await?;
    Ok(observe(&cj, &Rbac { account: account.as_ref(), role: role.as_ref(), binding: binding.as_ref() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for a in [Action::ScaleDeployment { target: "web".into(), replicas: 2 }, Action::PatchHpaMin { hpa: "web".into(), replicas: 6 }] {
            assert_eq!(Action::parse(&a.command()), Some(a.clone()));
        }
        assert_eq!(
            Action::PatchHpaMin { hpa: "web".into(), replicas: 6 }.command().join(" "),
            r#"kubectl patch hpa web --type=merge -p {"spec":{"minReplicas":6}}"#
        );
    }
}
