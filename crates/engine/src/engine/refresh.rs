//! Refresh: read every managed object through its provider (one batched
//! request per resource type), record drift, and apply the recovery rules
//! of SPEC §4 to objects carrying this lineage that state does not hold:
//! adopt the oldest object of an unfinished create intent (matched by its
//! token; by address only for objects that carry none), mark extra
//! objects of one address for deletion, report the rest as unmanaged.

use super::{Event, Hooks, provider_error};
use crate::addr::{InstanceAddr, InstanceKey};
use crate::config::eval::{self, Scope};
use crate::config::{Config, Expr};
use crate::diag::{Diag, Diags};
use crate::plan::{Drift, Unmanaged};
use crate::provider::{FoundObject, Intent, ReadItem, ReadRequest, Registry};
use crate::state::{ResourceState, State, redact_like};
use crate::value::{Value, ValueMap};
use std::collections::{BTreeMap, BTreeSet};

/// What refresh found.
#[derive(Debug, Default)]
pub struct Refreshed {
    pub drift: Vec<Drift>,
    pub unmanaged: Vec<Unmanaged>,
    /// Objects to delete because another object holds their address.
    pub duplicates: Vec<(InstanceAddr, FoundObject)>,
    /// Addresses adopted from unfinished create intents.
    pub adopted: Vec<InstanceAddr>,
}

/// Per instance in state: its sensitive configuration attributes whose
/// values are known before refresh, i.e. that read only root variables
/// (and `count.index`). Root-module resources only: a module's inputs are
/// evaluated by the walk, after refresh.
pub type Known = BTreeMap<InstanceAddr, BTreeMap<String, Value>>;

/// The [`Known`] values of `state`'s instances under `config`.
pub fn known_before_refresh(config: &Config, registry: &Registry, root_vars: &BTreeMap<String, Value>, state: &State) -> Known {
    let mut out = Known::new();
    // One scope for every instance; only `count` changes between them.
    let mut base = BTreeMap::from([("var".to_string(), Value::Map(root_vars.clone().into()))]);
    for addr in state.resources.keys() {
        let Some((_, rt)) = registry.resource_type(&addr.resource.rtype) else { continue };
        if !rt.schema.attributes.iter().any(|a| a.sensitive) {
            continue;
        }
        let Some(resource) = config.resource(&addr.resource).filter(|r| r.addr.module.is_root()) else { continue };
        match &addr.key {
            Some(InstanceKey::Int(i)) => {
                base.insert("count".to_string(), Value::Map(ValueMap::from([("index".to_string(), Value::from(*i))])));
            }
            _ => {
                base.remove("count");
            }
        }
        let mut values = BTreeMap::new();
        let body = resource.body.body();
        for attr in rt.schema.attributes.iter().filter(|a| a.sensitive) {
            let Some(expr) = body.get_attribute(attr.name) else { continue };
            let expr = Expr { expr: expr.value.clone(), file: resource.body.file.clone() };
            // A reference to anything but a variable fails here: not known.
            if let Ok(value) = eval::eval(&expr, &mut Scope::new(&base))
                && !value.has_unknown()
                && !value.is_null()
            {
                values.insert(attr.name.to_string(), value);
            }
        }
        if !values.is_empty() {
            out.insert(addr.clone(), values);
        }
    }
    out
}

/// Refreshes `state` in place. `types` are the resource types to read even
/// when state holds none of them (the configuration's, the intents');
/// `known` hands providers the configuration values they may need to
/// connect.
pub async fn refresh(
    registry: &Registry,
    state: &mut State,
    intents: &[Intent],
    types: &BTreeSet<String>,
    known: &Known,
    hooks: &dyn Hooks,
) -> Result<Refreshed, Diags> {
    let mut out = Refreshed::default();
    let mut all_types: BTreeSet<String> = types.clone();
    all_types.extend(state.resources.values().map(|r| r.rtype.clone()));
    all_types.extend(intents.iter().map(|i| i.addr.resource.rtype.clone()));
    let mut diags = Diags::new();
    let salt = state.lineage.clone();

    // One read per type, all types concurrently.
    let mut reads = Vec::new();
    for rtype in &all_types {
        let Some((provider_name, rt)) = registry.resource_type(rtype) else { continue };
        let Some(provider) = registry.provider(provider_name).cloned() else { continue };
        let sensitive: Vec<&'static str> = rt.schema.attributes.iter().filter(|a| a.sensitive).map(|a| a.name).collect();
        let items: Vec<ReadItem> = state
            .resources
            .iter()
            .filter(|(_, r)| &r.rtype == rtype)
            .map(|(addr, r)| ReadItem {
                addr: addr.clone(),
                prior: r.attributes.value(),
                known: known.get(addr).cloned().unwrap_or_default(),
            })
            .collect();
        let req = ReadRequest { rtype: rtype.clone(), lineage: state.lineage.clone(), items: items.clone() };
        // A type with nothing in state is still read (its lineage finds
        // unmanaged objects), but "refreshing 0 objects" tells nobody anything.
        if !items.is_empty() {
            hooks.event(Event::Refreshing { rtype: rtype.clone(), count: items.len() });
        }
        reads.push(async move {
            let resp = super::with_retries(|| provider.read(req.clone()), hooks, rtype).await;
            (rtype.clone(), provider_name, rt.schema_version, sensitive, items, resp)
        });
    }
    let results = futures::future::join_all(reads).await;
    for (rtype, provider_name, schema_version, sensitive, items, resp) in results {
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                diags.push(provider_error(&format!("refreshing {rtype}"), &e));
                continue;
            }
        };
        for (item, current) in items.iter().zip(resp.current.iter().chain(std::iter::repeat(&None))) {
            let Some(entry) = state.resources.get_mut(&item.addr) else { continue };
            match current {
                None => {
                    out.drift.push(Drift { addr: item.addr.clone(), before: Some(entry.attributes.json()), after: None });
                    state.resources.remove(&item.addr);
                }
                Some(value) => {
                    let before = entry.attributes.json();
                    let mut json = redact_like(value, Some(&before), &salt);
                    // Secrets cannot be read back; keep what state recorded.
                    if let (Some(obj), Some(prior)) = (json.as_object_mut(), before.as_object()) {
                        for name in &sensitive {
                            if let Some(p) = prior.get(*name) {
                                obj.insert(name.to_string(), p.clone());
                            }
                        }
                    }
                    if json != before {
                        entry.attributes = (&json).into();
                        out.drift.push(Drift { addr: item.addr.clone(), before: Some(before), after: Some(json) });
                    }
                }
            }
        }
        // Objects of this lineage that state does not hold.
        let mut by_addr: BTreeMap<InstanceAddr, Vec<FoundObject>> = BTreeMap::new();
        for obj in resp.others {
            match obj.address.clone() {
                Some(addr) => by_addr.entry(addr).or_default().push(obj),
                None => out.unmanaged.push(Unmanaged { rtype: rtype.clone(), id: obj.id.clone(), address: None }),
            }
        }
        for (addr, mut objs) in by_addr {
            objs.sort_by(|a, b| (a.created.as_str(), a.id.as_str()).cmp(&(b.created.as_str(), b.id.as_str())));
            if state.resources.contains_key(&addr) {
                out.duplicates.extend(objs.into_iter().map(|o| (addr.clone(), o)));
                continue;
            }
            // The oldest object of an unfinished intent is adopted; the rest at
            // its address are duplicates.
            if let Some(keep) = objs.iter().position(|o| of_an_intent(o, &addr, intents)) {
                let kept = objs.remove(keep);
                state.resources.insert(addr.clone(), ResourceState::observed(&rtype, provider_name, schema_version, &kept.attrs, &salt));
                out.adopted.push(addr.clone());
                out.duplicates.extend(objs.into_iter().map(|o| (addr.clone(), o)));
            } else {
                out.unmanaged.extend(objs.into_iter().map(|o| Unmanaged { rtype: rtype.clone(), id: o.id, address: Some(addr.clone()) }));
            }
        }
    }
    if diags.has_errors() {
        return Err(diags);
    }
    out.drift.sort_by(|a, b| a.addr.cmp(&b.addr));
    out.unmanaged.sort_by(|a, b| (&a.rtype, &a.id).cmp(&(&b.rtype, &b.id)));
    Ok(out)
}

/// Whether `obj`, found at `addr`, is the object of one of `intents`: by
/// its create token when it carries one, never by its address alone (an
/// object of another run may hold the same address); an object whose type
/// keeps no token (files, S3 lifecycle, PgBouncer) by its address, its
/// natural key.
fn of_an_intent(obj: &FoundObject, addr: &InstanceAddr, intents: &[Intent]) -> bool {
    match obj.token.as_deref() {
        Some(token) => intents.iter().any(|i| i.token == token),
        None => intents.iter().any(|i| i.addr == *addr),
    }
}

/// A diagnostic for an object state holds but its provider does not know.
pub fn unknown_type(rtype: &str) -> Diag {
    Diag::error(format!("State holds resources of unknown type {rtype:?}"))
        .with_detail("This himaplan build has no provider for it; use a newer himaplan or `himaplan state rm` them.")
}
