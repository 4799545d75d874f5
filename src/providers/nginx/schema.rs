//! The `nginx_upstream` resource's schema and its pure judgements: the
//! attribute set (SPEC §4), normalising `servers` (strings and objects
//! mixed) into [`Server`]s, and configuration checks.
//!
//! Must not do I/O or run nginx: `validate` and `plan` work offline.

use himaplan_engine::provider::{AttrSchema, AttrType, ConfigProblem, DrainPlan, ResourceType, Schema, TypeDocs};
use himaplan_engine::value::{Value, format_number};

/// The resource type.
pub const UPSTREAM_TYPE: &str = "nginx_upstream";

/// Balancing methods rendered as a bare directive; `round_robin` renders
/// none (nginx's default).
pub const METHODS: [&str; 4] = ["least_conn", "ip_hash", "random", "round_robin"];

/// One `server` line of the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub address: String,
    pub weight: Option<i64>,
    pub max_fails: Option<i64>,
    pub fail_timeout: Option<String>,
    pub backup: bool,
    /// nginx's `down` flag: out of rotation (how a drain takes it out).
    pub down: bool,
}

/// The reference text of `nginx_upstream` (SPEC §4).
pub fn type_docs(rtype: &str) -> TypeDocs {
    if rtype != UPSTREAM_TYPE {
        return TypeDocs::default();
    }
    TypeDocs {
        summary: "One nginx `upstream` block in an include file. Apply writes the file atomically, runs `nginx -t -c nginx_conf`: \
on failure it restores the previous file and fails with nginx's message; on success it reloads nginx and waits until the old \
worker processes are gone, so \"removed from the upstream\" really holds before anything that depends on it proceeds. \
A listing that drains: before a server it lists is disrupted, it is marked `down` (an upstream never becomes empty) and \
reloaded, and restored afterwards. See [draining](../draining.md).",
        example: r#"resource "nginx_upstream" "web" {
  config_file  = "/etc/nginx/conf.d/web_backend.upstream"
  name         = "web_backend"
  servers      = [for i in aws_instance.web : "${i.private_ip}:8000"]
  max_fails    = 3
  fail_timeout = "30s"
  nginx_conf   = "/etc/nginx/nginx.conf"
}"#,
    }
}

/// The resource types of the `nginx` provider.
pub fn resource_types() -> Vec<ResourceType> {
    vec![ResourceType {
        name: UPSTREAM_TYPE,
        schema_version: 0,
        schema: Schema {
            attributes: vec![
                AttrSchema::new("config_file", AttrType::String)
                    .required()
                    .describe("the include file holding this upstream; himaplan owns it (written atomically, owner and mode kept)")
                    .example("\"/etc/nginx/conf.d/web_backend.upstream\""),
                AttrSchema::new("name", AttrType::String).required().describe("the upstream's name, as proxy_pass refers to it").example("\"web_backend\""),
                AttrSchema::new("method", AttrType::String).default("least_conn").describe("least_conn, ip_hash, random or round_robin").example("\"ip_hash\""),
                AttrSchema::new("servers", AttrType::Any)
                    .required()
                    .describe("list of \"host:port\" strings or { address, weight, max_fails, fail_timeout, backup } objects, usually computed from other resources")
                    .example("[for i in aws_instance.web : \"${i.private_ip}:8000\"]"),
                AttrSchema::new("max_fails", AttrType::Number).describe("default max_fails of every server").example("3"),
                AttrSchema::new("fail_timeout", AttrType::String).describe("default fail_timeout of every server").example("\"30s\""),
                AttrSchema::new("nginx_conf", AttrType::String)
                    .required()
                    .describe("the main configuration the daemon runs (-c), checked with nginx -t before each reload")
                    .example("\"/etc/nginx/nginx.conf\""),
                AttrSchema::new("nginx_prefix", AttrType::String).describe("the daemon's prefix, passed as -p to every nginx command").example("\"/etc/nginx\""),
                AttrSchema::new("nginx_bin", AttrType::String).default("nginx").describe("the nginx binary").example("\"/usr/sbin/nginx\""),
                AttrSchema::new("id", AttrType::String).computed().describe("the config_file path"),
            ],
            blocks: vec![],
        },
    }]
}

/// The servers a configuration declares, each with the top-level defaults
/// filled in where it sets none.
pub fn servers(attrs: &Value) -> Result<Vec<Server>, String> {
    let items = match attrs.get("servers").map(Value::unmarked) {
        Some(Value::List(items)) => items,
        Some(Value::Null) | None => return Err("servers is required".into()),
        Some(other) => return Err(format!("servers must be a list, not {}", other.type_name())),
    };
    let default_fails = attrs.get("max_fails").and_then(Value::as_i64);
    let default_timeout = attrs.get("fail_timeout").and_then(Value::to_template_string);
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut server = match item.unmarked() {
            Value::String(address) => {
                Server { address: address.clone(), weight: None, max_fails: None, fail_timeout: None, backup: false, down: false }
            }
            Value::Map(map) => Server {
                address: map.get("address").and_then(Value::as_str).ok_or_else(|| format!("servers[{i}] has no address"))?.to_string(),
                weight: integer(map.get("weight"), i, "weight")?,
                max_fails: integer(map.get("max_fails"), i, "max_fails")?,
                fail_timeout: map.get("fail_timeout").and_then(Value::to_template_string),
                backup: map.get("backup").and_then(Value::as_bool).unwrap_or(false),
                down: map.get("down").and_then(Value::as_bool).unwrap_or(false),
            },
            other => return Err(format!("servers[{i}] must be \"host:port\" or an object, not {}", other.type_name())),
        };
        server.max_fails = server.max_fails.or(default_fails);
        server.fail_timeout = server.fail_timeout.or_else(|| default_timeout.clone());
        check_token(&server.address, i, "address")?;
        if let Some(t) = &server.fail_timeout {
            check_token(t, i, "fail_timeout")?;
        }
        out.push(server);
    }
    Ok(out)
}

fn integer(value: Option<&Value>, i: usize, name: &str) -> Result<Option<i64>, String> {
    match value.map(Value::unmarked) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or_else(|| format!("servers[{i}].{name} must be a non-negative whole number, not {v}")),
    }
}

/// Rejects what would break out of a directive (`;`, braces, spaces,
/// quotes, newlines). Whether nginx accepts the token is `nginx -t`'s call.
fn check_token(text: &str, i: usize, name: &str) -> Result<(), String> {
    if text.is_empty() || text.chars().any(|c| c.is_whitespace() || matches!(c, ';' | '{' | '}' | '"' | '\'' | '#')) {
        Err(format!("servers[{i}].{name} {text:?} is not a single nginx word"))
    } else {
        Ok(())
    }
}

/// True for `"30s"`, `"500ms"`, `"2m"`, `"10"` — nginx's time syntax.
pub fn is_duration(text: &str) -> bool {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && ["", "ms", "s", "m", "h", "d", "w", "M", "y"].contains(&unit)
}

/// The upstream's servers that come from drained members: those whose
/// entry is unknown in `marked` (see `Provider::drain_entries`). A drain
/// marks them `down`, so the upstream never changes shape and can never
/// become empty.
pub fn drain_entries(config: &Value, marked: &Value) -> Result<DrainPlan, String> {
    let (Some(now), Some(marked)) = (config.get("servers").and_then(Value::as_list), marked.get("servers").and_then(Value::as_list)) else {
        return Err("servers as a whole is computed from them, so which servers are theirs cannot be told; \
                    list one entry per member, e.g. [for i in aws_instance.web : \"${i.private_ip}:8000\"]"
            .into());
    };
    if now.len() != marked.len() {
        return Err("the number of servers depends on them; list one entry per member".into());
    }
    let servers = servers(config)?;
    let entries = servers.iter().zip(marked).filter(|(_, m)| m.has_unknown()).map(|(s, _)| s.address.clone()).collect();
    Ok(DrainPlan { entries, how: "marked down, reload".into(), undo: "back up, reload".into(), restore_after_failure: false })
}

/// Checks a configuration beyond types. Unknown values are left alone.
pub fn validate(config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut problem = |attr: &str, message: String| {
        problems.push(ConfigProblem { attribute: Some(attr.into()), message });
    };
    if let Some(name) = config.get("name").and_then(Value::as_str)
        && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        problem("name", format!("{name:?} is not a valid upstream name (letters, digits, _ - .)"));
    }
    if let Some(method) = config.get("method").and_then(Value::as_str)
        && !METHODS.contains(&method)
    {
        problem("method", format!("method must be one of {}, not {method:?}", METHODS.join(", ")));
    }
    if let Some(t) = config.get("fail_timeout").and_then(Value::as_str)
        && !is_duration(t)
    {
        problem("fail_timeout", format!("fail_timeout must be a duration like \"30s\", not {t:?}"));
    }
    if let Some(n) = config.get("max_fails").and_then(Value::as_f64)
        && (n < 0.0 || n.fract() != 0.0)
    {
        problem("max_fails", format!("max_fails must be a non-negative whole number, not {}", format_number(n)));
    }
    if config.get("servers").is_some_and(Value::has_unknown) {
        return problems;
    }
    match servers(config) {
        Err(e) => problem("servers", e),
        Ok(list) => {
            for (i, s) in list.iter().enumerate() {
                if !is_host_port(&s.address) {
                    problem("servers", format!("servers[{i}]: {:?} is not \"host:port\"", s.address));
                }
                if let Some(t) = s.fail_timeout.as_deref().filter(|t| !is_duration(t)) {
                    problem("servers", format!("servers[{i}]: fail_timeout must be a duration like \"30s\", not {t:?}"));
                }
            }
        }
    }
    problems
}

fn is_host_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use himaplan_engine::value::ValueMap;

    fn config(servers: Value) -> Value {
        Value::Map(ValueMap::from([
            ("name".to_string(), Value::from("web")),
            ("servers".to_string(), servers),
            ("max_fails".to_string(), Value::from(3_i64)),
            ("fail_timeout".to_string(), Value::from("30s")),
        ]))
    }

    #[test]
    fn strings_and_objects_mix_and_take_defaults() {
        let obj = Value::Map(ValueMap::from([
            ("address".to_string(), Value::from("10.0.0.2:80")),
            ("weight".to_string(), Value::from(5_i64)),
            ("backup".to_string(), Value::from(true)),
            ("fail_timeout".to_string(), Value::from("5s")),
        ]));
        let list = servers(&config(Value::List(vec![Value::from("10.0.0.1:80"), obj]))).expect("servers");
        assert_eq!(list[0].max_fails, Some(3));
        assert_eq!(list[0].fail_timeout.as_deref(), Some("30s"));
        assert_eq!(list[1].weight, Some(5));
        assert!(list[1].backup);
        assert_eq!(list[1].fail_timeout.as_deref(), Some("5s"));
    }

    #[test]
    fn validate_rejects_bad_items_and_durations() {
        let problems = validate(&config(Value::List(vec![Value::from("nohost"), Value::from(3_i64)])));
        assert_eq!(problems.len(), 1, "{problems:?}");
        let problems = validate(&config(Value::List(vec![Value::from("a:1"), Value::from("b:0")])));
        assert_eq!(problems.len(), 1, "{problems:?}");
        let mut bad = config(Value::List(vec![Value::from("a:1")])).as_map().cloned().expect("map");
        bad.insert("fail_timeout".into(), Value::from("abc"));
        assert_eq!(validate(&Value::Map(bad)).len(), 2);
        assert!(is_duration("500ms") && is_duration("30s") && !is_duration("abc") && !is_duration("s"));
    }
}
