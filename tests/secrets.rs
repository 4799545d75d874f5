//! Secrets at rest (state and plan files are committed to git): each stored
//! hash is an argon2id PHC string with fixed parameters and its own random
//! salt, kept while the value is unchanged; a version-1 state's `sha256:`
//! hashes still compare the old way (no false change) and are upgraded when
//! their entry is written again. On the built-in `himaplan_data` (no server).

mod support;

use sha2::{Digest, Sha256};
use support::TestDir;

const SECRET: &str = "s3cr3t-Zq81-never-shown";

/// Two resources holding the same secret, and one holding a plain value.
const TWO_SECRETS: &str = r#"variable "token" {
  type      = string
  sensitive = true
}

variable "note" {
  default = "n1"
}

resource "himaplan_data" "a" {
  input = var.token
}

resource "himaplan_data" "b" {
  input = var.token
}

resource "himaplan_data" "c" {
  input = var.note
}
"#;

fn stored_hash(dir: &TestDir, address: &str) -> String {
    dir.state_attrs(address)["input"]["sensitive"].as_str().unwrap_or_else(|| panic!("{address} holds no hash")).to_string()
}

#[test]
fn stored_secrets_are_salted_argon2id_hashes_that_do_not_churn() {
    // Equal secrets get different salts; the hashes are argon2id with m=19456,t=2,p=1 and a 16-byte salt; an unrelated apply keeps them byte for byte.
    let dir = TestDir::new(TWO_SECRETS);
    let env = [("HIMAPLAN_VAR_token", SECRET)];
    dir.run_with(&["apply", "--auto-approve"], &env, None).assert_code(0);
    let (a, b) = (stored_hash(&dir, "himaplan_data.a"), stored_hash(&dir, "himaplan_data.b"));
    for hash in [&a, &b] {
        let rest = hash.strip_prefix("$argon2id$v=19$m=19456,t=2,p=1$").unwrap_or_else(|| panic!("not argon2id PHC: {hash}"));
        let (salt, digest) = rest.split_once('$').expect("salt$hash");
        assert!(salt.len() >= 22, "a salt of at least 16 bytes (22 base64 characters): {hash}");
        assert_eq!(digest.len(), 43, "a 32-byte hash: {hash}");
    }
    assert_ne!(a, b, "equal secrets must not share a hash");
    assert!(!dir.state_text().contains(SECRET));

    dir.run_with(&["plan", "--detailed-exitcode"], &env, None).assert_code(0);
    dir.run_with(&["apply", "--auto-approve", "--var", "note=n2"], &env, None).assert_code(0);
    assert_eq!(
        (stored_hash(&dir, "himaplan_data.a"), stored_hash(&dir, "himaplan_data.b")),
        (a.clone(), b),
        "unchanged secrets keep their hash"
    );
    let changed = dir.run_with(&["plan", "--detailed-exitcode"], &[("HIMAPLAN_VAR_token", "another")], None);
    changed.assert_code(2);
    assert!(changed.stdout().contains("himaplan_data.a") && changed.stdout().contains("himaplan_data.b"), "{}", changed.stdout());
    dir.run_with(&["apply", "--auto-approve"], &[("HIMAPLAN_VAR_token", "another")], None).assert_code(0);
    assert_ne!(stored_hash(&dir, "himaplan_data.a"), a, "a changed secret gets a new hash");
}

/// A version-1 state as an earlier himaplan wrote it: the secret hashed as
/// SHA-256 of the lineage, a NUL and the value's JSON.
fn version_1_state(lineage: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(lineage.as_bytes());
    hasher.update([0u8]);
    hasher.update(serde_json::to_string(SECRET).expect("json").as_bytes());
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let entry = |name: &str, input: serde_json::Value| {
        serde_json::json!({
            "address": format!("himaplan_data.{name}"),
            "attributes": { "id": format!("id-{name}"), "input": input.clone(), "output": input, "triggers_replace": null },
            "dependencies": [],
            "provider": "himaplan",
            "schema_version": 0,
            "type": "himaplan_data",
        })
    };
    let secret = serde_json::json!({ "sensitive": format!("sha256:{hex}") });
    let state = serde_json::json!({
        "lineage": lineage,
        "outputs": {},
        "resources": [entry("a", secret.clone()), entry("b", secret), entry("c", serde_json::json!("n1"))],
        "serial": 3,
        "version": 1,
    });
    serde_json::to_string_pretty(&state).expect("state JSON") + "\n"
}

#[test]
fn version_1_sha256_hashes_compare_the_old_way_and_are_upgraded_when_written() {
    // A v1 state plans no change for the same secret; an apply that rewrites a's entry upgrades its hash to argon2id and the file to version 2; a's and b's hashes still compare equal to the secret afterwards.
    let dir = TestDir::new(TWO_SECRETS);
    dir.write(support::DEFAULT_STATE, &version_1_state("5d0a4c0e-6f57-4d8e-9a57-1b0c2d3e4f50"));
    let env = [("HIMAPLAN_VAR_token", SECRET)];
    dir.run_with(&["plan", "--detailed-exitcode"], &env, None).assert_code(0);
    let wrong = dir.run_with(&["plan", "--detailed-exitcode"], &[("HIMAPLAN_VAR_token", "not-it")], None);
    wrong.assert_code(2);

    // Replacing a rewrites its entry: the new hash is argon2id; b keeps the old one.
    dir.run_with(&["apply", "--auto-approve", "--replace", "himaplan_data.a"], &env, None).assert_code(0);
    assert!(stored_hash(&dir, "himaplan_data.a").starts_with("$argon2id$"), "{}", dir.state_text());
    assert!(stored_hash(&dir, "himaplan_data.b").starts_with("sha256:"), "an untouched entry is not rewritten");
    assert_eq!(dir.state()["version"], 2);
    dir.run_with(&["plan", "--detailed-exitcode"], &env, None).assert_code(0);
}
