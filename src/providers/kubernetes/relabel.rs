//! Relabelling for `moved`: a deployment's or autoscaler's
//! `himaplan.io/address` annotation set to its new address with a merge
//! patch (no field manager: the annotation is himaplan's bookkeeping, not
//! configuration). Scale schedules are found by their names, not by the
//! annotation, and are not relabelled.

use super::client::{ADDRESS_ANNOTATION, item_key, kube_error};
use super::schema;
use himaplan_engine::provider::{ApplyRequest, ProviderError};
use himaplan_engine::value::Value;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

/// Patches the annotation of the object `req.prior` names; returns `prior`.
pub async fn relabel(client: Client, req: &ApplyRequest) -> Result<Value, ProviderError> {
    let (namespace, name) =
        item_key(&req.prior).ok_or_else(|| ProviderError::invalid(format!("{}: no namespace/name in state to relabel", req.addr)))?;
    let patch = Patch::Merge(serde_json::json!({ "metadata": { "annotations": { ADDRESS_ANNOTATION: req.addr.to_string() } } }));
    let params = PatchParams::default();
    let what = format!("annotating {namespace}/{name}");
    match req.rtype.as_str() {
        schema::DEPLOYMENT_TYPE => {
            Api::<Deployment>::namespaced(client, &namespace).patch(&name, &params, &patch).await.map_err(|e| kube_error(&what, e))?;
        }
        schema::HPA_TYPE => {
            Api::<HorizontalPodAutoscaler>::namespaced(client, &namespace)
                .patch(&name, &params, &patch)
                .await
                .map_err(|e| kube_error(&what, e))?;
        }
        _ => {}
    }
    Ok(req.prior.clone())
}
