//! Moves: renaming instances in state, the one implementation behind
//! `moved` blocks (applied at the start of every plan) and `state mv`.
//! State only; the real objects are relabelled by apply (`Plan::relabels`).

use crate::addr::InstanceAddr;
use crate::config::Config;
use crate::diag::{Diag, Diags};
use crate::state::State;

/// Why one instance could not be moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveProblem {
    /// The source and destination resource types differ.
    TypeDiffers { src: InstanceAddr, dst: InstanceAddr },
    /// State already holds the destination.
    DestinationExists { src: InstanceAddr, dst: InstanceAddr },
}

/// What [`move_instances`] did.
#[derive(Debug, Default)]
pub struct Moved {
    /// `(from, to)` per instance moved, in address order.
    pub moved: Vec<(InstanceAddr, InstanceAddr)>,
    /// The instances that stayed where they were, and why.
    pub problems: Vec<MoveProblem>,
}

/// Moves every instance in state that `from` selects (one instance, or all
/// of a resource for a keyless address) to its place under `to`.
pub fn move_instances(state: &mut State, from: &InstanceAddr, to: &InstanceAddr) -> Moved {
    let mut out = Moved::default();
    let sources: Vec<InstanceAddr> = state.resources.keys().filter(|a| from.matches(a)).cloned().collect();
    for src in sources {
        let dst = from.moved_to(&src, to);
        if state.resources.get(&src).is_some_and(|e| e.rtype != dst.resource.rtype) {
            out.problems.push(MoveProblem::TypeDiffers { src, dst });
            continue;
        }
        if state.resources.contains_key(&dst) {
            out.problems.push(MoveProblem::DestinationExists { src, dst });
            continue;
        }
        if let Some(entry) = state.resources.remove(&src) {
            state.resources.insert(dst.clone(), entry);
            out.moved.push((src, dst));
        }
    }
    out
}

/// Applies `moved` blocks to state; returns each instance moved, (from, to).
pub fn apply_moves(config: &Config, state: &mut State, notes: &mut Vec<String>) -> Result<Vec<(InstanceAddr, InstanceAddr)>, Diags> {
    let mut moved_all = Vec::new();
    let mut diags = Diags::new();
    for module in config.modules.values() {
        for m in &module.moved {
            let prefix = if module.path.is_root() { String::new() } else { format!("{}.", module.path) };
            let (from, to) =
                match (format!("{prefix}{}", m.from).parse::<InstanceAddr>(), format!("{prefix}{}", m.to).parse::<InstanceAddr>()) {
                    (Ok(f), Ok(t)) => (f, t),
                    (Err(e), _) | (_, Err(e)) => {
                        diags.push(Diag::error(format!("Invalid moved block: {e}")).at(m.location.clone()));
                        continue;
                    }
                };
            if from.resource.rtype != to.resource.rtype {
                diags.push(Diag::error("moved cannot change the resource type").at(m.location.clone()));
                continue;
            }
            let result = move_instances(state, &from, &to);
            for problem in result.problems {
                if let MoveProblem::DestinationExists { src, dst } = problem {
                    diags.push(Diag::error(format!("Cannot move {src} to {dst}: {dst} already exists in state")).at(m.location.clone()));
                }
            }
            for (src, dst) in result.moved {
                notes.push(format!("{src} has moved to {dst}"));
                moved_all.push((src, dst));
            }
        }
    }
    diags.into_result().map(|_| moved_all)
}

impl super::Planner {
    /// The relabel steps of the instances `moved` blocks moved: sent now
    /// where the provider can (EC2 tags, Kubernetes annotations), else a
    /// note that the label follows at the next recreate (Docker's are
    /// immutable; refresh still finds the object by its old label).
    pub(super) fn relabel_steps(&mut self, moved: Vec<(InstanceAddr, InstanceAddr)>) -> Vec<String> {
        let mut steps = Vec::new();
        for (from, to) in moved {
            let Some(provider) = self.registry.resource_type(&to.resource.rtype).and_then(|(p, _)| self.registry.provider(p)) else {
                continue;
            };
            match provider.relabel_step(&to.resource.rtype) {
                Some(how) => {
                    steps.push(format!("relabel {from} as {to} ({how})"));
                    self.relabels.push((from, to));
                }
                None if provider.adopts_by_identity(&to.resource.rtype) => {
                    self.notes
                        .push(format!("{to}: its objects keep the label {from} until they are next recreated (labels cannot change)"));
                }
                None => {}
            }
        }
        steps
    }
}
