//! Type conversion: `tobool tolist tomap tonumber toset tostring`,
//! `convert(value, type)`, the sensitivity functions (`sensitive
//! nonsensitive issensitive`, `ephemeralasnull`) and Terraform's type
//! unification, which the collection functions share (`tolist(["a", 3])`
//! is `["a", "3"]`, `coalesce(1, "x")` is `"1"`).
//!
//! `try`, `can` and `convert` need unevaluated arguments; the evaluator
//! calls them (see `eval.rs`) and uses [`Type`] and [`convert_to`] from here.

use super::Args;
use super::args::parse_number;
use crate::value::Value;
use hcl_edit::expr::{Expression, ObjectKey};

/// A type constraint, as written in `convert(value, list(string))` or a
/// variable's `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Tuple(Vec<Type>),
    /// Attributes with their types and whether they are `optional(…)`.
    Object(Vec<(String, Type, bool)>),
}

impl Type {
    /// Reads a type constraint expression.
    pub fn parse(expr: &Expression) -> Result<Type, String> {
        match expr {
            Expression::Variable(v) => match v.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "any" => Ok(Type::Any),
                other => Err(format!("the keyword {other:?} is not a valid type constraint")),
            },
            Expression::FuncCall(call) => {
                let name = call.name.name.as_str();
                let args: Vec<&Expression> = call.args.iter().collect();
                let one = || match args.as_slice() {
                    [only] => Ok(*only),
                    _ => Err(format!("{name}(…) takes exactly one argument")),
                };
                match name {
                    "list" => Ok(Type::List(Box::new(Type::parse(one()?)?))),
                    "set" => Ok(Type::Set(Box::new(Type::parse(one()?)?))),
                    "map" => Ok(Type::Map(Box::new(Type::parse(one()?)?))),
                    "tuple" => match one()? {
                        Expression::Array(items) => Ok(Type::Tuple(items.iter().map(Type::parse).collect::<Result<_, _>>()?)),
                        _ => Err("tuple(…) takes a list of types".into()),
                    },
                    "object" => match one()? {
                        Expression::Object(obj) => {
                            let mut attrs = Vec::new();
                            for (key, value) in obj.iter() {
                                let key = match key {
                                    ObjectKey::Ident(i) => i.as_str().to_string(),
                                    ObjectKey::Expression(Expression::Variable(v)) => v.as_str().to_string(),
                                    ObjectKey::Expression(Expression::String(s)) => s.value().to_string(),
                                    _ => return Err("object attribute names must be names".into()),
                                };
                                let (ty, optional) = match value.expr() {
                                    Expression::FuncCall(c) if c.name.name.as_str() == "optional" => match c.args.iter().next() {
                                        Some(inner) => (Type::parse(inner)?, true),
                                        None => return Err("optional(…) takes a type".into()),
                                    },
                                    other => (Type::parse(other)?, false),
                                };
                                attrs.push((key, ty, optional));
                            }
                            Ok(Type::Object(attrs))
                        }
                        _ => Err("object(…) takes an object of attribute types".into()),
                    },
                    other => Err(format!("{other:?} is not a valid type constructor")),
                }
            }
            _ => Err("a type constraint is a keyword such as string or a constructor such as list(string)".into()),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Type::Any => "any",
            Type::String => "string",
            Type::Number => "number",
            Type::Bool => "bool",
            Type::List(_) => "list",
            Type::Set(_) => "set",
            Type::Map(_) => "map",
            Type::Tuple(_) => "tuple",
            Type::Object(_) => "object",
        }
    }
}

/// Converts a value to a type the way Terraform's `convert` does.
pub fn convert_to(value: &Value, ty: &Type) -> Result<Value, String> {
    let fail = |v: &Value| Err(format!("{} required, got {}", ty.name(), v.type_name()));
    match value {
        Value::Null | Value::Unknown => Ok(value.clone()),
        Value::Sensitive(inner) => convert_to(inner, ty).map(Value::into_sensitive),
        v => match (ty, v) {
            (Type::Any, v) => Ok(v.clone()),
            (Type::String, Value::String(_)) => Ok(v.clone()),
            (Type::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
            (Type::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (Type::Number, Value::Number(_)) => Ok(v.clone()),
            (Type::Number, Value::String(s)) => parse_number(s)
                .map(Value::Number)
                .ok_or_else(|| format!("cannot convert {s:?} to number; given string must be a decimal representation of a number")),
            (Type::Bool, Value::Bool(_)) => Ok(v.clone()),
            (Type::Bool, Value::String(s)) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            (Type::Bool, Value::String(s)) => {
                Err(format!("cannot convert {s:?} to bool; only the strings \"true\" or \"false\" are allowed"))
            }
            (Type::List(t), Value::List(items)) => convert_all(items, t).map(Value::List),
            (Type::Set(t), Value::List(items)) => super::set::to_set(&convert_all(items, t)?).map(Value::List),
            (Type::Tuple(ts), Value::List(items)) if ts.len() == items.len() => {
                items.iter().zip(ts).map(|(v, t)| convert_to(v, t)).collect::<Result<_, _>>().map(Value::List)
            }
            (Type::Tuple(ts), Value::List(items)) => Err(format!("tuple required with {} elements, got {}", ts.len(), items.len())),
            (Type::Map(t), Value::Map(m)) => {
                let any = **t == Type::Any;
                let values: Vec<Value> = m.values().cloned().collect();
                let values = if any { unify(&values)? } else { convert_all(&values, t)? };
                Ok(Value::Map(m.keys().cloned().zip(values).collect()))
            }
            (Type::Object(attrs), Value::Map(m)) => {
                let mut out = crate::value::ValueMap::new();
                for (name, t, optional) in attrs {
                    match m.get(name) {
                        Some(v) => {
                            out.insert(name.clone(), convert_to(v, t)?);
                        }
                        None if *optional => {
                            out.insert(name.clone(), Value::Null);
                        }
                        None => return Err(format!("attribute {name:?} is required")),
                    }
                }
                Ok(Value::Map(out))
            }
            _ => fail(v),
        },
    }
}

fn convert_all(items: &[Value], t: &Type) -> Result<Vec<Value>, String> {
    if *t == Type::Any {
        return unify(items);
    }
    items.iter().map(|v| convert_to(v, t)).collect()
}

/// The type all of `values` convert to, as Terraform unifies the elements
/// of a list or the results of a conditional.
pub(crate) fn common_type(values: &[Value]) -> Result<Type, String> {
    let known: Vec<&Value> = values.iter().map(Value::unmarked).filter(|v| !matches!(v, Value::Null | Value::Unknown)).collect();
    let Some(first) = known.first() else { return Ok(Type::Any) };
    let all = |p: fn(&Value) -> bool| known.iter().all(|v| p(v));
    if all(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))) {
        if known.iter().all(|v| std::mem::discriminant(*v) == std::mem::discriminant(known[0])) {
            return Ok(match first {
                Value::String(_) => Type::String,
                Value::Number(_) => Type::Number,
                _ => Type::Bool,
            });
        }
        if known.iter().any(|v| matches!(v, Value::String(_))) {
            return Ok(Type::String);
        }
        return Err("all elements must have the same type (number and bool do not mix)".into());
    }
    if all(|v| matches!(v, Value::List(_))) {
        let inner: Vec<Value> = known.iter().filter_map(|v| v.as_list()).flatten().cloned().collect();
        return Ok(Type::List(Box::new(common_type(&inner)?)));
    }
    if all(|v| matches!(v, Value::Map(_))) {
        let maps: Vec<&crate::value::ValueMap> = known.iter().filter_map(|v| v.as_map()).collect();
        let same_keys = maps.iter().all(|m| m.keys().eq(maps[0].keys()));
        if same_keys {
            let mut attrs = Vec::new();
            for key in maps[0].keys() {
                let column: Vec<Value> = maps.iter().filter_map(|m| m.get(key)).cloned().collect();
                attrs.push((key.clone(), common_type(&column)?, false));
            }
            return Ok(Type::Object(attrs));
        }
        let inner: Vec<Value> = maps.iter().flat_map(|m| m.values()).cloned().collect();
        return Ok(Type::Map(Box::new(common_type(&inner)?)));
    }
    Err("all elements must have the same type".into())
}

/// Converts every value to their common type.
pub(crate) fn unify(values: &[Value]) -> Result<Vec<Value>, String> {
    // The common case — all of one primitive kind — needs no conversion.
    let ty = common_type(values)?;
    if matches!(ty, Type::Any) {
        return Ok(values.to_vec());
    }
    values.iter().map(|v| convert_to(v, &ty)).collect()
}

fn to_kind(f: &Args, ty: Type, accepts: fn(&Value) -> bool) -> Result<Value, String> {
    f.arity(1, 1)?;
    let v = f.arg(0)?;
    if !v.is_null() && !matches!(v, Value::Unknown) && !accepts(v) {
        return Err(f.error(format!("cannot convert {} to {}", v.type_name(), ty.name())));
    }
    convert_to(v, &ty).map_err(|e| f.error(e))
}

pub(super) fn tostring(f: &Args) -> Result<Value, String> {
    to_kind(f, Type::String, |v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
}

pub(super) fn tonumber(f: &Args) -> Result<Value, String> {
    to_kind(f, Type::Number, |v| matches!(v, Value::String(_) | Value::Number(_)))
}

pub(super) fn tobool(f: &Args) -> Result<Value, String> {
    to_kind(f, Type::Bool, |v| matches!(v, Value::String(_) | Value::Bool(_)))
}

pub(super) fn tolist(f: &Args) -> Result<Value, String> {
    to_kind(f, Type::List(Box::new(Type::Any)), |v| matches!(v, Value::List(_)))
}

pub(super) fn toset(f: &Args) -> Result<Value, String> {
    to_kind(f, Type::Set(Box::new(Type::Any)), |v| matches!(v, Value::List(_)))
}

pub(super) fn tomap(f: &Args) -> Result<Value, String> {
    to_kind(f, Type::Map(Box::new(Type::Any)), |v| matches!(v, Value::Map(_)))
}

pub(super) fn sensitive(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(f.arg(0)?.clone().into_sensitive())
}

/// Removes the top-level sensitive mark; a value that is not sensitive
/// passes through, as in Terraform since 1.8.
pub(super) fn nonsensitive(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(f.arg(0)?.unmarked().clone())
}

pub(super) fn issensitive(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(Value::Bool(matches!(f.arg(0)?, Value::Sensitive(_))))
}

/// himaplan has no ephemeral values, so every value is kept.
pub(super) fn ephemeralasnull(f: &Args) -> Result<Value, String> {
    f.arity(1, 1)?;
    Ok(f.arg(0)?.clone())
}
