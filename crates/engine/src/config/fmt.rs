//! Canonical formatting for `himaplan fmt`, keeping every comment.
//!
//! The source is first parsed with hcl-edit so that a syntax error is
//! reported (with line and column) before anything is touched. Formatting
//! itself works on a flat token stream, the way `terraform fmt` (hclwrite)
//! does: each line is re-indented by bracket nesting, the `=` of consecutive
//! single-line attributes is aligned, trailing comments of consecutive lines
//! are aligned, block headers get single spaces and blank lines are
//! normalised. Only whitespace changes: expressions, comments and heredoc
//! contents are kept byte for byte. This module must not do I/O.

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

/// Formats HCL source into canonical form.
///
/// Guarantees: the result parses to the same syntax tree modulo whitespace,
/// comments stay where they were (own line or end of line), heredoc bodies
/// are untouched, and `format_source(format_source(x)) == format_source(x)`.
/// A source that does not parse returns the parser's error position.
pub fn format_source(src: &str) -> Result<String, FmtError> {
    hcl_edit::parser::parse_body(src).map_err(|err| FmtError {
        line: err.location().line(),
        col: err.location().column(),
        message: err.message().to_string(),
    })?;
    let src = src.replace("\r\n", "\n");
    let tokens = lex(&src);
    let mut lines = split_lines(&tokens);
    assign_levels(&mut lines);
    let lines = drop_blank_lines(lines);
    Ok(render(&src, &lines))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Newline,
    /// `#` or `//` comment, without its newline or trailing whitespace.
    LineComment,
    /// `/* ... */`, possibly spanning lines.
    BlockComment,
    /// A quoted template with all its interpolations.
    Str,
    /// A heredoc from `<<` through its closing delimiter.
    Heredoc,
    Open(u8),
    Close(u8),
    /// A single `=` (not part of `==`, `!=`, `<=`, `>=` or `=>`).
    Equal,
    Ident,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// A logical line: the tokens up to a newline that is not inside a token.
/// A heredoc or multi-line block comment makes one logical line span
/// several physical ones.
#[derive(Debug, Default)]
struct Line {
    tokens: Vec<Token>,
    level: usize,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_ident_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn lex(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let start = i;
        let next = b.get(i + 1).copied();
        let kind = match c {
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'\n' => {
                i += 1;
                Kind::Newline
            }
            b'#' => {
                i = line_comment_end(b, i);
                Kind::LineComment
            }
            b'/' if next == Some(b'/') => {
                i = line_comment_end(b, i);
                Kind::LineComment
            }
            b'/' if next == Some(b'*') => {
                i = find(b, i + 2, b"*/").map_or(b.len(), |p| p + 2);
                Kind::BlockComment
            }
            b'"' => {
                i = scan_quoted(b, i + 1);
                Kind::Str
            }
            b'<' if next == Some(b'<') => match scan_heredoc(b, i) {
                Some(end) => {
                    i = end;
                    Kind::Heredoc
                }
                None => {
                    i += 2;
                    Kind::Other
                }
            },
            b'{' | b'[' | b'(' => {
                i += 1;
                Kind::Open(c)
            }
            b'}' | b']' | b')' => {
                i += 1;
                Kind::Close(c)
            }
            b'=' if next == Some(b'=') || next == Some(b'>') => {
                i += 2;
                Kind::Other
            }
            b'=' => {
                i += 1;
                Kind::Equal
            }
            b'!' | b'<' | b'>' if next == Some(b'=') => {
                i += 2;
                Kind::Other
            }
            _ if is_ident_start(c) => {
                while b.get(i).is_some_and(|&c| is_ident_continue(c)) {
                    i += 1;
                }
                Kind::Ident
            }
            _ if c.is_ascii_digit() => {
                i += 1;
                while let Some(&c) = b.get(i) {
                    let exponent_sign = (c == b'+' || c == b'-') && matches!(b.get(i.wrapping_sub(1)), Some(b'e' | b'E'));
                    if c.is_ascii_alphanumeric() || c == b'.' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
                Kind::Other
            }
            _ => {
                let width = src.get(i..).and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
                i += width;
                Kind::Other
            }
        };
        let end = i.min(b.len());
        i = end;
        tokens.push(Token { kind, start, end });
    }
    tokens
}

/// End of a `#`/`//` comment: before its newline, trailing whitespace excluded.
fn line_comment_end(b: &[u8], start: usize) -> usize {
    let mut end = b.iter().skip(start).position(|&c| c == b'\n').map_or(b.len(), |p| start + p);
    while end > start && matches!(b.get(end - 1), Some(b' ' | b'\t' | b'\r')) {
        end -= 1;
    }
    end
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

/// Index just after the closing quote of a template whose opening quote is
/// before `i`. Interpolations may contain nested quoted strings and braces.
fn scan_quoted(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i) {
            None => return b.len(),
            Some(b'\\') => i += 2,
            Some(b'"') => return i + 1,
            Some(&c @ (b'$' | b'%')) => {
                if b.get(i + 1) == Some(&c) && b.get(i + 2) == Some(&b'{') {
                    // `$${` and `%%{` are escapes for a literal `${` / `%{`.
                    i += 3;
                } else if b.get(i + 1) == Some(&b'{') {
                    i = scan_interpolation(b, i + 2);
                } else {
                    i += 1;
                }
            }
            Some(_) => i += 1,
        }
    }
}

/// Index just after the `}` closing an interpolation that starts at `i`.
fn scan_interpolation(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    loop {
        match b.get(i) {
            None => return b.len(),
            Some(b'"') => i = scan_quoted(b, i + 1),
            Some(b'{') => {
                depth += 1;
                i += 1;
            }
            Some(b'}') => {
                if depth == 0 {
                    return i + 1;
                }
                depth -= 1;
                i += 1;
            }
            Some(_) => i += 1,
        }
    }
}

/// When `<<` at `i` opens a heredoc, the index just after its closing
/// delimiter (which hcl-edit allows to be indented).
fn scan_heredoc(b: &[u8], i: usize) -> Option<usize> {
    let mut p = i + 2;
    if b.get(p) == Some(&b'-') {
        p += 1;
    }
    let delim_start = p;
    if !b.get(p).is_some_and(|&c| is_ident_start(c)) {
        return None;
    }
    while b.get(p).is_some_and(|&c| is_ident_continue(c)) {
        p += 1;
    }
    let delim = b.get(delim_start..p)?;
    if b.get(p) != Some(&b'\n') {
        return None;
    }
    let mut line_start = p + 1;
    loop {
        let mut q = line_start;
        while matches!(b.get(q), Some(b' ' | b'\t')) {
            q += 1;
        }
        let after = q + delim.len();
        if b.get(q..after) == Some(delim) && !b.get(after).is_some_and(|&c| is_ident_continue(c)) {
            return Some(after);
        }
        match b.iter().skip(line_start).position(|&c| c == b'\n') {
            Some(offset) => line_start += offset + 1,
            None => return Some(b.len()),
        }
    }
}

fn split_lines(tokens: &[Token]) -> Vec<Line> {
    let mut lines = vec![Line::default()];
    for token in tokens {
        if token.kind == Kind::Newline {
            lines.push(Line::default());
        } else if let Some(line) = lines.last_mut() {
            line.tokens.push(*token);
        }
    }
    lines
}

/// Sets each line's indentation level from bracket nesting.
///
/// Every bracket still open at the end of a line records the level of the
/// line that opened it; the lines inside are one level deeper, and a line
/// that starts with closing brackets goes back to the level of the line
/// that opened the last of them. Brackets opened together (`merge(a, {`)
/// therefore add one level, not two, and `}, {` lines up with its opener.
fn assign_levels(lines: &mut [Line]) {
    let mut open: Vec<usize> = Vec::new();
    for line in lines.iter_mut() {
        let leading_closers = line.tokens.iter().take_while(|t| matches!(t.kind, Kind::Close(_))).count();
        let mut closed_base = None;
        for _ in 0..leading_closers {
            if let Some(base) = open.pop() {
                closed_base = Some(base);
            }
        }
        line.level = closed_base.unwrap_or_else(|| open.last().map_or(0, |base| base + 1));
        for token in line.tokens.iter().skip(leading_closers) {
            match token.kind {
                Kind::Open(_) => open.push(line.level),
                Kind::Close(_) => {
                    open.pop();
                }
                _ => {}
            }
        }
    }
}

fn starts_with_close_brace(line: &Line) -> bool {
    matches!(line.tokens.first(), Some(t) if t.kind == Kind::Close(b'}'))
}

fn ends_with_open_brace(line: &Line) -> bool {
    line.tokens.iter().rev().find(|t| t.kind != Kind::LineComment).is_some_and(|t| t.kind == Kind::Open(b'{'))
}

/// Removes leading and trailing blank lines, runs of more than one blank
/// line, and blank lines directly after `{` or before `}`.
fn drop_blank_lines(lines: Vec<Line>) -> Vec<Line> {
    let mut kept: Vec<Line> = Vec::with_capacity(lines.len());
    let mut pending_blank = false;
    for line in lines {
        if line.tokens.is_empty() {
            pending_blank = true;
            continue;
        }
        let after_open = kept.last().is_none_or(ends_with_open_brace);
        if pending_blank && !after_open && !starts_with_close_brace(&line) {
            kept.push(Line::default());
        }
        pending_blank = false;
        kept.push(line);
    }
    kept
}

/// How one non-blank line is laid out: where its `=` and trailing comment
/// are, and whether it takes part in `=` alignment.
struct Layout {
    /// Index of the attribute's `=` token.
    equal: Option<usize>,
    /// The `=` ends a single-line attribute, so it aligns with neighbours.
    aligned: bool,
    /// Index of the trailing `#`/`//` comment after code on the line.
    comment: Option<usize>,
    /// Index of the `{` of a block header (`ident "label" {`).
    header_open: Option<usize>,
    multiline: bool,
}

fn bracket_change(token: &Token) -> i64 {
    match token.kind {
        Kind::Open(_) => 1,
        Kind::Close(_) => -1,
        _ => 0,
    }
}

fn layout(src: &str, line: &Line) -> Layout {
    let tokens = &line.tokens;
    let comment = match tokens.last() {
        Some(t) if t.kind == Kind::LineComment && tokens.len() > 1 => Some(tokens.len() - 1),
        _ => None,
    };
    let code_end = comment.unwrap_or(tokens.len());
    let code = tokens.get(..code_end).unwrap_or(&[]);

    let mut depth = 0i64;
    let mut equal = None;
    for (i, token) in code.iter().enumerate() {
        if token.kind == Kind::Equal && i > 0 && depth <= 0 {
            equal = Some(i);
            break;
        }
        depth += bracket_change(token);
    }
    let aligned = equal.is_some_and(|eq| code.iter().skip(eq).map(bracket_change).sum::<i64>() == 0);

    let header_open = match code.first() {
        Some(first) if first.kind == Kind::Ident => code
            .iter()
            .position(|t| !matches!(t.kind, Kind::Ident | Kind::Str))
            .filter(|&p| code.get(p).is_some_and(|t| t.kind == Kind::Open(b'{'))),
        _ => None,
    };

    let multiline = tokens.iter().any(|t| src.get(t.start..t.end).is_some_and(|s| s.contains('\n')));
    Layout { equal, aligned, comment, header_open, multiline }
}

/// The tokens joined with their original spacing; `single_space_until`
/// replaces the gaps before tokens up to that index with one space.
fn join(src: &str, tokens: &[Token], single_space_until: usize) -> String {
    let mut out = String::new();
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 {
            if i <= single_space_until {
                out.push(' ');
            } else if let Some(prev) = tokens.get(i - 1) {
                out.push_str(src.get(prev.end..token.start).unwrap_or(" "));
            }
        }
        out.push_str(src.get(token.start..token.end).unwrap_or(""));
    }
    out
}

fn render(src: &str, lines: &[Line]) -> String {
    let layouts: Vec<Layout> = lines.iter().map(|l| layout(src, l)).collect();
    let widths: Vec<usize> = lines
        .iter()
        .zip(&layouts)
        .map(|(line, lay)| {
            let lead = lay.equal.and_then(|eq| line.tokens.get(..eq)).unwrap_or(&[]);
            2 * line.level + join(src, lead, 0).chars().count()
        })
        .collect();

    // `=` alignment: runs of consecutive single-line attributes at one level.
    let mut eq_column = vec![0usize; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let in_run = |j: usize| layouts.get(j).is_some_and(|l| l.aligned) && lines.get(j).map(|l| l.level) == lines.get(i).map(|l| l.level);
        if !in_run(i) {
            i += 1;
            continue;
        }
        let mut end = i;
        while in_run(end) {
            end += 1;
            // A heredoc or multi-line comment ends the run after itself.
            if layouts.get(end - 1).is_some_and(|l| l.multiline) {
                break;
            }
        }
        let column = widths.get(i..end).and_then(|w| w.iter().max().copied()).unwrap_or(0);
        for slot in eq_column.get_mut(i..end).into_iter().flatten() {
            *slot = column;
        }
        i = end;
    }

    let code: Vec<String> = lines
        .iter()
        .zip(&layouts)
        .enumerate()
        .map(|(n, (line, lay))| render_code(src, line, lay, eq_column.get(n).copied().unwrap_or(0)))
        .collect();

    // Trailing comments of consecutive single-line lines share a column.
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let has_comment = |j: usize| layouts.get(j).is_some_and(|l| l.comment.is_some() && !l.multiline);
        let mut end = i;
        while has_comment(end) {
            end += 1;
        }
        let column = code.get(i..end).and_then(|c| c.iter().map(|s| s.chars().count()).max()).unwrap_or(0);
        for n in i..end.max(i + 1) {
            let (Some(line), Some(lay), Some(text)) = (lines.get(n), layouts.get(n), code.get(n)) else {
                continue;
            };
            out.push_str(text);
            if let Some(comment) = lay.comment.and_then(|c| line.tokens.get(c)) {
                let pad = if end > i { column.saturating_sub(text.chars().count()) + 1 } else { 1 };
                out.push_str(&" ".repeat(pad));
                out.push_str(src.get(comment.start..comment.end).unwrap_or(""));
            }
            out.push('\n');
        }
        i = end.max(i + 1);
    }
    out
}

/// The line without its trailing comment, indented, with its `=` at
/// `eq_column` (when aligned) and single spaces in a block header.
fn render_code(src: &str, line: &Line, lay: &Layout, eq_column: usize) -> String {
    if line.tokens.is_empty() {
        return String::new();
    }
    let code_end = lay.comment.unwrap_or(line.tokens.len());
    let code = line.tokens.get(..code_end).unwrap_or(&[]);
    let mut out = " ".repeat(2 * line.level);
    match lay.equal {
        Some(eq) => {
            let lead = code.get(..eq).unwrap_or(&[]);
            let rest = code.get(eq + 1..).unwrap_or(&[]);
            let lead_text = join(src, lead, 0);
            out.push_str(&lead_text);
            let width = 2 * line.level + lead_text.chars().count();
            let pad = if lay.aligned { eq_column.saturating_sub(width) + 1 } else { 1 };
            out.push_str(&" ".repeat(pad));
            out.push('=');
            if !rest.is_empty() {
                out.push(' ');
                out.push_str(&join(src, rest, 0));
            }
        }
        None => out.push_str(&join(src, code, lay.header_open.unwrap_or(0))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(src: &str) -> String {
        match format_source(src) {
            Ok(out) => out,
            Err(err) => panic!("unexpected syntax error {err} in:\n{src}"),
        }
    }

    /// Formats, then checks the result is stable and still parses.
    fn fmt_checked(src: &str) -> String {
        let once = fmt(src);
        assert_eq!(fmt(&once), once, "formatting is not idempotent for:\n{src}");
        once
    }

    #[test]
    fn messy_file_gets_canonical_form_with_comments_kept() {
        // A file with every kind of comment, nested blocks, a multi-line
        // object, heredocs and misaligned `=` formats to the fixture.
        let out = fmt(include_str!("../../tests/fmt/messy.hcl"));
        assert_eq!(out, include_str!("../../tests/fmt/messy.expected.hcl"));
    }

    #[test]
    fn canonical_output_is_a_fixed_point() {
        // Formatting an already formatted file changes nothing.
        let expected = include_str!("../../tests/fmt/messy.expected.hcl");
        assert_eq!(fmt(expected), expected);
    }

    #[test]
    fn syntax_error_reports_its_line_and_column() {
        // A broken attribute on line 3 is reported there, with a message.
        let err = format_source("a = 1\nb {\n  c = = 2\n}\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.col > 1, "{err}");
        assert!(!err.message.is_empty());
        assert!(err.to_string().starts_with("3:"));
    }

    #[test]
    fn unclosed_block_is_an_error() {
        // A missing closing brace is a syntax error, not a guess.
        assert!(format_source("a {\n  b = 1\n").is_err());
    }

    #[test]
    fn empty_and_blank_files_format_to_nothing() {
        // Whitespace-only input has no content to keep.
        assert_eq!(fmt_checked(""), "");
        assert_eq!(fmt_checked("\n\n  \n"), "");
    }

    #[test]
    fn file_ends_with_exactly_one_newline() {
        // Missing and surplus final newlines are normalised.
        assert_eq!(fmt_checked("a = 1"), "a = 1\n");
        assert_eq!(fmt_checked("a = 1\n\n\n"), "a = 1\n");
    }

    #[test]
    fn alignment_groups_are_broken_by_blank_lines_comments_and_blocks() {
        // Only consecutive single-line attributes share an `=` column.
        let src = "a = 1\nlong_name = 2\n\nb = 3\n# note\ncc = 4\nd = {\n  x = 1\n}\neee = 5\nblk {\n}\nf = 6\n";
        let want = "a         = 1\nlong_name = 2\n\nb = 3\n# note\ncc = 4\nd = {\n  x = 1\n}\neee = 5\nblk {\n}\nf = 6\n";
        assert_eq!(fmt_checked(src), want);
    }

    #[test]
    fn block_headers_get_single_spaces() {
        // Identifier, labels and `{` are separated by exactly one space.
        assert_eq!(fmt_checked("resource   \"a\"\t\"b\"{\n}\n"), "resource \"a\" \"b\" {\n}\n");
        assert_eq!(fmt_checked("locals{\n}\n"), "locals {\n}\n");
    }

    #[test]
    fn blank_lines_are_collapsed_and_trimmed_at_braces() {
        // At most one blank line, none right inside braces or at the start.
        let src = "\n\nb {\n\n\n  x = 1\n\n\n\n  y = 2\n\n}\n";
        assert_eq!(fmt_checked(src), "b {\n  x = 1\n\n  y = 2\n}\n");
    }

    #[test]
    fn list_of_objects_closes_at_the_opener_level() {
        // `}, {` lines up with the line that opened the list.
        let src = "x = [{\na = 1\n}, {\nb = 2\n}]\n";
        assert_eq!(fmt_checked(src), "x = [{\n  a = 1\n}, {\n  b = 2\n}]\n");
    }

    #[test]
    fn trailing_comments_of_consecutive_lines_are_aligned() {
        // End-of-line comments stay at the end of their lines, in one column.
        let src = "a = 1 # one\nbbb = [] // three\n\nc = 1    # alone\n";
        let want = "a   = 1  # one\nbbb = [] // three\n\nc = 1 # alone\n";
        assert_eq!(fmt_checked(src), want);
    }

    #[test]
    fn heredoc_in_a_call_keeps_its_body_and_indents_what_follows() {
        // The heredoc body and delimiter stay byte for byte.
        let src = "x {\ny = trimspace(<<EOT\n  body  \n   EOT\n)\nz = 1\n}\n";
        let want = "x {\n  y = trimspace(<<EOT\n  body  \n   EOT\n  )\n  z = 1\n}\n";
        assert_eq!(fmt_checked(src), want);
    }

    #[test]
    fn templates_with_braces_and_nested_quotes_are_single_tokens() {
        // Braces and `=` inside strings never count as structure.
        let src = "a {\nb = \"${join(\",\", [for k in {x=1}: \"{${k}\"])} = }\"\nc = \"$${not} %%{this}\"\n}\n";
        let want = "a {\n  b = \"${join(\",\", [for k in {x=1}: \"{${k}\"])} = }\"\n  c = \"$${not} %%{this}\"\n}\n";
        assert_eq!(fmt_checked(src), want);
    }

    #[test]
    fn operators_containing_equals_are_not_assignments() {
        // `==`, `!=`, `<=`, `>=` and `=>` stay as written.
        let src = "a = b == c\nlonger = { for k, v in m : k => v if v >= 1 }\n";
        let want = "a      = b == c\nlonger = { for k, v in m : k => v if v >= 1 }\n";
        assert_eq!(fmt_checked(src), want);
    }

    #[test]
    fn crlf_line_endings_become_lf() {
        // Windows line endings are normalised.
        assert_eq!(fmt_checked("a {\r\n b = 1\r\n}\r\n"), "a {\n  b = 1\n}\n");
    }

    #[test]
    fn comment_lines_are_indented_with_their_block() {
        // Own-line comments of every style move with the block's indentation.
        let src = "a {\n# hash\n      // slashes\n/* block */\nb = 1\n}\n";
        let want = "a {\n  # hash\n  // slashes\n  /* block */\n  b = 1\n}\n";
        assert_eq!(fmt_checked(src), want);
    }

    #[test]
    fn non_ascii_text_is_kept() {
        // Multi-byte characters in strings and comments survive untouched.
        let src = "a {\nname = \"café ☕\" # ünïcode\nxy = 1\n}\n";
        let want = "a {\n  name = \"café ☕\" # ünïcode\n  xy   = 1\n}\n";
        assert_eq!(fmt_checked(src), want);
    }

    #[test]
    fn odd_inputs_are_stable_and_still_parse() {
        // A grab bag of layouts: each formats idempotently to valid HCL.
        let inputs = [
            "a   \"x\"   { b = 1 }\n",
            "x = [\n  1,\n  2]\ny = 1\n",
            "f = foo(a,\n        b)\n",
            "o = {\n  a : 1,\n  \"quoted key\" = 2\n}\n",
            "t = <<EOT\nEOT\nu = <<-EOF\n  ${a}\n  EOF\n",
            "/* multi\nline */ a = 1\nb = 2\n",
            "c = a ? [\n1\n] : []\n",
            "d = (\n  1 +\n  2\n)\n",
            "e = \"%{ if x }y%{ endif }\"\n",
            "dynamic \"rule\" {\n for_each = var.rules\n content {\n  id = rule.key\n }\n}\n",
        ];
        for src in inputs {
            let out = fmt_checked(src);
            assert!(hcl_edit::parser::parse_body(&out).is_ok(), "output does not parse:\n{out}");
        }
    }
}
