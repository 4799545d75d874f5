//! The next firing of a schedule, computed the way the CronJob controller
//! computes it: a line-by-line port of robfig/cron v3.0.1's
//! `SpecSchedule.Next` over Go's `time` semantics, so that firings at
//! daylight-saving changes agree with Kubernetes to the second:
//! - a wall-clock time that a change skips does not fire (the search adds
//!   whole hours and minutes to instants, and steps over it);
//! - a repeated wall-clock hour fires twice, once in each offset;
//! - when the search resets to a local midnight or hour that does not
//!   exist, Go's `time.Date` picks the instant [`GoTime::date`] describes,
//!   and robfig's "hour is no longer midnight" correction follows.
//!
//! Must stay a port: its loops, resets and wrap-arounds mirror `Next`
//! (including its five-year limit), checked against robfig/cron itself by
//! `tests/cron_differential.rs`. The liberties: two shortcuts that jump
//! over minutes or seconds at once where no UTC offset changes on the way
//! (what stepping one at a time would reach), and a budget of steps: where
//! robfig's `Next` loops forever (it does, at some daylight-saving changes
//! at midnight), this gives up and answers `None` instead of hanging `plan`.

use super::Cron;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// How many years ahead `Next` searches before giving up.
const YEAR_LIMIT: i32 = 5;
/// Loop iterations before giving up: a five-year search of a schedule that
/// never fires takes at most about 90,000 (a minute field of `,`: two per
/// hour).
const STEP_BUDGET: u32 = 200_000;

/// The first firing strictly after `after`, or `None` when there is none
/// within [`YEAR_LIMIT`] years (robfig's zero time).
pub(super) fn next(cron: &Cron, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
    // "Start at the earliest possible time (the upcoming second)."
    let mut t = GoTime::at(after.timestamp().checked_add(1)?, tz)?;
    let mut added = false;
    let mut budget = STEP_BUDGET;
    let year_limit = t.local.year() + YEAR_LIMIT;
    'wrap: loop {
        budget = budget.checked_sub(1)?;
        if t.local.year() > year_limit {
            return None;
        }
        while cron.months & (1 << t.local.month()) == 0 {
            budget = budget.checked_sub(1)?;
            if !added {
                added = true;
                t = GoTime::date(t.local.year(), t.local.month() as i64, 1, 0, tz)?;
            }
            t = t.add_date(1, 0, tz)?;
            if t.local.month() == 1 {
                continue 'wrap;
            }
        }
        while !cron.matches_day(t.local.date()) {
            budget = budget.checked_sub(1)?;
            if !added {
                added = true;
                t = GoTime::date(t.local.year(), t.local.month() as i64, t.local.day() as i64, 0, tz)?;
            }
            t = t.add_date(0, 1, tz)?;
            // robfig: "Notice if the hour is no longer midnight due to DST."
            let hour = t.local.hour() as i64;
            if hour != 0 {
                t = t.add(if hour > 12 { (24 - hour) * 3600 } else { -hour * 3600 }, tz)?;
            }
            if t.local.day() == 1 {
                continue 'wrap;
            }
        }
        while cron.hours & (1 << t.local.hour()) == 0 {
            budget = budget.checked_sub(1)?;
            if !added {
                added = true;
                t = GoTime::date(t.local.year(), t.local.month() as i64, t.local.day() as i64, t.local.hour() as i64, tz)?;
            }
            t = t.add(3600, tz)?;
            if t.local.hour() == 0 {
                continue 'wrap;
            }
        }
        while cron.minutes & (1 << t.local.minute()) == 0 {
            budget = budget.checked_sub(1)?;
            if !added {
                added = true;
                // Go's Truncate works on absolute time, not on the wall clock.
                t = GoTime::at(t.unix - t.unix.rem_euclid(60), tz)?;
            }
            let minute = t.local.minute() as i64;
            let target = (minute + 1..60).find(|m| cron.minutes & (1 << m) != 0).unwrap_or(60);
            let jump = t.add((target - minute) * 60, tz)?;
            if jump.offset == t.offset {
                // Stepping a minute at a time meets no earlier match and no
                // minute 0 before `target`.
                t = jump;
            } else {
                t = t.add(60, tz)?;
            }
            if t.local.minute() == 0 {
                continue 'wrap;
            }
        }
        // The standard parser's seconds field is always {0}.
        while t.local.second() != 0 {
            budget = budget.checked_sub(1)?;
            added = true;
            let jump = t.add(60 - t.local.second() as i64, tz)?;
            t = if jump.offset == t.offset { jump } else { t.add(1, tz)? };
            if t.local.second() == 0 {
                continue 'wrap;
            }
        }
        return DateTime::from_timestamp(t.unix, 0);
    }
}

/// A Go `time.Time` in the schedule's location, to the second: the instant,
/// the UTC offset in effect then, and the wall clock it shows.
#[derive(Debug, Clone, Copy)]
struct GoTime {
    unix: i64,
    offset: i64,
    local: NaiveDateTime,
}

impl GoTime {
    fn at(unix: i64, tz: Tz) -> Option<GoTime> {
        let offset = offset_at(unix, tz)?;
        let local = DateTime::from_timestamp(unix.checked_add(offset)?, 0)?.naive_utc();
        Some(GoTime { unix, offset, local })
    }

    /// Go's `t.Add(d)`.
    fn add(self, seconds: i64, tz: Tz) -> Option<GoTime> {
        GoTime::at(self.unix.checked_add(seconds)?, tz)
    }

    /// Go's `t.AddDate(0, months, days)`: the wall clock moved, then
    /// resolved again by [`GoTime::date`].
    fn add_date(self, months: i64, days: i64, tz: Tz) -> Option<GoTime> {
        let l = self.local;
        let seconds = l.num_seconds_from_midnight() as i64;
        GoTime::date_seconds(l.year(), l.month() as i64 + months, l.day() as i64 + days, seconds, tz)
    }

    /// Go's `time.Date(year, month, day, hour, 0, 0, 0, loc)`.
    fn date(year: i32, month: i64, day: i64, hour: i64, tz: Tz) -> Option<GoTime> {
        GoTime::date_seconds(year, month, day, hour * 3600, tz)
    }

    /// Go's `time.Date` with the time of day in seconds: out-of-range months
    /// and days roll over, and a wall clock that a change skips or repeats
    /// resolves as Go resolves it — take the offset in effect at the wall
    /// clock read as UTC, then the offset in effect at the instant that
    /// gives, and subtract that.
    fn date_seconds(year: i32, month: i64, day: i64, seconds: i64, tz: Tz) -> Option<GoTime> {
        let year = year.checked_add(i32::try_from((month - 1).div_euclid(12)).ok()?)?;
        let month = u32::try_from((month - 1).rem_euclid(12) + 1).ok()?;
        let first = NaiveDate::from_ymd_opt(year, month, 1)?.and_hms_opt(0, 0, 0)?;
        let wall = (first + Duration::days(day - 1) + Duration::seconds(seconds)).and_utc().timestamp();
        let guess = offset_at(wall, tz)?;
        GoTime::at(wall - offset_at(wall - guess, tz)?, tz)
    }
}

/// The UTC offset in seconds in effect at an instant.
fn offset_at(unix: i64, tz: Tz) -> Option<i64> {
    let utc = DateTime::from_timestamp(unix, 0)?.naive_utc();
    Some(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64)
}
