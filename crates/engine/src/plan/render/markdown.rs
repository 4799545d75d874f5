//! The plan as a GitHub pull-request comment, in the order a reviewer
//! needs it: a hidden marker (so a CI job finds and updates its own
//! comment), the summary line, what happens to running things (deletions
//! and replacements first, then each rollout: "3 × stop/start, 1 at a time,
//! drained from nginx_upstream.web[0]"), a table grouped by resource and
//! action (`aws_instance.web[0..2]` × 3, never one row per instance), and
//! the full human plan collapsed in a ```` ```diff ```` block whose `~`
//! lines are rewritten to `!` (GitHub colours only `+`, `-` and `!`).
//!
//! GitHub rejects comments of 65,536 characters or more: every section is
//! bounded (rows and lines are capped, saying what was left out) and the
//! collapsed plan is cut to the room left. Appending sections (a graph)
//! goes through [`markdown_with`], which keeps them inside the budget.

use super::{RenderOptions, action_word, human, reason_text};
use crate::addr::{InstanceAddr, InstanceKey};
use crate::plan::{Action, Disruption, Plan, ResourceChange};
use std::fmt::Write as _;

/// The hidden first line of every comment: CI workflows look for it to
/// update their comment instead of adding one per push.
pub const MARKER: &str = "<!-- himaplan:plan -->";

/// What the comment aims to stay under, leaving GitHub's limit (65,536)
/// room for anything a CI job wraps around it.
const BUDGET: usize = 60_000;
/// GitHub's limit, which no rendering may reach.
const HARD_LIMIT: usize = 65_536;
/// Rows of the change table, and lines of each list of running things,
/// beyond which the rest is counted in one line.
const MAX_ROWS: usize = 40;
const MAX_IMPACT_LINES: usize = 25;
/// Keys named in a group's address before the rest is counted.
const MAX_KEYS: usize = 4;

/// Renders `plan` as Markdown for a pull-request comment.
pub fn markdown(plan: &Plan) -> String {
    markdown_with(plan, &[])
}

/// [`markdown`] with `extra` sections (already Markdown) after the table
/// and before the collapsed full plan; a section that does not fit the
/// budget is replaced by a note saying so.
pub fn markdown_with(plan: &Plan, extra: &[String]) -> String {
    let changes: Vec<&ResourceChange> = plan.changes.iter().filter(|c| c.action != Action::NoOp).collect();
    let mut text = format!("{MARKER}\n\n{}", heading(plan));
    text.push_str(&running_things(plan, &changes));
    text.push_str(&table(&changes));
    for section in extra {
        if text.len() + section.len() + 2_000 <= BUDGET {
            text.push_str(section);
            if !section.ends_with('\n') {
                text.push('\n');
            }
            text.push('\n');
        } else {
            text.push_str("_A section was left out to fit the comment; run `himaplan graph` for it._\n\n");
        }
    }
    let full_plan = diff_lines(&human(plan, &RenderOptions { color: false }));
    text.push_str(&details(&full_plan, BUDGET.saturating_sub(text.len())));
    if text.len() >= HARD_LIMIT {
        // Unreachable with the caps above; kept so that no plan can make a
        // comment GitHub refuses.
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

/// The list a reviewer reads first: what is destroyed, replaced or
/// disrupted, and how; or one line saying nothing running is touched.
fn running_things(plan: &Plan, changes: &[&ResourceChange]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut lines = Vec::new();
    let destroyed: Vec<&ResourceChange> = changes.iter().copied().filter(|c| c.action == Action::Delete).collect();
    for group in groups(&destroyed) {
        let why = group.note.as_deref().map(|n| format!(" ({})", prose(n))).unwrap_or_default();
        lines.push(format!("- **Destroyed**: {}{why}", group.label()));
    }
    let replaced: Vec<&ResourceChange> = changes.iter().copied().filter(|c| c.action.is_replace()).collect();
    for group in groups(&replaced) {
        let order = if group.action == Action::CreateThenDelete {
            "the new object is created before the old one is destroyed"
        } else {
            "destroyed, then created again"
        };
        let why = group.note.as_deref().map(|n| format!("; {}", prose(n))).unwrap_or_default();
        lines.push(format!("- **Replaced**: {}: {order}{why}", group.label()));
    }
    let mut summarised: Vec<&str> = Vec::new();
    for d in &plan.disruptions {
        lines.push(format!("- **Disrupted**: {}", disruption_line(d)));
        summarised.extend(d.members.iter().map(String::as_str));
        summarised.push(d.subject.as_str());
    }
    // Disruptive updates a plan recorded no rollout for (plans saved by
    // older versions) are still called out, without batch details.
    let rest: Vec<&ResourceChange> = changes
        .iter()
        .copied()
        .filter(|c| c.action == Action::Update && c.disruption.is_some())
        .filter(|c| !summarised.contains(&c.addr.to_string().as_str()))
        .collect();
    for group in groups(&rest) {
        let what = group.changes[0].disruption.as_deref().unwrap_or_default();
        let addrs: Vec<InstanceAddr> = group.changes.iter().map(|c| c.addr.clone()).collect();
        lines.push(format!("- **Disrupted**: {}: {} × {}", code(&compact(&addrs)), thousands(addrs.len()), prose(what)));
    }

    let mut text = String::from("**What happens to running things**\n\n");
    if lines.is_empty() {
        text.push_str("Nothing running is stopped, restarted, replaced or destroyed.\n\n");
        return text;
    }
    let shown = lines.len().min(MAX_IMPACT_LINES);
    for line in &lines[..shown] {
        text.push_str(line);
        text.push('\n');
    }
    if shown < lines.len() {
        let _ = writeln!(text, "- _… and {} more; the full plan below lists them._", thousands(lines.len() - shown));
    }
    text.push('\n');
    text
}

/// `` `aws_instance.web[0..2]`: 3 × stop/start, 1 at a time, drained from
/// `nginx_upstream.web[0]` ``.
fn disruption_line(d: &Disruption) -> String {
    let addrs: Option<Vec<InstanceAddr>> = d.members.iter().map(|m| m.parse().ok()).collect();
    let (subject, pieces) = match addrs {
        Some(addrs) if !addrs.is_empty() && addrs.iter().all(|a| a.resource.to_string() == d.subject) => {
            (code(&compact(&addrs)), String::new())
        }
        _ => (code(&d.subject), format!(" ({})", name_list(&d.members))),
    };
    let n = d.members.len();
    let pace = if d.batches <= 1 {
        "all at once".to_string()
    } else if d.max_unavailable == 1 {
        format!("1 at a time ({} batches)", d.batches)
    } else {
        format!("at most {} at a time ({} batches)", d.max_unavailable, d.batches)
    };
    let mut line = format!("{subject}: {n} × {}{pieces}, {pace}", prose(&d.disruption));
    if !d.drained_from.is_empty() {
        let listings: Vec<String> = d.drained_from.iter().take(MAX_KEYS).map(|l| code(l)).collect();
        let more = d.drained_from.len().saturating_sub(MAX_KEYS);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let each = if n > 1 { "each " } else { "" };
        let _ = write!(line, ", {each}drained from {}{more} first and put back after", listings.join(", "));
    }
    if let Some(gate) = &d.gate {
        let _ = write!(line, "; health gate before it rejoins: {}", prose(gate));
    }
    if d.batches > 1 || n > d.max_unavailable {
        let _ = write!(line, "; at most {} of {n} out of service at once", d.max_unavailable.min(n));
    }
    line
}

/// The change table: one row per resource, action and note.
fn table(changes: &[&ResourceChange]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut ordered: Vec<&ResourceChange> = changes.to_vec();
    ordered.sort_by_key(|c| severity(c));
    let groups = groups(&ordered);
    let with_notes = groups.iter().any(|g| g.note.is_some());
    let mut text = if with_notes {
        String::from("| Change | Resources | Notes |\n| --- | --- | --- |\n")
    } else {
        String::from("| Change | Resources |\n| --- | --- |\n")
    };
    for group in groups.iter().take(MAX_ROWS) {
        let change = format!("{} {}", group.action.symbol(), action_word(group.action));
        let _ = write!(text, "| {} | {} |", cell(&change), group.label());
        if with_notes {
            let _ = write!(text, " {} |", prose(group.note.as_deref().unwrap_or("")));
        }
        text.push('\n');
    }
    if groups.len() > MAX_ROWS {
        let rest: usize = groups[MAX_ROWS..].iter().map(|g| g.changes.len()).sum();
        let _ = write!(text, "| … | _{} more rows: {}_ |", thousands(groups.len() - MAX_ROWS), count(rest, "change", "changes"));
        if with_notes {
            text.push_str(" |");
        }
        text.push('\n');
    }
    text.push('\n');
    text
}

/// Deletions first, then replacements, disruptive updates, updates, creates.
fn severity(change: &ResourceChange) -> u8 {
    match change.action {
        Action::Delete => 0,
        Action::DeleteThenCreate | Action::CreateThenDelete => 1,
        Action::Update if change.disruption.is_some() => 2,
        Action::Update => 3,
        Action::Create => 4,
        Action::NoOp => 5,
    }
}

/// Changes of one resource with the same action and note, adjacent in the
/// order given.
struct Group<'a> {
    action: Action,
    note: Option<String>,
    changes: Vec<&'a ResourceChange>,
}

impl Group<'_> {
    /// `` `aws_instance.web[0..2]` × 3 ``, or the one address.
    fn label(&self) -> String {
        let addrs: Vec<InstanceAddr> = self.changes.iter().map(|c| c.addr.clone()).collect();
        let text = code(&compact(&addrs));
        if addrs.len() > 1 { format!("{text} × {}", thousands(addrs.len())) } else { text }
    }
}

fn groups<'a>(changes: &[&'a ResourceChange]) -> Vec<Group<'a>> {
    let mut out: Vec<Group<'a>> = Vec::new();
    for &change in changes {
        let note = note(change);
        match out.last_mut() {
            Some(g) if g.action == change.action && g.note == note && g.changes[0].addr.resource == change.addr.resource => {
                g.changes.push(change)
            }
            _ => out.push(Group { action: change.action, note, changes: vec![change] }),
        }
    }
    out
}

/// What a row says beside the action: the disruption and the reason.
fn note(change: &ResourceChange) -> Option<String> {
    let reason = match (reason_text(change), change.replace_paths.is_empty()) {
        (Some(reason), _) => Some(reason.strip_prefix("because ").map(str::to_string).unwrap_or(reason)),
        (None, false) => Some(format!("{} forces replacement", change.replace_paths.join(", "))),
        (None, true) => None,
    };
    let disruption = change.disruption.as_ref().map(|d| format!("disruptive: {d}"));
    match (disruption, reason) {
        (Some(d), Some(r)) => Some(format!("{d}; {r}")),
        (d, r) => d.or(r),
    }
}

/// Addresses of one resource written once: `aws_instance.web[0..2, 5]`,
/// `docker_service.api["a", "b", … 3 more]`, or the address itself.
fn compact(addrs: &[InstanceAddr]) -> String {
    let Some(first) = addrs.first() else { return String::new() };
    if addrs.len() == 1 || addrs.iter().any(|a| a.resource != first.resource || a.key.is_none()) {
        let mut names: Vec<String> = addrs.iter().take(MAX_KEYS).map(|a| a.to_string()).collect();
        if addrs.len() > MAX_KEYS {
            names.push(format!("… {} more", thousands(addrs.len() - MAX_KEYS)));
        }
        return names.join(", ");
    }
    let mut numbers: Vec<i64> = Vec::new();
    let mut strings: Vec<String> = Vec::new();
    for a in addrs {
        match &a.key {
            Some(InstanceKey::Int(n)) => numbers.push(*n),
            Some(InstanceKey::Str(s)) => strings.push(serde_json::Value::String(s.clone()).to_string()),
            None => {}
        }
    }
    numbers.sort_unstable();
    numbers.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end + 1 {
            i += 1;
            end = numbers[i];
        }
        parts.push(if end == start { start.to_string() } else { format!("{start}..{end}") });
        i += 1;
    }
    let mut shown: Vec<String> = parts.iter().take(MAX_KEYS).cloned().collect();
    shown.extend(strings.iter().take(MAX_KEYS.saturating_sub(shown.len())).cloned());
    let hidden = parts.len() + strings.len() - shown.len();
    if hidden > 0 {
        shown.push(format!("… {hidden} more"));
    }
    format!("{}[{}]", first.resource, shown.join(", "))
}

#[cfg(test)]
pub(super) fn compact_for_tests(addrs: &[InstanceAddr]) -> String {
    compact(addrs)
}

/// Names of pieces, the first few and a count of the rest.
fn name_list(names: &[String]) -> String {
    let mut shown: Vec<String> = names.iter().take(MAX_KEYS).map(|n| prose(n)).collect();
    if names.len() > MAX_KEYS {
        shown.push(format!("… {} more", thousands(names.len() - MAX_KEYS)));
    }
    shown.join(", ")
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
/// GitHub's `diff` highlighting colours it, keeping the indentation width;
/// `~` becomes `!`, the one "changed" mark GitHub colours (as tfcmt does).
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
                out.push(if symbol == '~' { '!' } else { symbol });
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

/// Text made safe for one table cell (and one list line).
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

/// Free text (notes, reasons) for a cell or list line: also no raw HTML,
/// which a comment rendered with HTML enabled would otherwise interpret.
fn prose(text: &str) -> String {
    cell(text).replace('<', "&lt;")
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
