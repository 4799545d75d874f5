//! Kubernetes' cron grammar and time zones, evaluated offline: parsing a
//! CronJob `schedule` exactly as the API server's validation does (the
//! `robfig/cron` standard parser: 5 fields or `@yearly`/`@annually`/
//! `@monthly`/`@weekly`/`@daily`/`@midnight`/`@hourly`), the day-of-month /
//! day-of-week OR rule, the latest firing at or before an instant (read in
//! the schedule's time zone, looking back at most [`LOOKBACK_DAYS`] days),
//! and whether two schedules ever fire at the same instant.
//!
//! Must not talk to the cluster: `validate` and `plan` use this without a
//! network. Written here rather than taken from a cron crate because the
//! crates at hand accept extensions Kubernetes refuses (seconds, years, `L`,
//! `W`, `#`), so `validate` would pass what the API server then rejects.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// How far back the latest firing is searched (SPEC §4).
pub const LOOKBACK_DAYS: i64 = 8;
/// How far ahead two schedules are compared for firings at the same instant:
/// a year covers every month, weekday and daylight-saving change.
pub const COLLISION_WINDOW_DAYS: i64 = 366;

/// Why a schedule or time zone is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("time zones go in time_zone, not in the schedule (drop the {0} prefix)")]
    TimeZonePrefix(String),
    #[error("@every is not supported: its firings depend on when the controller last ran; use a 5-field expression")]
    Every,
    #[error("unknown macro {0:?} (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)")]
    UnknownMacro(String),
    #[error("expected exactly 5 fields (minute hour day-of-month month day-of-week), found {0}")]
    FieldCount(usize),
    #[error("{field} field {text:?}: {why}")]
    Field { field: &'static str, text: String, why: String },
}

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    dom: u64,
    months: u64,
    dow: u64,
    /// Day-of-month or day-of-week was written as `*`/`?` (without a step
    /// above 1): then both must match; otherwise either is enough.
    dom_star: bool,
    dow_star: bool,
}

struct Bounds {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds { name: "minute", min: 0, max: 59, names: &[] };
const HOUR: Bounds = Bounds { name: "hour", min: 0, max: 23, names: &[] };
const DOM: Bounds = Bounds { name: "day-of-month", min: 1, max: 31, names: &[] };
const MONTH: Bounds =
    Bounds { name: "month", min: 1, max: 12, names: &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"] };
const DOW: Bounds = Bounds { name: "day-of-week", min: 0, max: 6, names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"] };

impl Cron {
    /// Parses a CronJob schedule the way the API server validates it.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        let text = text.trim();
        for prefix in ["TZ=", "CRON_TZ="] {
            if text.starts_with(prefix) {
                return Err(CronError::TimeZonePrefix(prefix.to_string()));
            }
        }
        if let Some(name) = text.strip_prefix('@') {
            let expanded = match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                n if n.starts_with("every") => return Err(CronError::Every),
                _ => return Err(CronError::UnknownMacro(text.to_string())),
            };
            return Cron::parse(expanded);
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount(fields.len()));
        }
        let (minutes, _) = field(fields[0], &MINUTE)?;
        let (hours, _) = field(fields[1], &HOUR)?;
        let (dom, dom_star) = field(fields[2], &DOM)?;
        let (months, _) = field(fields[3], &MONTH)?;
        let (dow, dow_star) = field(fields[4], &DOW)?;
        Ok(Cron { minutes, hours, dom, months, dow, dom_star, dow_star })
    }

    /// Whether the schedule fires on this local calendar day.
    pub fn matches_day(&self, day: NaiveDate) -> bool {
        if self.months & (1 << day.month()) == 0 {
            return false;
        }
        let dom = self.dom & (1 << day.day()) != 0;
        let dow = self.dow & (1 << day.weekday().num_days_from_sunday()) != 0;
        // robfig/cron: a `*` in either field means both must match;
        // otherwise (both restricted) either matching is enough.
        if self.dom_star || self.dow_star { dom && dow } else { dom || dow }
    }

    /// Whether the schedule fires at this local wall-clock minute.
    pub fn matches_local(&self, t: NaiveDateTime) -> bool {
        self.matches_day(t.date()) && self.hours & (1 << t.hour()) != 0 && self.minutes & (1 << t.minute()) != 0
    }

    /// The local times of day (ascending) at which it fires on a matching day.
    fn times_of_day(&self) -> impl DoubleEndedIterator<Item = NaiveTime> + '_ {
        (0..24u32)
            .filter(move |h| self.hours & (1 << h) != 0)
            .flat_map(move |h| (0..60u32).filter(move |m| self.minutes & (1 << m) != 0).map(move |m| (h, m)))
            .filter_map(|(h, m)| NaiveTime::from_hms_opt(h, m, 0))
    }

    /// The instants of one local day's firings; a wall-clock time that a
    /// daylight-saving change skips does not fire, an ambiguous one fires
    /// at its first occurrence.
    fn firings_on(&self, day: NaiveDate, tz: Tz) -> Vec<DateTime<Utc>> {
        if !self.matches_day(day) {
            return Vec::new();
        }
        self.times_of_day()
            .filter_map(|t| match tz.from_local_datetime(&day.and_time(t)) {
                LocalResult::Single(x) => Some(x.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
                LocalResult::None => None,
            })
            .collect()
    }

    /// The latest firing at or before `at`, no earlier than
    /// [`LOOKBACK_DAYS`] days before it, with the schedule read in `tz`.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let earliest = at - Duration::days(LOOKBACK_DAYS);
        let today = at.with_timezone(&tz).date_naive();
        // One day more than the lookback covers any time zone offset.
        let mut day = today;
        for _ in 0..=LOOKBACK_DAYS + 1 {
            let best = self.firings_on(day, tz).into_iter().filter(|f| *f <= at && *f >= earliest).max();
            if best.is_some() {
                return best;
            }
            day = day.pred_opt()?;
        }
        None
    }

    /// Every firing in `[from, from + days)`, ascending.
    pub fn firings_between(&self, from: DateTime<Utc>, days: i64, tz: Tz) -> Vec<DateTime<Utc>> {
        let until = from + Duration::days(days);
        let mut day = from.with_timezone(&tz).date_naive().pred_opt().unwrap_or(NaiveDate::MIN);
        let mut out = Vec::new();
        while day <= until.with_timezone(&tz).date_naive() {
            out.extend(self.firings_on(day, tz).into_iter().filter(|f| *f >= from && *f < until));
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// The first instant in `[from, from + COLLISION_WINDOW_DAYS)` at which both
/// schedules fire, if any.
pub fn first_common_firing(a: (&Cron, Tz), b: (&Cron, Tz), from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let fa = a.0.firings_between(from, COLLISION_WINDOW_DAYS, a.1);
    let fb = b.0.firings_between(from, COLLISION_WINDOW_DAYS, b.1);
    // Both are sorted: walk them together.
    let (mut i, mut j) = (0, 0);
    while i < fa.len() && j < fb.len() {
        match fa[i].cmp(&fb[j]) {
            std::cmp::Ordering::Equal => return Some(fa[i]),
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    None
}

/// A time zone as CronJob `timeZone` accepts it: an IANA name, exactly.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    if name.is_empty() {
        return Err("time_zone must not be empty (use \"UTC\")".into());
    }
    if name.eq_ignore_ascii_case("local") {
        return Err("time_zone \"Local\" is refused by Kubernetes: name an IANA zone such as \"Europe/Berlin\"".into());
    }
    name.parse::<Tz>().map_err(|_| format!("unknown time zone {name:?}: use an IANA name such as \"UTC\" or \"Europe/Berlin\""))
}

/// Parses one field into a bit set, and whether it was a plain `*`/`?`.
fn field(text: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let err = |why: String| CronError::Field { field: b.name, text: text.to_string(), why };
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| err(format!("step {s:?} is not a number")))?;
                if step == 0 {
                    return Err(err("a step must be a positive number".into()));
                }
                (r, Some(step))
            }
            None => (part, None),
        };
        let (start, end, is_star) = if range == "*" || range == "?" {
            (b.min, b.max, true)
        } else {
            match range.split_once('-') {
                Some((lo, hi)) => (value(lo, b).map_err(&err)?, value(hi, b).map_err(&err)?, false),
                // "N/step" means "N-max/step" (robfig/cron).
                None => {
                    let v = value(range, b).map_err(&err)?;
                    (v, if step.is_some() { b.max } else { v }, false)
                }
            }
        };
        if start > end {
            return Err(err(format!("beginning of range ({start}) beyond end of range ({end})")));
        }
        let step = step.unwrap_or(1);
        // A step above 1 restricts the field even when written with `*`.
        star |= is_star && step == 1;
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

fn value(text: &str, b: &Bounds) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + if b.names.len() == 12 { 1 } else { 0 });
    }
    let v: u32 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    if v < b.min || v > b.max {
        return Err(format!("{v} is out of range {}-{}", b.min, b.max));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    #[test]
    fn evening_and_morning_schedules_pick_the_latest_firing() {
        let down = Cron::parse("0 18 * * 1-5").expect("parse");
        let up = Cron::parse("0 7 * * *").expect("parse");
        // 2026-12-01 is a Tuesday.
        let at = utc("2026-12-01T18:30:00Z");
        assert_eq!(down.latest_at_or_before(at, Tz::UTC), Some(utc("2026-12-01T18:00:00Z")));
        assert_eq!(up.latest_at_or_before(at, Tz::UTC), Some(utc("2026-12-01T07:00:00Z")));
        let before = utc("2026-12-01T17:59:00Z");
        assert_eq!(down.latest_at_or_before(before, Tz::UTC), Some(utc("2026-11-30T18:00:00Z")));
        // Saturday morning: Friday evening's firing is the latest of "down".
        assert_eq!(down.latest_at_or_before(utc("2026-12-05T08:00:00Z"), Tz::UTC), Some(utc("2026-12-04T18:00:00Z")));
        assert_eq!(down.latest_at_or_before(utc("2026-12-01T18:00:00Z"), Tz::UTC), Some(utc("2026-12-01T18:00:00Z")));
    }

    #[test]
    fn lookback_is_at_most_eight_days() {
        let yearly = Cron::parse("@yearly").expect("parse");
        assert_eq!(yearly.latest_at_or_before(utc("2026-01-05T00:00:00Z"), Tz::UTC), Some(utc("2026-01-01T00:00:00Z")));
        assert_eq!(yearly.latest_at_or_before(utc("2026-01-10T00:00:00Z"), Tz::UTC), None);
    }

    #[test]
    fn time_zone_shifts_the_firing() {
        let berlin: Tz = parse_time_zone("Europe/Berlin").expect("tz");
        let c = Cron::parse("0 18 * * *").expect("parse");
        // Winter: Berlin is UTC+1.
        assert_eq!(c.latest_at_or_before(utc("2026-12-01T17:30:00Z"), berlin), Some(utc("2026-12-01T17:00:00Z")));
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored_when_both_restricted() {
        let c = Cron::parse("0 0 1 * 1").expect("parse");
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert!(c.matches_day(d("2026-12-01"))); // the 1st, a Tuesday
        assert!(c.matches_day(d("2026-12-07"))); // a Monday
        assert!(!c.matches_day(d("2026-12-08")));
        // A star in one of them: both must match.
        let and = Cron::parse("0 0 * * 1").expect("parse");
        assert!(!and.matches_day(d("2026-12-01")));
        // "*/2" restricts the field (step above 1): OR applies.
        let stepped = Cron::parse("0 0 */2 * 1").expect("parse");
        assert!(stepped.matches_day(d("2026-12-07")) && stepped.matches_day(d("2026-12-03")));
    }

    #[test]
    fn grammar_matches_kubernetes() {
        for ok in ["*/5 * * * *", "0 18 * * MON-FRI", "0 0 1 jan,jul ?", "5/15 * * * *", "@daily", "@midnight", "@hourly", "0 0 * * 6"] {
            assert!(Cron::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0 18 * *",
            "0 18 * * * *",
            "61 * * * *",
            "0 24 * * *",
            "0 0 0 * *",
            "0 0 * 13 *",
            "0 0 * * 7",
            "5-1 * * * *",
            "*/0 * * * *",
            "L * * * *",
            "TZ=UTC 0 0 * * *",
            "CRON_TZ=UTC 0 0 * * *",
            "@every 1h",
            "@sometimes",
            "0 0 1W * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cron::parse("TZ=Europe/Berlin 0 0 * * *"), Err(CronError::TimeZonePrefix("TZ=".into())));
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert!(parse_time_zone("UTC").is_ok());
        assert!(parse_time_zone("America/New_York").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
        assert!(parse_time_zone("Local").is_err());
        assert!(parse_time_zone("").is_err());
    }

    #[test]
    fn common_firings_are_found() {
        let at = utc("2026-12-01T00:00:00Z");
        let a = Cron::parse("0 18 * * 1-5").expect("parse");
        let b = Cron::parse("0 18 * * *").expect("parse");
        let c = Cron::parse("0 7 * * *").expect("parse");
        assert_eq!(first_common_firing((&a, Tz::UTC), (&b, Tz::UTC), at), Some(utc("2026-12-01T18:00:00Z")));
        assert_eq!(first_common_firing((&a, Tz::UTC), (&c, Tz::UTC), at), None);
        // 19:00 in Berlin (winter) is 18:00 UTC.
        let berlin = parse_time_zone("Europe/Berlin").expect("tz");
        let d = Cron::parse("0 19 * * *").expect("parse");
        assert_eq!(first_common_firing((&a, Tz::UTC), (&d, berlin), at), Some(utc("2026-12-01T18:00:00Z")));
    }
}
