//! Editing a variables file (`*.hvars`): set some attributes to new
//! literal values and keep everything else — comments, order, spacing —
//! byte for byte. Used by `advise --write`. Works on text; the caller
//! reads and writes the file.

use crate::value::Value;
use hcl_edit::Span;
use hcl_edit::structure::Structure;

/// Why a variables file could not be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarFileError {
    #[error("line {line}: invalid HCL syntax: {message}")]
    Syntax { line: usize, message: String },
    #[error("line {line}: variables files hold only NAME = VALUE attributes")]
    NotAttribute { line: usize },
    #[error("{0} is neither a number nor a string")]
    Unsupported(String),
}

/// `text` with each `(name, value)` set: an existing attribute's value is
/// replaced in place (its comments and spacing kept), a missing one is
/// appended. `header` starts a file that was empty.
pub fn set_values(text: &str, values: &[(String, Value)], header: &str) -> Result<String, VarFileError> {
    let body = hcl_edit::parser::parse_body(text)
        .map_err(|e| VarFileError::Syntax { line: e.location().line(), message: e.message().to_string() })?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut replacements: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut appended = String::new();
    for (name, value) in values {
        let literal = literal(value)?;
        let existing = body.iter().find_map(|s| match s {
            Structure::Attribute(a) if a.key.as_str() == name => Some(a),
            _ => None,
        });
        match existing.and_then(|a| a.value.span()) {
            Some(span) => replacements.push((span, literal)),
            None => appended.push_str(&format!("{name} = {literal}\n")),
        }
    }
    if let Some(block) = body.iter().find_map(|s| s.as_block()) {
        return Err(VarFileError::NotAttribute { line: line_of(block.span().map_or(0, |s| s.start)) });
    }
    replacements.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut out = text.to_string();
    for (span, literal) in replacements {
        out.replace_range(span, &literal);
    }
    if !appended.is_empty() {
        if out.trim().is_empty() {
            out = header.to_string();
        } else if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&appended);
    }
    Ok(out)
}

/// The HCL literal of a number or string (`${` and `%{` escaped).
fn literal(value: &Value) -> Result<String, VarFileError> {
    if let Some(s) = value.as_str() {
        let json = serde_json::Value::String(s.to_string()).to_string();
        return Ok(json.replace("${", "$${").replace("%{", "%%{"));
    }
    if value.as_f64().is_some() {
        return Ok(value.deep_unmarked().to_string());
    }
    Err(VarFileError::Unsupported(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_comments_and_replaces_in_place() {
        let text = "# proposed by himaplan advise\nweb_count = 3 # EC2 web tier\n\n// the ladder\nweb_instance_type = \"t3.small\"\n";
        let out = set_values(text, &[("web_instance_type".into(), Value::from("t3.medium")), ("web_count".into(), Value::from(4i64))], "")
            .unwrap();
        assert_eq!(
            out,
            "# proposed by himaplan advise\nweb_count = 4 # EC2 web tier\n\n// the ladder\nweb_instance_type = \"t3.medium\"\n"
        );
    }

    #[test]
    fn appends_missing_values_and_starts_empty_files_with_the_header() {
        let out = set_values("", &[("celery_replicas".into(), Value::from(8i64))], "# header\n").unwrap();
        assert_eq!(out, "# header\ncelery_replicas = 8\n");
        let out = set_values("a = 1", &[("b".into(), Value::from("x${y}"))], "# header\n").unwrap();
        assert_eq!(out, "a = 1\nb = \"x$${y}\"\n");
    }

    #[test]
    fn refuses_blocks_and_bad_syntax() {
        assert_eq!(set_values("a {\n}\n", &[], ""), Err(VarFileError::NotAttribute { line: 1 }));
        assert!(matches!(set_values("a = = 1\n", &[], ""), Err(VarFileError::Syntax { line: 1, .. })));
    }
}
