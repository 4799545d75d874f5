//! Snapshot tests of the three renderers over hand-built plans, and the
//! guarantees that hold for any plan: comments fit GitHub's limit, secret
//! hashes never show, odd values do not panic.

use super::{RenderOptions, human, json, markdown};
use crate::addr::InstanceAddr;
use crate::plan::{Action, ChangeReason, Disruption, Drift, OutputChange, Plan, ResourceChange, Unmanaged};
use serde_json::{Value, json};

const OLD_SECRET: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const NEW_SECRET: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn addr(text: &str) -> InstanceAddr {
    text.parse().expect("test addresses are valid")
}

fn change(address: &str, action: Action, before: Option<Value>, after: Option<Value>) -> ResourceChange {
    let addr = addr(address);
    ResourceChange {
        rtype: addr.resource.rtype.clone(),
        provider: addr.resource.rtype.split('_').next().unwrap_or_default().to_string(),
        addr,
        action,
        before,
        after,
        after_unknown: json!({}),
        replace_paths: Vec::new(),
        reason: None,
        disruption: None,
        notes: Vec::new(),
        depends_on: Vec::new(),
        fingerprint: "fp".to_string(),
        shrinks: false,
    }
}

/// A plan touching every feature the renderers know about.
fn full_plan() -> Plan {
    let mut db = change(
        "aws_instance.db",
        Action::DeleteThenCreate,
        Some(json!({
            "id": "i-0db", "ami": "ami-1", "instance_type": "t3.large", "private_ip": "10.0.2.5",
            "tags": {"Name": "db"}, "monitoring": true
        })),
        Some(json!({
            "id": null, "ami": "ami-2", "instance_type": "t3.large", "private_ip": null,
            "tags": {"Name": "db"}, "monitoring": true
        })),
    );
    db.after_unknown = json!({"id": true, "private_ip": true});
    db.replace_paths = vec!["ami".to_string()];
    db.reason = Some(ChangeReason::from_text("replace_because_cannot_update"));

    let mut web0 = change(
        "aws_instance.web[0]",
        Action::Update,
        Some(json!({
            "id": "i-0a", "ami": "ami-1", "instance_type": "t3.micro", "private_ip": "10.0.1.10",
            "monitoring": false,
            "tags": {"Name": "web-0", "env": "staging", "owner": "ops"}
        })),
        Some(json!({
            "id": "i-0a", "ami": "ami-1", "instance_type": "t3.small", "private_ip": "10.0.1.10",
            "monitoring": false,
            "tags": {"Name": "web-0", "env": "prod", "team": "erp"}
        })),
    );
    web0.disruption = Some("stop/start".to_string());
    web0.notes = vec!["taken out of nginx_upstream.web while it restarts".to_string()];

    let mut web2 = change(
        "aws_instance.web[2]",
        Action::Create,
        None,
        Some(json!({
            "id": null, "ami": "ami-1", "instance_type": "t3.small", "private_ip": null,
            "monitoring": false, "user_data": null,
            "tags": {"Name": "web-2", "env": "prod"}
        })),
    );
    web2.after_unknown = json!({"id": true, "private_ip": true});

    let mut web3 = change(
        "aws_instance.web[3]",
        Action::Delete,
        Some(json!({
            "id": "i-0d", "ami": "ami-1", "instance_type": "t3.micro", "private_ip": "10.0.1.13",
            "tags": {"Name": "web-3"}
        })),
        None,
    );
    web3.reason = Some(ChangeReason::from_text("delete_because_count_index"));

    let mut api = change(
        "docker_service.api[\"blue\"]",
        Action::CreateThenDelete,
        Some(json!({"id": "c0ffee", "image": "erp/api:1.4", "replicas": 2, "ports": [8080]})),
        Some(json!({"id": null, "image": "erp/api:1.5", "replicas": 2, "ports": [8080, 9090]})),
    );
    api.after_unknown = json!({"id": true});
    api.replace_paths = vec!["image".to_string()];
    api.reason = Some(ChangeReason::from_text("replace_because_cannot_update"));

    let upstream = change(
        "module.edge.nginx_upstream.web",
        Action::Update,
        Some(json!({"name": "web", "servers": ["10.0.1.10:80", "10.0.1.11:80"], "max_fails": 3})),
        Some(json!({"name": "web", "servers": ["10.0.1.11:80", "10.0.1.12:80"], "max_fails": 3})),
    );

    let mut pool = change(
        "pgbouncer_database.erp",
        Action::Update,
        Some(json!({"name": "erp", "password": {"sensitive": OLD_SECRET}, "pool_size": 20, "weight": 1.5})),
        Some(json!({"name": "erp", "password": {"sensitive": NEW_SECRET}, "pool_size": 40, "weight": 1.5})),
    );
    pool.notes = vec!["pending restart".to_string()];

    Plan {
        imports: vec![],
        relabels: vec![],
        disruptions: vec![Disruption {
            subject: "aws_instance.web".to_string(),
            disruption: "stop/start".to_string(),
            members: vec!["aws_instance.web[0]".to_string()],
            max_unavailable: 1,
            batches: 1,
            drained_from: vec!["module.edge.nginx_upstream.web".to_string()],
            gate: None,
        }],
        changes: vec![db, web0, web2, web3, api, upstream, pool],
        drift: vec![
            Drift {
                addr: addr("aws_instance.old"),
                before: Some(json!({"id": "i-0ld", "ami": "ami-0", "tags": {"Name": "old"}})),
                after: None,
            },
            Drift {
                addr: addr("aws_instance.web[1]"),
                before: Some(json!({"id": "i-0b", "instance_type": "t3.micro", "private_ip": "10.0.1.11", "tags": {"Name": "web-1"}})),
                after: Some(
                    json!({"id": "i-0b", "instance_type": "t3.large", "private_ip": "10.0.1.11", "tags": {"Name": "web-1", "debug": "yes"}}),
                ),
            },
        ],
        unmanaged: vec![
            Unmanaged {
                rtype: "aws_instance".to_string(),
                id: "i-0stray".to_string(),
                address: Some("aws_instance.web[7]".parse().unwrap()),
            },
            Unmanaged { rtype: "docker_service".to_string(), id: "celery-old".to_string(), address: None },
        ],
        output_changes: vec![
            OutputChange {
                name: "db_endpoint".to_string(),
                before: Some(json!("10.0.2.5:5432")),
                after: None,
                after_unknown: true,
                sensitive: false,
            },
            OutputChange {
                name: "db_password".to_string(),
                before: Some(json!({"sensitive": OLD_SECRET})),
                after: Some(json!({"sensitive": NEW_SECRET})),
                after_unknown: false,
                sensitive: true,
            },
            OutputChange {
                name: "web_count".to_string(),
                before: Some(json!(3)),
                after: Some(json!(3)),
                after_unknown: false,
                sensitive: false,
            },
            OutputChange {
                name: "web_ips".to_string(),
                before: Some(json!(["10.0.1.10", "10.0.1.11"])),
                after: Some(json!(["10.0.1.10", "10.0.1.11", "10.0.1.12"])),
                after_unknown: false,
                sensitive: false,
            },
        ],
        steps: vec![
            "aws_instance.web batch 1/1 (max_unavailable = 1): drain aws_instance.web[0] from module.edge.nginx_upstream.web \
             (10.0.1.10:8000: marked down, reload) → stop/start → restore module.edge.nginx_upstream.web (back up, reload)"
                .to_string(),
        ],
        notes: vec!["rollout: at most 1 instance of aws_instance.web is disrupted at a time".to_string()],
    }
}

fn plain(plan: &Plan) -> String {
    human(plan, &RenderOptions { color: false })
}

fn snapshots() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn human_full_plan() {
    // Every kind of change, drift, unmanaged objects, outputs, steps and notes.
    snapshots().bind(|| insta::assert_snapshot!("human_full_plan", plain(&full_plan())));
}

#[test]
fn markdown_full_plan() {
    // The same plan as a pull-request comment.
    snapshots().bind(|| insta::assert_snapshot!("markdown_full_plan", markdown(&full_plan())));
}

#[test]
fn json_full_plan() {
    // The same plan as Terraform-shaped JSON.
    snapshots().bind(|| insta::assert_json_snapshot!("json_full_plan", json(&full_plan())));
}

#[test]
fn human_no_changes_with_drift() {
    // Nothing to do, but an object changed outside himaplan.
    let mut plan = full_plan();
    plan.changes.clear();
    plan.output_changes.clear();
    plan.unmanaged.clear();
    plan.steps.clear();
    plan.notes.clear();
    plan.drift.truncate(1);
    snapshots().bind(|| insta::assert_snapshot!("human_no_changes_with_drift", plain(&plan)));
}

#[test]
fn human_empty_plan() {
    // An empty plan says there is nothing to do.
    let text = plain(&Plan::default());
    assert!(text.starts_with("No changes. Your infrastructure matches the configuration.\n"), "{text}");
    assert!(text.ends_with('\n'));
}

#[test]
fn colour_only_when_asked() {
    // ANSI escapes appear with `color` and never without it.
    let plan = full_plan();
    assert!(!plain(&plan).contains('\x1b'));
    assert!(!markdown(&plan).contains('\x1b'));
    let coloured = human(&plan, &RenderOptions { color: true });
    assert!(coloured.contains("\x1b[32m+\x1b[0m"));
    assert!(coloured.contains("\x1b[33m~\x1b[0m"));
    assert!(coloured.contains("\x1b[31m-\x1b[0m"));
}

#[test]
fn secret_hashes_never_rendered() {
    // A redacted secret shows as `(sensitive value)`, never as its hash.
    let plan = full_plan();
    let renderings = [plain(&plan), human(&plan, &RenderOptions { color: true }), markdown(&plan), json(&plan).to_string()];
    for text in renderings {
        assert!(!text.contains("sha256:"), "a secret hash leaked:\n{text}");
        assert!(!text.contains("1111111111"), "a secret hash leaked:\n{text}");
        assert!(!text.contains("2222222222"), "a secret hash leaked:\n{text}");
    }
    assert!(plain(&plan).contains("password  = (sensitive value)"));
}

/// A plan of `n` disruptive updates of one resource.
fn large_plan(n: i64) -> Plan {
    let changes = (0..n)
        .map(|i| {
            let mut c = change(
                &format!("aws_instance.web[{i}]"),
                Action::Update,
                Some(json!({"id": format!("i-{i:05}"), "instance_type": "t3.micro", "tags": {"Name": format!("web-{i}")}})),
                Some(json!({"id": format!("i-{i:05}"), "instance_type": "t3.small", "tags": {"Name": format!("web-{i}")}})),
            );
            c.disruption = Some("stop/start".to_string());
            c
        })
        .collect();
    Plan { changes, ..Plan::default() }
}

#[test]
fn markdown_of_5000_changes_fits_a_comment() {
    // GitHub refuses comments of 65,536 characters; 5,000 instances of one
    // resource are one row, and the collapsed plan is cut to fit.
    let text = markdown(&large_plan(5_000));
    assert!(text.chars().count() < 65_536, "{} characters", text.chars().count());
    assert!(text.contains("| ~ update | `aws_instance.web[0..4999]` × 5,000 | disruptive: stop/start |"), "{text}");
    assert!(text.contains("himaplan show"));
    assert!(text.contains("Full plan (truncated)"));
}

#[test]
fn markdown_of_many_resources_fits_a_comment() {
    // Thousands of distinct resources cannot all get a row either: the
    // table stops at a fixed number of rows and counts the rest.
    let changes = (0..5_000)
        .map(|i| {
            change(&format!("aws_s3_bucket.bucket_with_a_long_name_{i}"), Action::Create, None, Some(json!({"bucket": format!("b{i}")})))
        })
        .collect();
    let text = markdown(&Plan { changes, ..Plan::default() });
    assert!(text.len() < 65_536, "{} bytes", text.len());
    assert!(text.contains("| … | _4,960 more rows: 4,960 changes_ |"), "{text}");
}

#[test]
fn medium_plan_groups_instances_into_one_row() {
    // 300 disruptive updates of one resource were 300 rows: now one, with the
    // rollout called out before the table.
    let text = markdown(&large_plan(300));
    assert!(text.len() < 65_536);
    assert!(text.contains("| ~ update | `aws_instance.web[0..299]` × 300 | disruptive: stop/start |"), "{text}");
    assert_eq!(text.matches("| ~ update |").count(), 1, "{text}");
    assert!(text.contains("- **Disrupted**: `aws_instance.web[0..299]`: 300 × stop/start"), "{text}");
}

#[test]
fn markdown_of_10000_resources_keeps_the_summary_first_and_fits() {
    // The issue's bound: a 10,000-resource change (every resource distinct,
    // mixed actions) stays under GitHub's 65,536 characters, with the
    // summary line, the running things and the table before the collapsed
    // details.
    let changes: Vec<ResourceChange> = (0..10_000)
        .map(|i| {
            let name = format!("himaplan_data.resource_number_{i}");
            match i % 3 {
                0 => change(&name, Action::Create, None, Some(json!({"input": i}))),
                1 => change(&name, Action::Update, Some(json!({"input": i})), Some(json!({"input": i + 1}))),
                _ => {
                    let mut c = change(&name, Action::Delete, Some(json!({"input": i})), None);
                    c.reason = Some(ChangeReason::from_text("delete_because_no_resource_config"));
                    c
                }
            }
        })
        .collect();
    let text = markdown(&Plan { changes, ..Plan::default() });
    eprintln!("markdown of a 10,000-resource change: {} characters", text.chars().count());
    assert!(text.chars().count() <= 65_536, "{} characters", text.chars().count());
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"));
    assert_eq!(at(super::MARKER), 0);
    assert!(at("### Plan: 3334 to add") < at("**What happens to running things**"));
    assert!(at("**What happens to running things**") < at("| Change | Resources |"));
    assert!(at("| Change | Resources |") < at("<details>"));
    assert!(text.contains("- _… and "), "destroyed resources beyond the cap are counted: {text}");
    assert!(text.contains("more rows:"), "{text}");
    assert!(text.trim_end().ends_with("</details>"), "{text}");
}

#[test]
fn markdown_calls_out_destroys_replacements_and_rollouts_before_the_table() {
    // What a reviewer must see first: what stops, goes or is replaced.
    let text = markdown(&full_plan());
    let running = text.find("**What happens to running things**").expect("running things");
    let table = text.find("| Change |").expect("table");
    assert!(running < table, "{text}");
    let destroyed = text.find("- **Destroyed**: `aws_instance.web[3]`").expect("destroy line");
    let replaced = text.find("- **Replaced**: `aws_instance.db`: destroyed, then created again").expect("replace line");
    let disrupted = text
        .find("- **Disrupted**: `aws_instance.web[0]`: 1 × stop/start, all at once, drained from `module.edge.nginx_upstream.web` first")
        .expect("disruption line");
    assert!(destroyed < replaced && replaced < disrupted, "{text}");
}

#[test]
fn markdown_without_disruption_says_so() {
    // A plan that touches nothing running says it in one line.
    let plan = Plan { changes: vec![change("himaplan_data.x", Action::Create, None, Some(json!({"input": 1})))], ..Plan::default() };
    let text = markdown(&plan);
    assert!(text.contains("Nothing running is stopped, restarted, replaced or destroyed."), "{text}");
    assert!(text.contains("| Change | Resources |\n| --- | --- |\n| + create | `himaplan_data.x` |\n"), "no empty Notes column: {text}");
}

#[test]
fn markdown_diff_marks_updates_with_a_bang_github_colours() {
    // GitHub's diff highlighting colours +, - and ! lines, not ~.
    let text = markdown(&full_plan());
    let diff = &text[text.find("```diff").expect("diff block")..];
    assert!(diff.contains("\n!   resource \"aws_instance\" \"web\" {"), "{diff}");
    assert!(!diff.lines().any(|l| l.starts_with('~')), "{diff}");
}

#[test]
fn compact_addresses_name_ranges_and_keys() {
    let addrs = |list: &[&str]| list.iter().map(|a| addr(a)).collect::<Vec<_>>();
    assert_eq!(super::markdown::compact_for_tests(&addrs(&["a.b[0]", "a.b[1]", "a.b[2]", "a.b[5]"])), "a.b[0..2, 5]");
    assert_eq!(super::markdown::compact_for_tests(&addrs(&["a.b[\"x\"]", "a.b[\"y\"]"])), "a.b[\"x\", \"y\"]");
    assert_eq!(
        super::markdown::compact_for_tests(&addrs(&["a.b[0]", "a.b[2]", "a.b[4]", "a.b[6]", "a.b[8]", "a.b[10]"])),
        "a.b[0, 2, 4, 6, … 2 more]"
    );
    assert_eq!(super::markdown::compact_for_tests(&addrs(&["a.b"])), "a.b");
}

#[test]
fn an_output_that_stays_null_heads_no_outputs_section() {
    // "Changes to Outputs:" once stood alone above nothing: an output whose
    // value is null (and was absent) is no change at all.
    let plan = Plan {
        output_changes: vec![OutputChange {
            name: "o".into(),
            before: None,
            after: Some(Value::Null),
            after_unknown: false,
            sensitive: false,
        }],
        ..Plan::default()
    };
    assert!(!plan.has_changes());
    let text = plain(&plan);
    assert!(!text.contains("Changes to Outputs"), "{text}");
}

#[test]
fn odd_values_do_not_panic() {
    // Values of unexpected shapes still render, in all three formats.
    let mut odd = change("aws_instance.odd", Action::Update, Some(json!("just a string")), Some(json!([1, null, {"a": 1}])));
    odd.after_unknown = json!([true, "x", {"a": [true]}]);
    odd.replace_paths = vec!["[".to_string(), "a[\"x".to_string(), "".to_string(), "value[0]".to_string()];
    odd.reason = Some(ChangeReason::from_text("weird\nreason|"));
    let mut nested = change(
        "aws_instance.nested[\"a`b|c\"]",
        Action::DeleteThenCreate,
        Some(json!({"list": [{"x": 1}, {"x": 2}], "obj": {"k": [1, 2]}, "s": {"sensitive": OLD_SECRET}, "t": [], "u": {}})),
        Some(json!({"list": [{"x": 1}, {"x": 3}], "obj": "flat", "s": "now plain", "t": {}, "u": null})),
    );
    nested.after_unknown = json!(true);
    let plan = Plan {
        changes: vec![odd, nested],
        output_changes: vec![OutputChange {
            name: "o".to_string(),
            before: None,
            after: Some(json!({"a": {"b": 1.25}})),
            after_unknown: false,
            sensitive: false,
        }],
        steps: vec!["multi\nline".to_string()],
        ..Plan::default()
    };
    for color in [false, true] {
        let text = human(&plan, &RenderOptions { color });
        assert!(text.ends_with('\n'));
        assert!(!text.contains("sha256:"));
    }
    assert!(markdown(&plan).len() < 65_536);
    let _ = json(&plan);
}

#[test]
fn output_is_deterministic() {
    // Rendering twice gives identical text.
    let plan = full_plan();
    assert_eq!(plain(&plan), plain(&plan));
    assert_eq!(markdown(&plan), markdown(&plan));
    assert_eq!(json(&plan), json(&plan));
}
