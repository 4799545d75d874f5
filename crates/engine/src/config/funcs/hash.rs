//! Hash and crypto functions: `base64sha256 base64sha512 md5 sha1 sha256
//! sha512 uuidv5`, their file variants (`filemd5 filesha1 filesha256
//! filesha512 filebase64sha256 filebase64sha512`), and `uuid`, which is
//! known only after apply (the table marks it so; at apply it is a random
//! version-4 UUID). `bcrypt` and `rsadecrypt` are in `crypto`.
//!
//! Hashes are of the UTF-8 bytes of the string, as in Terraform.

use super::Args;
use super::filesystem::read_bytes;
use crate::value::Value;
use base64::Engine;
use sha2::Digest;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn text(f: &Args) -> Result<Vec<u8>, String> {
    f.arity(1, 1)?;
    Ok(f.str(0)?.as_bytes().to_vec())
}

fn file(f: &Args) -> Result<Vec<u8>, String> {
    f.arity(1, 1)?;
    read_bytes(f, 0)
}

pub(super) fn md5(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&md5::Md5::digest(text(f)?))))
}

pub(super) fn sha1(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&sha1::Sha1::digest(text(f)?))))
}

pub(super) fn sha256(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&sha2::Sha256::digest(text(f)?))))
}

pub(super) fn sha512(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&sha2::Sha512::digest(text(f)?))))
}

pub(super) fn base64sha256(f: &Args) -> Result<Value, String> {
    Ok(Value::String(b64(&sha2::Sha256::digest(text(f)?))))
}

pub(super) fn base64sha512(f: &Args) -> Result<Value, String> {
    Ok(Value::String(b64(&sha2::Sha512::digest(text(f)?))))
}

pub(super) fn filemd5(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&md5::Md5::digest(file(f)?))))
}

pub(super) fn filesha1(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&sha1::Sha1::digest(file(f)?))))
}

pub(super) fn filesha256(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&sha2::Sha256::digest(file(f)?))))
}

pub(super) fn filesha512(f: &Args) -> Result<Value, String> {
    Ok(Value::String(hex(&sha2::Sha512::digest(file(f)?))))
}

pub(super) fn filebase64sha256(f: &Args) -> Result<Value, String> {
    Ok(Value::String(b64(&sha2::Sha256::digest(file(f)?))))
}

pub(super) fn filebase64sha512(f: &Args) -> Result<Value, String> {
    Ok(Value::String(b64(&sha2::Sha512::digest(file(f)?))))
}

/// `uuidv5(namespace, name)`: the namespace is `dns`, `url`, `oid`,
/// `x500` or a UUID.
pub(super) fn uuidv5(f: &Args) -> Result<Value, String> {
    f.arity(2, 2)?;
    let (ns, name) = (f.str(0)?, f.str(1)?);
    let namespace = match ns.as_ref() {
        "dns" => uuid::Uuid::NAMESPACE_DNS,
        "url" => uuid::Uuid::NAMESPACE_URL,
        "oid" => uuid::Uuid::NAMESPACE_OID,
        "x500" => uuid::Uuid::NAMESPACE_X500,
        other => uuid::Uuid::parse_str(other).map_err(|e| f.error(format!("uuidv5() doesn't support namespace {other} ({e})")))?,
    };
    Ok(Value::String(uuid::Uuid::new_v5(&namespace, name.as_bytes()).to_string()))
}

/// `uuid()`: a random (version 4) UUID, at apply.
pub(super) fn uuid(f: &Args) -> Result<Value, String> {
    f.arity(0, 0)?;
    Ok(Value::String(uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string()))
}
