//! The three rewrites `terraform fmt` makes beyond whitespace, on the
//! token stream, before the whitespace passes:
//!
//! - block labels take the quoted form (`resource aws_instance web` →
//!   `resource "aws_instance" "web"`);
//! - an attribute whose whole value is one interpolation, `"${expr}"`,
//!   becomes `expr` (in parentheses when it spans lines);
//! - `type` of a top-level `variable` block drops the pre-0.12 forms:
//!   `"string"` → `string`, `"list"`/`"map"` → `list(string)`/`map(string)`,
//!   and `list`/`map`/`set` → `list(any)`/`map(any)`/`set(any)`.
//!
//! Values inside object constructors are left alone, as Terraform does:
//! only a body's attributes are rewritten.

use super::lex::{Kind, Token};
use std::ops::Range;
use unicode_normalization::UnicodeNormalization;

/// Applies the rewrites to a whole file's tokens.
pub(super) fn rewrite(tokens: Vec<Token<'_>>) -> Vec<Token<'_>> {
    let mut edits = Vec::new();
    let mut walker = Walker { tokens: &tokens, pos: 0, edits: &mut edits };
    walker.body(&[], false);
    if edits.is_empty() {
        return tokens;
    }
    edits.sort_by_key(|e| e.range.start);
    let mut out = Vec::with_capacity(tokens.len());
    let mut next = 0;
    let mut source = tokens.into_iter().enumerate().peekable();
    for edit in edits {
        if edit.range.start < next {
            continue;
        }
        while let Some((_, token)) = source.next_if(|(i, _)| *i < edit.range.start) {
            out.push(token);
        }
        let mut replaced = Vec::new();
        while let Some((_, token)) = source.next_if(|(i, _)| *i < edit.range.end) {
            replaced.push(token);
        }
        out.extend(edit.with.into_iter().map(|piece| match piece {
            Piece::Old(i) => replaced.get(i - edit.range.start).cloned().unwrap_or_else(|| Token::new(Kind::Other, "")),
            Piece::New(token) => token,
        }));
        next = edit.range.end;
    }
    out.extend(source.map(|(_, t)| t));
    out
}

/// A replacement for a range of tokens, made of kept and new tokens.
struct Edit<'a> {
    range: Range<usize>,
    with: Vec<Piece<'a>>,
}

enum Piece<'a> {
    Old(usize),
    New(Token<'a>),
}

struct Walker<'t, 'a, 'e> {
    tokens: &'t [Token<'a>],
    pos: usize,
    edits: &'e mut Vec<Edit<'a>>,
}

impl<'a> Walker<'_, 'a, '_> {
    fn kind(&self, at: usize) -> Kind {
        self.tokens.get(at).map_or(Kind::Eof, |t| t.kind)
    }

    /// Skips comments that do not end the line (`/* */`).
    fn skip_inline_comments(&self, mut at: usize) -> usize {
        while self.kind(at) == Kind::Comment && !self.tokens.get(at).is_some_and(Token::is_newline) {
            at += 1;
        }
        at
    }

    /// Walks a body's items up to its closing brace (or the end of input).
    fn body(&mut self, blocks: &[&str], in_braces: bool) {
        loop {
            match self.kind(self.pos) {
                Kind::Eof => return,
                Kind::Newline | Kind::Comment => self.pos += 1,
                Kind::CBrace if in_braces => {
                    self.pos += 1;
                    return;
                }
                Kind::Ident => {
                    let name = self.tokens.get(self.pos).map_or("", |t| &*t.text);
                    let after = self.skip_inline_comments(self.pos + 1);
                    if self.kind(after) == Kind::Equal {
                        self.pos = after + 1;
                        self.attribute(blocks, name);
                    } else {
                        self.pos += 1;
                        self.block(blocks, name);
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    fn attribute(&mut self, blocks: &[&str], name: &str) {
        let start = self.skip_inline_comments(self.pos);
        let mut depth = 0i64;
        let mut end = start;
        while let Some(token) = self.tokens.get(end) {
            let closes_body = token.kind == Kind::CBrace && depth == 0;
            if token.kind == Kind::Eof || closes_body || (depth == 0 && token.is_newline()) {
                break;
            }
            depth += nesting(token.kind);
            end += 1;
        }
        self.pos = end;
        while end > start && self.kind(end - 1) == Kind::Comment {
            end -= 1;
        }
        let expr = self.tokens.get(start..end).unwrap_or(&[]);
        let with = if blocks == ["variable"] && name == "type" { type_expr(expr) } else { value_expr(expr) };
        if let Some(with) = with {
            let with = with.into_iter().map(|p| if let Piece::Old(i) = p { Piece::Old(start + i) } else { p }).collect();
            self.edits.push(Edit { range: start..end, with });
        }
    }

    fn block(&mut self, blocks: &[&str], name: &str) {
        loop {
            let at = self.skip_inline_comments(self.pos);
            match self.kind(at) {
                Kind::Ident => {
                    let label = self.tokens.get(at).map_or("", |t| &*t.text);
                    self.label(at..at + 1, label.to_string());
                    self.pos = at + 1;
                }
                Kind::OQuote => {
                    let close = (at + 1..self.tokens.len())
                        .take_while(|&i| !matches!(self.kind(i), Kind::Newline | Kind::OBrace | Kind::Eof))
                        .find(|&i| self.kind(i) == Kind::CQuote)
                        .unwrap_or(at);
                    let literal = match close - at {
                        1 => Some(String::new()),
                        2 => self.tokens.get(at + 1).filter(|t| t.kind == Kind::QuotedLit).and_then(|t| unescape(&t.text)),
                        _ => None,
                    };
                    if let Some(value) = literal {
                        self.label(at..close + 1, value);
                    }
                    self.pos = close.max(at) + 1;
                }
                Kind::OBrace => {
                    self.pos = at + 1;
                    let mut inner = blocks.to_vec();
                    inner.push(name);
                    self.body(&inner, true);
                    return;
                }
                // Not a block after all (the parser accepted the file, so
                // this is not reached): resume at the body level.
                _ => return,
            }
        }
    }

    fn label(&mut self, range: Range<usize>, value: String) {
        let value: String = value.nfc().collect();
        let mut with = vec![Piece::New(Token::new(Kind::OQuote, "\""))];
        if !value.is_empty() {
            with.push(Piece::New(Token::new(Kind::QuotedLit, escape(&value))));
        }
        with.push(Piece::New(Token::new(Kind::CQuote, "\"")));
        let same = range.len() == with.len()
            && self
                .tokens
                .get(range.clone())
                .unwrap_or(&[])
                .iter()
                .zip(&with)
                .all(|(old, new)| matches!(new, Piece::New(n) if n.text == old.text));
        if !same {
            self.edits.push(Edit { range, with });
        }
    }
}

/// How a token changes the nesting of brackets, quotes and heredocs.
fn nesting(kind: Kind) -> i64 {
    match kind {
        Kind::OBrace | Kind::OBrack | Kind::OParen | Kind::TemplateInterp | Kind::TemplateControl | Kind::OQuote | Kind::OHeredoc => 1,
        Kind::CBrace | Kind::CBrack | Kind::CParen | Kind::TemplateSeqEnd | Kind::CQuote | Kind::CHeredoc => -1,
        _ => 0,
    }
}

/// `"${expr}"` → `expr` (Terraform's `formatValueExpr`); `None` keeps the
/// value as it is. Indexes in the result are relative to `tokens`.
fn value_expr<'a>(tokens: &[Token<'a>]) -> Option<Vec<Piece<'a>>> {
    let kinds: Vec<Kind> = tokens.iter().map(|t| t.kind).collect();
    let n = kinds.len();
    if n < 5 || kinds.first() != Some(&Kind::OQuote) || kinds.get(1) != Some(&Kind::TemplateInterp) {
        return None;
    }
    if kinds.get(n - 2) != Some(&Kind::TemplateSeqEnd) || kinds.get(n - 1) != Some(&Kind::CQuote) {
        return None;
    }
    // Only one interpolation and no literal text at the outer level;
    // interpolations inside nested quoted strings are part of the value.
    let mut quotes = 0i64;
    for kind in kinds.get(2..n - 2).unwrap_or(&[]) {
        match kind {
            Kind::OQuote => quotes += 1,
            Kind::CQuote => quotes -= 1,
            _ if quotes > 0 => {}
            Kind::TemplateInterp | Kind::TemplateSeqEnd | Kind::QuotedLit => return None,
            _ => {}
        }
    }
    let mut inner = 2..n - 2;
    while inner.start < inner.end && kinds.get(inner.start) == Some(&Kind::Newline) {
        inner.start += 1;
    }
    while inner.end > inner.start && kinds.get(inner.end - 1) == Some(&Kind::Newline) {
        inner.end -= 1;
    }
    let inside = kinds.get(inner.clone()).unwrap_or(&[]);
    let multiline = inside.contains(&Kind::Newline);
    let parenthesised = inside.first() == Some(&Kind::OParen) && inside.last() == Some(&Kind::CParen) && inside.len() > 1;
    let mut with: Vec<Piece<'a>> = inner.map(Piece::Old).collect();
    if multiline && !parenthesised {
        with.insert(0, Piece::New(Token::new(Kind::OParen, "(")));
        with.push(Piece::New(Token::new(Kind::CParen, ")")));
    }
    Some(with)
}

/// A top-level variable's `type` without pre-0.12 forms (Terraform's
/// `formatTypeExpr`); `None` keeps it.
fn type_expr<'a>(tokens: &[Token<'a>]) -> Option<Vec<Piece<'a>>> {
    let call = |name: &'a str, arg: &'a str| {
        Some(vec![
            Piece::New(Token::new(Kind::Ident, name)),
            Piece::New(Token::new(Kind::OParen, "(")),
            Piece::New(Token::new(Kind::Ident, arg)),
            Piece::New(Token::new(Kind::CParen, ")")),
        ])
    };
    match tokens {
        [t] if t.kind == Kind::Ident => match &*t.text {
            "list" => call("list", "any"),
            "map" => call("map", "any"),
            "set" => call("set", "any"),
            _ => None,
        },
        [o, lit, c] if o.kind == Kind::OQuote && lit.kind == Kind::QuotedLit && c.kind == Kind::CQuote => match &*lit.text {
            "string" => Some(vec![Piece::New(Token::new(Kind::Ident, "string"))]),
            "list" => call("list", "string"),
            "map" => call("map", "string"),
            _ => None,
        },
        _ => None,
    }
}

/// The value of a quoted literal without interpolations (HCL's escapes);
/// `None` for an escape HCL does not define.
fn unescape(lit: &str) -> Option<String> {
    let mut out = String::with_capacity(lit.len());
    let mut chars = lit.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                u @ ('u' | 'U') => {
                    let digits: String = (0..if u == 'u' { 4 } else { 8 }).filter_map(|_| chars.next()).collect();
                    out.push(u32::from_str_radix(&digits, 16).ok().and_then(char::from_u32)?);
                }
                _ => return None,
            },
            '$' | '%' if chars.peek() == Some(&c) => {
                chars.next();
                out.push(c);
                if chars.peek() != Some(&'{') {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

/// A string as a quoted literal (hclwrite's `escapeQuotedStringLit`).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' | '%' => {
                out.push(c);
                if chars.peek() == Some(&'{') {
                    out.push(c);
                }
            }
            _ if !is_print(c) => {
                let code = u32::from(c);
                out.push_str(&if code < 0x10000 { format!("\\u{code:04x}") } else { format!("\\U{code:08x}") });
            }
            _ => out.push(c),
        }
    }
    out
}

/// Go's `unicode.IsPrint` for the characters a label may hold: not a
/// control or format character and not a space other than U+0020.
fn is_print(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}'))
}
