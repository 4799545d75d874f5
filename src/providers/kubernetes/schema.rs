//! The `kubernetes` provider's schemas and its pure, network-free
//! judgements: the attribute sets of `kubernetes_deployment`,
//! `kubernetes_hpa` and `kubernetes_scale_schedule` (SPEC §4), configuration
//! checks beyond types (names, quantities, cron, time zones), resource
//! quantities compared by value, and the plan notes of an update.
//!
//! Must not talk to the cluster or depend on kube-rs: `validate` and `plan`
//! work offline.

use super::schedule::{Cron, parse_time_zone};
use himaplan_engine::provider::{AttrSchema, AttrType, ChangeShape, ConfigProblem, ResourceType, Schema, TypeDocs};
use himaplan_engine::value::{Value, ValueMap};

pub const DEPLOYMENT_TYPE: &str = "kubernetes_deployment";
pub const HPA_TYPE: &str = "kubernetes_hpa";
pub const SCHEDULE_TYPE: &str = "kubernetes_scale_schedule";

/// The selector label every deployment gets: `app.kubernetes.io/name = name`.
pub const SELECTOR_LABEL: &str = "app.kubernetes.io/name";
/// The kubectl image a schedule runs unless told otherwise: pinned to the
/// release the project tests against, never `latest`.
pub const DEFAULT_KUBECTL_IMAGE: &str = "registry.k8s.io/kubectl:v1.37.2";

/// Attributes himaplan sets itself (in `adjust_desired`); configuration
/// may not declare them.
pub const REPLICAS_MANAGED_BY: &str = "replicas_managed_by";
pub const SCALES_VIA_HPA: &str = "scales_via_hpa";
/// Computed on every type: the field managers other than himaplan that own
/// a field the resource declares (attribute, or `labels.KEY`, → managers),
/// so that the plan of a change names whom the forced apply overrides.
pub const FIELDS_SET_BY: &str = "fields_set_by";

/// The attributes of `provider "kubernetes" { ... }`.
pub fn provider_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("config_path", AttrType::String)
                .describe("kubeconfig file; defaults to KUBECONFIG, else ~/.kube/config, else in-cluster")
                .example("\"~/.kube/config\""),
            AttrSchema::new("context", AttrType::String)
                .describe("kubeconfig context; defaults to the current context")
                .example("\"prod\""),
        ],
        blocks: vec![],
    }
}

pub fn resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType { name: DEPLOYMENT_TYPE, schema_version: 0, schema: deployment_schema() },
        ResourceType { name: HPA_TYPE, schema_version: 0, schema: hpa_schema() },
        ResourceType { name: SCHEDULE_TYPE, schema_version: 0, schema: schedule_schema() },
    ]
}

/// The reference text of each type (SPEC §4).
pub fn type_docs(rtype: &str) -> TypeDocs {
    match rtype {
        DEPLOYMENT_TYPE => TypeDocs {
            summary: "An `apps/v1` Deployment with one container, applied server-side with field manager `himaplan`: only \
declared fields are owned, conflicts with other managers are forced and the plan names the manager overridden. \
Apply never waits for a rollout. Deletes use background propagation and wait until the object is gone. \
See [Kubernetes scale schedules and forced fields](../kubernetes.md).",
            example: r#"resource "kubernetes_deployment" "web" {
  name           = "web"
  image          = "registry.example/himalytix/web:2026.11.1"
  replicas       = 4
  cpu_request    = "250m"
  memory_request = "256Mi"
  memory_limit   = "512Mi"
  port           = 8000
}"#,
        },
        HPA_TYPE => TypeDocs {
            summary: "An `autoscaling/v2` HorizontalPodAutoscaler. While it targets a deployment of the configuration, the \
deployment's replica count belongs to it: himaplan neither sets nor reports it as drift, and hands the field over the way \
Kubernetes documents for server-side apply.",
            example: r#"resource "kubernetes_hpa" "web" {
  name               = "web"
  target             = "web"
  min_replicas       = 2
  max_replicas       = 10
  cpu_utilization    = 70
  memory_utilization = 80
}"#,
        },
        SCHEDULE_TYPE => TypeDocs {
            summary: "A `batch/v1` CronJob that scales the target deployment at the schedule, with the ServiceAccount, Role and \
RoleBinding it needs: `kubectl scale deployment`, or, when a `kubernetes_hpa` of the configuration targets the deployment, \
a patch of that HPA's `minReplicas`. Plans use the value of the schedule that fired last before `--at` (default now), looking \
back at most 8 days. Two schedules firing at the same instant on one target fail `validate`. \
See [cron semantics](../schedules.md).",
            example: r#"resource "kubernetes_scale_schedule" "evening" {
  name      = "web-scale-down"
  target    = "web"
  schedule  = "0 18 * * 1-5"
  time_zone = "UTC"
  replicas  = 2
}"#,
        },
        _ => TypeDocs::default(),
    }
}

fn namespace() -> AttrSchema {
    AttrSchema::new("namespace", AttrType::String)
        .default("default")
        .replace()
        .describe("the namespace, which must exist; a change replaces the object")
        .example("\"himalytix\"")
}

fn id() -> AttrSchema {
    AttrSchema::new("id", AttrType::String).computed().describe("NAMESPACE/NAME")
}

fn fields_set_by() -> AttrSchema {
    AttrSchema::new(FIELDS_SET_BY, AttrType::Map(Box::new(AttrType::String)))
        .computed()
        .describe("other field managers owning declared fields (attribute or labels.KEY → managers)")
}

fn deployment_schema() -> Schema {
    Schema {
        attributes: vec![
            namespace(),
            AttrSchema::new("name", AttrType::String)
                .required()
                .replace()
                .describe("the Deployment's name, also its selector label app.kubernetes.io/name")
                .example("\"web\""),
            AttrSchema::new("image", AttrType::String)
                .required()
                .describe("the container image; the Deployment's controller rolls the pods (apply does not wait for the rollout)")
                .example("\"registry.example/himalytix/web:2026.11.1\""),
            // Optional and computed: undeclared, the server's value is
            // reported and never changed.
            AttrSchema::new("replicas", AttrType::Number)
                .optional_computed()
                .describe("the replica count; undeclared, the server's value is kept; while a kubernetes_hpa of the configuration targets the deployment the HPA owns it: himaplan neither sets nor reports it")
                .example("4"),
            AttrSchema::new("container_name", AttrType::String).optional_computed().describe("the container's name; defaults to name").example("\"django\""),
            AttrSchema::new("labels", AttrType::Map(Box::new(AttrType::String)))
                .default(Value::Map(ValueMap::new()))
                .describe("labels of the Deployment and its pod template (the selector label is added)")
                .example("{ app = \"himalytix\", tier = \"web\" }"),
            AttrSchema::new("cpu_request", AttrType::String).describe("a Kubernetes quantity, compared by value").example("\"250m\""),
            AttrSchema::new("cpu_limit", AttrType::String).describe("a Kubernetes quantity, compared by value").example("\"1\""),
            AttrSchema::new("memory_request", AttrType::String).describe("a Kubernetes quantity, compared by value").example("\"256Mi\""),
            AttrSchema::new("memory_limit", AttrType::String).describe("a Kubernetes quantity, compared by value").example("\"512Mi\""),
            AttrSchema::new("port", AttrType::Number).describe("the container's containerPort").example("8000"),
            AttrSchema::new(REPLICAS_MANAGED_BY, AttrType::String)
                .optional_computed()
                .describe("set by himaplan: the kubernetes_hpa owning replicas, or empty"),
            fields_set_by(),
            id(),
        ],
        blocks: vec![],
    }
}

fn hpa_schema() -> Schema {
    Schema {
        attributes: vec![
            namespace(),
            AttrSchema::new("name", AttrType::String)
                .required()
                .replace()
                .describe("the HorizontalPodAutoscaler's name")
                .example("\"web\""),
            AttrSchema::new("target", AttrType::String).required().describe("the deployment's name (same namespace)").example("\"web\""),
            AttrSchema::new("min_replicas", AttrType::Number)
                .optional_computed()
                .describe("the server defaults it to 1; a kubernetes_scale_schedule targeting the deployment drives it")
                .example("2"),
            AttrSchema::new("max_replicas", AttrType::Number).required().describe("upper bound of the replica count").example("10"),
            // The server defaults an HPA without metrics to 80 % CPU.
            AttrSchema::new("cpu_utilization", AttrType::Number)
                .optional_computed()
                .describe("average CPU utilization target, percent (the server defaults an HPA without metrics to 80)")
                .example("70"),
            AttrSchema::new("memory_utilization", AttrType::Number).describe("average memory utilization target, percent").example("80"),
            fields_set_by(),
            id(),
        ],
        blocks: vec![],
    }
}

fn schedule_schema() -> Schema {
    Schema {
        attributes: vec![
            namespace(),
            AttrSchema::new("name", AttrType::String)
                .required()
                .replace()
                .describe("the name of the CronJob, ServiceAccount, Role and RoleBinding")
                .example("\"web-scale-down\""),
            AttrSchema::new("target", AttrType::String).required().describe("the deployment's name (same namespace)").example("\"web\""),
            AttrSchema::new("schedule", AttrType::String)
                .required()
                .describe("Kubernetes cron: 5 fields or @hourly/@daily/...; TZ= prefixes are rejected (use time_zone)")
                .example("\"0 18 * * 1-5\""),
            AttrSchema::new("replicas", AttrType::Number)
                .required()
                .describe("the replica count (or the HPA's minReplicas) set when the schedule fires")
                .example("2"),
            AttrSchema::new("time_zone", AttrType::String)
                .default("UTC")
                .describe("IANA time zone the schedule is read in")
                .example("\"Europe/Berlin\""),
            AttrSchema::new("image", AttrType::String)
                .default(DEFAULT_KUBECTL_IMAGE)
                .describe("the kubectl image the CronJob runs; pinned, never latest"),
            AttrSchema::new(SCALES_VIA_HPA, AttrType::String)
                .optional_computed()
                .describe("set by himaplan: the HPA whose minReplicas the job patches, or empty to scale the deployment"),
            fields_set_by(),
            id(),
        ],
        blocks: vec![],
    }
}

/// Checks a resource's configuration beyond types. Unknown values pass.
pub fn validate(rtype: &str, config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut problem = |attribute: &str, message: String| problems.push(ConfigProblem { attribute: Some(attribute.to_string()), message });
    let s = |name: &str| config.get(name).and_then(Value::as_str).map(str::to_string);
    let n = |name: &str| config.get(name).filter(|v| !v.is_null() && !matches!(v, Value::Unknown)).cloned();

    if let Some(ns) = s("namespace")
        && let Err(why) = dns_label(&ns)
    {
        problem("namespace", format!("namespace {ns:?} {why}"));
    }
    let name_limit = if rtype == SCHEDULE_TYPE { 52 } else { 63 };
    if let Some(name) = s("name") {
        if let Err(why) = dns_label(&name) {
            problem("name", format!("name {name:?} {why}"));
        } else if name.len() > name_limit {
            problem("name", format!("name {name:?} is longer than {name_limit} characters"));
        }
    }
    if let Some(target) = s("target")
        && let Err(why) = dns_label(&target)
    {
        problem("target", format!("target {target:?} {why}"));
    }
    for own in [REPLICAS_MANAGED_BY, SCALES_VIA_HPA] {
        if n(own).is_some() {
            problem(own, format!("{own} is set by himaplan from the configuration's kubernetes_hpa resources; remove it"));
        }
    }
    let count = |problem: &mut dyn FnMut(&str, String), name: &str, min: i64, max: i64| {
        if let Some(v) = n(name) {
            match v.as_i64() {
                Some(i) if i >= min && i <= max => {}
                _ => problem(
                    name,
                    format!("{name} must be a whole number from {min} to {max}, not {}", v.to_template_string().unwrap_or_default()),
                ),
            }
        }
    };
    match rtype {
        DEPLOYMENT_TYPE => {
            count(&mut problem, "replicas", 0, i32::MAX as i64);
            count(&mut problem, "port", 1, 65535);
            for q in ["cpu_request", "cpu_limit", "memory_request", "memory_limit"] {
                if let Some(text) = s(q)
                    && parse_quantity(&text).is_none()
                {
                    problem(q, format!("{q} {text:?} is not a Kubernetes quantity (e.g. \"250m\", \"0.5\", \"512Mi\", \"1G\")"));
                }
            }
            if let Some(c) = s("container_name")
                && let Err(why) = dns_label(&c)
            {
                problem("container_name", format!("container_name {c:?} {why}"));
            }
            if let Some(labels) = config.get("labels").and_then(Value::as_map) {
                for key in labels.keys() {
                    if key.starts_with("himaplan.io/") || key == SELECTOR_LABEL {
                        problem("labels", format!("label {key:?} is set by himaplan; remove it"));
                    }
                }
            }
        }
        HPA_TYPE => {
            count(&mut problem, "min_replicas", 1, i32::MAX as i64);
            count(&mut problem, "max_replicas", 1, i32::MAX as i64);
            count(&mut problem, "cpu_utilization", 1, 1000);
            count(&mut problem, "memory_utilization", 1, 1000);
            if let (Some(min), Some(max)) = (n("min_replicas").and_then(|v| v.as_i64()), n("max_replicas").and_then(|v| v.as_i64()))
                && min > max
            {
                problem("min_replicas", format!("min_replicas ({min}) is above max_replicas ({max})"));
            }
        }
        SCHEDULE_TYPE => {
            count(&mut problem, "replicas", 0, i32::MAX as i64);
            if let Some(text) = s("schedule")
                && let Err(e) = Cron::parse(&text)
            {
                problem("schedule", format!("invalid cron schedule {text:?}: {e}"));
            }
            if let Some(tz) = s("time_zone")
                && let Err(e) = parse_time_zone(&tz)
            {
                problem("time_zone", e);
            }
            if s("image").is_some_and(|i| i.trim().is_empty() || i.ends_with(":latest")) {
                problem("image", "image must name a pinned kubectl image (not empty, not :latest)".into());
            }
        }
        _ => {}
    }
    problems
}

/// The plan notes of an update: who is being overridden.
pub fn shape_change(rtype: &str, prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
    let mut shape = ChangeShape { notes: forced_fields(prior, planned, changed), ..ChangeShape::default() };
    if rtype == DEPLOYMENT_TYPE && changed.iter().any(|c| c == REPLICAS_MANAGED_BY) {
        match planned.get(REPLICAS_MANAGED_BY).and_then(Value::as_str) {
            Some(owner) if !owner.is_empty() => {
                shape.notes.push(format!("replicas are handed over to {owner} (server-side apply ownership transfer, count kept)"))
            }
            _ => shape.notes.push("replicas are taken back from the HPA: himaplan sets them again".into()),
        }
    }
    shape
}

/// One note per changed field that another field manager owns: the apply
/// sends it with `force`, which takes the field over from that manager
/// (server-side apply's conflict resolution). A changed label is named by
/// its key; only the labels whose value changes are forced.
fn forced_fields(prior: &Value, planned: &Value, changed: &[String]) -> Vec<String> {
    let Some(set_by) = prior.get(FIELDS_SET_BY).and_then(Value::as_map) else { return vec![] };
    let note = |field: String, managers: &Value| {
        let managers: Vec<&str> = managers.as_str().unwrap_or_default().split(',').filter(|m| !m.is_empty()).collect();
        let plural = if managers.len() > 1 { "s" } else { "" };
        format!("{field} is managed by field manager{plural} {}; applying takes it over (force)", managers.join(", "))
    };
    let mut notes = Vec::new();
    for attr in changed {
        if attr == "labels" {
            let before = prior.get("labels").and_then(Value::as_map);
            for (key, value) in planned.get("labels").and_then(Value::as_map).into_iter().flatten() {
                if before.and_then(|b| b.get(key)) != Some(value)
                    && let Some(managers) = set_by.get(&format!("labels.{key}"))
                {
                    notes.push(note(format!("label {key:?}"), managers));
                }
            }
        } else if let Some(managers) = set_by.get(attr) {
            notes.push(note(attr.clone(), managers));
        }
    }
    notes
}

/// A DNS-1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn dns_label(s: &str) -> Result<(), &'static str> {
    let ok_chars = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ends = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if s.is_empty() || s.len() > 63 || !ok_chars || !ends {
        Err("must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit")
    } else {
        Ok(())
    }
}

/// A Kubernetes quantity's value ("250m" → 0.25, "512Mi" → 536870912).
pub fn parse_quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    if number.is_empty() || number == "." {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    let v = n * factor;
    v.is_finite().then_some(v)
}

/// Whether two quantities mean the same amount ("0.5" and "500m").
pub fn same_quantity(a: &str, b: &str) -> bool {
    match (parse_quantity(a), parse_quantity(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-9),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, Value)]) -> Value {
        Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(same_quantity("0.5", "500m"));
        assert!(same_quantity("1", "1000m"));
        assert!(same_quantity("1Gi", "1024Mi"));
        assert!(!same_quantity("1G", "1Gi"));
        assert_eq!(parse_quantity("2e3"), Some(2000.0));
        assert_eq!(parse_quantity("12x"), None);
        assert_eq!(parse_quantity("Mi"), None);
    }

    #[test]
    fn invalid_schedule_and_time_zone_name_their_attribute() {
        let c = cfg(&[
            ("name", "down".into()),
            ("target", "web".into()),
            ("schedule", "0 25 * * *".into()),
            ("time_zone", "Nowhere/Land".into()),
            ("replicas", 2i64.into()),
        ]);
        let problems = validate(SCHEDULE_TYPE, &c);
        let attrs: Vec<_> = problems.iter().filter_map(|p| p.attribute.as_deref()).collect();
        assert_eq!(attrs, ["schedule", "time_zone"], "{problems:?}");
    }

    #[test]
    fn himaplan_owned_attributes_cannot_be_declared() {
        let c = cfg(&[("name", "web".into()), ("image", "x".into()), (REPLICAS_MANAGED_BY, "me".into())]);
        assert_eq!(validate(DEPLOYMENT_TYPE, &c).len(), 1);
        let bad = cfg(&[
            ("name", "Web_1".into()),
            ("cpu_limit", "lots".into()),
            ("labels", Value::Map([(SELECTOR_LABEL.to_string(), "x".into())].into())),
        ]);
        assert_eq!(validate(DEPLOYMENT_TYPE, &bad).len(), 3);
        let hpa = cfg(&[("name", "web".into()), ("target", "web".into()), ("min_replicas", 5i64.into()), ("max_replicas", 2i64.into())]);
        assert_eq!(validate(HPA_TYPE, &hpa).len(), 1);
    }

    #[test]
    fn every_forced_field_names_its_manager() {
        let set_by =
            cfg(&[("replicas", "kubectl-scale".into()), ("image", "ops,kubectl-set".into()), ("labels.tier", "kubectl-label".into())]);
        let labels = |tier: &str| Value::Map([("tier".to_string(), tier.into()), ("team".to_string(), "web".into())].into());
        let prior = cfg(&[(FIELDS_SET_BY, set_by), ("labels", labels("ops"))]);
        let planned = cfg(&[("labels", labels("web"))]);
        let changed = ["replicas".into(), "image".into(), "labels".into(), "cpu_request".into()];
        let shape = shape_change(DEPLOYMENT_TYPE, &prior, &planned, &changed);
        assert_eq!(
            shape.notes,
            [
                "replicas is managed by field manager kubectl-scale; applying takes it over (force)",
                "image is managed by field managers ops, kubectl-set; applying takes it over (force)",
                "label \"tier\" is managed by field manager kubectl-label; applying takes it over (force)",
            ]
        );
        // An unchanged field is not forced, whoever owns it.
        assert!(shape_change(DEPLOYMENT_TYPE, &prior, &planned, &["cpu_request".into()]).notes.is_empty());
    }
}
