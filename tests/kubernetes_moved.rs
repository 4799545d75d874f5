//! `moved` relabels a Kubernetes deployment: after apply, the object keeps
//! its name and uid and its `himaplan.io/address` annotation is the new
//! address (real kube-apiserver, through the `himaplan` binary).

#[path = "support/kube.rs"]
mod kube;
mod support;

use ::kube::api::Api;
use k8s_openapi::api::apps::v1::Deployment;
use support::TestDir;

fn deployment(ns: &str, name: &str) -> String {
    format!(
        "resource \"kubernetes_deployment\" \"{name}\" {{\n  namespace = \"{ns}\"\n  name      = \"web\"\n  image     = \"registry.example/himalytix/web:2026.11.1\"\n  replicas  = 2\n}}\n"
    )
}

#[tokio::test]
async fn moved_relabels_the_deployment_annotation() {
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("moved").await;
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = TestDir::new(&deployment(&ns, "web"));
    dir.run_with(&["apply", "--auto-approve"], &env, None).assert_code(0);
    let api: Api<Deployment> = Api::namespaced(server.client().await, &ns);
    let before = api.get("web").await.expect("get deployment");
    let annotation = |d: &Deployment| d.metadata.annotations.as_ref().and_then(|a| a.get("himaplan.io/address")).cloned();
    assert_eq!(annotation(&before).as_deref(), Some("kubernetes_deployment.web"));

    dir.write(
        "main.hcl",
        &(deployment(&ns, "app") + "\nmoved {\n  from = kubernetes_deployment.web\n  to   = kubernetes_deployment.app\n}\n"),
    );
    let plan = dir.run_with(&["plan", "--detailed-exitcode"], &env, None);
    plan.assert_code(2);
    let out = plan.stdout();
    assert!(out.contains("relabel kubernetes_deployment.web as kubernetes_deployment.app (annotate himaplan.io/address)"), "{out}");
    dir.run_with(&["apply", "--auto-approve"], &env, None).assert_code(0);
    let after = api.get("web").await.expect("get deployment");
    assert_eq!(annotation(&after).as_deref(), Some("kubernetes_deployment.app"));
    assert_eq!(after.metadata.uid, before.metadata.uid, "the same object, relabelled");
    dir.run_with(&["plan", "--detailed-exitcode"], &env, None).assert_code(0);
}
