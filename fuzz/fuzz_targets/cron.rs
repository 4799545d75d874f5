//! The CronJob schedule parser and its next-firing search (robfig/cron's
//! semantics, src/providers/kubernetes/schedule.rs, compiled in here
//! alone so the target does not link the cloud SDKs): any schedule parses
//! or is an error, and a parsed one answers `next_after` without panicking.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

#[path = "../../src/providers/kubernetes"]
#[allow(dead_code, reason = "only the parser and the search are fuzzed")]
mod kubernetes {
    pub mod schedule;
}

use kubernetes::schedule::{Cron, parse_time_zone};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // "SCHEDULE\nZONE\nSECONDS": the zone and instant are optional.
    let mut parts = text.splitn(3, '\n');
    let schedule = parts.next().unwrap_or_default();
    let tz = parts.next().and_then(|z| parse_time_zone(z).ok()).unwrap_or(chrono_tz::UTC);
    let secs = parts.next().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(1_700_000_000);
    let Ok(cron) = Cron::parse(schedule) else { return };
    let Some(at) = Utc.timestamp_opt(secs.clamp(0, 4_102_444_800), 0).single() else { return };
    if let Some(next) = cron.next_after(at, tz) {
        assert!(next > at, "{schedule:?}: next {next} is not after {at}");
    }
    let _ = cron.latest_at_or_before(at, tz);
});
