//! The `pgbouncer.ini` file as data: parsing it, rendering it, and the
//! normalisation used to compare a declared value with what PgBouncer
//! reports (`on`/`1`, `5`/`5.0`).
//!
//! Owns the text format only. Must not do I/O or know the resource's
//! attribute names; `schema` maps attributes to and from [`IniConfig`].
//! The rendered file holds exactly the `[databases]` and `[pgbouncer]`
//! sections: the resource owns the whole file, so other sections and
//! comments are not carried over.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The order in which a database line's parameters are written.
pub const DATABASE_KEYS: [&str; 6] = ["host", "port", "dbname", "user", "pool_size", "pool_mode"];

/// The two sections himaplan manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IniConfig {
    /// `[pgbouncer]`: setting name (lower case) → value.
    pub settings: BTreeMap<String, String>,
    /// `[databases]`: database name → connection parameters.
    pub databases: BTreeMap<String, BTreeMap<String, String>>,
}

/// A line of the file that is not valid ini.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses the `[databases]` and `[pgbouncer]` sections; other sections are
/// skipped. Setting names are case-insensitive in PgBouncer and are
/// lower-cased; database names are kept as written.
pub fn parse(text: &str) -> Result<IniConfig, ParseError> {
    let mut config = IniConfig::default();
    let mut section = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name =
                name.strip_suffix(']').ok_or_else(|| ParseError { line: i + 1, message: "a section header must end with ']'".into() })?;
            section = name.trim().to_ascii_lowercase();
            continue;
        }
        let (key, value) =
            line.split_once('=').ok_or_else(|| ParseError { line: i + 1, message: format!("expected KEY = VALUE, found {line:?}") })?;
        let (key, value) = (key.trim(), value.trim());
        match section.as_str() {
            "pgbouncer" => {
                config.settings.insert(key.to_ascii_lowercase(), value.to_string());
            }
            "databases" => {
                config.databases.insert(key.to_string(), parse_connstr(value));
            }
            _ => {}
        }
    }
    Ok(config)
}

/// Splits a database line (`host=h port=5432 dbname='a b'`) into pairs.
pub fn parse_connstr(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            out.insert(key.to_ascii_lowercase(), String::new());
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\'' if chars.next_if_eq(&'\'').is_some() => value.push('\''),
                    '\'' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| !c.is_whitespace())));
        }
        out.insert(key.to_ascii_lowercase(), value);
    }
    out
}

/// Renders the file: a header saying who wrote it, `[databases]` with the
/// parameters in [`DATABASE_KEYS`] order, then `[pgbouncer]` sorted by name
/// (so the same configuration always renders the same bytes).
pub fn render(config: &IniConfig) -> String {
    let mut out = String::from("; Written by himaplan (pgbouncer resource); changes made here are overwritten.\n\n[databases]\n");
    for (name, params) in &config.databases {
        let mut line = String::new();
        let ordered = DATABASE_KEYS
            .iter()
            .filter_map(|k| params.get(*k).map(|v| (*k, v)))
            .chain(params.iter().filter(|(k, _)| !DATABASE_KEYS.contains(&k.as_str())).map(|(k, v)| (k.as_str(), v)));
        for (key, value) in ordered {
            if !line.is_empty() {
                line.push(' ');
            }
            let _ = write!(line, "{key}={}", quote_param(value));
        }
        let _ = writeln!(out, "{name} = {line}");
    }
    out.push_str("\n[pgbouncer]\n");
    for (key, value) in &config.settings {
        let _ = writeln!(out, "{key} = {value}");
    }
    out
}

fn quote_param(value: &str) -> String {
    if !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == '\'') {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// The form in which two values are compared: trimmed, lower-cased,
/// booleans as `1`/`0` and numbers without a trailing fraction — the way
/// `SHOW CONFIG` prints them.
pub fn normalise(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    match v.as_str() {
        "on" | "true" | "yes" => return "1".into(),
        "off" | "false" | "no" => return "0".into(),
        _ => {}
    }
    match v.parse::<f64>() {
        Ok(n) if n.is_finite() => himaplan_engine::value::format_number(n),
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let mut config = IniConfig::default();
        config.settings.insert("default_pool_size".into(), "25".into());
        config.settings.insert("listen_addr".into(), "127.0.0.1".into());
        config.databases.insert(
            "appdb".into(),
            BTreeMap::from([("host".into(), "127.0.0.1".into()), ("dbname".into(), "app db".into()), ("pool_size".into(), "30".into())]),
        );
        let text = render(&config);
        assert!(text.contains("appdb = host=127.0.0.1 dbname='app db' pool_size=30\n"), "{text}");
        assert_eq!(parse(&text).expect("parse"), config);
    }

    #[test]
    fn parse_skips_comments_and_other_sections_and_reports_bad_lines() {
        let text = "; c\n[users]\nbob = pool_mode=session\n[PgBouncer]\nPool_Mode = transaction\n";
        let config = parse(text).expect("parse");
        assert_eq!(config.settings.get("pool_mode").map(String::as_str), Some("transaction"));
        assert!(config.databases.is_empty());
        assert_eq!(parse("[pgbouncer]\nnonsense\n").unwrap_err().line, 2);
    }

    #[test]
    fn normalise_matches_show_config_forms() {
        assert_eq!(normalise("on"), normalise("1"));
        assert_eq!(normalise("5.0"), normalise("5"));
        assert_eq!(normalise(" MD5 "), "md5");
    }
}
