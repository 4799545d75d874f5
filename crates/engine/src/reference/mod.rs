//! The resource reference, generated from the providers' schemas (the one
//! source of what an attribute is): one markdown page per resource type
//! plus an index (`himaplan docs`), and the schema document shaped like
//! `terraform providers schema -json` (`himaplan providers schema --json`).
//!
//! Pure functions of a [`Registry`]: no I/O, deterministic output (types
//! and providers in name order, attributes in schema order).

mod pages;
mod schema_json;

pub use pages::{Page, pages};
pub use schema_json::{provider_address, schema_json};

use crate::provider::{AttrSchema, AttrType};

/// An attribute's type as the configuration language writes it:
/// `string`, `list(string)`, `map(any)`.
pub fn type_text(ty: &AttrType) -> String {
    match ty {
        AttrType::String => "string".into(),
        AttrType::Number => "number".into(),
        AttrType::Bool => "bool".into(),
        AttrType::List(inner) => format!("list({})", type_text(inner)),
        AttrType::Map(inner) => format!("map({})", type_text(inner)),
        AttrType::Any => "any".into(),
    }
}

/// Whether configuration must, may or cannot set the attribute.
pub fn kind_text(a: &AttrSchema) -> &'static str {
    if a.computed {
        "computed"
    } else if a.required {
        "required"
    } else if a.optional_computed {
        "optional, computed"
    } else {
        "optional"
    }
}

/// What changing the attribute does to the real object.
pub fn change_text(a: &AttrSchema) -> String {
    if a.computed {
        "read only".into()
    } else if a.replace {
        "**replace**".into()
    } else if let Some(d) = a.disruption {
        format!("in place, disruptive ({d})")
    } else {
        "in place, live".into()
    }
}
