//! `scaling_policy` blocks and the `provider "prometheus"` setting: the
//! model `himaplan advise` evaluates, parsed from hcl-edit's tree with
//! file:line kept, and the offline checks `validate` and `advise` run
//! against the root module's variables.
//!
//! Nothing here queries Prometheus or reads a file: parsing takes a block,
//! checking takes the configuration and the variables' current values.
//! `plan` and `apply` never look at policies (they are not in the graph).

use super::eval::{Scope, eval, eval_literal};
use super::{Config, Expr};
use crate::diag::{Diag, Diags, Location, SourceFile};
use crate::provider::AttrType;
use crate::value::Value;
use hcl_edit::Span;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, Body, Structure};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The shortest evaluation step: Prometheus' usual scrape interval.
pub const MIN_STEP: Duration = Duration::from_secs(15);
/// Evaluations per window at most (Prometheus refuses more than 11,000
/// points per series in one range query).
pub const MAX_EVALUATIONS: u64 = 10_000;
/// Bounds on what a policy may hold, so a configuration cannot make
/// advise send unbounded queries.
const MAX_QUERY_LEN: usize = 16 * 1024;
const MAX_RULES: usize = 32;
const MAX_LADDER: usize = 100;
const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);

/// `scaling_policy "NAME" { ... }`.
#[derive(Debug, Clone)]
pub struct ScalingPolicy {
    pub name: String,
    /// The root module variable the policy proposes values for.
    pub variable: String,
    pub variable_location: Location,
    pub moves: Moves,
    /// Up rules first, then down rules, each in file order.
    pub rules: Vec<Rule>,
    pub location: Location,
}

/// How a proposal moves the variable.
#[derive(Debug, Clone)]
pub enum Moves {
    /// A number variable: `current ± step`, kept within `min..=max`.
    Steps { min: f64, max: f64, step: Step },
    /// A string variable: one place along the ladder.
    Ladder { rungs: Vec<String>, location: Location },
}

/// `step = 1`, or an expression of `current` such as `ceil(current * 0.5)`.
#[derive(Debug, Clone)]
pub enum Step {
    Fixed(f64),
    Of(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// `above = X` or `below = X`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Above(f64),
    Below(f64),
}

impl Threshold {
    /// Whether one evaluation meets the condition (NaN never does).
    pub fn holds(self, value: f64) -> bool {
        match self {
            Threshold::Above(t) => value > t,
            Threshold::Below(t) => value < t,
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Above(t) => write!(f, "above {}", crate::value::format_number(*t)),
            Threshold::Below(t) => write!(f, "below {}", crate::value::format_number(*t)),
        }
    }
}

/// `up "ID" { query, above | below, for }` (or `down`).
#[derive(Debug, Clone)]
pub struct Rule {
    pub direction: Direction,
    pub id: String,
    pub query: String,
    pub threshold: Threshold,
    /// `for`: the condition must hold at every evaluation of this window.
    pub window: Duration,
    /// `for` as written, for output.
    pub window_text: String,
    pub location: Location,
}

impl Rule {
    /// The range query's step: `max(15s, for / 10000)`, in milliseconds.
    pub fn step_ms(&self) -> i64 {
        let window = self.window.as_millis() as i64;
        (MIN_STEP.as_millis() as i64).max((window + MAX_EVALUATIONS as i64 - 1) / MAX_EVALUATIONS as i64)
    }

    /// How many evaluations the window holds, both ends included.
    pub fn evaluations(&self) -> usize {
        (self.window.as_millis() as i64 / self.step_ms()) as usize + 1
    }
}

/// `provider "prometheus" { url }`, falling back to `HIMAPLAN_PROMETHEUS_URL`.
pub fn prometheus_url(config: &Config, root_vars: &BTreeMap<String, Value>, env: Option<String>) -> Result<String, Diags> {
    let block = config.providers.get("prometheus");
    if let Some(block) = block {
        provider_arguments(config).into_result()?;
        if let Some(attr) = block.body.body().get_attribute("url") {
            let expr = Expr { expr: attr.value.clone(), file: block.body.file.clone() };
            let base = BTreeMap::from([("var".to_string(), Value::Map(root_vars.clone().into()))]);
            let value = eval(&expr, &mut Scope::new(&base))?;
            match value.as_str() {
                Some("") => {}
                Some(url) => return Ok(url.to_string()),
                None => return Err(Diag::error("provider \"prometheus\": url must be a string").at(expr.location()).into()),
            }
        }
    }
    match env {
        Some(url) if !url.is_empty() => Ok(url),
        _ => Err(Diag::error("No Prometheus to ask")
            .at_opt(block.map(|b| b.location.clone()))
            .with_detail("Set provider \"prometheus\" { url = \"http://HOST:9090\" } or HIMAPLAN_PROMETHEUS_URL.")
            .into()),
    }
}

/// `provider "prometheus"` takes `url` only.
fn provider_arguments(config: &Config) -> Diags {
    let mut diags = Diags::new();
    let Some(block) = config.providers.get("prometheus") else { return diags };
    for s in block.body.body().iter() {
        let (name, span) = match s {
            Structure::Attribute(a) => (a.key.as_str(), a.span()),
            Structure::Block(b) => (b.ident.as_str(), b.span()),
        };
        if name != "url" {
            diags.push(
                Diag::error(format!("Unsupported argument {name:?} in provider \"prometheus\""))
                    .at(Location::in_file(&block.body.file, span.unwrap_or(0..0)))
                    .with_detail("provider \"prometheus\" takes url only (or set HIMAPLAN_PROMETHEUS_URL)."),
            );
        }
    }
    diags
}

/// Checks every policy of the configuration against the root module's
/// variables: the variable exists and has the policy's type, no two
/// policies drive one variable, a ladder holds the current value, a step
/// expression gives a positive number. `current` holds the values known
/// (defaults, files, environment, flags); unknown ones are skipped.
pub fn check(config: &Config, current: &BTreeMap<String, Value>) -> Diags {
    let mut diags = provider_arguments(config);
    let root = config.root();
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    for policy in root.policies.values() {
        let Some(var) = root.variables.get(&policy.variable) else {
            let names: Vec<&str> = root.variables.keys().map(String::as_str).collect();
            let hint = super::load::suggest(&policy.variable, &names).map(|s| format!(" Did you mean {s:?}?")).unwrap_or_default();
            diags.push(
                Diag::error(format!("scaling_policy {:?}: unknown variable {:?}", policy.name, policy.variable))
                    .at(policy.variable_location.clone())
                    .with_detail(format!("variable names a variable of the root module.{hint}")),
            );
            continue;
        };
        if var.sensitive {
            diags.push(
                Diag::error(format!("scaling_policy {:?}: variable {:?} is sensitive", policy.name, policy.variable))
                    .at(policy.variable_location.clone())
                    .with_detail("advise prints and writes the values it proposes; a sensitive variable cannot be driven by a policy."),
            );
            continue;
        }
        if let Some(other) = owners.insert(&policy.variable, &policy.name) {
            diags.push(
                Diag::error(format!("Two scaling policies drive variable {:?}: {other:?} and {:?}", policy.variable, policy.name))
                    .at(policy.variable_location.clone())
                    .with_detail("Put every rule for one variable into one scaling_policy."),
            );
        }
        let declared = var.type_expr.as_ref().and_then(|t| super::vars::type_of(&t.expr).ok());
        let value = current.get(&policy.variable).filter(|v| !v.has_unknown()).map(Value::deep_unmarked);
        let (want, type_ok, value_ok) = match &policy.moves {
            Moves::Steps { .. } => (
                "number",
                declared.as_ref().is_none_or(|t| matches!(t, AttrType::Number | AttrType::Any)),
                value.as_ref().is_none_or(|v| v.as_f64().is_some()),
            ),
            Moves::Ladder { .. } => (
                "string",
                declared.as_ref().is_none_or(|t| matches!(t, AttrType::String | AttrType::Any)),
                value.as_ref().is_none_or(|v| v.as_str().is_some()),
            ),
        };
        if !(type_ok && value_ok) {
            let what = if matches!(policy.moves, Moves::Ladder { .. }) { "a ladder" } else { "min, max and step" };
            diags.push(
                Diag::error(format!("scaling_policy {:?}: variable {:?} must be a {want}", policy.name, policy.variable))
                    .at(policy.variable_location.clone())
                    .with_detail(format!(
                        "A policy with {what} drives a {want} variable; {:?} is declared at {}:{}.",
                        policy.variable,
                        var.location.path.display(),
                        var.location.line
                    )),
            );
            continue;
        }
        let Some(value) = value else { continue };
        match &policy.moves {
            Moves::Ladder { rungs, location } => {
                let now = value.as_str().unwrap_or_default();
                if !rungs.iter().any(|r| r == now) {
                    diags.push(
                        Diag::error(format!("scaling_policy {:?}: the ladder does not hold the current value {now:?}", policy.name))
                            .at(location.clone())
                            .with_detail(format!("var.{} is {now:?} now; add it to the ladder, or change the variable.", policy.variable)),
                    );
                }
            }
            Moves::Steps { step, .. } => {
                if let Err(d) = step_size(step, &value) {
                    diags.push(d);
                }
            }
        }
    }
    diags
}

/// The step for a variable now at `current`: a positive finite number.
pub fn step_size(step: &Step, current: &Value) -> Result<f64, Diag> {
    match step {
        Step::Fixed(n) => Ok(*n),
        Step::Of(expr) => {
            let base = BTreeMap::from([("current".to_string(), current.clone())]);
            let value = eval(expr, &mut Scope::new(&base))?;
            match value.as_f64() {
                Some(n) if n.is_finite() && n > 0.0 => Ok(n),
                _ => Err(Diag::error(format!("step must give a positive number, got {value} for current = {current}"))
                    .at(expr.location())
                    .with_detail("step may use `current`, the variable's value now, e.g. ceil(current * 0.5).")),
            }
        }
    }
}

/// Parses a `scaling_policy` block; every problem is collected.
pub(super) fn parse(file: &Arc<SourceFile>, block: &Block, name: &str) -> Result<ScalingPolicy, Diags> {
    let mut p = Parser { file, diags: Diags::new() };
    let location = p.loc(block.span());
    p.names(&block.body, &["variable", "min", "max", "step", "ladder"], &["up", "down"]);
    let variable = p.string(&block.body, "variable", true);
    let variable_location = block.body.get_attribute("variable").map(|a| p.loc(a.span())).unwrap_or_else(|| location.clone());
    let ladder = block.body.get_attribute("ladder");
    let moves = match ladder {
        Some(attr) => {
            for key in ["step", "min", "max"] {
                if let Some(a) = block.body.get_attribute(key) {
                    p.error(
                        a.span(),
                        format!("{key} and ladder are exclusive"),
                        "A ladder moves a string variable one rung at a time; min, max and step are for number variables.",
                    );
                }
            }
            let rungs = p.ladder(&attr.value);
            Moves::Ladder { rungs, location: p.loc(attr.span()) }
        }
        None => {
            let min = p.number(&block.body, "min");
            let max = p.number(&block.body, "max");
            let step = match block.body.get_attribute("step") {
                None => Step::Fixed(1.0),
                Some(a) => match eval_literal(&a.value).and_then(|v| v.as_f64()) {
                    Some(n) if n.is_finite() && n > 0.0 => Step::Fixed(n),
                    Some(_) => {
                        p.error(a.value.span(), "step must be a positive number", "e.g. step = 1, or step = ceil(current * 0.5).");
                        Step::Fixed(1.0)
                    }
                    None => Step::Of(Expr { expr: a.value.clone(), file: file.clone() }),
                },
            };
            match (min, max) {
                (Some(min), Some(max)) if min <= max => Moves::Steps { min, max, step },
                (Some(_), Some(_)) => {
                    p.error(block.body.get_attribute("min").and_then(|a| a.span()), "min is greater than max", "Swap them.");
                    Moves::Steps { min: 0.0, max: 0.0, step }
                }
                _ => {
                    p.error(
                        block.span(),
                        format!("scaling_policy {name:?} needs min and max, or a ladder"),
                        "A number variable moves by step within min..max; a string variable moves along ladder = [...].",
                    );
                    Moves::Steps { min: 0.0, max: 0.0, step }
                }
            }
        }
    };
    let mut rules = Vec::new();
    for direction in [Direction::Up, Direction::Down] {
        for b in block.body.get_blocks(direction.as_str()) {
            if let Some(rule) = p.rule(b, direction) {
                if rules.iter().any(|r: &Rule| r.direction == direction && r.id == rule.id) {
                    p.error(b.span(), format!("Duplicate {} rule {:?}", direction.as_str(), rule.id), "Give each rule its own id.");
                }
                rules.push(rule);
            }
        }
    }
    if rules.is_empty() {
        p.error(block.span(), format!("scaling_policy {name:?} has no up or down rule"), "Add up \"ID\" { query, above, for }.");
    }
    if rules.len() > MAX_RULES {
        p.error(block.span(), format!("scaling_policy {name:?} has more than {MAX_RULES} rules"), "Split it, or drop rules.");
    }
    if p.diags.has_errors() {
        return Err(p.diags);
    }
    Ok(ScalingPolicy { name: name.to_string(), variable: variable.unwrap_or_default(), variable_location, moves, rules, location })
}

struct Parser<'a> {
    file: &'a Arc<SourceFile>,
    diags: Diags,
}

impl Parser<'_> {
    fn loc(&self, span: Option<std::ops::Range<usize>>) -> Location {
        Location::in_file(self.file, span.unwrap_or(0..0))
    }

    fn error(&mut self, span: Option<std::ops::Range<usize>>, summary: impl Into<String>, detail: &str) {
        let d = Diag::error(summary).at(self.loc(span)).with_detail(detail);
        self.diags.push(d);
    }

    fn names(&mut self, body: &Body, attrs: &[&str], blocks: &[&str]) {
        for s in body.iter() {
            match s {
                Structure::Attribute(a) if !attrs.contains(&a.key.as_str()) => {
                    let hint = super::load::suggest(a.key.as_str(), attrs).map(|s| format!(" Did you mean {s:?}?")).unwrap_or_default();
                    self.error(
                        a.span(),
                        format!("Unsupported argument {:?}", a.key.as_str()),
                        &format!("Allowed here: {}.{hint}", attrs.join(", ")),
                    );
                }
                Structure::Block(b) if !blocks.contains(&b.ident.as_str()) => {
                    let allowed = if blocks.is_empty() { "none".to_string() } else { blocks.join(", ") };
                    self.error(b.span(), format!("Unsupported block {:?}", b.ident.as_str()), &format!("Blocks allowed here: {allowed}."));
                }
                _ => {}
            }
        }
    }

    fn literal(&mut self, value: &Expression) -> Option<Value> {
        let v = eval_literal(value);
        if v.is_none() {
            self.error(value.span(), "Expected a literal value here (no references or functions)", "Policies are read before any plan.");
        }
        v
    }

    fn string(&mut self, body: &Body, key: &str, required: bool) -> Option<String> {
        let Some(attr) = body.get_attribute(key) else {
            if required {
                self.error(body.span(), format!("Missing required argument {key:?}"), "");
            }
            return None;
        };
        match self.literal(&attr.value)? {
            Value::String(s) if !s.is_empty() => Some(s),
            other => {
                self.error(attr.value.span(), format!("{key} must be a non-empty string, found {}", other.type_name()), "");
                None
            }
        }
    }

    fn number(&mut self, body: &Body, key: &str) -> Option<f64> {
        let attr = body.get_attribute(key)?;
        let v = self.literal(&attr.value)?;
        match v.as_f64() {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.error(attr.value.span(), format!("{key} must be a number, found {}", v.type_name()), "");
                None
            }
        }
    }

    fn ladder(&mut self, value: &Expression) -> Vec<String> {
        let Some(v) = self.literal(value) else { return Vec::new() };
        let items: Option<Vec<String>> = v.as_list().map(|l| l.iter().filter_map(|i| i.as_str().map(str::to_string)).collect());
        match items {
            Some(items) if !items.is_empty() && items.len() == v.as_list().map_or(0, <[Value]>::len) && items.len() <= MAX_LADDER => {
                let mut seen = std::collections::BTreeSet::new();
                if let Some(dup) = items.iter().find(|i| !seen.insert(i.as_str())) {
                    self.error(value.span(), format!("The ladder lists {dup:?} twice"), "Each rung appears once, smallest first.");
                }
                items
            }
            _ => {
                self.error(
                    value.span(),
                    format!("ladder must be a list of 1 to {MAX_LADDER} strings"),
                    "e.g. ladder = [\"t3.small\", \"t3.medium\", \"t3.large\"], smallest first.",
                );
                Vec::new()
            }
        }
    }

    fn rule(&mut self, block: &Block, direction: Direction) -> Option<Rule> {
        let location = self.loc(block.span());
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        let [id] = labels.as_slice() else {
            self.error(block.span(), format!("A {} rule needs one label, its id", direction.as_str()), "e.g. up \"cpu\" { ... }.");
            return None;
        };
        self.names(&block.body, &["query", "above", "below", "for"], &[]);
        let query = self.string(&block.body, "query", true);
        if query.as_ref().is_some_and(|q| q.len() > MAX_QUERY_LEN) {
            self.error(block.body.get_attribute("query").and_then(|a| a.span()), format!("query is longer than {MAX_QUERY_LEN} bytes"), "");
        }
        let threshold = match (self.number(&block.body, "above"), self.number(&block.body, "below")) {
            (Some(a), None) => Some(Threshold::Above(a)),
            (None, Some(b)) => Some(Threshold::Below(b)),
            _ => {
                self.error(block.span(), format!("{} rule {id:?} needs exactly one of above or below", direction.as_str()), "");
                None
            }
        };
        let window_text = self.string(&block.body, "for", true);
        let for_span = block.body.get_attribute("for").and_then(|a| a.value.span());
        let window = match window_text.as_deref().map(parse_duration) {
            Some(Ok(d)) if d >= MIN_STEP && d <= MAX_WINDOW => Some(d),
            Some(Ok(_)) => {
                self.error(for_span, "for must be between 15s and 366d", "The window is evaluated every max(15s, for/10000).");
                None
            }
            Some(Err(e)) => {
                self.error(
                    for_span,
                    format!("Invalid duration: {e}"),
                    "Durations look like 5m, 24h, 168h or 1h30m (units ms, s, m, h, d, w, y).",
                );
                None
            }
            None => None,
        };
        Some(Rule {
            direction,
            id: id.to_string(),
            query: query?,
            threshold: threshold?,
            window: window?,
            window_text: window_text?,
            location,
        })
    }
}

/// A Prometheus duration: one or more `<integer><unit>`, units `ms`, `s`,
/// `m`, `h`, `d`, `w`, `y` (365 days), largest first, e.g. `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 7] =
        [("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("ms", 1), ("m", 60_000), ("s", 1_000)];
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 || digits > 12 {
            return Err(format!("{text:?} is not a duration"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| format!("{text:?} is not a duration"))?;
        rest = &rest[digits..];
        let Some((unit, ms)) = UNITS.iter().find(|(u, _)| rest.starts_with(u) && !(*u == "m" && rest.starts_with("ms"))) else {
            return Err(format!("{text:?} has no unit (ms, s, m, h, d, w, y)"));
        };
        if *ms >= last_unit {
            return Err(format!("{text:?}: units must go from largest to smallest, each once"));
        }
        last_unit = *ms;
        rest = &rest[unit.len()..];
        total = n.checked_mul(*ms).and_then(|x| total.checked_add(x)).ok_or_else(|| format!("{text:?} is too long"))?;
    }
    Ok(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_prometheus() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("168h"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "5", "m", "5 m", "1m1h", "5mm", "-5m", "5.5m", "99999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn rule(window: &str) -> Rule {
        Rule {
            direction: Direction::Up,
            id: "cpu".into(),
            query: "up".into(),
            threshold: Threshold::Above(0.8),
            window: parse_duration(window).unwrap(),
            window_text: window.into(),
            location: Location::file_only(std::path::Path::new("x.hcl")),
        }
    }

    #[test]
    fn step_is_fifteen_seconds_or_a_ten_thousandth_of_the_window() {
        assert_eq!((rule("5m").step_ms(), rule("5m").evaluations()), (15_000, 21));
        assert_eq!((rule("24h").step_ms(), rule("24h").evaluations()), (15_000, 5_761));
        assert_eq!((rule("168h").step_ms(), rule("168h").evaluations()), (60_480, 10_001));
        assert!(rule("366d").evaluations() <= 10_001);
    }

    #[test]
    fn nan_never_holds() {
        assert!(!Threshold::Above(0.8).holds(f64::NAN));
        assert!(!Threshold::Below(0.8).holds(f64::NAN));
        assert!(Threshold::Above(0.8).holds(0.81) && !Threshold::Above(0.8).holds(0.8));
    }
}
