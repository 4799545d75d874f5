//! The `kubernetes` provider against a real kube-apiserver (with etcd) on
//! loopback, through the `himaplan` binary: creating a deployment, its HPA
//! and two scale schedules and reading the stored objects back through the
//! API; an in-place HPA change; replicas changed by the real kubectl (drift
//! without an HPA, none with one, the last firing with schedules); other
//! fields set by the real kubectl, whose managers the plan names;
//! `plan --at` around 18:00; invalid cron, racing schedules, an object the
//! API server rejects, forbidden and unreachable clusters.
//!
//! The server comes from `scripts/servers/kube-apiserver.sh start` (see
//! `support/kube.rs`); every test works in a namespace of its own. Without
//! the server the tests skip, except under `CI=true`, where they fail.

#[path = "support/kube.rs"]
mod kube;
mod support;

use ::kube::api::Api;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use std::time::Instant;
use support::{Run, TestDir};

/// 30 minutes after the weekday scale-down (2026-12-01 is a Tuesday).
const EVENING: &str = "2026-12-01T18:30:00Z";
/// One minute before it: the morning scale-up is the latest firing.
const BEFORE_EVENING: &str = "2026-12-01T17:59:00Z";

fn deployment(ns: &str, extra: &str) -> String {
    format!(
        r#"
resource "kubernetes_deployment" "web" {{
  namespace      = "{ns}"
  name           = "web"
  image          = "registry.example/himalytix/web:2026.11.1"
  replicas       = 4
  cpu_request    = "250m"
  memory_request = "256Mi"
  memory_limit   = "512Mi"
  port           = 8000
  labels         = {{ tier = "web" }}
{extra}}}
"#
    )
}

fn hpa(ns: &str, max: u32) -> String {
    format!(
        r#"
resource "kubernetes_hpa" "web" {{
  namespace          = "{ns}"
  name               = "web"
  target             = kubernetes_deployment.web.name
  min_replicas       = 2
  max_replicas       = {max}
  cpu_utilization    = 70
  memory_utilization = 80
}}
"#
    )
}

fn schedules(ns: &str) -> String {
    format!(
        r#"
resource "kubernetes_scale_schedule" "evening" {{
  namespace = "{ns}"
  name      = "web-down"
  target    = "web"
  schedule  = "0 18 * * 1-5"
  replicas  = 2
  time_zone = "UTC"
}}

resource "kubernetes_scale_schedule" "morning" {{
  namespace = "{ns}"
  name      = "web-up"
  target    = "web"
  schedule  = "0 7 * * *"
  replicas  = 6
}}
"#
    )
}

/// Runs `himaplan ARGS` against the test server.
fn run(dir: &TestDir, server: &kube::KubeServer, args: &[&str]) -> Run {
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    dir.run_with(args, &env, None)
}

fn apply(dir: &TestDir, server: &kube::KubeServer, at: &str) -> Run {
    let r = run(dir, server, &["apply", "--auto-approve", "--at", at]);
    r.assert_code(0);
    r
}

async fn replicas(client: &::kube::Client, ns: &str, name: &str) -> Option<i32> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    api.get(name).await.expect("get deployment").spec.replicas
}

fn owners(d: &Deployment) -> Vec<String> {
    owners_of(d, &["f:spec", "f:replicas"])
}

/// The field managers owning `path` of the object's `managedFields`.
fn owners_of(d: &Deployment, path: &[&str]) -> Vec<String> {
    d.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.fields_v1.as_ref().is_some_and(|f| path.iter().try_fold(&f.0, |node, step| node.get(*step)).is_some()))
        .filter_map(|m| m.manager.clone())
        .collect()
}

#[tokio::test]
async fn creates_deployment_hpa_and_schedules_and_the_api_server_stores_them() {
    // The runbook's Kubernetes half in one apply: every object is stored as
    // declared, annotated, with exactly the RBAC its job needs.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("create").await;
    let api_deployment = format!(
        r#"
resource "kubernetes_deployment" "api" {{
  namespace = "{ns}"
  name      = "api"
  image     = "registry.example/himalytix/api:2026.11.1"
  replicas  = 2
}}

resource "kubernetes_scale_schedule" "api_night" {{
  namespace = "{ns}"
  name      = "api-night"
  target    = kubernetes_deployment.api.name
  schedule  = "30 22 * * *"
  time_zone = "Europe/Berlin"
  replicas  = 1
}}
"#
    );
    let dir = TestDir::new(&format!("{}{}{}{}", deployment(&ns, ""), hpa(&ns, 10), schedules(&ns), api_deployment));
    let started = Instant::now();
    let out = apply(&dir, server, EVENING);
    let elapsed = started.elapsed();
    eprintln!("apply of 6 resources (web deployment, HPA, 2 schedules; api deployment, 1 schedule) took {elapsed:?}");
    assert!(out.stdout().contains("Apply complete! Resources: 6 added"), "{}", out.stdout());

    let client = server.client().await;
    let h: HorizontalPodAutoscaler = Api::namespaced(client.clone(), &ns).get("web").await.expect("hpa");
    assert_eq!(h.spec.scale_target_ref.name, "web");
    assert_eq!(h.spec.scale_target_ref.kind, "Deployment");
    assert_eq!(h.spec.max_replicas, 10);
    // 18:30 on a weekday: the evening schedule (2) drives the minimum.
    assert_eq!(h.spec.min_replicas, Some(2));
    let metrics: Vec<(String, Option<i32>)> = h
        .spec
        .metrics
        .iter()
        .flatten()
        .filter_map(|m| m.resource.as_ref())
        .map(|r| (r.name.clone(), r.target.average_utilization))
        .collect();
    assert_eq!(metrics, [("cpu".to_string(), Some(70)), ("memory".to_string(), Some(80))]);
    let annotations = h.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(annotations.get("himaplan.io/address").map(String::as_str), Some("kubernetes_hpa.web"));
    assert!(annotations.contains_key("himaplan.io/lineage"));

    // The web schedules patch the HPA's minimum (the HPA would undo a scale).
    let cj: CronJob = Api::namespaced(client.clone(), &ns).get("web-down").await.expect("cronjob");
    assert_eq!(cj.spec.schedule, "0 18 * * 1-5");
    assert_eq!(cj.spec.time_zone.as_deref(), Some("UTC"));
    let pod = cj.spec.job_template.spec.as_ref().expect("job spec").template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some("web-down"));
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some("registry.k8s.io/kubectl:v1.37.2"));
    assert_eq!(
        container.command.clone().unwrap_or_default(),
        ["kubectl", "patch", "hpa", "web", "--type=merge", "-p", r#"{"spec":{"minReplicas":2}}"#]
    );
    let role: Role = Api::namespaced(client.clone(), &ns).get("web-down").await.expect("role");
    let rules = serde_json::to_value(role.rules.unwrap_or_default()).expect("rules");
    assert_eq!(
        rules,
        serde_json::json!([{ "apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "resourceNames": ["web"], "verbs": ["get", "patch"] }])
    );
    let binding: RoleBinding = Api::namespaced(client.clone(), &ns).get("web-down").await.expect("rolebinding");
    assert_eq!((binding.role_ref.kind.as_str(), binding.role_ref.name.as_str()), ("Role", "web-down"));
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!((subjects[0].kind.as_str(), subjects[0].name.as_str()), ("ServiceAccount", "web-down"));
    let _sa: ServiceAccount = Api::namespaced(client.clone(), &ns).get("web-down").await.expect("service account");
    let up: CronJob = Api::namespaced(client.clone(), &ns).get("web-up").await.expect("cronjob");
    assert!(up.spec.job_template.spec.as_ref().and_then(|j| j.template.spec.as_ref()).is_some_and(|p| {
        p.containers[0].command.as_ref().is_some_and(|c| c.last().map(String::as_str) == Some(r#"{"spec":{"minReplicas":6}}"#))
    }));

    // Without an HPA the job scales the deployment itself.
    let night: CronJob = Api::namespaced(client.clone(), &ns).get("api-night").await.expect("cronjob");
    assert_eq!(night.spec.time_zone.as_deref(), Some("Europe/Berlin"));
    let command = night
        .spec
        .job_template
        .spec
        .as_ref()
        .and_then(|j| j.template.spec.as_ref())
        .map(|p| p.containers[0].command.clone().unwrap_or_default());
    assert_eq!(command.unwrap_or_default(), ["kubectl", "scale", "deployment", "api", "--replicas=1"]);
    let role: Role = Api::namespaced(client.clone(), &ns).get("api-night").await.expect("role");
    assert_eq!(
        serde_json::to_value(role.rules.unwrap_or_default()).expect("rules"),
        serde_json::json!([
            { "apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["api"], "verbs": ["get"] },
            { "apiGroups": ["apps"], "resources": ["deployments/scale"], "resourceNames": ["api"], "verbs": ["get", "patch"] },
        ])
    );

    // The deployment: declared fields only, replicas handed to the HPA.
    let d: Deployment = Api::namespaced(client.clone(), &ns).get("web").await.expect("deployment");
    assert_eq!(d.spec.replicas, Some(4), "the declared count is kept through the hand-over");
    let owners = owners(&d);
    assert!(!owners.contains(&"himaplan".to_string()), "himaplan must not own replicas under an HPA: {owners:?}");
    assert!(owners.contains(&"himaplan-handover-to-hpa".to_string()), "{owners:?}");
    let selector = d.spec.selector.match_labels.clone().unwrap_or_default();
    assert_eq!(selector.get("app.kubernetes.io/name").map(String::as_str), Some("web"));
    let c = &d.spec.template.spec.as_ref().expect("pod").containers[0];
    let resources = c.resources.as_ref().expect("resources");
    assert_eq!(resources.requests.as_ref().and_then(|r| r.get("cpu")).map(|q| q.0.as_str()), Some("250m"));
    assert_eq!(resources.limits.as_ref().and_then(|r| r.get("memory")).map(|q| q.0.as_str()), Some("512Mi"));
    assert!(resources.limits.as_ref().and_then(|r| r.get("cpu")).is_none(), "undeclared cpu_limit must not be set");
    assert_eq!(c.ports.as_ref().map(|p| p[0].container_port), Some(8000));
    let api_d: Deployment = Api::namespaced(client.clone(), &ns).get("api").await.expect("deployment");
    // Its Berlin 22:30 schedule fired last (the evening before): 1, not 2.
    assert_eq!(api_d.spec.replicas, Some(1));

    let second = run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]);
    second.assert_code(0);
}

#[tokio::test]
async fn raising_hpa_max_is_one_in_place_change_and_then_nothing() {
    // HPA max 10 → 12: one in-place update, applied, and the next plan is empty.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("hpamax").await;
    let dir = TestDir::new(&format!("{}{}{}", deployment(&ns, ""), hpa(&ns, 10), schedules(&ns)));
    apply(&dir, server, EVENING);
    dir.write("main.hcl", &format!("{}{}{}", deployment(&ns, ""), hpa(&ns, 12), schedules(&ns)));
    let plan = run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]);
    plan.assert_code(2);
    let out = plan.stdout();
    assert!(out.contains("Plan: 0 to add, 1 to change, 0 to destroy."), "{out}");
    assert!(out.contains("kubernetes_hpa.web will be updated in place"), "{out}");
    assert!(out.contains("max_replicas") && out.contains("10 -> 12"), "{out}");
    apply(&dir, server, EVENING);
    let client = server.client().await;
    let h: HorizontalPodAutoscaler = Api::namespaced(client, &ns).get("web").await.expect("hpa");
    assert_eq!(h.spec.max_replicas, 12);
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
}

#[tokio::test]
async fn replicas_changed_by_another_manager_are_drift_and_apply_takes_them_back() {
    // No HPA, no schedule: a real `kubectl scale` to 7 is drift; the plan
    // names the manager (kubectl's default, from its argv[0]), and apply
    // forces the declared 4 back.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("drift").await;
    let dir = TestDir::new(&deployment(&ns, ""));
    apply(&dir, server, EVENING);
    let client = server.client().await;
    server.kubectl(&["-n", &ns, "scale", "deployment", "web", "--replicas=7"]).assert_success();

    let drift = run(&dir, server, &["drift", "--detailed-exitcode"]);
    drift.assert_code(2);
    let plan = run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]);
    plan.assert_code(2);
    let out = plan.stdout();
    assert!(out.contains("7 -> 4"), "{out}");
    assert!(out.contains("replicas is managed by field manager kubectl; applying takes it over (force)"), "{out}");
    apply(&dir, server, EVENING);
    assert_eq!(replicas(&client, &ns, "web").await, Some(4));
    let d: Deployment = Api::namespaced(client.clone(), &ns).get("web").await.expect("deployment");
    assert_eq!(owners(&d), ["himaplan"], "the conflict is resolved with force");
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
}

#[tokio::test]
async fn every_field_another_manager_set_is_named_in_the_plan_and_taken_over() {
    // A real kubectl changes the image (`set image`) and a label (`label`):
    // the plan names each field's manager, not only for replicas, and
    // apply takes both fields over with force.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("managers").await;
    let dir = TestDir::new(&deployment(&ns, ""));
    apply(&dir, server, EVENING);
    server.kubectl(&["-n", &ns, "set", "image", "deployment/web", "web=registry.example/himalytix/web:hotfix"]).assert_success();
    server.kubectl(&["-n", &ns, "label", "deployment", "web", "tier=ops", "--overwrite"]).assert_success();

    let plan = run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]);
    plan.assert_code(2);
    let out = plan.stdout();
    assert!(out.contains("image is managed by field manager kubectl-set; applying takes it over (force)"), "{out}");
    assert!(out.contains(r#"label "tier" is managed by field manager kubectl-label; applying takes it over (force)"#), "{out}");
    assert!(!out.contains("replicas is managed"), "replicas were not touched: {out}");
    apply(&dir, server, EVENING);

    let client = server.client().await;
    let d: Deployment = Api::namespaced(client.clone(), &ns).get("web").await.expect("deployment");
    assert_eq!(
        d.spec.template.spec.as_ref().map(|p| p.containers[0].image.clone()),
        Some(Some("registry.example/himalytix/web:2026.11.1".into()))
    );
    assert_eq!(d.metadata.labels.as_ref().and_then(|l| l.get("tier")).map(String::as_str), Some("web"));
    let image = ["f:spec", "f:template", "f:spec", "f:containers", r#"k:{"name":"web"}"#, "f:image"];
    assert_eq!(owners_of(&d, &image), ["himaplan"], "the forced apply took the image over");
    assert_eq!(owners_of(&d, &["f:metadata", "f:labels", "f:tier"]), ["himaplan"], "and the label");
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
}

#[tokio::test]
async fn with_an_hpa_replicas_changed_elsewhere_are_not_drift() {
    // The HPA owns the count: a scale by another manager is neither drift
    // nor a change, and apply leaves it alone.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("hpaown").await;
    let dir = TestDir::new(&format!("{}{}", deployment(&ns, ""), hpa(&ns, 10)));
    apply(&dir, server, EVENING);
    let client = server.client().await;
    server.kubectl(&["-n", &ns, "scale", "deployment", "web", "--replicas=7"]).assert_success();
    run(&dir, server, &["drift", "--detailed-exitcode"]).assert_code(0);
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
    apply(&dir, server, EVENING);
    assert_eq!(replicas(&client, &ns, "web").await, Some(7));
    assert_eq!(dir.state_attrs("kubernetes_deployment.web")["replicas_managed_by"], "kubernetes_hpa.web");
}

#[tokio::test]
async fn hpa_added_later_takes_replicas_over_without_resetting_them() {
    // Declared replicas first, then an HPA: the plan says why replicas are
    // left alone, and the hand-over keeps the count (no reset to 1).
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("handover").await;
    let dir = TestDir::new(&deployment(&ns, ""));
    apply(&dir, server, EVENING);
    dir.write("main.hcl", &format!("{}{}", deployment(&ns, ""), hpa(&ns, 10)));
    let plan = run(&dir, server, &["plan", "--at", EVENING]);
    plan.assert_code(0);
    assert!(
        plan.stdout().contains("replicas belong to kubernetes_hpa.web (HPA); himaplan neither sets nor reports them"),
        "{}",
        plan.stdout()
    );
    apply(&dir, server, EVENING);
    let client = server.client().await;
    let d: Deployment = Api::namespaced(client.clone(), &ns).get("web").await.expect("deployment");
    assert_eq!(d.spec.replicas, Some(4));
    let owners = owners(&d);
    assert!(!owners.contains(&"himaplan".to_string()) && owners.contains(&"himaplan-handover-to-hpa".to_string()), "{owners:?}");
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
}

#[tokio::test]
async fn with_schedules_apply_keeps_the_last_firing() {
    // Schedules, no HPA: at 18:30 the evening's 2 is desired, so a manual
    // scale to 9 is undone to 2, not to the declared 4.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("sched").await;
    let dir = TestDir::new(&format!("{}{}", deployment(&ns, ""), schedules(&ns)));
    let first = apply(&dir, server, EVENING);
    assert!(first.stdout().contains("kubernetes_scale_schedule.evening, which last fired at 2026-12-01T18:00:00Z"), "{}", first.stdout());
    let client = server.client().await;
    assert_eq!(replicas(&client, &ns, "web").await, Some(2));
    server.kubectl(&["-n", &ns, "scale", "deployment", "web", "--replicas=9"]).assert_success();
    let plan = run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]);
    plan.assert_code(2);
    assert!(plan.stdout().contains("9 -> 2"), "{}", plan.stdout());
    apply(&dir, server, EVENING);
    assert_eq!(replicas(&client, &ns, "web").await, Some(2));
    // The scale job's command and rights: kubectl scale, on this deployment only.
    let cj: CronJob = Api::namespaced(client.clone(), &ns).get("web-down").await.expect("cronjob");
    let command = cj
        .spec
        .job_template
        .spec
        .as_ref()
        .and_then(|j| j.template.spec.as_ref())
        .map(|p| p.containers[0].command.clone().unwrap_or_default());
    assert_eq!(command.unwrap_or_default(), ["kubectl", "scale", "deployment", "web", "--replicas=2"]);
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
}

#[tokio::test]
async fn plan_at_shows_six_before_18_and_two_after() {
    // 2026-12-01 is a Tuesday: before 18:00 the 07:00 scale-up (6) fired
    // last, after it the weekday scale-down (2).
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("planat").await;
    let dir = TestDir::new(&format!("{}{}", deployment(&ns, ""), schedules(&ns)));
    let before = run(&dir, server, &["plan", "--at", BEFORE_EVENING]);
    before.assert_code(0);
    assert!(before.stdout().contains("replicas            = 6"), "{}", before.stdout());
    // Each schedule shows its next firing, as the CronJob controller runs it.
    assert!(
        before.stdout().contains(&format!("next firing after {BEFORE_EVENING}: 2026-12-01T18:00:00Z = 2026-12-01 18:00 UTC (UTC)")),
        "{}",
        before.stdout()
    );
    let after = run(&dir, server, &["plan", "--at", EVENING]);
    after.assert_code(0);
    assert!(after.stdout().contains("replicas            = 2"), "{}", after.stdout());
    // And against a running deployment: an update 2 -> 6 the next morning.
    apply(&dir, server, EVENING);
    let morning = run(&dir, server, &["plan", "--at", "2026-12-02T08:00:00Z"]);
    assert!(morning.stdout().contains("2 -> 6"), "{}", morning.stdout());
    // Unchanged schedules still show it, as notes of the plan.
    assert!(
        morning.stdout().contains("Note: kubernetes_scale_schedule.morning: next firing after 2026-12-02T08:00:00Z: 2026-12-03T07:00:00Z"),
        "{}",
        morning.stdout()
    );
}

#[test]
fn invalid_cron_fails_validate_with_file_and_line() {
    // No server needed: validate is offline.
    let dir = TestDir::new(
        r#"resource "kubernetes_scale_schedule" "evening" {
  name     = "web-down"
  target   = "web"
  schedule = "0 18 * * MON-FRY"
  replicas = 2
}

resource "kubernetes_scale_schedule" "tz" {
  name     = "web-tz"
  target   = "api"
  schedule = "TZ=Europe/Berlin 0 7 * * *"
  replicas = 6
}
"#,
    );
    let r = dir.run(&["validate"]);
    r.assert_code(1);
    let err = r.stderr();
    assert!(err.contains("main.hcl:4"), "{err}");
    assert!(err.contains("invalid cron schedule"), "{err}");
    assert!(err.contains("main.hcl:11") && err.contains("time_zone"), "{err}");
}

#[test]
fn two_schedules_firing_together_on_one_target_fail_validate() {
    let dir = TestDir::new(
        r#"resource "kubernetes_scale_schedule" "weekdays" {
  name     = "web-down"
  target   = "web"
  schedule = "0 18 * * 1-5"
  replicas = 2
}

resource "kubernetes_scale_schedule" "daily" {
  name      = "web-down-daily"
  target    = "web"
  schedule  = "0 19 * * *"
  time_zone = "Europe/Berlin"
  replicas  = 3
}
"#,
    );
    let r = dir.run(&["validate"]);
    r.assert_code(1);
    let err = r.stderr();
    assert!(err.contains("fires at the same instant as"), "{err}");
    assert!(err.contains("main.hcl:4") || err.contains("main.hcl:11"), "{err}");
}

#[tokio::test]
async fn a_create_into_a_missing_namespace_says_to_create_the_namespace() {
    // The API server answers `namespaces "…" not found`; the hint once was
    // "The object no longer exists; run plan again", which sends the user
    // the wrong way. Nothing is created and nothing enters state.
    let Some(server) = kube::server() else { return };
    let dir = TestDir::new(&deployment("himaplan-nope", ""));
    let r = run(&dir, server, &["apply", "--auto-approve", "--at", EVENING]);
    r.assert_code(1);
    let err = r.stderr();
    assert!(err.contains("namespace \"himaplan-nope\" does not exist; create it first (kubectl create namespace himaplan-nope)"), "{err}");
    assert!(err.contains("fix the configuration"), "{err}");
    assert!(!err.contains("no longer exists"), "{err}");
    assert!(!dir.exists(support::DEFAULT_STATE) || dir.state_addresses().is_empty(), "{}", dir.state_text());
}

#[tokio::test]
async fn an_object_the_api_server_rejects_fails_apply_with_its_message() {
    // An invalid label value passes validate (it is the server's rule) and
    // fails apply with the server's words; state keeps what did succeed.
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("reject").await;
    let good = format!(
        r#"
resource "kubernetes_deployment" "api" {{
  namespace = "{ns}"
  name      = "api"
  image     = "registry.example/himalytix/api:1"
}}
"#
    );
    let bad = deployment(&ns, "").replace(r#"tier = "web""#, r#"tier = "not a valid value!""#);
    let dir = TestDir::new(&format!("{good}{bad}"));
    let r = run(&dir, server, &["apply", "--auto-approve", "--at", EVENING]);
    r.assert_code(1);
    let err = r.stderr();
    assert!(err.contains("Invalid value"), "{err}");
    assert!(err.contains("not a valid value!"), "{err}");
    assert_eq!(dir.state_addresses(), ["kubernetes_deployment.api"]);
    let client = server.client().await;
    let api: Api<Deployment> = Api::namespaced(client, &ns);
    assert!(api.get_opt("web").await.expect("get").is_none());
    // Fixing the label converges.
    dir.write("main.hcl", &format!("{good}{}", deployment(&ns, "")));
    apply(&dir, server, EVENING);
    run(&dir, server, &["plan", "--detailed-exitcode", "--at", EVENING]).assert_code(0);
}

#[tokio::test]
async fn forbidden_and_unreachable_clusters_are_clear_errors() {
    let Some(server) = kube::server() else { return };
    let ns = server.namespace("denied").await;
    // A user without RBAC rights: the server's "forbidden" reaches the user.
    let dir = TestDir::new(&format!("provider \"kubernetes\" {{\n  context = \"himaplan-nobody\"\n}}\n{}", deployment(&ns, "")));
    let r = run(&dir, server, &["apply", "--auto-approve", "--at", EVENING]);
    r.assert_code(1);
    assert!(r.stderr().contains("forbidden"), "{}", r.stderr());
    assert!(!dir.exists(support::DEFAULT_STATE) || dir.state_addresses().is_empty());
    // A kubeconfig pointing at a closed loopback port.
    let text = std::fs::read_to_string(&server.kubeconfig).expect("kubeconfig");
    let closed = text
        .lines()
        .map(|l| if l.trim_start().starts_with("server:") { "    server: https://127.0.0.1:9".to_string() } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = TestDir::new(&format!("provider \"kubernetes\" {{\n  config_path = \"closed.kubeconfig\"\n}}\n{}", deployment(&ns, "")));
    dir.write("closed.kubeconfig", &closed);
    let r = run(&dir, server, &["apply", "--auto-approve", "--at", EVENING]);
    r.assert_code(1);
    assert!(r.stderr().contains("cannot reach the Kubernetes API server"), "{}", r.stderr());
}
