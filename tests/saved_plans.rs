//! `apply PLANFILE` applies exactly what the reviewer approved, on the
//! built-in `himaplan_data` resource (no server): a change whose values
//! moved since the plan (through a dependency's state) is refused naming
//! the attribute, a targeted apply of a dependency makes the plan stale
//! before any action, and sensitive variables are taken again with the
//! same rules as plan (typed, from var files too).

mod support;

use support::{DEFAULT_STATE, StateFiles, TestDir};

/// `b` reads `a`'s output, and each has its own variable.
const CHAIN: &str = r#"variable "a" {
  default = "a1"
}

variable "b" {
  default = "b1"
}

resource "himaplan_data" "a" {
  input = var.a
}

resource "himaplan_data" "b" {
  input = "${himaplan_data.a.output}-${var.b}"
}
"#;

#[test]
fn a_saved_plan_is_refused_not_failed_mid_apply_after_a_targeted_apply_of_its_dependency() {
    // b.plan changes only b ("a1-b2"); then a targeted apply changes a, so applying b.plan would write "a2-b2": refused, naming b's input old → now, nothing changed.
    let dir = TestDir::new(CHAIN);
    dir.ok(&["apply", "--auto-approve"]);
    dir.ok(&["plan", "--var", "b=b2", "--out", "b.plan"]);
    dir.ok(&["apply", "--auto-approve", "--var", "a=a2", "--target", "himaplan_data.a"]);
    let before = StateFiles::capture(&dir, DEFAULT_STATE);

    let refused = dir.run(&["apply", "b.plan"]);
    refused.assert_code(1);
    let err = refused.stderr();
    assert!(err.contains("stale") && err.contains("himaplan_data.b"), "{err}");
    assert!(err.contains("input") && err.contains("\"a1-b2\""), "names the attribute and the reviewed value: {err}");
    assert_eq!(StateFiles::capture(&dir, DEFAULT_STATE), before, "a refused plan changes nothing");
    assert_eq!(dir.state_attrs("himaplan_data.b")["input"], "a1-b1");
}

#[test]
fn a_saved_plan_changing_a_dependency_is_stale_once_that_dependency_was_applied() {
    // b.plan changes a and b (b's input known only after a is applied); a targeted apply of a first makes b.plan stale before any action, instead of failing mid-apply.
    let dir = TestDir::new(CHAIN);
    dir.ok(&["apply", "--auto-approve"]);
    dir.ok(&["plan", "--var", "a=a2", "--var", "b=b2", "--out", "b.plan"]);
    dir.ok(&["apply", "--auto-approve", "--var", "a=a2", "--target", "himaplan_data.a"]);
    let before = StateFiles::capture(&dir, DEFAULT_STATE);

    let refused = dir.run(&["apply", "b.plan"]);
    refused.assert_code(1);
    let err = refused.stderr();
    assert!(err.contains("stale"), "{err}");
    assert!(!err.contains("still unknown"), "refused before any action: {err}");
    assert_eq!(StateFiles::capture(&dir, DEFAULT_STATE), before, "a refused plan changes nothing");
}

#[test]
fn values_known_after_apply_in_a_saved_plan_still_resolve() {
    // A saved plan whose b reads a's new output (unknown at plan time) applies both, b with a's real output.
    let dir = TestDir::new(CHAIN);
    dir.ok(&["apply", "--auto-approve"]);
    dir.ok(&["plan", "--var", "a=a2", "--out", "p.plan"]);
    dir.ok(&["apply", "p.plan"]);
    assert_eq!(dir.state_attrs("himaplan_data.b")["input"], "a2-b1");
}

/// `b` reads `a`'s id, which changes only when `a` is replaced.
const BY_ID: &str = r#"variable "b" {
  default = "b1"
}

resource "himaplan_data" "a" {
  input = "a"
}

resource "himaplan_data" "b" {
  input = "${himaplan_data.a.id}-${var.b}"
}
"#;

#[test]
fn a_saved_change_is_refused_when_a_dependency_moved_under_it() {
    // b.plan shows b's input built from a's id; a is then replaced on its own: b's fingerprint is unchanged, but applying b.plan would write another input, so it is refused naming both values.
    let dir = TestDir::new(BY_ID);
    dir.ok(&["apply", "--auto-approve"]);
    let old_id = dir.state_attrs("himaplan_data.a")["id"].as_str().expect("id").to_string();
    dir.ok(&["plan", "--var", "b=b2", "--out", "b.plan"]);
    dir.ok(&["apply", "--auto-approve", "--replace", "himaplan_data.a", "--target", "himaplan_data.a"]);
    let new_id = dir.state_attrs("himaplan_data.a")["id"].as_str().expect("id").to_string();
    assert_ne!(old_id, new_id);
    let before = StateFiles::capture(&dir, DEFAULT_STATE);

    let refused = dir.run(&["apply", "b.plan"]);
    refused.assert_code(1);
    let err = refused.stderr();
    assert!(err.contains("himaplan_data.b") && err.contains("input"), "{err}");
    assert!(err.contains(&format!("\"{old_id}-b2\" → \"{new_id}-b2\"")), "old plan value → value now: {err}");
    assert_eq!(StateFiles::capture(&dir, DEFAULT_STATE), before, "a refused plan changes nothing");
}

#[test]
fn a_saved_plan_performs_no_import_it_did_not_show() {
    // The import block's object was in state when the plan was made; removed from state before apply FILE, it is not imported again by it.
    let config = format!("{CHAIN}\nresource \"himaplan_data\" \"c\" {{\n}}\n\nimport {{\n  to = himaplan_data.c\n  id = \"c-1\"\n}}\n");
    let dir = TestDir::new(&config);
    dir.ok(&["apply", "--auto-approve"]);
    assert!(dir.state_addresses().contains(&"himaplan_data.c".to_string()));
    dir.ok(&["plan", "--var", "b=b2", "--out", "p.plan"]);
    dir.ok(&["state", "rm", "himaplan_data.c"]);

    dir.ok(&["apply", "p.plan"]);
    assert_eq!(dir.state_attrs("himaplan_data.b")["input"], "a1-b2");
    assert_eq!(dir.state_addresses(), ["himaplan_data.a", "himaplan_data.b"], "the unreviewed import was neither performed nor recorded");
}

const SENSITIVE_NUMBER: &str = r#"variable "pool" {
  type      = number
  sensitive = true
}

resource "himaplan_data" "p" {
  input = var.pool + 1
}
"#;

#[test]
fn a_sensitive_number_from_a_var_file_is_taken_again_typed() {
    // plan --var-file then apply FILE --var-file with the same number applies; with another number it is refused, nothing written.
    let dir = TestDir::with_files(&[("main.hcl", SENSITIVE_NUMBER), ("same.hvars", "pool = 4711\n"), ("other.hvars", "pool = 4712\n")]);
    dir.ok(&["plan", "--var-file", "same.hvars", "--out", "p.plan"]);
    assert!(!dir.read("p.plan").contains("4711"), "no secret in the plan file");

    let refused = dir.run(&["apply", "p.plan", "--var-file", "other.hvars"]);
    refused.assert_code(1);
    assert!(refused.stderr().contains("\"pool\""), "{}", refused.stderr());
    assert!(!dir.exists(DEFAULT_STATE), "nothing was applied");

    dir.ok(&["apply", "p.plan", "--var-file", "same.hvars"]);
    assert!(dir.state_attrs("himaplan_data.p")["input"]["sensitive"].is_string(), "{}", dir.state_text());
}

#[test]
fn a_sensitive_variable_from_an_auto_var_file_is_taken_again() {
    // *.auto.hvars in the working directory is read for apply FILE, as for plan.
    let dir = TestDir::with_files(&[("main.hcl", SENSITIVE_NUMBER), ("secret.auto.hvars", "pool = 7\n")]);
    dir.ok(&["plan", "--out", "p.plan"]);
    dir.ok(&["apply", "p.plan"]);
    assert!(dir.exists(DEFAULT_STATE));
}

/// Files and the clock read by functions are recorded in the plan file.
const READS: &str = r#"resource "himaplan_data" "motd" {
  input = {
    text    = file("${path.module}/motd.txt")
    present = fileexists("${path.module}/motd.txt")
    files   = fileset(path.module, "*.txt")
    at      = plantimestamp()
  }
}
"#;

#[test]
fn apply_of_a_saved_plan_uses_the_files_and_time_the_plan_read_not_the_working_directory() {
    // Without the record, apply FILE would read the changed file and a new clock, and refuse its own plan as stale.
    let dir = TestDir::new(READS);
    dir.write("motd.txt", "reviewed text\n");
    dir.ok(&["plan", "--out", "motd.plan"]);
    let plan_file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("motd.plan")).unwrap()).unwrap();
    let planned_at = plan_file["inputs"]["plan_time"].as_str().expect("the plan file records the plan's time").to_string();
    std::fs::remove_file(dir.path().join("motd.txt")).unwrap();
    dir.write("other.txt", "not there at plan time\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));

    dir.ok(&["apply", "motd.plan"]);
    let input = &dir.state_attrs("himaplan_data.motd")["input"];
    assert_eq!(input["text"], "reviewed text\n");
    assert_eq!(input["present"], true);
    assert_eq!(input["files"], serde_json::json!(["motd.txt"]));
    assert_eq!(input["at"], planned_at.as_str());
}
