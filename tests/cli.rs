//! The command line end to end on the built-in `himaplan_data` resource
//! (no server, no network): exit codes, the state file's format and
//! serial, secrets, variable precedence, plan files and their per-resource
//! staleness, approval, state surgery, outputs, JSON and markdown shapes,
//! `moved`, `--target`, `--replace`, lifecycle, `fmt`, the state lock and
//! journal recovery; and snapshots of the human, markdown and JSON plan.

mod support;

use himaplan_engine::state::StateLock;
use std::time::{Duration, Instant};
use support::{DEFAULT_STATE, StateFiles, TestDir};

use support::BASE;

fn applied(hcl: &str) -> TestDir {
    let dir = TestDir::new(hcl);
    dir.ok(&["apply", "--auto-approve"]);
    dir
}

// ---------------------------------------------------------------------------
// Exit codes, idempotence, the state file

#[test]
fn detailed_exitcode_is_2_with_changes_and_0_without() {
    // A fresh configuration plans changes (2); after apply the same plan has none (0).
    let dir = TestDir::new(BASE);
    dir.run(&["plan", "--detailed-exitcode"]).assert_code(2);
    dir.run(&["plan"]).assert_code(0);
    dir.ok(&["apply", "--auto-approve"]);
    let run = dir.run(&["plan", "--detailed-exitcode"]);
    run.assert_code(0);
    assert!(run.stdout().contains("No changes"), "{}", run.stdout());
}

#[test]
fn a_second_apply_leaves_the_state_file_byte_identical() {
    // Applying an unchanged configuration again neither rewrites the state nor bumps the serial nor leaves a journal.
    let dir = applied(BASE);
    let before = StateFiles::capture(&dir, DEFAULT_STATE);
    dir.ok(&["apply", "--auto-approve"]);
    assert_eq!(StateFiles::capture(&dir, DEFAULT_STATE), before);
    assert!(!dir.exists("state/default.json.journal"));
}

#[test]
fn serial_goes_up_by_one_per_changing_apply_only() {
    // Serial 1 after the first apply, unchanged by a no-op apply, 2 after a change, 3 after another.
    let dir = applied(BASE);
    assert_eq!(dir.serial(), 1);
    dir.ok(&["apply", "--auto-approve"]);
    assert_eq!(dir.serial(), 1);
    dir.ok(&["apply", "--auto-approve", "--var", "size=3"]);
    assert_eq!(dir.serial(), 2);
    dir.ok(&["apply", "--auto-approve", "--var", "size=3"]);
    assert_eq!(dir.serial(), 2);
    dir.ok(&["apply", "--auto-approve", "--var", "size=1"]);
    assert_eq!(dir.serial(), 3);
}

#[test]
fn state_file_is_canonical_private_and_backed_up() {
    // The state is mode 0600, 2-space indented with sorted keys and a trailing newline; .backup is the previous file.
    let dir = applied(BASE);
    let first = dir.state_text();
    dir.ok(&["apply", "--auto-approve", "--var", "size=3"]);
    let text = dir.state_text();
    assert!(text.ends_with("}\n") && !text.ends_with("\n\n"), "one trailing newline");
    assert!(text.starts_with("{\n  \"lineage\""), "2-space indent, keys sorted: {}", &text[..40.min(text.len())]);
    // Re-serialising with sorted keys and 2-space indent reproduces the file exactly.
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(serde_json::to_string_pretty(&json).expect("pretty") + "\n", text);
    let resource = &json["resources"][0];
    let keys: Vec<&String> = resource.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["address", "attributes", "dependencies", "provider", "schema_version", "type"]);
    for top in ["version", "serial", "lineage", "resources", "outputs"] {
        assert!(json.get(top).is_some(), "top-level {top}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(DEFAULT_STATE)).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "state file mode {mode:o}");
    }
    assert_eq!(dir.read("state/default.json.backup"), first);
}

#[test]
fn numeric_indexes_sort_as_numbers() {
    // With count = 11, web[2] comes before web[10] in the state file and in state list.
    let dir = applied("resource \"himaplan_data\" \"web\" {\n  count = 11\n  input = count.index\n}\n");
    let expected: Vec<String> = (0..11).map(|i| format!("himaplan_data.web[{i}]")).collect();
    assert_eq!(dir.state_addresses(), expected);
    let listed: Vec<String> = dir.ok(&["state", "list"]).stdout().lines().map(str::to_string).collect();
    assert_eq!(listed, expected);
}

// ---------------------------------------------------------------------------
// Secrets

const SECRET_CONFIG: &str = r#"variable "token" {
  type      = string
  sensitive = true
}

resource "himaplan_data" "s" {
  input = var.token
}

output "tok" {
  value     = var.token
  sensitive = true
}
"#;

const SECRET: &str = "s3cr3t-Zq81-never-shown";

#[test]
fn a_sensitive_variable_never_appears_yet_its_change_is_detected() {
    // The secret is in no output, state or plan file; the state keeps a hash, and a new secret plans an update.
    let dir = TestDir::new(SECRET_CONFIG);
    let env = [("HIMAPLAN_VAR_token", SECRET)];
    let mut seen = String::new();
    for args in [
        &["plan"][..],
        &["plan", "--format", "json"],
        &["plan", "--format", "markdown"],
        &["plan", "--out", "p.plan"],
        &["apply", "--auto-approve"],
        &["show"],
        &["show", "--json"],
        &["show", "p.plan"],
        &["show", "--json", "p.plan"],
        &["output"],
        &["output", "--json"],
        &["output", "tok"],
        &["state", "show", "himaplan_data.s"],
    ] {
        let run = dir.run_with(args, &env, None);
        run.assert_code(0);
        seen.push_str(&run.all());
    }
    for (what, text) in [("output", seen), ("state", dir.state_text()), ("plan file", dir.read("p.plan"))] {
        assert!(!text.contains(SECRET), "the secret appears in the {what}");
    }
    let stored = &dir.state_attrs("himaplan_data.s")["input"];
    assert!(
        stored["sensitive"].as_str().is_some_and(|h| h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")),
        "stored as an argon2id hash: {stored}"
    );

    dir.run_with(&["plan", "--detailed-exitcode"], &env, None).assert_code(0);
    let changed = dir.run_with(&["plan", "--detailed-exitcode"], &[("HIMAPLAN_VAR_token", "another-secret")], None);
    changed.assert_code(2);
    assert!(changed.stdout().contains("~ input  = (sensitive value)"), "{}", changed.stdout());
    assert!(!changed.all().contains("another-secret"));
}

#[test]
fn apply_of_a_plan_file_refuses_a_different_secret() {
    // A plan made with one secret is refused (exit 1, state untouched) when applied with another, and applies with the same one.
    let dir = TestDir::new(SECRET_CONFIG);
    dir.run_with(&["plan", "--out", "p.plan"], &[("HIMAPLAN_VAR_token", SECRET)], None).assert_code(0);
    let refused = dir.run_with(&["apply", "p.plan"], &[("HIMAPLAN_VAR_token", "not-the-same")], None);
    refused.assert_code(1);
    assert!(refused.stderr().contains("\"token\""), "{}", refused.stderr());
    assert!(!dir.exists(DEFAULT_STATE), "nothing was applied");
    dir.run_with(&["apply", "p.plan"], &[("HIMAPLAN_VAR_token", SECRET)], None).assert_code(0);
    assert!(dir.exists(DEFAULT_STATE));
}

// ---------------------------------------------------------------------------
// Variables

#[test]
fn variable_sources_apply_in_precedence_order() {
    // default < *.auto.hvars < --var-file (HCL, then JSON) < HIMAPLAN_VAR_x < --var.
    let config = "variable \"x\" {\n  type    = string\n  default = \"default\"\n}\n\noutput \"x\" {\n  value = var.x\n}\n";
    let dir = TestDir::with_files(&[
        ("main.hcl", config),
        ("a.auto.hvars", "x = \"auto\"\n"),
        ("one.hvars", "x = \"file-hcl\"\n"),
        ("two.json", "{\"x\": \"file-json\"}\n"),
    ]);
    let x = |args: &[&str], env: &[(&str, &str)]| -> String {
        let mut full = vec!["apply", "--auto-approve"];
        full.extend_from_slice(args);
        dir.run_with(&full, env, None).assert_code(0);
        dir.state()["outputs"]["x"]["value"].as_str().expect("string output").to_string()
    };
    assert_eq!(x(&[], &[]), "auto");
    assert_eq!(x(&["--var-file", "one.hvars"], &[]), "file-hcl");
    assert_eq!(x(&["--var-file", "two.json"], &[]), "file-json");
    assert_eq!(x(&["--var-file", "two.json", "--var-file", "one.hvars"], &[]), "file-hcl", "later --var-file wins");
    assert_eq!(x(&["--var-file", "one.hvars"], &[("HIMAPLAN_VAR_x", "env")]), "env");
    assert_eq!(x(&["--var-file", "one.hvars", "--var", "x=flag"], &[("HIMAPLAN_VAR_x", "env")]), "flag");
    dir.remove("a.auto.hvars");
    assert_eq!(x(&[], &[]), "default");
}

// ---------------------------------------------------------------------------
// Plan files

#[test]
fn a_saved_plan_applies_exactly() {
    // plan --out then apply FILE creates what the plan showed and nothing else.
    let dir = TestDir::new(BASE);
    dir.ok(&["plan", "--out", "p.plan"]);
    assert!(!dir.exists(DEFAULT_STATE), "plan writes no state");
    // The working directory may change: apply FILE uses the plan's snapshot.
    dir.write("main.hcl", "resource \"himaplan_data\" \"other\" {\n}\n");
    dir.ok(&["apply", "p.plan"]);
    assert_eq!(dir.state_addresses(), ["himaplan_data.a", "himaplan_data.b[0]", "himaplan_data.b[1]"]);
}

const TWO_STACKS: &str = r#"variable "x" {
  default = "x1"
}

variable "y" {
  default = "y1"
}

resource "himaplan_data" "x" {
  input = var.x
}

resource "himaplan_data" "y" {
  input = var.y
}
"#;

#[test]
fn a_plan_file_is_stale_only_for_its_own_resources() {
    // A plan changing x is refused after another apply changed x; a plan changing y still applies after that apply.
    let dir = applied(TWO_STACKS);
    dir.ok(&["plan", "--var", "x=x2", "--out", "x.plan"]);
    dir.ok(&["plan", "--var", "y=y2", "--out", "y.plan"]);
    dir.ok(&["apply", "--auto-approve", "--var", "x=x3"]);

    let before = StateFiles::capture(&dir, DEFAULT_STATE);
    let stale = dir.run(&["apply", "x.plan"]);
    stale.assert_code(1);
    assert!(stale.stderr().contains("stale") && stale.stderr().contains("himaplan_data.x"), "{}", stale.stderr());
    assert_eq!(StateFiles::capture(&dir, DEFAULT_STATE), before, "a refused plan changes nothing");

    dir.ok(&["apply", "y.plan"]);
    assert_eq!(dir.state_attrs("himaplan_data.y")["input"], "y2");
    assert_eq!(dir.state_attrs("himaplan_data.x")["input"], "x3");
}

// ---------------------------------------------------------------------------
// Approval

#[test]
fn apply_asks_and_only_yes_applies() {
    // Without --auto-approve, "no" (or end of input) applies nothing and exits 1; "yes" applies.
    let dir = TestDir::new(BASE);
    for answer in [Some("no\n"), Some("y\n"), None] {
        let run = dir.run_with(&["apply"], &[], answer);
        run.assert_code(1);
        assert!(!dir.exists(DEFAULT_STATE), "answer {answer:?} applied something");
    }
    let run = dir.run_with(&["apply"], &[], Some("yes\n"));
    run.assert_code(0);
    assert!(run.stdout().contains("Only 'yes' will be accepted"), "{}", run.stdout());
    assert_eq!(dir.state_addresses().len(), 3);
}

#[test]
fn refresh_says_nothing_about_types_with_nothing_in_state() {
    // The first plan printed a "Refreshing 0 … object(s)..." line per type.
    let dir = TestDir::new(BASE);
    let first = dir.ok(&["plan"]);
    assert!(!first.stderr().contains("Refreshing"), "{}", first.stderr());
    dir.ok(&["apply", "--auto-approve"]);
    let again = dir.ok(&["plan"]);
    assert!(again.stderr().contains("Refreshing 3 himaplan_data objects..."), "{}", again.stderr());
}

#[test]
fn the_examples_upstream_servers_output_is_one_flat_list() {
    // examples/himalytix/nginx.hcl's output of its counted upstream was a
    // list of lists ([for u in nginx_upstream.web : u.servers]); the example
    // now flattens it. Planned with the example's own file and a stand-in
    // for module.web whose addresses are known at plan time.
    let nginx = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/himalytix/nginx.hcl")).expect("example");
    let module = "output \"private_ips\" {\n  value = [\"10.0.0.1\", \"10.0.0.2\"]\n}\n";
    let main = "module \"web\" {\n  source = \"./web\"\n}\n";
    let dir = TestDir::with_files(&[("main.hcl", main), ("nginx.hcl", &nginx), ("web/main.hcl", module)]);
    let upstream_file = dir.path().join("upstream.conf");
    let var = format!("nginx_upstream_file={}", upstream_file.display());
    let plan: serde_json::Value =
        serde_json::from_str(&dir.ok(&["plan", "--refresh=false", "--format", "json", "--var", &var]).stdout()).expect("JSON plan");
    assert_eq!(plan["output_changes"]["nginx_upstream_servers"]["after"], serde_json::json!(["10.0.0.1:8000", "10.0.0.2:8000"]));
}

#[test]
fn apply_cancelled_stands_on_its_own_line() {
    // With piped input nothing echoes the answer: "Apply cancelled." was
    // printed on the prompt's line, glued to "Enter a value: ".
    let dir = TestDir::new(BASE);
    let run = dir.run_with(&["apply"], &[], Some("no\n"));
    run.assert_code(1);
    let out = run.stdout();
    assert!(out.ends_with("  Enter a value: \n\nApply cancelled.\n"), "{out}");
}

// ---------------------------------------------------------------------------
// State commands and outputs

#[test]
fn state_list_show_rm_mv() {
    // list names every instance; show prints attributes; mv renames; rm forgets; each write bumps the serial once.
    let dir = applied(BASE);
    let list = dir.ok(&["state", "list"]).stdout();
    assert_eq!(list, "himaplan_data.a\nhimaplan_data.b[0]\nhimaplan_data.b[1]\n");
    let show = dir.ok(&["state", "show", "himaplan_data.a"]).stdout();
    assert!(show.contains("resource \"himaplan_data\" \"a\"") && show.contains("\"hello\""), "{show}");

    dir.ok(&["state", "mv", "himaplan_data.b[1]", "himaplan_data.b[7]"]);
    assert_eq!(dir.state_addresses(), ["himaplan_data.a", "himaplan_data.b[0]", "himaplan_data.b[7]"]);
    assert_eq!(dir.serial(), 2);
    dir.ok(&["state", "rm", "himaplan_data.b[7]"]);
    assert_eq!(dir.state_addresses(), ["himaplan_data.a", "himaplan_data.b[0]"]);
    assert_eq!(dir.serial(), 3);
    // The forgotten instance is planned again.
    let plan = dir.ok(&["plan"]).stdout();
    assert!(plan.contains("himaplan_data.b[1] will be created"), "{plan}");
}

#[test]
fn output_prints_values_and_json() {
    // output NAME prints the value, output --json every output with its sensitivity.
    let dir = applied(BASE);
    let id = dir.state_attrs("himaplan_data.a")["id"].as_str().expect("id").to_string();
    assert_eq!(dir.ok(&["output", "a_id"]).stdout().trim(), id);
    let json = dir.ok(&["output", "--json"]).json();
    assert_eq!(json["a_id"]["value"], id);
    assert_eq!(json["a_id"]["sensitive"], false);
}

#[test]
fn show_json_has_terraforms_shape() {
    // show --json: format_version and values.root_module.resources with address, type, name, index and values.
    let dir = applied(BASE);
    let json = dir.ok(&["show", "--json"]).json();
    assert!(json["format_version"].is_string());
    let resources = json["values"]["root_module"]["resources"].as_array().expect("resources");
    assert_eq!(resources.len(), 3);
    let b1 = &resources[2];
    assert_eq!(b1["address"], "himaplan_data.b[1]");
    assert_eq!(b1["type"], "himaplan_data");
    assert_eq!(b1["name"], "b");
    assert_eq!(b1["index"], 1);
    assert!(b1["values"]["input"].as_str().is_some_and(|s| s.ends_with("-1")));
}

#[test]
fn plan_json_has_terraforms_shape() {
    // plan --format json: format_version and resource_changes[] with change.actions and after_unknown.
    let dir = TestDir::new(BASE);
    let json = dir.ok(&["plan", "--format", "json"]).json();
    assert!(json["format_version"].is_string());
    let changes = json["resource_changes"].as_array().expect("resource_changes");
    assert_eq!(changes.len(), 3);
    let a = &changes[0];
    assert_eq!(a["address"], "himaplan_data.a");
    assert_eq!(a["type"], "himaplan_data");
    assert_eq!(a["name"], "a");
    assert_eq!(a["change"]["actions"], serde_json::json!(["create"]));
    assert_eq!(a["change"]["after"]["input"], "hello");
    assert_eq!(a["change"]["after_unknown"]["id"], true);
    assert_eq!(changes[2]["index"], 1);
    assert_eq!(changes[2]["change"]["after_unknown"]["input"], true, "b's input is known after apply");
}

#[test]
fn markdown_plan_has_a_table_and_collapsed_details() {
    // --format markdown is for a pull-request comment: a summary table and <details>.
    let dir = TestDir::new(BASE);
    let md = dir.ok(&["plan", "--format", "markdown"]).stdout();
    assert!(md.lines().any(|l| l.starts_with('|') && l.contains("---")), "a table:\n{md}");
    assert!(md.contains("<details>") && md.contains("</details>"), "{md}");
}

#[test]
fn validate_json_shape() {
    // validate --json reports valid, counts and diagnostics with a file range, and exits 1 when invalid.
    let dir = TestDir::new(BASE);
    let ok = dir.ok(&["validate", "--json"]).json();
    assert_eq!(ok["valid"], true);
    assert_eq!(ok["error_count"], 0);
    dir.write("main.hcl", "resource \"himaplan_data\" \"a\" {\n  input = var.nope\n}\n");
    let run = dir.run(&["validate", "--json"]);
    run.assert_code(1);
    let bad = run.json();
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["error_count"], 1);
    let d = &bad["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    assert!(d["summary"].as_str().is_some_and(|s| s.contains("nope")));
    assert_eq!(d["range"]["filename"], "main.hcl");
    assert_eq!(d["range"]["start"]["line"], 2);
}

// ---------------------------------------------------------------------------
// Language features seen through plan and apply

#[test]
fn moved_block_renames_state_without_changes() {
    // Renaming a to c with a moved block moves the state entry and plans nothing else.
    let dir = applied("resource \"himaplan_data\" \"a\" {\n  input = \"v\"\n}\n");
    let id = dir.state_attrs("himaplan_data.a")["id"].clone();
    dir.write(
        "main.hcl",
        "resource \"himaplan_data\" \"c\" {\n  input = \"v\"\n}\n\nmoved {\n  from = himaplan_data.a\n  to   = himaplan_data.c\n}\n",
    );
    let plan = dir.ok(&["plan"]).stdout();
    assert!(!plan.contains("will be created") && !plan.contains("will be destroyed"), "{plan}");
    assert!(plan.contains("himaplan_data.a has moved to himaplan_data.c"), "{plan}");
    dir.ok(&["apply", "--auto-approve"]);
    assert_eq!(dir.state_addresses(), ["himaplan_data.c"]);
    assert_eq!(dir.state_attrs("himaplan_data.c")["id"], id);
    dir.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

#[test]
fn target_limits_the_plan() {
    // --target himaplan_data.y plans only y, and applying it leaves x to a later run.
    let dir = applied(TWO_STACKS);
    let run = dir.run(&["plan", "--var", "x=x2", "--var", "y=y2", "--target", "himaplan_data.y", "--format", "json"]);
    run.assert_code(0);
    let addrs: Vec<String> =
        run.json()["resource_changes"].as_array().expect("changes").iter().map(|c| c["address"].as_str().unwrap().to_string()).collect();
    assert_eq!(addrs, ["himaplan_data.y"]);
    dir.ok(&["apply", "--auto-approve", "--var", "x=x2", "--var", "y=y2", "--target", "himaplan_data.y"]);
    assert_eq!(dir.state_attrs("himaplan_data.x")["input"], "x1");
    assert_eq!(dir.state_attrs("himaplan_data.y")["input"], "y2");
}

#[test]
fn replace_forces_a_replacement() {
    // --replace on an unchanged instance plans -/+ and apply gives it a new id.
    let dir = applied(TWO_STACKS);
    let old = dir.state_attrs("himaplan_data.x")["id"].clone();
    let plan = dir.ok(&["plan", "--replace", "himaplan_data.x"]).stdout();
    assert!(plan.contains("-/+ resource \"himaplan_data\" \"x\""), "{plan}");
    assert!(plan.contains("Plan: 1 to add, 0 to change, 1 to destroy."), "{plan}");
    dir.ok(&["apply", "--auto-approve", "--replace", "himaplan_data.x"]);
    assert_ne!(dir.state_attrs("himaplan_data.x")["id"], old);
}

#[test]
fn ignore_changes_keeps_the_recorded_value() {
    // lifecycle { ignore_changes = [input] } makes a changed input plan nothing.
    let config = |v: &str| {
        format!("resource \"himaplan_data\" \"a\" {{\n  input = \"{v}\"\n  lifecycle {{\n    ignore_changes = [input]\n  }}\n}}\n")
    };
    let dir = applied(&config("one"));
    dir.write("main.hcl", &config("two"));
    dir.run(&["plan", "--detailed-exitcode"]).assert_code(0);
    assert_eq!(dir.state_attrs("himaplan_data.a")["input"], "one");
}

#[test]
fn create_before_destroy_shows_plus_minus() {
    // A replacement under create_before_destroy is shown as +/- and applies.
    let config = |t: &str| {
        format!(
            "resource \"himaplan_data\" \"a\" {{\n  triggers_replace = \"{t}\"\n  lifecycle {{\n    create_before_destroy = true\n  }}\n}}\n"
        )
    };
    let dir = applied(&config("1"));
    dir.write("main.hcl", &config("2"));
    let plan = dir.ok(&["plan"]).stdout();
    assert!(plan.contains("+/- resource \"himaplan_data\" \"a\""), "{plan}");
    dir.ok(&["apply", "--auto-approve"]);
    assert_eq!(dir.state_attrs("himaplan_data.a")["triggers_replace"], "2");
    dir.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

// ---------------------------------------------------------------------------
// fmt

#[test]
fn fmt_keeps_comments_and_check_fails_on_unformatted_files() {
    // fmt --check exits 1 and writes nothing; fmt rewrites keeping comments; then --check passes.
    let messy =
        "# top comment\nresource \"himaplan_data\" \"a\" {\n    input=\"x\" # trailing\n  // another\n      triggers_replace   =   1\n}\n";
    let dir = TestDir::new(messy);
    let check = dir.run(&["fmt", "--check"]);
    check.assert_code(1);
    assert!(check.stdout().contains("main.hcl"), "{}", check.stdout());
    assert_eq!(dir.read("main.hcl"), messy, "--check writes nothing");
    dir.ok(&["fmt"]);
    let formatted = dir.read("main.hcl");
    for comment in ["# top comment", "# trailing", "// another"] {
        assert!(formatted.contains(comment), "{comment} lost:\n{formatted}");
    }
    assert!(formatted.contains("\n  input = \"x\" # trailing\n"), "indented and spaced:\n{formatted}");
    dir.ok(&["fmt", "--check"]);
    dir.ok(&["validate"]);
}

#[test]
fn fmt_check_diff_recursive_shows_terraform_layout_and_writes_nothing() {
    // `fmt --check --diff -r` names a nested file, prints the unified diff
    // to Terraform's layout (spaced object arguments, blank lines and
    // comment text kept) and exits 1 without writing; `fmt -r` writes it.
    let messy = "locals {\n  keys = keys({a = 1, c = 2})   # note   \n\n\n  m = merge({ a = \"b\" },{e=\"f\"})\n}\n";
    let want = "locals {\n  keys = keys({ a = 1, c = 2 }) # note   \n\n\n  m = merge({ a = \"b\" }, { e = \"f\" })\n}\n";
    let dir = TestDir::with_files(&[("main.hcl", "locals {\n}\n"), ("modules/m/main.hcl", messy)]);
    let check = dir.run(&["fmt", "--check", "--diff", "-r"]);
    check.assert_code(1);
    let out = check.stdout();
    assert!(out.contains("modules/m/main.hcl\n"), "{out}");
    assert!(!out.lines().any(|l| l == "main.hcl"), "a formatted file is not listed: {out}");
    assert!(out.contains("-  keys = keys({a = 1, c = 2})   # note   \n+  keys = keys({ a = 1, c = 2 }) # note   \n"), "{out}");
    assert_eq!(dir.read("modules/m/main.hcl"), messy, "--check writes nothing");
    dir.run(&["fmt", "--check"]).assert_code(0);
    dir.ok(&["fmt", "-r"]);
    assert_eq!(dir.read("modules/m/main.hcl"), want);
    dir.ok(&["fmt", "--check", "-r"]);
}

// ---------------------------------------------------------------------------
// The state lock

fn hold_lock(dir: &TestDir) -> StateLock {
    std::fs::create_dir_all(dir.join("state")).expect("state dir");
    StateLock::acquire(&dir.join("state/default.json.lock"), "test", Duration::ZERO).expect("take the lock")
}

#[test]
fn a_held_lock_stops_apply_at_once_naming_the_holder() {
    // While another holder has the lock, apply fails at once naming its id, and the state is untouched.
    let dir = applied(BASE);
    let lock = hold_lock(&dir);
    let before = StateFiles::capture(&dir, DEFAULT_STATE);
    let run = dir.run(&["apply", "--auto-approve", "--var", "size=3"]);
    run.assert_code(1);
    assert!(run.stderr().contains(&lock.info().id) && run.stderr().contains("\"test\""), "{}", run.stderr());
    assert_eq!(StateFiles::capture(&dir, DEFAULT_STATE), before);
    // State surgery takes the lock too.
    dir.run(&["state", "rm", "himaplan_data.a"]).assert_code(1);
    drop(lock);
    dir.ok(&["apply", "--auto-approve", "--var", "size=3"]);
}

#[test]
fn lock_timeout_waits_then_fails() {
    // apply --lock-timeout 2s waits for the lock (at least most of the 2 s) and then fails naming the holder.
    let dir = applied(BASE);
    let lock = hold_lock(&dir);
    let started = Instant::now();
    let run = dir.run(&["apply", "--auto-approve", "--var", "size=3", "--lock-timeout", "2s"]);
    run.assert_code(1);
    assert!(started.elapsed() >= Duration::from_millis(1500), "it waited");
    assert!(run.stderr().contains("timed out") && run.stderr().contains(&lock.info().id), "{}", run.stderr());
}

#[test]
fn plan_needs_no_lock() {
    // plan reads a snapshot and succeeds while the lock is held.
    let dir = applied(BASE);
    let _lock = hold_lock(&dir);
    dir.run(&["plan", "--var", "size=3", "--detailed-exitcode"]).assert_code(2);
}

#[test]
fn force_unlock_refuses_while_the_holder_lives() {
    // While a live process holds the flock, force-unlock with its id is refused naming it and the lock stays;
    // once the holder is gone (killed, its body left behind) the same id removes the lock and apply proceeds.
    let dir = applied(BASE);
    std::fs::create_dir_all(dir.join("state")).expect("state dir");
    let lock_path = dir.join("state/default.json.lock");
    std::fs::write(&lock_path, "").expect("create the lock file");
    // `-o`: only flock(1) itself holds the lock, so killing it releases it (its `sleep` child keeps no copy).
    let mut holder = std::process::Command::new("flock").arg("-o").arg(&lock_path).args(["sleep", "60"]).spawn().expect("run flock(1)");
    let started = Instant::now();
    while StateLock::acquire(&lock_path, "probe", Duration::ZERO).is_ok() {
        assert!(started.elapsed() < Duration::from_secs(10), "the flock(1) child never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The body is what a holder that is then killed leaves behind.
    let id = "6d1f0c2e-live-4b1a-9e0f-holder000001";
    let body =
        serde_json::json!({ "id": id, "operation": "apply", "who": "ci@runner-3", "created": "2026-01-05T03:00:00Z", "pid": holder.id() });
    std::fs::write(&lock_path, serde_json::to_string_pretty(&body).expect("json")).expect("write the holder's body");

    dir.run(&["force-unlock", "wrong-id"]).assert_code(1);
    let refused = dir.run(&["force-unlock", id]);
    refused.assert_code(1);
    for needle in [id, "ci@runner-3", &format!("pid {}", holder.id())] {
        assert!(refused.stderr().contains(needle), "the refusal must name the live holder ({needle}): {}", refused.stderr());
    }
    assert!(dir.exists("state/default.json.lock"), "a refused force-unlock removed the lock file");
    dir.run(&["apply", "--auto-approve", "--var", "size=3"]).assert_code(1);

    holder.kill().expect("kill the holder");
    holder.wait().expect("reap the holder");
    dir.ok(&["force-unlock", id]);
    assert!(!dir.exists("state/default.json.lock"));
    dir.ok(&["apply", "--auto-approve", "--var", "size=3"]);
}

// ---------------------------------------------------------------------------
// Journal recovery

#[test]
fn a_journal_left_by_a_crash_is_replayed_and_committed() {
    // A crash after one completed Set of c: plan shows c as existing, apply commits it, and the journal is gone.
    let dir = applied("resource \"himaplan_data\" \"a\" {\n  input = \"a\"\n}\n");
    let state = dir.state();
    dir.write(
        "main.hcl",
        "resource \"himaplan_data\" \"a\" {\n  input = \"a\"\n}\n\nresource \"himaplan_data\" \"c\" {\n  input = \"c\"\n}\n",
    );
    let begin = serde_json::json!({ "op": "begin", "serial": state["serial"], "lineage": state["lineage"] });
    let intent = serde_json::json!({ "op": "intent", "address": "himaplan_data.c", "rtype": "himaplan_data", "token": "tok-c" });
    let set = serde_json::json!({
        "op": "set",
        "address": "himaplan_data.c",
        "token": "tok-c",
        "resource": {
            "type": "himaplan_data",
            "provider": "himaplan",
            "schema_version": 0,
            "attributes": { "id": "tok-c", "input": "c", "output": "c", "triggers_replace": null },
            "dependencies": [],
        },
    });
    dir.write("state/default.json.journal", &format!("{begin}\n{intent}\n{set}\n"));

    let plan = dir.run(&["plan", "--detailed-exitcode"]);
    plan.assert_code(0);
    assert!(!plan.stdout().contains("will be created"), "c was replayed from the journal:\n{}", plan.stdout());
    let list = dir.ok(&["state", "list"]).stdout();
    assert!(list.contains("himaplan_data.c"), "{list}");

    dir.ok(&["apply", "--auto-approve"]);
    assert!(!dir.exists("state/default.json.journal"), "the journal was folded into the state");
    assert_eq!(dir.state_addresses(), ["himaplan_data.a", "himaplan_data.c"]);
    assert_eq!(dir.state_attrs("himaplan_data.c")["id"], "tok-c");
    assert_eq!(dir.serial(), 2);
}

#[test]
fn a_leftover_journal_that_changes_nothing_is_discarded_by_the_next_apply() {
    // A crash after the journal's Set but before its delete (the Set is already in the state), and one after the
    // rename (a committed segment): plan takes no lock and leaves the journal; the next apply, which holds the
    // lock and finds nothing to change, discards it without rewriting the state.
    let dir = applied("resource \"himaplan_data\" \"a\" {\n  input = \"a\"\n}\n");
    let state = dir.state();
    let resource = state["resources"][0].clone();
    let mut entry = resource.as_object().expect("resource object").clone();
    entry.remove("address");
    let set = serde_json::json!({ "op": "set", "address": "himaplan_data.a", "resource": entry });
    for serial in [state["serial"].as_u64().expect("serial"), 0] {
        let begin = serde_json::json!({ "op": "begin", "serial": serial, "lineage": state["lineage"] });
        dir.write("state/default.json.journal", &format!("{begin}\n{set}\n"));
        let before = StateFiles::capture(&dir, DEFAULT_STATE);

        dir.run(&["plan", "--detailed-exitcode"]).assert_code(0);
        assert_eq!(StateFiles::capture(&dir, DEFAULT_STATE), before, "plan changed the state files (segment serial {serial})");

        dir.ok(&["apply", "--auto-approve"]);
        assert!(!dir.exists("state/default.json.journal"), "the leftover journal (segment serial {serial}) outlived the apply");
        assert_eq!(dir.state(), state, "the state changed (segment serial {serial})");
    }
}

// ---------------------------------------------------------------------------
// Snapshots of the plan output

/// A configuration whose plan has every kind of change against [`SNAPSHOT_STATE`].
const SNAPSHOT_CONFIG: &str = r#"resource "himaplan_data" "keep" {
  input = "same"
}

resource "himaplan_data" "update" {
  input = { size = 4, name = "web" }
}

resource "himaplan_data" "replace" {
  input            = "r"
  triggers_replace = "v2"
}

resource "himaplan_data" "create" {
  count = 2
  input = "${himaplan_data.replace.id}-${count.index}"
}

output "created" {
  value = [for c in himaplan_data.create : c.id]
}
"#;

/// A hand-written state with fixed ids, so the plan output is deterministic.
const SNAPSHOT_STATE: &str = r#"{
  "lineage": "00000000-0000-4000-8000-000000000001",
  "outputs": {},
  "resources": [
    {
      "address": "himaplan_data.gone",
      "attributes": { "id": "id-gone", "input": "bye", "output": "bye", "triggers_replace": null },
      "dependencies": [],
      "provider": "himaplan",
      "schema_version": 0,
      "type": "himaplan_data"
    },
    {
      "address": "himaplan_data.keep",
      "attributes": { "id": "id-keep", "input": "same", "output": "same", "triggers_replace": null },
      "dependencies": [],
      "provider": "himaplan",
      "schema_version": 0,
      "type": "himaplan_data"
    },
    {
      "address": "himaplan_data.replace",
      "attributes": { "id": "id-replace", "input": "r", "output": "r", "triggers_replace": "v1" },
      "dependencies": [],
      "provider": "himaplan",
      "schema_version": 0,
      "type": "himaplan_data"
    },
    {
      "address": "himaplan_data.update",
      "attributes": { "id": "id-update", "input": { "name": "web", "size": 2 }, "output": { "name": "web", "size": 2 }, "triggers_replace": null },
      "dependencies": [],
      "provider": "himaplan",
      "schema_version": 0,
      "type": "himaplan_data"
    }
  ],
  "serial": 7,
  "version": 1
}
"#;

fn snapshot_dir() -> TestDir {
    TestDir::with_files(&[("main.hcl", SNAPSHOT_CONFIG), (DEFAULT_STATE, SNAPSHOT_STATE)])
}

fn plan_output(format: &str) -> String {
    let dir = snapshot_dir();
    let run = dir.run(&["plan", "--refresh=false", "--format", format, "--at", "2026-12-01T08:00:00Z"]);
    run.assert_code(0);
    run.stdout()
}

#[test]
fn snapshot_human_plan() {
    // The reviewer's view of a plan with a create, an update, a replacement and a destroy.
    insta::assert_snapshot!("plan_human", plan_output("human"));
}

#[test]
fn snapshot_markdown_plan() {
    // The pull-request comment for the same plan.
    insta::assert_snapshot!("plan_markdown", plan_output("markdown"));
}

#[test]
fn snapshot_json_plan() {
    // The machine-readable plan for the same plan.
    let json: serde_json::Value = serde_json::from_str(&plan_output("json")).expect("JSON plan");
    insta::assert_json_snapshot!("plan_json", json);
}

/// `uuid()`, `timestamp()` and `bcrypt()` are unknown in the plan and get
/// their values when apply evaluates the configuration again (they used to
/// leave the value unknown and fail the apply).
#[test]
fn impure_functions_are_known_after_apply_and_apply_succeeds() {
    let dir = TestDir::new(
        r#"resource "himaplan_data" "token" {
  input = {
    id   = uuid()
    at   = timestamp()
    hash = bcrypt("hunter2", 4)
  }
}
"#,
    );
    let plan = dir.ok(&["plan"]).stdout();
    assert!(plan.contains("(known after apply)"), "{plan}");
    dir.ok(&["apply", "--auto-approve"]);
    let input = &dir.state_attrs("himaplan_data.token")["input"];
    let id = input["id"].as_str().expect("a uuid in state");
    assert_eq!(id.len(), 36, "{id}");
    assert!(chrono::DateTime::parse_from_rfc3339(input["at"].as_str().expect("a time")).is_ok(), "{input}");
    assert!(input["hash"].as_str().is_some_and(|h| h.starts_with("$2a$04$")), "{input}");
}
