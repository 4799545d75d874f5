//! `drift`: refresh state against the real objects and report what
//! differs, without planning or writing anything.

use super::Hooks;
use super::plan::configure_providers;
use super::refresh;
use crate::config::Config;
use crate::diag::Diags;
use crate::plan::{Plan, Unmanaged};
use crate::provider::Registry;
use crate::state::Snapshot;
use crate::value::Value;
use std::collections::BTreeMap;

/// A report (a [`Plan`] holding only drift and unmanaged objects) of how
/// the real objects differ from `snapshot`'s state. Extra objects holding
/// an address are reported as unmanaged, labelled with it.
pub async fn drift(
    config: &Config,
    registry: &Registry,
    root_vars: &BTreeMap<String, Value>,
    snapshot: &Snapshot,
    hooks: &dyn Hooks,
) -> Result<Plan, Diags> {
    let mut state = snapshot.state.clone();
    configure_providers(config, registry, root_vars, &state).await?;
    let types = config.resources().map(|r| r.addr.rtype.clone()).collect();
    let known = refresh::known_before_refresh(config, registry, root_vars, &state);
    let found = refresh::refresh(registry, &mut state, &snapshot.unfinished_intents, &types, &known, hooks).await?;
    let mut unmanaged = found.unmanaged;
    for (addr, obj) in found.duplicates {
        unmanaged.push(Unmanaged { rtype: addr.resource.rtype.clone(), id: obj.id, address: Some(addr) });
    }
    Ok(Plan { drift: found.drift, unmanaged, ..Plan::default() })
}
