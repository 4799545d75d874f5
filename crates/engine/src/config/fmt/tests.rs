//! Unit tests of the formatter: each expectation is what `terraform fmt`
//! (Terraform 1.15) produces for the same input.

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
    let out = fmt(include_str!("../../../tests/fmt/messy.hcl"));
    assert_eq!(out, include_str!("../../../tests/fmt/messy.expected.hcl"));
}

#[test]
fn canonical_output_is_a_fixed_point() {
    // Formatting an already formatted file changes nothing.
    let expected = include_str!("../../../tests/fmt/messy.expected.hcl");
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
fn blank_files_keep_their_lines_without_spaces() {
    // Terraform never adds or removes a newline; it drops trailing spaces.
    assert_eq!(fmt_checked(""), "");
    assert_eq!(fmt_checked("\n\n  \n"), "\n\n\n");
}

#[test]
fn final_newlines_are_kept_as_written() {
    // A missing final newline stays missing, surplus ones stay.
    assert_eq!(fmt_checked("a = 1"), "a = 1");
    assert_eq!(fmt_checked("a = 1\n\n\n"), "a = 1\n\n\n");
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
fn repeated_blank_lines_are_kept() {
    // Terraform keeps every blank line, at the start, inside braces and
    // in runs; only their spaces go.
    let src = "\n\nb {\n\n\n  x = 1\n  \n\n\n  y = 2\n\n}\n";
    assert_eq!(fmt_checked(src), "\n\nb {\n\n\n  x = 1\n\n\n\n  y = 2\n\n}\n");
}

#[test]
fn list_of_objects_indents_the_middle_closer_as_terraform_does() {
    // `}, {` opens as many brackets as it closes, so it stays at the inner
    // level, as hclwrite puts it.
    let src = "x = [{\na = 1\n}, {\nb = 2\n}]\n";
    assert_eq!(fmt_checked(src), "x = [{\n  a = 1\n  }, {\n  b = 2\n}]\n");
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
fn interpolations_are_spaced_and_literal_text_is_kept() {
    // Expressions inside `${}` are formatted like any other; braces and
    // `=` in the literal text never count as structure.
    let src = "a {\nb = \"${join(\",\", [for k in {x=1}: \"{${k}\"])} = }\"\nc = \"$${not} %%{this}\"\n}\n";
    let want = "a {\n  b = \"${join(\",\", [for k in { x = 1 } : \"{${k}\"])} = }\"\n  c = \"$${not} %%{this}\"\n}\n";
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
fn crlf_line_endings_are_kept() {
    // Terraform's newline tokens are `\r\n` as written: a CRLF file stays so.
    assert_eq!(fmt_checked("a {\r\n b = 1\r\n cc = 2 # c  \r\n}\r\n"), "a {\r\n  b  = 1\r\n  cc = 2 # c  \r\n}\r\n");
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

#[test]
fn object_arguments_of_calls_keep_spaces_inside_braces() {
    // `{ a = 1 }` inside a call's arguments is spaced as Terraform spaces
    // it, whatever the input had.
    let src = "x = keys({a = 1, c = 2})\ny = merge({ a = \"b\" },{e=\"f\"})\n";
    let want = "x = keys({ a = 1, c = 2 })\ny = merge({ a = \"b\" }, { e = \"f\" })\n";
    assert_eq!(fmt_checked(src), want);
}

#[test]
fn trailing_spaces_in_comments_are_kept() {
    // A comment's text, trailing spaces included, is not whitespace to
    // Terraform; trailing spaces after code go.
    let src = "# note   \nb = 1 # also   \nc = 2   \n// slashes \t\n";
    assert_eq!(fmt_checked(src), "# note   \nb = 1 # also   \nc = 2\n// slashes \t\n");
}

#[test]
fn tokens_are_spaced_by_terraform_rules() {
    // Binary operators, commas and colons get one space; calls, indexes,
    // splats, unary minus and `!` none; `for ... in [` keeps its space.
    let src = "a = [for x in[1,2]:x*-1 if !x]\nb = foo.*.id[ 0 ]\nc = f( a , b... )\nd = x?-1:y[*].z\n";
    let want = "a = [for x in [1, 2] : x * -1 if !x]\nb = foo.*.id[0]\nc = f(a, b...)\nd = x ? -1 : y[*].z\n";
    assert_eq!(fmt_checked(src), want);
}

#[test]
fn single_interpolation_values_are_unwrapped() {
    // `"${x}"` as a whole attribute value becomes `x` (newlines just inside
    // the braces go); one still spanning lines is parenthesised (and its
    // last line indented as Terraform does); a template with text, or an
    // object element, is kept.
    let src = "a = \"${var.x}\"\nb = \"${\n  c ? d : e\n}\"\nf = \"x${y}\"\ng = { h = \"${i}\" }\nj = \"${c ?\n  d : e}\"\n";
    let want = "a = var.x\nb = c ? d : e\nf = \"x${y}\"\ng = { h = \"${i}\" }\nj = (c ?\nd : e)\n";
    assert_eq!(fmt_checked(src), want);
}

#[test]
fn block_labels_are_quoted_and_variable_types_modernised() {
    // Unquoted labels get quotes; a top-level variable's legacy type forms
    // become type expressions.
    let src = "resource aws_instance web {\n}\nvariable \"a\" {\n  type = \"string\"\n}\nvariable \"b\" {\n  type = list\n}\n";
    let want = "resource \"aws_instance\" \"web\" {\n}\nvariable \"a\" {\n  type = string\n}\nvariable \"b\" {\n  type = list(any)\n}\n";
    assert_eq!(fmt_checked(src), want);
}

#[test]
fn alignment_runs_continue_after_a_heredoc() {
    // A heredoc is one line to the formatter: the attributes around it
    // share an `=` column.
    let src = "a = <<EOT\n  body  \nEOT\nlonger = 1\n";
    assert_eq!(fmt_checked(src), "a      = <<EOT\n  body  \nEOT\nlonger = 1\n");
}

#[test]
fn byte_order_mark_is_dropped() {
    // Terraform's scanner skips a UTF-8 BOM and does not write it back.
    assert_eq!(fmt_checked("\u{feff}  a = 1\n"), "a = 1\n");
}

#[test]
fn every_prefix_of_a_messy_file_formats_or_errors_without_panic() {
    // Truncated input (open heredocs, strings, interpolations, comments)
    // is a syntax error or formats; the formatter itself never panics.
    let src = include_str!("../../../tests/fmt/messy.hcl");
    let mut cut = 0;
    while cut <= src.len() {
        if let Some(prefix) = src.get(..cut) {
            let _ = format_source(prefix);
        }
        cut += 1;
    }
}

#[test]
fn deep_nesting_is_bounded_by_the_parser() {
    // The parser refuses more than 64 nested levels with a position, so
    // the formatter's recursion stays shallow; 60 levels format.
    let nested = |n: usize| format!("a = {}x{}\n", "\"${".repeat(n), "}\"".repeat(n));
    let out = format_source(&nested(60));
    assert!(out.as_ref().is_ok_and(|out| out.starts_with("a = \"${")), "{out:?}");
    let err = format_source(&nested(5000)).unwrap_err();
    assert_eq!(err.line, 1, "{err}");
    let blocks = format!("{}{}", "b {\n".repeat(3000), "}\n".repeat(3000));
    let _ = format_source(&blocks);
}
