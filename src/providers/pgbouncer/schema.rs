//! The `pgbouncer` resource's schema and its pure judgements: attribute set
//! (SPEC §4), configuration checks, which changes wait for a restart, and
//! the mapping between attribute values and [`IniConfig`] — including how
//! the admin console's live values overlay the file when reading.
//!
//! Must not do I/O: everything here is decided from values, so `validate`
//! and `plan` work offline.

use super::client::{ConfigRow, DatabaseRow};
use super::config::{self, IniConfig};
use himaplan_engine::provider::{
    AttrSchema, AttrType, BlockNesting, BlockSchema, ChangeShape, ConfigProblem, DrainPlan, ResourceType, Schema, TypeDocs,
};
use himaplan_engine::value::{Value, ValueMap, format_number};
use std::collections::BTreeMap;

/// The resource type.
pub const PGBOUNCER_TYPE: &str = "pgbouncer";

/// Settings PgBouncer reads only at start-up: `RELOAD` leaves them as they
/// were, so they are written but neither verified nor read back live.
pub const RESTART_ONLY: [&str; 4] = ["listen_addr", "listen_port", "unix_socket_dir", "user"];

/// Whether a named attribute is a number or a string in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Number,
}

/// The `[pgbouncer]` settings that have their own attribute.
pub const NAMED: [(&str, Kind); 11] = [
    ("listen_addr", Kind::Text),
    ("listen_port", Kind::Number),
    ("auth_type", Kind::Text),
    ("auth_file", Kind::Text),
    ("admin_users", Kind::Text),
    ("pool_mode", Kind::Text),
    ("max_client_conn", Kind::Number),
    ("default_pool_size", Kind::Number),
    ("min_pool_size", Kind::Number),
    ("reserve_pool_size", Kind::Number),
    ("reserve_pool_timeout", Kind::Number),
];

/// The attributes of a `database "NAME"` block, with the `SHOW DATABASES`
/// column that reports each live.
pub const DATABASE_ATTRS: [(&str, Kind, &str); 6] = [
    ("host", Kind::Text, "host"),
    ("port", Kind::Number, "port"),
    ("dbname", Kind::Text, "database"),
    ("user", Kind::Text, "force_user"),
    ("pool_size", Kind::Number, "pool_size"),
    ("pool_mode", Kind::Text, "pool_mode"),
];

const POOL_MODES: [&str; 3] = ["session", "transaction", "statement"];

/// Seconds a drain's `PAUSE` may take by default.
pub const DEFAULT_PAUSE_TIMEOUT: i64 = 30;

/// The databases whose `host` or `port` come from drained members (unknown
/// in `marked`, see `Provider::drain_entries`): a drain `PAUSE`s them, so
/// clients wait instead of failing while the database restarts.
pub fn drain_entries(config: &Value, marked: &Value) -> Result<DrainPlan, String> {
    let (Some(now), Some(marked)) = (config.get("database").and_then(Value::as_map), marked.get("database").and_then(Value::as_map)) else {
        return Err("the database blocks as a whole are computed from them, so which databases are theirs cannot be told".into());
    };
    let entries = now
        .keys()
        .filter(|name| marked.get(*name).is_some_and(|m| ["host", "port"].iter().any(|a| m.get(a).is_some_and(Value::has_unknown))))
        .cloned()
        .collect();
    Ok(DrainPlan { entries, how: "PAUSE".into(), undo: "RESUME".into(), restore_after_failure: true })
}

/// The resource types of the `pgbouncer` provider.
pub fn resource_types() -> Vec<ResourceType> {
    let mut attributes = vec![
        AttrSchema::new("config_file", AttrType::String)
            .required()
            .describe("path of pgbouncer.ini; himaplan owns the whole file (written atomically, owner and mode kept)")
            .example("\"/etc/pgbouncer/pgbouncer.ini\""),
        AttrSchema::new("admin_url", AttrType::String)
            .required()
            .sensitive()
            .describe("postgres:// URL of the admin console (database \"pgbouncer\"); pass it as a sensitive variable")
            .example("var.pgbouncer_admin_url"),
    ];
    for (name, kind) in NAMED {
        let (description, example) = named_docs(name);
        attributes.push(AttrSchema::new(name, attr_type(kind)).describe(description).example(example));
    }
    attributes.push(
        AttrSchema::new("settings", AttrType::Map(Box::new(AttrType::String)))
            .default(Value::Map(ValueMap::new()))
            .describe("other [pgbouncer] settings, by name, written as given")
            .example("{ unix_socket_dir = \"/var/run/postgresql\" }"),
    );
    attributes.push(
        AttrSchema::new("pause_timeout", AttrType::Number)
            .default(DEFAULT_PAUSE_TIMEOUT)
            .describe("seconds a drain's PAUSE may wait for server connections before the drain fails (and RESUMEs)")
            .example("60"),
    );
    attributes.push(AttrSchema::new("id", AttrType::String).computed().describe("the config_file path"));
    let mut database_attrs: Vec<AttrSchema> = DATABASE_ATTRS
        .iter()
        .map(|(name, kind, _)| {
            let (description, example) = database_docs(name);
            AttrSchema::new(name, attr_type(*kind)).describe(description).example(example)
        })
        .collect();
    database_attrs
        .push(AttrSchema::new("paused", AttrType::Bool).default(false).describe("PAUSE in force (a drain sets it; refresh reports it)"));
    let database = Schema { attributes: database_attrs, blocks: vec![] };
    vec![ResourceType {
        name: PGBOUNCER_TYPE,
        schema_version: 0,
        schema: Schema {
            attributes,
            blocks: vec![BlockSchema {
                name: "database",
                nesting: BlockNesting::Labelled,
                body: database,
                description: "One entry of the `[databases]` section; the label is the database name clients connect to. \
A database whose `host` or `port` comes from a resource being disrupted is `PAUSE`d around it and `RESUME`d afterwards.",
            }],
        },
    }]
}

/// The reference text of `pgbouncer` (SPEC §4).
pub fn type_docs(rtype: &str) -> TypeDocs {
    if rtype != PGBOUNCER_TYPE {
        return TypeDocs::default();
    }
    TypeDocs {
        summary: "A running PgBouncer's whole `pgbouncer.ini`. Apply renders the file atomically (keeping its owner and mode), \
sends `RELOAD` on the admin console and checks that `SHOW CONFIG` / `SHOW DATABASES` report the declared values. Refresh \
reads the live values from the admin console, so a runtime `SET` is drift. `listen_addr`, `listen_port`, \
`unix_socket_dir` and `user` are written but take effect only on a restart: the plan shows them as `pending restart`.",
        example: r#"resource "pgbouncer" "main" {
  config_file       = "/etc/pgbouncer/pgbouncer.ini"
  admin_url         = var.pgbouncer_admin_url
  listen_addr       = "127.0.0.1"
  listen_port       = 6432
  auth_type         = "md5"
  auth_file         = "/etc/pgbouncer/userlist.txt"
  admin_users       = "admin"
  pool_mode         = "transaction"
  max_client_conn   = 1000
  default_pool_size = 25

  database "appdb" {
    host      = "127.0.0.1"
    port      = 5432
    dbname    = "appdb"
    user      = "app"
    pool_size = 30
  }
}"#,
    }
}

/// The description and example of a named `[pgbouncer]` setting.
fn named_docs(name: &str) -> (&'static str, &'static str) {
    match name {
        "listen_addr" => ("address PgBouncer listens on; applied only on restart (pending restart)", "\"127.0.0.1\""),
        "listen_port" => ("port PgBouncer listens on; applied only on restart (pending restart)", "6432"),
        "auth_type" => ("how clients authenticate: md5, scram-sha-256, trust, ...", "\"md5\""),
        "auth_file" => ("the userlist file", "\"/etc/pgbouncer/userlist.txt\""),
        "admin_users" => ("users allowed on the admin console, comma-separated", "\"admin\""),
        "pool_mode" => ("session, transaction or statement", "\"transaction\""),
        "max_client_conn" => ("most client connections", "1000"),
        "default_pool_size" => ("server connections per user/database pair", "25"),
        "min_pool_size" => ("server connections kept open per pool", "5"),
        "reserve_pool_size" => ("extra connections a pool may use after reserve_pool_timeout", "5"),
        "reserve_pool_timeout" => ("seconds a client waits before the reserve pool is used", "3"),
        _ => ("", "\"\""),
    }
}

/// The description and example of a `database` block attribute.
fn database_docs(name: &str) -> (&'static str, &'static str) {
    match name {
        "host" => ("the PostgreSQL host; usually another resource's address", "\"127.0.0.1\""),
        "port" => ("the PostgreSQL port", "5432"),
        "dbname" => ("the database's name on the server", "\"appdb\""),
        "user" => ("the user every server connection logs in as (force_user)", "\"app\""),
        "pool_size" => ("this database's pool size, instead of default_pool_size", "30"),
        "pool_mode" => ("this database's pool mode, instead of pool_mode", "\"session\""),
        _ => ("", "\"\""),
    }
}

/// The provider block: an admin URL for refreshes, since state keeps only a
/// hash of the resource's own (sensitive) `admin_url`.
pub fn provider_schema() -> Schema {
    Schema {
        attributes: vec![
            AttrSchema::new("admin_url", AttrType::String)
                .sensitive()
                .describe("admin console URL used to refresh; defaults to PGBOUNCER_ADMIN_URL")
                .example("var.pgbouncer_admin_url"),
        ],
        blocks: vec![],
    }
}

fn attr_type(kind: Kind) -> AttrType {
    match kind {
        Kind::Text => AttrType::String,
        Kind::Number => AttrType::Number,
    }
}

/// Checks a configuration beyond types. Unknown values are left alone.
pub fn validate(config: &Value) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut problem = |attr: &str, message: String| {
        problems.push(ConfigProblem { attribute: Some(attr.to_string()), message });
    };
    for attr in ["pool_mode"] {
        if let Some(mode) = config.get(attr).and_then(Value::as_str)
            && !POOL_MODES.contains(&mode)
        {
            problem(attr, format!("{attr} must be one of session, transaction, statement, not {mode:?}"));
        }
    }
    for (name, kind) in NAMED {
        if kind == Kind::Number
            && let Some(n) = config.get(name).and_then(Value::as_f64)
            && (n < 0.0 || (name != "reserve_pool_timeout" && n.fract() != 0.0))
        {
            problem(name, format!("{name} must be a non-negative whole number, not {}", format_number(n)));
        }
        if let Some(text) = config.get(name).and_then(Value::to_template_string)
            && !single_line(&text)
        {
            problem(name, format!("{name} must be a single line"));
        }
    }
    if let Some(port) = config.get("listen_port").and_then(Value::as_f64)
        && !(1.0..=65535.0).contains(&port)
    {
        problem("listen_port", format!("listen_port must be between 1 and 65535, not {}", format_number(port)));
    }
    if let Some(settings) = config.get("settings").and_then(Value::as_map) {
        for (key, value) in settings {
            if NAMED.iter().any(|(n, _)| n.eq_ignore_ascii_case(key)) {
                problem("settings", format!("settings.{key} has its own attribute; set {key} instead"));
            } else if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                problem("settings", format!("{key:?} is not a PgBouncer setting name"));
            }
            if let Some(text) = value.to_template_string()
                && !single_line(&text)
            {
                problem("settings", format!("settings.{key} must be a single line"));
            }
        }
    }
    if let Some(databases) = config.get("database").and_then(Value::as_map) {
        for (name, body) in databases {
            if name.is_empty() || name.contains(['=', '[', ']', '\n', ' ']) {
                problem("database", format!("{name:?} cannot be a PgBouncer database name"));
            }
            if let Some(mode) = body.get("pool_mode").and_then(Value::as_str)
                && !POOL_MODES.contains(&mode)
            {
                problem("database", format!("database {name:?}: pool_mode must be session, transaction or statement"));
            }
        }
    }
    problems
}

fn single_line(text: &str) -> bool {
    !text.contains(['\n', '\r'])
}

/// Notes for changes PgBouncer only applies on restart.
pub fn shape_change(prior: &Value, planned: &Value, changed: &[String]) -> ChangeShape {
    let mut shape = ChangeShape::default();
    let setting = |v: &Value, key: &str| -> Option<String> {
        v.get(key).or_else(|| v.get("settings").and_then(|s| s.get(key))).and_then(Value::to_template_string)
    };
    for key in RESTART_ONLY {
        let named = NAMED.iter().any(|(n, _)| *n == key);
        let touched = if named { changed.iter().any(|c| c == key) } else { changed.iter().any(|c| c == "settings") };
        if touched && setting(prior, key) != setting(planned, key) {
            shape.notes.push(format!("pending restart: {key} is written but PgBouncer applies it only on restart"));
        }
    }
    shape
}

/// The file a configuration renders to.
pub fn to_ini(attrs: &Value) -> Result<IniConfig, String> {
    let mut ini = IniConfig::default();
    for (name, _) in NAMED {
        if let Some(text) = text_of(attrs.get(name), name)? {
            ini.settings.insert(name.to_string(), text);
        }
    }
    if let Some(settings) = attrs.get("settings").and_then(Value::as_map) {
        for (key, value) in settings {
            if let Some(text) = text_of(Some(value), key)? {
                ini.settings.insert(key.to_ascii_lowercase(), text);
            }
        }
    }
    if let Some(databases) = attrs.get("database").and_then(Value::as_map) {
        for (name, body) in databases {
            let mut params = BTreeMap::new();
            for (attr, _, _) in DATABASE_ATTRS {
                if let Some(text) = text_of(body.get(attr), attr)? {
                    params.insert(attr.to_string(), text);
                }
            }
            ini.databases.insert(name.clone(), params);
        }
    }
    Ok(ini)
}

fn text_of(value: Option<&Value>, name: &str) -> Result<Option<String>, String> {
    match value.map(Value::unmarked) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(if *b { "1" } else { "0" }.to_string())),
        Some(v) => match v.to_template_string() {
            Some(text) if single_line(&text) => Ok(Some(text)),
            Some(_) => Err(format!("{name} must be a single line")),
            None => Err(format!("{name} must be a string or a number, not {}", v.type_name())),
        },
    }
}

/// The value to report for one key: the file's, unless the live value
/// differs from it (a runtime `SET`, a failed reload) — then the live one.
fn overlay(file: &str, live: Option<&str>) -> String {
    match live {
        Some(live) if config::normalise(live) != config::normalise(file) => live.to_string(),
        _ => file.to_string(),
    }
}

fn typed(kind: Kind, text: String) -> Value {
    match (kind, text.trim().parse::<f64>()) {
        (Kind::Number, Ok(n)) if n.is_finite() => Value::from(n),
        _ => Value::String(text),
    }
}

/// The resource's attributes as the file and the console report them.
/// Only keys the file declares are reported (a default PgBouncer applies
/// on its own is not drift); restart-only keys come from the file.
pub fn to_attrs(
    ini: &IniConfig,
    live: &BTreeMap<String, ConfigRow>,
    live_dbs: &BTreeMap<String, DatabaseRow>,
    config_file: &str,
    admin_url: Value,
) -> Value {
    let live_value = |key: &str| -> Option<&str> {
        if RESTART_ONLY.contains(&key) {
            return None;
        }
        live.get(key).filter(|row| row.changeable).map(|row| row.value.as_str())
    };
    let mut attrs = BTreeMap::new();
    attrs.insert("config_file".to_string(), Value::from(config_file));
    attrs.insert("id".to_string(), Value::from(config_file));
    attrs.insert("admin_url".to_string(), admin_url);
    for (name, kind) in NAMED {
        let value = match ini.settings.get(name) {
            Some(file) => typed(kind, overlay(file, live_value(name))),
            None => Value::Null,
        };
        attrs.insert(name.to_string(), value);
    }
    let settings = ini
        .settings
        .iter()
        .filter(|(k, _)| !NAMED.iter().any(|(n, _)| n == k))
        .map(|(k, file)| (k.clone(), Value::String(overlay(file, live_value(k)))))
        .collect();
    attrs.insert("settings".to_string(), Value::Map(settings));
    let mut databases = BTreeMap::new();
    for (name, params) in &ini.databases {
        let row = live_dbs.get(name);
        let mut body = BTreeMap::new();
        for (attr, kind, column) in DATABASE_ATTRS {
            let value = match params.get(attr) {
                Some(file) => {
                    let live = row.and_then(|r| r.get(column)).map(String::as_str).filter(|v| !v.is_empty());
                    typed(kind, overlay(file, live))
                }
                None => Value::Null,
            };
            body.insert(attr.to_string(), value);
        }
        body.insert("paused".to_string(), Value::Bool(row.is_some_and(is_paused)));
        databases.insert(name.clone(), Value::Map(body.into()));
    }
    attrs.insert("database".to_string(), Value::Map(databases.into()));
    Value::Map(attrs.into())
}

/// Whether `SHOW DATABASES` reports the database paused.
pub fn is_paused(row: &DatabaseRow) -> bool {
    row.get("paused").is_some_and(|p| p.trim() == "1")
}

/// Compares what the console reports after `RELOAD` with the rendered
/// file; returns the first mismatch as (what, wanted, live).
pub fn first_mismatch(
    ini: &IniConfig,
    live: &BTreeMap<String, ConfigRow>,
    live_dbs: &BTreeMap<String, DatabaseRow>,
) -> Option<(String, String, String)> {
    for (key, wanted) in &ini.settings {
        if RESTART_ONLY.contains(&key.as_str()) {
            continue;
        }
        match live.get(key) {
            None => return Some((key.clone(), wanted.clone(), "(no such setting)".into())),
            // Start-up-only settings PgBouncer itself marks as unchangeable.
            Some(row) if !row.changeable => {}
            Some(row) if config::normalise(&row.value) != config::normalise(wanted) => {
                return Some((key.clone(), wanted.clone(), row.value.clone()));
            }
            Some(_) => {}
        }
    }
    for (name, params) in &ini.databases {
        let Some(row) = live_dbs.get(name) else {
            return Some((format!("database {name}"), "present".into(), "(absent)".into()));
        };
        for (attr, _, column) in DATABASE_ATTRS {
            let (Some(wanted), Some(got)) = (params.get(attr), row.get(column)) else { continue };
            if config::normalise(wanted) != config::normalise(got) {
                return Some((format!("database {name} {attr}"), wanted.clone(), got.clone()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: &str) -> ConfigRow {
        ConfigRow { value: value.into(), changeable: true }
    }

    fn attrs() -> Value {
        Value::Map(ValueMap::from([
            ("default_pool_size".to_string(), Value::from(25_i64)),
            ("listen_port".to_string(), Value::from(6432_i64)),
            ("settings".to_string(), Value::Map(ValueMap::from([("logfile".to_string(), Value::from("/x.log"))]))),
            (
                "database".to_string(),
                Value::Map(ValueMap::from([(
                    "app".to_string(),
                    Value::Map(ValueMap::from([("pool_size".to_string(), Value::from(30_i64))])),
                )])),
            ),
        ]))
    }

    #[test]
    fn runtime_set_shows_through_but_restart_keys_come_from_the_file() {
        let ini = to_ini(&attrs()).expect("ini");
        let live = BTreeMap::from([
            ("default_pool_size".to_string(), row("7")),
            ("listen_port".to_string(), row("5555")),
            ("logfile".to_string(), row("/x.log")),
        ]);
        let dbs = BTreeMap::from([("app".to_string(), BTreeMap::from([("pool_size".to_string(), "30".to_string())]))]);
        let out = to_attrs(&ini, &live, &dbs, "/etc/p.ini", Value::Null);
        assert_eq!(out.get("default_pool_size"), Some(&Value::from(7_i64)));
        assert_eq!(out.get("listen_port"), Some(&Value::from(6432_i64)));
        assert_eq!(out.get("max_client_conn"), Some(&Value::Null));
        assert_eq!(first_mismatch(&ini, &live, &dbs).map(|m| m.0), Some("default_pool_size".to_string()));
    }

    #[test]
    fn restart_only_changes_get_a_pending_note() {
        let prior = attrs();
        let mut planned = prior.as_map().cloned().expect("map");
        planned.insert("listen_port".into(), Value::from(7000_i64));
        let shape = shape_change(&prior, &Value::Map(planned), &["listen_port".to_string()]);
        assert_eq!(shape.notes, vec!["pending restart: listen_port is written but PgBouncer applies it only on restart"]);
    }

    #[test]
    fn validate_names_the_attribute() {
        let config = Value::Map(ValueMap::from([
            ("pool_mode".to_string(), Value::from("sometimes")),
            ("settings".to_string(), Value::Map(ValueMap::from([("pool_mode".to_string(), Value::from("x"))]))),
        ]));
        let problems = validate(&config);
        let attrs: Vec<_> = problems.iter().filter_map(|p| p.attribute.as_deref()).collect();
        assert_eq!(attrs, vec!["pool_mode", "settings"]);
    }
}
