//! The state file parser (format versions, upgrades, canonical order): any
//! input parses or is a typed error, what parses is what the whole-tree
//! read gives (the resource-by-resource read is only a faster way to the
//! same state), and it writes back and parses again to the same state.
#![no_main]

use himaplan_engine::state::file;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("state/default.json");
    if let Ok(state) = file::parse(text, path) {
        let written = file::to_canonical_json(&state);
        let whole = file::parse_whole(text, path).expect("what parses resource by resource parses whole");
        assert_eq!(file::to_canonical_json(&whole), written, "both reads give the same state");
        assert!(file::is_canonical_text_of(&state, &written), "the streaming comparison agrees");
        let again = file::parse(&written, path).expect("a written state parses");
        assert_eq!(file::to_canonical_json(&again), written, "the canonical form is stable");
    }
});
