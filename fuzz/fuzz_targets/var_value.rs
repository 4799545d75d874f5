//! `--var NAME=VALUE` (and `HIMAPLAN_VAR_NAME`) values against variables of
//! every kind of type, with their validations.
#![no_main]

use himaplan_engine::config::load;
use himaplan_engine::config::vars::{self, VarInputs};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

const VARIABLES: &str = r#"
variable "s" {
  type    = string
  default = "x"
}
variable "n" {
  type    = number
  default = 1
  validation {
    condition     = var.n >= 0
    error_message = "n must not be negative."
  }
}
variable "b" {
  type    = bool
  default = false
}
variable "l" {
  type    = list(string)
  default = []
}
variable "m" {
  type    = map(number)
  default = {}
}
variable "o" {
  type    = object({ name = string, size = optional(number, 2) })
  default = { name = "a" }
}
variable "a" {
  default = null
}
variable "secret" {
  type      = string
  default   = ""
  sensitive = true
}
"#;

fn config() -> &'static himaplan_engine::config::Config {
    static CONFIG: OnceLock<himaplan_engine::config::Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let sources = BTreeMap::from([(".".to_string(), vec![("variables.hcl".to_string(), VARIABLES.to_string())])]);
        load::load_snapshot(Path::new("/nonexistent-fuzz-root"), &sources, Default::default()).expect("the variables load")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The first byte picks the variable; the rest is the value.
    let names = ["s", "n", "b", "l", "m", "o", "a", "secret"];
    let Some((&pick, value)) = text.as_bytes().split_first() else { return };
    let name = names[pick as usize % names.len()];
    let value = String::from_utf8_lossy(value);
    let inputs = VarInputs { cli: vec![format!("{name}={value}")], files: vec![], env: BTreeMap::new() };
    let _ = vars::root_values(config(), &inputs);
    let env = VarInputs { cli: vec![], files: vec![], env: BTreeMap::from([(name.to_string(), value.to_string())]) };
    let _ = vars::root_values(config(), &env);
});
