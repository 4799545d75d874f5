//! Expression evaluation over hcl-edit's syntax tree, with unknown values
//! ("known after apply") and sensitive marks.
//!
//! hcl-rs evaluates expressions but has no unknowns and no spans, so this
//! is the project's own evaluator. Rules: any operation on an unknown
//! operand yields unknown (except `&&`/`||` decided by a known side); any
//! operation on a sensitive operand yields a sensitive result. Errors are
//! diagnostics pointing at the sub-expression at fault. No I/O.

use super::{BodyRef, Expr, budget::Budget, funcs};
use crate::diag::{Diag, Diags, Location, SourceFile};
use crate::provider::{AttrType, BlockNesting, Schema};
use crate::value::{Number, NumberError, Value, ValueMap};
use hcl_edit::Span;
use hcl_edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::structure::{Block, Body, Structure};
use hcl_edit::template::{Directive, Element, Template};
use std::collections::BTreeMap;

/// Names visible to an expression: the module's namespace (`var`, `local`,
/// `module`, resource types, `path`) plus local bindings (`count`, `each`,
/// `for` and `dynamic` iterators), innermost last.
pub struct Scope<'a> {
    base: &'a BTreeMap<String, Value>,
    bindings: Vec<(String, Value)>,
}

impl<'a> Scope<'a> {
    pub fn new(base: &'a BTreeMap<String, Value>) -> Self {
        Scope { base, bindings: Vec::new() }
    }

    pub fn bind(&mut self, name: &str, value: Value) {
        self.bindings.push((name.to_string(), value));
    }

    pub fn unbind(&mut self) {
        self.bindings.pop();
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        self.bindings.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v).or_else(|| self.base.get(name))
    }

    /// A name of the base namespace not shadowed by a binding, borrowed for
    /// the namespace's lifetime (so the scope stays usable meanwhile).
    fn base_lookup(&self, name: &str) -> Option<&'a Value> {
        if self.bindings.iter().any(|(n, _)| n == name) { None } else { self.base.get(name) }
    }
}

/// Evaluates an expression that must not reference anything (settings
/// such as `description`). `None` when it references names or fails.
pub fn eval_literal(expr: &Expression) -> Option<Value> {
    let empty = BTreeMap::new();
    let file = SourceFile::new("<literal>".into(), String::new());
    Evaluator::new(&file).eval(expr, &mut Scope::new(&empty)).ok()
}

/// Evaluates a configuration expression.
pub fn eval(expr: &Expr, scope: &mut Scope<'_>) -> Result<Value, Diag> {
    Evaluator::new(&expr.file).eval(&expr.expr, scope)
}

/// Evaluates a resource (or provider) body against its schema: converts
/// types, applies defaults, marks sensitive attributes, expands `dynamic`
/// blocks and reports unknown or missing attributes. Names in `skip` are
/// meta-arguments handled by the caller.
pub fn eval_body(body: &BodyRef, schema: &Schema, scope: &mut Scope<'_>, skip: &[&str], block_loc: &Location) -> Result<Value, Diags> {
    Evaluator::new(&body.file).body(&body.body(), schema, scope, skip, block_loc)
}

/// Converts a value to an attribute type the way HCL does (numbers and
/// bools to strings, numeric strings to numbers, …).
pub fn convert(value: Value, ty: &AttrType) -> Result<Value, String> {
    match value {
        Value::Null | Value::Unknown => Ok(value),
        Value::Sensitive(inner) => convert(*inner, ty).map(Value::into_sensitive),
        value => match (ty, value) {
            (AttrType::Any, v) => Ok(v),
            (AttrType::String, Value::String(s)) => Ok(Value::String(s)),
            (AttrType::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
            (AttrType::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (AttrType::Number, Value::Number(n)) => Ok(Value::Number(n)),
            (AttrType::Number, Value::String(s)) => Number::parse(&s).map(Value::Number).map_err(|e| match e {
                NumberError::Syntax => format!("a number is required, got string {s:?}"),
                e => format!("{s:?}: {e}"),
            }),
            (AttrType::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
            (AttrType::Bool, Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            (AttrType::List(inner), Value::List(items)) => {
                items.into_iter().map(|v| convert(v, inner)).collect::<Result<Vec<_>, _>>().map(Value::List)
            }
            (AttrType::Map(inner), Value::Map(map)) => {
                map.into_iter().map(|(k, v)| convert(v, inner).map(|v| (k, v))).collect::<Result<ValueMap, _>>().map(Value::Map)
            }
            (ty, v) => Err(format!("{} is required, got {}", type_label(ty), v.type_name())),
        },
    }
}

/// The user-facing name of an attribute type.
pub fn type_label(ty: &AttrType) -> String {
    match ty {
        AttrType::String => "a string".into(),
        AttrType::Number => "a number".into(),
        AttrType::Bool => "a bool".into(),
        AttrType::List(t) => format!("a list of {}", type_label(t).trim_start_matches("a ")),
        AttrType::Map(t) => format!("a map of {}", type_label(t).trim_start_matches("a ")),
        AttrType::Any => "any value".into(),
    }
}

struct Evaluator<'f> {
    file: &'f SourceFile,
    /// What this evaluation has built so far (`budget.rs`).
    budget: Budget,
}

/// Splits sensitive marks off a list of operands; the bool says whether
/// any operand was sensitive.
fn unmark_all(values: Vec<Value>) -> (Vec<Value>, bool) {
    let sensitive = values.iter().any(Value::has_sensitive);
    let plain = if sensitive { values.iter().map(Value::deep_unmarked).collect() } else { values };
    (plain, sensitive)
}

fn remark(value: Value, sensitive: bool) -> Value {
    if sensitive { value.into_sensitive() } else { value }
}

impl<'f> Evaluator<'f> {
    fn new(file: &'f SourceFile) -> Self {
        Evaluator { file, budget: Budget::default() }
    }

    /// `value`, once charged to the budget; an error at `span` past it.
    fn charged(&self, span: Option<std::ops::Range<usize>>, value: Value) -> Result<Value, Diag> {
        self.budget.charge(&value).map_err(|m| self.err(span, m))?;
        Ok(value)
    }

    fn err(&self, span: Option<std::ops::Range<usize>>, summary: impl Into<String>) -> Diag {
        Diag::error(summary).at(Location::in_file(self.file, span.unwrap_or(0..0)))
    }

    /// A number literal read from its source text at 512-bit precision
    /// (the parser's own value is an `f64`).
    fn number_literal(&self, n: &hcl_edit::Formatted<hcl_edit::Number>) -> Result<Value, Diag> {
        let text = n.span().and_then(|span| self.file.text.get(span));
        let parsed = match text {
            Some(text) => Number::parse(&text.replace(char::is_whitespace, "")),
            None => match n.value().as_i64() {
                Some(i) => Ok(Number::Int(i)),
                None => Number::from_f64(n.value().as_f64().unwrap_or(0.0)),
            },
        };
        parsed.map(Value::Number).map_err(|e| self.err(n.span(), format!("Invalid number literal: {e}")))
    }

    fn eval(&self, expr: &Expression, scope: &mut Scope<'_>) -> Result<Value, Diag> {
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(b) => Ok(Value::Bool(*b.value())),
            Expression::Number(n) => self.number_literal(n),
            Expression::String(s) => Ok(Value::String(nfc(s.value()))),
            Expression::Array(items) => {
                let values = items.iter().map(|e| self.eval(e, scope)).collect::<Result<Vec<_>, _>>()?;
                self.charged(expr.span(), Value::List(values))
            }
            Expression::Object(object) => {
                let mut map = ValueMap::new();
                let mut unknown_key = false;
                for (key, value) in object.iter() {
                    let k = match key {
                        ObjectKey::Ident(ident) => Value::String(ident.as_str().to_string()),
                        ObjectKey::Expression(Expression::Variable(v)) => Value::String(v.as_str().to_string()),
                        ObjectKey::Expression(e) => self.eval(e, scope)?,
                    };
                    let v = self.eval(value.expr(), scope)?;
                    match k.to_template_string() {
                        Some(k) => {
                            map.insert(k, v);
                        }
                        None if matches!(k, Value::Unknown) => unknown_key = true,
                        None => return Err(self.err(key_span(key), format!("Object keys must be strings, got {}", k.type_name()))),
                    }
                }
                if unknown_key { Ok(Value::Unknown) } else { self.charged(expr.span(), Value::Map(map)) }
            }
            Expression::StringTemplate(t) => self.template(t, scope),
            Expression::HeredocTemplate(h) => {
                let mut h = (**h).clone();
                if h.indent().is_some() {
                    h.dedent();
                }
                self.template(&h.template, scope)
            }
            Expression::Parenthesis(p) => self.eval(p.inner(), scope),
            Expression::Variable(v) => match scope.lookup(v.as_str()) {
                Some(value) => Ok(value.clone()),
                None => Err(self.err(v.span(), format!("Unknown reference {:?}", v.as_str())).with_detail(
                    "References are var.NAME, local.NAME, module.NAME.OUTPUT, TYPE.NAME, count.index, each.key or each.value.",
                )),
            },
            Expression::Conditional(c) => {
                let cond = self.eval(&c.cond_expr, scope)?;
                let sensitive = cond.has_sensitive();
                match cond.unmarked() {
                    Value::Unknown => Ok(Value::Unknown),
                    Value::Bool(true) => {
                        Ok(remark(self.unify_branch(self.eval(&c.true_expr, scope)?, &c.false_expr, scope, c)?, sensitive))
                    }
                    Value::Bool(false) => {
                        Ok(remark(self.unify_branch(self.eval(&c.false_expr, scope)?, &c.true_expr, scope, c)?, sensitive))
                    }
                    other => Err(self.err(c.cond_expr.span(), format!("The condition must be a bool, got {}", other.type_name()))),
                }
            }
            Expression::FuncCall(call) => self.call(call, scope),
            Expression::Traversal(t) => {
                // `list.0.1` reads as `list` then the number `0.1`: HCL
                // refuses two legacy indexes in a row, and so do we.
                if let Some(pair) = t.operators.windows(2).find(|w| {
                    matches!(w[0].value(), TraversalOperator::LegacyIndex(_)) && matches!(w[1].value(), TraversalOperator::LegacyIndex(_))
                }) {
                    return Err(self
                        .err(pair[0].span(), "Invalid legacy index syntax")
                        .with_detail("When using the legacy index syntax, chaining two indexes together is not permitted. Use the proper index syntax instead, like [0][1]."));
                }
                // `TYPE.NAME[i].attr` would otherwise clone every instance of
                // TYPE to read one attribute: per instance, that is quadratic.
                // Walk plain maps and lists by reference, then clone the part
                // reached and let `traverse` do the rest (same result).
                if let Expression::Variable(v) = &t.expr
                    && let Some(base) = scope.base_lookup(v.as_str())
                {
                    let (reached, done) = self.walk_plain(base, &t.operators, scope)?;
                    return self.traverse(reached.clone(), &t.operators[done..], scope, &t.expr);
                }
                let base = self.eval(&t.expr, scope)?;
                self.traverse(base, &t.operators, scope, &t.expr)
            }
            Expression::UnaryOp(op) => {
                let value = self.eval(&op.expr, scope)?;
                let sensitive = value.has_sensitive();
                let result = match (op.operator.value(), value.unmarked()) {
                    (_, Value::Unknown) => Value::Unknown,
                    (UnaryOperator::Neg, Value::Number(n)) => Value::Number(n.neg().map_err(|e| self.err(op.span(), e.to_string()))?),
                    (UnaryOperator::Not, Value::Bool(b)) => Value::Bool(!b),
                    (o, v) => return Err(self.err(op.span(), format!("Operator {} cannot be applied to {}", o.as_str(), v.type_name()))),
                };
                Ok(remark(result, sensitive))
            }
            Expression::BinaryOp(op) => self.binary(op, scope),
            Expression::ForExpr(f) => self.for_expr(f, scope),
        }
    }

    /// A function call. `try`, `can` and `convert` see their arguments
    /// unevaluated; every other function gets values and the module's
    /// directory (`path.module`) for relative file paths.
    fn call(&self, call: &hcl_edit::expr::FuncCall, scope: &mut Scope<'_>) -> Result<Value, Diag> {
        if call.name.is_namespaced() {
            return Err(self.err(call.span(), "Namespaced functions are not supported"));
        }
        let name = call.name.name.as_str();
        if !funcs::is_known_function(name) {
            return Err(self.err(call.span(), format!("Unknown function {name:?}")));
        }
        let fail = |message: String| self.err(call.span(), format!("Invalid function call: {message}"));
        if funcs::LAZY_FUNCTIONS.contains(&name) {
            return self.lazy_call(name, call, scope).map_err(|e| e.unwrap_or_else(|m| fail(m)));
        }
        let mut args = Vec::with_capacity(call.args.len());
        for arg in call.args.iter() {
            args.push(self.eval(arg, scope)?);
        }
        if call.args.expand_final() {
            match args.pop() {
                Some(Value::List(items)) => args.extend(items),
                Some(Value::Unknown) => return Ok(Value::Unknown),
                Some(other) => {
                    return Err(self.err(call.span(), format!("Cannot expand {} with ...; a list is required", other.type_name())));
                }
                None => {}
            }
        }
        let ctx = funcs::Context {
            module_dir: scope.lookup("path").and_then(|p| p.get("module")).and_then(Value::as_str).map(Into::into),
            inputs: self.file.inputs.clone(),
        };
        let result = funcs::call_in(&ctx, name, args).map_err(fail)?;
        self.charged(call.span(), result)
    }

    /// `try(…)`, `can(…)` and `convert(value, type)`. The error is a
    /// diagnostic of an argument or a message for the call.
    fn lazy_call(&self, name: &str, call: &hcl_edit::expr::FuncCall, scope: &mut Scope<'_>) -> Result<Value, Result<Diag, String>> {
        let args: Vec<&Expression> = call.args.iter().collect();
        match name {
            "try" => {
                if args.is_empty() {
                    return Err(Err("try: at least one argument is required".into()));
                }
                let mut last = None;
                for arg in &args {
                    match self.eval(arg, scope) {
                        // A value not yet known might still fail, so the
                        // result waits for it.
                        Ok(v) if v.has_unknown() => return Ok(Value::Unknown),
                        Ok(v) => return Ok(v),
                        Err(d) => last = Some(d),
                    }
                }
                let detail = last.map(|d| d.summary).unwrap_or_default();
                Err(Err(format!("try: no expression succeeded; the last one failed with: {detail}")))
            }
            "can" => match args.as_slice() {
                [arg] => match self.eval(arg, scope) {
                    Ok(v) if v.has_unknown() => Ok(Value::Unknown),
                    Ok(_) => Ok(Value::Bool(true)),
                    Err(_) => Ok(Value::Bool(false)),
                },
                _ => Err(Err(format!("can: expected 1 argument, got {}", args.len()))),
            },
            _ => match args.as_slice() {
                [value, ty] => {
                    let ty = funcs::Type::parse(ty).map_err(|m| Ok(self.err(ty.span(), format!("Invalid type constraint: {m}"))))?;
                    let value = self.eval(value, scope).map_err(Ok)?;
                    funcs::convert_to(&value, &ty).map_err(|m| Err(format!("convert: {m}")))
                }
                _ => Err(Err(format!("convert: expected 2 arguments, got {}", args.len()))),
            },
        }
    }

    /// Terraform unifies a conditional's two results to one type: a number
    /// or bool chosen against a string alternative becomes a string, and a
    /// number against a bool is an error. Only a primitive non-string
    /// result needs the other branch, so ordinary conditionals pay nothing
    /// extra; errors in the other branch are ignored, as HCL does.
    fn unify_branch(
        &self,
        chosen: Value,
        other: &Expression,
        scope: &mut Scope<'_>,
        c: &hcl_edit::expr::Conditional,
    ) -> Result<Value, Diag> {
        if !matches!(chosen.unmarked(), Value::Number(_) | Value::Bool(_)) || matches!(other, Expression::Null(_)) {
            return Ok(chosen);
        }
        let Ok(alt) = self.eval(other, scope) else { return Ok(chosen) };
        match (chosen.unmarked(), alt.unmarked()) {
            (v, Value::String(_)) => Ok(remark(Value::String(v.to_template_string().unwrap_or_default()), chosen.has_sensitive())),
            (Value::Number(_), Value::Bool(_)) | (Value::Bool(_), Value::Number(_)) => Err(self
                .err(
                    c.span(),
                    format!(
                        "Inconsistent conditional result types: the true and false results are {} and {}",
                        self_type(&c.true_expr, &chosen, &alt),
                        if std::ptr::eq(other, &c.false_expr) { alt.type_name() } else { chosen.type_name() }
                    ),
                )
                .with_detail("The true and false result expressions must have consistent types.")),
            (_, Value::List(_) | Value::Map(_)) => Err(self
                .err(c.span(), format!("Inconsistent conditional result types: {} and {}", chosen.type_name(), alt.type_name()))
                .with_detail("The true and false result expressions must have consistent types.")),
            _ => Ok(chosen),
        }
    }

    fn binary(&self, op: &hcl_edit::expr::BinaryOp, scope: &mut Scope<'_>) -> Result<Value, Diag> {
        use BinaryOperator as B;
        let operator = *op.operator.value();
        let lhs = self.eval(&op.lhs_expr, scope)?;
        // Short-circuit on a known deciding side, as HCL does for unknowns.
        if matches!(operator, B::And | B::Or) {
            let decides = if operator == B::And { Value::Bool(false) } else { Value::Bool(true) };
            if lhs.unmarked() == &decides {
                return Ok(remark(decides, lhs.has_sensitive()));
            }
        }
        let rhs = self.eval(&op.rhs_expr, scope)?;
        let (values, sensitive) = unmark_all(vec![lhs, rhs]);
        let (l, r) = (&values[0], &values[1]);
        let span = op.span();
        if matches!(operator, B::Eq | B::NotEq) {
            if l.has_unknown() || r.has_unknown() {
                return Ok(Value::Unknown);
            }
            let eq = l == r;
            return Ok(remark(Value::Bool(if operator == B::Eq { eq } else { !eq }), sensitive));
        }
        if matches!(l, Value::Unknown) || matches!(r, Value::Unknown) {
            return Ok(Value::Unknown);
        }
        let result = match operator {
            B::And | B::Or => match (l, r) {
                (Value::Bool(a), Value::Bool(b)) => Value::Bool(if operator == B::And { *a && *b } else { *a || *b }),
                _ => {
                    return Err(
                        self.err(span, format!("Operator {} needs bools, got {} and {}", operator.as_str(), l.type_name(), r.type_name()))
                    );
                }
            },
            _ => {
                let num = |v: &Value| -> Option<Number> {
                    match v {
                        Value::Number(n) => Some(n.clone()),
                        Value::String(s) => Number::parse(s).ok(),
                        _ => None,
                    }
                };
                let (Some(a), Some(b)) = (num(l), num(r)) else {
                    return Err(self
                        .err(span, format!("Operator {} needs numbers, got {} and {}", operator.as_str(), l.type_name(), r.type_name())));
                };
                let arithmetic = |result: Result<Number, NumberError>| match result {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(NumberError::DivisionByZero) if operator == B::Mod => Err(self.err(span.clone(), "Modulo by zero")),
                    Err(NumberError::DivisionByZero) => Err(self.err(span.clone(), "Division by zero")),
                    Err(e) => Err(self.err(span.clone(), format!("Operator {}: {e}", operator.as_str()))),
                };
                match operator {
                    B::Plus => arithmetic(a.add(&b))?,
                    B::Minus => arithmetic(a.sub(&b))?,
                    B::Mul => arithmetic(a.mul(&b))?,
                    B::Div => arithmetic(a.div(&b))?,
                    B::Mod => arithmetic(a.rem(&b))?,
                    B::Less => Value::Bool(a < b),
                    B::LessEq => Value::Bool(a <= b),
                    B::Greater => Value::Bool(a > b),
                    B::GreaterEq => Value::Bool(a >= b),
                    _ => return Err(self.err(span, format!("Unsupported operator {}", operator.as_str()))),
                }
            }
        };
        Ok(remark(result, sensitive))
    }

    /// Follows leading attribute and index operators through unmarked maps
    /// and lists by reference; stops at the first operator whose result is
    /// not simply a child (marks, unknowns, errors, splats: `traverse`
    /// handles those). Returns the value reached and how many operators it
    /// followed.
    fn walk_plain<'v>(
        &self,
        base: &'v Value,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
        scope: &mut Scope<'_>,
    ) -> Result<(&'v Value, usize), Diag> {
        let mut current = base;
        for (i, op) in ops.iter().enumerate() {
            let next = match (op.value(), current) {
                (TraversalOperator::GetAttr(name), Value::Map(map)) => map.get(name.as_str()),
                (TraversalOperator::Index(index), Value::List(items)) => match self.eval(index, scope)? {
                    key @ Value::Number(_) => key.as_i64().and_then(|k| usize::try_from(k).ok()).and_then(|k| items.get(k)),
                    _ => None,
                },
                (TraversalOperator::Index(index), Value::Map(map)) => match self.eval(index, scope)? {
                    Value::String(k) => map.get(&k),
                    _ => None,
                },
                (TraversalOperator::LegacyIndex(n), Value::List(items)) => usize::try_from(*n.value()).ok().and_then(|k| items.get(k)),
                _ => None,
            };
            match next {
                Some(v) => current = v,
                None => return Ok((current, i)),
            }
        }
        Ok((current, ops.len()))
    }

    fn traverse(
        &self,
        base: Value,
        ops: &[hcl_edit::Decorated<TraversalOperator>],
        scope: &mut Scope<'_>,
        root: &Expression,
    ) -> Result<Value, Diag> {
        let mut current = base;
        let mut i = 0;
        while i < ops.len() {
            let op = &ops[i];
            match op.value() {
                TraversalOperator::AttrSplat(_) | TraversalOperator::FullSplat(_) => {
                    // HCL: `[*]` applies every following operator to each
                    // element; `.*` only the attribute accesses right after
                    // it (`a.*.b[0]` is the first `b`, `a[*].b[0]` each `b`'s
                    // first element).
                    let full = matches!(op.value(), TraversalOperator::FullSplat(_));
                    let end = if full {
                        ops.len()
                    } else {
                        i + 1
                            + ops[i + 1..]
                                .iter()
                                .take_while(|o| matches!(o.value(), TraversalOperator::GetAttr(_) | TraversalOperator::LegacyIndex(_)))
                                .count()
                    };
                    let per_item = &ops[i + 1..end];
                    let sensitive = matches!(current, Value::Sensitive(_));
                    // A list splats its elements; null is an empty list; any
                    // other value (an object included) is a list of itself.
                    let items = match current.unmarked() {
                        Value::Unknown => return Ok(Value::Unknown),
                        Value::Null => Vec::new(),
                        Value::List(items) => items.clone(),
                        other => vec![other.clone()],
                    };
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.traverse(item, per_item, scope, root)?);
                    }
                    current = remark(Value::List(out), sensitive);
                    i = end;
                    continue;
                }
                TraversalOperator::GetAttr(name) => {
                    current = self.get(current, name.as_str(), op.span(), root)?;
                }
                TraversalOperator::Index(index) => {
                    let key = self.eval(index, scope)?;
                    current = self.index(current, key, op.span())?;
                }
                TraversalOperator::LegacyIndex(n) => {
                    current = self.index(current, Value::from(*n.value()), op.span())?;
                }
            }
            i += 1;
        }
        Ok(current)
    }

    fn get(&self, value: Value, name: &str, span: Option<std::ops::Range<usize>>, root: &Expression) -> Result<Value, Diag> {
        // Only a mark on the container itself carries over to its parts.
        let sensitive = matches!(value, Value::Sensitive(_));
        match value.unmarked() {
            Value::Unknown => Ok(Value::Unknown),
            Value::Map(map) => match map.get(name) {
                Some(v) => Ok(remark(v.clone(), sensitive)),
                None => {
                    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    let hint = super::load::suggest(name, &keys).map(|s| format!(" Did you mean {s:?}?")).unwrap_or_default();
                    Err(self
                        .err(span, format!("Unsupported attribute {name:?} on {}", root_text(root)))
                        .with_detail(format!("This value has no attribute {name:?}.{hint}")))
                }
            },
            Value::List(_) => Err(self
                .err(span, format!("Cannot read attribute {name:?} of a list"))
                .with_detail("This value is a list (a resource with count?): index it, e.g. [0], or use a splat [*].")),
            Value::Null => Err(self.err(span, format!("Attempt to read attribute {name:?} of null"))),
            other => Err(self.err(span, format!("Cannot read attribute {name:?} of a {}", other.type_name()))),
        }
    }

    fn index(&self, value: Value, key: Value, span: Option<std::ops::Range<usize>>) -> Result<Value, Diag> {
        let sensitive = matches!(value, Value::Sensitive(_)) || key.has_sensitive();
        let result = match (value.unmarked(), key.unmarked()) {
            (Value::Unknown, _) | (_, Value::Unknown) => Value::Unknown,
            (Value::List(items), k) => {
                let idx = k.as_i64().or_else(|| k.as_str().and_then(|s| s.parse().ok()));
                match idx {
                    Some(i) if i >= 0 && (i as usize) < items.len() => items[i as usize].clone(),
                    Some(i) => return Err(self.err(span, format!("Index {i} out of range for a list of {} elements", items.len()))),
                    None => return Err(self.err(span, format!("A list index must be a whole number, got {}", k.type_name()))),
                }
            }
            (Value::Map(map), k) => match k.to_template_string() {
                Some(s) => match map.get(&s) {
                    Some(v) => v.clone(),
                    None => return Err(self.err(span, format!("The map has no element {s:?}"))),
                },
                None => return Err(self.err(span, format!("A map key must be a string, got {}", k.type_name()))),
            },
            (other, _) => return Err(self.err(span, format!("Cannot index a {}", other.type_name()))),
        };
        Ok(remark(result, sensitive))
    }

    fn for_expr(&self, f: &hcl_edit::expr::ForExpr, scope: &mut Scope<'_>) -> Result<Value, Diag> {
        let collection = self.eval(&f.intro.collection_expr, scope)?;
        let sensitive = matches!(collection, Value::Sensitive(_));
        let pairs: Vec<(Value, Value)> = match collection.unmarked() {
            Value::Unknown => return Ok(Value::Unknown),
            Value::List(items) => items.iter().enumerate().map(|(i, v)| (Value::from(i), v.clone())).collect(),
            Value::Map(map) => map.iter().map(|(k, v)| (Value::String(k.clone()), v.clone())).collect(),
            Value::Null => return Err(self.err(f.intro.collection_expr.span(), "Cannot iterate over null")),
            other => return Err(self.err(f.intro.collection_expr.span(), format!("Cannot iterate over a {}", other.type_name()))),
        };
        let key_var = f.intro.key_var.as_ref().map(|k| k.as_str().to_string());
        let value_var = f.intro.value_var.as_str().to_string();
        let mut list = Vec::new();
        let mut map = ValueMap::new();
        let mut unknown = false;
        for (k, v) in pairs {
            let mut bound = 1;
            if let Some(kv) = &key_var {
                scope.bind(kv, k);
                bound += 1;
            }
            scope.bind(&value_var, v);
            let result = (|| -> Result<(), Diag> {
                self.budget.charge_raw(1, 0).map_err(|m| self.err(f.span(), m))?;
                if let Some(cond) = &f.cond {
                    match self.eval(&cond.expr, scope)?.unmarked() {
                        Value::Bool(true) => {}
                        Value::Bool(false) => return Ok(()),
                        Value::Unknown => {
                            unknown = true;
                            return Ok(());
                        }
                        other => {
                            return Err(self.err(cond.expr.span(), format!("A for condition must be a bool, got {}", other.type_name())));
                        }
                    }
                }
                let value = self.charged(f.value_expr.span(), self.eval(&f.value_expr, scope)?)?;
                match &f.key_expr {
                    None => list.push(value),
                    Some(key_expr) => {
                        let key = self.eval(key_expr, scope)?;
                        match key.to_template_string() {
                            Some(key) if f.grouping => {
                                let entry = map.entry(key).or_insert_with(|| Value::List(Vec::new()));
                                if let Value::List(items) = entry {
                                    items.push(value);
                                }
                            }
                            Some(key) => {
                                if map.insert(key.clone(), value).is_some() {
                                    return Err(self
                                        .err(key_expr.span(), format!("Duplicate key {key:?} in for expression"))
                                        .with_detail("Use the grouping mode (...) after the value to collect duplicates into lists."));
                                }
                            }
                            None if matches!(key, Value::Unknown) => unknown = true,
                            None => return Err(self.err(key_expr.span(), format!("Object keys must be strings, got {}", key.type_name()))),
                        }
                    }
                }
                Ok(())
            })();
            for _ in 0..bound {
                scope.unbind();
            }
            result?;
        }
        if unknown {
            return Ok(Value::Unknown);
        }
        let out = if f.key_expr.is_some() { Value::Map(map) } else { Value::List(list) };
        Ok(remark(out, sensitive))
    }

    fn template(&self, template: &Template, scope: &mut Scope<'_>) -> Result<Value, Diag> {
        // A template that is exactly one interpolation is its value, not a
        // string (HCL's rule: "${var.list}" is the list).
        if let Some(Element::Interpolation(i)) = template.as_single_element() {
            return self.eval(&i.expr, scope);
        }
        let mut out = String::new();
        let mut unknown = false;
        let mut sensitive = false;
        self.template_into(template, scope, &mut out, &mut unknown, &mut sensitive, (false, false))?;
        if unknown {
            return Ok(Value::Unknown);
        }
        self.budget.charge_raw(1, out.len()).map_err(|m| self.err(template.span(), m))?;
        Ok(remark(Value::String(out), sensitive))
    }

    fn template_into(
        &self,
        template: &Template,
        scope: &mut Scope<'_>,
        out: &mut String,
        unknown: &mut bool,
        sensitive: &mut bool,
        strip: (bool, bool),
    ) -> Result<(), Diag> {
        let elements = template;
        for (k, element) in template.iter().enumerate() {
            if out.len() > funcs::MAX_STRING_BYTES {
                return Err(self.err(template.span(), format!("the template's text is larger than {} bytes", funcs::MAX_STRING_BYTES)));
            }
            match element {
                Element::Literal(s) => {
                    // `~` markers strip the whitespace next to them.
                    let mut text = s.value().as_str();
                    if (k == 0 && strip.0) || k.checked_sub(1).and_then(|p| elements.get(p)).is_some_and(strips_after) {
                        text = text.trim_start();
                    }
                    if (k + 1 == elements.len() && strip.1) || elements.get(k + 1).is_some_and(strips_before) {
                        text = text.trim_end();
                    }
                    if text.is_ascii() { out.push_str(text) } else { out.push_str(&nfc(text)) }
                }
                Element::Interpolation(i) => {
                    let v = self.eval(&i.expr, scope)?;
                    *sensitive |= v.has_sensitive();
                    match v.unmarked() {
                        Value::Unknown => *unknown = true,
                        Value::Null => return Err(self.err(i.expr.span(), "Cannot interpolate null into a string")),
                        other => match other.to_template_string() {
                            Some(s) => out.push_str(&s),
                            None => {
                                return Err(self
                                    .err(i.expr.span(), format!("Cannot interpolate a {} into a string", other.type_name()))
                                    .with_detail("Use jsonencode() or join() to turn collections into strings."));
                            }
                        },
                    }
                }
                Element::Directive(d) => match &**d {
                    Directive::If(ifd) => {
                        let cond = self.eval(&ifd.if_expr.cond_expr, scope)?;
                        *sensitive |= cond.has_sensitive();
                        match cond.unmarked() {
                            Value::Unknown => *unknown = true,
                            Value::Bool(true) => {
                                let last =
                                    ifd.else_expr.as_ref().map(|e| e.strip.strip_start()).unwrap_or(ifd.endif_expr.strip.strip_start());
                                self.template_into(
                                    &ifd.if_expr.template,
                                    scope,
                                    out,
                                    unknown,
                                    sensitive,
                                    (ifd.if_expr.strip.strip_end(), last),
                                )?
                            }
                            Value::Bool(false) => {
                                if let Some(e) = &ifd.else_expr {
                                    let marks = (e.strip.strip_end(), ifd.endif_expr.strip.strip_start());
                                    self.template_into(&e.template, scope, out, unknown, sensitive, marks)?;
                                }
                            }
                            other => {
                                return Err(self.err(
                                    ifd.if_expr.cond_expr.span(),
                                    format!("An if condition must be a bool, got {}", other.type_name()),
                                ));
                            }
                        }
                    }
                    Directive::For(ford) => {
                        let f = &ford.for_expr;
                        let coll = self.eval(&f.collection_expr, scope)?;
                        *sensitive |= coll.has_sensitive();
                        let pairs: Vec<(Value, Value)> = match coll.unmarked() {
                            Value::Unknown => {
                                *unknown = true;
                                continue;
                            }
                            Value::List(items) => items.iter().enumerate().map(|(i, v)| (Value::from(i), v.clone())).collect(),
                            Value::Map(m) => m.iter().map(|(k, v)| (Value::String(k.clone()), v.clone())).collect(),
                            other => return Err(self.err(f.collection_expr.span(), format!("Cannot iterate over a {}", other.type_name()))),
                        };
                        for (k, v) in pairs {
                            self.budget.charge_raw(1, 0).map_err(|m| self.err(f.collection_expr.span(), m))?;
                            let mut bound = 1;
                            if let Some(kv) = &f.key_var {
                                scope.bind(kv.as_str(), k);
                                bound += 1;
                            }
                            scope.bind(f.value_var.as_str(), v);
                            let marks = (f.strip.strip_end(), ford.endfor_expr.strip.strip_start());
                            let r = self.template_into(&f.template, scope, out, unknown, sensitive, marks);
                            for _ in 0..bound {
                                scope.unbind();
                            }
                            r?;
                        }
                    }
                },
            }
        }
        Ok(())
    }

    fn body(&self, body: &Body, schema: &Schema, scope: &mut Scope<'_>, skip: &[&str], block_loc: &Location) -> Result<Value, Diags> {
        let mut diags = Diags::new();
        let mut out = ValueMap::new();
        for attr in body.attributes() {
            let key = attr.key.as_str();
            if skip.contains(&key) {
                continue;
            }
            match schema.attribute(key) {
                None => {
                    let names: Vec<&str> = schema.attributes.iter().filter(|a| !a.computed).map(|a| a.name).collect();
                    let hint = super::load::suggest(key, &names)
                        .map(|s| format!("Did you mean {s:?}?"))
                        .unwrap_or_else(|| format!("Arguments of this block: {}.", names.join(", ")));
                    diags.push(self.err(attr.span(), format!("Unsupported argument {key:?}")).with_detail(hint));
                }
                Some(a) if a.computed => diags.push(
                    self.err(attr.span(), format!("{key:?} is computed and cannot be set"))
                        .with_detail("It is read from the real object after apply."),
                ),
                Some(a) => match self.eval(&attr.value, scope) {
                    Ok(v) => match convert(v, &a.ty) {
                        Ok(v) => {
                            let v = if a.sensitive && !v.is_null() { v.into_sensitive() } else { v };
                            out.insert(key.to_string(), v);
                        }
                        Err(msg) => diags.push(self.err(attr.value.span(), format!("Invalid value for {key:?}: {msg}"))),
                    },
                    Err(d) => diags.push(d),
                },
            }
        }
        for a in &schema.attributes {
            if out.contains_key(a.name) {
                continue;
            }
            if a.required {
                diags.push(Diag::error(format!("Missing required argument {:?}", a.name)).at(block_loc.clone()));
            } else if let Some(default) = &a.default {
                out.insert(a.name.to_string(), default.clone());
            } else {
                out.insert(a.name.to_string(), Value::Null);
            }
        }
        // Nested blocks, literal and dynamic, grouped by schema block.
        let mut blocks: BTreeMap<&str, Vec<(Vec<String>, Value, Location)>> = BTreeMap::new();
        for structure in body.iter() {
            let Structure::Block(block) = structure else { continue };
            let ident = block.ident.as_str();
            if skip.contains(&ident) {
                continue;
            }
            if ident == "dynamic" {
                match self.dynamic(block, schema, scope) {
                    Ok(items) => {
                        for (name, labels, value, loc) in items {
                            blocks.entry(name).or_default().push((labels, value, loc));
                        }
                    }
                    Err(d) => diags.extend(d),
                }
                continue;
            }
            let Some(bs) = schema.block(ident) else {
                let names: Vec<&str> = schema.blocks.iter().map(|b| b.name).collect();
                diags.push(self.err(block.span(), format!("Unsupported block {ident:?}")).with_detail(if names.is_empty() {
                    "This resource type has no nested blocks.".to_string()
                } else {
                    format!("Blocks of this resource type: {}.", names.join(", "))
                }));
                continue;
            };
            let loc = Location::in_file(self.file, block.span().unwrap_or(0..0));
            match self.body(&block.body, &bs.body, scope, &[], &loc) {
                Ok(v) => blocks.entry(bs.name).or_default().push((block.labels.iter().map(|l| l.as_str().to_string()).collect(), v, loc)),
                Err(d) => diags.extend(d),
            }
        }
        for bs in &schema.blocks {
            let items = blocks.remove(bs.name).unwrap_or_default();
            let value = match bs.nesting {
                BlockNesting::Single => {
                    if items.len() > 1 {
                        diags.push(Diag::error(format!("At most one {:?} block is allowed", bs.name)).at(items[1].2.clone()));
                    }
                    items.into_iter().next().map(|(_, v, _)| v).unwrap_or(Value::Null)
                }
                BlockNesting::List => Value::List(items.into_iter().map(|(_, v, _)| v).collect()),
                BlockNesting::Labelled => {
                    let mut map = ValueMap::new();
                    for (labels, v, loc) in items {
                        if labels.len() != 1 {
                            diags.push(Diag::error(format!("A {:?} block needs exactly one label", bs.name)).at(loc));
                        } else if map.insert(labels[0].clone(), v).is_some() {
                            diags.push(Diag::error(format!("Duplicate {:?} block {:?}", bs.name, labels[0])).at(loc));
                        }
                    }
                    Value::Map(map)
                }
            };
            out.insert(bs.name.to_string(), value);
        }
        if diags.has_errors() { Err(diags) } else { Ok(Value::Map(out)) }
    }

    /// Expands `dynamic "NAME" { for_each, iterator, labels, content {} }`.
    #[allow(clippy::type_complexity, reason = "a local tuple of the expansion's parts")]
    fn dynamic<'s>(
        &self,
        block: &Block,
        schema: &'s Schema,
        scope: &mut Scope<'_>,
    ) -> Result<Vec<(&'s str, Vec<String>, Value, Location)>, Diags> {
        let loc = Location::in_file(self.file, block.span().unwrap_or(0..0));
        let Some(name) = block.labels.first().map(|l| l.as_str()) else {
            return Err(Diag::error("A dynamic block needs the name of the block it generates").at(loc).into());
        };
        let Some(bs) = schema.block(name) else {
            return Err(self.err(block.span(), format!("Unsupported block {name:?} in dynamic")).into());
        };
        let Some(for_each) = block.body.get_attribute("for_each") else {
            return Err(Diag::error("A dynamic block needs for_each").at(loc).into());
        };
        let iterator = match block.body.get_attribute("iterator") {
            Some(a) => match &a.value {
                Expression::Variable(v) => v.as_str().to_string(),
                other => return Err(self.err(other.span(), "iterator must be a bare name").into()),
            },
            None => name.to_string(),
        };
        let Some(content) = block.body.get_blocks("content").next() else {
            return Err(Diag::error("A dynamic block needs a content block").at(loc).into());
        };
        let collection = self.eval(&for_each.value, scope)?;
        let pairs: Vec<(Value, Value)> = match collection.deep_unmarked() {
            Value::Unknown => {
                return Err(self
                    .err(for_each.value.span(), "The dynamic block's for_each value is not known until apply")
                    .with_detail("Its value must be known at plan time; derive it from variables and locals.")
                    .into());
            }
            Value::Null => Vec::new(),
            Value::List(items) => items.into_iter().enumerate().map(|(i, v)| (Value::from(i), v)).collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::String(k), v)).collect(),
            other => {
                return Err(self.err(for_each.value.span(), format!("for_each must be a list or map, got {}", other.type_name())).into());
            }
        };
        let mut out = Vec::new();
        for (k, v) in pairs {
            scope.bind(&iterator, Value::Map(ValueMap::from([("key".to_string(), k), ("value".to_string(), v)])));
            let result = (|| -> Result<(Vec<String>, Value), Diags> {
                let labels = match block.body.get_attribute("labels") {
                    Some(a) => match self.eval(&a.value, scope)?.deep_unmarked() {
                        Value::List(items) => items
                            .iter()
                            .map(|l| l.to_template_string().ok_or_else(|| Diags::from(self.err(a.value.span(), "labels must be strings"))))
                            .collect::<Result<Vec<_>, _>>()?,
                        _ => return Err(self.err(a.value.span(), "labels must be a list of strings").into()),
                    },
                    None => Vec::new(),
                };
                let value = self.body(&content.body, &bs.body, scope, &[], &loc)?;
                Ok((labels, value))
            })();
            scope.unbind();
            let (labels, value) = result?;
            out.push((bs.name, labels, value, loc.clone()));
        }
        Ok(out)
    }
}

/// Whether an element's closing `~` strips the whitespace after it.
fn strips_after(e: &Element) -> bool {
    match e {
        Element::Literal(_) => false,
        Element::Interpolation(i) => i.strip.strip_end(),
        Element::Directive(d) => match &**d {
            Directive::If(i) => i.endif_expr.strip.strip_end(),
            Directive::For(f) => f.endfor_expr.strip.strip_end(),
        },
    }
}

/// Whether an element's opening `~` strips the whitespace before it.
fn strips_before(e: &Element) -> bool {
    match e {
        Element::Literal(_) => false,
        Element::Interpolation(i) => i.strip.strip_start(),
        Element::Directive(d) => match &**d {
            Directive::If(i) => i.if_expr.strip.strip_start(),
            Directive::For(f) => f.for_expr.strip.strip_start(),
        },
    }
}

/// String literals are Unicode NFC-normalised, as HCL does; ASCII (the
/// common case) is checked without normalising.
fn nfc(s: &str) -> String {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes { s.to_string() } else { s.nfc().collect() }
}

fn self_type(_true_expr: &Expression, chosen: &Value, alt: &Value) -> String {
    // Names the two result types in true/false order for the message.
    format!("{} / {}", chosen.type_name(), alt.type_name())
}

/// Renders `source` as a template with `vars` as its only names
/// (`templatestring`, `templatefile`). Nested renders are bounded so a
/// template cannot recurse without end.
pub(crate) fn render_template(fname: &str, source: &str, vars: &ValueMap, ctx: &funcs::Context) -> Result<Value, String> {
    thread_local! {
        static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    const MAX_DEPTH: usize = 8;
    let depth = DEPTH.with(|d| d.get());
    if depth >= MAX_DEPTH {
        return Err(format!("{fname}: templates nest more than {MAX_DEPTH} deep (a template may not render itself)"));
    }
    let template = hcl_edit::parser::parse_template(source).map_err(|e| format!("{fname}: invalid template: {e}"))?;
    let mut base: BTreeMap<String, Value> = vars.clone().into();
    if let Some(dir) = &ctx.module_dir {
        base.entry("path".into())
            .or_insert_with(|| Value::Map(ValueMap::from([("module".into(), Value::String(dir.display().to_string()))])));
    }
    let file = SourceFile::with_inputs(format!("<{fname}>").into(), source.to_string(), ctx.inputs.clone());
    DEPTH.with(|d| d.set(depth + 1));
    let result = Evaluator::new(&file).template(&template, &mut Scope::new(&base));
    DEPTH.with(|d| d.set(depth));
    result.map_err(|d| format!("{fname}: {}", d.summary))
}

fn key_span(key: &ObjectKey) -> Option<std::ops::Range<usize>> {
    match key {
        ObjectKey::Ident(i) => i.span(),
        ObjectKey::Expression(e) => e.span(),
    }
}

fn root_text(expr: &Expression) -> String {
    match expr {
        Expression::Variable(v) => v.as_str().to_string(),
        other => other.to_string().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str, base: &BTreeMap<String, Value>) -> Result<Value, Diag> {
        let file = SourceFile::new("t.hcl".into(), format!("x = {src}\n"));
        let body = hcl_edit::parser::parse_body(&file.text).unwrap();
        let attr = body.get_attribute("x").unwrap();
        eval(&Expr { expr: attr.value.clone(), file: file.clone() }, &mut Scope::new(base))
    }

    fn base() -> BTreeMap<String, Value> {
        let web = Value::List(
            (0..3).map(|i| Value::Map(ValueMap::from([("private_ip".to_string(), Value::String(format!("10.0.0.{i}")))]))).collect(),
        );
        BTreeMap::from([
            ("var".to_string(), Value::Map(ValueMap::from([("n".to_string(), Value::from(3))]))),
            ("aws_instance".to_string(), Value::Map(ValueMap::from([("web".to_string(), web)]))),
            ("later".to_string(), Value::Unknown),
            ("secret".to_string(), Value::String("pw".into()).into_sensitive()),
        ])
    }

    #[test]
    fn evaluates_for_expressions_over_splats() {
        let v = run("[for i in aws_instance.web : \"${i.private_ip}:8000\"]", &base()).unwrap();
        assert_eq!(v.to_json().to_string(), r#"["10.0.0.0:8000","10.0.0.1:8000","10.0.0.2:8000"]"#);
        let v = run("aws_instance.web[*].private_ip", &base()).unwrap();
        assert_eq!(v.as_list().unwrap().len(), 3);
    }

    #[test]
    fn splats_follow_hcl_on_objects_null_and_legacy_indexes() {
        let mut scope = base();
        scope.insert("nothing".into(), Value::Null);
        scope.insert("one".into(), Value::Map(ValueMap::from([("id".to_string(), Value::from("i-1"))])));
        let json = |src: &str| run(src, &scope).unwrap().to_json().to_string();
        assert_eq!(json("one[*].id"), r#"["i-1"]"#, "a single object splats as a list of itself");
        assert_eq!(json("one.*.id"), r#"["i-1"]"#);
        assert_eq!(json("nothing[*].id"), "[]", "null splats as an empty list");
        assert_eq!(json("nothing.*.id"), "[]");
        assert_eq!(json("aws_instance.web.*.private_ip[1]"), r#""10.0.0.1""#, ".* stops before an index");
        assert_eq!(json("aws_instance.web.1.private_ip"), r#""10.0.0.1""#, "legacy attribute index");
        let err = run("aws_instance.web[*].ip", &scope).unwrap_err();
        assert!(err.summary.contains("Unsupported attribute \"ip\""), "{err}");
        assert_eq!(err.location.unwrap().line, 1);
        let err = run("aws_instance.web.7.private_ip", &scope).unwrap_err();
        assert!(err.summary.contains("Index 7 out of range for a list of 3 elements"), "{err}");
    }

    #[test]
    fn unknown_propagates_and_sensitive_sticks() {
        assert_eq!(run("\"a-${later}\"", &base()).unwrap(), Value::Unknown);
        assert_eq!(run("var.n + 1", &base()).unwrap(), Value::from(4));
        assert!(run("\"x${secret}\"", &base()).unwrap().has_sensitive());
        assert_eq!(run("false && later", &base()).unwrap(), Value::Bool(false));
    }

    #[test]
    fn errors_point_at_the_line() {
        let err = run("var.m", &base()).unwrap_err();
        assert!(err.summary.contains("Unsupported attribute \"m\""), "{err}");
        assert_eq!(err.location.unwrap().line, 1);
        assert!(run("1 / 0", &base()).is_err());
        assert!(run("nosuch(1)", &base()).is_err());
    }

    #[test]
    fn conditionals_templates_and_functions() {
        assert_eq!(run("var.n > 2 ? \"big\" : \"small\"", &base()).unwrap(), Value::from("big"));
        assert_eq!(run("join(\",\", [\"a\", \"b\"])", &base()).unwrap(), Value::from("a,b"));
        assert_eq!(run("{ for k, v in { a = 1 } : k => v * 2 }", &base()).unwrap().get("a"), Some(&Value::from(2)));
    }
}
