//! What himaplan says about itself, checked by the tools that read it: the
//! generated resource pages and man page against the committed ones, the
//! provider schema JSON against Terraform's shape, `graph` of the Himalytix
//! example parsed by Graphviz (`dot -Tjson`) and by the npm `mermaid`
//! package's parser with its nodes and edges counted against the
//! configuration, a saved plan's apply order, and the completion scripts
//! syntax-checked by bash, zsh and fish. No server; the tools come from
//! `scripts/servers/doctools.sh install` (a missing one skips the test,
//! except under `CI=true`, where it fails and says why).

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::{TestDir, himaplan};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether `tool` runs; `false` skips the test, a panic under `CI=true`.
fn have(tool: &str) -> bool {
    let found = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required under CI=true: run scripts/servers/doctools.sh install");
        }
        eprintln!("skipping: {tool} is not installed (scripts/servers/doctools.sh install)");
    }
    found
}

/// Runs `program args` with `input` on stdin; (exit code, stdout, stderr).
fn pipe(program: &str, args: &[&str], env: &[(&str, &Path)], input: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {program}: {e}"));
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

// ---------------------------------------------------------------------------
// Generated documentation

#[test]
fn committed_resource_pages_are_what_himaplan_docs_writes() {
    // `himaplan docs` into an empty directory writes exactly the files of docs/resources, byte for byte.
    let out = TestDir::empty();
    himaplan(out.path(), &["docs", "--out", "pages"]).assert_code(0);
    let names = file_names;
    let committed = repo().join("docs/resources");
    let generated = out.join("pages");
    let stale = "docs/resources is stale: run `himaplan docs --out docs/resources` and commit the result";
    assert_eq!(names(&generated), names(&committed), "{stale}");
    for name in names(&generated) {
        let want = std::fs::read_to_string(generated.join(&name)).expect("generated page");
        let have = std::fs::read_to_string(committed.join(&name)).expect("committed page");
        assert!(want == have, "{stale} ({name} differs)");
    }
}

#[test]
fn committed_man_pages_are_what_himaplan_man_writes() {
    // docs/man holds exactly what `himaplan man --out` writes (himaplan.1 and one page per command), and
    // `himaplan man` prints the first of them.
    let out = TestDir::empty();
    himaplan(out.path(), &["man", "--out", "man"]).assert_code(0);
    let stale = "docs/man is stale: run `himaplan man --out docs/man` and commit the result";
    let committed = repo().join("docs/man");
    assert_eq!(file_names(&out.join("man")), file_names(&committed), "{stale}");
    for name in file_names(&committed) {
        let want = std::fs::read(out.join("man").join(&name)).expect("generated page");
        assert!(want == std::fs::read(committed.join(&name)).expect("committed page"), "{stale} ({name} differs)");
    }
    for command in ["plan", "apply", "graph", "providers-schema", "docs", "completions", "state-list"] {
        assert!(committed.join(format!("himaplan-{command}.1")).exists(), "no man page for {command}");
    }
    let run = himaplan(&repo(), &["man"]);
    run.assert_code(0);
    assert!(run.stdout().as_bytes() == std::fs::read(committed.join("himaplan.1")).expect("himaplan.1"));
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect()
}

#[test]
fn every_attribute_of_every_type_is_described_with_an_example() {
    // The schemas are the reference's only source: each type has a summary and an example block, and each
    // attribute a description and an example (its default, or a read reference when computed).
    let registry = himaplan::providers::registry();
    let mut missing = Vec::new();
    for rtype in registry.type_names() {
        let (provider, rt) = registry.resource_type(rtype).expect("type");
        let docs = registry.provider(provider).expect("provider").type_docs(rtype);
        if docs.summary.is_empty() || docs.example.is_empty() {
            missing.push(format!("{rtype}: summary or example"));
        }
        let mut bodies = vec![(String::new(), &rt.schema)];
        while let Some((path, schema)) = bodies.pop() {
            for a in &schema.attributes {
                let set_by_himaplan = a.description.starts_with("set by himaplan");
                if a.description.is_empty() {
                    missing.push(format!("{rtype}.{path}{}: description", a.name));
                }
                if !a.computed && a.example.is_none() && a.default.is_none() && !set_by_himaplan {
                    missing.push(format!("{rtype}.{path}{}: example", a.name));
                }
            }
            for b in &schema.blocks {
                if b.description.is_empty() {
                    missing.push(format!("{rtype}.{path}{}: block description", b.name));
                }
                bodies.push((format!("{path}{}.", b.name), &b.body));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented:\n{}", missing.join("\n"));
}

#[test]
fn the_example_block_of_every_type_validates() {
    // Every page's example, put together in one configuration, passes `himaplan validate` (no network).
    let registry = himaplan::providers::registry();
    let mut hcl = String::from(
        "variable \"release\" {\n  default = \"2026.11.1\"\n}\n\nvariable \"pgbouncer_admin_url\" {\n  default   = \"postgres://admin:x@127.0.0.1:6432/pgbouncer\"\n  sensitive = true\n}\n\n",
    );
    for rtype in registry.type_names() {
        let (provider, _) = registry.resource_type(rtype).expect("type");
        hcl.push_str(registry.provider(provider).expect("provider").type_docs(rtype).example);
        hcl.push_str("\n\n");
    }
    let dir = TestDir::new(&hcl);
    let run = dir.run(&["validate"]);
    assert_eq!(run.code(), 0, "the examples do not validate:\n{}\n{hcl}", run.all());
}

// ---------------------------------------------------------------------------
// providers schema --json

#[test]
fn providers_schema_json_is_shaped_like_terraform_s() {
    // format_version 1.0; provider_schemas keyed by address, each with provider and resource_schemas; every
    // attribute has a cty JSON type, exactly one of required/optional (computed beside optional or alone) and
    // a description; labelled blocks are nesting_mode "map".
    let run = himaplan(&repo(), &["providers", "schema", "--json"]);
    run.assert_code(0);
    let doc = run.json();
    assert_eq!(doc["format_version"], "1.0");
    let providers = doc["provider_schemas"].as_object().expect("provider_schemas");
    let mut types = BTreeSet::new();
    for (address, p) in providers {
        assert!(address.starts_with("himaplan.io/builtin/"), "{address}");
        assert!(p["provider"]["block"].is_object(), "{address}: provider.block");
        for (rtype, r) in p["resource_schemas"].as_object().expect("resource_schemas") {
            types.insert(rtype.clone());
            assert!(r["version"].is_u64(), "{rtype}: version");
            assert!(r["block"]["description"].is_string(), "{rtype}: block.description");
            check_block(rtype, &r["block"]);
        }
    }
    let registry = himaplan::providers::registry();
    assert_eq!(types, registry.type_names().map(str::to_string).collect::<BTreeSet<_>>());
    let aws = &providers["himaplan.io/builtin/aws"]["resource_schemas"];
    let instance = &aws["aws_instance"]["block"]["attributes"];
    assert_eq!(instance["ami"]["type"], "string");
    assert_eq!(instance["ami"]["required"], true);
    assert_eq!(instance["tags"]["type"], serde_json::json!(["map", "string"]));
    assert_eq!(instance["private_ip"]["computed"], true);
    assert_eq!(instance["subnet_id"]["optional"], true);
    assert_eq!(instance["subnet_id"]["computed"], true);
    let rule = &aws["aws_s3_bucket_lifecycle"]["block"]["block_types"]["rule"];
    assert_eq!(rule["nesting_mode"], "map");
    assert_eq!(rule["block"]["block_types"]["transition"]["nesting_mode"], "list");
    assert_eq!(rule["block"]["attributes"]["expiration_days"]["type"], "number");
    let docker = &providers["himaplan.io/builtin/docker"]["resource_schemas"]["docker_service"]["block"]["attributes"];
    assert_eq!(docker["command"]["type"], serde_json::json!(["list", "string"]));
    assert_eq!(docker["containers"]["type"], serde_json::json!(["list", ["map", "dynamic"]]));
    let pgbouncer = &providers["himaplan.io/builtin/pgbouncer"]["resource_schemas"]["pgbouncer"]["block"]["attributes"];
    assert_eq!(pgbouncer["admin_url"]["sensitive"], true);
    let nginx = &providers["himaplan.io/builtin/nginx"]["resource_schemas"]["nginx_upstream"]["block"]["attributes"];
    assert_eq!(nginx["servers"]["type"], "dynamic");
}

fn check_block(at: &str, block: &Value) {
    assert_eq!(block["description_kind"], "plain", "{at}");
    for (name, a) in block["attributes"].as_object().into_iter().flatten() {
        let at = format!("{at}.{name}");
        assert!(cty_type(&a["type"]), "{at}: type {}", a["type"]);
        assert!(a["description"].is_string(), "{at}: description");
        let flag = |k: &str| a[k].as_bool().unwrap_or(false);
        assert!(flag("required") ^ (flag("optional") || flag("computed")), "{at}: required xor optional/computed");
        for (k, v) in a.as_object().expect("attribute") {
            assert!(
                ["type", "description", "description_kind", "required", "optional", "computed", "sensitive"].contains(&k.as_str()),
                "{at}: {k}"
            );
            if k != "type" && k != "description" && k != "description_kind" {
                assert_eq!(v, &Value::Bool(true), "{at}: {k} is only ever true");
            }
        }
    }
    for (name, b) in block["block_types"].as_object().into_iter().flatten() {
        assert!(["single", "list", "set", "map"].contains(&b["nesting_mode"].as_str().unwrap_or("")), "{at}.{name}");
        check_block(&format!("{at}.{name}"), &b["block"]);
    }
}

/// cty's JSON type syntax: a primitive name, or [kind, element type].
fn cty_type(t: &Value) -> bool {
    match t {
        Value::String(s) => ["string", "number", "bool", "dynamic"].contains(&s.as_str()),
        Value::Array(a) if a.len() == 2 => ["list", "map", "set"].contains(&a[0].as_str().unwrap_or("")) && cty_type(&a[1]),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// graph

/// The resources of the Himalytix example, read from its files (root and the
/// module it calls), and the dependencies between them that its expressions
/// make: what `graph` must draw.
fn himalytix_expected() -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let mut nodes = BTreeSet::new();
    for (dir, prefix) in [("examples/himalytix", ""), ("modules/web_tier", "module.web.")] {
        for entry in std::fs::read_dir(repo().join(dir)).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "hcl") {
                continue;
            }
            for line in std::fs::read_to_string(&path).expect("read").lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.len() >= 3 && words[0] == "resource" {
                    nodes.insert(format!("{prefix}{}.{}", words[1].trim_matches('"'), words[2].trim_matches('"')));
                }
            }
        }
    }
    let edge = |a: &str, b: &str| (a.to_string(), b.to_string());
    let edges = BTreeSet::from([
        // himaplan_data.release and the upstream read module.web.private_ips, the module's instances' IPs.
        edge("module.web.aws_instance.this", "himaplan_data.release"),
        edge("module.web.aws_instance.this", "nginx_upstream.web"),
        // The lifecycle names aws_s3_bucket.backups.bucket.
        edge("aws_s3_bucket.backups", "aws_s3_bucket_lifecycle.backups"),
    ]);
    (nodes, edges)
}

#[test]
fn graph_of_himalytix_parsed_by_graphviz_has_every_resource_and_dependency() {
    // `graph` (DOT) read by Graphviz's own parser (`dot -Tjson`): one node per resource block of the example
    // (12, the module's instances in a module.web cluster) and exactly the three dependencies its references make.
    if !have("dot") {
        return;
    }
    let (want_nodes, want_edges) = himalytix_expected();
    assert_eq!(want_nodes.len(), 12, "{want_nodes:?}");
    let run = himaplan(&repo().join("examples/himalytix"), &["graph"]);
    run.assert_code(0);
    let (code, json, err) = pipe("dot", &["-Tjson"], &[], &run.stdout());
    assert_eq!(code, 0, "dot rejected the graph: {err}\n{}", run.stdout());
    let doc: Value = serde_json::from_str(&json).expect("dot -Tjson output");
    let objects = doc["objects"].as_array().expect("objects");
    let (clusters, nodes): (Vec<&Value>, Vec<&Value>) = objects.iter().partition(|o| o.get("nodes").is_some());
    let label = |o: &Value| o["label"].as_str().unwrap_or_default().to_string();
    assert_eq!(nodes.iter().map(|n| label(n)).collect::<BTreeSet<_>>(), want_nodes);
    assert_eq!(nodes.len(), want_nodes.len());
    assert_eq!(clusters.iter().map(|c| label(c)).collect::<Vec<_>>(), ["module.web"]);
    let by_id = |id: &Value| objects.iter().find(|o| o["_gvid"] == *id).map(label).unwrap_or_default();
    let edges: Vec<(String, String)> =
        doc["edges"].as_array().expect("edges").iter().map(|e| (by_id(&e["tail"]), by_id(&e["head"]))).collect();
    assert_eq!(edges.len(), want_edges.len(), "{edges:?}");
    assert_eq!(edges.into_iter().collect::<BTreeSet<_>>(), want_edges);
}

#[test]
fn graph_of_himalytix_snapshots() {
    // The exact DOT and Mermaid text of the example's graph, for reviewers (the parsers check them above).
    let dir = repo().join("examples/himalytix");
    insta::assert_snapshot!("himalytix_graph_dot", himaplan(&dir, &["graph"]).stdout());
    insta::assert_snapshot!("himalytix_graph_mermaid", himaplan(&dir, &["graph", "--format", "mermaid"]).stdout());
}

fn mermaid_dir() -> Option<PathBuf> {
    let out = Command::new(repo().join("scripts/servers/doctools.sh")).arg("dir").output().expect("doctools.sh dir");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if dir.join(".installed").exists() && have("node") {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the npm mermaid package is required under CI=true: run scripts/servers/doctools.sh install");
    }
    eprintln!("skipping: the npm mermaid package is not installed (scripts/servers/doctools.sh install)");
    None
}

/// Mermaid's parser's view of a flowchart: vertex id → text, edges by
/// text, subgraph titles.
type Flowchart = (std::collections::BTreeMap<String, String>, Vec<(String, String)>, Vec<String>);

fn parse_mermaid(dir: &Path, text: &str) -> Flowchart {
    let script = repo().join("tests/support/mermaid-parse.mjs");
    let (code, out, err) = pipe("node", &[script.to_str().expect("path")], &[("MERMAID_DIR", dir)], text);
    assert_eq!(code, 0, "mermaid rejected the diagram: {err}\n{text}");
    let doc: Value = serde_json::from_str(&out).expect("parser output");
    let vertices: std::collections::BTreeMap<String, String> = doc["vertices"]
        .as_array()
        .expect("vertices")
        .iter()
        .map(|v| (v["id"].as_str().unwrap_or_default().to_string(), v["text"].as_str().unwrap_or_default().to_string()))
        .collect();
    let text_of = |id: &Value| vertices.get(id.as_str().unwrap_or_default()).cloned().unwrap_or_default();
    let edges = doc["edges"].as_array().expect("edges").iter().map(|e| (text_of(&e[0]), text_of(&e[1]))).collect();
    let subgraphs =
        doc["subgraphs"].as_array().expect("subgraphs").iter().map(|s| s["title"].as_str().unwrap_or_default().to_string()).collect();
    (vertices, edges, subgraphs)
}

#[test]
fn graph_of_himalytix_parsed_by_mermaid_has_every_resource_and_dependency() {
    // `graph --format mermaid` read by the mermaid package's own flowchart parser: the same 12 nodes, the
    // module.web subgraph and the same three edges as the configuration makes.
    let Some(dir) = mermaid_dir() else { return };
    let (want_nodes, want_edges) = himalytix_expected();
    let run = himaplan(&repo().join("examples/himalytix"), &["graph", "--format", "mermaid"]);
    run.assert_code(0);
    let (vertices, edges, subgraphs) = parse_mermaid(&dir, &run.stdout());
    assert_eq!(vertices.values().cloned().collect::<BTreeSet<_>>(), want_nodes);
    assert_eq!(vertices.len(), want_nodes.len());
    assert_eq!(subgraphs, ["module.web"]);
    assert_eq!(edges.len(), want_edges.len(), "{edges:?}");
    assert_eq!(edges.into_iter().collect::<BTreeSet<_>>(), want_edges);
}

const CHAIN: &str = r#"
variable "size" {
  type    = number
  default = 2
}

resource "himaplan_data" "db" {
  input = "db"
}

resource "himaplan_data" "web" {
  count = var.size
  input = "${himaplan_data.db.id}-${count.index}"
}

resource "himaplan_data" "lb" {
  input = [for w in himaplan_data.web : w.id]
}
"#;

#[test]
fn graph_of_a_saved_plan_draws_its_apply_order() {
    // A saved plan of 4 creates (db, web[0], web[1], lb) drawn by `graph --plan`: one node per action, db
    // before each web, each web before lb (4 edges: lb reads only web), accepted by Graphviz and by mermaid alike.
    let dir = TestDir::new(CHAIN);
    dir.ok(&["plan", "--out", "p.plan"]);
    let dot = dir.run(&["graph", "--plan", "p.plan"]);
    dot.assert_code(0);
    let want: BTreeSet<(String, String)> = [
        ("+ himaplan_data.db", "+ himaplan_data.web[0]"),
        ("+ himaplan_data.db", "+ himaplan_data.web[1]"),
        ("+ himaplan_data.web[0]", "+ himaplan_data.lb"),
        ("+ himaplan_data.web[1]", "+ himaplan_data.lb"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    if have("dot") {
        let (code, json, err) = pipe("dot", &["-Tjson"], &[], &dot.stdout());
        assert_eq!(code, 0, "{err}");
        let doc: Value = serde_json::from_str(&json).expect("json");
        let objects = doc["objects"].as_array().expect("objects");
        assert_eq!(objects.len(), 4, "{}", dot.stdout());
        let by_id =
            |id: &Value| objects.iter().find(|o| o["_gvid"] == *id).and_then(|o| o["label"].as_str()).unwrap_or_default().to_string();
        let edges: BTreeSet<(String, String)> =
            doc["edges"].as_array().expect("edges").iter().map(|e| (by_id(&e["tail"]), by_id(&e["head"]))).collect();
        assert_eq!(edges, want);
    }
    if let Some(mdir) = mermaid_dir() {
        let run = dir.run(&["graph", "--plan", "p.plan", "--format", "mermaid"]);
        let (vertices, edges, _) = parse_mermaid(&mdir, &run.stdout());
        assert_eq!(vertices.len(), 4);
        assert_eq!(edges.into_iter().collect::<BTreeSet<_>>(), want);
    }
}

#[test]
fn graph_and_providers_schema_refuse_bad_input_with_exit_1() {
    // A missing or damaged plan file, a configuration with an undeclared reference, and `providers schema`
    // without --json: each a message on stderr and exit 1, nothing on stdout.
    let dir = TestDir::new("resource \"himaplan_data\" \"a\" {\n  input = var.nope\n}\n");
    dir.write("broken.plan", "{\"format_version\": 1, \"plan\": 3}");
    for (args, says) in [
        (&["graph", "--plan", "missing.plan"][..], "cannot read plan file missing.plan"),
        (&["graph", "--plan", "broken.plan"][..], "broken.plan is a damaged plan file"),
        (&["graph"][..], "main.hcl:2"),
        (&["providers", "schema"][..], "--json"),
    ] {
        let run = dir.run(args);
        run.assert_code(1);
        assert!(run.stderr().contains(says), "{args:?}: {}", run.stderr());
        assert!(run.stdout().is_empty(), "{args:?} printed {}", run.stdout());
    }
}

#[test]
fn markdown_plan_with_graph_ends_with_a_mermaid_block_that_parses() {
    // `plan --format markdown --graph` appends the apply order as a ```mermaid block after the plan;
    // `--graph` with another format is a usage error (exit 1) that plans nothing.
    let dir = TestDir::new(CHAIN);
    let run = dir.run(&["plan", "--format", "markdown", "--graph"]);
    run.assert_code(0);
    let text = run.stdout();
    let start = text.find("```mermaid\n").expect("a mermaid block") + "```mermaid\n".len();
    let end = start + text[start..].find("```").expect("closed");
    assert!(text[end + 3..].trim().is_empty(), "the graph is the last thing: {text}");
    let plain = dir.run(&["plan", "--format", "markdown"]).stdout();
    assert!(text.starts_with(&plain), "the markdown plan itself is unchanged by --graph");
    if let Some(mdir) = mermaid_dir() {
        let (vertices, edges, _) = parse_mermaid(&mdir, &text[start..end]);
        assert_eq!((vertices.len(), edges.len()), (4, 4));
    }
    let bad = dir.run(&["plan", "--graph"]);
    bad.assert_code(1);
    assert!(bad.stderr().contains("--graph is for --format markdown"), "{}", bad.stderr());
    assert!(!dir.exists("p.plan"));
}

#[test]
fn markdown_plan_of_a_large_change_names_graph_plan_instead_of_drawing_it() {
    // 600 creates would be a diagram of 600 nodes: the comment gets one line pointing to `graph --plan` and
    // stays within GitHub's 65,536 characters.
    let dir = TestDir::new(
        "resource \"himaplan_data\" \"a\" {\n  input = \"x\"\n}\n\nresource \"himaplan_data\" \"b\" {\n  count = 599\n  input = \"${himaplan_data.a.id}-${count.index}\"\n}\n",
    );
    let run = dir.run(&["plan", "--format", "markdown", "--graph"]);
    run.assert_code(0);
    let text = run.stdout();
    assert!(!text.contains("```mermaid"), "a 600-node diagram was drawn");
    assert!(text.contains("600 steps: too many to draw here") && text.contains("himaplan graph --plan FILE"), "{text}");
    assert!(text.chars().count() <= 65_536, "{} characters", text.chars().count());
}

// ---------------------------------------------------------------------------
// Completions

#[test]
fn completion_scripts_are_generated_for_bash_zsh_and_fish_and_parse() {
    // Each shell's script names the commands; bash -n, zsh -n and fish --no-execute accept it.
    for (shell, checker, args) in [("bash", "bash", &["-n"][..]), ("zsh", "zsh", &["-n"][..]), ("fish", "fish", &["--no-execute"][..])] {
        let run = himaplan(&repo(), &["completions", shell]);
        run.assert_code(0);
        let script = run.stdout();
        for word in ["plan", "apply", "graph", "providers", "completions"] {
            assert!(script.contains(word), "{shell} completions do not offer {word}");
        }
        if have(checker) {
            let file = TestDir::empty();
            file.write("himaplan.completion", &script);
            let mut cmd_args: Vec<&str> = args.to_vec();
            let path = file.join("himaplan.completion");
            cmd_args.push(path.to_str().expect("path"));
            let out = Command::new(checker).args(&cmd_args).output().expect("run the shell");
            assert!(out.status.success(), "{checker} rejects the {shell} script: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    himaplan(&repo(), &["completions", "powershell"]).assert_code(1);
}

// ---------------------------------------------------------------------------
// Links

#[test]
fn readme_and_docs_link_only_to_files_inside_the_repository() {
    // Every relative link of README.md, docs/*.md and the examples' READMEs names a file or directory that
    // exists in the repository (users never have ../shared); only http(s) links leave it.
    let repo = repo().canonicalize().expect("repo");
    let mut pages = vec![repo.join("README.md"), repo.join("examples/himalytix/README.md")];
    for dir in ["docs", "docs/resources"] {
        for entry in std::fs::read_dir(repo.join(dir)).expect("docs") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let link = regex_lite_links;
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("page");
        for target in link(&text) {
            if target.starts_with("http://") || target.starts_with("https://") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            let resolved = page.parent().expect("dir").join(file);
            let inside = resolved.canonicalize().map(|p| p.starts_with(&repo)).unwrap_or(false);
            if !inside {
                broken.push(format!("{}: {target}", page.strip_prefix(&repo).unwrap_or(page).display()));
            }
        }
    }
    assert!(broken.is_empty(), "links that leave the repository or name nothing:\n{}", broken.join("\n"));
}

/// The targets of the markdown links `[text](target)` of a page.
fn regex_lite_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            let target = &rest[..end];
            if !target.contains(' ') && !target.is_empty() {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}
