//! The crypto functions beyond digests: `bcrypt` (a password hash with a
//! new random salt on every call, so the table makes it known only after
//! apply, as Terraform's planning scope does) and `rsadecrypt` (PKCS#1 v1.5
//! decryption with an RSA private key in PEM).
//!
//! Both follow Terraform's implementation (Go's `x/crypto/bcrypt`,
//! `crypto/rsa`): the `$2a$` prefix, a cost below 4 meaning the default of
//! 10, passwords of at most 72 bytes, and base64 ciphertext whose line
//! breaks are ignored. Private keys are never echoed in a message.

use super::Args;
use crate::value::Value;
use base64::Engine;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

/// Go's `bcrypt.DefaultCost`; also what a cost below 4 means.
const DEFAULT_COST: i64 = 10;

/// Go's `bcrypt.MaxCost`.
const MAX_COST: i64 = 31;

/// Longest password bcrypt hashes (Go refuses longer ones rather than
/// truncating them).
const MAX_PASSWORD_BYTES: usize = 72;

/// `bcrypt(string, cost = 10)`: the Modular Crypt Format hash, `$2a$`.
pub(super) fn bcrypt(f: &Args) -> Result<Value, String> {
    if f.len() > 2 {
        return Err(f.error("takes no more than two arguments"));
    }
    f.at_least(1)?;
    let password = f.str(0)?;
    let cost = if f.len() > 1 { f.integer(1)? } else { DEFAULT_COST };
    let cost = if cost < 4 { DEFAULT_COST } else { cost };
    if cost > MAX_COST {
        return Err(f.error(format!("cost {cost} is outside the allowed range 4..{MAX_COST}")));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(f.error(format!("password length exceeds {MAX_PASSWORD_BYTES} bytes")));
    }
    let cost = u32::try_from(cost).map_err(|_| f.error("invalid cost"))?;
    let parts = ::bcrypt::hash_with_result(password.as_bytes(), cost).map_err(|e| f.error(format!("cannot hash: {e}")))?;
    Ok(Value::String(parts.format_for_version(::bcrypt::Version::TwoA)))
}

/// Go's `base64.StdEncoding`: padded, and lenient about unused bits.
const STANDARD_LENIENT: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true));

/// `rsadecrypt(ciphertext, privatekey)`: `ciphertext` is standard base64,
/// `privatekey` an unencrypted RSA key in PKCS#1 (`RSA PRIVATE KEY`) or
/// PKCS#8 (`PRIVATE KEY`) PEM.
pub(super) fn rsadecrypt(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (ciphertext, pem) = (f.str(0)?, f.str(1)?);
    // Go's decoder skips line breaks anywhere in the input.
    let compact: String = ciphertext.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    let bytes = STANDARD_LENIENT
        .decode(compact.as_bytes())
        .map_err(|_| f.error("failed to decode the first argument: the ciphertext must be base64-encoded"))?;
    let key = private_key(&pem).map_err(|why| f.error(format!("invalid private key: {why}")))?;
    let clear = key.decrypt(rsa::Pkcs1v15Encrypt, &bytes).map_err(|_| f.error("failed to decrypt: decryption error"))?;
    Ok(Value::String(String::from_utf8_lossy(&clear).into_owned()))
}

/// The first PEM block of `text` as an RSA private key.
fn private_key(text: &str) -> Result<rsa::PrivateKey, String> {
    let (label, block) = pem_block(text).ok_or("no PEM-encoded key found")?;
    if block.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("the private key is passphrase protected".into());
    }
    match label {
        "RSA PRIVATE KEY" => rsa::PrivateKey::from_pkcs1_pem(&block).map_err(|e| format!("invalid PKCS#1 data in the private key ({e})")),
        "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_pem(&block).map_err(|e| match e {
            // The algorithm identifier names another kind of key.
            rsa::pkcs8::Error::PublicKey(_) => "the private key is not an RSA key".into(),
            _ => format!("invalid PKCS#8 data in the private key ({e})"),
        }),
        "EC PRIVATE KEY" | "DSA PRIVATE KEY" => Err("the private key is not an RSA key".into()),
        "OPENSSH PRIVATE KEY" => Err("OpenSSH-format keys are not supported; convert with `ssh-keygen -p -m PEM -f KEY`".into()),
        other => Err(format!("unsupported key type \"{other}\"")),
    }
}

/// The label and text (from `-----BEGIN` through `-----END …-----`) of
/// the first PEM block, ignoring text around it as Go's `pem.Decode` does.
fn pem_block(text: &str) -> Option<(&str, String)> {
    let start = text.find("-----BEGIN ")?;
    let rest = text.get(start + "-----BEGIN ".len()..)?;
    let label = rest.get(..rest.find("-----")?)?;
    let end_marker = format!("-----END {label}-----");
    let end = text.get(start..)?.find(&end_marker)? + start + end_marker.len();
    let block = text.get(start..end)?.replace("\r\n", "\n");
    Some((label, format!("{block}\n")))
}
