//! Diagnostics: user-facing problems with a file and line where there is
//! one, collected (not thrown) so that validation reports every problem at
//! once.
//!
//! Rendering is plain text without colour; the CLI decides where it goes.

use crate::config::inputs::Inputs;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A source file of the configuration, kept for line lookup and snippets.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as shown to users (relative to the working directory where possible).
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
    /// Lines of the whole file before `text`: 0 for a whole file, more for
    /// a part of one ([`SourceFile::part`]) that starts at a line start.
    first_line: usize,
    /// The outside reads (files, the clock) its expressions' functions
    /// make: shared by every file of one configuration.
    pub inputs: Arc<Inputs>,
}

impl SourceFile {
    /// A file with inputs of its own (a variables file, a test's source).
    pub fn new(path: PathBuf, text: String) -> Arc<SourceFile> {
        SourceFile::with_inputs(path, text, Arc::new(Inputs::recording()))
    }

    /// A file of a configuration whose files share `inputs`.
    pub fn with_inputs(path: PathBuf, text: String, inputs: Arc<Inputs>) -> Arc<SourceFile> {
        Arc::new(SourceFile { path, line_starts: line_starts(&text), text, first_line: 0, inputs })
    }

    /// The part `range` of this file as a file of its own, for parsing one
    /// top-level block at a time: its offsets are the part's, its lines
    /// and columns the whole file's. `range.start` must be a line start.
    pub fn part(&self, range: Range<usize>) -> Arc<SourceFile> {
        let text = self.text.get(range.clone()).unwrap_or_default().to_string();
        let first_line = self.first_line + self.line_starts.partition_point(|&s| s <= range.start).saturating_sub(1);
        Arc::new(SourceFile { path: self.path.clone(), line_starts: line_starts(&text), text, first_line, inputs: self.inputs.clone() })
    }

    /// Lines of the whole file before this one's text (0 for a whole file).
    pub fn first_line(&self) -> usize {
        self.first_line
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let col = self.text.get(self.line_starts[line]..offset).map(|s| s.chars().count()).unwrap_or(0);
        (self.first_line + line + 1, col + 1)
    }

    /// The text of a 1-based line of the whole file, without its newline
    /// (empty for a line outside this part).
    pub fn line_text(&self, line: usize) -> &str {
        let Some(line) = line.checked_sub(self.first_line) else { return "" };
        let start = self.line_starts.get(line.wrapping_sub(1)).copied().unwrap_or(0);
        let end = self.line_starts.get(line).map(|e| e - 1).unwrap_or(self.text.len());
        self.text.get(start..end.max(start)).unwrap_or("").trim_end_matches('\r')
    }
}

/// The offset of every line of `text`.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

/// Where a diagnostic points: a file, a line and a column, with the line's
/// text for a snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub snippet: Option<String>,
}

impl Location {
    pub fn in_file(file: &SourceFile, span: Range<usize>) -> Location {
        let (line, col) = file.line_col(span.start.min(file.text.len()));
        Location { path: file.path.clone(), line, col, snippet: Some(file.line_text(line).to_string()) }
    }

    pub fn file_only(path: &Path) -> Location {
        Location { path: path.to_path_buf(), line: 0, col: 0, snippet: None }
    }
}

/// One problem found in the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub severity: Severity,
    pub summary: String,
    pub detail: Option<String>,
    pub location: Option<Location>,
}

impl Diag {
    pub fn error(summary: impl Into<String>) -> Diag {
        Diag { severity: Severity::Error, summary: summary.into(), detail: None, location: None }
    }

    pub fn warning(summary: impl Into<String>) -> Diag {
        Diag { severity: Severity::Warning, summary: summary.into(), detail: None, location: None }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Diag {
        self.detail = Some(detail.into());
        self
    }

    pub fn at(mut self, location: Location) -> Diag {
        self.location = Some(location);
        self
    }

    pub fn at_opt(mut self, location: Option<Location>) -> Diag {
        if self.location.is_none() {
            self.location = location;
        }
        self
    }
}

/// Characters of a source line shown on each side of the column.
const SNIPPET_SIDE: usize = 60;

/// The part of a long source line around `col` (1-based, in characters),
/// with `…` where it was cut, and the column within it: a line of
/// thousands of brackets must not fill the terminal.
fn snippet_window(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= 2 * SNIPPET_SIDE {
        return (line.to_string(), col);
    }
    let at = col.saturating_sub(1).min(chars.len());
    let start = at.saturating_sub(SNIPPET_SIDE);
    let end = (at + SNIPPET_SIDE).min(chars.len());
    let mut out: String = if start > 0 { "…".into() } else { String::new() };
    out.extend(&chars[start..end]);
    if end < chars.len() {
        out.push('…');
    }
    (out, at - start + 1 + usize::from(start > 0))
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        };
        writeln!(f, "{label}: {}", self.summary)?;
        if let Some(loc) = &self.location {
            if loc.line > 0 {
                writeln!(f, "  --> {}:{}:{}", loc.path.display(), loc.line, loc.col)?;
                if let Some(snippet) = &loc.snippet {
                    let (snippet, col) = snippet_window(snippet, loc.col);
                    let gutter = loc.line.to_string();
                    writeln!(f, "{:width$} |", "", width = gutter.len() + 1)?;
                    writeln!(f, " {gutter} | {snippet}")?;
                    writeln!(f, "{:width$} | {:>col$}", "", "^", width = gutter.len() + 1, col = col)?;
                }
            } else {
                writeln!(f, "  --> {}", loc.path.display())?;
            }
        }
        if let Some(detail) = &self.detail {
            for line in detail.lines() {
                writeln!(f, "  {line}")?;
            }
        }
        Ok(())
    }
}

/// A collection of diagnostics; an operation fails when it holds an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diags(pub Vec<Diag>);

impl Diags {
    pub fn new() -> Self {
        Diags(Vec::new())
    }

    pub fn push(&mut self, diag: Diag) {
        self.0.push(diag);
    }

    pub fn extend(&mut self, other: Diags) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Err(self)` when there are errors, so callers can use `?`.
    pub fn into_result(self) -> Result<Diags, Diags> {
        if self.has_errors() { Err(self) } else { Ok(self) }
    }
}

impl From<Diag> for Diags {
    fn from(diag: Diag) -> Self {
        Diags(vec![diag])
    }
}

impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diag) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diag}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diags {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_source_line_is_shown_around_its_column() {
        // A 40,000-character line shows 120 characters around the caret, marked where cut.
        let line = "(".repeat(40_000);
        let (shown, col) = snippet_window(&line, 20_000);
        assert_eq!(shown.chars().count(), 2 * SNIPPET_SIDE + 2);
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(col, SNIPPET_SIDE + 2);
        assert_eq!(snippet_window("short", 3), ("short".to_string(), 3));
    }

    #[test]
    fn renders_file_line_and_caret() {
        let file = SourceFile::new("main.hcl".into(), "a = 1\nbad = x\n".into());
        let diag = Diag::error("Unknown reference").at(Location::in_file(&file, 12..13));
        let text = diag.to_string();
        assert!(text.contains("main.hcl:2:7"), "{text}");
        assert!(text.contains("bad = x"), "{text}");
    }
}
