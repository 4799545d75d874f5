//! State surgery and inspection: `state list|show|rm|mv|push|pull`,
//! `import`, `output`, `force-unlock`. Commands that write take the run lock and
//! commit through the store (serial + 1, `.backup` of the previous file).

use super::context::{self, Workspace};
use super::show::attributes_text;
use super::{Failure, StateCommand};
use crate::state_s3::copy_state;
use himaplan_engine::config::load;
use himaplan_engine::diag::Diag;
use himaplan_engine::engine::apply::commit_if_changed;
use himaplan_engine::engine::surgery;
use himaplan_engine::state::{LocalStore, State, StateError, StateStore, is_redacted, to_canonical_json};
use himaplan_engine::value::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub async fn state(cmd: StateCommand) -> Result<i32, Failure> {
    match cmd {
        StateCommand::List { state } => {
            let store = context::store_for_state_commands(state.as_deref()).await?;
            for addr in store.read_state().await?.state.resources.keys() {
                println!("{addr}");
            }
            Ok(0)
        }
        StateCommand::Show { addr, state } => {
            let addr = context::parse_addrs(&[addr], "address")?.remove(0);
            let store = context::store_for_state_commands(state.as_deref()).await?;
            let snapshot = store.read_state().await?;
            let Some(r) = snapshot.state.resources.get(&addr) else {
                return Err(Diag::error(format!("No instance {addr} in state"))
                    .with_detail("List the addresses with himaplan state list.")
                    .into());
            };
            println!("# {addr}:\nresource \"{}\" \"{}\" {{", r.rtype, addr.resource.name);
            print!("{}", attributes_text(&r.attributes.json(), 1));
            println!("}}");
            Ok(0)
        }
        StateCommand::Rm { addrs, state } => {
            let patterns = context::parse_addrs(&addrs, "address")?;
            edit_state(state, "state rm", |s| {
                let removed = surgery::state_rm(s, &patterns)?;
                println!("Removed {removed} instance(s) from state. The real objects were not touched.");
                Ok(())
            })
            .await
        }
        StateCommand::Mv { from, to, state } => {
            let from = context::parse_addrs(&[from], "source address")?.remove(0);
            let to = context::parse_addrs(&[to], "destination address")?.remove(0);
            edit_state(state, "state mv", |s| {
                for (src, dst) in surgery::state_mv(s, &from, &to)? {
                    println!("Moved {src} to {dst}");
                }
                Ok(())
            })
            .await
        }
        StateCommand::Push { file, force, lock_timeout } => push(file, force, lock_timeout).await,
        StateCommand::Pull => pull().await,
    }
}

/// The state location the configuration names. Unlike the inspection
/// commands, `push` and `pull` never fall back to the default local file
/// when the configuration does not load: that would move state to or from
/// the wrong place without a word.
async fn configured_store() -> Result<Box<dyn StateStore>, Failure> {
    let config = load::load_dir(Path::new("."))?;
    context::open_store(Some(&config), None).await
}

/// `state push FILE`: uploads a local state file into the configured
/// location under its lock. Refuses (writing nothing) a target of another
/// lineage, a newer serial, or the same serial with other contents, unless
/// `--force`; the target's previous state becomes its backup either way.
async fn push(file: PathBuf, force: bool, lock_timeout: Option<Duration>) -> Result<i32, Failure> {
    if !file.is_file() {
        return Err(Diag::error(format!("No state file at {}", file.display()))
            .with_detail("Give the path of a state file, e.g. one written by himaplan state pull.")
            .into());
    }
    let source = LocalStore::new(&file);
    let target = configured_store().await?;
    let _lock = context::lock(target.as_ref(), "state push", lock_timeout).await?;
    let written = if force {
        overwrite(&source, target.as_ref()).await?
    } else {
        copy_state(&source, target.as_ref()).await.map_err(|e| {
            Diag::error(e.to_string()).with_detail(format!(
                "Nothing was written. Compare with `himaplan state pull`; to replace the state at {} with {} anyway, pass --force.",
                target.location(),
                file.display()
            ))
        })?
    };
    if written {
        println!("Pushed {} to {}.", file.display(), target.location());
    } else {
        println!("{} already holds this state; nothing was written.", target.location());
    }
    Ok(0)
}

/// `state push --force`: writes the source state whatever the target holds.
async fn overwrite(source: &dyn StateStore, target: &dyn StateStore) -> Result<bool, Failure> {
    let from = source.read().await?;
    if !from.exists && !from.journal_replayed {
        return Err(Diag::error(format!("{} holds no state to push", source.location())).into());
    }
    if !from.unfinished_intents.is_empty() {
        return Err(Diag::error(format!(
            "{} has {} unfinished create(s) from a crashed run",
            source.location(),
            from.unfinished_intents.len()
        ))
        .with_detail("Run himaplan apply against it first so they are recovered, then push.")
        .into());
    }
    // Read first: the store makes its write conditional on what it read. A
    // target that cannot be used (checksum mismatch, not a state) is what
    // --force is for: it is replaced, and not kept as the backup, so the
    // last good backup survives.
    let to = match target.read().await {
        Ok(to) => to,
        Err(e @ (StateError::Invalid { .. } | StateError::JournalAhead { .. })) => {
            eprintln!("Replacing the unusable state: {e}");
            target.commit(&from.state, None).await?;
            return Ok(true);
        }
        Err(e) => return Err(e.into()),
    };
    if to.exists && !to.journal_replayed && to.state == from.state {
        return Ok(false);
    }
    target.commit(&from.state, to.text.as_deref()).await?;
    Ok(true)
}

/// `state pull`: prints the configured state, with any unfinished run's
/// journal folded in, as canonical JSON.
async fn pull() -> Result<i32, Failure> {
    let store = configured_store().await?;
    let snapshot = store.read_state().await?;
    if !snapshot.exists && !snapshot.journal_replayed {
        return Err(Diag::error(format!("No state at {}", store.location()))
            .with_detail("Nothing has been applied or pushed there yet.")
            .into());
    }
    if snapshot.journal_replayed {
        eprintln!("Warning: {} has a journal of a run that did not finish; it is included in this output.", store.location());
    }
    print!("{}", to_canonical_json(&snapshot.state));
    Ok(0)
}

/// Runs an edit under the lock and commits the result.
async fn edit_state(state: Option<PathBuf>, operation: &str, edit: impl FnOnce(&mut State) -> Result<(), Failure>) -> Result<i32, Failure> {
    let store = context::store_for_state_commands(state.as_deref()).await?;
    let _lock = context::lock(store.as_ref(), operation, None).await?;
    let snapshot = store.read().await?;
    let mut s = snapshot.state.clone();
    edit(&mut s)?;
    commit_if_changed(store.as_ref(), &mut s, snapshot.text.as_deref(), snapshot.unfinished_intents.is_empty()).await?;
    Ok(0)
}

pub async fn import(
    addr: String,
    id: String,
    vars: Vec<String>,
    var_files: Vec<PathBuf>,
    state: Option<PathBuf>,
    lock_timeout: Option<Duration>,
) -> Result<i32, Failure> {
    let addr = context::parse_addrs(&[addr], "address")?.remove(0);
    let ws = Workspace::load()?;
    surgery::check_import_target(&ws.config, &addr)?;
    let values = ws.variables(&vars, &var_files)?;
    let store = context::open_store(Some(&ws.config), state.as_deref()).await?;
    let _lock = context::lock(store.as_ref(), "import", lock_timeout).await?;
    let snapshot = store.read().await?;
    let mut s = snapshot.state.clone();
    surgery::import(&ws.config, &ws.registry, &values, &mut s, &addr, &id).await?;
    commit_if_changed(store.as_ref(), &mut s, snapshot.text.as_deref(), snapshot.unfinished_intents.is_empty()).await?;
    println!("Import successful: {id} is now {addr}. Run himaplan plan to compare it with the configuration.");
    Ok(0)
}

pub async fn output(name: Option<String>, json: bool, state: Option<PathBuf>) -> Result<i32, Failure> {
    let store = context::store_for_state_commands(state.as_deref()).await?;
    let s = store.read_state().await?.state;
    let shown = |o: &himaplan_engine::state::OutputState| -> serde_json::Value {
        if o.sensitive || is_redacted(&o.value) { serde_json::Value::String("(sensitive value)".into()) } else { o.value.clone() }
    };
    match name {
        Some(name) => {
            let Some(o) = s.outputs.get(&name) else {
                return Err(Diag::error(format!("No output {name:?} in state")).with_detail("Outputs are recorded by apply.").into());
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&shown(o)).unwrap_or_default());
            } else {
                match shown(o) {
                    serde_json::Value::String(text) => println!("{text}"),
                    other => println!("{}", Value::from_json(&other)),
                }
            }
        }
        None if json => {
            let doc: serde_json::Map<String, serde_json::Value> =
                s.outputs.iter().map(|(k, o)| (k.clone(), serde_json::json!({ "sensitive": o.sensitive, "value": shown(o) }))).collect();
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        None => {
            for (k, o) in &s.outputs {
                let v = shown(o);
                println!(
                    "{k} = {}",
                    if v.is_string() && o.sensitive { "(sensitive value)".to_string() } else { Value::from_json(&v).to_string() }
                );
            }
        }
    }
    Ok(0)
}

pub async fn force_unlock(lock_id: String, state: Option<PathBuf>) -> Result<i32, Failure> {
    let store = context::store_for_state_commands(state.as_deref()).await?;
    store.force_unlock(&lock_id).await?;
    println!("The state lock {lock_id} was removed.");
    Ok(0)
}
