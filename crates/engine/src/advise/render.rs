//! The advice as text: human (terminal, CI logs), markdown (a pull
//! request's body) and JSON. The plan of the proposed values is rendered
//! by the plan renderers and appended by the caller.

use super::{Advice, Outcome, PolicyAdvice, RuleEvidence};
use crate::config::policy::Direction;
use crate::value::format_number;
use std::fmt::Write;

/// Markdown longer than this drops the per-rule evidence tables, so the
/// body plus the plan's own (summarising) markdown fits GitHub's 65,536
/// characters.
const MARKDOWN_EVIDENCE_BUDGET: usize = 24_000;

pub fn human(advice: &Advice) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Scaling advice at {} ({} range queries)", advice.at, advice.queries);
    for p in &advice.policies {
        let _ = writeln!(out);
        let _ = writeln!(out, "scaling_policy.{}: var.{} = {} → {}", p.name, p.variable, p.current, verdict(p));
        let _ = writeln!(out, "  {}", p.reason);
        for r in &p.rules {
            let _ = writeln!(
                out,
                "  {} {} {:?} {} for {}: held at {}/{} evaluations{} (min {}, max {}, last {}){}",
                if r.direction == Direction::Up { "↑" } else { "↓" },
                r.direction.as_str(),
                r.id,
                r.condition,
                r.window,
                r.held,
                r.evaluations,
                gaps(r),
                num(r.min),
                num(r.max),
                num(r.last),
                if r.fired {
                    " → fired"
                } else if r.no_data {
                    " → no data"
                } else {
                    ""
                },
            );
            let _ = writeln!(out, "      {}", r.query);
        }
    }
    let _ = writeln!(out);
    let proposals = advice.proposals();
    if proposals.is_empty() {
        let _ = writeln!(out, "No change proposed.");
    } else {
        let list: Vec<String> = proposals.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let _ = writeln!(out, "Proposed: {}.", list.join(", "));
    }
    out
}

pub fn markdown(advice: &Advice) -> String {
    let mut out = String::new();
    let changes = advice.policies.iter().filter(|p| p.proposed.is_some()).count();
    let _ = writeln!(out, "## himaplan advise\n");
    let _ = writeln!(out, "Evaluated at `{}` with {} range queries: **{} change(s) proposed**.\n", advice.at, advice.queries, changes);
    let _ = writeln!(out, "| policy | variable | current | proposed | why |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for p in &advice.policies {
        let proposed = match &p.proposed {
            Some(v) => format!("**{}**", cell(&v.to_string())),
            None => verdict(p),
        };
        let _ = writeln!(out, "| {} | `{}` | {} | {} | {} |", p.name, p.variable, cell(&p.current.to_string()), proposed, cell(&p.reason));
    }
    let mut evidence = String::new();
    for p in &advice.policies {
        let _ = writeln!(evidence, "\n<details><summary>{}: evidence</summary>\n", p.name);
        let _ = writeln!(evidence, "| rule | condition | for | held | gaps | min | max | last | fired |");
        let _ = writeln!(evidence, "|---|---|---|---|---|---|---|---|---|");
        for r in &p.rules {
            let _ = writeln!(
                evidence,
                "| {} `{}` | {} | {} | {}/{} | {} | {} | {} | {} | {} |",
                r.direction.as_str(),
                r.id,
                r.condition,
                r.window,
                r.held,
                r.evaluations,
                r.missing,
                num(r.min),
                num(r.max),
                num(r.last),
                if r.fired {
                    "yes"
                } else if r.no_data {
                    "no data"
                } else {
                    "no"
                },
            );
        }
        let _ = writeln!(evidence, "\nQueries:\n");
        for r in &p.rules {
            let _ = writeln!(evidence, "- {} `{}`: `{}`", r.direction.as_str(), r.id, cell(&r.query));
        }
        let _ = writeln!(evidence, "\n</details>");
    }
    if evidence.len() <= MARKDOWN_EVIDENCE_BUDGET {
        out.push_str(&evidence);
    } else {
        let _ = writeln!(out, "\n_Evidence omitted: too long for a pull request body; run `himaplan advise` to see it._");
    }
    out
}

pub fn json(advice: &Advice) -> serde_json::Value {
    let mut doc = serde_json::to_value(advice).unwrap_or_default();
    if let Some(map) = doc.as_object_mut() {
        map.insert("format_version".into(), "1.0".into());
    }
    doc
}

fn verdict(p: &PolicyAdvice) -> String {
    match (&p.proposed, p.outcome) {
        (Some(v), _) => v.to_string(),
        (None, Outcome::NoData) => "no data".to_string(),
        (None, _) => "hold".to_string(),
    }
}

fn gaps(r: &RuleEvidence) -> String {
    if r.missing > 0 && !r.no_data { format!(", {} missing", r.missing) } else { String::new() }
}

fn num(n: Option<f64>) -> String {
    match n {
        None => "none".to_string(),
        Some(v) => {
            // Four significant decimals: evidence, not a measurement report.
            let rounded = (v * 10_000.0).round() / 10_000.0;
            format_number(rounded)
        }
    }
}

/// Text safe inside a markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
