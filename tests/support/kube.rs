//! A real kube-apiserver (with etcd) for the Kubernetes tests, started by
//! `scripts/servers/kube-apiserver.sh start` on loopback, and a kube-rs
//! client to read back what himaplan stored.
//!
//! Declare it with `#[path = "support/kube.rs"] mod kube;`. The server is
//! shared by every test of the binary (the script is idempotent and leaves
//! it running for the next binary); tests keep apart by using a namespace
//! of their own, since no controller manager runs to ever finish deleting a
//! namespace. Without the server the tests skip, except under `CI=true`,
//! where they fail and say why. Nothing here talks to a non-loopback address.

#![allow(dead_code, reason = "each test uses a different subset of the helpers")]

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The running server.
pub struct KubeServer {
    pub kubeconfig: PathBuf,
}

static SERVER: OnceLock<Result<KubeServer, String>> = OnceLock::new();

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn start() -> Result<KubeServer, String> {
    let script = repo().join("scripts/servers/kube-apiserver.sh");
    let out = Command::new("bash").arg(&script).arg("start").output().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("kube-apiserver.sh start failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kubeconfig = stdout
        .lines()
        .find_map(|l| l.strip_prefix("export KUBECONFIG="))
        .map(|p| PathBuf::from(p.trim()))
        .ok_or_else(|| format!("kube-apiserver.sh start printed no KUBECONFIG: {stdout}"))?;
    Ok(KubeServer { kubeconfig })
}

/// The shared server, or `None` when the test should be skipped.
pub fn server() -> Option<&'static KubeServer> {
    match SERVER.get_or_init(start) {
        Ok(s) => Some(s),
        Err(why) if std::env::var("CI").as_deref() == Ok("true") => panic!("kube-apiserver is required under CI=true: {why}"),
        Err(why) => {
            eprintln!("skipping: kube-apiserver is not available ({why})");
            None
        }
    }
}

impl KubeServer {
    pub fn kubeconfig_str(&self) -> &str {
        self.kubeconfig.to_str().expect("kubeconfig path is UTF-8")
    }

    /// The environment for the `himaplan` binary.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("KUBECONFIG", self.kubeconfig_str().to_string())]
    }

    /// A kube-rs client as the admin user.
    pub async fn client(&self) -> kube::Client {
        let connection =
            himaplan::providers::kubernetes::client::Connection { config_path: Some(self.kubeconfig_str().to_string()), context: None };
        connection.connect().await.expect("kube client")
    }

    /// Creates a fresh namespace for one test: `PREFIX-<unique suffix>`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let name = format!("{prefix}-{:x}{:x}", std::process::id(), nanos % 0xffff_ffff);
        let api: Api<Namespace> = Api::all(self.client().await);
        let ns: Namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": name } })).expect("namespace");
        api.create(&PostParams::default(), &ns).await.expect("create namespace");
        name
    }
}

/// Sets a deployment's replicas the way `kubectl scale` does: a merge
/// patch of the scale subresource under another field manager.
pub async fn scale_as(client: &kube::Client, namespace: &str, name: &str, replicas: i32, manager: &str) {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams { field_manager: Some(manager.to_string()), ..Default::default() };
    api.patch_scale(name, &params, &Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } })))
        .await
        .expect("scale as another field manager");
}
