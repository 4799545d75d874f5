//! The state file parser (format versions, upgrades, canonical order): any
//! input parses or is a typed error, and what parses writes back and
//! parses again to the same state.
#![no_main]

use himaplan_engine::state::file;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("state/default.json");
    if let Ok(state) = file::parse(text, path) {
        let written = file::to_canonical_json(&state);
        let again = file::parse(&written, path).expect("a written state parses");
        assert_eq!(file::to_canonical_json(&again), written, "the canonical form is stable");
    }
});
