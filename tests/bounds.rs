//! Every size is bounded with a diagnostic, not an abort (docs/limits.md):
//! inputs that once made himaplan allocate without end — 10¹² replicas,
//! nested `for` expressions, a million copies of a big string, a module
//! tree that doubles at every level, a variables file that never ends, a
//! huge state file — now exit 1 naming the file and line, quickly and in
//! little memory, and change nothing.
//!
//! Each case runs himaplan with its address space capped at 2 GiB (`ulimit
//! -v`), so that without its bound a case ends in an allocation failure
//! (an abort, exit 134) instead of swapping the machine: the test then
//! fails on the exit code. Needs no server.

mod support;

use std::process::{Command, Stdio};
use support::{StateFiles, TestDir};

/// The address-space cap of each run, in KiB.
const MEMORY_KIB: u64 = 2 * 1024 * 1024;

/// Runs himaplan in `dir` under the memory cap; returns (exit code, stderr).
fn capped(dir: &TestDir, args: &[&str]) -> (i32, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\""))
        .arg(support::binary())
        .args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .expect("run himaplan");
    (out.status.code().unwrap_or(128), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Asserts exit 1, every needle in stderr, no panic, and an untouched state.
fn refused(dir: &TestDir, args: &[&str], needles: &[&str]) {
    let before = StateFiles::capture(dir, support::DEFAULT_STATE);
    let (code, stderr) = capped(dir, args);
    assert_eq!(code, 1, "{args:?} exited {code} (want 1):\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
    assert_eq!(StateFiles::capture(dir, support::DEFAULT_STATE), before, "the state files changed");
}

/// `locals { big = <1 MB string>, a = EXPR }`, with `a` on line 3.
fn local(expr: &str) -> TestDir {
    TestDir::new(&format!("locals {{\n  big = join(\"\", [for i in range(100000) : \"aaaaaaaaaa\"])\n  a   = {expr}\n}}\n"))
}

#[test]
fn docker_replicas_of_1e12_fail_validate_at_the_attribute() {
    // `replicas = 1e12` passed validate and plan, and apply then built a list of 10¹² containers.
    let dir = TestDir::new(
        "resource \"docker_service\" \"web\" {\n  project  = \"p\"\n  service  = \"web\"\n  image    = \"himaplan/busybox:1\"\n  replicas = 1e12\n}\n",
    );
    refused(&dir, &["validate"], &["replicas must be at most 10000, not 1000000000000", "main.hcl:"]);
}

#[test]
fn for_each_over_more_keys_than_count_allows_is_refused() {
    // count was capped at 100000 instances and for_each was not.
    let dir = TestDir::new(
        "resource \"himaplan_data\" \"a\" {\n  for_each = toset([for i in range(100001) : tostring(i)])\n  input    = each.key\n}\n",
    );
    refused(&dir, &["validate"], &["Too many instances: for_each has 100001 elements", "main.hcl:2", "at most 100000"]);
}

#[test]
fn nested_for_expressions_are_bounded_together() {
    // range is capped at 10⁶ per call, but a for inside a for asked for 10¹² values.
    let dir = local("[for a in range(1000000) : [for b in range(1000000) : b]]");
    refused(&dir, &["validate"], &["builds more than 10000000 values", "main.hcl:3"]);
}

#[test]
fn products_inside_a_for_are_bounded_together() {
    // setproduct is capped at 10⁶ elements per call; a thousand calls were not.
    let dir = local("[for a in range(1000) : setproduct(range(1000), range(1000))]");
    refused(&dir, &["validate"], &["builds more than 10000000 values", "main.hcl:3"]);
}

#[test]
fn joining_a_million_copies_of_a_big_string_is_refused_before_join() {
    // join checks its result, but the list it is given already held a terabyte.
    let dir = local("join(\"\", [for i in range(1000000) : local.big])");
    refused(&dir, &["validate"], &["builds more than 256 MiB of strings", "main.hcl:3"]);
}

#[test]
fn format_of_an_expanded_huge_list_is_refused() {
    // format's arguments expanded from a list of 100000 copies of a 1 MB string.
    let dir = local("format(\"%s\", [for i in range(100000) : local.big]...)");
    refused(&dir, &["validate"], &["builds more than 256 MiB of strings", "main.hcl:3"]);
}

#[test]
fn a_template_for_directive_is_bounded_by_its_text() {
    // A %{ for } directive repeated a 1 MB string a million times.
    let dir = local("\"%{ for i in range(1000000) }${local.big}%{ endfor }\"");
    refused(&dir, &["validate"], &["the template's text is larger than", "main.hcl:3"]);
}

#[test]
fn a_module_calling_its_own_directory_twice_is_refused_by_count() {
    // Depth alone (16) let a module calling itself twice load 2¹⁶ modules.
    let dir = TestDir::new("module \"m\" {\n  source = \"./m\"\n}\n");
    dir.write("m/main.hcl", "module \"a\" {\n  source = \"./\"\n}\n\nmodule \"b\" {\n  source = \"./\"\n}\n");
    let (code, stderr) = capped(&dir, &["validate"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Too many modules: the configuration calls more than 1000"), "{stderr}");
    assert!(stderr.contains("m/main.hcl:"), "{stderr}");
    assert_eq!(stderr.matches("Too many modules").count(), 1, "reported once:\n{stderr}");
}

#[test]
fn the_root_module_calling_its_own_directory_is_refused_by_count() {
    // `source = "./"` in the root module named the directory "" (cannot
    // read configuration directory) instead of the root itself.
    let dir = TestDir::new("module \"a\" {\n  source = \"./\"\n}\n\nmodule \"b\" {\n  source = \"./\"\n}\n");
    let (code, stderr) = capped(&dir, &["validate"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Too many modules: the configuration calls more than 1000"), "{stderr}");
    assert!(!stderr.contains("cannot read configuration directory"), "{stderr}");
    assert!(stderr.contains("main.hcl:"), "{stderr}");
}

#[test]
fn a_variables_file_that_never_ends_is_refused() {
    // --var-file /dev/zero read without end.
    let dir = TestDir::new("variable \"x\" {\n  default = 1\n}\n");
    refused(&dir, &["plan", "--var-file", "/dev/zero"], &["cannot read variables file /dev/zero", "larger than 16 MiB"]);
}

#[test]
fn a_configuration_file_past_the_limit_is_refused() {
    // A 17 MiB main.hcl (sparse, so the test writes nothing) is not read.
    let dir = TestDir::new("");
    let file = std::fs::File::create(dir.join("main.hcl")).expect("create");
    file.set_len(17 * 1024 * 1024).expect("grow");
    refused(&dir, &["validate"], &["cannot read", "main.hcl", "larger than 16 MiB"]);
}

#[test]
fn a_state_file_past_the_limit_is_refused() {
    // A 2 GiB state file (sparse) was read whole before parsing.
    let dir = TestDir::new("resource \"himaplan_data\" \"a\" {\n  input = \"x\"\n}\n");
    std::fs::create_dir_all(dir.join("state")).expect("mkdir");
    let file = std::fs::File::create(dir.join(support::DEFAULT_STATE)).expect("create");
    file.set_len(2 * 1024 * 1024 * 1024).expect("grow");
    refused(&dir, &["plan"], &["default.json", "larger than 1 GiB"]);
}
