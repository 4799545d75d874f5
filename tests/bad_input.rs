//! SPEC §7 "Bad input": every malformed or invalid configuration and
//! invocation exits 1 (never clap's 2, never a panic), names the file and
//! line where there is one, and changes nothing.
//!
//! Each case starts from the same valid configuration, already applied, so
//! "nothing changed" is meaningful: the state file must stay byte-identical
//! and no `.backup` or `.journal` may appear. Needs no server: only the
//! built-in `himaplan_data` resource is applied.

mod support;

use std::sync::OnceLock;
use support::{DEFAULT_STATE, StateFiles, TestDir};

use support::BASE;

/// A local module with one required input and one output.
const MODULE: &str = r#"variable "name" {
  type = string
}

resource "himaplan_data" "this" {
  input = var.name
}

output "id" {
  value = himaplan_data.this.id
}
"#;

/// The state after applying [`BASE`] once, shared by every case.
fn applied_state() -> &'static str {
    static STATE: OnceLock<String> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = TestDir::new(BASE);
        dir.ok(&["apply", "--auto-approve"]);
        dir.state_text()
    })
}

/// How a case changes the state file before running.
#[derive(Clone, Copy)]
enum StateEdit {
    Keep,
    /// Cut the file in the middle of a string.
    Truncate,
    /// Declare format version 99.
    FutureVersion,
    /// Add a resource of a type no provider offers.
    UnknownType,
}

struct Case {
    name: &'static str,
    /// Replaces `main.hcl` when set.
    main: Option<&'static str>,
    /// Extra files.
    files: &'static [(&'static str, &'static str)],
    state: StateEdit,
    args: &'static [&'static str],
    /// Every one must appear in stderr.
    needles: &'static [&'static str],
}

const fn case(name: &'static str, main: Option<&'static str>, args: &'static [&'static str], needles: &'static [&'static str]) -> Case {
    Case { name, main, files: &[], state: StateEdit::Keep, args, needles }
}

const APPLY: &[&str] = &["apply", "--auto-approve"];

fn cases() -> Vec<Case> {
    vec![
        // --- HCL syntax
        case(
            "hcl_unclosed_brace",
            Some("resource \"himaplan_data\" \"a\" {\n  input = \"x\"\n"),
            APPLY,
            &["Invalid HCL syntax", "main.hcl:2"],
        ),
        case(
            "hcl_bad_token",
            Some("resource \"himaplan_data\" \"a\" {\n  input = @@\n}\n"),
            APPLY,
            &["Invalid HCL syntax", "main.hcl:2:11"],
        ),
        case(
            "hcl_unterminated_string",
            Some("resource \"himaplan_data\" \"a\" {\n  input = \"abc\n}\n"),
            APPLY,
            &["Invalid HCL syntax", "main.hcl:2"],
        ),
        // --- structure
        case(
            "unknown_block_type",
            Some("resourse \"himaplan_data\" \"a\" {\n  input = 1\n}\n"),
            APPLY,
            &["Unsupported block type \"resourse\"", "main.hcl:1"],
        ),
        case(
            "unknown_attribute_with_suggestion",
            Some("resource \"himaplan_data\" \"a\" {\n  input = \"hello\"\n}\n\nresource \"himaplan_data\" \"c\" {\n  inptu = 1\n}\n"),
            APPLY,
            &["Unsupported argument \"inptu\"", "main.hcl:6", "Did you mean \"input\""],
        ),
        case(
            "unknown_resource_type_with_suggestion",
            Some("resource \"himaplan_dta\" \"a\" {\n}\n"),
            APPLY,
            &["Unknown resource type \"himaplan_dta\"", "main.hcl:1", "Did you mean \"himaplan_data\""],
        ),
        // `validate` needs no network; aws_instance is the type with required attributes.
        case(
            "missing_required_attribute",
            Some("resource \"aws_instance\" \"w\" {\n  instance_type = \"t3.micro\"\n}\n"),
            &["validate"],
            &["Missing required argument \"ami\"", "main.hcl:1"],
        ),
        case(
            "count_wrong_type",
            Some("resource \"himaplan_data\" \"a\" {\n  count = \"abc\"\n}\n"),
            APPLY,
            &["Invalid count", "main.hcl:2"],
        ),
        case(
            "duplicate_resource",
            Some("resource \"himaplan_data\" \"a\" {\n}\n\nresource \"himaplan_data\" \"a\" {\n}\n"),
            APPLY,
            &["Duplicate resource \"himaplan_data.a\"", "main.hcl:4"],
        ),
        case(
            "duplicate_variable",
            Some("variable \"size\" {\n  default = 1\n}\n\nvariable \"size\" {\n  default = 2\n}\n"),
            APPLY,
            &["Duplicate variable \"size\"", "main.hcl:5"],
        ),
        // --- references
        case(
            "unknown_variable_reference",
            Some("resource \"himaplan_data\" \"a\" {\n  input = var.nope\n}\n"),
            APPLY,
            &["undeclared input variable \"nope\"", "main.hcl:2"],
        ),
        case(
            "unknown_local_reference",
            Some("resource \"himaplan_data\" \"a\" {\n  input = local.nope\n}\n"),
            APPLY,
            &["undeclared local value \"nope\"", "main.hcl:2"],
        ),
        case(
            "unknown_resource_reference",
            Some("resource \"himaplan_data\" \"a\" {\n  input = himaplan_data.nope.id\n}\n"),
            APPLY,
            &["himaplan_data.nope", "main.hcl:2"],
        ),
        case(
            "count_index_outside_count",
            Some("resource \"himaplan_data\" \"a\" {\n  input = count.index\n}\n"),
            APPLY,
            &["count.index", "main.hcl:2"],
        ),
        case(
            "each_outside_for_each",
            Some("resource \"himaplan_data\" \"a\" {\n  input = each.key\n}\n"),
            APPLY,
            &["for_each", "main.hcl:2"],
        ),
        case(
            "dependency_cycle_lists_every_member",
            Some(
                "resource \"himaplan_data\" \"a\" {\n  input = himaplan_data.c.id\n}\n\
                 resource \"himaplan_data\" \"b\" {\n  input = himaplan_data.a.id\n}\n\
                 resource \"himaplan_data\" \"c\" {\n  input = himaplan_data.b.id\n}\n",
            ),
            APPLY,
            &["cycle", "himaplan_data.a (main.hcl:1)", "himaplan_data.b (main.hcl:4)", "himaplan_data.c (main.hcl:7)"],
        ),
        case(
            "unknown_function",
            Some("resource \"himaplan_data\" \"a\" {\n  input = frobnicate(1)\n}\n"),
            APPLY,
            &["Unknown function \"frobnicate\"", "main.hcl:2"],
        ),
        case(
            "division_by_zero",
            Some("resource \"himaplan_data\" \"a\" {\n  input = 1 / 0\n}\n"),
            APPLY,
            &["Division by zero", "main.hcl:2"],
        ),
        case(
            "count_not_known_until_apply",
            Some(
                "resource \"himaplan_data\" \"x\" {\n  input = [1, 2]\n}\n\n\
                 resource \"himaplan_data\" \"y\" {\n  count = length(himaplan_data.x.output)\n}\n",
            ),
            APPLY,
            &["not known until apply", "main.hcl:6"],
        ),
        case(
            "for_each_over_non_string_list",
            Some("resource \"himaplan_data\" \"a\" {\n  for_each = [1, 2]\n  input    = each.key\n}\n"),
            APPLY,
            &["for_each", "main.hcl:2"],
        ),
        // --- variables
        case(
            "variable_validation_fails",
            Some(
                "variable \"size\" {\n  type    = number\n  default = 2\n  validation {\n    condition     = var.size <= 20\n    error_message = \"size must be at most 20.\"\n  }\n}\n",
            ),
            &["apply", "--auto-approve", "--var", "size=50"],
            &["Invalid value for variable \"size\"", "size must be at most 20.", "main.hcl:"],
        ),
        case("var_for_undeclared_variable", None, &["apply", "--auto-approve", "--var", "nope=1"], &["undeclared variable \"nope\""]),
        case("var_with_bad_type", None, &["apply", "--auto-approve", "--var", "size=abc"], &["--var size"]),
        case("var_without_equals", None, &["apply", "--auto-approve", "--var", "size"], &["Invalid --var"]),
        case(
            "missing_required_variable",
            Some("variable \"size\" {\n  type = number\n}\n\nresource \"himaplan_data\" \"a\" {\n  input = var.size\n}\n"),
            APPLY,
            &["No value for required variable \"size\"", "main.hcl:1"],
        ),
        case("var_file_missing", None, &["apply", "--auto-approve", "--var-file", "nope.hvars"], &["nope.hvars"]),
        // --- modules
        case(
            "module_source_not_local",
            Some("module \"m\" {\n  source = \"git::https://example.com/m.git\"\n}\n"),
            APPLY,
            &["Unsupported module source", "main.hcl:1"],
        ),
        Case {
            files: &[("modules/m/main.hcl", MODULE)],
            ..case(
                "module_missing_input",
                Some("module \"m\" {\n  source = \"./modules/m\"\n}\n"),
                APPLY,
                &["needs a value for its input \"name\"", "main.hcl:1", "modules/m/main.hcl:1"],
            )
        },
        Case {
            files: &[("modules/m/main.hcl", MODULE)],
            ..case(
                "module_undeclared_output",
                Some(
                    "module \"m\" {\n  source = \"./modules/m\"\n  name   = \"x\"\n}\n\nresource \"himaplan_data\" \"a\" {\n  input = module.m.nope\n}\n",
                ),
                APPLY,
                &["undeclared output \"nope\"", "main.hcl:7"],
            )
        },
        Case {
            files: &[("modules/m/main.hcl", MODULE)],
            ..case(
                "module_unknown_input",
                Some("module \"m\" {\n  source = \"./modules/m\"\n  name   = \"x\"\n  bogus  = 1\n}\n"),
                APPLY,
                &["no input variable \"bogus\"", "main.hcl:4"],
            )
        },
        // --- state files
        Case { state: StateEdit::Truncate, ..case("state_truncated", None, APPLY, &["default.json is corrupt at line", "column"]) },
        Case { state: StateEdit::FutureVersion, ..case("state_future_version", None, APPLY, &["version 99", "upgrade himaplan"]) },
        Case { state: StateEdit::UnknownType, ..case("state_unknown_resource_type", None, APPLY, &["bogus_thing"]) },
        Case { state: StateEdit::Truncate, ..case("state_list_of_corrupt_state", None, &["state", "list"], &["is corrupt at line"]) },
        // --- flags (clap's usage errors must exit 1, since 2 means "changes")
        case("parallelism_not_a_number", None, &["apply", "--auto-approve", "--parallelism", "abc"], &["--parallelism"]),
        case("format_xml", None, &["plan", "--format", "xml"], &["xml"]),
        case("unknown_flag", None, &["plan", "--frobnicate"], &["--frobnicate"]),
        case("missing_subcommand", None, &[], &["Usage"]),
        case("unknown_subcommand", None, &["destroy-everything"], &["destroy-everything"]),
        case("bad_target_address", None, &["apply", "--auto-approve", "--target", "himaplan_data.["], &["Invalid --target"]),
        case("bad_replace_address", None, &["apply", "--auto-approve", "--replace", "not an address"], &["Invalid --replace"]),
        case("at_not_rfc3339", None, &["plan", "--at", "yesterday"], &["--at"]),
        case("lock_timeout_bad", None, &["apply", "--auto-approve", "--lock-timeout", "forever"], &["--lock-timeout"]),
        // --- plan files
        case("apply_nonexistent_plan_file", None, &["apply", "nonexistent.plan"], &["nonexistent.plan"]),
        Case {
            files: &[("garbage.plan", "this is not a plan\n")],
            ..case("apply_garbage_plan_file", None, &["apply", "garbage.plan"], &["garbage.plan", "not a himaplan plan file"])
        },
        // --- fmt leaves a file it cannot parse alone
        case("fmt_of_syntax_error", Some("resource \"himaplan_data\" \"a\" {\n  # keep me\n  input = [1,\n}\n"), &["fmt"], &["main.hcl:4"]),
        // --- lifecycle
        case(
            "prevent_destroy_violated",
            Some(
                "variable \"size\" {\n  type    = number\n  default = 2\n}\n\n\
                 resource \"himaplan_data\" \"a\" {\n  input            = \"hello\"\n  triggers_replace = \"v2\"\n  lifecycle {\n    prevent_destroy = true\n  }\n}\n\n\
                 resource \"himaplan_data\" \"b\" {\n  count = var.size\n  input = \"${himaplan_data.a.id}-${count.index}\"\n}\n",
            ),
            APPLY,
            &["prevent_destroy", "main.hcl:6"],
        ),
        // --- state surgery and outputs
        case("state_rm_unknown_address", None, &["state", "rm", "himaplan_data.nope"], &["himaplan_data.nope"]),
        case("state_mv_onto_existing_address", None, &["state", "mv", "himaplan_data.b[0]", "himaplan_data.b[1]"], &["already exists"]),
        case("state_show_unknown_address", None, &["state", "show", "himaplan_data.zzz"], &["himaplan_data.zzz"]),
        case("output_of_unknown_name", None, &["output", "nope"], &["nope"]),
        case("force_unlock_of_no_lock", None, &["force-unlock", "no-such-id"], &["no-such-id"]),
    ]
}

fn edit_state(text: &str, edit: StateEdit) -> String {
    match edit {
        StateEdit::Keep => text.to_string(),
        StateEdit::Truncate => {
            // Cut inside the lineage string of line 2.
            let cut = text.find("\"lineage\": \"").expect("lineage") + 20;
            text[..cut].to_string()
        }
        StateEdit::FutureVersion => text.replace(&format!("\"version\": {}", himaplan_engine::state::STATE_VERSION), "\"version\": 99"),
        StateEdit::UnknownType => {
            let mut json: serde_json::Value = serde_json::from_str(text).expect("state JSON");
            json["resources"].as_array_mut().expect("resources").push(serde_json::json!({
                "address": "bogus_thing.z",
                "type": "bogus_thing",
                "provider": "bogus",
                "schema_version": 0,
                "attributes": { "id": "z-1" },
                "dependencies": [],
            }));
            serde_json::to_string_pretty(&json).expect("serialise") + "\n"
        }
    }
}

fn run_case(case: &Case) -> Result<(), String> {
    let dir = TestDir::new(case.main.unwrap_or(BASE));
    for (name, text) in case.files {
        dir.write(name, text);
    }
    dir.write(DEFAULT_STATE, &edit_state(applied_state(), case.state));
    let before = StateFiles::capture(&dir, DEFAULT_STATE);
    let main_before = dir.read("main.hcl");

    let run = dir.run(case.args);
    let stderr = run.stderr();
    let mut problems = Vec::new();
    if run.code() != 1 {
        problems.push(format!("exit code {} (want 1)", run.code()));
    }
    if stderr.contains("panicked") || run.all().contains("RUST_BACKTRACE") {
        problems.push("panicked".to_string());
    }
    for needle in case.needles {
        if !stderr.contains(needle) {
            problems.push(format!("stderr lacks {needle:?}"));
        }
    }
    if StateFiles::capture(&dir, DEFAULT_STATE) != before {
        problems.push("the state, its .backup or its .journal changed".to_string());
    }
    if dir.read("main.hcl") != main_before {
        problems.push("main.hcl changed".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}\n  args: {:?}\n  stdout: {}\n  stderr: {}", case.name, problems.join("; "), case.args, run.stdout(), stderr))
    }
}

#[test]
fn every_bad_input_exits_1_names_the_place_and_changes_nothing() {
    // Each invalid configuration or invocation, run against an applied state, fails cleanly and leaves state alone.
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus must hold at least 30 cases, has {}", cases.len());
    let mut names = std::collections::BTreeSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
    }
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

#[test]
fn the_base_configuration_is_valid_and_converged() {
    // The corpus's starting point is itself fine: validate passes and a plan shows no changes.
    let dir = TestDir::new(BASE);
    dir.write(DEFAULT_STATE, applied_state());
    dir.ok(&["validate"]);
    dir.run(&["plan", "--detailed-exitcode"]).assert_code(0);
}

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A configuration using most of the language, for mutation.
const RICH: &str = r#"variable "names" {
  type    = list(string)
  default = ["web", "api"]
  validation {
    condition     = length(var.names) > 0
    error_message = "names must not be empty."
  }
}

locals {
  tags   = { for n in var.names : n => upper(n) }
  joined = join(",", [for n in var.names : "${n}-x"])
}

resource "himaplan_data" "a" {
  input = { a = 1, b = [true, null, 2.5], c = "s${local.joined}" }
}

resource "himaplan_data" "each" {
  for_each = toset(var.names)
  input    = "${each.key}:${each.value}:${lookup(local.tags, each.key, "none")}"
  lifecycle {
    ignore_changes = [triggers_replace]
  }
}

resource "himaplan_data" "n" {
  count      = min(3, length(var.names) + 1)
  input      = count.index > 0 ? himaplan_data.a.id : format("%s-%d", "x", count.index)
  depends_on = [himaplan_data.each]
}

output "ids" {
  value = [for d in himaplan_data.n : d.id]
}
"#;

fn mutate(rng: &mut Rng, text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let edits = 1 + rng.below(3);
    for _ in 0..edits {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(at),
            2 => bytes.insert(at, b'{'),
            3 => bytes.insert(at, b'"'),
            4 => bytes.insert(at, b'}'),
            _ => {
                let junk: &[&[u8]] = &[b"${", b"[", b"(", b"\\", b"%{", b"<<EOF\n", b"\xff", b"0x", b"..."];
                let piece = junk[rng.below(junk.len())];
                for (k, b) in piece.iter().enumerate() {
                    bytes.insert(at + k, *b);
                }
            }
        }
    }
    bytes
}

#[test]
fn mutated_configurations_never_panic_validate() {
    // 300 random byte flips, truncations and inserted braces or quotes of a valid configuration: validate exits 0 or 1, never panics.
    let dir = TestDir::empty();
    dir.write("main.hcl", RICH);
    dir.ok(&["validate"]);
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut failures = Vec::new();
    for trial in 0..300 {
        let mutated = mutate(&mut rng, RICH);
        dir.write_bytes("main.hcl", &mutated);
        let run = dir.run(&["validate"]);
        let stderr = run.stderr();
        if !(run.code() == 0 || run.code() == 1) || stderr.contains("panicked") {
            failures.push(format!(
                "trial {trial}: exit {}\n--- input\n{}\n--- stderr\n{stderr}",
                run.code(),
                String::from_utf8_lossy(&mutated)
            ));
        }
    }
    assert!(failures.is_empty(), "{} mutations broke validate:\n{}", failures.len(), failures.join("\n"));
}
