//! The evaluation world: every module's namespace (`var`, `local`,
//! `module`, resource values, `path`) as plan or apply has built it so far.
//!
//! Plan fills it in graph order with planned values (unknown where only
//! apply can tell); apply replaces resource values with real ones as
//! actions complete and re-evaluates a resource's configuration, with its
//! ancestors, before touching it.

use crate::addr::{InstanceAddr, InstanceKey, ModulePath, ResourceAddr};
use crate::config::eval::{self, Scope};
use crate::config::{Config, Resource, vars};
use crate::diag::{Diag, Diags};
use crate::graph::{ConfigGraph, Node};
use crate::provider::Registry;
use crate::value::{Value, ValueMap};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Meta-arguments of a resource body, handled by the engine, not the schema.
/// Upper bound on the instances of one resource (`count` or `for_each`).
pub const MAX_INSTANCES: usize = 100_000;

pub const META: &[&str] = &["count", "for_each", "depends_on", "lifecycle", "rollout", "provider"];

/// How one instance of a resource was expanded.
#[derive(Debug, Clone)]
pub struct Expansion {
    pub key: Option<InstanceKey>,
    /// `each.value` for for_each instances.
    pub each_value: Option<Value>,
}

pub struct World {
    pub config: Arc<Config>,
    pub graph: Arc<ConfigGraph>,
    pub registry: Registry,
    pub root_vars: BTreeMap<String, Value>,
    ns: BTreeMap<ModulePath, BTreeMap<String, Value>>,
}

fn empty_map() -> Value {
    Value::Map(ValueMap::new())
}

fn map_mut<'a>(ns: &'a mut BTreeMap<String, Value>, key: &str) -> &'a mut ValueMap {
    let entry = ns.entry(key.to_string()).or_insert_with(empty_map);
    if !matches!(entry, Value::Map(_)) {
        *entry = empty_map();
    }
    match entry {
        Value::Map(m) => m,
        _ => unreachable!("replaced by a map just above"),
    }
}

impl World {
    pub fn new(config: Arc<Config>, graph: Arc<ConfigGraph>, registry: Registry, root_vars: BTreeMap<String, Value>) -> World {
        let mut ns = BTreeMap::new();
        for (path, module) in &config.modules {
            let mut m = BTreeMap::new();
            for key in ["var", "local", "module"] {
                m.insert(key.to_string(), empty_map());
            }
            m.insert(
                "path".to_string(),
                Value::Map(ValueMap::from([
                    ("module".to_string(), Value::String(module.dir.display().to_string())),
                    ("root".to_string(), Value::String(config.root_dir.display().to_string())),
                ])),
            );
            ns.insert(path.clone(), m);
        }
        World { config, graph, registry, root_vars, ns }
    }

    /// The namespace of a module.
    pub fn namespace(&self, module: &ModulePath) -> &BTreeMap<String, Value> {
        static EMPTY: std::sync::OnceLock<BTreeMap<String, Value>> = std::sync::OnceLock::new();
        self.ns.get(module).unwrap_or_else(|| EMPTY.get_or_init(BTreeMap::new))
    }

    /// Evaluates a variable, local or output node into its namespace.
    /// Returns the value (outputs are returned for the caller to record).
    pub fn eval_value_node(&mut self, node: &Node) -> Result<Option<Value>, Diags> {
        match node {
            Node::Var(m, name) => {
                let value = if m.is_root() {
                    self.root_vars.get(name).cloned().unwrap_or(Value::Null)
                } else {
                    let parent = ModulePath(m.0[..m.0.len() - 1].to_vec());
                    let call_name = m.0.last().cloned().unwrap_or_default();
                    let module = &self.config.modules[m];
                    let var = &module.variables[name];
                    let call = &self.config.modules[&parent].calls[&call_name];
                    let given = match call.inputs.get(name) {
                        Some(expr) => Some(eval::eval(expr, &mut Scope::new(self.namespace(&parent)))?),
                        None if var.default.is_none() => {
                            return Err(Diag::error(format!("Module {call_name:?} needs a value for its input {name:?}"))
                                .at(call.location.clone())
                                .with_detail(format!(
                                    "Add {name} = ... to the module block (declared at {}:{}).",
                                    var.location.path.display(),
                                    var.location.line
                                ))
                                .into());
                        }
                        None => None,
                    };
                    vars::finalize(var, given)?
                };
                map_mut(self.ns.entry(m.clone()).or_default(), "var").insert(name.clone(), value.clone());
                Ok(Some(value))
            }
            Node::Local(m, name) => {
                let expr = &self.config.modules[m].locals[name].value;
                let value = eval::eval(expr, &mut Scope::new(self.namespace(m)))?;
                map_mut(self.ns.entry(m.clone()).or_default(), "local").insert(name.clone(), value.clone());
                Ok(Some(value))
            }
            Node::Output(m, name) => {
                let out = &self.config.modules[m].outputs[name];
                let mut value = eval::eval(&out.value, &mut Scope::new(self.namespace(m)))?;
                if out.sensitive {
                    value = value.into_sensitive();
                } else if value.has_sensitive() && m.is_root() {
                    return Err(Diag::error(format!("Output {name:?} refers to sensitive values"))
                        .at(out.location.clone())
                        .with_detail("Add sensitive = true to the output block to confirm it may hold a secret.")
                        .into());
                }
                if !m.is_root() {
                    let parent = ModulePath(m.0[..m.0.len() - 1].to_vec());
                    let call_name = m.0.last().cloned().unwrap_or_default();
                    let modules = map_mut(self.ns.entry(parent).or_default(), "module");
                    let entry = modules.entry(call_name).or_insert_with(empty_map);
                    if let Value::Map(outs) = entry {
                        outs.insert(name.clone(), value.clone());
                    }
                }
                Ok(Some(value))
            }
            Node::Provider(_) | Node::Resource(_) => Ok(None),
        }
    }

    /// Expands a resource's `count` / `for_each` into instance keys. Their
    /// values must be known at plan time, and at most [`MAX_INSTANCES`].
    pub fn expand(&self, resource: &Resource) -> Result<Vec<Expansion>, Diags> {
        let expanded = self.expand_unbounded(resource)?;
        if let (Some(for_each), true) = (&resource.for_each, expanded.len() > MAX_INSTANCES) {
            return Err(Diag::error(format!("Too many instances: for_each has {} elements", expanded.len()))
                .at(for_each.location())
                .with_detail(format!("A resource may have at most {MAX_INSTANCES} instances."))
                .into());
        }
        Ok(expanded)
    }

    fn expand_unbounded(&self, resource: &Resource) -> Result<Vec<Expansion>, Diags> {
        let ns = self.namespace(&resource.addr.module);
        if let Some(count) = &resource.count {
            let value = eval::eval(count, &mut Scope::new(ns))?.deep_unmarked();
            return match value {
                Value::Unknown => Err(unknown_meta("count", count)),
                v => match v.as_i64() {
                    Some(n) if (0..=MAX_INSTANCES as i64).contains(&n) => {
                        Ok((0..n).map(|i| Expansion { key: Some(InstanceKey::Int(i)), each_value: None }).collect())
                    }
                    _ => Err(Diag::error(format!("Invalid count: {v}"))
                        .at(count.location())
                        .with_detail(format!("count must be a whole number from 0 to {MAX_INSTANCES}."))
                        .into()),
                },
            };
        }
        if let Some(for_each) = &resource.for_each {
            let value = eval::eval(for_each, &mut Scope::new(ns))?;
            if value.has_unknown() {
                return Err(unknown_meta("for_each", for_each));
            }
            if value.has_sensitive() {
                return Err(Diag::error("for_each cannot use sensitive values")
                    .at(for_each.location())
                    .with_detail("Instance keys appear in addresses and plans, so they cannot be secret.")
                    .into());
            }
            return match value {
                Value::Map(map) => {
                    Ok(map.into_iter().map(|(k, v)| Expansion { key: Some(InstanceKey::Str(k)), each_value: Some(v) }).collect())
                }
                Value::List(items) => {
                    let mut keys = Vec::new();
                    for item in items {
                        match item.as_str() {
                            Some(s) => keys.push(s.to_string()),
                            None => {
                                return Err(Diag::error("for_each over a list needs strings (a set of keys)")
                                    .at(for_each.location())
                                    .into());
                            }
                        }
                    }
                    keys.sort();
                    keys.dedup();
                    Ok(keys
                        .into_iter()
                        .map(|k| Expansion { key: Some(InstanceKey::Str(k.clone())), each_value: Some(Value::String(k)) })
                        .collect())
                }
                other => Err(Diag::error(format!("for_each needs a map or a set of strings, got {}", other.type_name()))
                    .at(for_each.location())
                    .into()),
            };
        }
        Ok(vec![Expansion { key: None, each_value: None }])
    }

    /// Checks a resource's `count` / `for_each` where its value is known
    /// (type, bounds), without evaluating any instance; unknown is fine.
    pub fn check_repetition(&self, resource: &Resource) -> Result<(), Diags> {
        let ns = self.namespace(&resource.addr.module);
        let Some(meta) = resource.count.as_ref().or(resource.for_each.as_ref()) else { return Ok(()) };
        if eval::eval(meta, &mut Scope::new(ns))?.has_unknown() {
            return Ok(());
        }
        self.expand(resource).map(|_| ())
    }

    /// Evaluates a repeated resource's body once, for every instance:
    /// `count.index`, `each.key` and `each.value` are unknown.
    pub fn eval_representative(&self, resource: &Resource) -> Result<Value, Diags> {
        let Some((_, rt)) = self.registry.resource_type(&resource.addr.rtype) else {
            return self.eval_instance(resource, &Expansion { key: None, each_value: None });
        };
        let unknown = |names: &[&str]| Value::Map(names.iter().map(|n| (n.to_string(), Value::Unknown)).collect());
        let extra = if resource.count.is_some() { [("count", unknown(&["index"]))] } else { [("each", unknown(&["key", "value"]))] };
        let keyless = Expansion { key: None, each_value: None };
        self.eval_block(resource, &keyless, &resource.body, &rt.schema, META, &resource.location, &extra)
    }

    /// Makes a whole resource unknown to what refers to it (`validate`).
    pub fn set_resource_unknown(&mut self, resource: &Resource) {
        let addr = &resource.addr;
        map_mut(self.ns.entry(addr.module.clone()).or_default(), &addr.rtype).insert(addr.name.clone(), Value::Unknown);
    }

    /// Evaluates one instance's configuration against its schema.
    pub fn eval_instance(&self, resource: &Resource, expansion: &Expansion) -> Result<Value, Diags> {
        let Some((_, rt)) = self.registry.resource_type(&resource.addr.rtype) else {
            let names: Vec<&str> = self.registry.type_names().collect();
            let hint = crate::config::load::suggest(&resource.addr.rtype, &names)
                .map(|s| format!("Did you mean {s:?}?"))
                .unwrap_or_else(|| format!("Supported types: {}.", names.join(", ")));
            return Err(Diag::error(format!("Unknown resource type {:?}", resource.addr.rtype))
                .at(resource.location.clone())
                .with_detail(hint)
                .into());
        };
        self.eval_block(resource, expansion, &resource.body, &rt.schema, META, &resource.location, &[])
    }

    /// Evaluates a block of one instance (its body, or e.g. its
    /// `health_check`) in the instance's scope (`count.index`, `each.*`),
    /// with `extra` names bound too (e.g. `target`).
    #[allow(clippy::too_many_arguments, reason = "each argument is one part of what is evaluated")]
    pub fn eval_block(
        &self,
        resource: &Resource,
        expansion: &Expansion,
        body: &crate::config::BodyRef,
        schema: &crate::provider::Schema,
        skip: &[&str],
        location: &crate::diag::Location,
        extra: &[(&str, Value)],
    ) -> Result<Value, Diags> {
        let ns = self.namespace(&resource.addr.module);
        let mut scope = Scope::new(ns);
        match &expansion.key {
            Some(InstanceKey::Int(i)) => scope.bind("count", Value::Map(ValueMap::from([("index".to_string(), Value::from(*i as f64))]))),
            Some(InstanceKey::Str(k)) => scope.bind(
                "each",
                Value::Map(ValueMap::from([
                    ("key".to_string(), Value::String(k.clone())),
                    ("value".to_string(), expansion.each_value.clone().unwrap_or(Value::Null)),
                ])),
            ),
            None => {}
        }
        for (name, value) in extra {
            scope.bind(name, value.clone());
        }
        eval::eval_body(body, schema, &mut scope, skip, location)
    }

    /// Records a whole resource's instance values (plan, in key order).
    pub fn set_resource(&mut self, resource: &Resource, instances: Vec<(Option<InstanceKey>, Value)>) {
        let value = if resource.count.is_some() {
            Value::List(instances.into_iter().map(|(_, v)| v).collect())
        } else if resource.for_each.is_some() {
            Value::Map(
                instances
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        Some(InstanceKey::Str(s)) => Some((s, v)),
                        _ => None,
                    })
                    .collect(),
            )
        } else {
            instances.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null)
        };
        let addr = &resource.addr;
        map_mut(self.ns.entry(addr.module.clone()).or_default(), &addr.rtype).insert(addr.name.clone(), value);
    }

    /// Replaces one instance's value (apply, after the action completed).
    pub fn set_instance(&mut self, addr: &InstanceAddr, value: Value) {
        let r = &addr.resource;
        let types = map_mut(self.ns.entry(r.module.clone()).or_default(), &r.rtype);
        let slot = types.entry(r.name.clone()).or_insert(Value::Null);
        match (&addr.key, slot) {
            (None, slot) => *slot = value,
            (Some(InstanceKey::Int(i)), Value::List(items)) => {
                let i = *i as usize;
                if i < items.len() {
                    items[i] = value;
                }
            }
            (Some(InstanceKey::Str(k)), Value::Map(map)) => {
                map.insert(k.clone(), value);
            }
            _ => {}
        }
    }

    /// Evaluates one instance's configuration with other instances' values
    /// replaced by `overrides` (each put back afterwards): what a listing
    /// holds with its members as they are now, or with them marked.
    pub fn eval_instance_with(
        &mut self,
        resource: &Resource,
        expansion: &Expansion,
        overrides: &[(InstanceAddr, Value)],
    ) -> Result<Value, Diags> {
        let saved: Vec<(InstanceAddr, Value)> =
            overrides.iter().map(|(addr, value)| (addr.clone(), self.replace_instance(addr, value.clone()))).collect();
        let result = self.refresh_ancestors(&resource.addr).and_then(|_| self.eval_instance(resource, expansion));
        for (addr, value) in saved.into_iter().rev() {
            self.replace_instance(&addr, value);
        }
        self.refresh_ancestors(&resource.addr)?;
        result
    }

    /// Sets one instance's value, returning the one it had (`Null` if none).
    fn replace_instance(&mut self, addr: &InstanceAddr, value: Value) -> Value {
        let r = &addr.resource;
        let types = map_mut(self.ns.entry(r.module.clone()).or_default(), &r.rtype);
        let slot = types.entry(r.name.clone()).or_insert(Value::Null);
        let place = match (&addr.key, slot) {
            (None, slot) => Some(slot),
            (Some(InstanceKey::Int(i)), Value::List(items)) => items.get_mut(*i as usize),
            (Some(InstanceKey::Str(k)), Value::Map(map)) => map.get_mut(k),
            _ => None,
        };
        place.map(|p| std::mem::replace(p, value)).unwrap_or(Value::Null)
    }

    /// The expansion of one instance of a resource.
    pub fn expansion_of(&self, resource: &Resource, addr: &InstanceAddr) -> Result<Option<Expansion>, Diags> {
        Ok(self.expand(resource)?.into_iter().find(|e| e.key == addr.key))
    }

    /// Re-evaluates the variables, locals and module outputs a resource
    /// depends on, so that its configuration sees the latest real values.
    pub fn refresh_ancestors(&mut self, resource: &ResourceAddr) -> Result<(), Diags> {
        for node in self.graph.ancestors(&Node::Resource(resource.clone())) {
            self.eval_value_node(&node)?;
        }
        Ok(())
    }
}

fn unknown_meta(what: &str, expr: &crate::config::Expr) -> Diags {
    Diag::error(format!("The {what} value is not known until apply"))
        .at(expr.location())
        .with_detail(format!(
            "{what} decides how many instances exist, so it must be known when planning. \
             Use values from variables and locals, not attributes computed by other resources."
        ))
        .into()
}
