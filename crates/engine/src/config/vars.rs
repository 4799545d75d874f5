//! Variable values, from lowest precedence to highest: `default`,
//! `*.auto.hvars` files, `--var-file`, `HIMAPLAN_VAR_NAME` environment
//! variables, `--var NAME=VALUE`. Also type constraints and `validation`
//! blocks, which apply to module inputs too. Reads only the files named.

use super::eval::{Scope, convert, eval, eval_literal};
use super::{Config, Variable};
use crate::diag::{Diag, Diags, Location, SourceFile};
use crate::provider::AttrType;
use crate::value::{Value, ValueMap};
use hcl_edit::Span;
use hcl_edit::expr::Expression;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where variable values come from, besides defaults.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    /// `--var NAME=VALUE`, in order.
    pub cli: Vec<String>,
    /// `--var-file FILE`, in order.
    pub files: Vec<PathBuf>,
    /// `HIMAPLAN_VAR_NAME` values, by NAME.
    pub env: BTreeMap<String, String>,
}

impl VarInputs {
    /// Collects `HIMAPLAN_VAR_*` from the process environment.
    pub fn env_from_process() -> BTreeMap<String, String> {
        std::env::vars().filter_map(|(k, v)| k.strip_prefix("HIMAPLAN_VAR_").map(|n| (n.to_string(), v))).collect()
    }
}

/// Values of the root module's variables, checked and marked.
pub fn root_values(config: &Config, inputs: &VarInputs) -> Result<BTreeMap<String, Value>, Diags> {
    let (mut raw, mut diags) = collect_given(config, inputs, &config.root_dir);
    let mut out = BTreeMap::new();
    for (name, var) in &config.root().variables {
        match finalize(var, raw.remove(name)) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(d) => diags.extend(d),
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}

/// The values given for root variables, before defaults, types and
/// validation: `*.auto.hvars` in `auto_dir` (in name order), `--var-file`,
/// `HIMAPLAN_VAR_*`, `--var`, later ones winning.
pub fn given_values(config: &Config, inputs: &VarInputs, auto_dir: &Path) -> Result<BTreeMap<String, Value>, Diags> {
    let (raw, diags) = collect_given(config, inputs, auto_dir);
    if diags.has_errors() { Err(diags) } else { Ok(raw) }
}

/// The given values that could be read, and the problems with the others.
fn collect_given(config: &Config, inputs: &VarInputs, auto_dir: &Path) -> (BTreeMap<String, Value>, Diags) {
    let root = config.root();
    let mut diags = Diags::new();
    let mut raw: BTreeMap<String, (Value, Option<Location>)> = BTreeMap::new();

    // *.auto.hvars, in name order, then --var-file.
    let mut files: Vec<PathBuf> = std::fs::read_dir(auto_dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().ends_with(".auto.hvars")).collect())
        .unwrap_or_default();
    files.sort();
    files.extend(inputs.files.iter().cloned());
    for path in files {
        match read_var_file(&path) {
            Ok(values) => {
                for (name, value, loc) in values {
                    if root.variables.contains_key(&name) {
                        raw.insert(name, (value, loc));
                    } else {
                        diags.push(
                            Diag::error(format!("Value for undeclared variable {name:?}"))
                                .at_opt(loc)
                                .with_detail("Declare it with a variable block, or remove the value."),
                        );
                    }
                }
            }
            Err(d) => diags.extend(d),
        }
    }
    for (name, text) in &inputs.env {
        if let Some(var) = root.variables.get(name) {
            match parse_cli_value(var, text) {
                Ok(v) => {
                    raw.insert(name.clone(), (v, None));
                }
                Err(msg) => diags.push(Diag::error(format!("Invalid value in HIMAPLAN_VAR_{name}: {msg}"))),
            }
        }
    }
    for item in &inputs.cli {
        let Some((name, text)) = item.split_once('=') else {
            diags.push(Diag::error(format!("Invalid --var {item:?}")).with_detail("Use --var NAME=VALUE."));
            continue;
        };
        match root.variables.get(name) {
            None => diags.push(
                Diag::error(format!("--var for undeclared variable {name:?}"))
                    .with_detail("Declare it with a variable block in the configuration, or check the name."),
            ),
            Some(var) => match parse_cli_value(var, text) {
                Ok(v) => {
                    raw.insert(name.to_string(), (v, None));
                }
                Err(msg) => diags.push(Diag::error(format!("Invalid value for --var {name}: {msg}"))),
            },
        }
    }
    (raw.into_iter().map(|(k, (v, _))| (k, v)).collect(), diags)
}

/// Applies a variable's default, type constraint, validations and
/// sensitivity to a given value (root variables and module inputs alike).
pub fn finalize(var: &Variable, given: Option<Value>) -> Result<Value, Diags> {
    let value = match given {
        Some(v) => v,
        None => match &var.default {
            Some(d) => eval(d, &mut Scope::new(&BTreeMap::new())).map_err(Diags::from)?,
            None => {
                return Err(Diag::error(format!("No value for required variable {:?}", var.name))
                    .at(var.location.clone())
                    .with_detail(format!("Set it with --var {0}=VALUE, a --var-file, a *.auto.hvars file or HIMAPLAN_VAR_{0}.", var.name))
                    .into());
            }
        },
    };
    let ty = var.type_expr.as_ref().map(|t| type_of(&t.expr)).transpose().map_err(|msg| {
        Diags::from(Diag::error(msg).at(var.type_expr.as_ref().map(|t| t.location()).unwrap_or_else(|| var.location.clone())))
    })?;
    let value = match ty {
        Some(ty) => convert(value, &ty).map_err(|msg| {
            Diags::from(Diag::error(format!("Invalid value for variable {:?}: {msg}", var.name)).at(var.location.clone()))
        })?,
        None => value,
    };
    let mut diags = Diags::new();
    for validation in &var.validations {
        let base = BTreeMap::from([("var".to_string(), Value::Map(ValueMap::from([(var.name.clone(), value.clone())])))]);
        let mut scope = Scope::new(&base);
        match eval(&validation.condition, &mut scope).map(|v| v.deep_unmarked()) {
            Ok(Value::Bool(true)) | Ok(Value::Unknown) => {}
            Ok(Value::Bool(false)) => {
                let message = eval(&validation.error_message, &mut scope)
                    .ok()
                    .and_then(|m| m.deep_unmarked().as_str().map(str::to_string))
                    .unwrap_or_else(|| "validation failed".into());
                diags.push(
                    Diag::error(format!("Invalid value for variable {:?}", var.name))
                        .at(validation.condition.location())
                        .with_detail(message),
                );
            }
            Ok(other) => diags.push(
                Diag::error(format!("A validation condition must be a bool, got {}", other.type_name()))
                    .at(validation.condition.location()),
            ),
            Err(d) => diags.push(d),
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(if var.sensitive { value.into_sensitive() } else { value })
}

/// Reads a variables file: JSON when the name ends in `.json`, else HCL
/// attributes with literal values.
pub fn read_var_file(path: &Path) -> Result<Vec<(String, Value, Option<Location>)>, Diags> {
    let text = crate::files::read_text(path, super::load::MAX_CONFIG_FILE_BYTES)
        .map_err(|e| Diag::error(format!("cannot read variables file {}: {e}", path.display())))?;
    let file = SourceFile::new(super::load::display_path(path), text);
    if path.extension().is_some_and(|e| e == "json") {
        let json: serde_json::Value = serde_json::from_str(&file.text).map_err(|e| {
            Diag::error(format!("Invalid JSON in variables file: {e}")).at(Location {
                path: file.path.clone(),
                line: e.line(),
                col: e.column(),
                snippet: Some(file.line_text(e.line()).to_string()),
            })
        })?;
        let Some(map) = json.as_object() else {
            return Err(Diag::error("A JSON variables file must hold an object").at(Location::file_only(&file.path)).into());
        };
        return Ok(map.iter().map(|(k, v)| (k.clone(), Value::from_json(v), Some(Location::file_only(&file.path)))).collect());
    }
    let body = hcl_edit::parser::parse_body(&file.text).map_err(|e| {
        Diag::error(format!("Invalid HCL syntax in variables file: {}", e.message())).at(Location {
            path: file.path.clone(),
            line: e.location().line(),
            col: e.location().column(),
            snippet: Some(file.line_text(e.location().line()).to_string()),
        })
    })?;
    let mut diags = Diags::new();
    let mut out = Vec::new();
    for structure in body.iter() {
        let loc = Location::in_file(&file, structure.span().unwrap_or(0..0));
        match structure.as_attribute() {
            Some(attr) => match eval_literal(&attr.value) {
                Some(v) => out.push((attr.key.as_str().to_string(), v, Some(loc))),
                None => diags.push(Diag::error("Variable values in files must be literals (no references)").at(loc)),
            },
            None => diags.push(Diag::error("Variables files hold only NAME = VALUE attributes").at(loc)),
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(out) }
}

/// A value from the command line or environment: taken as a plain string
/// for string-typed (or untyped) variables, parsed as an HCL literal otherwise.
fn parse_cli_value(var: &Variable, text: &str) -> Result<Value, String> {
    let ty = var.type_expr.as_ref().map(|t| type_of(&t.expr)).transpose()?;
    match ty {
        None | Some(AttrType::String) => Ok(Value::String(text.to_string())),
        Some(_) => {
            let expr = hcl_edit::parser::parse_expr(text).map_err(|e| format!("cannot parse {text:?}: {}", e.message()))?;
            eval_literal(&expr).ok_or_else(|| format!("{text:?} is not a literal value"))
        }
    }
}

/// Interprets a type constraint expression: `string`, `number`, `bool`,
/// `any`, `list(T)`, `set(T)`, `map(T)`, `object({...})`, `tuple([...])`.
pub fn type_of(expr: &Expression) -> Result<AttrType, String> {
    match expr {
        Expression::Variable(v) => match v.as_str() {
            "string" => Ok(AttrType::String),
            "number" => Ok(AttrType::Number),
            "bool" => Ok(AttrType::Bool),
            "any" => Ok(AttrType::Any),
            other => Err(format!("Unknown type {other:?}; use string, number, bool, any, list(T), map(T) or object({{...}})")),
        },
        Expression::FuncCall(call) => {
            let name = call.name.name.as_str();
            let arg = call.args.iter().next();
            match (name, arg) {
                ("list" | "set", Some(a)) => Ok(AttrType::List(Box::new(type_of(a)?))),
                ("map", Some(a)) => Ok(AttrType::Map(Box::new(type_of(a)?))),
                ("object", Some(_)) => Ok(AttrType::Map(Box::new(AttrType::Any))),
                ("tuple", Some(_)) => Ok(AttrType::List(Box::new(AttrType::Any))),
                _ => Err(format!("Unknown type constructor {name}(...)")),
            }
        }
        other => Err(format!("Invalid type constraint {}", other.to_string().trim())),
    }
}
