//! What a `kubernetes_scale_schedule` does when it fires, proven with the
//! real tools instead of read back: no controller manager or kubelet runs
//! here, so each test takes the CronJob himaplan created, authenticates as
//! the ServiceAccount of its pod template (a TokenRequest token) and runs
//! the job container's command exactly as stored with the real kubectl
//! v1.37.2 against the real kube-apiserver (see `support/kube.rs`,
//! `run_cronjob`). RBAC is then enforced as in a cluster: without an HPA the
//! deployment's replicas change, with one the HPA's `minReplicas` do, and a
//! Role missing any verb the command needs makes the job fail.
//!
//! The server (and kubectl) come from `scripts/servers/kube-apiserver.sh
//! start`; every test works in a namespace of its own. Without them the
//! tests skip, except under `CI=true`, where they fail.

#[path = "support/kube.rs"]
mod kube;
mod support;

use ::kube::api::{Api, PostParams};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::rbac::v1::Role;
use std::time::{Duration, Instant};
use support::{Run, TestDir};

/// 30 minutes after the weekday scale-down (2026-12-01 is a Tuesday).
const EVENING: &str = "2026-12-01T18:30:00Z";
/// An hour after the next morning's scale-up.
const MORNING: &str = "2026-12-02T08:00:00Z";
/// How long an RBAC change may take to reach the authorizer's cache.
const RBAC_SETTLE: Duration = Duration::from_secs(10);

/// A deployment `web` (declared 4), two schedules on it (weekdays 18:00 → 2,
/// daily 07:00 → 6) and, with `with_hpa`, an HPA `web` (2..10).
fn configuration(ns: &str, with_hpa: bool) -> String {
    let hpa = format!(
        r#"
resource "kubernetes_hpa" "web" {{
  namespace    = "{ns}"
  name         = "web"
  target       = kubernetes_deployment.web.name
  min_replicas = 2
  max_replicas = 10
}}
"#
    );
    format!(
        r#"
resource "kubernetes_deployment" "web" {{
  namespace = "{ns}"
  name      = "web"
  image     = "registry.example/himalytix/web:2026.11.1"
  replicas  = 4
}}

resource "kubernetes_scale_schedule" "evening" {{
  namespace = "{ns}"
  name      = "web-down"
  target    = kubernetes_deployment.web.name
  schedule  = "0 18 * * 1-5"
  replicas  = 2
}}

resource "kubernetes_scale_schedule" "morning" {{
  namespace = "{ns}"
  name      = "web-up"
  target    = kubernetes_deployment.web.name
  schedule  = "0 7 * * *"
  replicas  = 6
}}
{}"#,
        if with_hpa { hpa.as_str() } else { "" }
    )
}

fn run(dir: &TestDir, server: &kube::KubeServer, args: &[&str]) -> Run {
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dir.run_with(args, &env, None)
}

fn apply(dir: &TestDir, server: &kube::KubeServer, at: &str) {
    run(dir, server, &["apply", "--auto-approve", "--at", at]).assert_code(0);
}

async fn replicas(server: &kube::KubeServer, ns: &str) -> Option<i32> {
    let api: Api<Deployment> = Api::namespaced(server.client().await, ns);
    api.get("web").await.expect("get deployment").spec.replicas
}

async fn min_replicas(server: &kube::KubeServer, ns: &str) -> Option<i32> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(server.client().await, ns);
    api.get("web").await.expect("get hpa").spec.min_replicas
}

/// Runs the job of CronJob `name` until its run satisfies `done`, retrying
/// while the RBAC authorizer's cache may still hold an earlier Role (it
/// follows changes within moments, not instantly); the last run otherwise.
async fn run_job_until(server: &kube::KubeServer, ns: &str, name: &str, done: impl Fn(&kube::KubectlRun) -> bool) -> kube::KubectlRun {
    let started = Instant::now();
    loop {
        let job = server.run_cronjob(ns, name).await;
        if done(&job) || started.elapsed() > RBAC_SETTLE {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn scale_job_run_as_its_service_account_scales_the_deployment() {
    // No HPA: the morning job's `kubectl scale`, run as its ServiceAccount,
    // sets the deployment to 6 and the evening job back to 2; himaplan then
    // sees exactly what its schedules say.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("job-scale").await;
    let dir = TestDir::new(&configuration(&ns, false));
    apply(&dir, server, EVENING);
    assert_eq!(replicas(server, &ns).await, Some(2), "the evening schedule fired last");

    let job = server.run_cronjob(&ns, "web-up").await;
    job.assert_success();
    assert_eq!(job.argv, ["kubectl", "scale", "deployment", "web", "--replicas=6"]);
    assert_eq!(replicas(server, &ns).await, Some(6));
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", MORNING]).assert_code(0);

    server.run_cronjob(&ns, "web-down").await.assert_success();
    assert_eq!(replicas(server, &ns).await, Some(2));
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
}

#[tokio::test]
async fn scale_job_with_an_hpa_run_as_its_service_account_patches_min_replicas() {
    // With an HPA: the morning job patches the HPA's minReplicas to 6 and
    // leaves the deployment's count to the HPA. A plan for the evening then
    // names the job's kubectl as the manager it overrides.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("job-hpa").await;
    let dir = TestDir::new(&configuration(&ns, true));
    apply(&dir, server, EVENING);
    assert_eq!(min_replicas(server, &ns).await, Some(2));
    let before = replicas(server, &ns).await;

    let job = server.run_cronjob(&ns, "web-up").await;
    job.assert_success();
    assert_eq!(job.argv[..4], ["kubectl", "patch", "hpa", "web"]);
    assert_eq!(min_replicas(server, &ns).await, Some(6));
    assert_eq!(replicas(server, &ns).await, before, "the job leaves the deployment to the HPA");
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", MORNING]).assert_code(0);

    let evening = run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]);
    evening.assert_code(2);
    let out = evening.stdout();
    assert!(out.contains("6 -> 2"), "{out}");
    assert!(out.contains("min_replicas is managed by field manager kubectl-patch; applying takes it over (force)"), "{out}");

    server.run_cronjob(&ns, "web-down").await.assert_success();
    assert_eq!(min_replicas(server, &ns).await, Some(2));
}

#[tokio::test]
async fn a_scale_job_whose_role_lacks_any_verb_it_needs_is_forbidden() {
    // For each mode, every verb of the schedule's Role is taken away in
    // turn: the job then fails with the API server's "forbidden" and
    // changes nothing. After a broken Role himaplan's plan shows the drift,
    // apply repairs it and the job works again.
    let Some(server) = kube::server() else { return };
    for with_hpa in [false, true] {
        let ns = server.namespace(if with_hpa { "job-rbac-hpa" } else { "job-rbac" }).await;
        let dir = TestDir::new(&configuration(&ns, with_hpa));
        apply(&dir, server, EVENING);
        let roles: Api<Role> = Api::namespaced(server.client().await, &ns);
        let full = roles.get("web-up").await.expect("the schedule's Role");
        let rules = full.rules.clone().unwrap_or_default();
        let count = || async { if with_hpa { min_replicas(server, &ns).await } else { replicas(server, &ns).await } };
        for (r, rule) in rules.iter().enumerate() {
            for verb in &rule.verbs {
                let mut lacking = roles.get("web-up").await.expect("role");
                let mut cut = rules.clone();
                cut[r].verbs.retain(|v| v != verb);
                // A rule must keep a verb: one left without is dropped.
                cut.retain(|rule| !rule.verbs.is_empty());
                lacking.rules = Some(cut);
                roles.replace("web-up", &PostParams::default(), &lacking).await.expect("take a verb away");
                let resource = rule.resources.iter().flatten().next().cloned().unwrap_or_default();
                let before = count().await;
                if !with_hpa && resource == "deployments/scale" && verb == "get" {
                    // SPEC §4 grants it, but `kubectl scale` without
                    // --current-replicas or --resource-version patches the
                    // scale subresource without reading it first: the job
                    // works without this verb.
                    run_job_until(server, &ns, "web-up", kube::KubectlRun::success).await.assert_success();
                    continue;
                }
                let denial = format!("cannot {verb} resource \"{resource}\"");
                let job = run_job_until(server, &ns, "web-up", |j| !j.success() && j.stderr().contains(&denial)).await;
                assert!(!job.success(), "without {verb} on {resource} the job must fail (hpa: {with_hpa}): {}", job.stderr());
                let err = job.stderr();
                assert!(err.contains("forbidden") && err.contains(&denial), "{err}");
                assert_eq!(count().await, before, "a forbidden job changes nothing");
            }
        }
        // The last cut Role is still in place: himaplan sees it and repairs it.
        let plan = run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]);
        plan.assert_code(2);
        assert!(plan.stdout().contains("kubernetes_scale_schedule.morning will be updated in place"), "{}", plan.stdout());
        apply(&dir, server, EVENING);
        assert_eq!(roles.get("web-up").await.expect("role").rules, full.rules, "apply restores the Role");
        run_job_until(server, &ns, "web-up", kube::KubectlRun::success).await.assert_success();
        assert_eq!(count().await, Some(6));
    }
}
