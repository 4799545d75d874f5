//! `validate` checks a resource with `count` or `for_each` once, with
//! `count.index` / `each.key` / `each.value` unknown, as Terraform's does —
//! it never expands the instances (that is `plan`'s work). Needs no server.

mod support;

use support::TestDir;

#[test]
fn a_counted_resource_error_is_reported_once_not_per_instance() {
    // An error in the body of a resource with count = 3 was reported three times, once per expanded instance.
    let dir = TestDir::new("resource \"himaplan_data\" \"a\" {\n  count = 3\n  input = nosuch(count.index)\n}\n");
    let run = dir.run(&["validate"]);
    run.assert_code(1);
    let stderr = run.stderr();
    assert_eq!(stderr.matches("Unknown function \"nosuch\"").count(), 1, "{stderr}");
    assert!(stderr.contains("main.hcl:3"), "{stderr}");
}

#[test]
fn validate_accepts_a_count_and_for_each_not_known_until_plan() {
    // count = var.n with no default: validate type-checks the body with count.index unknown; plan needs the value.
    let dir = TestDir::new(
        "variable \"n\" {\n  type = number\n}\n\n\
         resource \"himaplan_data\" \"b\" {\n  count = var.n\n  input = \"x${count.index}\"\n}\n\n\
         resource \"himaplan_data\" \"c\" {\n  for_each         = toset([for i in range(var.n) : tostring(i)])\n  input            = himaplan_data.b[0].id\n  triggers_replace = each.value\n}\n",
    );
    dir.ok(&["validate"]);
    let plan = dir.run(&["plan", "--var", "n=2"]);
    plan.assert_code(0);
    assert!(plan.stdout().contains("himaplan_data.c[\"1\"]"), "{}", plan.stdout());
}

#[test]
fn validate_still_checks_a_known_count_and_the_body_once() {
    // A known count out of range and a wrong attribute in the body are both found without expanding.
    let dir = TestDir::new(
        "resource \"himaplan_data\" \"a\" {\n  count = -1\n  input = \"x\"\n}\n\nresource \"himaplan_data\" \"b\" {\n  for_each = toset([\"k\"])\n  inptu    = each.key\n}\n",
    );
    let run = dir.run(&["validate"]);
    run.assert_code(1);
    let stderr = run.stderr();
    assert!(stderr.contains("Invalid count") && stderr.contains("main.hcl:2"), "{stderr}");
    assert!(stderr.contains("inptu") && stderr.contains("main.hcl:8"), "{stderr}");
}
