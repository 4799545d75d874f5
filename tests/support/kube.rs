//! A real kube-apiserver (with etcd) for the Kubernetes tests, started by
//! `scripts/servers/kube-apiserver.sh start` on loopback, a kube-rs client
//! to read back what himaplan stored, and the real `kubectl` (v1.37.2, built
//! by the same script from the same module) for what a person or a
//! CronJob's pod would run against it.
//!
//! Declare it with `#[path = "support/kube.rs"] mod kube;`. The server is
//! shared by every test of the binary (the script is idempotent and leaves
//! it running for the next binary); tests keep apart by using a namespace
//! of their own, since no controller manager runs to ever finish deleting a
//! namespace. Without the server (or its kubectl) the tests skip, except
//! under `CI=true`, where they fail and say why. Nothing here talks to a
//! non-loopback address.
//!
//! kubectl always runs with a clean environment: `PATH` holds only a
//! directory with `kubectl` linked to the built binary (so that argv[0], and
//! with it kubectl's default field manager, is `kubectl` as in a pod, and no
//! other kubectl on the machine can be picked up), and `HOME` is a fresh
//! directory for its discovery cache.

#![allow(dead_code, reason = "each test uses a different subset of the helpers")]

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The running server.
pub struct KubeServer {
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// The built kubectl, `$HIMAPLAN_CACHE/kube/bin/kubectl-v1.37.2`.
    pub kubectl: PathBuf,
}

/// What a kubectl run printed and how it ended.
pub struct KubectlRun {
    pub argv: Vec<String>,
    pub output: Output,
}

impl KubectlRun {
    pub fn success(&self) -> bool {
        self.output.status.success()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Panics with the command and its output unless it succeeded.
    pub fn assert_success(&self) -> &KubectlRun {
        assert!(
            self.success(),
            "{:?} failed ({}):\nstdout: {}\nstderr: {}",
            self.argv,
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            self.stderr()
        );
        self
    }
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
    // `export A=1 B=2` lines.
    let exported = |name: &str| {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .flat_map(str::split_whitespace)
            .find_map(|pair| pair.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
            .map(str::to_string)
            .ok_or_else(|| format!("kube-apiserver.sh start printed no {name}: {stdout}"))
    };
    let kubectl = PathBuf::from(exported("KUBECTL")?);
    if !kubectl.is_file() {
        return Err(format!("kube-apiserver.sh start named kubectl {} but it does not exist", kubectl.display()));
    }
    Ok(KubeServer {
        kubeconfig: PathBuf::from(exported("KUBECONFIG")?),
        url: exported("KUBE_APISERVER_URL")?,
        ca: PathBuf::from(exported("KUBE_APISERVER_CA")?),
        kubectl,
    })
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

impl KubeServer {
    /// Runs the real `kubectl ARGS` as the admin user (in the clean
    /// environment of the module docs).
    pub fn kubectl(&self, args: &[&str]) -> KubectlRun {
        let argv: Vec<String> = std::iter::once("kubectl").chain(args.iter().copied()).map(str::to_string).collect();
        self.run_kubectl(&argv, &self.kubeconfig)
    }

    /// Runs `argv` (whose first word must be `kubectl`) with `KUBECONFIG`.
    fn run_kubectl(&self, argv: &[String], kubeconfig: &Path) -> KubectlRun {
        assert_eq!(argv.first().map(String::as_str), Some("kubectl"), "only kubectl is available: {argv:?}");
        let home = tempfile::Builder::new().prefix("himaplan-kubectl-").tempdir().expect("temp dir");
        let bin = home.path().join("bin");
        std::fs::create_dir(&bin).expect("bin dir");
        std::os::unix::fs::symlink(&self.kubectl, bin.join("kubectl")).expect("link kubectl");
        let output = Command::new(bin.join("kubectl"))
            .args(&argv[1..])
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", home.path())
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.kubectl.display()));
        KubectlRun { argv: argv.to_vec(), output }
    }

    /// A token for ServiceAccount `namespace/name`, from the TokenRequest
    /// API (`POST .../serviceaccounts/NAME/token`), as the kubelet gets one
    /// for a pod.
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let api: Api<ServiceAccount> = Api::namespaced(self.client().await, namespace);
        let request = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": { "expirationSeconds": 600 },
        });
        let answer: serde_json::Value =
            api.create_subresource("token", name, &PostParams::default(), &request).await.expect("TokenRequest for the ServiceAccount");
        answer["status"]["token"].as_str().expect("token in the TokenRequest status").to_string()
    }

    /// Runs what a pod of CronJob `namespace/name` would run, for real:
    /// the first container's `command` and `args` exactly as stored, with
    /// the real kubectl, authenticated as the pod's ServiceAccount by a
    /// TokenRequest token, against this API server. A pod would find the
    /// server, CA, token and namespace in its in-cluster configuration
    /// (whose service address points nowhere here); the kubeconfig written
    /// instead holds exactly those four and nothing else.
    pub async fn run_cronjob(&self, namespace: &str, name: &str) -> KubectlRun {
        let cj: CronJob = Api::namespaced(self.client().await, namespace).get(name).await.expect("get the CronJob");
        let pod = cj.spec.job_template.spec.as_ref().and_then(|j| j.template.spec.as_ref()).expect("the CronJob has a pod template");
        let account = pod.service_account_name.clone().unwrap_or_else(|| "default".to_string());
        assert_eq!(pod.containers.len(), 1, "one container: {:?}", pod.containers);
        let container = &pod.containers[0];
        assert!(container.env.is_none() && container.env_from.is_none(), "the job's environment is not reproduced here: {container:?}");
        let argv: Vec<String> = container.command.iter().flatten().chain(container.args.iter().flatten()).cloned().collect();
        let token = self.service_account_token(namespace, &account).await;
        let dir = tempfile::Builder::new().prefix("himaplan-pod-").tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        let text = format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: in-cluster
  cluster:
    server: {url}
    certificate-authority: {ca}
users:
- name: {account}
  user:
    token: {token}
contexts:
- name: pod
  context:
    cluster: in-cluster
    user: {account}
    namespace: {namespace}
current-context: pod
"#,
            url = self.url,
            ca = self.ca.display(),
        );
        std::fs::write(&kubeconfig, text).expect("write the pod's kubeconfig");
        self.run_kubectl(&argv, &kubeconfig)
    }
}
