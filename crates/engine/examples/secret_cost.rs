//! The cost of hashing one secret for state (argon2id, m = 19456 KiB, t = 2,
//! p = 1): `cargo run --release -p himaplan-engine --example secret_cost`.

use himaplan_engine::state::secret;
use std::time::Instant;

fn main() {
    let n = 20;
    let started = Instant::now();
    let hashes: Vec<String> = (0..n).map(|i| secret::hash(&format!("\"secret-{i}\""))).collect();
    let per_hash = started.elapsed().as_secs_f64() * 1000.0 / n as f64;
    let started = Instant::now();
    // Each verification is new to the memo (a distinct stored hash).
    let ok = hashes.iter().enumerate().filter(|(i, h)| secret::verify(h, &format!("\"secret-{i}\""), "l")).count();
    let per_verify = started.elapsed().as_secs_f64() * 1000.0 / n as f64;
    println!("hash {per_hash:.1} ms, verify {per_verify:.1} ms ({ok}/{n} verified)");
}
