//! `himaplan fmt`: the canonical layout of `terraform fmt` (Terraform 1.15),
//! byte for byte, so editors and pre-commit hooks of both tools agree.
//!
//! The source is first parsed with hcl-edit so that a syntax error is
//! reported (with line and column) before anything is touched. Formatting
//! then follows Terraform's own pipeline on a flat token stream: `lex`
//! produces hclsyntax's tokens, `rewrite` makes the three non-whitespace
//! changes Terraform's `fmt` command makes (quoted block labels, unwrapped
//! `"${expr}"` values, modern variable types) and `layout` runs hclwrite's
//! whitespace passes (indentation, spacing between tokens, alignment of `=`
//! and of trailing comments). Newlines are never added or removed: blank
//! lines, comment text and heredoc bodies stay as written. This module must
//! not do I/O.

mod layout;
mod lex;
mod rewrite;
#[cfg(test)]
mod tests;

use std::fmt;

/// A syntax error found while formatting; the source is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FmtError {
    /// One-based line of the error.
    pub line: usize,
    /// One-based column of the error.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for FmtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for FmtError {}

/// Formats HCL source the way `terraform fmt` does.
///
/// Guarantees: the result means the same configuration (only whitespace,
/// label quoting, `"${x}"` → `x` and legacy variable types change), every
/// comment and blank line stays where it was, heredoc bodies are untouched,
/// and line endings are kept (a CRLF file stays CRLF). A byte-order mark is
/// dropped, as Terraform drops it. A source that does not parse returns the
/// parser's error position.
pub fn format_source(src: &str) -> Result<String, FmtError> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    hcl_edit::parser::parse_body(src).map_err(|err| FmtError {
        line: err.location().line(),
        col: err.location().column(),
        message: err.message().to_string(),
    })?;
    let mut tokens = rewrite::rewrite(lex::scan(src));
    layout::format(&mut tokens);
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    for token in &tokens {
        out.extend(std::iter::repeat_n(' ', token.spaces_before));
        out.push_str(&token.text);
    }
    Ok(out)
}
