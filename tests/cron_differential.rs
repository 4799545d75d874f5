//! Cron semantics are Kubernetes' own: `schedule.rs` against robfig/cron
//! v3.0.1 (the parser and scheduler of the CronJob controller, run as the
//! `cronref` reference program) over seeded random expressions, instants
//! and time zones with daylight-saving changes. For each case both sides
//! parse the expression (as the API server validates it) and list its next
//! firings (as the controller computes them); every answer must agree.
//!
//! The zones come from two builds of the IANA data: chrono-tz's and the one
//! Go embeds. A zone whose offsets differ between the two in the tested
//! years is excluded and listed, so a difference left is a difference of
//! cron semantics, never of tzdata. The counts are printed on every run.

#[path = "support/cronref.rs"]
mod cronref;

use chrono::{DateTime, Offset, SecondsFormat, TimeZone};
use chrono_tz::Tz;
use himaplan::providers::kubernetes::schedule::{Cron, parse_time_zone};
use std::io::Write;

/// Random valid expressions (each at one instant and zone).
const EXPRESSIONS: usize = 12_000;
/// Random strings near the grammar, compared on acceptance only.
const SYNTAX_CASES: usize = 3_000;
/// Firings compared per expression.
const FIRINGS: usize = 5;
const SEED: u64 = 0x5eed_c0de_2026;
/// How long robfig's `Next` may take for one case before it counts as a hang.
const HANG_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);
const HANG: &str = "hang";
/// The instants: 1995-01-01 to 2035-01-01; zones are compared over these
/// years and the five after (robfig's search limit).
const FROM: i64 = 788_918_400;
const TO: i64 = 2_051_222_400;
const ZONES_TO: i64 = TO + 6 * 366 * 86_400;

/// UTC, zones with daylight-saving time (30-minute and 2-hour changes,
/// changes at midnight, southern hemisphere, negative DST, Ramadan
/// suspensions), and zones that changed their rules or skipped a day.
const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/St_Johns",
    "America/Havana",
    "America/Santiago",
    "America/Asuncion",
    "America/Sao_Paulo",
    "America/Mexico_City",
    "America/Nuuk",
    "America/Scoresbysund",
    "America/Caracas",
    "America/Coyhaique",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Berlin",
    "Europe/Chisinau",
    "Europe/Kyiv",
    "Europe/Moscow",
    "Africa/Casablanca",
    "Africa/Cairo",
    "Asia/Jerusalem",
    "Asia/Beirut",
    "Asia/Gaza",
    "Asia/Amman",
    "Asia/Damascus",
    "Asia/Tehran",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Pacific/Kiritimati",
    "Pacific/Norfolk",
    "Pacific/Fiji",
    "Antarctica/Troll",
];

#[test]
fn next_firings_match_robfig_cron() {
    let Some(reference) = cronref::reference() else { return };
    let mut rng = Rng(SEED);

    let (zones, excluded) = comparable_zones(&reference);
    let mut cases = Vec::new();
    for _ in 0..EXPRESSIONS {
        let (name, tz, changes) = &zones[rng.below(zones.len() as u64) as usize];
        let expr = expression(&mut rng);
        // Half the instants fall within a few days before an offset change.
        let at = match changes.len() {
            n if n > 0 && rng.below(2) == 0 => changes[rng.below(n as u64) as usize] - rng.below(4 * 86_400) as i64,
            _ => FROM + rng.below((TO - FROM) as u64) as i64,
        };
        cases.push((expr, *name, *tz, at));
    }
    for _ in 0..SYNTAX_CASES {
        cases.push((near_syntax(&mut rng), "UTC", Tz::UTC, FROM + rng.below((TO - FROM) as u64) as i64));
    }
    let lines: Vec<String> = cases.iter().map(|(e, z, _, at)| format!("{e}\t{z}\t{}", stamp(*at))).collect();
    let ours: Vec<String> = cases.iter().map(|(e, _, tz, at)| ours(e, *tz, *at)).collect();
    // Where we found fewer firings than asked, robfig's `Next` may loop
    // forever: ask for those one at a time, each in a process with a time
    // limit, and the rest in one batch.
    let short = |o: &String| o.ends_with("none");
    let batch: Vec<String> = lines.iter().zip(&ours).filter(|(_, o)| !short(o)).map(|(l, _)| l.clone()).collect();
    let mut batched = reference.next(FIRINGS, &batch).into_iter();
    let mut hangs = Vec::new();
    let answers: Vec<String> = lines
        .iter()
        .zip(&ours)
        .map(|(line, o)| match short(o) {
            false => batched.next().expect("one answer per line"),
            true => reference.next_within(FIRINGS, line, HANG_LIMIT).unwrap_or_else(|| {
                hangs.push(line.rsplit('\t').nth(1).unwrap_or_default().to_string());
                HANG.to_string()
            }),
        })
        .collect();

    let (mut accepted, mut refused, mut firings, mut never, mut every) = (0, 0, 0, 0, 0);
    let mut differences = Vec::new();
    for (((expr, name, _, at), theirs), ours) in cases.iter().zip(&answers).zip(ours) {
        if ours.starts_with("ok") {
            accepted += 1;
            firings += ours.split('\t').filter(|f| *f != "ok" && *f != "none").count();
            never += ours.ends_with("none") as usize;
        } else {
            refused += 1;
        }
        let theirs_kind = theirs.split('\t').next().unwrap_or_default();
        let same = match theirs_kind {
            // Refused on purpose (`CronError::Every`), documented.
            "ok" if expr.starts_with("@every ") && ours.starts_with("error\t@every") => {
                every += 1;
                true
            }
            "error" => ours.starts_with("error"),
            // robfig never answers; himaplan gives up (documented).
            HANG => ours.ends_with("none"),
            _ => ours == *theirs,
        };
        if !same {
            differences.push(format!("{expr:?} in {name} after {}:\n    robfig/cron: {theirs}\n    himaplan:    {ours}", stamp(*at)));
        }
    }

    let hang_text = match hangs.len() {
        0 => "none".to_string(),
        n => {
            hangs.sort();
            hangs.dedup();
            format!("{n} cases, all in {}", hangs.join(", "))
        }
    };
    let report = format!(
        "cron differential (seed {SEED:#x}): robfig/cron {}, Go tzdata {} vs chrono-tz tzdata {}\n\
         \x20 expressions: {} random valid + {} near-grammar strings; instants: {} (in {} zones)\n\
         \x20 accepted by himaplan: {accepted}, refused: {refused} ({every} of them `@every`, which robfig accepts: refused on purpose); firings compared: {firings} ({never} schedules with no firing within 5 years)\n\
         \x20 robfig/cron's Next never returned (himaplan answers \"no firing\" instead): {}\n\
         \x20 differences: {}\n\
         \x20 excluded zones (offsets differ between the two tzdata builds in 1995-2041): {}\n",
        reference.version.lines().find_map(|l| l.strip_prefix("robfig/cron ")).unwrap_or("?"),
        reference.tzdata,
        chrono_tz::IANA_TZDB_VERSION,
        EXPRESSIONS,
        SYNTAX_CASES,
        cases.len(),
        zones.len(),
        hang_text,
        differences.len(),
        if excluded.is_empty() { "none".to_string() } else { excluded.join(", ") },
    );
    // Straight to stderr, past the test harness's capture: the counts are
    // part of the result, also when the test passes.
    let _ = std::io::stderr().write_all(report.as_bytes());
    assert!(differences.is_empty(), "{report}first differences:\n{}", differences.iter().take(20).cloned().collect::<Vec<_>>().join("\n"));
    assert!(firings >= EXPRESSIONS * FIRINGS / 2, "too few firings compared: {firings}");
}

/// himaplan's answer in cronref's format.
fn ours(expr: &str, tz: Tz, at: i64) -> String {
    let cron = match Cron::parse(expr) {
        Ok(c) => c,
        Err(e) => return format!("error\t{e}"),
    };
    let mut t = DateTime::from_timestamp(at, 0).expect("instant");
    let mut fields = vec!["ok".to_string()];
    for _ in 0..FIRINGS {
        match cron.next_after(t, tz) {
            Some(next) => {
                fields.push(stamp(next.timestamp()));
                t = next;
            }
            None => {
                fields.push("none".into());
                break;
            }
        }
    }
    fields.join("\t")
}

/// The pool of zones whose offsets agree between the two tzdata builds, each
/// with its offset changes, and the names of the excluded ones.
type Zone = (&'static str, Tz, Vec<i64>);
fn comparable_zones(reference: &cronref::CronRef) -> (Vec<Zone>, Vec<String>) {
    let theirs = reference.zones(ZONES, FROM - 86_400, ZONES_TO);
    let mut pool = Vec::new();
    let mut excluded = Vec::new();
    for (name, theirs) in ZONES.iter().zip(theirs) {
        let tz = parse_time_zone(name).unwrap_or_else(|e| panic!("{e}"));
        let ours = transitions(tz, FROM - 86_400, ZONES_TO);
        match theirs {
            Some(theirs) if theirs == ours => pool.push((*name, tz, ours.1.iter().map(|(t, _)| *t).collect())),
            Some(theirs) => {
                let first = ours.1.iter().zip(&theirs.1).find(|(a, b)| a != b).map(|(a, b)| format!("{a:?} vs {b:?}"));
                excluded.push(format!("{name} (first difference: {})", first.unwrap_or_else(|| "a missing change".into())));
            }
            None => excluded.push(format!("{name} (unknown to Go)")),
        }
    }
    (pool, excluded)
}

/// chrono-tz's offset at `from` and its offset changes until `to`, found
/// by sampling every 6 hours and bisecting to the second.
fn transitions(tz: Tz, from: i64, to: i64) -> (i64, Vec<(i64, i64)>) {
    let offset =
        |t: i64| tz.offset_from_utc_datetime(&DateTime::from_timestamp(t, 0).expect("instant").naive_utc()).fix().local_minus_utc() as i64;
    let first = offset(from);
    let (mut changes, mut t, mut current) = (Vec::new(), from, first);
    while t < to {
        let next = (t + 6 * 3600).min(to);
        if offset(next) != current {
            let (mut lo, mut hi) = (t, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == current { lo = mid } else { hi = mid }
            }
            current = offset(hi);
            changes.push((hi, current));
            t = hi;
        } else {
            t = next;
        }
    }
    (first, changes)
}

fn stamp(t: i64) -> String {
    DateTime::from_timestamp(t, 0).expect("instant").to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---------------------------------------------------------------------------
// Generators

/// SplitMix64: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

struct FieldKind {
    min: u64,
    max: u64,
    names: &'static [&'static str],
}

const FIELDS: [FieldKind; 5] = [
    FieldKind { min: 0, max: 59, names: &[] },
    FieldKind { min: 0, max: 23, names: &[] },
    FieldKind { min: 1, max: 31, names: &[] },
    FieldKind { min: 1, max: 12, names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] },
    FieldKind { min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] },
];

/// A valid expression: mostly five fields of every syntax robfig's standard
/// parser accepts, sometimes a descriptor.
fn expression(rng: &mut Rng) -> String {
    if rng.below(25) == 0 {
        return rng.pick(&["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]).to_string();
    }
    // Sparse minute and hour fields keep schedules realistic (and the
    // five-year searches short); the day fields get every form.
    FIELDS.iter().enumerate().map(|(i, f)| field(rng, f, i < 2)).collect::<Vec<_>>().join(" ")
}

fn field(rng: &mut Rng, f: &FieldKind, time_of_day: bool) -> String {
    match rng.below(if time_of_day { 10 } else { 6 }) {
        0 => rng.pick(&["*", "?", "*/1"]).to_string(),
        1 => (0..rng.range(1, 3)).map(|_| part(rng, f)).collect::<Vec<_>>().join(","),
        _ => part(rng, f),
    }
}

fn part(rng: &mut Rng, f: &FieldKind) -> String {
    let v = |rng: &mut Rng| value(rng, f, None);
    let step = |rng: &mut Rng| match rng.below(12) {
        0 => rng.pick(&["4294967295", "4294967296", "9223372036854775807", "+2", "60", "100"]).to_string(),
        _ => rng.range(1, f.max - f.min + 1).to_string(),
    };
    match rng.below(8) {
        0 | 1 | 2 => v(rng),
        3 | 4 => {
            let lo = rng.range(f.min, f.max);
            let hi = rng.range(lo, f.max);
            let range = format!("{}-{}", value(rng, f, Some(lo)), value(rng, f, Some(hi)));
            if rng.below(2) == 0 { range } else { format!("{range}/{}", step(rng)) }
        }
        5 => format!("{}/{}", rng.pick(&["*", "?"]), step(rng)),
        6 => format!("{}/{}", v(rng), step(rng)),
        _ => format!("*-{}", v(rng)),
    }
}

/// A number of the field (or its name, in a random case).
fn value(rng: &mut Rng, f: &FieldKind, fixed: Option<u64>) -> String {
    let n = fixed.unwrap_or_else(|| rng.range(f.min, f.max));
    if !f.names.is_empty() && rng.below(3) == 0 {
        let name = f.names[(n - f.min) as usize];
        return match rng.below(3) {
            0 => name.to_uppercase(),
            1 => name[..1].to_uppercase() + &name[1..],
            _ => name.to_string(),
        };
    }
    if rng.below(10) == 0 { format!("0{n}") } else { n.to_string() }
}

/// A string near the grammar: valid expressions with one token changed,
/// to hold acceptance to robfig's.
fn near_syntax(rng: &mut Rng) -> String {
    let mut fields: Vec<String> = expression(rng).split(' ').map(str::to_string).collect();
    let i = rng.below(fields.len() as u64) as usize;
    let odd = rng.pick(&[
        "",
        "60",
        "24",
        "0",
        "32",
        "13",
        "7",
        "-1",
        "1-",
        "-5",
        "5-1",
        "*/0",
        "1/0",
        "*/-1",
        "1//2",
        "1-2-3",
        "*-*",
        "?-3/2",
        ",",
        ",,1",
        "1,",
        "L",
        "1W",
        "1#2",
        "MON-",
        "mon-fri/2",
        "JAN-DEC",
        "sun,SAT",
        "+1",
        "01",
        "*/",
        "/5",
        "**",
        "@daily",
        "@Daily",
        "@every 1h",
        "TZ=UTC",
        "*-TZ",
        "*-tz",
        "1.5",
        "١",
        "9223372036854775808",
        "*/9223372036854775808",
    ]);
    match rng.below(4) {
        0 => fields.push(odd.to_string()),
        1 if fields.len() > 1 => {
            fields.remove(i);
        }
        _ => fields[i] = odd.to_string(),
    }
    let sep = rng.pick(&[" ", " ", "\t", "  "]);
    fields.join(sep)
}
