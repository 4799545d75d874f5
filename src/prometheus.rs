//! The Prometheus HTTP API client of `himaplan advise`: range queries
//! (`POST /api/v1/query_range`) decoded into [`Series`]. It is the only
//! code that talks to Prometheus; it holds no credentials of its own
//! (basic auth in the URL is sent as given, never printed).
//!
//! Plain `http://` only: this build links no TLS stack for Prometheus.
//! Reach an `https://` Prometheus through a local proxy or port-forward.
//! Every answer is bounded (size and time), so a misbehaving server cannot
//! make advise hang or exhaust memory.

use himaplan_engine::advise::{MetricSource, Series};
use std::time::Duration;

/// The largest response body read (a 10,001-point series is ~300 KB).
const MAX_BODY: u64 = 32 * 1024 * 1024;
/// How long one query may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A Prometheus server at `base` (e.g. `http://127.0.0.1:9090`).
pub struct Prometheus {
    base: String,
    shown: String,
    agent: ureq::Agent,
}

impl Prometheus {
    /// Checks the URL (scheme `http`, a host) and builds the client.
    pub fn new(url: &str) -> Result<Prometheus, String> {
        let shown = redact(url);
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "{shown}: https is not supported for Prometheus in this build; use http:// (e.g. through a local port-forward)"
                ));
            }
            _ => return Err(format!("{shown} is not an http:// URL")),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.rsplit('@').next().unwrap_or_default().is_empty() {
            return Err(format!("{shown} has no host"));
        }
        let agent = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build().into();
        Ok(Prometheus { base: url.trim_end_matches('/').to_string(), shown, agent })
    }

    fn query_range(&self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> Result<Vec<Series>, String> {
        let seconds = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
        let url = format!("{}/api/v1/query_range", self.base);
        let form = [("query", query.to_string()), ("start", seconds(start_ms)), ("end", seconds(end_ms)), ("step", seconds(step_ms))];
        let mut response = self
            .agent
            .post(&url)
            .send_form(form.iter().map(|(k, v)| (*k, v.as_str())))
            .map_err(|e| format!("Prometheus at {} is unreachable: {e}", self.shown))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| format!("reading Prometheus' answer from {} failed: {e}", self.shown))?;
        decode(status, &body)
    }
}

#[async_trait::async_trait]
impl MetricSource for Prometheus {
    async fn range_query(&self, query: &str, start_ms: i64, end_ms: i64, step_ms: i64) -> Result<Vec<Series>, String> {
        // ureq blocks: each query runs on the blocking pool, so the
        // queries of one advise run go out together.
        let this = Prometheus { base: self.base.clone(), shown: self.shown.clone(), agent: self.agent.clone() };
        let query = query.to_string();
        tokio::task::spawn_blocking(move || this.query_range(&query, start_ms, end_ms, step_ms))
            .await
            .map_err(|e| format!("the query task failed: {e}"))?
    }
}

/// Decodes an answer of `/api/v1/query_range`.
fn decode(status: u16, body: &str) -> Result<Vec<Series>, String> {
    let doc: serde_json::Value = serde_json::from_str(body).map_err(|_| {
        let start: String = body.chars().take(200).collect();
        format!("Prometheus answered HTTP {status} with something that is not its JSON API: {start:?}")
    })?;
    if doc["status"] != "success" {
        let kind = doc["errorType"].as_str().unwrap_or("error");
        let message = doc["error"].as_str().unwrap_or("no message");
        return Err(format!("Prometheus refused the query (HTTP {status}, {kind}): {message}"));
    }
    let data = &doc["data"];
    if data["resultType"] != "matrix" {
        return Err(format!("Prometheus returned a {} result, not a range (matrix)", data["resultType"]));
    }
    let mut out = Vec::new();
    for item in data["result"].as_array().into_iter().flatten() {
        let labels = item["metric"]
            .as_object()
            .map(|m| {
                let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}={}", v)).collect();
                format!("{{{}}}", pairs.join(", "))
            })
            .unwrap_or_else(|| "{}".into());
        let mut points = Vec::new();
        for pair in item["values"].as_array().into_iter().flatten() {
            let (Some(t), Some(v)) = (pair[0].as_f64(), pair[1].as_str()) else {
                return Err(format!("Prometheus returned a malformed point {pair}"));
            };
            let value = match v {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().map_err(|_| format!("Prometheus returned a value that is not a number: {other:?}"))?,
            };
            points.push(((t * 1000.0).round() as i64, value));
        }
        out.push(Series { labels, points });
    }
    Ok(out)
}

/// The URL without a password, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if !userinfo.contains('/') => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_matrix_and_its_special_values() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"service":"web"},"values":[[1764546900,"0.81"],[1764546960.480,"NaN"],[1764547020.960,"+Inf"]]}]}}"#;
        let series = decode(200, body).unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels, r#"{service="web"}"#);
        assert_eq!(series[0].points[0], (1_764_546_900_000, 0.81));
        assert_eq!(series[0].points[1].0, 1_764_546_960_480);
        assert!(series[0].points[1].1.is_nan());
        assert_eq!(series[0].points[2].1, f64::INFINITY);
    }

    #[test]
    fn query_errors_carry_prometheus_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"1:10: parse error: unexpected end of input"}"#;
        let e = decode(400, body).unwrap_err();
        assert!(e.contains("bad_data") && e.contains("unexpected end of input"), "{e}");
        assert!(decode(502, "<html>bad gateway</html>").unwrap_err().contains("HTTP 502"));
    }

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let refused = |url: &str| Prometheus::new(url).err().unwrap_or_default();
        assert!(refused("https://prom.example:9090").contains("https is not supported"));
        assert!(refused("ftp://x").contains("not an http:// URL"));
        assert!(refused("http://").contains("has no host"));
        assert_eq!(redact("http://ops:hunter2@127.0.0.1:9090"), "http://ops:***@127.0.0.1:9090");
        assert!(Prometheus::new("http://127.0.0.1:9090/").is_ok());
    }
}
