//! The token stream `terraform fmt` formats: the tokens of HCL's native
//! syntax scanner (hclsyntax), each with the number of whitespace bytes
//! that preceded it.
//!
//! The scanner has three modes, as hclsyntax's has: configuration (`main`),
//! quoted template and heredoc template, with a stack of brace depths so a
//! `}` closes an interpolation only at the depth that opened it. Comments
//! starting with `#` or `//` include their newline, heredoc openers include
//! theirs, and every literal part of a template is one token, so the
//! formatter sees exactly the lines and cells hclwrite sees. Only tokens
//! are produced; the input has already been checked by the parser.

use std::borrow::Cow;

/// The token types the formatter tells apart (hclsyntax's `TokenType`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Newline,
    /// A comment; `#` and `//` comments include their terminating newline.
    Comment,
    Ident,
    NumberLit,
    OQuote,
    CQuote,
    /// Literal text of a quoted template (escapes included).
    QuotedLit,
    /// `<<EOT` or `<<-EOT` with its newline.
    OHeredoc,
    /// The closing marker line of a heredoc, without its newline.
    CHeredoc,
    /// Literal text of a heredoc.
    StringLit,
    /// `${` or `${~`.
    TemplateInterp,
    /// `%{` or `%{~`.
    TemplateControl,
    /// `}` or `~}` closing an interpolation or directive.
    TemplateSeqEnd,
    OBrace,
    CBrace,
    OBrack,
    CBrack,
    OParen,
    CParen,
    Equal,
    EqualOp,
    NotEqual,
    LessThan,
    LessThanEq,
    GreaterThan,
    GreaterThanEq,
    And,
    Or,
    Bang,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Dot,
    Comma,
    Colon,
    Question,
    Ellipsis,
    FatArrow,
    DoubleColon,
    /// A character HCL has no use for (`&`, `;` …); never in valid input.
    Other,
    /// End of input; its spaces are the file's trailing whitespace.
    Eof,
}

/// One token: its text and the whitespace bytes before it (hclwrite's
/// `SpacesBefore`, which formatting rewrites).
#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    pub kind: Kind,
    pub text: Cow<'a, str>,
    pub spaces_before: usize,
}

impl<'a> Token<'a> {
    /// A token made by a rewrite rather than read from the source.
    pub fn new(kind: Kind, text: impl Into<Cow<'a, str>>) -> Self {
        Token { kind, text: text.into(), spaces_before: 0 }
    }

    /// Ends a line: a newline, or a `#`/`//` comment that includes one.
    pub fn is_newline(&self) -> bool {
        self.kind == Kind::Newline || (self.kind == Kind::Comment && self.text.ends_with('\n'))
    }

    /// +1 for a token that opens a bracket pair (interpolations included),
    /// -1 for one that closes one (hclwrite's `tokenBracketChange`).
    pub fn bracket_change(&self) -> i64 {
        match self.kind {
            Kind::OBrace | Kind::OBrack | Kind::OParen | Kind::TemplateControl | Kind::TemplateInterp => 1,
            Kind::CBrace | Kind::CBrack | Kind::CParen | Kind::TemplateSeqEnd => -1,
            _ => 0,
        }
    }
}

/// Scans `src` (without a byte-order mark) into tokens, ending with `Eof`.
pub(super) fn scan(src: &str) -> Vec<Token<'_>> {
    let mut scanner = Scanner { src, b: src.as_bytes(), pos: 0, last_end: 0, tokens: Vec::new() };
    scanner.main(None);
    scanner.tokens.push(Token { kind: Kind::Eof, text: Cow::Borrowed(""), spaces_before: src.len() - scanner.last_end });
    scanner.tokens
}

struct Scanner<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    /// End of the previous token: the bytes between it and the next token
    /// are that token's spaces.
    last_end: usize,
    tokens: Vec<Token<'a>>,
}

impl<'a> Scanner<'a> {
    fn peek(&self, offset: usize) -> Option<u8> {
        self.b.get(self.pos + offset).copied()
    }

    fn emit(&mut self, kind: Kind, start: usize, end: usize) {
        let end = end.clamp(start, self.b.len());
        let text = self.src.get(start..end).unwrap_or("");
        self.tokens.push(Token { kind, text: Cow::Borrowed(text), spaces_before: start.saturating_sub(self.last_end) });
        self.last_end = end;
        self.pos = end;
    }

    fn char_at(&self, at: usize) -> Option<char> {
        self.src.get(at..).and_then(|s| s.chars().next())
    }

    /// Configuration mode. With `closing` set (inside `${`/`%{`), returns
    /// after the `}` or `~}` at the depth that opened the interpolation.
    fn main(&mut self, closing: Option<()>) {
        let mut depth = 0usize;
        while let Some(c) = self.peek(0) {
            let start = self.pos;
            let next = self.peek(1);
            match c {
                b' ' | b'\t' => self.pos += 1,
                b'\n' => self.emit(Kind::Newline, start, start + 1),
                b'\r' if next == Some(b'\n') => self.emit(Kind::Newline, start, start + 2),
                b'#' => self.line_comment(start),
                b'/' if next == Some(b'/') => self.line_comment(start),
                b'/' if next == Some(b'*') => {
                    let end = find(self.b, start + 2, b"*/").map_or(self.b.len(), |p| p + 2);
                    self.emit(Kind::Comment, start, end);
                }
                b'"' => {
                    self.emit(Kind::OQuote, start, start + 1);
                    self.quoted();
                }
                b'<' if next == Some(b'<') && self.heredoc_opener(start).is_some() => {
                    let (end, marker) = self.heredoc_opener(start).unwrap_or((start + 2, ""));
                    self.emit(Kind::OHeredoc, start, end);
                    self.heredoc(marker);
                }
                b'{' => {
                    depth += 1;
                    self.emit(Kind::OBrace, start, start + 1);
                }
                b'}' | b'~' if c == b'}' || next == Some(b'}') => {
                    let width = if c == b'~' { 2 } else { 1 };
                    if depth == 0 && closing.is_some() {
                        self.emit(Kind::TemplateSeqEnd, start, start + width);
                        return;
                    }
                    depth = depth.saturating_sub(1);
                    let kind = if c == b'~' { Kind::TemplateSeqEnd } else { Kind::CBrace };
                    self.emit(kind, start, start + width);
                }
                _ if c.is_ascii_digit() => {
                    let end = number_end(self.b, start);
                    self.emit(Kind::NumberLit, start, end);
                }
                _ if self.char_at(start).is_some_and(is_ident_start) => {
                    let end = self.ident_end(start);
                    self.emit(Kind::Ident, start, end);
                }
                _ => {
                    let (kind, width) = operator(c, next, self.peek(2));
                    let width = if kind == Kind::Other { self.char_at(start).map_or(1, char::len_utf8) } else { width };
                    self.emit(kind, start, start + width);
                }
            }
        }
    }

    fn line_comment(&mut self, start: usize) {
        let end = self.b.iter().skip(start).position(|&c| c == b'\n').map_or(self.b.len(), |p| start + p + 1);
        self.emit(Kind::Comment, start, end);
    }

    fn ident_end(&self, start: usize) -> usize {
        let mut end = start;
        while let Some(c) = self.char_at(end) {
            if end > start && !(is_ident_continue(c) || c == '-') {
                break;
            }
            end += c.len_utf8();
        }
        end
    }

    /// When `<<` at `start` opens a heredoc (`<<` `-`? identifier newline),
    /// the end of the opener (after its newline) and the marker.
    fn heredoc_opener(&self, start: usize) -> Option<(usize, &'a str)> {
        let mut p = start + 2;
        if self.b.get(p) == Some(&b'-') {
            p += 1;
        }
        let marker_start = p;
        if !self.char_at(p).is_some_and(is_ident_start) {
            return None;
        }
        p = self.ident_end(p);
        let marker = self.src.get(marker_start..p)?;
        match (self.b.get(p), self.b.get(p + 1)) {
            (Some(b'\n'), _) => Some((p + 1, marker)),
            (Some(b'\r'), Some(b'\n')) => Some((p + 2, marker)),
            _ => None,
        }
    }

    /// Template sequences `${`/`%{` (with `~`) at the current position.
    fn template_opener(&self) -> Option<(Kind, usize)> {
        let kind = match (self.peek(0), self.peek(1)) {
            (Some(b'$'), Some(b'{')) => Kind::TemplateInterp,
            (Some(b'%'), Some(b'{')) => Kind::TemplateControl,
            _ => return None,
        };
        Some((kind, if self.peek(2) == Some(b'~') { 3 } else { 2 }))
    }

    fn interpolation(&mut self, kind: Kind, width: usize) {
        let start = self.pos;
        self.emit(kind, start, start + width);
        self.main(Some(()));
    }

    /// Quoted template mode, after the opening quote.
    fn quoted(&mut self) {
        let mut lit_start = None;
        loop {
            let start = self.pos;
            let c = self.peek(0);
            let opener = self.template_opener();
            let ends_literal = c.is_none() || c == Some(b'"') || c == Some(b'\n') || c == Some(b'\r') || opener.is_some();
            if ends_literal && let Some(lit) = lit_start.take() {
                self.pos = lit;
                self.emit(Kind::QuotedLit, lit, start);
            }
            match (c, opener) {
                (None, _) => return,
                (_, Some((kind, width))) => self.interpolation(kind, width),
                (Some(b'"'), _) => {
                    self.emit(Kind::CQuote, start, start + 1);
                    return;
                }
                // A newline ends an (invalid) quoted string; the parser
                // already refused it, so leave it to the configuration mode.
                (Some(b'\n' | b'\r'), _) => return,
                (Some(ch), None) => {
                    lit_start.get_or_insert(start);
                    self.pos += match ch {
                        b'\\' => 1 + self.char_at(start + 1).filter(|&c| c != '\n' && c != '\r').map_or(0, char::len_utf8),
                        // `$${` and `%%{` are escapes, literal text.
                        b'$' | b'%' if self.peek(1) == Some(ch) && self.peek(2) == Some(b'{') => 3,
                        _ => self.char_at(start).map_or(1, char::len_utf8),
                    };
                }
            }
        }
    }

    /// Heredoc template mode, after the opener's newline: literal lines,
    /// interpolations, then the closing marker line and its newline.
    fn heredoc(&mut self, marker: &str) {
        let mut start_of_line = true;
        loop {
            if let Some((kind, width)) = self.template_opener() {
                self.interpolation(kind, width);
                start_of_line = false;
                continue;
            }
            let start = self.pos;
            if start >= self.b.len() {
                return;
            }
            // A literal runs to the end of the line or the next `${`/`%{`.
            let mut end = start;
            let mut eol = None;
            while let Some(&c) = self.b.get(end) {
                if c == b'\n' {
                    eol = Some(end + 1);
                    break;
                }
                if c == b'$' || c == b'%' {
                    // `$${` and `%%{` are escapes, literal text.
                    if self.b.get(end + 1) == Some(&c) && self.b.get(end + 2) == Some(&b'{') {
                        end += 3;
                        continue;
                    }
                    if self.b.get(end + 1) == Some(&b'{') {
                        break;
                    }
                }
                end += 1;
            }
            let Some(line_end) = eol else {
                // Never empty before an opener (handled above); the guard
                // keeps the scan moving on any input.
                self.emit(Kind::StringLit, start, end.max(start + 1));
                if self.pos >= self.b.len() {
                    return;
                }
                start_of_line = false;
                continue;
            };
            let content = self.src.get(start..line_end).unwrap_or("");
            if start_of_line && content.trim() == marker {
                let nl = if content.ends_with("\r\n") { line_end - 2 } else { line_end - 1 };
                self.emit(Kind::CHeredoc, start, nl);
                self.emit(Kind::Newline, nl, line_end);
                return;
            }
            self.emit(Kind::StringLit, start, line_end);
            start_of_line = true;
        }
    }
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

fn is_ident_start(c: char) -> bool {
    c == '_' || unicode_ident::is_xid_start(c)
}

fn is_ident_continue(c: char) -> bool {
    unicode_ident::is_xid_continue(c)
}

/// End of a number literal starting at a digit: digits, `.` and exponents,
/// not ending in `.` (hclsyntax's `NumberLit`).
fn number_end(b: &[u8], start: usize) -> usize {
    let mut p = start + 1;
    let mut end = p;
    loop {
        match b.get(p) {
            Some(c) if c.is_ascii_digit() => {
                p += 1;
                end = p;
            }
            Some(b'.') => p += 1,
            Some(b'e' | b'E') => {
                let sign = usize::from(matches!(b.get(p + 1), Some(b'+' | b'-')));
                if b.get(p + 1 + sign).is_some_and(u8::is_ascii_digit) {
                    p += 2 + sign;
                    end = p;
                } else {
                    return end;
                }
            }
            _ => return end,
        }
    }
}

/// The operator or punctuation starting with `c`, and its width.
fn operator(c: u8, next: Option<u8>, third: Option<u8>) -> (Kind, usize) {
    match (c, next) {
        (b'=', Some(b'=')) => (Kind::EqualOp, 2),
        (b'=', Some(b'>')) => (Kind::FatArrow, 2),
        (b'!', Some(b'=')) => (Kind::NotEqual, 2),
        (b'>', Some(b'=')) => (Kind::GreaterThanEq, 2),
        (b'<', Some(b'=')) => (Kind::LessThanEq, 2),
        (b'&', Some(b'&')) => (Kind::And, 2),
        (b'|', Some(b'|')) => (Kind::Or, 2),
        (b':', Some(b':')) => (Kind::DoubleColon, 2),
        (b'.', Some(b'.')) if third == Some(b'.') => (Kind::Ellipsis, 3),
        _ => {
            let kind = match c {
                b'[' => Kind::OBrack,
                b']' => Kind::CBrack,
                b'(' => Kind::OParen,
                b')' => Kind::CParen,
                b'.' => Kind::Dot,
                b',' => Kind::Comma,
                b'*' => Kind::Star,
                b'/' => Kind::Slash,
                b'%' => Kind::Percent,
                b'+' => Kind::Plus,
                b'-' => Kind::Minus,
                b'=' => Kind::Equal,
                b'<' => Kind::LessThan,
                b'>' => Kind::GreaterThan,
                b'!' => Kind::Bang,
                b'?' => Kind::Question,
                b':' => Kind::Colon,
                _ => Kind::Other,
            };
            (kind, 1)
        }
    }
}
