//! Configuration: the module tree loaded from `*.hcl` files, with every
//! block and expression keeping its file and span.
//!
//! [`load`] parses (hcl-edit, so spans and comments survive), [`eval`]
//! evaluates expressions with unknown values, [`vars`] gathers variable
//! values, [`funcs`] are the built-in functions and [`fmt`] is `himaplan fmt`;
//! [`policy`] holds `scaling_policy` blocks and [`varfile`] edits variables files.
//! Nothing here talks to the network; only `load` and `vars` read files.

pub mod budget;
pub mod eval;
pub mod fmt;
pub mod funcs;
pub mod inputs;
pub mod load;
pub mod policy;
pub mod refs;
pub mod varfile;
pub mod vars;

use crate::addr::{ModulePath, ResourceAddr};
use crate::diag::{Location, SourceFile};
use hcl_edit::Span;
use hcl_edit::expr::Expression;
use hcl_edit::structure::Body;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An expression with the file it came from, for diagnostics.
#[derive(Debug, Clone)]
pub struct Expr {
    pub expr: Expression,
    pub file: Arc<SourceFile>,
}

impl Expr {
    pub fn location(&self) -> Location {
        Location::in_file(&self.file, self.expr.span().unwrap_or(0..0))
    }
}

/// A block body with its file: resource bodies are evaluated against the
/// provider's schema, so they are kept as syntax, or as the text of the
/// one block their file part holds, parsed again when asked (a
/// configuration of 10,000 blocks keeps their text, not 10,000 trees).
#[derive(Debug, Clone)]
pub struct BodyRef {
    pub file: Arc<SourceFile>,
    syntax: Syntax,
}

#[derive(Debug, Clone)]
enum Syntax {
    Kept(Arc<Body>),
    /// The body of the lone block of `file` (a part of a source file).
    LoneBlock,
}

thread_local! {
    /// The body [`BodyRef::body`] parsed last on this thread, with its
    /// file (held, so the pointer cannot name another file): a resource's
    /// instances are evaluated one after another, so each block is parsed
    /// about once per walk.
    static LAST_PARSED: std::cell::RefCell<Option<(Arc<SourceFile>, Arc<Body>)>> = const { std::cell::RefCell::new(None) };
}

impl BodyRef {
    /// A body kept as parsed.
    pub fn kept(body: Body, file: &Arc<SourceFile>) -> BodyRef {
        BodyRef { file: file.clone(), syntax: Syntax::Kept(Arc::new(body)) }
    }

    /// The body of the one block `file` holds, kept as its text.
    pub fn of_lone_block(file: &Arc<SourceFile>) -> BodyRef {
        BodyRef { file: file.clone(), syntax: Syntax::LoneBlock }
    }

    /// The body's syntax; spans are offsets into `file`'s text.
    pub fn body(&self) -> Arc<Body> {
        match &self.syntax {
            Syntax::Kept(body) => body.clone(),
            Syntax::LoneBlock => LAST_PARSED.with_borrow_mut(|last| match last {
                Some((file, body)) if Arc::ptr_eq(file, &self.file) => body.clone(),
                _ => {
                    let body = Arc::new(lone_block_body(&self.file.text));
                    *last = Some((self.file.clone(), body.clone()));
                    body
                }
            }),
        }
    }
}

/// The body of the first block of `text`, which the loader parsed once
/// already (so it parses again; an empty body otherwise).
fn lone_block_body(text: &str) -> Body {
    let parsed = hcl_edit::parser::parse_body(text).ok().and_then(|body| body.into_iter().find_map(|s| s.into_block().ok()));
    parsed.map(|block| block.body).unwrap_or_default()
}

/// The whole configuration: the root module and every module it calls.
#[derive(Debug, Clone)]
pub struct Config {
    pub root_dir: PathBuf,
    /// Every source file read, root module first, for plan-file snapshots.
    pub files: Vec<Arc<SourceFile>>,
    pub modules: BTreeMap<ModulePath, Module>,
    pub settings: Settings,
    /// `provider "NAME" { ... }` blocks of the root module.
    pub providers: BTreeMap<String, ProviderBlock>,
    /// What its functions read from outside it (shared by its files).
    pub inputs: Arc<inputs::Inputs>,
}

impl Config {
    pub fn root(&self) -> &Module {
        // The loader always inserts the root module.
        &self.modules[&ModulePath::root()]
    }

    pub fn resource(&self, addr: &ResourceAddr) -> Option<&Resource> {
        self.modules.get(&addr.module)?.resources.get(&addr.rtype, &addr.name)
    }

    /// Every resource block of every module, in address order.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.modules.values().flat_map(|m| m.resources.values())
    }
}

/// The `himaplan { ... }` block.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `state = "state/prod.json"`, relative to the configuration directory.
    pub state_path: Option<String>,
    pub backend: Option<Backend>,
}

/// `backend "s3" { bucket, key, region }`.
#[derive(Debug, Clone)]
pub struct Backend {
    pub kind: String,
    pub attributes: BTreeMap<String, String>,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct ProviderBlock {
    pub name: String,
    pub body: BodyRef,
    pub location: Location,
}

/// A module's resource blocks in (type, name) order, found by binary
/// search: a list rather than a map keyed by copies of the names its
/// blocks already hold (a configuration keeps thousands). Boxed: a
/// `Resource` is large, and moves as the list is sorted.
#[derive(Debug, Clone, Default)]
pub struct Resources(Vec<Box<Resource>>);

impl Resources {
    fn search(&self, rtype: &str, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|r| (r.addr.rtype.as_str(), r.addr.name.as_str()).cmp(&(rtype, name)))
    }

    pub fn get(&self, rtype: &str, name: &str) -> Option<&Resource> {
        self.search(rtype, name).ok().map(|i| self.0[i].as_ref())
    }

    pub fn contains(&self, rtype: &str, name: &str) -> bool {
        self.search(rtype, name).is_ok()
    }

    /// In (type, name) order.
    pub fn values(&self) -> impl Iterator<Item = &Resource> {
        self.0.iter().map(Box::as_ref)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds a block as it is loaded; [`Resources::sort`] must follow
    /// before any lookup.
    pub(crate) fn push(&mut self, resource: Resource) {
        self.0.push(Box::new(resource));
    }

    /// Puts the blocks in order once a module is loaded and returns the
    /// blocks that repeat an earlier block's type and name (dropped; the
    /// earlier one, in load order, stays).
    pub(crate) fn sort(&mut self) -> Vec<Box<Resource>> {
        // Stable: among blocks of one address, load order is kept.
        self.0.sort_by(|a, b| (&a.addr.rtype, &a.addr.name).cmp(&(&b.addr.rtype, &b.addr.name)));
        let mut repeated = Vec::new();
        let mut kept: Vec<Box<Resource>> = Vec::with_capacity(self.0.len());
        for r in self.0.drain(..) {
            match kept.last() {
                Some(last) if last.addr.rtype == r.addr.rtype && last.addr.name == r.addr.name => repeated.push(r),
                _ => kept.push(r),
            }
        }
        self.0 = kept;
        repeated
    }
}

/// One module (the root, or a `module` call's source directory).
#[derive(Debug, Clone, Default)]
pub struct Module {
    pub path: ModulePath,
    pub dir: PathBuf,
    /// The module's source files, in name order.
    pub files: Vec<Arc<SourceFile>>,
    pub variables: BTreeMap<String, Variable>,
    pub locals: BTreeMap<String, Local>,
    pub outputs: BTreeMap<String, Output>,
    pub resources: Resources,
    pub calls: BTreeMap<String, ModuleCall>,
    pub moved: Vec<Moved>,
    pub imports: Vec<ImportBlock>,
    /// `scaling_policy` blocks (root module only), read by `advise` alone.
    pub policies: BTreeMap<String, policy::ScalingPolicy>,
}

#[derive(Debug, Clone)]
pub struct Variable {
    pub name: String,
    pub type_expr: Option<Expr>,
    pub default: Option<Expr>,
    pub description: Option<String>,
    pub sensitive: bool,
    pub validations: Vec<Validation>,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Validation {
    pub condition: Expr,
    pub error_message: Expr,
}

#[derive(Debug, Clone)]
pub struct Local {
    pub name: String,
    pub value: Expr,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub value: Expr,
    pub description: Option<String>,
    pub sensitive: bool,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct ModuleCall {
    pub name: String,
    pub source: String,
    /// Input expressions, evaluated in the calling module.
    pub inputs: BTreeMap<String, Expr>,
    pub depends_on: Vec<Expr>,
    pub location: Location,
}

#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    pub prevent_destroy: bool,
    pub create_before_destroy: bool,
    /// Attribute names whose changes are ignored (`all` ignores everything).
    pub ignore_changes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub addr: ResourceAddr,
    /// The meta-arguments a block rarely has are boxed: a configuration
    /// keeps thousands of resources.
    pub count: Option<Box<Expr>>,
    pub for_each: Option<Box<Expr>>,
    pub lifecycle: Lifecycle,
    /// `rollout { max_unavailable = N | "P%" }`.
    pub max_unavailable: Option<Box<Expr>>,
    /// `rollout { health_check { ... } }`: the gate of each batch.
    pub health_check: Option<Box<HealthCheck>>,
    /// The whole body, meta-arguments included (`depends_on` is read from
    /// it as references; evaluation skips [`crate::engine::world::META`]).
    pub body: BodyRef,
    pub location: Location,
}

/// A `health_check` block as written; evaluated per member (`target`).
#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub body: BodyRef,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct Moved {
    pub from: String,
    pub to: String,
    pub location: Location,
}

#[derive(Debug, Clone)]
pub struct ImportBlock {
    pub to: String,
    pub id: Expr,
    pub location: Location,
}
