//! The configuration's dependency graph (petgraph): one node per variable,
//! local, output, provider block and resource block of every module; an
//! edge from each thing to what refers to it. Building it checks every
//! reference and reports cycles with the file and line of each member.
//! No I/O; evaluation order for plan is a topological order of this graph.

use crate::addr::{ModulePath, ResourceAddr};
use crate::config::Config;
use crate::config::refs::{self, Reference, Target};
use crate::diag::{Diag, Diags, Location};
use indexmap::IndexSet;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{BTreeSet, HashSet};
use std::fmt;

pub mod view;

/// A named thing of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    Var(ModulePath, String),
    Local(ModulePath, String),
    Output(ModulePath, String),
    Provider(String),
    Resource(ResourceAddr),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = |m: &ModulePath| if m.is_root() { String::new() } else { format!("{m}.") };
        match self {
            Node::Var(m, n) => write!(f, "{}var.{n}", prefix(m)),
            Node::Local(m, n) => write!(f, "{}local.{n}", prefix(m)),
            Node::Output(m, n) => write!(f, "{}output.{n}", prefix(m)),
            Node::Provider(n) => write!(f, "provider.{n}"),
            Node::Resource(r) => write!(f, "{r}"),
        }
    }
}

/// The dependency graph and an evaluation order.
///
/// Each node is held once: `nodes` owns it, and its position there is its
/// index in `edges` and in `order` (a configuration has thousands).
#[derive(Debug)]
pub struct ConfigGraph {
    /// An edge's weight says whether the dependent reads the value of what
    /// it depends on; `false` when it is only ordered after it (`depends_on`).
    edges: DiGraph<(), bool>,
    nodes: IndexSet<Node>,
    /// Every node, dependencies first.
    order: Vec<NodeIndex>,
}

impl ConfigGraph {
    /// Every node, dependencies first.
    pub fn order(&self) -> impl Iterator<Item = &Node> {
        self.order.iter().map(|&i| &self.nodes[i.index()])
    }

    /// What `node` refers to directly (nothing for a node not in the graph).
    pub fn direct_deps<'a>(&'a self, node: &Node) -> impl Iterator<Item = &'a Node> {
        let start = self.nodes.get_index_of(node).map(NodeIndex::new);
        start.into_iter().flat_map(|i| self.edges.neighbors_directed(i, petgraph::Direction::Incoming)).map(|d| &self.nodes[d.index()])
    }

    /// Whether anything reads `node`'s value (a reference that is not only
    /// a `depends_on` entry); `true` for a node not in the graph.
    pub fn value_is_read(&self, node: &Node) -> bool {
        self.nodes
            .get_index_of(node)
            .is_none_or(|i| self.edges.edges_directed(NodeIndex::new(i), petgraph::Direction::Outgoing).any(|e| *e.weight()))
    }

    /// The nodes `node` depends on transitively, `through` deciding whether
    /// the walk goes on past each one it reaches.
    fn reach(&self, node: &Node, through: impl Fn(&Node) -> bool) -> HashSet<NodeIndex> {
        let mut seen = HashSet::new();
        let Some(start) = self.nodes.get_index_of(node) else { return seen };
        let mut stack = vec![NodeIndex::new(start)];
        while let Some(n) = stack.pop() {
            for dep in self.edges.neighbors_directed(n, petgraph::Direction::Incoming) {
                if seen.insert(dep) && through(&self.nodes[dep.index()]) {
                    stack.push(dep);
                }
            }
        }
        seen
    }

    /// The resources a node depends on directly or through locals,
    /// variables and outputs (not through other resources).
    pub fn resource_deps(&self, node: &Node) -> BTreeSet<ResourceAddr> {
        self.reach(node, |n| !matches!(n, Node::Resource(_)))
            .into_iter()
            .filter_map(|i| match &self.nodes[i.index()] {
                Node::Resource(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// Nodes the given node needs evaluated first, transitively, in
    /// evaluation order (used to re-evaluate one resource during apply).
    pub fn ancestors(&self, node: &Node) -> Vec<Node> {
        let seen = self.reach(node, |_| true);
        self.order.iter().filter(|i| seen.contains(i)).map(|i| self.nodes[i.index()].clone()).collect()
    }
}

/// Builds the graph, checking references; all problems are reported at once.
pub fn build(config: &Config) -> Result<ConfigGraph, Diags> {
    let mut b = Builder { edges: DiGraph::new(), nodes: IndexSet::new(), locations: Vec::new(), diags: Diags::new() };
    for (path, module) in &config.modules {
        for (name, v) in &module.variables {
            b.add(Node::Var(path.clone(), name.clone()), &v.location);
        }
        for (name, l) in &module.locals {
            b.add(Node::Local(path.clone(), name.clone()), &l.location);
        }
        for (name, o) in &module.outputs {
            b.add(Node::Output(path.clone(), name.clone()), &o.location);
        }
        for r in module.resources.values() {
            b.add(Node::Resource(r.addr.clone()), &r.location);
        }
    }
    for (name, p) in &config.providers {
        b.add(Node::Provider(name.clone()), &p.location);
    }
    for (path, module) in &config.modules {
        for (name, l) in &module.locals {
            let refs = refs::of_expr(&l.value);
            b.connect(config, path, &Node::Local(path.clone(), name.clone()), refs, Context::Plain, true);
        }
        for (name, o) in &module.outputs {
            let refs = refs::of_expr(&o.value);
            b.connect(config, path, &Node::Output(path.clone(), name.clone()), refs, Context::Plain, true);
        }
        for r in module.resources.values() {
            let body = r.body.body();
            let refs = refs::of_body(&body, &r.body.file, &["lifecycle", "depends_on"]);
            let order_only = refs::of_attribute(&body, &r.body.file, "depends_on");
            let ctx = match (&r.count, &r.for_each) {
                (Some(_), _) => Context::Count,
                (_, Some(_)) => Context::ForEach,
                _ => Context::Plain,
            };
            let node = Node::Resource(r.addr.clone());
            b.connect(config, path, &node, refs, ctx, true);
            b.connect(config, path, &node, order_only, ctx, false);
            // count and for_each may not use count/each themselves.
            for (e, what) in [(&r.count, "count"), (&r.for_each, "for_each")] {
                if let Some(e) = e {
                    for reference in refs::of_expr(e) {
                        if matches!(reference.target, Target::CountIndex | Target::Each) {
                            b.diags.push(Diag::error(format!("{what} cannot refer to count or each")).at(reference.location));
                        }
                    }
                }
            }
        }
        // Module inputs are the child's variables, evaluated here.
        for call in module.calls.values() {
            let child = path.child(&call.name);
            let Some(child_module) = config.modules.get(&child) else { continue };
            for (input, expr) in &call.inputs {
                if !child_module.variables.contains_key(input) {
                    b.diags.push(Diag::error(format!("Module {:?} has no input variable {input:?}", call.name)).at(expr.location()));
                    continue;
                }
                let node = Node::Var(child.clone(), input.clone());
                let mut refs = refs::of_expr(expr);
                refs.extend(call.depends_on.iter().flat_map(refs::of_expr));
                b.connect(config, path, &node, refs, Context::Plain, true);
            }
        }
    }
    for (name, p) in &config.providers {
        let refs = refs::of_body(&p.body.body(), &p.body.file, &[]);
        b.connect(config, &ModulePath::root(), &Node::Provider(name.clone()), refs, Context::Plain, true);
    }
    b.finish()
}

#[derive(Clone, Copy, PartialEq)]
enum Context {
    Plain,
    Count,
    ForEach,
}

/// `nodes`, `edges` and `locations` grow together: a node's position in
/// `nodes` is its index in the other two.
struct Builder<'c> {
    edges: DiGraph<(), bool>,
    nodes: IndexSet<Node>,
    locations: Vec<&'c Location>,
    diags: Diags,
}

impl<'c> Builder<'c> {
    fn add(&mut self, node: Node, location: &'c Location) {
        if self.nodes.insert(node) {
            self.edges.add_node(());
            self.locations.push(location);
        }
    }

    /// `to` depends on `from`; `reads`: it reads `from`'s value.
    fn edge(&mut self, from: &Node, to: &Node, reads: bool) {
        if let (Some(a), Some(b)) = (self.nodes.get_index_of(from), self.nodes.get_index_of(to)) {
            let (a, b) = (NodeIndex::new(a), NodeIndex::new(b));
            match self.edges.find_edge(a, b) {
                Some(e) => self.edges[e] |= reads,
                None => {
                    self.edges.add_edge(a, b, reads);
                }
            }
        }
    }

    fn connect(&mut self, config: &Config, module: &ModulePath, node: &Node, refs: Vec<Reference>, ctx: Context, reads: bool) {
        let m = &config.modules[module];
        for Reference { target, location } in refs {
            let dep = match target {
                Target::Var(n) if m.variables.contains_key(&n) => Node::Var(module.clone(), n),
                Target::Var(n) => {
                    self.undeclared(location, format!("input variable {n:?}"), "Declare it with a variable block.");
                    continue;
                }
                Target::Local(n) if m.locals.contains_key(&n) => Node::Local(module.clone(), n),
                Target::Local(n) => {
                    self.undeclared(location, format!("local value {n:?}"), "Declare it in a locals block.");
                    continue;
                }
                Target::Resource(t, n) if m.resources.contains(&t, &n) => Node::Resource(ResourceAddr::new(module.clone(), &t, &n)),
                Target::Resource(t, n) => {
                    self.undeclared(location, format!("resource {t}.{n}"), "Declare it with a resource block in this module.");
                    continue;
                }
                Target::Module(c, out) => {
                    let child = module.child(&c);
                    let Some(child_module) = config.modules.get(&child) else {
                        self.undeclared(location, format!("module {c:?}"), "Declare it with a module block.");
                        continue;
                    };
                    match out {
                        Some(o) if child_module.outputs.contains_key(&o) => Node::Output(child, o),
                        Some(o) => {
                            self.undeclared(location, format!("output {o:?} of module {c:?}"), "The module declares no such output.");
                            continue;
                        }
                        None => {
                            for o in child_module.outputs.keys() {
                                self.edge(&Node::Output(child.clone(), o.clone()), node, reads);
                            }
                            continue;
                        }
                    }
                }
                Target::CountIndex => {
                    if ctx != Context::Count {
                        self.diags.push(Diag::error("count.index is only available in a resource with count").at(location));
                    }
                    continue;
                }
                Target::Each => {
                    if ctx != Context::ForEach {
                        self.diags.push(Diag::error("each.key and each.value are only available in a resource with for_each").at(location));
                    }
                    continue;
                }
                // The member a health check gates: bound when it is evaluated.
                Target::Path | Target::GateTarget => continue,
                Target::Unknown(n) => {
                    self.diags.push(Diag::error(format!("Unknown reference {n:?}")).at(location).with_detail(
                        "References are var.NAME, local.NAME, module.NAME.OUTPUT, TYPE.NAME, count.index, each.key or each.value.",
                    ));
                    continue;
                }
            };
            if &dep == node {
                self.diags.push(Diag::error(format!("{node} refers to itself")).at(location));
                continue;
            }
            self.edge(&dep, node, reads);
        }
        if let Node::Resource(r) = node {
            let provider = r.rtype.split('_').next().unwrap_or_default().to_string();
            if config.providers.contains_key(&provider) {
                self.edge(&Node::Provider(provider), node, true);
            }
        }
    }

    fn undeclared(&mut self, location: Location, what: String, hint: &str) {
        self.diags.push(Diag::error(format!("Reference to undeclared {what}")).at(location).with_detail(hint));
    }

    fn finish(mut self) -> Result<ConfigGraph, Diags> {
        if self.diags.has_errors() {
            return Err(self.diags);
        }
        match toposort(&self.edges, None) {
            Ok(order) => Ok(ConfigGraph { edges: self.edges, nodes: self.nodes, order }),
            Err(_) => {
                for scc in tarjan_scc(&self.edges) {
                    if scc.len() < 2 {
                        continue;
                    }
                    let mut members: Vec<(String, Location)> =
                        scc.iter().map(|i| (self.nodes[i.index()].to_string(), self.locations[i.index()].clone())).collect();
                    members.sort_by(|a, b| a.0.cmp(&b.0));
                    let list: Vec<String> = members.iter().map(|(n, l)| format!("{n} ({}:{})", l.path.display(), l.line)).collect();
                    self.diags.push(
                        Diag::error(format!("Dependency cycle: {}", members.iter().map(|m| m.0.as_str()).collect::<Vec<_>>().join(" -> ")))
                            .at(members[0].1.clone())
                            .with_detail(format!(
                                "These refer to each other, so none can be evaluated first:\n{}\nBreak the cycle by removing one reference.",
                                list.join("\n")
                            )),
                    );
                }
                Err(self.diags)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Node, build};
    use crate::addr::ResourceAddr;
    use crate::config::load::load_snapshot;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn graph_of(text: &str) -> super::ConfigGraph {
        let sources = BTreeMap::from([(".".to_string(), vec![("main.hcl".to_string(), text.to_string())])]);
        let config = load_snapshot(Path::new("."), &sources, Default::default()).expect("loads");
        build(&config).expect("builds")
    }

    fn resource(name: &str) -> Node {
        Node::Resource(ResourceAddr::new(Default::default(), "himaplan_data", name))
    }

    #[test]
    fn a_depends_on_entry_orders_without_reading_the_value() {
        // b is named only by a's depends_on, c by d's input: only c's value is read, yet both go first.
        let g = graph_of(
            r#"
resource "himaplan_data" "b" {}
resource "himaplan_data" "a" {
  depends_on = [himaplan_data.b]
}
resource "himaplan_data" "c" {}
resource "himaplan_data" "d" {
  input      = himaplan_data.c.id
  depends_on = [himaplan_data.c]
}
"#,
        );
        assert!(!g.value_is_read(&resource("b")), "depends_on alone reads nothing");
        assert!(g.value_is_read(&resource("c")), "a reference reads the value, with or without depends_on beside it");
        assert!(!g.value_is_read(&resource("a")) && !g.value_is_read(&resource("d")));
        let order: Vec<&Node> = g.order().collect();
        let at = |n: &Node| order.iter().position(|o| *o == n).expect("in the order");
        assert!(at(&resource("b")) < at(&resource("a")) && at(&resource("c")) < at(&resource("d")));
        assert_eq!(g.direct_deps(&resource("a")).collect::<Vec<_>>(), vec![&resource("b")]);
    }

    #[test]
    fn each_node_is_found_by_value_and_listed_once() {
        // The graph holds each node once: every node of the order is distinct and its dependencies are found through it.
        let g = graph_of(
            r#"
variable "v" {
  default = "x"
}
locals {
  l = var.v
}
resource "himaplan_data" "a" {
  input = local.l
}
output "o" {
  value = himaplan_data.a.id
}
"#,
        );
        let order: Vec<String> = g.order().map(ToString::to_string).collect();
        assert_eq!(order, ["var.v", "local.l", "himaplan_data.a", "output.o"]);
        assert!(g.resource_deps(&Node::Output(Default::default(), "o".into())).contains(&ResourceAddr::new(
            Default::default(),
            "himaplan_data",
            "a"
        )));
        assert_eq!(g.ancestors(&resource("a")).len(), 2);
    }
}
