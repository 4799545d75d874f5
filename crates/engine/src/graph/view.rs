//! Drawings of the dependency graph (`himaplan graph`): the configuration's
//! resources and what each depends on, or a plan's apply order with its
//! rollout batches; rendered as Graphviz DOT or a Mermaid flowchart. An
//! arrow points from what goes first to what waits for it. Deterministic:
//! nodes in address order, edges sorted. No I/O.

use super::{ConfigGraph, Node};
use crate::config::Config;
use crate::plan::batch::ApplyBatch;
use crate::plan::{Action, Plan, ResourceChange};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Nodes, optional clusters (modules, rollout batches) and edges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub nodes: Vec<ViewNode>,
    pub clusters: Vec<String>,
    /// `(from, to)` indexes into `nodes`: `from` goes first.
    pub edges: BTreeSet<(usize, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewNode {
    pub label: String,
    /// Index into `clusters`.
    pub cluster: Option<usize>,
}

impl View {
    fn node(&mut self, label: String, cluster: Option<usize>) -> usize {
        self.nodes.push(ViewNode { label, cluster });
        self.nodes.len() - 1
    }

    fn edge(&mut self, from: usize, to: usize) {
        if from != to {
            self.edges.insert((from, to));
        }
    }
}

/// The configuration's resources (one node per resource block, in a
/// cluster per module) and their dependencies, through locals, variables,
/// module inputs and outputs alike.
pub fn of_config(config: &Config, graph: &ConfigGraph) -> View {
    let mut view = View::default();
    let mut resources: Vec<_> = config.resources().map(|r| r.addr.clone()).collect();
    resources.sort();
    let mut clusters: BTreeMap<String, usize> = BTreeMap::new();
    let mut index = BTreeMap::new();
    for addr in &resources {
        let cluster = (!addr.module.is_root()).then(|| {
            let name = addr.module.to_string();
            let next = view.clusters.len();
            *clusters.entry(name.clone()).or_insert_with(|| {
                view.clusters.push(name);
                next
            })
        });
        index.insert(addr.clone(), view.node(addr.to_string(), cluster));
    }
    for addr in &resources {
        for dep in graph.resource_deps(&Node::Resource(addr.clone())) {
            if let (Some(&from), Some(&to)) = (index.get(&dep), index.get(addr)) {
                view.edge(from, to);
            }
        }
    }
    view
}

/// The first and last node of one change: its create/update (for an
/// object rolled piece by piece, its first and last piece) and its delete.
#[derive(Default, Clone, Copy)]
struct Ends {
    up: Option<(usize, usize)>,
    down: Option<usize>,
}

/// A plan's apply order: one node per action (a replacement is two: its
/// delete and its create, in the order it runs), each rollout batch a
/// cluster of drain → disrupt → gate → restore, batch after batch, and the
/// order between resources that apply follows (dependencies are created
/// and updated first, destroyed last; a scale-down goes after what lists
/// the removed members).
pub fn of_plan(plan: &Plan, batches: &[ApplyBatch]) -> View {
    let mut view = View::default();
    let mut ends: BTreeMap<usize, Ends> = BTreeMap::new();
    let position: BTreeMap<&crate::addr::InstanceAddr, usize> =
        plan.changes.iter().enumerate().filter(|(_, c)| !c.is_duplicate_delete()).map(|(i, c)| (&c.addr, i)).collect();
    // Batches first, so that their members' nodes sit in them.
    let mut in_batch: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut previous: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut restores_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for b in batches {
        let cluster = view.clusters.len();
        view.clusters.push(format!("{} batch {}/{} (max_unavailable = {})", b.sequence, b.number, b.of, b.max_unavailable));
        let drains: Vec<usize> = b.drains.iter().map(|l| view.node(format!("drain from {l}"), Some(cluster))).collect();
        let mut members = Vec::new();
        for m in &b.members {
            let Some(&ci) = position.get(m) else { continue };
            let label = if b.parts.is_empty() {
                change_label(&plan.changes[ci])
            } else {
                format!("~ {m}: {} ({})", b.parts.join(", "), b.disruption)
            };
            let n = view.node(label, Some(cluster));
            in_batch.entry(ci).or_default().push(n);
            members.push((m, n));
        }
        let gates: Vec<usize> = b
            .gates
            .iter()
            .map(|(member, target)| {
                let g = view.node(format!("health gate {target}"), Some(cluster));
                for (_, n) in members.iter().filter(|(m, _)| *m == member) {
                    view.edge(*n, g);
                }
                g
            })
            .collect();
        let restores: Vec<usize> = b.drains.iter().map(|l| view.node(format!("restore {l}"), Some(cluster))).collect();
        let firsts: Vec<usize> = if drains.is_empty() { members.iter().map(|(_, n)| *n).collect() } else { drains.clone() };
        for p in previous.remove(b.sequence.as_str()).unwrap_or_default() {
            for &f in &firsts {
                view.edge(p, f);
            }
        }
        for &d in &drains {
            for (_, n) in &members {
                view.edge(d, *n);
            }
        }
        let mut end: Vec<usize> = members.iter().map(|(_, n)| *n).chain(gates.iter().copied()).collect();
        for (&r, l) in restores.iter().zip(&b.drains) {
            for &e in &end {
                view.edge(e, r);
            }
            if let Some(&li) = position.get(l) {
                restores_of.entry(li).or_default().push(r);
            }
        }
        end.extend(restores);
        previous.insert(b.sequence.as_str(), end);
    }
    for (ci, c) in plan.changes.iter().enumerate() {
        let mut e = Ends::default();
        let single = |view: &mut View| view.node(change_label(c), None);
        match c.action {
            Action::NoOp => continue,
            Action::Create | Action::Update => {
                e.up = Some(match in_batch.get(&ci) {
                    Some(nodes) => (nodes[0], nodes[nodes.len() - 1]),
                    None => {
                        let n = single(&mut view);
                        (n, n)
                    }
                });
            }
            Action::Delete => e.down = Some(single(&mut view)),
            Action::DeleteThenCreate | Action::CreateThenDelete => {
                let d = view.node(format!("- {}", c.addr), None);
                let u = view.node(format!("+ {} (replacement)", c.addr), None);
                if c.action == Action::DeleteThenCreate {
                    view.edge(d, u)
                } else {
                    view.edge(u, d)
                }
                e.up = Some((u, u));
                e.down = Some(d);
            }
        }
        if let (Some((u, _)), Some(rs)) = (e.up, restores_of.get(&ci)) {
            for &r in rs {
                view.edge(r, u);
            }
        }
        ends.insert(ci, e);
    }
    dependency_edges(&mut view, &plan.changes, &ends);
    view
}

/// The order between resources, as apply's step graph has it.
fn dependency_edges(view: &mut View, changes: &[ResourceChange], ends: &BTreeMap<usize, Ends>) {
    let mut by_resource: BTreeMap<&crate::addr::ResourceAddr, Vec<usize>> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate().filter(|(_, c)| !c.is_duplicate_delete()) {
        by_resource.entry(&c.addr.resource).or_default().push(i);
    }
    for (ci, c) in changes.iter().enumerate() {
        let Some(&ce) = ends.get(&ci) else { continue };
        let deps: BTreeSet<&crate::addr::ResourceAddr> =
            c.depends_on.iter().map(|a| &a.resource).filter(|r| **r != c.addr.resource).collect();
        for r in deps {
            for &yi in by_resource.get(r).map(Vec::as_slice).unwrap_or(&[]) {
                let y = &changes[yi];
                let Some(&ye) = ends.get(&yi) else { continue };
                if let (Some((cu, cl)), Some((yu, yl))) = (ce.up, ye.up) {
                    if c.action != Action::Update || !y.shrinks {
                        view.edge(yl, cu);
                    }
                    if c.action == Action::Update && y.shrinks {
                        view.edge(cl, yu);
                    }
                }
                if let (Some((_, cl)), Some(yd), Action::Update) = (ce.up, ye.down, c.action)
                    && y.action != Action::DeleteThenCreate
                {
                    view.edge(cl, yd);
                }
                if let (Some(cd), Some(yd)) = (ce.down, ye.down) {
                    view.edge(cd, yd);
                }
            }
        }
    }
}

fn change_label(c: &ResourceChange) -> String {
    match &c.disruption {
        Some(d) if c.action == Action::Update => format!("~ {} ({d})", c.addr),
        _ => format!("{} {}", c.action.symbol(), c.addr),
    }
}

/// Graphviz DOT: `digraph`, one `subgraph cluster_N` per cluster.
pub fn to_dot(view: &View) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut s = String::from("digraph himaplan {\n  rankdir = LR;\n  node [shape = box];\n");
    for (ci, label) in view.clusters.iter().enumerate() {
        let _ = writeln!(s, "  subgraph cluster_{ci} {{\n    label = {};", quote(label));
        for (i, n) in view.nodes.iter().enumerate().filter(|(_, n)| n.cluster == Some(ci)) {
            let _ = writeln!(s, "    n{i} [label = {}];", quote(&n.label));
        }
        s.push_str("  }\n");
    }
    for (i, n) in view.nodes.iter().enumerate().filter(|(_, n)| n.cluster.is_none()) {
        let _ = writeln!(s, "  n{i} [label = {}];", quote(&n.label));
    }
    for (a, b) in &view.edges {
        let _ = writeln!(s, "  n{a} -> n{b};");
    }
    s.push_str("}\n");
    s
}

/// A Mermaid flowchart (renders in GitHub comments and markdown files).
pub fn to_mermaid(view: &View) -> String {
    // Mermaid's entity codes keep quotes and brackets inside a label.
    let label = |s: &str| format!("\"{}\"", s.replace('"', "#quot;"));
    let mut s = String::from("flowchart LR\n");
    for (ci, name) in view.clusters.iter().enumerate() {
        let _ = writeln!(s, "  subgraph c{ci}[{}]", label(name));
        for (i, n) in view.nodes.iter().enumerate().filter(|(_, n)| n.cluster == Some(ci)) {
            let _ = writeln!(s, "    n{i}[{}]", label(&n.label));
        }
        s.push_str("  end\n");
    }
    for (i, n) in view.nodes.iter().enumerate().filter(|(_, n)| n.cluster.is_none()) {
        let _ = writeln!(s, "  n{i}[{}]", label(&n.label));
    }
    for (a, b) in &view.edges {
        let _ = writeln!(s, "  n{a} --> n{b}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::InstanceAddr;

    fn addr(text: &str) -> InstanceAddr {
        text.parse().expect("test addresses are valid")
    }

    fn change(address: &str, action: Action, disruption: Option<&str>, depends_on: &[&str]) -> ResourceChange {
        let addr = addr(address);
        ResourceChange {
            rtype: addr.resource.rtype.clone(),
            provider: addr.resource.rtype.split('_').next().unwrap_or_default().to_string(),
            addr,
            action,
            before: Some(serde_json::json!({})),
            after: Some(serde_json::json!({})),
            after_unknown: serde_json::json!({}),
            replace_paths: Vec::new(),
            reason: None,
            disruption: disruption.map(str::to_string),
            notes: Vec::new(),
            depends_on: depends_on.iter().map(|a| addr_of(a)).collect(),
            fingerprint: "fp".to_string(),
            shrinks: false,
        }
    }

    fn addr_of(text: &str) -> InstanceAddr {
        addr(text)
    }

    fn batch(n: usize, member: &str) -> ApplyBatch {
        ApplyBatch {
            sequence: "aws_instance.web".into(),
            number: n,
            of: 2,
            max_unavailable: 1,
            disruption: "stop/start".into(),
            members: vec![addr(member)],
            parts: vec![],
            drains: vec![addr("nginx_upstream.web")],
            gates: vec![(addr(member), member.to_string())],
        }
    }

    fn edges(view: &View) -> BTreeSet<(String, String)> {
        view.edges.iter().map(|(a, b)| (view.nodes[*a].label.clone(), view.nodes[*b].label.clone())).collect()
    }

    #[test]
    fn a_resize_draws_each_batch_as_drain_disrupt_gate_restore_one_after_the_other() {
        // Two instances resized one at a time, each drained from the upstream that lists them and gated: two
        // clusters, batch 2 after batch 1's restore, the upstream's own update after both restores.
        let plan = Plan {
            changes: vec![
                change("aws_instance.web[0]", Action::Update, Some("stop/start"), &[]),
                change("aws_instance.web[1]", Action::Update, Some("stop/start"), &[]),
                change("nginx_upstream.web", Action::Update, None, &["aws_instance.web"]),
            ],
            ..Plan::default()
        };
        let view = of_plan(&plan, &[batch(1, "aws_instance.web[0]"), batch(2, "aws_instance.web[1]")]);
        assert_eq!(view.clusters, ["aws_instance.web batch 1/2 (max_unavailable = 1)", "aws_instance.web batch 2/2 (max_unavailable = 1)"]);
        assert_eq!(view.nodes.len(), 9);
        let e = |a: &str, b: &str| (a.to_string(), b.to_string());
        let (m0, m1, lb) = ("~ aws_instance.web[0] (stop/start)", "~ aws_instance.web[1] (stop/start)", "~ nginx_upstream.web");
        let (g0, g1) = ("health gate aws_instance.web[0]", "health gate aws_instance.web[1]");
        let (drain, restore) = ("drain from nginx_upstream.web", "restore nginx_upstream.web");
        // Labels repeat across batches (drain/restore): compare with the batch's cluster.
        let in_cluster = |label: &str, c: usize| view.nodes.iter().any(|n| n.label == label && n.cluster == Some(c));
        assert!(in_cluster(drain, 0) && in_cluster(m0, 0) && in_cluster(g0, 0) && in_cluster(restore, 0));
        assert!(in_cluster(drain, 1) && in_cluster(m1, 1) && in_cluster(g1, 1) && in_cluster(restore, 1));
        let want: BTreeSet<(String, String)> = [
            e(drain, m0),
            e(m0, g0),
            e(m0, restore),
            e(g0, restore),
            // Batch 2 starts after the whole of batch 1 (its member, gate and restore).
            e(restore, drain),
            e(m0, drain),
            e(g0, drain),
            e(drain, m1),
            e(m1, g1),
            e(m1, restore),
            e(g1, restore),
            e(restore, lb),
            e(m0, lb),
            e(m1, lb),
        ]
        .into_iter()
        .collect();
        assert_eq!(edges(&view), want);
        assert_eq!(view.edges.len(), 15, "the two restores each precede the upstream's update");
        let dot = to_dot(&view);
        assert_eq!(dot.matches("subgraph cluster_").count(), 2);
        assert_eq!(to_mermaid(&view).matches(" --> ").count(), 15);
    }

    #[test]
    fn a_replacement_is_two_nodes_in_its_order_and_a_destroy_waits_for_its_dependents() {
        // -/+ web: delete then create; the deleted db goes after the deleted app that depended on it.
        let plan = Plan {
            changes: vec![
                change("aws_instance.web", Action::DeleteThenCreate, None, &[]),
                change("himaplan_data.app", Action::Delete, None, &["himaplan_data.db"]),
                change("himaplan_data.db", Action::Delete, None, &[]),
            ],
            ..Plan::default()
        };
        let view = of_plan(&plan, &[]);
        let e = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            edges(&view),
            [e("- aws_instance.web", "+ aws_instance.web (replacement)"), e("- himaplan_data.app", "- himaplan_data.db")]
                .into_iter()
                .collect()
        );
    }
}
