//! How secrets are kept at rest in state and plan files: never the value,
//! only a hash a reader cannot test guesses against cheaply — argon2id with
//! fixed parameters (m = 19456 KiB, t = 2, p = 1) and a random 16-byte salt
//! per value, written as a PHC string. A value that did not change keeps
//! its stored hash (and salt), so files do not churn; a value is compared
//! with a stored hash by hashing it again with the stored salt.
//!
//! Hashes written before (`sha256:` of the lineage and the value) are still
//! verified the old way, so they cause no false change, and are replaced by
//! argon2id hashes whenever their entry is written again.
//!
//! Verifications are memoised in memory for the life of the process (a plan
//! compares the same secret several times); plain text never leaves memory.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// The prefix of every hash this build writes.
pub const PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";
/// The prefix of hashes of state version 1.
pub const LEGACY_PREFIX: &str = "sha256:";

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST, T_COST, P_COST, Some(HASH_LEN)).expect("fixed argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn raw_hash(plain: &[u8], salt: &[u8]) -> Option<[u8; HASH_LEN]> {
    let mut out = [0u8; HASH_LEN];
    argon2().hash_password_into(plain, salt, &mut out).ok()?;
    Some(out)
}

/// A new hash of `plain` with a fresh random salt.
pub fn hash(plain: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    let out = raw_hash(plain.as_bytes(), &salt).expect("a 16-byte salt and fixed parameters always hash");
    format!("{PREFIX}{}${}", B64.encode(salt), B64.encode(out))
}

/// Whether `stored` is a hash of `plain`. `lineage` salts legacy hashes.
pub fn verify(stored: &str, plain: &str, lineage: &str) -> bool {
    type Memo = Mutex<HashMap<(String, [u8; 32]), bool>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let key = (format!("{lineage}\0{stored}"), Sha256::digest(plain.as_bytes()).into());
    let memo = MEMO.get_or_init(Default::default);
    if let Some(known) = memo.lock().ok().and_then(|m| m.get(&key).copied()) {
        return known;
    }
    let ok = verify_uncached(stored, plain, lineage);
    if let Ok(mut m) = memo.lock() {
        m.insert(key, ok);
    }
    ok
}

fn verify_uncached(stored: &str, plain: &str, lineage: &str) -> bool {
    if let Some(hex) = stored.strip_prefix(LEGACY_PREFIX) {
        return legacy_hex(plain, lineage) == hex;
    }
    let Some((salt, expected)) = stored.strip_prefix(PREFIX).and_then(|rest| rest.split_once('$')) else { return false };
    let (Ok(salt), Ok(expected)) = (B64.decode(salt), B64.decode(expected)) else { return false };
    if salt.len() < SALT_LEN || expected.len() != HASH_LEN {
        return false;
    }
    raw_hash(plain.as_bytes(), &salt).is_some_and(|out| out[..] == expected[..])
}

/// The version-1 hash: SHA-256 of the lineage, a NUL and the value.
fn legacy_hex(plain: &str, lineage: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(lineage.as_bytes());
    hasher.update([0u8]);
    hasher.update(plain.as_bytes());
    hasher.finalize().iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether `text` is a stored hash of either kind.
pub fn is_hash(text: &str) -> bool {
    text.starts_with(PREFIX) || text.starts_with(LEGACY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_phc_strings_with_their_own_salt() {
        let a = hash("\"hunter2\"");
        let b = hash("\"hunter2\"");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        let salt = a.strip_prefix(PREFIX).and_then(|r| r.split_once('$')).map(|(s, _)| B64.decode(s).unwrap()).unwrap();
        assert!(salt.len() >= 16);
        assert_ne!(a, b, "two equal secrets get different salts");
        assert!(verify(&a, "\"hunter2\"", "l") && verify(&b, "\"hunter2\"", "l"));
        assert!(!verify(&a, "\"hunter3\"", "l"), "verifies only with the right value");
    }

    #[test]
    fn legacy_hashes_verify_the_old_way() {
        let stored = format!("{LEGACY_PREFIX}{}", legacy_hex("\"s\"", "lin"));
        assert!(verify(&stored, "\"s\"", "lin"));
        assert!(!verify(&stored, "\"s\"", "other-lineage") && !verify(&stored, "\"t\"", "lin"));
        assert!(!verify("$argon2id$v=19$m=19456,t=2,p=1$garbage", "\"s\"", "lin"));
    }
}
