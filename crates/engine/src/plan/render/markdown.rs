//! The plan as a GitHub pull-request comment: the summary line as a heading,
//! a table with one row per change, and the full human plan collapsed in a
//! `diff` block. GitHub rejects comments of 65,536 characters or more, so a
//! large plan is cut down to fit: first the collapsed plan is truncated, then
//! the table is summarised per resource, always saying what was left out.

use super::{RenderOptions, action_word, human, reason_text};
use crate::addr::ResourceAddr;
use crate::plan::{Action, Plan, ResourceChange};
use std::fmt::Write as _;

/// What the comment aims to stay under, leaving GitHub's limit (65,536)
/// room for anything a CI job wraps around it.
const BUDGET: usize = 60_000;
/// The least of the full plan worth showing next to a complete table.
const MIN_DETAILS: usize = 4_000;
/// GitHub's limit, which no rendering may reach.
const HARD_LIMIT: usize = 65_536;

/// Renders `plan` as Markdown for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    let changes: Vec<&ResourceChange> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    let head = heading(plan);
    let full_plan = diff_lines(&human(plan, &RenderOptions { color: false }));

    let table = full_table(&changes);
    let whole = details(&full_plan, usize::MAX);
    if head.len() + table.len() + whole.len() <= BUDGET {
        return format!("{head}{table}{whole}");
    }
    let table = if head.len() + table.len() + MIN_DETAILS <= BUDGET { table } else { summary_table(&changes, BUDGET / 2) };
    let room = BUDGET.saturating_sub(head.len() + table.len());
    let mut text = format!("{head}{table}{}", details(&full_plan, room));
    if text.len() >= HARD_LIMIT {
        // Unreachable with the budgets above; kept so that no plan can make
        // a comment GitHub refuses.
        let mut cut = HARD_LIMIT - 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n\n_Comment truncated; run `himaplan show` for the whole plan._\n");
    }
    text
}

fn heading(plan: &Plan) -> String {
    let mut text = if plan.has_changes() {
        format!("### {}\n\n", plan.summary_line())
    } else {
        "### No changes. Your infrastructure matches the configuration.\n\n".to_string()
    };
    if !plan.drift.is_empty() {
        let n = plan.drift.len();
        let _ = writeln!(text, "**{} changed outside of himaplan**: see the full plan below.\n", count(n, "object", "objects"));
    }
    if !plan.unmanaged.is_empty() {
        let n = plan.unmanaged.len();
        let (verb, pronoun) = if n == 1 { ("carries", "it") } else { ("carry", "them") };
        let _ = writeln!(
            text,
            "**{} {verb} this state's lineage but {} not in the state**: adopt {pronoun} with `himaplan import ADDR ID` or delete {pronoun}.\n",
            count(n, "object", "objects"),
            if n == 1 { "is" } else { "are" },
        );
    }
    text
}

fn full_table(changes: &[&ResourceChange]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut text = String::from("| Action | Resource | Disruption | Reason |\n| --- | --- | --- | --- |\n");
    for change in changes {
        let reason = match (reason_text(change), change.replace_paths.is_empty()) {
            (Some(reason), _) => reason.strip_prefix("because ").map(str::to_string).unwrap_or(reason),
            (None, false) => format!("{} forces replacement", change.replace_paths.join(", ")),
            (None, true) => String::new(),
        };
        let _ = writeln!(
            text,
            "| {} {} | {} | {} | {} |",
            change.action.symbol(),
            action_word(change.action),
            code(&change.addr.to_string()),
            cell(change.disruption.as_deref().unwrap_or("")),
            cell(&reason),
        );
    }
    text.push('\n');
    text
}

/// One row per resource (`aws_instance.web`: 400 to update), for plans whose
/// full table would not fit; stops adding rows at `cap` bytes.
fn summary_table(changes: &[&ResourceChange], cap: usize) -> String {
    #[derive(Default)]
    struct Tally {
        add: usize,
        update: usize,
        replace: usize,
        destroy: usize,
        disruptive: usize,
    }
    let mut order: Vec<&ResourceAddr> = Vec::new();
    let mut tallies: std::collections::HashMap<&ResourceAddr, Tally> = std::collections::HashMap::new();
    for change in changes {
        let resource = &change.addr.resource;
        let tally = tallies.entry(resource).or_insert_with(|| {
            order.push(resource);
            Tally::default()
        });
        match change.action {
            Action::NoOp => {}
            Action::Create => tally.add += 1,
            Action::Update => tally.update += 1,
            Action::Delete => tally.destroy += 1,
            Action::DeleteThenCreate | Action::CreateThenDelete => tally.replace += 1,
        }
        if change.disruption.is_some() {
            tally.disruptive += 1;
        }
    }

    let mut text = String::from("| Resource | Changes |\n| --- | --- |\n");
    let mut rows = 0;
    for resource in &order {
        let Some(tally) = tallies.get(resource) else { continue };
        let mut parts = Vec::new();
        for (n, what) in [(tally.add, "to add"), (tally.update, "to update"), (tally.replace, "to replace"), (tally.destroy, "to destroy")]
        {
            if n > 0 {
                parts.push(format!("{} {what}", thousands(n)));
            }
        }
        if tally.disruptive > 0 {
            parts.push(format!("{} disruptive", thousands(tally.disruptive)));
        }
        let row = format!("| {} | {} |\n", code(&resource.to_string()), parts.join(", "));
        if text.len() + row.len() > cap {
            break;
        }
        text.push_str(&row);
        rows += 1;
    }
    if rows < order.len() {
        let rest: usize = order[rows..].iter().filter_map(|r| tallies.get(r)).map(|t| t.add + t.update + t.replace + t.destroy).sum();
        let _ = writeln!(text, "| _{} more resources_ | {} changes |", thousands(order.len() - rows), thousands(rest));
    }
    let _ = writeln!(
        text,
        "\n_{} summarised by resource to fit a comment; `himaplan show` gives the whole plan._\n",
        count(changes.len(), "change", "changes")
    );
    text
}

/// The collapsed full plan, cut at a line boundary to fit `room` bytes.
fn details(plan_text: &str, room: usize) -> String {
    let fence = "`".repeat(longest_backtick_run(plan_text).max(2) + 1);
    let open = format!("<details><summary>Full plan</summary>\n\n{fence}diff\n");
    let close = format!("{fence}\n\n</details>\n");
    if open.len() + plan_text.len() + close.len() <= room {
        return format!("{open}{plan_text}{close}");
    }
    let lines: Vec<&str> = plan_text.lines().collect();
    // Room for the note below, whose numbers take at most 40 bytes.
    let note_room = 200;
    let room_for_lines = room.saturating_sub(open.len() + close.len() + note_room);
    let mut kept = String::new();
    let mut shown = 0;
    for line in &lines {
        if kept.len() + line.len() + 1 > room_for_lines {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
        shown += 1;
    }
    let note = format!(
        "_The full plan is too long for a comment: showing the first {} of {} lines. Run `himaplan show` for the whole plan._\n",
        thousands(shown),
        thousands(lines.len())
    );
    if shown == 0 {
        return note;
    }
    let open = open.replace("Full plan", "Full plan (truncated)");
    format!("{open}{kept}{fence}\n\n{note}\n</details>\n")
}

/// Moves each line's leading `+`, `-` or `~` to the first column so that
/// GitHub's `diff` highlighting colours it, keeping the indentation width.
fn diff_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start_matches(' ');
        let indent = line.len() - trimmed.len();
        let mut chars = trimmed.chars();
        let first = chars.next();
        let second = chars.next();
        match (first, second) {
            (Some(symbol @ ('+' | '-' | '~')), Some(' ')) if indent > 0 => {
                out.push(symbol);
                out.push_str(&line[..indent]);
                out.push_str(&trimmed[1..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Text as an inline code span inside a table cell.
fn code(text: &str) -> String {
    let fence = "`".repeat(longest_backtick_run(text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    cell(&format!("{fence}{pad}{text}{pad}{fence}"))
}

/// Text made safe for one table cell.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `5000` → `5,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
