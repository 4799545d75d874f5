//! Desired values that depend on other Kubernetes resources of the same
//! configuration (the provider's `adjust_desired`), decided offline:
//! - **HPA ownership**: while a `kubernetes_hpa` targets a deployment, the
//!   deployment's `replicas` are desired as they are (no diff, no drift) and
//!   `replicas_managed_by` names the HPA, so apply hands the field over and
//!   leaves it out.
//! - **Schedule mode**: a `kubernetes_scale_schedule` whose target has an HPA
//!   patches the HPA's `minReplicas` (`scales_via_hpa` = the HPA's name).
//! - **Schedule-aware values**: the field a schedule drives (the
//!   deployment's `replicas`, or with an HPA its `min_replicas`) is desired
//!   at the `replicas` of the schedule that fired last at or before `at`.
//! - **Next firings**: each schedule notes its next firing after `at`, as
//!   the CronJob controller will run it (at a daylight-saving change that is
//!   the instant robfig/cron picks, shown with the zone's abbreviation so a
//!   repeated hour reads unambiguously).
//! - **Conflicts**: two schedules firing at the same instant on one target,
//!   or two HPAs on one deployment, are configuration problems.
//!
//! Must not talk to the cluster; decides from configuration, state and `at`.

use super::schedule::{Cron, first_common_firing, parse_time_zone};
use super::schema::{DEPLOYMENT_TYPE, HPA_TYPE, REPLICAS_MANAGED_BY, SCALES_VIA_HPA, SCHEDULE_TYPE};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;
use himaplan_engine::provider::{ConfigProblem, DesiredItem};
use himaplan_engine::value::Value;
use std::collections::BTreeMap;

/// The attributes `adjust` may change (what `apply` must see as planned).
pub const ADJUSTED_ATTRS: &[&str] = &["replicas", "min_replicas", REPLICAS_MANAGED_BY, SCALES_VIA_HPA];

type Target = (String, String);

struct Schedule {
    index: usize,
    cron: Cron,
    tz: Tz,
    replicas: Value,
}

fn text(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).map(str::to_string)
}

/// `(namespace, NAME)` where NAME is the attribute `name_attr` of `config`.
fn key(config: &Value, name_attr: &str) -> Option<Target> {
    Some((text(config, "namespace").unwrap_or_else(|| "default".into()), text(config, name_attr)?))
}

fn set(config: &mut Value, name: &str, value: Value) {
    if let Value::Map(map) = config {
        map.insert(name.to_string(), value);
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Adjusts every instance of the provider's types; see the module docs.
pub fn adjust(at: DateTime<Utc>, items: &mut [DesiredItem]) -> Vec<(usize, ConfigProblem)> {
    let mut problems = Vec::new();
    let mut deployments: BTreeMap<Target, usize> = BTreeMap::new();
    let mut hpas: BTreeMap<Target, usize> = BTreeMap::new();
    let mut schedules: BTreeMap<Target, Vec<Schedule>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        match item.rtype.as_str() {
            DEPLOYMENT_TYPE => {
                if let Some(k) = key(&item.config, "name") {
                    deployments.insert(k, i);
                }
            }
            HPA_TYPE => {
                let Some(k) = key(&item.config, "target") else { continue };
                if let Some(&other) = hpas.get(&k) {
                    problems.push((
                        i,
                        ConfigProblem {
                            attribute: Some("target".into()),
                            message: format!("deployment {:?} is already scaled by {}; one HPA per deployment", k.1, items[other].addr),
                        },
                    ));
                } else {
                    hpas.insert(k, i);
                }
            }
            SCHEDULE_TYPE => {
                let Some(k) = key(&item.config, "target") else { continue };
                // Invalid expressions are reported by validate; skip them here.
                let Some(Ok(cron)) = text(&item.config, "schedule").map(|s| Cron::parse(&s)) else { continue };
                let Ok(tz) = parse_time_zone(&text(&item.config, "time_zone").unwrap_or_else(|| "UTC".into())) else { continue };
                let replicas = item.config.get("replicas").cloned().unwrap_or(Value::Null);
                schedules.entry(k).or_default().push(Schedule { index: i, cron, tz, replicas });
            }
            _ => {}
        }
    }

    // HPA ownership of the deployments' replica counts.
    for (k, &d) in &deployments {
        let owner = hpas.get(k).map(|&h| items[h].addr.to_string());
        let item = &mut items[d];
        match owner {
            Some(owner) => {
                if let Some(prior) = &item.prior {
                    let current = prior.get("replicas").cloned().unwrap_or(Value::Null);
                    set(&mut item.config, "replicas", current);
                }
                set(&mut item.config, REPLICAS_MANAGED_BY, Value::from(owner.as_str()));
                // A create sends the declared count once, as the starting
                // point the HPA scales from; the note must not deny the
                // `+ replicas = N` line below it.
                let start = item.prior.is_none().then(|| item.config.get("replicas").and_then(Value::as_i64)).flatten();
                item.notes.push(match start {
                    Some(n) => format!(
                        "replicas start at {n}, then belong to {owner} (HPA); after the create himaplan neither sets nor reports them"
                    ),
                    None => format!("replicas belong to {owner} (HPA); himaplan neither sets nor reports them"),
                });
            }
            None => set(&mut item.config, REPLICAS_MANAGED_BY, Value::from("")),
        }
    }

    for (k, group) in &schedules {
        let hpa = hpas.get(k).copied();
        let hpa_name = hpa.and_then(|h| text(&items[h].config, "name")).unwrap_or_default();
        for s in group {
            set(&mut items[s.index].config, SCALES_VIA_HPA, Value::from(hpa_name.as_str()));
            items[s.index].notes.push(next_firing_note(s, at));
        }
        // Two schedules firing together would race; refuse them.
        let from = at - Duration::days(super::schedule::LOOKBACK_DAYS);
        for (n, b) in group.iter().enumerate() {
            for a in &group[..n] {
                if let Some(t) = first_common_firing((&a.cron, a.tz), (&b.cron, b.tz), from) {
                    problems.push((
                        b.index,
                        ConfigProblem {
                            attribute: Some("schedule".into()),
                            message: format!(
                                "fires at the same instant as {} ({}) on target {:?}; the two would race, so move one of them",
                                items[a.index].addr,
                                stamp(t),
                                k.1
                            ),
                        },
                    ));
                }
            }
        }
        // The schedule that fired last at or before `at` decides.
        let latest = group.iter().filter_map(|s| s.cron.latest_at_or_before(at, s.tz).map(|t| (t, s))).max_by_key(|(t, _)| *t);
        let (field, driven) = match (hpa, deployments.get(k)) {
            (Some(h), _) => ("min_replicas", h),
            (None, Some(&d)) => ("replicas", d),
            (None, None) => continue,
        };
        match latest {
            Some((t, s)) if !s.replicas.is_null() => {
                let who = items[s.index].addr.to_string();
                let value = s.replicas.clone();
                let shown = value.to_template_string().unwrap_or_default();
                let item = &mut items[driven];
                set(&mut item.config, field, value);
                item.notes.push(format!("{field} = {shown} from {who}, which last fired at {} (as of {})", stamp(t), stamp(at)));
            }
            _ => items[driven].notes.push(format!(
                "no kubernetes_scale_schedule fired in the {} days before {}: {field} is the declared value",
                super::schedule::LOOKBACK_DAYS,
                stamp(at)
            )),
        }
    }
    problems
}

/// "next firing after AT: UTC = LOCAL ABBR (ZONE)", or that there is none.
fn next_firing_note(s: &Schedule, at: DateTime<Utc>) -> String {
    match s.cron.next_after(at, s.tz) {
        Some(t) => format!(
            "next firing after {}: {} = {} ({})",
            stamp(at),
            stamp(t),
            t.with_timezone(&s.tz).format("%Y-%m-%d %H:%M %Z"),
            s.tz.name()
        ),
        None => format!("no firing within five years after {}: the CronJob would never run", stamp(at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use himaplan_engine::addr::InstanceAddr;

    fn item(addr: &str, pairs: &[(&str, Value)], prior: Option<Value>) -> DesiredItem {
        let addr: InstanceAddr = addr.parse().expect("address");
        DesiredItem {
            rtype: addr.resource.rtype.clone(),
            addr,
            config: Value::Map(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()),
            prior,
            notes: vec![],
            saved: None,
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
    }

    fn schedules() -> Vec<DesiredItem> {
        vec![
            item("kubernetes_deployment.web", &[("name", "web".into()), ("replicas", 4i64.into())], None),
            item(
                "kubernetes_scale_schedule.down",
                &[("target", "web".into()), ("schedule", "0 18 * * 1-5".into()), ("time_zone", "UTC".into()), ("replicas", 2i64.into())],
                None,
            ),
            item(
                "kubernetes_scale_schedule.up",
                &[("target", "web".into()), ("schedule", "0 7 * * *".into()), ("time_zone", "UTC".into()), ("replicas", 6i64.into())],
                None,
            ),
        ]
    }

    #[test]
    fn the_latest_firing_decides_the_replicas() {
        let mut items = schedules();
        assert!(adjust(utc("2026-12-01T17:59:00Z"), &mut items).is_empty());
        assert_eq!(items[0].config.get("replicas"), Some(&Value::from(6i64)));
        assert!(items[0].notes[0].contains("kubernetes_scale_schedule.up"), "{:?}", items[0].notes);
        let mut items = schedules();
        adjust(utc("2026-12-01T18:30:00Z"), &mut items);
        assert_eq!(items[0].config.get("replicas"), Some(&Value::from(2i64)));
        assert_eq!(items[1].config.get(SCALES_VIA_HPA), Some(&Value::from("")));
    }

    #[test]
    fn an_hpa_owns_replicas_and_schedules_drive_its_minimum() {
        let mut items = schedules();
        items.push(item(
            "kubernetes_hpa.web",
            &[("name", "web-hpa".into()), ("target", "web".into()), ("min_replicas", 2i64.into())],
            None,
        ));
        items[0].prior = Some(Value::Map([("replicas".to_string(), Value::from(9i64))].into()));
        adjust(utc("2026-12-01T08:00:00Z"), &mut items);
        assert_eq!(items[0].config.get("replicas"), Some(&Value::from(9i64)));
        assert_eq!(items[0].config.get(REPLICAS_MANAGED_BY), Some(&Value::from("kubernetes_hpa.web")));
        assert_eq!(items[3].config.get("min_replicas"), Some(&Value::from(6i64)));
        assert_eq!(items[1].config.get(SCALES_VIA_HPA), Some(&Value::from("web-hpa")));
    }

    #[test]
    fn a_create_under_an_hpa_says_the_declared_replicas_are_only_the_start() {
        // The plan of a create once said "himaplan neither sets nor reports
        // them" right above `+ replicas = 4`, which the create does send.
        let hpa = || item("kubernetes_hpa.web", &[("name", "web".into()), ("target", "web".into())], None);
        let mut items = vec![item("kubernetes_deployment.web", &[("name", "web".into()), ("replicas", 4i64.into())], None), hpa()];
        adjust(utc("2026-12-01T08:00:00Z"), &mut items);
        assert_eq!(
            items[0].notes,
            ["replicas start at 4, then belong to kubernetes_hpa.web (HPA); after the create himaplan neither sets nor reports them"]
        );
        let mut items = vec![item("kubernetes_deployment.web", &[("name", "web".into()), ("replicas", 4i64.into())], None), hpa()];
        items[0].prior = Some(Value::Map([("replicas".to_string(), Value::from(9i64))].into()));
        adjust(utc("2026-12-01T08:00:00Z"), &mut items);
        assert_eq!(items[0].notes, ["replicas belong to kubernetes_hpa.web (HPA); himaplan neither sets nor reports them"]);
    }

    #[test]
    fn each_schedule_notes_its_next_firing_as_robfig_runs_it() {
        let mut items = schedules();
        adjust(utc("2026-12-01T18:30:00Z"), &mut items);
        assert_eq!(items[1].notes, ["next firing after 2026-12-01T18:30:00Z: 2026-12-02T18:00:00Z = 2026-12-02 18:00 UTC (UTC)"]);
        assert_eq!(items[2].notes, ["next firing after 2026-12-01T18:30:00Z: 2026-12-02T07:00:00Z = 2026-12-02 07:00 UTC (UTC)"]);
        // New York repeats 01:00-02:00 on 2026-11-01: after the first 01:30
        // (EDT) robfig/cron fires again at the second (EST).
        let mut items = schedules();
        set(&mut items[1].config, "schedule", Value::from("30 1 * * *"));
        set(&mut items[1].config, "time_zone", Value::from("America/New_York"));
        adjust(utc("2026-11-01T05:45:00Z"), &mut items);
        assert_eq!(
            items[1].notes,
            ["next firing after 2026-11-01T05:45:00Z: 2026-11-01T06:30:00Z = 2026-11-01 01:30 EST (America/New_York)"]
        );
    }

    #[test]
    fn schedules_firing_together_are_a_problem() {
        let mut items = schedules();
        items.push(item(
            "kubernetes_scale_schedule.also",
            &[("target", "web".into()), ("schedule", "0 18 * * *".into()), ("time_zone", "UTC".into()), ("replicas", 3i64.into())],
            None,
        ));
        let problems = adjust(utc("2026-12-01T08:00:00Z"), &mut items);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, 3);
        assert!(problems[0].1.message.contains("kubernetes_scale_schedule.down"), "{problems:?}");
    }
}
