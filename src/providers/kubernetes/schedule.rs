//! Kubernetes' cron grammar and time zones, evaluated offline: parsing a
//! CronJob `schedule` exactly as the API server's validation does (the
//! `robfig/cron` v3 standard parser: 5 fields or `@yearly`/`@annually`/
//! `@monthly`/`@weekly`/`@daily`/`@midnight`/`@hourly`, and no `TZ` in the
//! text), the next firing after an instant as the CronJob controller
//! computes it ([`next`]), the latest firing at or before an instant
//! (looking back at most [`LOOKBACK_DAYS`] days), and whether two schedules
//! ever fire at the same instant.
//!
//! Must not talk to the cluster: `validate` and `plan` use this without a
//! network. Written here rather than taken from a cron crate because the
//! crates at hand accept extensions Kubernetes refuses (seconds, years, `L`,
//! `W`, `#`), so `validate` would pass what the API server then rejects.
//! One deliberate difference: `@every` (which robfig/cron accepts) is
//! refused, see [`CronError::Every`]. `tests/cron_differential.rs` holds
//! both the grammar and the firings to robfig/cron itself.

mod next;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
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
    /// The API server refuses any schedule containing `TZ`, prefix or not.
    #[error("Kubernetes refuses a schedule containing \"TZ\" (time zones go in time_zone)")]
    ContainsTz,
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
    /// Parses a CronJob schedule the way the API server validates it. Like
    /// robfig/cron, the text is not trimmed: `@daily ` is refused.
    pub fn parse(text: &str) -> Result<Cron, CronError> {
        for prefix in ["TZ=", "CRON_TZ="] {
            if text.starts_with(prefix) {
                return Err(CronError::TimeZonePrefix(prefix.to_string()));
            }
        }
        if text.contains("TZ") {
            return Err(CronError::ContainsTz);
        }
        if let Some(name) = text.strip_prefix('@') {
            // robfig/cron matches descriptors exactly (case-sensitively).
            let expanded = match name {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                n if n.starts_with("every ") => return Err(CronError::Every),
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

    /// Whether the day-of-month and day-of-week fields accept this local
    /// calendar day (robfig/cron's `dayMatches`: the month is not looked
    /// at, `Next` checks it on its own).
    pub fn matches_day(&self, day: NaiveDate) -> bool {
        let dom = self.dom & (1 << day.day()) != 0;
        let dow = self.dow & (1 << day.weekday().num_days_from_sunday()) != 0;
        // robfig/cron: a `*` in either field means both must match;
        // otherwise (both restricted) either matching is enough.
        if self.dom_star || self.dow_star { dom && dow } else { dom || dow }
    }

    /// The first firing strictly after `after`, with the schedule read in
    /// `tz`, as the CronJob controller computes it (robfig/cron's `Next`,
    /// including at daylight-saving changes); `None` when it does not fire
    /// within five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        next::next(self, after, tz)
    }

    /// The latest firing at or before `at`, no earlier than
    /// [`LOOKBACK_DAYS`] days before it, with the schedule read in `tz`:
    /// the last of the controller's firings from that earliest instant on.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let mut from = at - Duration::days(LOOKBACK_DAYS) - Duration::seconds(1);
        let mut latest = None;
        while let Some(t) = self.next_after(from, tz).filter(|t| *t <= at) {
            latest = Some(t);
            from = t;
        }
        latest
    }
}

/// The first instant in `[from, from + COLLISION_WINDOW_DAYS)` at which both
/// schedules fire, if any.
pub fn first_common_firing(a: (&Cron, Tz), b: (&Cron, Tz), from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let until = from + Duration::days(COLLISION_WINDOW_DAYS);
    let second = Duration::seconds(1);
    let (mut fa, mut fb) = (a.0.next_after(from - second, a.1)?, b.0.next_after(from - second, b.1)?);
    // Whichever is behind catches up to the other's firing at once.
    while fa < until && fb < until {
        match fa.cmp(&fb) {
            std::cmp::Ordering::Equal => return Some(fa),
            std::cmp::Ordering::Less => fa = a.0.next_after(fb - second, a.1)?,
            std::cmp::Ordering::Greater => fb = b.0.next_after(fa - second, b.1)?,
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

/// Parses one field into a bit set, and whether a `*`/`?` without a step
/// above 1 was among its parts (robfig/cron's star bit), the way robfig/cron
/// does: empty parts of a list are skipped (so `,` is a valid field that
/// never matches), `*` or `?` before a `-` makes the whole range `*`, and a
/// step is any non-negative 64-bit number, a huge one leaving only the start.
fn field(text: &str, b: &Bounds) -> Result<(u64, bool), CronError> {
    let err = |why: String| CronError::Field { field: b.name, text: text.to_string(), why };
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('/');
        let range = pieces.next().unwrap_or_default();
        let step = pieces.next().map(|s| number(s).map_err(&err)).transpose()?;
        if pieces.next().is_some() {
            return Err(err(format!("too many slashes in {part:?}")));
        }
        let bounds: Vec<&str> = range.split('-').collect();
        let (start, end, is_star) = if bounds[0] == "*" || bounds[0] == "?" {
            (b.min as u64, b.max as u64, true)
        } else {
            let start = value(bounds[0], b).map_err(&err)?;
            match bounds.len() {
                // "N/step" means "N-max/step".
                1 => (start, if step.is_some() { b.max as u64 } else { start }, false),
                2 => (start, value(bounds[1], b).map_err(&err)?, false),
                _ => return Err(err(format!("too many hyphens in {part:?}"))),
            }
        };
        if start < b.min as u64 {
            return Err(err(format!("beginning of range ({start}) below minimum ({})", b.min)));
        }
        if end > b.max as u64 {
            return Err(err(format!("end of range ({end}) above maximum ({})", b.max)));
        }
        if start > end {
            return Err(err(format!("beginning of range ({start}) beyond end of range ({end})")));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(err("a step must be a positive number".into()));
        }
        // A step above 1 restricts the field even when written with `*`.
        star |= is_star && step == 1;
        // `step_by` never overflows, where `v += step` would for a huge step.
        for v in (start..=end).step_by(usize::try_from(step).unwrap_or(usize::MAX)) {
            bits |= 1 << v;
        }
    }
    Ok((bits, star))
}

/// A field value: a name of the field (case-insensitive) or a number.
fn value(text: &str, b: &Bounds) -> Result<u64, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(i as u64 + if b.names.len() == 12 { 1 } else { 0 });
    }
    number(text)
}

/// A number as robfig/cron reads one (Go's `strconv.Atoi`: an optional sign
/// and decimal digits fitting 64 bits), refusing negative ones.
fn number(text: &str) -> Result<u64, String> {
    let v: i64 = text.parse().map_err(|_| format!("{text:?} is not a number"))?;
    u64::try_from(v).map_err(|_| format!("negative number ({v}) not allowed"))
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
    fn a_huge_step_fires_only_at_its_start_and_never_panics() {
        // robfig/cron: a step beyond the range leaves the start alone;
        // `v += step` on u32 used to overflow (a panic, or minute 0 too).
        let c = Cron::parse("1/4294967295 * * * *").expect("parse");
        assert_eq!(c.next_after(utc("2026-01-01T00:00:30Z"), Tz::UTC), Some(utc("2026-01-01T00:01:00Z")));
        assert_eq!(c.next_after(utc("2026-01-01T00:01:00Z"), Tz::UTC), Some(utc("2026-01-01T01:01:00Z")));
        assert_eq!(Cron::parse("1/9223372036854775807 * * * *"), Cron::parse("1 * * * *"));
        assert!(Cron::parse("*/9223372036854775807 * * * *").is_ok());
        // Beyond Go's int64 (strconv.Atoi) robfig refuses it, as do we.
        assert!(Cron::parse("1/9223372036854775808 * * * *").is_err());
    }

    #[test]
    fn a_wall_clock_time_a_dst_change_skips_does_not_fire() {
        // New York springs forward at 02:00 on 2026-03-08: no 02:30 that day.
        let ny = parse_time_zone("America/New_York").expect("tz");
        let c = Cron::parse("30 2 * * *").expect("parse");
        assert_eq!(c.next_after(utc("2026-03-07T12:00:00Z"), ny), Some(utc("2026-03-09T06:30:00Z")));
    }

    #[test]
    fn a_repeated_hour_fires_in_both_offsets() {
        // New York falls back at 02:00 EDT on 2026-11-01: 01:30 comes twice,
        // and robfig/cron (so the CronJob controller) fires at both.
        let ny = parse_time_zone("America/New_York").expect("tz");
        let c = Cron::parse("30 1 * * *").expect("parse");
        let first = c.next_after(utc("2026-11-01T00:00:00Z"), ny).expect("first");
        assert_eq!(first, utc("2026-11-01T05:30:00Z"));
        assert_eq!(c.next_after(first, ny), Some(utc("2026-11-01T06:30:00Z")));
        assert_eq!(c.latest_at_or_before(utc("2026-11-01T06:45:00Z"), ny), Some(utc("2026-11-01T06:30:00Z")));
    }

    #[test]
    fn a_midnight_that_does_not_exist_is_skipped() {
        // Santiago springs forward at 24:00 on 2026-09-05: 2026-09-06 has no
        // 00:00, and the next midnight firing is 2026-09-07 00:00 -03.
        let santiago = parse_time_zone("America/Santiago").expect("tz");
        let c = Cron::parse("0 0 * * *").expect("parse");
        let first = c.next_after(utc("2026-09-04T12:00:00Z"), santiago).expect("first");
        assert_eq!(first, utc("2026-09-05T04:00:00Z"));
        assert_eq!(c.next_after(first, santiago), Some(utc("2026-09-07T03:00:00Z")));
    }

    #[test]
    fn robfig_syntax_quirks_are_kept() {
        // `*` before a hyphen is a star, empty list parts are skipped, a
        // list of nothing never fires, a sign is allowed in numbers.
        assert_eq!(Cron::parse("*-5 * * * *"), Cron::parse("* * * * *"));
        assert_eq!(Cron::parse("1,,2 * * * *"), Cron::parse("1,2 * * * *"));
        assert_eq!(Cron::parse("*/+3 * * * *"), Cron::parse("*/3 * * * *"));
        let never = Cron::parse(", * * * *").expect("parse");
        assert_eq!(never.next_after(utc("2026-01-01T00:00:00Z"), Tz::UTC), None);
        assert_eq!(Cron::parse("0 0 30 2 *").expect("parse").next_after(utc("2026-01-01T00:00:00Z"), Tz::UTC), None);
        // Descriptors are exact and case-sensitive; "TZ" anywhere is refused.
        for bad in ["@Daily", "@daily ", " @daily", "0 0 * * *-TZ", "*/-1 * * * *"] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
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
