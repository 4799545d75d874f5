//! The whitespace passes of `terraform fmt` (hclwrite's `format`), on the
//! token stream: indentation by bracket nesting, the spacing between the
//! tokens of a line, and the vertical alignment of `=` and of trailing
//! comments on consecutive lines. Only `spaces_before` changes.
//!
//! A line is split into up to three cells: `lead` (everything else),
//! `assign` (from the `=` of an attribute whose value closes on that line)
//! and `comment` (a trailing `#`/`//` comment). Consecutive lines with an
//! `assign` cell align their `=`; consecutive lines with a `comment` cell
//! align their comments. Newlines are never added or removed, so blank
//! lines and the content of heredocs and comments stay as written.

use super::lex::{Kind, Token};
use std::ops::Range;
use unicode_segmentation::UnicodeSegmentation;

/// Rewrites the spaces before every token of `tokens` to canonical form.
pub(super) fn format(tokens: &mut [Token<'_>]) {
    let lines = lines(tokens);
    indent(tokens, &lines);
    space(tokens, &lines);
    align(tokens, &lines);
}

struct Line {
    lead: Range<usize>,
    assign: Option<Range<usize>>,
    comment: Option<Range<usize>>,
}

/// Splits the tokens into lines after each newline token (the final `Eof`
/// belongs to none) and picks off the `comment` and `assign` cells.
fn lines(tokens: &[Token<'_>]) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        if token.kind == Kind::Eof {
            lines.push(start..i);
            start = tokens.len();
            break;
        }
        if token.is_newline() {
            lines.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < tokens.len() {
        lines.push(start..tokens.len());
    }
    lines.into_iter().map(|lead| cells(tokens, lead)).collect()
}

fn cells(tokens: &[Token<'_>], mut lead: Range<usize>) -> Line {
    let mut comment = None;
    if lead.len() > 1 && tokens.get(lead.end - 1).is_some_and(|t| t.kind == Kind::Comment) {
        comment = Some(lead.end - 1..lead.end);
        lead.end -= 1;
    }
    let mut assign = None;
    let equal = tokens.get(lead.clone()).and_then(|l| l.iter().skip(1).position(|t| t.kind == Kind::Equal)).map(|p| lead.start + 1 + p);
    if let Some(eq) = equal {
        // Only a value that closes every bracket it opens on this line is
        // an aligned assignment; otherwise it opens a multi-line value.
        let net: i64 = tokens.get(eq..lead.end).unwrap_or(&[]).iter().map(Token::bracket_change).sum();
        if net == 0 {
            assign = Some(eq..lead.end);
            lead.end = eq;
        }
    }
    Line { lead, assign, comment }
}

/// Indents each line two spaces per level of the brackets still open.
///
/// A line that opens more brackets than it closes pushes one level
/// (remembering how many it opened); one that closes more pops levels
/// until those are accounted for, and is indented at the level it
/// returns to. Brackets inside a heredoc on the line do not count.
fn indent(tokens: &mut [Token<'_>], lines: &[Line]) {
    let mut levels: Vec<i64> = Vec::new();
    for line in lines {
        let Some(first) = tokens.get(line.lead.start).filter(|_| !line.lead.is_empty()).map(|t| t.kind) else {
            continue;
        };
        if first == Kind::Newline {
            set_spaces(tokens, line.lead.start, 0);
            continue;
        }
        let mut net = 0;
        for token in tokens.get(line.lead.clone()).unwrap_or(&[]) {
            net += token.bracket_change();
            if token.kind == Kind::OHeredoc {
                break;
            }
        }
        net += line.assign.clone().and_then(|a| tokens.get(a)).unwrap_or(&[]).iter().map(Token::bracket_change).sum::<i64>();
        let mut width = 2 * levels.len();
        if net > 0 {
            levels.push(net);
        } else if net < 0 {
            let mut closed = -net;
            while closed > 0 {
                let Some(top) = levels.last_mut() else { break };
                if closed >= *top {
                    closed -= *top;
                    levels.pop();
                } else {
                    *top -= closed;
                    closed = 0;
                }
            }
            width = 2 * levels.len();
        }
        set_spaces(tokens, line.lead.start, width);
    }
}

/// Sets the spaces between the tokens within the `lead` and `assign`
/// cells; the `assign` cell starts one space after the lead.
fn space(tokens: &mut [Token<'_>], lines: &[Line]) {
    for line in lines {
        space_cell(tokens, line.lead.clone());
        if let Some(assign) = line.assign.clone() {
            set_spaces(tokens, assign.start, 1);
            space_cell(tokens, assign);
        }
    }
}

fn space_cell(tokens: &mut [Token<'_>], cell: Range<usize>) {
    for i in cell.start..cell.end.saturating_sub(1) {
        let (Some(subject), Some(after)) = (tokens.get(i), tokens.get(i + 1)) else { continue };
        let before = if i > cell.start { tokens.get(i - 1).map(|t| t.kind) } else { None };
        let spaced = space_after(subject, before, after);
        set_spaces(tokens, i + 1, usize::from(spaced));
    }
}

/// Whether one space separates `subject` from the token `after` it
/// (hclwrite's `spaceAfterToken`); `before` is `None` at a cell's start.
fn space_after(subject: &Token<'_>, before: Option<Kind>, after: &Token<'_>) -> bool {
    use Kind::*;
    let (s, a) = (subject.kind, after.kind);
    match () {
        _ if a == Newline => false,
        _ if s == Ident && a == OParen => false,
        _ if (s == Ident && a == DoubleColon) || (s == DoubleColon && a == Ident) => false,
        _ if s == Dot || a == Dot => false,
        _ if a == Comma || a == Ellipsis => false,
        _ if s == Comma => true,
        _ if matches!(s, QuotedLit | StringLit | OQuote | OHeredoc) || matches!(a, QuotedLit | StringLit | CQuote | CHeredoc) => false,
        // `for x in [a]`: `in` is the keyword here, not a reference.
        _ if s == Ident && subject.text == "in" && before == Some(Ident) => true,
        _ if a == OBrack && (s == Ident || s == NumberLit || subject.bracket_change() < 0) => false,
        _ if s == Bang => false,
        _ if s == Minus => minus_is_binary(before),
        _ if s == OBrace || a == CBrace => !(s == OBrace && a == CBrace),
        _ if matches!(s, TemplateInterp | TemplateControl) && a == OBrace => true,
        _ if s == CBrace && a == TemplateSeqEnd => true,
        _ if s == TemplateSeqEnd && matches!(a, TemplateInterp | TemplateControl) => false,
        _ if subject.bracket_change() > 0 => false,
        _ if after.bracket_change() < 0 => false,
        _ => true,
    }
}

/// A `-` after something that cannot end an operand is a negation, which
/// takes no space before its operand.
fn minus_is_binary(before: Option<Kind>) -> bool {
    use Kind::*;
    !matches!(
        before,
        None | Some(
            OParen
                | OBrace
                | OBrack
                | Equal
                | Colon
                | Comma
                | Question
                | Plus
                | Star
                | Slash
                | Percent
                | Minus
                | EqualOp
                | NotEqual
                | GreaterThan
                | GreaterThanEq
                | LessThan
                | LessThanEq
                | And
                | Or
                | Bang
        )
    )
}

/// Aligns the `=` of runs of lines with an `assign` cell, then the
/// comments of runs of lines with a `comment` cell, in display columns.
fn align(tokens: &mut [Token<'_>], lines: &[Line]) {
    let lead_width = |tokens: &[Token<'_>], line: &Line| columns(tokens, line.lead.clone());
    align_runs(tokens, lines, |line| line.assign.clone(), lead_width);
    align_runs(
        tokens,
        lines,
        |line| line.comment.clone(),
        |tokens, line| lead_width(tokens, line) + line.assign.clone().map_or(0, |a| columns(tokens, a)),
    );
}

fn align_runs(
    tokens: &mut [Token<'_>],
    lines: &[Line],
    cell: impl Fn(&Line) -> Option<Range<usize>>,
    width: impl Fn(&[Token<'_>], &Line) -> usize,
) {
    let mut i = 0;
    while i < lines.len() {
        let run_end = i + lines.get(i..).unwrap_or(&[]).iter().take_while(|l| cell(l).is_some()).count();
        let run = lines.get(i..run_end).unwrap_or(&[]);
        let widest = run.iter().map(|l| width(tokens, l)).max().unwrap_or(0);
        for line in run {
            let pad = widest - width(tokens, line) + 1;
            if let Some(cell) = cell(line) {
                set_spaces(tokens, cell.start, pad);
            }
        }
        i = run_end.max(i + 1);
    }
}

/// Display width of a range of tokens: spaces plus grapheme clusters.
fn columns(tokens: &[Token<'_>], range: Range<usize>) -> usize {
    // ASCII without `\r` is one column a byte (`\r\n` is one grapheme).
    let width = |text: &str| if text.is_ascii() && !text.contains('\r') { text.len() } else { text.graphemes(true).count() };
    tokens.get(range).unwrap_or(&[]).iter().map(|t| t.spaces_before + width(&t.text)).sum()
}

fn set_spaces(tokens: &mut [Token<'_>], at: usize, spaces: usize) {
    if let Some(token) = tokens.get_mut(at) {
        token.spaces_before = spaces;
    }
}
