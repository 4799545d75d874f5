//! The CI recipes of `examples/ci/`, checked by the tools that judge them
//! and run for real: `actionlint` (with shellcheck) must find nothing in the
//! GitHub workflow, `gitlab-ci-local` must parse and schema-validate the
//! GitLab file, and the GitHub workflow's own `run:` scripts, taken from
//! the YAML, drive a pull request from plan to merge against moto and a
//! loopback stub of GitHub's REST API (comments, merged pull requests,
//! artifacts): one comment, updated on the next push; apply of the
//! reviewed plan on merge with the state committed under a message naming
//! the plan; and a stale plan re-planned and posted, never applied. The
//! GitLab file's job scripts run the same way against a stub of GitLab's
//! notes, merge request, pipeline and artifact API. The comment itself is rendered by GitHub's renderer (`cmark-gfm --unsafe -e
//! table`) and its HTML checked.
//!
//! `uses:` steps are GitHub's own actions: checkout is the test's clone,
//! upload-artifact is done by the test (a zip of the directory, as the
//! action stores it), and "Install himaplan" is replaced by the binary
//! under test on PATH. Tools come from scripts/servers/ci-tools.sh; without
//! them the tests skip, except under `CI=true`, where they fail.

#[path = "support/moto.rs"]
mod moto;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

// ---------------------------------------------------------------------------
// Tools

/// The binaries scripts/servers/ci-tools.sh installed, by variable name.
fn tools() -> Option<BTreeMap<String, String>> {
    let out = Command::new(format!("{ROOT}/scripts/servers/ci-tools.sh")).arg("env").output().expect("run ci-tools.sh env");
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            map.insert(k.to_string(), v.to_string());
        }
    }
    let missing: Vec<&String> = map.iter().filter(|(_, v)| !Path::new(v.as_str()).is_file()).map(|(k, _)| k).collect();
    if missing.is_empty() && map.len() == 3 && which("shellcheck") {
        return Some(map);
    }
    let why = format!("CI tools missing ({missing:?}, shellcheck: {}): run scripts/servers/ci-tools.sh install", which("shellcheck"));
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipped: {why}");
    None
}

fn which(name: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn git(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) =
        run(Command::new("git").args(["-c", "user.name=dev", "-c", "user.email=dev@example.invalid"]).args(args).current_dir(dir));
    assert_eq!(code, 0, "git {args:?}: {err}");
    out.trim().to_string()
}

// ---------------------------------------------------------------------------
// Static checks

#[test]
fn the_github_workflow_is_actionlint_clean() {
    // actionlint checks expressions, contexts, permissions and every run:
    // script through shellcheck; a planted mistake proves it looks.
    let Some(tools) = tools() else { return };
    let lint = |path: &Path| run(Command::new(&tools["HIMAPLAN_ACTIONLINT"]).arg("-no-color").arg(path));
    let workflow = Path::new(ROOT).join("examples/ci/github-actions.yml");
    let (code, out, err) = lint(&workflow);
    assert_eq!(code, 0, "actionlint:\n{out}{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yml");
    let text = std::fs::read_to_string(&workflow).expect("workflow");
    std::fs::write(&broken, text.replacen("steps.plan.outputs.code", "steps.plna.outputs.code", 1)).expect("write");
    let (code, out, _) = lint(&broken);
    assert_eq!(code, 1, "a misspelt step id is found: {out}");
}

#[test]
fn the_gitlab_file_is_valid_for_gitlab_ci_local() {
    // gitlab-ci-local parses the file and validates it against GitLab's
    // schema; the jobs' rules give a plan job on merge requests only.
    let Some(tools) = tools() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["remote", "add", "origin", "https://gitlab.example.invalid/himalytix/infra.git"]);
    git(dir.path(), &["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"]);
    std::fs::copy(Path::new(ROOT).join("examples/ci/gitlab-ci.yml"), dir.path().join(".gitlab-ci.yml")).expect("copy");
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "ci"]);
    let gcl = |args: &[&str]| run(Command::new(&tools["HIMAPLAN_GITLAB_CI_LOCAL"]).args(args).current_dir(dir.path()));
    let (code, out, err) = gcl(&["--list-json", "--variable", "CI_PIPELINE_SOURCE=merge_request_event"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("json schema validated") || out.contains("json schema validated"), "{err}");
    let start = out.find("\n[").map(|i| i + 1).or_else(|| out.starts_with('[').then_some(0)).expect("JSON list");
    let jobs: serde_json::Value = serde_json::from_str(&out[start..]).expect("job list");
    let when: BTreeMap<&str, &str> =
        jobs.as_array().expect("jobs").iter().map(|j| (j["name"].as_str().unwrap_or(""), j["when"].as_str().unwrap_or(""))).collect();
    assert_eq!(when, BTreeMap::from([("himaplan-apply", "never"), ("himaplan-plan", "on_success")]));

    // A job key GitLab does not know fails the schema check.
    let text = std::fs::read_to_string(dir.path().join(".gitlab-ci.yml")).expect("read");
    std::fs::write(dir.path().join(".gitlab-ci.yml"), text.replacen("  resource_group:", "  resource_grup:", 1)).expect("write");
    let (code, out, err) = gcl(&["--list"]);
    assert_ne!(code, 0, "an unknown key is refused:\n{out}{err}");
}

// ---------------------------------------------------------------------------
// A loopback stub of GitHub's REST API

#[derive(Default)]
struct Github {
    /// Issue comments: (id, issue number, body).
    comments: Vec<(u64, u64, String)>,
    /// (method, path) of every request, in order.
    requests: Vec<(String, String)>,
    /// Requests without the bearer token.
    unauthenticated: usize,
    /// commit sha → pull requests it belongs to (JSON list).
    pulls: BTreeMap<String, serde_json::Value>,
    /// artifact name → zip bytes.
    artifacts: BTreeMap<String, Vec<u8>>,
    /// Other GET paths and what they answer (GitLab's lookups).
    routes: BTreeMap<String, Vec<u8>>,
}

struct Stub {
    url: String,
    state: Arc<Mutex<Github>>,
}

impl Stub {
    fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(Github::default()));
        let (shared, base) = (state.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = serve(stream, &shared, &base);
            }
        });
        Stub { url, state }
    }

    fn comments(&self, issue: u64) -> Vec<(u64, String)> {
        let state = self.state.lock().expect("stub");
        state.comments.iter().filter(|c| c.1 == issue).map(|c| (c.0, c.2.clone())).collect()
    }

    fn count(&self, method: &str, prefix: &str) -> usize {
        self.state.lock().expect("stub").requests.iter().filter(|(m, p)| m == method && p.starts_with(prefix)).count()
    }
}

fn serve(stream: std::net::TcpStream, state: &Mutex<Github>, base: &str) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let (mut length, mut authorised, mut expect) = (0usize, false, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => authorised = value.trim() == "Bearer test-token",
            "private-token" => authorised = value.trim() == "test-token",
            "expect" => expect = value.trim().eq_ignore_ascii_case("100-continue"),
            _ => {}
        }
    }
    if expect {
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut gh = state.lock().expect("stub");
    gh.requests.push((method.clone(), path.to_string()));
    if !authorised {
        gh.unauthenticated += 1;
    }
    let json_body = || serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
    let (status, payload): (u16, Vec<u8>) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["repos", _, _, "issues", n, "comments"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let page: usize = query.split('&').find_map(|q| q.strip_prefix("page=")).and_then(|p| p.parse().ok()).unwrap_or(1);
            let list: Vec<serde_json::Value> = gh
                .comments
                .iter()
                .filter(|c| c.1 == n)
                .skip((page - 1) * 100)
                .take(100)
                .map(|c| serde_json::json!({"id": c.0, "body": c.2, "user": {"login": "github-actions[bot]"}}))
                .collect();
            (200, serde_json::to_vec(&list).unwrap_or_default())
        }
        ("POST", ["repos", _, _, "issues", n, "comments"]) => {
            let id = 1000 + gh.comments.len() as u64;
            let body = json_body()["body"].as_str().unwrap_or_default().to_string();
            gh.comments.push((id, n.parse().unwrap_or(0), body));
            (201, serde_json::to_vec(&serde_json::json!({"id": id})).unwrap_or_default())
        }
        ("PATCH", ["repos", _, _, "issues", "comments", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let body = json_body()["body"].as_str().unwrap_or_default().to_string();
            match gh.comments.iter_mut().find(|c| c.0 == id) {
                Some(c) => {
                    c.2 = body;
                    (200, b"{}".to_vec())
                }
                None => (404, b"{\"message\":\"Not Found\"}".to_vec()),
            }
        }
        ("GET", ["repos", _, _, "commits", sha, "pulls"]) => {
            (200, serde_json::to_vec(gh.pulls.get(*sha).unwrap_or(&serde_json::json!([]))).unwrap_or_default())
        }
        ("GET", ["repos", _, _, "actions", "artifacts"]) => {
            let name = query.split('&').find_map(|q| q.strip_prefix("name=")).unwrap_or("");
            let artifacts: Vec<serde_json::Value> = gh
                .artifacts
                .keys()
                .filter(|k| k.as_str() == name)
                .map(|k| serde_json::json!({"name": k, "expired": false, "archive_download_url": format!("{base}/download/{k}")}))
                .collect();
            (200, serde_json::to_vec(&serde_json::json!({"total_count": artifacts.len(), "artifacts": artifacts})).unwrap_or_default())
        }
        // GitLab: a merge request's notes.
        ("GET", ["api", "v4", "projects", _, "merge_requests", n, "notes"]) => {
            let n: u64 = n.parse().unwrap_or(0);
            let list: Vec<serde_json::Value> =
                gh.comments.iter().filter(|c| c.1 == n).map(|c| serde_json::json!({"id": c.0, "body": c.2})).collect();
            (200, serde_json::to_vec(&list).unwrap_or_default())
        }
        ("POST", ["api", "v4", "projects", _, "merge_requests", n, "notes"]) => {
            let id = 1000 + gh.comments.len() as u64;
            let body = json_body()["body"].as_str().unwrap_or_default().to_string();
            gh.comments.push((id, n.parse().unwrap_or(0), body));
            (201, serde_json::to_vec(&serde_json::json!({"id": id})).unwrap_or_default())
        }
        ("PUT", ["api", "v4", "projects", _, "merge_requests", _, "notes", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            let body = json_body()["body"].as_str().unwrap_or_default().to_string();
            match gh.comments.iter_mut().find(|c| c.0 == id) {
                Some(c) => {
                    c.2 = body;
                    (200, b"{}".to_vec())
                }
                None => (404, b"{\"message\":\"404 Not found\"}".to_vec()),
            }
        }
        ("GET", _) if gh.routes.contains_key(path) => (200, gh.routes[path].clone()),
        ("GET", ["download", name]) => match gh.artifacts.get(*name) {
            Some(zip) => (200, zip.clone()),
            None => (404, Vec::new()),
        },
        _ => (404, b"{\"message\":\"Not Found\"}".to_vec()),
    };
    drop(gh);
    write!(out, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", payload.len())?;
    out.write_all(&payload)
}

// ---------------------------------------------------------------------------
// Running the workflow's steps

/// The workflow, a clone of the repository, moto and the stub.
struct Runner<'m> {
    workflow: Yaml,
    work: PathBuf,
    bin_dir: PathBuf,
    stub: &'m Stub,
    moto: &'m moto::Moto,
    /// The `${{ … }}` values of the run being simulated.
    context: BTreeMap<String, String>,
    /// Each step's outputs, by step id.
    outputs: BTreeMap<String, BTreeMap<String, String>>,
}

impl Runner<'_> {
    fn step<'y>(&'y self, job: &str, name: &str) -> &'y Yaml {
        let steps = self.workflow["jobs"][job]["steps"].as_vec().expect("steps");
        steps.iter().find(|s| s["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("no step {name:?} in job {job}"))
    }

    /// A value with each `${{ path }}` replaced from the context or the
    /// recorded step outputs.
    fn expand(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("closed expression") + start;
            let path = rest[start + 3..end].trim();
            let value = match path.strip_prefix("steps.").and_then(|p| p.split_once(".outputs.")) {
                Some((id, key)) => self.outputs.get(id).and_then(|o| o.get(key)).cloned().unwrap_or_default(),
                None => self.context.get(path).cloned().unwrap_or_else(|| panic!("the test gives no value for {path}")),
            };
            out.push_str(&value);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Runs one `run:` step the way GitHub does (`bash --noprofile --norc
    /// -eo pipefail`), with the workflow's and the step's env; returns its
    /// exit code and output.
    fn run_step(&mut self, job: &str, name: &str) -> (i32, String) {
        let step = self.step(job, name).clone();
        let script = step["run"].as_str().unwrap_or_else(|| panic!("{name} has no run")).to_string();
        let output_file = self.work.join(format!(".github-output-{}", self.outputs.len()));
        std::fs::write(&output_file, "").expect("GITHUB_OUTPUT");
        let path = format!("{}:{}", self.bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script]).current_dir(&self.work).env_clear();
        cmd.env("PATH", path).env("HOME", std::env::var("HOME").unwrap_or_default()).env("GITHUB_OUTPUT", &output_file);
        for (k, v) in self.moto.env() {
            cmd.env(k, v);
        }
        for (k, v) in [
            ("GITHUB_API_URL", self.stub.url.clone()),
            ("GITHUB_REPOSITORY", "himalytix/infra".to_string()),
            ("GITHUB_WORKSPACE", self.work.display().to_string()),
            ("GITHUB_SHA", self.context["github.sha"].clone()),
            ("GITHUB_REF_NAME", "main".to_string()),
            ("GITHUB_RUN_ID", "42".to_string()),
        ] {
            cmd.env(k, v);
        }
        for env in [&self.workflow["env"], &step["env"]] {
            if let Some(map) = env.as_hash() {
                for (k, v) in map {
                    let value = v.as_str().map(str::to_string).unwrap_or_else(|| v.as_i64().map(|n| n.to_string()).unwrap_or_default());
                    cmd.env(k.as_str().expect("env name"), self.expand(&value));
                }
            }
        }
        let (code, out, err) = run(&mut cmd);
        let text = std::fs::read_to_string(&output_file).unwrap_or_default();
        let outputs: BTreeMap<String, String> =
            text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(id) = step["id"].as_str() {
            self.outputs.insert(id.to_string(), outputs);
        }
        (code, format!("{out}{err}"))
    }

    fn ok(&mut self, job: &str, name: &str) -> String {
        let (code, out) = self.run_step(job, name);
        assert_eq!(code, 0, "step {name:?} failed:\n{out}");
        out
    }

    /// What actions/upload-artifact stores: the directory's files, zipped.
    fn upload_artifact(&self, name: &str) {
        let dir = self.work.join(".himaplan-ci");
        let zip = self.work.join("artifact.zip");
        let _ = std::fs::remove_file(&zip);
        let (code, _, err) =
            run(Command::new("zip").args(["-q", "-r"]).arg(&zip).args(["plan.bin", "plan.md", "head-sha"]).current_dir(&dir));
        assert_eq!(code, 0, "zip: {err}");
        let bytes = std::fs::read(&zip).expect("zip");
        self.stub.state.lock().expect("stub").artifacts.insert(name.to_string(), bytes);
    }

    /// A pull request event of `number` at the clone's HEAD.
    fn pull_request(&mut self, number: u64) -> String {
        let head = git(&self.work, &["rev-parse", "HEAD"]);
        std::fs::remove_dir_all(self.work.join(".himaplan-ci")).ok();
        self.outputs.clear();
        self.context.insert("github.sha".into(), head.clone());
        self.context.insert("github.event.pull_request.number".into(), number.to_string());
        self.context.insert("github.event.pull_request.head.sha".into(), head.clone());
        head
    }

    /// The plan job: plan, the artifact, the comment.
    fn plan_job(&mut self, number: u64) -> String {
        let head = self.pull_request(number);
        self.ok("plan", "Plan");
        assert_eq!(self.outputs["plan"]["code"], "2", "the plan has changes");
        let artifact = self.outputs["plan"]["artifact"].clone();
        assert_eq!(artifact, format!("himaplan-plan-{number}-{head}"));
        self.upload_artifact(&artifact);
        self.ok("plan", "Comment");
        artifact
    }

    /// A push of a merge commit of `branch` into main, merging PR `number`.
    fn merge(&mut self, branch: &str, number: u64) -> String {
        let head = git(&self.work, &["rev-parse", branch]);
        git(&self.work, &["checkout", "-q", "main"]);
        git(&self.work, &["merge", "-q", "--no-ff", "-m", &format!("Merge pull request #{number}"), branch]);
        let sha = git(&self.work, &["rev-parse", "HEAD"]);
        let pulls = serde_json::json!([{"number": number, "merged_at": "2026-12-01T10:00:00Z", "head": {"sha": head}}]);
        self.stub.state.lock().expect("stub").pulls.insert(sha.clone(), pulls);
        std::fs::remove_dir_all(self.work.join(".himaplan-ci")).ok();
        self.outputs.clear();
        self.context.insert("github.sha".into(), sha.clone());
        sha
    }
}

const CONFIG: &str = r#"himaplan {
  state = "state/web.json"
}

provider "aws" {
  region = "us-east-1"
}

variable "web_type" {
  type    = string
  default = "TYPE"
}

resource "aws_instance" "web" {
  count         = 3
  ami           = "AMI"
  instance_type = var.web_type
  tags = {
    Name = "web-${count.index}"
  }
  rollout {
    max_unavailable = 1
  }
}
"#;

fn config(instance_type: &str) -> String {
    CONFIG.replace("TYPE", instance_type).replace("AMI", moto::AMI)
}

/// The instance types moto runs, in `web[i]` order.
fn types(moto: &moto::Moto, work: &Path) -> Vec<String> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("infra/state/web.json")).expect("state")).expect("state JSON");
    let mut ids: Vec<(String, String)> = state["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| (r["address"].as_str().unwrap_or("").to_string(), r["attributes"]["id"].as_str().unwrap_or("").to_string()))
        .collect();
    ids.sort();
    ids.iter().map(|(_, id)| moto.instance(id).instance_type).collect()
}

/// Renders Markdown as GitHub does, with cmark-gfm.
fn github_html(cmark: &str, markdown: &str) -> String {
    let mut child = Command::new(cmark)
        .args(["--unsafe", "-e", "table"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start cmark-gfm");
    child.stdin.take().expect("stdin").write_all(markdown.as_bytes()).expect("write markdown");
    let out = child.wait_with_output().expect("cmark-gfm");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("HTML")
}

/// A repository whose main branch runs the web fleet (applied, state
/// committed), cloned in `work` from the bare `origin`; `bin` has the
/// himaplan under test.
struct Fleet {
    _root: tempfile::TempDir,
    origin: PathBuf,
    work: PathBuf,
    bin_dir: PathBuf,
}

fn fleet_repo(moto: &moto::Moto) -> Fleet {
    let root = tempfile::tempdir().expect("tempdir");
    let (origin, work) = (root.path().join("origin.git"), root.path().join("work"));
    git(root.path(), &["init", "-q", "--bare", "-b", "main", origin.to_str().expect("path")]);
    git(root.path(), &["clone", "-q", origin.to_str().expect("path"), work.to_str().expect("path")]);
    std::fs::create_dir_all(work.join("infra")).expect("infra");
    std::fs::write(work.join("infra/main.hcl"), config("t3.micro")).expect("config");
    std::fs::write(work.join(".gitignore"), ".himaplan-ci/\n.github-output-*\nartifact.zip\n").expect("gitignore");
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    support::himaplan_with(&work.join("infra"), &["apply", "--auto-approve"], &env, None).assert_code(0);
    git(&work, &["symbolic-ref", "HEAD", "refs/heads/main"]);
    git(&work, &["add", "."]);
    git(&work, &["commit", "-qm", "web fleet"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let bin_dir = root.path().join("bin");
    std::fs::create_dir_all(&bin_dir).expect("bin");
    std::os::unix::fs::symlink(support::binary(), bin_dir.join("himaplan")).expect("himaplan on PATH");
    Fleet { _root: root, origin, work, bin_dir }
}

#[test]
fn a_pull_request_is_planned_commented_once_and_applied_on_merge() {
    // The GitHub workflow, from the first plan of pull request #7 to the
    // state commit of its merge, then a stale plan of #8.
    let Some(tools) = tools() else { return };
    let Some(moto) = moto::turn() else { return };
    let stub = Stub::start();
    let fleet = fleet_repo(&moto);
    let (origin, work, bin_dir) = (fleet.origin.clone(), fleet.work.clone(), fleet.bin_dir.clone());
    let text = std::fs::read_to_string(Path::new(ROOT).join("examples/ci/github-actions.yml")).expect("workflow");
    let mut workflow = YamlLoader::load_from_str(&text).expect("workflow YAML").remove(0);
    // The test's repository keeps its configuration in infra/.
    if let Yaml::Hash(top) = &mut workflow
        && let Some(Yaml::Hash(env)) = top.get_mut(&Yaml::String("env".into()))
    {
        env.insert(Yaml::String("HIMAPLAN_DIR".into()), Yaml::String("infra".into()));
        env.insert(Yaml::String("HIMAPLAN_STATE".into()), Yaml::String("state/web.json".into()));
    }
    let context = BTreeMap::from([
        ("github.workspace".to_string(), work.display().to_string()),
        ("secrets.GITHUB_TOKEN".to_string(), "test-token".to_string()),
        ("github.sha".to_string(), String::new()),
    ]);
    let mut runner = Runner { workflow, work: work.clone(), bin_dir, stub: &stub, moto: &moto, context, outputs: BTreeMap::new() };

    // Pull request #7 resizes the fleet: one comment with the plan.
    git(&work, &["checkout", "-q", "-b", "resize"]);
    std::fs::write(work.join("infra/main.hcl"), config("t3.small")).expect("config");
    git(&work, &["commit", "-qam", "resize web to t3.small"]);
    runner.plan_job(7);
    let comments = stub.comments(7);
    assert_eq!(comments.len(), 1);
    let first_id = comments[0].0;
    assert!(comments[0].1.starts_with("<!-- himaplan:plan -->"), "{}", comments[0].1);

    // A second push updates that comment instead of adding one.
    std::fs::write(work.join("infra/main.hcl"), config("t3.small").replace("web-${count.index}", "web-${count.index + 1}"))
        .expect("config");
    git(&work, &["commit", "-qam", "name the instances from 1"]);
    let artifact = runner.plan_job(7);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let comments = stub.comments(7);
    assert_eq!(comments.len(), 1, "still one comment");
    assert_eq!(comments[0].0, first_id);
    assert_eq!(stub.count("PATCH", &format!("/repos/himalytix/infra/issues/comments/{first_id}")), 1);
    let body = &comments[0].1;
    assert!(body.contains(&head) && body.contains(&artifact), "the comment names the plan: {body}");
    assert!(body.contains("3 × stop/start, 1 at a time (3 batches)"), "{body}");

    // The comment as GitHub renders it.
    let html = github_html(&tools["HIMAPLAN_CMARK_GFM"], body);
    assert!(html.starts_with("<!-- himaplan:plan -->"), "the marker survives as a hidden comment:\n{html}");
    assert!(html.contains("<h3>Plan: 0 to add, 3 to change, 0 to destroy.</h3>"), "{html}");
    assert!(html.contains("<strong>Disrupted</strong>: <code>aws_instance.web[0..2]</code>: 3 × stop/start"), "{html}");
    assert!(html.contains("<th>Change</th>") && html.contains("<td><code>aws_instance.web[0..2]</code> × 3</td>"), "a real table: {html}");
    assert_eq!(html.matches("<tr>").count(), 2, "one header and one row for three instances: {html}");
    assert!(html.contains("<details><summary>Full plan</summary>"), "{html}");
    assert!(html.contains("<pre lang=\"diff\"><code>") || html.contains("<pre><code class=\"language-diff\">"), "{html}");
    assert!(html.contains("\n!   resource &quot;aws_instance&quot; &quot;web&quot; {"), "~ rewritten to !: {html}");
    let (summary, details) = (html.find("<table>").expect("table"), html.find("<details>").expect("details"));
    assert!(html.find("Disrupted").expect("disrupted") < summary && summary < details, "summary first, details last");

    // Merge: the reviewed plan is current, applied, and the state committed.
    let merge = runner.merge("resize", 7);
    runner.ok("apply", "Find the merged pull request's plan");
    assert_eq!(runner.outputs["find"]["found"], "true");
    runner.ok("apply", "Check the plan is still current");
    assert_eq!(runner.outputs["check"]["current"], "true");
    let applied = runner.ok("apply", "Apply the reviewed plan");
    assert!(applied.contains("Apply complete! Resources: 0 added, 3 changed, 0 destroyed."), "{applied}");
    runner.ok("apply", "Commit the state");
    assert_eq!(types(&moto, &work), ["t3.small", "t3.small", "t3.small"]);
    let message = git(&origin, &["log", "-1", "--format=%s%n%b", "main"]);
    assert!(message.starts_with(&format!("himaplan: apply {artifact} (#7)")), "{message}");
    assert!(message.contains(&merge), "{message}");
    assert_eq!(git(&origin, &["show", "--name-only", "--format=", "main"]), "infra/state/web.json");
    assert_eq!(stub.state.lock().expect("stub").unauthenticated, 0, "every API call carries the token");

    // Pull request #8 is planned, then the fleet changes before the merge:
    // the merge plans again, posts that plan, and applies nothing.
    git(&work, &["pull", "-q", "origin", "main"]);
    git(&work, &["checkout", "-q", "-b", "bigger"]);
    std::fs::write(work.join("infra/main.hcl"), config("t3.medium").replace("web-${count.index}", "web-${count.index + 1}"))
        .expect("config");
    git(&work, &["commit", "-qam", "resize web to t3.medium"]);
    runner.plan_job(8);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("infra/state/web.json")).expect("state")).expect("state JSON");
    let web0 = state["resources"][0]["attributes"]["id"].as_str().expect("id").to_string();
    moto.stop_instance(&web0);
    let before = git(&origin, &["rev-parse", "main"]);
    runner.merge("bigger", 8);
    runner.ok("apply", "Find the merged pull request's plan");
    runner.ok("apply", "Check the plan is still current");
    assert_eq!(runner.outputs["check"]["current"], "false");
    let (code, out) = runner.run_step("apply", "Post the new plan instead of applying");
    assert_eq!(code, 1, "the job fails: {out}");
    let comments = stub.comments(8);
    assert_eq!(comments.len(), 2, "the plan comment and the stale notice");
    assert!(comments[1].1.starts_with("**Not applied**: the reviewed plan of this pull request is stale"), "{}", comments[1].1);
    assert!(comments[1].1.contains("<!-- himaplan:plan -->"), "with the new plan");
    assert_eq!(types(&moto, &work), ["t3.small", "t3.small", "t3.small"], "nothing applied");
    assert_eq!(git(&origin, &["rev-parse", "main"]), before, "nothing committed");
}

/// Runs a GitLab job's `before_script` (less the installs the test stands
/// in for) and `script` as the runner does: one bash shell, `-eo pipefail`,
/// the file's `variables` with `$CI_PROJECT_DIR` expanded, and `ci`.
fn gitlab_job(file: &Yaml, job: &str, fleet: &Fleet, moto: &moto::Moto, ci: &[(&str, String)]) -> (i32, String) {
    let lines = |y: &Yaml| -> Vec<String> {
        y.as_vec().map(|v| v.iter().filter_map(|l| l.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let mut script: Vec<String> = lines(&file["default"]["before_script"])
        .into_iter()
        .filter(|l| !l.starts_with("apt-get ") && !l.starts_with("cargo install "))
        .collect();
    script.extend(lines(&file[job]["script"]));
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script.join("\n")]).current_dir(&fleet.work).env_clear();
    let path = format!("{}:{}", fleet.bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    cmd.env("PATH", path).env("HOME", std::env::var("HOME").unwrap_or_default());
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    let project_dir = fleet.work.display().to_string();
    for (k, v) in file["variables"].as_hash().expect("variables") {
        let value = v.as_str().unwrap_or_default().replace("$CI_PROJECT_DIR", &project_dir);
        cmd.env(k.as_str().expect("name"), value);
    }
    cmd.env("HIMAPLAN_DIR", "infra").env("HIMAPLAN_STATE", "state/web.json").env("CI_PROJECT_DIR", &project_dir);
    for (k, v) in ci {
        cmd.env(k, v);
    }
    let (code, out, err) = run(&mut cmd);
    (code, format!("{out}{err}"))
}

#[test]
fn a_merge_request_is_planned_noted_once_and_applied_on_merge_with_gitlab_ci() {
    // The GitLab recipe's scripts, read from the file: one note on merge
    // request !5, updated by the second pipeline; on the default branch the
    // merge request's plan job artifact is found, applied and the state
    // pushed under a message naming the merge request.
    if tools().is_none() {
        return;
    }
    let Some(moto) = moto::turn() else { return };
    let stub = Stub::start();
    let fleet = fleet_repo(&moto);
    let work = fleet.work.clone();
    let text = std::fs::read_to_string(Path::new(ROOT).join("examples/ci/gitlab-ci.yml")).expect("gitlab file");
    let file = YamlLoader::load_from_str(&text).expect("YAML").remove(0);
    // The push URL the job builds resolves to the test's origin.
    let push_url = "https://oauth2:test-token@gitlab.test/himalytix/infra.git";
    git(&work, &["config", &format!("url.{}.insteadOf", fleet.origin.display()), push_url]);
    let api = format!("{}/api/v4", stub.url);
    let ci = |sha: &str, extra: &[(&str, &str)]| -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("CI_API_V4_URL", api.clone()),
            ("CI_PROJECT_ID", "1".to_string()),
            ("CI_COMMIT_SHA", sha.to_string()),
            ("CI_SERVER_HOST", "gitlab.test".to_string()),
            ("CI_PROJECT_PATH", "himalytix/infra".to_string()),
            ("HIMAPLAN_GITLAB_TOKEN", "test-token".to_string()),
        ];
        for (k, v) in extra {
            let k: &'static str = match *k {
                "CI_MERGE_REQUEST_IID" => "CI_MERGE_REQUEST_IID",
                "CI_COMMIT_BRANCH" => "CI_COMMIT_BRANCH",
                other => panic!("unexpected variable {other}"),
            };
            vars.push((k, v.to_string()));
        }
        vars
    };

    git(&work, &["checkout", "-q", "-b", "resize"]);
    let mut head = String::new();
    for (round, name) in [(1, "web-${count.index}"), (2, "web-${count.index + 1}")] {
        std::fs::write(work.join("infra/main.hcl"), config("t3.small").replace("web-${count.index}", name)).expect("config");
        git(&work, &["commit", "-qam", &format!("resize, round {round}")]);
        head = git(&work, &["rev-parse", "HEAD"]);
        std::fs::remove_dir_all(work.join(".himaplan-ci")).ok();
        let (code, out) = gitlab_job(&file, "himaplan-plan", &fleet, &moto, &ci(&head, &[("CI_MERGE_REQUEST_IID", "5")]));
        assert_eq!(code, 0, "plan job, round {round}:\n{out}");
        let notes = stub.comments(5);
        assert_eq!(notes.len(), 1, "one note after round {round}");
        assert!(notes[0].1.starts_with("<!-- himaplan:plan -->") && notes[0].1.contains("3 × stop/start"), "{}", notes[0].1);
    }
    assert_eq!(stub.count("PUT", "/api/v4/projects/1/merge_requests/5/notes/"), 1, "the second pipeline edits the note");
    // What GitLab keeps of the job: its artifacts, paths included.
    let zip = work.join("artifact.zip");
    let (code, _, err) = run(Command::new("zip").args(["-q", "-r"]).arg(&zip).arg(".himaplan-ci").current_dir(&work));
    assert_eq!(code, 0, "zip: {err}");

    git(&work, &["checkout", "-q", "main"]);
    git(&work, &["merge", "-q", "--no-ff", "-m", "Merge branch 'resize' into 'main'", "resize"]);
    let merge = git(&work, &["rev-parse", "HEAD"]);
    {
        let mut gl = stub.state.lock().expect("stub");
        let json = |v: serde_json::Value| serde_json::to_vec(&v).expect("JSON");
        gl.routes.insert(
            format!("/api/v4/projects/1/repository/commits/{merge}/merge_requests"),
            json(serde_json::json!([{"iid": 5, "sha": head, "state": "merged"}])),
        );
        gl.routes.insert("/api/v4/projects/1/merge_requests/5/pipelines".into(), json(serde_json::json!([{"id": 77, "sha": head}])));
        gl.routes.insert("/api/v4/projects/1/pipelines/77/jobs".into(), json(serde_json::json!([{"id": 901, "name": "himaplan-plan"}])));
        gl.routes.insert("/api/v4/projects/1/jobs/901/artifacts".into(), std::fs::read(&zip).expect("zip"));
    }
    std::fs::remove_dir_all(work.join(".himaplan-ci")).ok();
    let (code, out) = gitlab_job(&file, "himaplan-apply", &fleet, &moto, &ci(&merge, &[("CI_COMMIT_BRANCH", "main")]));
    assert_eq!(code, 0, "apply job:\n{out}");
    assert!(out.contains("Apply complete! Resources: 0 added, 3 changed, 0 destroyed."), "{out}");
    assert_eq!(types(&moto, &work), ["t3.small", "t3.small", "t3.small"]);
    let message = git(&fleet.origin, &["log", "-1", "--format=%s%n%b", "main"]);
    assert!(message.starts_with(&format!("himaplan: apply the plan of !5 ({head})")), "{message}");
    assert!(message.contains("[skip ci]"), "{message}");
    assert_eq!(stub.state.lock().expect("stub").unauthenticated, 0, "every API call carries the token");
}
