//! Connecting to the Kubernetes API server like kubectl does, and the
//! conventions every object shares: where the connection comes from
//! (`provider "kubernetes" { config_path, context }`, else `KUBECONFIG` /
//! `~/.kube/config`, else in-cluster), the mapping from kube-rs errors to
//! [`ProviderError`] (unreachable, forbidden, invalid), the himaplan
//! annotations and lineage label, server-side apply parameters, listing by
//! lineage and waiting for a delete to finish.
//!
//! Must not know any resource type's fields: those live in the resource
//! files. Never connects anywhere but the configured API server.

use himaplan_engine::provider::{FoundObject, ProviderError, ProviderErrorKind, ReadRequest};
use himaplan_engine::value::Value;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, ListParams, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// The field manager of every server-side apply himaplan sends.
pub const FIELD_MANAGER: &str = "himaplan";
/// The private field manager that keeps a deployment's replica count while
/// an HPA takes it over ("Transferring ownership" in the Kubernetes docs).
pub const HANDOVER_MANAGER: &str = "himaplan-handover-to-hpa";
pub const ADDRESS_ANNOTATION: &str = "himaplan.io/address";
pub const LINEAGE_ANNOTATION: &str = "himaplan.io/lineage";
pub const TOKEN_ANNOTATION: &str = "himaplan.io/token";
/// The lineage is also a label, so that reads list with a label selector
/// (annotations cannot be selected on). Annotations stay authoritative.
pub const LINEAGE_LABEL: &str = "himaplan.io/lineage";
/// How long a delete waits for the object to disappear.
const DELETE_TIMEOUT: Duration = Duration::from_secs(120);

/// The values of `provider "kubernetes" { config_path, context }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connection {
    pub config_path: Option<String>,
    pub context: Option<String>,
}

impl Connection {
    /// Reads the provider block (`Null` when absent).
    pub fn from_block(config: &Value) -> Result<Connection, ProviderError> {
        let text = |name: &str| -> Result<Option<String>, ProviderError> {
            match config.get(name).map(Value::unmarked) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => {
                    Err(ProviderError::invalid(format!("provider \"kubernetes\": {name} must be a string, not {}", other.type_name())))
                }
            }
        };
        match config.unmarked() {
            Value::Null | Value::Map(_) => Ok(Connection { config_path: text("config_path")?, context: text("context")? }),
            other => Err(ProviderError::invalid(format!("provider \"kubernetes\": expected an object, not {}", other.type_name()))),
        }
    }

    /// Builds a client. Makes no request: an unreachable server shows on
    /// the first call.
    pub async fn connect(&self) -> Result<Client, ProviderError> {
        let options = KubeConfigOptions { context: self.context.clone(), ..Default::default() };
        let config = match (&self.config_path, &self.context) {
            (Some(path), _) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| ProviderError::invalid(format!("cannot read kubeconfig {path}: {e}")).with_source(e))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| ProviderError::invalid(format!("kubeconfig {path}: {e}")).with_source(e))?
            }
            (None, Some(context)) => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| ProviderError::invalid(format!("kubeconfig context {context:?}: {e}")).with_source(e))?,
            (None, None) => Config::infer().await.map_err(|e| {
                ProviderError::invalid(format!(
                    "no Kubernetes connection configured: {e}; set KUBECONFIG, or provider \"kubernetes\" {{ config_path, context }}"
                ))
                .with_source(e)
            })?,
        };
        let url = config.cluster_url.to_string();
        Client::try_from(config)
            .map_err(|e| ProviderError::invalid(format!("cannot make a Kubernetes client for {url}: {e}")).with_source(e))
    }
}

/// Maps a kube-rs error of `what` (e.g. "apply Deployment default/web"),
/// keeping it as the source.
pub fn kube_error(what: &str, err: kube::Error) -> ProviderError {
    let error = match &err {
        kube::Error::Api(status) => classify_status(what, status.code, &status.reason, &status.message),
        other => {
            let chain = error_chain(other);
            let lower = chain.to_ascii_lowercase();
            // A refused or unresolvable connection will not heal by
            // retrying within one run: say where and what to do.
            if lower.contains("connection refused")
                || lower.contains("dns error")
                || lower.contains("no route to host")
                || lower.contains("certificate")
            {
                ProviderError::other(format!(
                    "{what}: cannot reach the Kubernetes API server: {chain}; is it running, and do KUBECONFIG / provider \"kubernetes\" {{ config_path, context }} point at it?"
                ))
            } else {
                ProviderError::transient(format!("{what}: {chain}"))
            }
        }
    };
    error.with_source(err)
}

/// Classifies an API server answer by status (pure, testable offline):
/// 409 (AlreadyExists, a stale resourceVersion) is a conflict, other 4xx
/// refusals are invalid requests.
pub fn classify_status(what: &str, code: u16, reason: &str, message: &str) -> ProviderError {
    use ProviderErrorKind::{Conflict, Invalid, NotFound, Other, Transient};
    let (kind, text) = match code {
        // Writing into a namespace that does not exist answers 404 about
        // the namespace, not the object: nothing vanished, the
        // configuration names a namespace to create first.
        404 if missing_namespace(message).is_some() => {
            let ns = missing_namespace(message).unwrap_or_default();
            (
                Invalid,
                format!(
                    "{what}: namespace {ns:?} does not exist; create it first (kubectl create namespace {ns}) or set namespace to an existing one"
                ),
            )
        }
        404 => (NotFound, format!("{what}: {message}")),
        401 => (Invalid, format!("{what}: unauthorized: {message}; check the credentials of the kubeconfig context")),
        403 => (Invalid, format!("{what}: forbidden: {message}")),
        422 => (Invalid, format!("{what}: the API server rejected the object: {message}")),
        429 => (Transient, format!("{what}: throttled: {message}")),
        c if c >= 500 => (Transient, format!("{what}: {message}")),
        409 => (Conflict, reason_and_message(what, reason, message)),
        400..=499 => (Invalid, reason_and_message(what, reason, message)),
        _ => (Other, reason_and_message(what, reason, message)),
    };
    ProviderError::new(kind, text)
}

/// The namespace of an API answer `namespaces "NAME" not found`.
fn missing_namespace(message: &str) -> Option<&str> {
    message.strip_prefix("namespaces \"")?.strip_suffix("\" not found")
}

fn reason_and_message(what: &str, reason: &str, message: &str) -> String {
    if reason.is_empty() { format!("{what}: {message}") } else { format!("{what}: {reason}: {message}") }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Server-side apply as himaplan, taking over fields other managers set.
pub fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// The `metadata` of an applied object: name, namespace, himaplan's
/// annotations and lineage label, plus `labels`.
pub fn metadata(
    name: &str,
    namespace: &str,
    address: &str,
    lineage: &str,
    token: Option<&str>,
    labels: &BTreeMap<String, String>,
) -> serde_json::Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(ADDRESS_ANNOTATION.into(), address.into());
    annotations.insert(LINEAGE_ANNOTATION.into(), lineage.into());
    if let Some(t) = token {
        annotations.insert(TOKEN_ANNOTATION.into(), t.into());
    }
    let mut all_labels: serde_json::Map<String, serde_json::Value> = labels.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    if is_label_value(lineage) {
        all_labels.insert(LINEAGE_LABEL.into(), lineage.into());
    }
    serde_json::json!({ "name": name, "namespace": namespace, "annotations": annotations, "labels": all_labels })
}

/// Whether `s` is a valid label value (63 characters of `[A-Za-z0-9._-]`,
/// alphanumeric at both ends, or empty).
pub fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_none_or(|c| c.is_ascii_alphanumeric())
}

/// himaplan's annotations of an object.
pub struct Marks {
    pub address: Option<String>,
    pub lineage: Option<String>,
    pub token: Option<String>,
    pub created: String,
}

pub fn marks<K: Resource>(obj: &K) -> Marks {
    let meta = obj.meta();
    let get = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k)).cloned();
    Marks {
        address: get(ADDRESS_ANNOTATION),
        lineage: get(LINEAGE_ANNOTATION),
        token: get(TOKEN_ANNOTATION),
        created: meta.creation_timestamp.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
    }
}

/// Every object of kind `K` in `namespace` (all namespaces when `None`)
/// carrying `lineage`: one paginated list with the lineage label selector,
/// filtered by the lineage annotation.
pub async fn list_lineage<K>(client: &Client, namespace: Option<&str>, lineage: &str) -> Result<Vec<K>, kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut params = ListParams::default().limit(500);
    if is_label_value(lineage) {
        params = params.labels(&format!("{LINEAGE_LABEL}={lineage}"));
    }
    let mut out = Vec::new();
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        out.extend(page.items.into_iter().filter(|o| marks(o).lineage.as_deref() == Some(lineage)));
        match next {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    Ok(out)
}

/// `(namespace, name)` of a requested instance, from its prior attributes.
pub fn item_key(prior: &Value) -> Option<(String, String)> {
    if let Some(id) = prior.get("id").and_then(Value::as_str)
        && let Some((ns, name)) = id.split_once('/')
    {
        return Some((ns.to_string(), name.to_string()));
    }
    let ns = prior.get("namespace").and_then(Value::as_str).unwrap_or("default");
    prior.get("name").and_then(Value::as_str).map(|n| (ns.to_string(), n.to_string()))
}

/// What one batched read found: the requested objects (same order as
/// `req.items`, `None` when gone) and the other objects of the lineage.
pub struct Fetched<K> {
    pub current: Vec<Option<K>>,
    pub others: Vec<K>,
}

/// Reads every requested object of kind `K` and the others of the lineage:
/// one cluster-wide list by lineage label (per namespace of the requested
/// objects when cluster-wide listing is forbidden), plus a get for a
/// requested object the list missed (its lineage label was removed).
pub async fn fetch<K>(client: &Client, req: &ReadRequest, what: &str) -> Result<Fetched<K>, ProviderError>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let wanted: Vec<Option<(String, String)>> = req.items.iter().map(|i| item_key(&i.prior)).collect();
    let listed = match list_lineage::<K>(client, None, &req.lineage).await {
        Ok(list) => list,
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let namespaces: BTreeSet<&str> = wanted.iter().flatten().map(|(ns, _)| ns.as_str()).collect();
            let mut all = Vec::new();
            for ns in namespaces {
                all.extend(
                    list_lineage::<K>(client, Some(ns), &req.lineage)
                        .await
                        .map_err(|e| kube_error(&format!("list {what} in namespace {ns}"), e))?,
                );
            }
            all
        }
        Err(e) => return Err(kube_error(&format!("list {what}"), e)),
    };
    let mut by_key: BTreeMap<(String, String), K> = BTreeMap::new();
    for obj in listed {
        let meta = obj.meta();
        by_key.insert((meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default()), obj);
    }
    let mut current = Vec::with_capacity(wanted.len());
    for key in wanted {
        let Some((ns, name)) = key else {
            current.push(None);
            continue;
        };
        match by_key.remove(&(ns.clone(), name.clone())) {
            Some(obj) => current.push(Some(obj)),
            None => {
                let api: Api<K> = Api::namespaced(client.clone(), &ns);
                current.push(get_opt(&api, &name, &format!("{what} {ns}/{name}")).await?);
            }
        }
    }
    Ok(Fetched { current, others: by_key.into_values().collect() })
}

/// The [`FoundObject`] of an object of the lineage that was not requested.
pub fn found<K: Resource>(obj: &K, attrs: Value) -> FoundObject {
    let m = marks(obj);
    let meta = obj.meta();
    FoundObject {
        id: object_id(meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default()),
        address: m.address.and_then(|a| a.parse().ok()),
        token: m.token,
        created: m.created,
        attrs,
    }
}

/// Field managers other than himaplan's own that own `path` (e.g.
/// `["f:spec", "f:replicas"]`) of an object, in the server's order.
pub fn other_owners<K: Resource, S: AsRef<str>>(obj: &K, path: &[S]) -> Vec<String> {
    owners(obj, path).into_iter().filter(|m| m != FIELD_MANAGER && m != HANDOVER_MANAGER).collect()
}

/// Every field manager owning `path`.
pub fn owners<K: Resource, S: AsRef<str>>(obj: &K, path: &[S]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in obj.meta().managed_fields.iter().flatten() {
        let mut node = entry.fields_v1.as_ref().map(|f| &f.0);
        for step in path {
            node = node.and_then(|n| n.get(step.as_ref()));
        }
        if node.is_some()
            && let Some(m) = &entry.manager
            && !out.contains(m)
        {
            out.push(m.clone());
        }
    }
    out
}

/// Where an attribute lives in an object, as `managedFields` paths
/// (`f:` for a field, `k:{...}` for the list entry with that key): the
/// attribute is owned by whoever owns any of them.
pub type FieldPaths = Vec<(String, Vec<Vec<String>>)>;

/// A `managedFields` path from its steps.
pub fn path(steps: &[&str]) -> Vec<String> {
    steps.iter().map(|s| s.to_string()).collect()
}

/// The `k:` step of the list entry whose key field `key` is `value` (e.g.
/// the container named "web": `k:{"name":"web"}`), as the server writes it.
pub fn list_key(key: &str, value: &str) -> String {
    format!("k:{}", serde_json::json!({ key: value }))
}

/// The attributes of `fields` that field managers other than himaplan's own
/// own, as `attribute → "manager,manager"`: the managers a forced apply
/// takes a changed attribute from, which the plan names (SPEC §4:
/// conflicts are resolved with `force`, and the plan names the manager
/// being overridden). Attributes no other manager owns are left out.
pub fn fields_set_by<K: Resource>(obj: &K, fields: &FieldPaths) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (attr, paths) in fields {
        let mut managers: Vec<String> = Vec::new();
        for p in paths {
            for m in other_owners(obj, p) {
                if !managers.contains(&m) {
                    managers.push(m);
                }
            }
        }
        if !managers.is_empty() {
            out.insert(attr.clone(), Value::from(managers.join(",")));
        }
    }
    out
}

/// Gets one object; `None` when it does not exist.
pub async fn get_opt<K>(api: &Api<K>, name: &str, what: &str) -> Result<Option<K>, ProviderError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    api.get_opt(name).await.map_err(|e| kube_error(&format!("get {what}"), e))
}

/// Deletes with background propagation and waits until the object is
/// gone. An object already gone is fine.
pub async fn delete_and_wait<K>(api: &Api<K>, name: &str, what: &str) -> Result<(), ProviderError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(kube_error(&format!("delete {what}"), e)),
    }
    let deadline = Instant::now() + DELETE_TIMEOUT;
    let mut pause = Duration::from_millis(50);
    loop {
        if get_opt(api, name, what).await?.is_none() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ProviderError::transient(format!(
                "delete {what}: still present after {} s (finalizers?)",
                DELETE_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// `namespace/name`, the id of every namespaced object here.
pub fn object_id(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Splits an import id `namespace/name` (a bare name means `default`).
pub fn split_id(id: &str) -> Result<(String, String), ProviderError> {
    match id.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => Ok((ns.to_string(), name.to_string())),
        None if !id.is_empty() => Ok(("default".to_string(), id.to_string())),
        _ => Err(ProviderError::invalid(format!("import id {id:?}: expected NAMESPACE/NAME"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_not_found_transient_and_permanent() {
        assert_eq!(classify_status("get x", 404, "NotFound", "gone").kind(), ProviderErrorKind::NotFound);
        assert_eq!(classify_status("get x", 404, "NotFound", "namespaces \"x").kind(), ProviderErrorKind::NotFound);
        assert!(classify_status("apply x", 503, "", "busy").is_transient());
        assert!(classify_status("apply x", 429, "", "slow down").is_transient());
        let e = classify_status("apply Deployment default/web", 422, "Invalid", "metadata.labels: Invalid value: \"a b\"");
        assert_eq!(e.kind(), ProviderErrorKind::Invalid, "{e:?}");
        assert!(e.message().contains("rejected") && e.message().contains("Invalid value"), "{e}");
        let e = classify_status("list deployments", 403, "Forbidden", "user cannot list");
        assert_eq!(e.kind(), ProviderErrorKind::Invalid, "{e:?}");
        assert!(e.message().contains("forbidden"), "{e}");
        let e = classify_status("create Deployment default/web", 409, "AlreadyExists", "deployments \"web\" already exists");
        assert_eq!(e.kind(), ProviderErrorKind::Conflict, "{e:?}");
        assert_eq!(e.message(), "create Deployment default/web: AlreadyExists: deployments \"web\" already exists");
    }

    #[test]
    fn a_missing_namespace_says_to_create_it_not_that_the_object_vanished() {
        // A create into namespace "nope" printed the API's `namespaces "nope"
        // not found` and then "The object no longer exists; run plan again".
        let e = classify_status("apply Deployment nope/web", 404, "NotFound", "namespaces \"nope\" not found");
        assert_eq!(e.kind(), ProviderErrorKind::Invalid, "{e:?}");
        let diag = himaplan_engine::engine::provider_error("kubernetes_deployment.web: create", &e).to_string();
        assert!(diag.contains("namespace \"nope\" does not exist; create it first (kubectl create namespace nope)"), "{diag}");
        assert!(!diag.contains("no longer exists"), "{diag}");
    }

    #[test]
    fn provider_block_values() {
        let block = Value::Map([("config_path".to_string(), Value::from("/k")), ("context".to_string(), Value::from(""))].into());
        assert_eq!(Connection::from_block(&block).ok(), Some(Connection { config_path: Some("/k".into()), context: None }));
        assert_eq!(Connection::from_block(&Value::Null).ok(), Some(Connection::default()));
        assert!(Connection::from_block(&Value::Map([("context".to_string(), Value::from(1.0))].into())).is_err());
    }

    #[test]
    fn ids_and_label_values() {
        assert_eq!(split_id("prod/web").ok(), Some(("prod".into(), "web".into())));
        assert_eq!(split_id("web").ok(), Some(("default".into(), "web".into())));
        assert!(split_id("a/b/c").is_err() && split_id("").is_err());
        assert!(is_label_value("5f1c2d3e-aaaa-4bbb-8ccc-123456789abc"));
        assert!(!is_label_value("-a") && !is_label_value(&"a".repeat(64)));
        assert!(!is_label_value("a b"));
    }
}
