//! The shared toolkit of the integration tests: a [`TestDir`] holding a
//! configuration written from inline HCL, a runner for the real `himaplan`
//! binary with a clean environment, and helpers to read the state file.
//!
//! Include it with `mod support;`. Every test binary uses a different part
//! of it, so unused items are expected.
#![allow(dead_code, reason = "each test binary uses a different subset of the toolkit")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The state file of a configuration without a `himaplan` block.
pub const DEFAULT_STATE: &str = "state/default.json";

/// A temporary configuration directory, removed when dropped.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    /// An empty directory.
    pub fn empty() -> TestDir {
        TestDir { dir: tempfile::Builder::new().prefix("himaplan-test-").tempdir().expect("create a temp dir") }
    }

    /// A directory with `main.hcl` holding `hcl`.
    pub fn new(hcl: &str) -> TestDir {
        TestDir::with_files(&[("main.hcl", hcl)])
    }

    /// A directory with the given files (paths relative to it).
    pub fn with_files(files: &[(&str, &str)]) -> TestDir {
        let dir = TestDir::empty();
        for (name, text) in files {
            dir.write(name, text);
        }
        dir
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `name` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` (creating parent directories).
    pub fn write(&self, name: &str, text: &str) {
        self.write_bytes(name, text.as_bytes());
    }

    pub fn write_bytes(&self, name: &str, bytes: &[u8]) {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    pub fn read_bytes(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.join(name)).ok()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.join(name).exists()
    }

    pub fn remove(&self, name: &str) {
        let _ = std::fs::remove_file(self.join(name));
    }

    /// Runs `himaplan ARGS` in this directory.
    pub fn run(&self, args: &[&str]) -> Run {
        himaplan(self.path(), args)
    }

    /// Runs `himaplan ARGS` with extra environment variables and stdin.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        himaplan_with(self.path(), args, env, stdin)
    }

    /// Runs and asserts exit code 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        run.assert_code(0);
        run
    }

    /// The default state file's text.
    pub fn state_text(&self) -> String {
        self.read(DEFAULT_STATE)
    }

    /// The default state file as JSON.
    pub fn state(&self) -> serde_json::Value {
        serde_json::from_str(&self.state_text()).expect("state is JSON")
    }

    /// The addresses in the default state file, in file order.
    pub fn state_addresses(&self) -> Vec<String> {
        self.state()["resources"]
            .as_array()
            .expect("resources array")
            .iter()
            .map(|r| r["address"].as_str().expect("address").to_string())
            .collect()
    }

    /// One resource's attributes from the default state file.
    pub fn state_attrs(&self, address: &str) -> serde_json::Value {
        self.state()["resources"]
            .as_array()
            .expect("resources array")
            .iter()
            .find(|r| r["address"] == address)
            .unwrap_or_else(|| panic!("{address} not in state"))["attributes"]
            .clone()
    }

    pub fn serial(&self) -> u64 {
        self.state()["serial"].as_u64().expect("serial")
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
}

impl Run {
    /// The exit code; -1 when killed by a signal.
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Stdout and stderr together, for messages that may be on either.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }
    pub fn assert_code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code(),
            expected,
            "himaplan {:?} exited {} instead of {expected}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code(),
            self.stdout(),
            self.stderr()
        );
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("stdout of {:?} is not JSON ({e}):\n{}", self.args, self.stdout()))
    }
}

/// The path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_himaplan")
}

/// Runs `himaplan ARGS` in `dir` with NO_COLOR set and no HIMAPLAN_VAR_* or
/// AWS_* variables from the test's own environment.
pub fn himaplan(dir: &Path, args: &[&str]) -> Run {
    himaplan_with(dir, args, &[], None)
}

/// Like [`himaplan`], with extra environment variables and optional stdin
/// (without stdin, stdin is empty so a prompt reads end of file).
pub fn himaplan_with(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut cmd = himaplan_command(dir, args, env);
    let mut child = cmd.spawn().expect("start himaplan");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            let _ = input.write_all(text.as_bytes());
        }
    }
    let output = child.wait_with_output().expect("wait for himaplan");
    Run { args: args.iter().map(|s| s.to_string()).collect(), output }
}

/// The command [`himaplan_with`] runs, not yet started: for tests that run
/// several `himaplan` processes at once. Stdin, stdout and stderr are piped;
/// drop the child's stdin so that a prompt reads end of file.
pub fn himaplan_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("HIMAPLAN_VAR_") || k.starts_with("AWS_") {
            cmd.env_remove(&key);
        }
    }
    // Nothing in these tests may reach outside the loopback network: no
    // AWS endpoint but a closed loopback port, and no instance metadata
    // service (the default credential chain would ask 169.254.169.254).
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Files that must not change when a command fails: the state and what
/// lives beside it.
#[derive(Debug, PartialEq)]
pub struct StateFiles {
    pub state: Option<Vec<u8>>,
    pub backup: Option<Vec<u8>>,
    pub journal: Option<Vec<u8>>,
}

impl StateFiles {
    /// Captures `state_path` (relative to `dir`) and its `.backup` and `.journal`.
    pub fn capture(dir: &TestDir, state_path: &str) -> StateFiles {
        StateFiles {
            state: dir.read_bytes(state_path),
            backup: dir.read_bytes(&format!("{state_path}.backup")),
            journal: dir.read_bytes(&format!("{state_path}.journal")),
        }
    }
}

/// The valid configuration the CLI and bad-input tests start from (line
/// numbers matter: `himaplan_data.a` is on line 6, `himaplan_data.b` on line 10).
#[allow(dead_code, reason = "not every test binary that includes support uses it")]
pub const BASE: &str = r#"variable "size" {
  type    = number
  default = 2
}

resource "himaplan_data" "a" {
  input = "hello"
}

resource "himaplan_data" "b" {
  count = var.size
  input = "${himaplan_data.a.id}-${count.index}"
}

output "a_id" {
  value = himaplan_data.a.id
}
"#;

/// Graphviz's own reading of a DOT text (`dot -Tjson`); `None` when `dot`
/// is not installed, which CI=true refuses (scripts/servers/doctools.sh).
pub fn graphviz(dot: &str) -> Option<serde_json::Value> {
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("dot").arg("-Tjson").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "graphviz is required under CI=true (scripts/servers/doctools.sh install)");
        eprintln!("skipping the Graphviz half: dot is not installed");
        return None;
    };
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), dot.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("dot");
    assert!(out.status.success(), "dot rejected:\n{dot}");
    Some(serde_json::from_slice(&out.stdout).expect("dot -Tjson"))
}

/// The label of an object of a `dot -Tjson` document.
pub fn dot_label(object: &serde_json::Value) -> String {
    object["label"].as_str().unwrap_or_default().to_string()
}

/// The clusters of a `dot -Tjson` document: each label with its nodes' labels.
pub fn dot_clusters(doc: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    let objects = doc["objects"].as_array().expect("objects");
    objects
        .iter()
        .filter(|o| o.get("nodes").is_some())
        .map(|c| {
            let nodes =
                c["nodes"].as_array().expect("nodes").iter().map(|id| dot_label(&objects[id.as_u64().expect("id") as usize])).collect();
            (dot_label(c), nodes)
        })
        .collect()
}
