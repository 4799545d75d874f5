//! Loading: every `*.hcl` file of a directory (not recursive) forms one
//! module; `module` blocks with a local `source` load their directories as
//! child modules. Structural problems (unknown blocks, duplicates, missing
//! labels, bad meta-arguments) are collected as diagnostics with file and
//! line. Expressions are kept as syntax; nothing is evaluated here except
//! literal settings (descriptions, flags, sources).

use super::*;
use crate::diag::{Diag, Diags};
use crate::value::Value;
use hcl_edit::structure::{Block, Structure};
use inputs::{Inputs, Recorded};
use std::path::Path;

/// Upper bound on how deep module calls nest.
pub const MAX_MODULE_DEPTH: usize = 16;

/// Upper bound on the modules of one configuration, the root included: a
/// module calling its own directory twice doubles at every level, so depth
/// alone does not bound the tree.
pub const MAX_MODULES: usize = 1000;

/// Upper bound on the size of one configuration or variables file.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Loads the configuration rooted at `dir`. Files are read in name order
/// so diagnostics and snapshots are deterministic.
pub fn load_dir(dir: &Path) -> Result<Config, Diags> {
    let inputs = Arc::new(Inputs::recording());
    let files = read_hcl_files(dir, &inputs)?;
    load_sources(dir, files, inputs.clone(), &mut |child_dir| read_hcl_files(child_dir, &inputs))
}

/// Loads a configuration from in-memory sources (a plan file's snapshot):
/// `sources` maps a directory, relative to the root, to its files; its
/// functions answer from `record` (what the plan read), never the disk.
pub fn load_snapshot(root_dir: &Path, sources: &BTreeMap<String, Vec<(String, String)>>, record: Recorded) -> Result<Config, Diags> {
    let inputs = Arc::new(Inputs::replaying(record));
    let to_files = |rel: &str| -> Vec<Arc<SourceFile>> {
        sources
            .get(rel)
            .map(|files| {
                files.iter().map(|(name, text)| SourceFile::with_inputs(PathBuf::from(name), text.clone(), inputs.clone())).collect()
            })
            .unwrap_or_default()
    };
    let root_files = to_files(".");
    load_sources(root_dir, root_files, inputs.clone(), &mut |child_dir| {
        let files = to_files(&module_key(root_dir, child_dir));
        if files.is_empty() {
            Err(Diag::error(format!("module directory {} is not in the plan file's snapshot", child_dir.display())).into())
        } else {
            Ok(files)
        }
    })
}

/// The key of a module directory in a plan file's snapshot: its path
/// relative to the root directory, `.` for the root itself.
pub fn module_key(root_dir: &Path, dir: &Path) -> String {
    match dir.strip_prefix(root_dir) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.to_string_lossy().to_string(),
        Err(_) => dir.to_string_lossy().to_string(),
    }
}

/// Reads the `*.hcl` files of one directory, sorted by name.
pub fn read_hcl_files(dir: &Path, inputs: &Arc<Inputs>) -> Result<Vec<Arc<SourceFile>>, Diags> {
    let entries = std::fs::read_dir(dir).map_err(|e| Diag::error(format!("cannot read configuration directory {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "hcl")).collect();
    paths.sort();
    let mut files = Vec::new();
    let mut diags = Diags::new();
    for path in paths {
        match crate::files::read_text(&path, MAX_CONFIG_FILE_BYTES) {
            Ok(text) => files.push(SourceFile::with_inputs(display_path(&path), text, inputs.clone())),
            Err(e) => diags.push(Diag::error(format!("cannot read {}: {e}", path.display()))),
        }
    }
    if diags.has_errors() { Err(diags) } else { Ok(files) }
}

/// A path as users should see it: relative to the working directory when
/// it is below it.
pub fn display_path(path: &Path) -> PathBuf {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    shown.strip_prefix(".").map(Path::to_path_buf).unwrap_or(shown)
}

type ReadDir<'a> = dyn FnMut(&Path) -> Result<Vec<Arc<SourceFile>>, Diags> + 'a;

fn load_sources(dir: &Path, root_files: Vec<Arc<SourceFile>>, inputs: Arc<Inputs>, read: &mut ReadDir<'_>) -> Result<Config, Diags> {
    let mut loader = Loader {
        config: Config {
            root_dir: dir.to_path_buf(),
            files: Vec::new(),
            modules: BTreeMap::new(),
            settings: Settings::default(),
            providers: BTreeMap::new(),
            inputs,
        },
        diags: Diags::new(),
        too_many_modules: false,
    };
    loader.load_module(ModulePath::root(), dir, root_files, read, 0);
    if loader.diags.has_errors() { Err(loader.diags) } else { Ok(loader.config) }
}

struct Loader {
    config: Config,
    diags: Diags,
    /// Set once [`MAX_MODULES`] is reported, so it is reported once.
    too_many_modules: bool,
}

/// Offsets of the lines of `text` after its first that start with a
/// letter or `_`, where a top-level block may start ([`Loader::load_file`]).
fn part_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    let starts = text.match_indices('\n').map(|(i, _)| i + 1);
    starts.filter(|&p| text.as_bytes().get(p).is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_'))
}

fn loc(file: &Arc<SourceFile>, span: Option<std::ops::Range<usize>>) -> Location {
    Location::in_file(file, span.unwrap_or(0..0))
}

impl Loader {
    fn load_module(&mut self, path: ModulePath, dir: &Path, files: Vec<Arc<SourceFile>>, read: &mut ReadDir<'_>, depth: usize) {
        let mut module = Module { path: path.clone(), dir: dir.to_path_buf(), files: files.clone(), ..Module::default() };
        if files.is_empty() && path.is_root() {
            self.diags.push(
                Diag::error(format!("no *.hcl configuration files in {}", dir.display()))
                    .with_detail("Run himaplan in a directory holding the configuration, or pass --chdir DIR."),
            );
        }
        for file in &files {
            self.config.files.push(file.clone());
            self.load_file(&mut module, file);
        }
        for repeated in module.resources.sort() {
            self.duplicate("resource", &format!("{}.{}", repeated.addr.rtype, repeated.addr.name), repeated.location.clone());
        }
        let calls: Vec<ModuleCall> = module.calls.values().cloned().collect();
        self.config.modules.insert(path.clone(), module);
        for call in calls {
            if depth >= MAX_MODULE_DEPTH {
                self.diags.push(
                    Diag::error("Module calls nest too deeply (a module calling itself?)")
                        .at(call.location.clone())
                        .with_detail(format!("Modules may nest at most {MAX_MODULE_DEPTH} levels deep.")),
                );
                continue;
            }
            if self.config.modules.len() >= MAX_MODULES {
                if std::mem::replace(&mut self.too_many_modules, true) {
                    return;
                }
                self.diags.push(
                    Diag::error(format!("Too many modules: the configuration calls more than {MAX_MODULES}"))
                        .at(call.location.clone())
                        .with_detail("A module that calls its own directory more than once grows the tree at every level."),
                );
                return;
            }
            if !(call.source.starts_with("./") || call.source.starts_with("../")) {
                self.diags.push(
                    Diag::error(format!("Unsupported module source {:?}", call.source))
                        .at(call.location.clone())
                        .with_detail("Only local paths starting with ./ or ../ are supported."),
                );
                continue;
            }
            let child_dir = normalize(&dir.join(&call.source));
            match read(&child_dir) {
                Ok(files) if files.is_empty() => self.diags.push(
                    Diag::error(format!("Module {:?} has no *.hcl files in {}", call.name, child_dir.display())).at(call.location.clone()),
                ),
                Ok(files) => self.load_module(path.child(&call.name), &child_dir, files, read, depth + 1),
                Err(mut d) => {
                    d.0.iter_mut().for_each(|x| x.location = x.location.take().or(Some(call.location.clone())));
                    self.diags.extend(d)
                }
            }
        }
    }

    /// Parses and loads a file one part at a time, so that neither the
    /// whole file's syntax tree nor every block's is ever held at once.
    /// A part runs from a line starting with a letter or `_` (where a
    /// top-level block starts) to the next such line. A part that does not
    /// parse alone was cut inside something (a heredoc, a comment, a
    /// nested block): the parts before it were whole blocks, so the rest
    /// of the file is parsed in one piece, as a file without such lines is.
    fn load_file(&mut self, module: &mut Module, file: &Arc<SourceFile>) {
        let text = &file.text;
        let mut start = 0;
        for end in part_starts(text).chain([text.len()]) {
            let part = file.part(start..end);
            let Ok(body) = hcl_edit::parser::parse_body(&part.text) else { break };
            self.load_body(module, &part, body);
            start = end;
        }
        if start == text.len() {
            return;
        }
        let rest = if start == 0 { file.clone() } else { file.part(start..text.len()) };
        match hcl_edit::parser::parse_body(&rest.text) {
            Ok(body) => self.load_body(module, &rest, body),
            Err(e) => {
                let line = rest.first_line() + e.location().line();
                self.diags.push(
                    Diag::error(format!("Invalid HCL syntax: {}", e.message()))
                        .at(Location {
                            path: file.path.clone(),
                            line,
                            col: e.location().column(),
                            snippet: Some(file.line_text(line).to_string()),
                        })
                        .with_detail("Fix the syntax error; himaplan fmt can help once the file parses."),
                );
            }
        }
    }

    /// Loads a parsed file part's blocks, each dropped once loaded. A
    /// resource that is its part's only block keeps its body as text
    /// ([`BodyRef::of_lone_block`]).
    fn load_body(&mut self, module: &mut Module, file: &Arc<SourceFile>, body: Body) {
        let alone = body.len() == 1;
        for structure in body {
            match structure {
                Structure::Attribute(attr) => self.diags.push(
                    Diag::error(format!("Unexpected attribute {:?} at the top level", attr.key.as_str()))
                        .at(loc(file, attr.span()))
                        .with_detail("Top-level attributes belong inside a block such as locals { ... }."),
                ),
                Structure::Block(block) => self.load_block(module, file, &block, alone),
            }
        }
    }

    fn labels<'b>(&mut self, file: &Arc<SourceFile>, block: &'b Block, want: &[&str]) -> Option<Vec<&'b str>> {
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        if labels.len() != want.len() {
            self.diags.push(
                Diag::error(format!(
                    "A {} block needs {} label(s) ({}), found {}",
                    block.ident.as_str(),
                    want.len(),
                    want.join(", "),
                    labels.len()
                ))
                .at(loc(file, block.span())),
            );
            return None;
        }
        for label in &labels {
            if !is_identifier(label) {
                self.diags.push(
                    Diag::error(format!("Invalid name {label:?}"))
                        .at(loc(file, block.span()))
                        .with_detail("Names start with a letter or underscore and contain letters, digits, underscores and dashes."),
                );
                return None;
            }
        }
        Some(labels)
    }

    fn load_block(&mut self, module: &mut Module, file: &Arc<SourceFile>, block: &Block, alone: bool) {
        let location = loc(file, block.span());
        let expr = |e: &Expression| Expr { expr: e.clone(), file: file.clone() };
        match block.ident.as_str() {
            "himaplan" => {
                if !module.path.is_root() {
                    self.diags.push(Diag::error("A himaplan block is only allowed in the root module").at(location));
                    return;
                }
                self.check_names(file, &block.body, &["state"], &["backend"]);
                if let Some(attr) = block.body.get_attribute("state") {
                    self.config.settings.state_path = self.literal_string(file, &attr.value);
                }
                for b in block.body.get_blocks("backend") {
                    if let Some(labels) = self.labels(file, b, &["type"]) {
                        let mut attributes = BTreeMap::new();
                        for a in b.body.attributes() {
                            if let Some(s) = self.literal_string(file, &a.value) {
                                attributes.insert(a.key.as_str().to_string(), s);
                            }
                        }
                        self.config.settings.backend =
                            Some(Backend { kind: labels[0].to_string(), attributes, location: loc(file, b.span()) });
                    }
                }
            }
            "variable" => {
                let Some(labels) = self.labels(file, block, &["name"]) else { return };
                self.check_names(file, &block.body, &["type", "default", "description", "sensitive", "nullable"], &["validation"]);
                let mut validations = Vec::new();
                for v in block.body.get_blocks("validation") {
                    self.check_names(file, &v.body, &["condition", "error_message"], &[]);
                    match (v.body.get_attribute("condition"), v.body.get_attribute("error_message")) {
                        (Some(c), Some(m)) => validations.push(Validation { condition: expr(&c.value), error_message: expr(&m.value) }),
                        _ => self.diags.push(Diag::error("A validation block needs condition and error_message").at(loc(file, v.span()))),
                    }
                }
                let var = Variable {
                    name: labels[0].to_string(),
                    type_expr: block.body.get_attribute("type").map(|a| expr(&a.value)),
                    default: block.body.get_attribute("default").map(|a| expr(&a.value)),
                    description: block.body.get_attribute("description").and_then(|a| self.literal_string(file, &a.value)),
                    sensitive: self.literal_bool(file, &block.body, "sensitive"),
                    validations,
                    location: location.clone(),
                };
                if module.variables.insert(var.name.clone(), var).is_some() {
                    self.duplicate("variable", labels[0], location);
                }
            }
            "locals" => {
                for attr in block.body.attributes() {
                    let name = attr.key.as_str().to_string();
                    let l = loc(file, attr.span());
                    if module
                        .locals
                        .insert(name.clone(), Local { name: name.clone(), value: expr(&attr.value), location: l.clone() })
                        .is_some()
                    {
                        self.duplicate("local value", &name, l);
                    }
                }
                for b in block.body.blocks() {
                    self.diags.push(Diag::error(format!("Unexpected block {:?} in locals", b.ident.as_str())).at(loc(file, b.span())));
                }
            }
            "output" => {
                let Some(labels) = self.labels(file, block, &["name"]) else { return };
                self.check_names(file, &block.body, &["value", "description", "sensitive", "depends_on"], &[]);
                let Some(value) = block.body.get_attribute("value") else {
                    self.diags.push(Diag::error(format!("Output {:?} needs a value", labels[0])).at(location));
                    return;
                };
                let out = Output {
                    name: labels[0].to_string(),
                    value: expr(&value.value),
                    description: block.body.get_attribute("description").and_then(|a| self.literal_string(file, &a.value)),
                    sensitive: self.literal_bool(file, &block.body, "sensitive"),
                    location: location.clone(),
                };
                if module.outputs.insert(out.name.clone(), out).is_some() {
                    self.duplicate("output", labels[0], location);
                }
            }
            "provider" => {
                let Some(labels) = self.labels(file, block, &["name"]) else { return };
                if !module.path.is_root() {
                    self.diags.push(Diag::error("provider blocks belong in the root module").at(location));
                    return;
                }
                let name = labels[0].to_string();
                let pb = ProviderBlock { name: name.clone(), body: BodyRef::kept(block.body.clone(), file), location: location.clone() };
                if self.config.providers.insert(name.clone(), pb).is_some() {
                    self.duplicate("provider", &name, location);
                }
            }
            "resource" => {
                let Some(labels) = self.labels(file, block, &["type", "name"]) else { return };
                let resource = self.load_resource(module, file, block, labels[0], labels[1], location.clone(), alone);
                module.resources.push(resource);
            }
            "module" => {
                let Some(labels) = self.labels(file, block, &["name"]) else { return };
                let Some(source) = block.body.get_attribute("source").and_then(|a| self.literal_string(file, &a.value)) else {
                    self.diags.push(Diag::error(format!("Module {:?} needs a source", labels[0])).at(location));
                    return;
                };
                let mut inputs = BTreeMap::new();
                let mut depends_on = Vec::new();
                for attr in block.body.attributes() {
                    match attr.key.as_str() {
                        "source" => {}
                        "depends_on" => depends_on = self.expr_list(file, &attr.value),
                        "count" | "for_each" | "providers" | "version" => self.diags.push(
                            Diag::error(format!("{} is not supported on module blocks", attr.key.as_str())).at(loc(file, attr.span())),
                        ),
                        key => {
                            inputs.insert(key.to_string(), expr(&attr.value));
                        }
                    }
                }
                for b in block.body.blocks() {
                    self.diags
                        .push(Diag::error(format!("Unexpected block {:?} in a module call", b.ident.as_str())).at(loc(file, b.span())));
                }
                let call = ModuleCall { name: labels[0].to_string(), source, inputs, depends_on, location: location.clone() };
                if module.calls.insert(labels[0].to_string(), call).is_some() {
                    self.duplicate("module", labels[0], location);
                }
            }
            "moved" => {
                self.check_names(file, &block.body, &["from", "to"], &[]);
                match (block.body.get_attribute("from"), block.body.get_attribute("to")) {
                    (Some(f), Some(t)) => module.moved.push(Moved {
                        from: f.value.to_string().trim().to_string(),
                        to: t.value.to_string().trim().to_string(),
                        location,
                    }),
                    _ => self.diags.push(Diag::error("A moved block needs from and to").at(location)),
                }
            }
            "import" => {
                self.check_names(file, &block.body, &["to", "id"], &[]);
                match (block.body.get_attribute("to"), block.body.get_attribute("id")) {
                    (Some(t), Some(i)) => {
                        module.imports.push(ImportBlock { to: t.value.to_string().trim().to_string(), id: expr(&i.value), location })
                    }
                    _ => self.diags.push(Diag::error("An import block needs to and id").at(location)),
                }
            }
            "scaling_policy" => {
                let Some(labels) = self.labels(file, block, &["name"]) else { return };
                if !module.path.is_root() {
                    self.diags.push(Diag::error("scaling_policy blocks belong in the root module").at(location));
                    return;
                }
                match super::policy::parse(file, block, labels[0]) {
                    Ok(p) => {
                        if module.policies.insert(p.name.clone(), p).is_some() {
                            self.duplicate("scaling_policy", labels[0], location);
                        }
                    }
                    Err(d) => self.diags.extend(d),
                }
            }
            other => self.diags.push(Diag::error(format!("Unsupported block type {other:?}")).at(location).with_detail(
                "Blocks allowed here: himaplan, variable, locals, output, provider, resource, module, moved, import, scaling_policy.",
            )),
        }
    }

    fn load_resource(
        &mut self,
        module: &Module,
        file: &Arc<SourceFile>,
        block: &Block,
        rtype: &str,
        name: &str,
        location: Location,
        alone: bool,
    ) -> Resource {
        let body = &block.body;
        let expr = |e: &Expression| Expr { expr: e.clone(), file: file.clone() };
        let mut lifecycle = Lifecycle::default();
        for lc in body.get_blocks("lifecycle") {
            self.check_names(file, &lc.body, &["prevent_destroy", "create_before_destroy", "ignore_changes"], &[]);
            lifecycle.prevent_destroy = self.literal_bool(file, &lc.body, "prevent_destroy");
            lifecycle.create_before_destroy = self.literal_bool(file, &lc.body, "create_before_destroy");
            if let Some(attr) = lc.body.get_attribute("ignore_changes") {
                lifecycle.ignore_changes = match &attr.value {
                    Expression::Variable(v) if v.as_str() == "all" => vec!["all".into()],
                    Expression::Array(items) => items.iter().map(|e| e.to_string().trim().to_string()).collect(),
                    _ => {
                        self.diags.push(Diag::error("ignore_changes must be a list of attribute names or all").at(loc(file, attr.span())));
                        Vec::new()
                    }
                };
            }
        }
        let mut max_unavailable = None;
        let mut health_check = None;
        for ro in body.get_blocks("rollout") {
            self.check_names(file, &ro.body, &["max_unavailable"], &["health_check"]);
            max_unavailable = ro.body.get_attribute("max_unavailable").map(|a| Box::new(expr(&a.value)));
            if let Some(hc) = ro.body.get_blocks("health_check").next() {
                health_check = Some(Box::new(HealthCheck { body: BodyRef::kept(hc.body.clone(), file), location: loc(file, hc.span()) }));
            }
        }
        let count = body.get_attribute("count").map(|a| Box::new(expr(&a.value)));
        let for_each = body.get_attribute("for_each").map(|a| Box::new(expr(&a.value)));
        if count.is_some() && for_each.is_some() {
            self.diags.push(Diag::error("count and for_each cannot be used together").at(location.clone()));
        }
        // The graph reads depends_on from the body as references; here
        // only that each entry names a resource or a module.
        for entry in body.get_attribute("depends_on").map(|a| self.expr_list(file, &a.value)).unwrap_or_default() {
            if !refs::of_expr(&entry).iter().all(|r| matches!(r.target, refs::Target::Resource(..) | refs::Target::Module(..))) {
                self.diags.push(Diag::error("depends_on entries must be resources or modules").at(entry.location()));
            }
        }
        Resource {
            addr: ResourceAddr::new(module.path.clone(), rtype, name),
            count,
            for_each,
            lifecycle,
            max_unavailable,
            health_check,
            body: if alone { BodyRef::of_lone_block(file) } else { BodyRef::kept(body.clone(), file) },
            location,
        }
    }

    fn expr_list(&mut self, file: &Arc<SourceFile>, value: &Expression) -> Vec<Expr> {
        match value {
            Expression::Array(items) => items.iter().map(|e| Expr { expr: e.clone(), file: file.clone() }).collect(),
            other => {
                self.diags.push(Diag::error("Expected a list of references, e.g. [aws_instance.web]").at(loc(file, other.span())));
                Vec::new()
            }
        }
    }

    fn check_names(&mut self, file: &Arc<SourceFile>, body: &Body, attrs: &[&str], blocks: &[&str]) {
        for s in body.iter() {
            match s {
                Structure::Attribute(a) if !attrs.contains(&a.key.as_str()) => {
                    let hint = suggest(a.key.as_str(), attrs).map(|s| format!(" Did you mean {s:?}?")).unwrap_or_default();
                    self.diags.push(Diag::error(format!("Unsupported argument {:?}", a.key.as_str())).at(loc(file, a.span())).with_detail(
                        format!("Allowed here: {}.{hint}", if attrs.is_empty() { "none".to_string() } else { attrs.join(", ") }),
                    ))
                }
                Structure::Block(b) if !blocks.contains(&b.ident.as_str()) => {
                    self.diags.push(Diag::error(format!("Unsupported block {:?}", b.ident.as_str())).at(loc(file, b.span())))
                }
                _ => {}
            }
        }
    }

    fn literal(&mut self, file: &Arc<SourceFile>, value: &Expression) -> Option<Value> {
        match super::eval::eval_literal(value) {
            Some(v) => Some(v),
            None => {
                self.diags.push(Diag::error("Expected a literal value here (no references or functions)").at(loc(file, value.span())));
                None
            }
        }
    }

    fn literal_string(&mut self, file: &Arc<SourceFile>, value: &Expression) -> Option<String> {
        let v = self.literal(file, value)?;
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.diags.push(Diag::error(format!("Expected a string, found {}", v.type_name())).at(loc(file, value.span())));
                None
            }
        }
    }

    fn literal_bool(&mut self, file: &Arc<SourceFile>, body: &Body, key: &str) -> bool {
        let Some(attr) = body.get_attribute(key) else { return false };
        match self.literal(file, &attr.value) {
            Some(Value::Bool(b)) => b,
            Some(other) => {
                self.diags
                    .push(Diag::error(format!("{key} must be true or false, found {}", other.type_name())).at(loc(file, attr.span())));
                false
            }
            None => false,
        }
    }

    fn duplicate(&mut self, what: &str, name: &str, location: Location) {
        self.diags.push(
            Diag::error(format!("Duplicate {what} {name:?}")).at(location).with_detail("Each name may be declared only once per module."),
        );
    }
}

/// True for names HCL accepts as identifiers.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// The closest candidate to a misspelt name, if one is close enough.
pub fn suggest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().map(|c| (edit_distance(name, c), *c)).filter(|(d, c)| *d <= 2.max(c.len() / 4)).min().map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `path` without `.` components and with `dir/..` pairs folded; a path
/// that folds to nothing (`./`, `./sub/..` from `.`) is `.`, the directory
/// itself, not the empty path, which names no directory at all.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir if out.file_name().is_some() && !out.ends_with("..") => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

#[cfg(test)]
mod tests {
    use super::{load_snapshot, normalize};
    use crate::config::Config;
    use crate::diag::Diags;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn load(text: &str) -> Result<Config, Diags> {
        let sources = BTreeMap::from([(".".to_string(), vec![("main.hcl".to_string(), text.to_string())])]);
        load_snapshot(Path::new("."), &sources, Default::default())
    }

    /// Every resource's body, as text, and where its block starts.
    fn bodies(config: &Config) -> Vec<(String, usize, String)> {
        config.resources().map(|r| (r.addr.name.clone(), r.location.line, r.body.body().to_string())).collect()
    }

    /// A file is parsed a block at a time; lines starting with a letter
    /// inside a heredoc, a comment or a nested block are not block starts,
    /// and the rest of such a file is parsed whole: the same blocks either way.
    #[test]
    fn a_file_parsed_block_by_block_loads_as_a_whole_file_would() {
        let text = "resource \"himaplan_data\" \"a\" {\n  input = <<EOT\nresource \"himaplan_data\" \"fake\" {\n}\nEOT\n}\n\n/*\nresource \"x\" \"y\" {}\n*/\nresource \"himaplan_data\" \"b\" {\n  input = \"b\"\n  rollout {\nmax_unavailable = 1\n  }\n}\r\nresource \"himaplan_data\" \"c\" { input = \"c\" }\n";
        let config = load(text).expect("loads");
        let found = bodies(&config);
        let names: Vec<_> = found.iter().map(|(n, line, _)| (n.as_str(), *line)).collect();
        assert_eq!(names, vec![("a", 1), ("b", 11), ("c", 17)]);
        assert!(found[0].2.contains("resource \"himaplan_data\" \"fake\""), "{:?}", found[0].2);
        assert!(found[2].2.contains("input = \"c\""), "{:?}", found[2].2);
        // The same text indented (no block starts at all) loads the same bodies.
        let indented: String = text.lines().map(|l| format!(" {l}\n")).collect();
        let again = load(&indented).expect("loads indented");
        assert_eq!(
            bodies(&again).iter().map(|(n, line, _)| (n.clone(), *line)).collect::<Vec<_>>(),
            vec![("a".to_string(), 1), ("b".to_string(), 11), ("c".to_string(), 17)]
        );
    }

    /// A syntax error after whole blocks names its line in the whole file.
    #[test]
    fn a_syntax_error_in_a_later_block_names_its_line_in_the_file() {
        let text = "resource \"himaplan_data\" \"a\" {\n  input = \"a\"\n}\n\nresource \"himaplan_data\" \"b\" {\n  input = \n}\n";
        let diags = load(text).expect_err("a syntax error");
        let d = &diags.0[0];
        assert!(d.summary.starts_with("Invalid HCL syntax"), "{d:?}");
        let at = d.location.as_ref().expect("a location");
        assert_eq!((at.path.as_path(), at.line), (Path::new("main.hcl"), 6), "{d:?}");
        assert_eq!(at.snippet.as_deref(), Some("  input = "));
    }

    /// `depends_on` names resources or modules, as in Terraform; it was
    /// accepted with any reference (the check existed and was never called).
    #[test]
    fn depends_on_a_variable_is_refused_with_its_line() {
        let text = "variable \"v\" {\n  default = 1\n}\n\nresource \"himaplan_data\" \"a\" {\n  depends_on = [var.v]\n}\n";
        let diags = load(text).expect_err("refused");
        let d = &diags.0[0];
        assert_eq!(d.summary, "depends_on entries must be resources or modules");
        assert_eq!(d.location.as_ref().map(|l| l.line), Some(6), "{d:?}");
    }

    /// Found by the validate_hcl fuzz target: `source = "./"` in the root
    /// module read the directory "" ("cannot read configuration directory").
    #[test]
    fn a_source_that_folds_to_nothing_is_the_directory_itself() {
        assert_eq!(normalize(&Path::new(".").join("./")), Path::new("."));
        assert_eq!(normalize(&Path::new(".").join("./sub/..")), Path::new("."));
        assert_eq!(normalize(&Path::new(".").join("./sub")), Path::new("sub"));
        assert_eq!(normalize(&Path::new("root").join("./")), Path::new("root"));
        assert_eq!(normalize(&Path::new(".").join("../x")), Path::new("../x"));
        assert_eq!(normalize(Path::new("/a/b/../c")), Path::new("/a/c"));
    }
}
