//! The plan file parser, and what `apply PLANFILE` does with a parsed one
//! before any provider: load its configuration snapshot and its variables.
#![no_main]

use himaplan_engine::config::load;
use himaplan_engine::engine::planfile::PlanFile;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = PlanFile::parse(text, Path::new("fuzz.plan")) else { return };
    let _ = load::load_snapshot(Path::new("/nonexistent-fuzz-root"), &file.sources, file.inputs.clone());
    let _ = file.variables_for_apply(&BTreeMap::new());
});
