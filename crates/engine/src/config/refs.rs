//! Static references: which named things an expression or body refers to
//! (`var.x`, `local.y`, `aws_instance.web`, `module.db.endpoint`), found
//! without evaluating, for graph edges and "unknown reference" checks.
//! Names bound by `for` expressions and `dynamic` blocks are not references.

use super::Expr;
use crate::diag::{Location, SourceFile};
use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey, TraversalOperator};
use hcl_edit::structure::{Body, Structure};
use hcl_edit::template::{Directive, Element, Template};
use std::sync::Arc;

/// What a reference names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Var(String),
    Local(String),
    Resource(String, String),
    /// `module.NAME.OUTPUT`; the output is `None` for a bare `module.NAME`.
    Module(String, Option<String>),
    /// `target` in a rollout `health_check`: the member being gated.
    GateTarget,
    CountIndex,
    Each,
    Path,
    /// A root name that is none of the above (an error unless bound).
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct Reference {
    pub target: Target,
    pub location: Location,
}

/// References of one expression.
pub fn of_expr(expr: &Expr) -> Vec<Reference> {
    let mut walker = Walker { file: &expr.file, bound: Vec::new(), out: Vec::new() };
    walker.expr(&expr.expr);
    walker.out
}

/// References of a whole body (attributes, nested and dynamic blocks),
/// except top-level blocks named in `skip` (e.g. `lifecycle`, whose
/// `ignore_changes` lists attribute names, not references).
pub fn of_body(body: &Body, file: &Arc<SourceFile>, skip: &[&str]) -> Vec<Reference> {
    let mut walker = Walker { file, bound: Vec::new(), out: Vec::new() };
    for structure in body.iter() {
        match structure {
            Structure::Block(b) if skip.contains(&b.ident.as_str()) => {}
            Structure::Attribute(a) if skip.contains(&a.key.as_str()) => {}
            other => walker.structure(other),
        }
    }
    walker.out
}

/// The references of one top-level attribute of `body` (none if absent).
pub fn of_attribute(body: &Body, file: &Arc<SourceFile>, key: &str) -> Vec<Reference> {
    let mut walker = Walker { file, bound: Vec::new(), out: Vec::new() };
    for structure in body.iter() {
        if let Structure::Attribute(a) = structure
            && a.key.as_str() == key
        {
            walker.structure(structure);
        }
    }
    walker.out
}

struct Walker<'a> {
    file: &'a Arc<SourceFile>,
    bound: Vec<String>,
    out: Vec<Reference>,
}

impl Walker<'_> {
    fn push(&mut self, target: Target, span: Option<std::ops::Range<usize>>) {
        self.out.push(Reference { target, location: Location::in_file(self.file, span.unwrap_or(0..0)) });
    }

    fn body(&mut self, body: &Body) {
        for structure in body.iter() {
            self.structure(structure);
        }
    }

    fn structure(&mut self, structure: &Structure) {
        {
            match structure {
                Structure::Attribute(a) => self.expr(&a.value),
                Structure::Block(b) if b.ident.as_str() == "dynamic" => {
                    let iterator = match b.body.get_attribute("iterator").map(|a| &a.value) {
                        Some(Expression::Variable(v)) => v.as_str().to_string(),
                        _ => b.labels.first().map(|l| l.as_str().to_string()).unwrap_or_default(),
                    };
                    if let Some(fe) = b.body.get_attribute("for_each") {
                        self.expr(&fe.value);
                    }
                    self.bound.push(iterator);
                    if let Some(labels) = b.body.get_attribute("labels") {
                        self.expr(&labels.value);
                    }
                    for content in b.body.get_blocks("content") {
                        self.body(&content.body);
                    }
                    self.bound.pop();
                }
                Structure::Block(b) => self.body(&b.body),
            }
        }
    }

    fn expr(&mut self, expr: &Expression) {
        match expr {
            Expression::Null(_) | Expression::Bool(_) | Expression::Number(_) | Expression::String(_) => {}
            Expression::Array(items) => items.iter().for_each(|e| self.expr(e)),
            Expression::Object(object) => {
                for (k, v) in object.iter() {
                    if let ObjectKey::Expression(e) = k
                        && !matches!(e, Expression::Variable(_))
                    {
                        self.expr(e);
                    }
                    self.expr(v.expr());
                }
            }
            Expression::StringTemplate(t) => self.template(t),
            Expression::HeredocTemplate(h) => self.template(&h.template),
            Expression::Parenthesis(p) => self.expr(p.inner()),
            Expression::Variable(v) => self.root(v.as_str(), &[], v.span()),
            Expression::Conditional(c) => {
                self.expr(&c.cond_expr);
                self.expr(&c.true_expr);
                self.expr(&c.false_expr);
            }
            Expression::FuncCall(f) => f.args.iter().for_each(|e| self.expr(e)),
            Expression::Traversal(t) => {
                for op in &t.operators {
                    if let TraversalOperator::Index(e) = op.value() {
                        self.expr(e);
                    }
                }
                match &t.expr {
                    Expression::Variable(v) => {
                        let attrs: Vec<&str> = t
                            .operators
                            .iter()
                            .map_while(|op| match op.value() {
                                TraversalOperator::GetAttr(a) => Some(a.as_str()),
                                _ => None,
                            })
                            .collect();
                        self.root(v.as_str(), &attrs, t.span());
                    }
                    other => self.expr(other),
                }
            }
            Expression::UnaryOp(op) => self.expr(&op.expr),
            Expression::BinaryOp(op) => {
                self.expr(&op.lhs_expr);
                self.expr(&op.rhs_expr);
            }
            Expression::ForExpr(f) => {
                self.expr(&f.intro.collection_expr);
                let mut n = 1;
                if let Some(k) = &f.intro.key_var {
                    self.bound.push(k.as_str().to_string());
                    n += 1;
                }
                self.bound.push(f.intro.value_var.as_str().to_string());
                if let Some(k) = &f.key_expr {
                    self.expr(k);
                }
                self.expr(&f.value_expr);
                if let Some(c) = &f.cond {
                    self.expr(&c.expr);
                }
                for _ in 0..n {
                    self.bound.pop();
                }
            }
        }
    }

    fn template(&mut self, template: &Template) {
        for element in template.iter() {
            match element {
                Element::Literal(_) => {}
                Element::Interpolation(i) => self.expr(&i.expr),
                Element::Directive(d) => match &**d {
                    Directive::If(i) => {
                        self.expr(&i.if_expr.cond_expr);
                        self.template(&i.if_expr.template);
                        if let Some(e) = &i.else_expr {
                            self.template(&e.template);
                        }
                    }
                    Directive::For(f) => {
                        let f = &f.for_expr;
                        self.expr(&f.collection_expr);
                        let mut n = 1;
                        if let Some(k) = &f.key_var {
                            self.bound.push(k.as_str().to_string());
                            n += 1;
                        }
                        self.bound.push(f.value_var.as_str().to_string());
                        self.template(&f.template);
                        for _ in 0..n {
                            self.bound.pop();
                        }
                    }
                },
            }
        }
    }

    fn root(&mut self, name: &str, attrs: &[&str], span: Option<std::ops::Range<usize>>) {
        if self.bound.iter().any(|b| b == name) {
            return;
        }
        let target = match (name, attrs.first()) {
            ("var", Some(n)) => Target::Var(n.to_string()),
            ("local", Some(n)) => Target::Local(n.to_string()),
            ("module", Some(n)) => Target::Module(n.to_string(), attrs.get(1).map(|s| s.to_string())),
            ("count", _) => Target::CountIndex,
            ("each", _) => Target::Each,
            ("target", _) => Target::GateTarget,
            ("path", _) => Target::Path,
            ("var" | "local" | "module", None) => Target::Unknown(name.to_string()),
            (t, Some(n)) => Target::Resource(t.to_string(), n.to_string()),
            (other, _) => Target::Unknown(other.to_string()),
        };
        self.push(target, span);
    }
}
