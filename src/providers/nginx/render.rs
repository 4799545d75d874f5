//! The include file's text: rendering one `upstream NAME { ... }` block and
//! parsing it back for refresh.
//!
//! Owns the text format only; must not do I/O. The parser understands what
//! [`render`] writes plus ordinary hand edits (comments, spacing), not
//! nginx's full grammar.

use super::schema::Server;
use std::fmt::Write;

/// What an include file declares about one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub name: String,
    /// The balancing directive, `round_robin` when there is none.
    pub method: String,
    pub servers: Vec<Server>,
}

/// Renders the include file for one upstream.
pub fn render(upstream: &Upstream) -> String {
    let mut out = String::from("# Written by himaplan (nginx_upstream); changes made here are overwritten.\n");
    let _ = writeln!(out, "upstream {} {{", upstream.name);
    if upstream.method != "round_robin" {
        let _ = writeln!(out, "    {};", upstream.method);
    }
    for s in &upstream.servers {
        let _ = write!(out, "    server {}", s.address);
        if let Some(w) = s.weight {
            let _ = write!(out, " weight={w}");
        }
        if let Some(m) = s.max_fails {
            let _ = write!(out, " max_fails={m}");
        }
        if let Some(t) = &s.fail_timeout {
            let _ = write!(out, " fail_timeout={t}");
        }
        if s.backup {
            out.push_str(" backup");
        }
        if s.down {
            out.push_str(" down");
        }
        out.push_str(";\n");
    }
    out.push_str("}\n");
    out
}

/// Finds `upstream NAME { ... }` in the file; `None` when it is not there.
pub fn parse(text: &str, name: &str) -> Option<Upstream> {
    // Comments run to the end of the line; directives end with ';'.
    let code: String = text.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut rest = code.as_str();
    loop {
        let at = rest.find("upstream")?;
        let after = &rest[at + "upstream".len()..];
        let found = after.trim_start().strip_prefix(name).map(str::trim_start).and_then(|w| w.strip_prefix('{'));
        match found {
            Some(body) if after.starts_with(char::is_whitespace) => {
                let end = body.find('}')?;
                return Some(parse_body(name, &body[..end]));
            }
            _ => rest = after,
        }
    }
}

fn parse_body(name: &str, body: &str) -> Upstream {
    let mut upstream = Upstream { name: name.to_string(), method: "round_robin".into(), servers: Vec::new() };
    for directive in body.split(';') {
        let mut words = directive.split_whitespace();
        match words.next() {
            Some("server") => {
                let Some(address) = words.next() else { continue };
                let mut s =
                    Server { address: address.to_string(), weight: None, max_fails: None, fail_timeout: None, backup: false, down: false };
                for word in words {
                    match word.split_once('=') {
                        Some(("weight", v)) => s.weight = v.parse().ok(),
                        Some(("max_fails", v)) => s.max_fails = v.parse().ok(),
                        Some(("fail_timeout", v)) => s.fail_timeout = Some(v.to_string()),
                        None if word == "backup" => s.backup = true,
                        None if word == "down" => s.down = true,
                        _ => {}
                    }
                }
                upstream.servers.push(s);
            }
            Some(method @ ("least_conn" | "ip_hash" | "random")) => upstream.method = method.to_string(),
            _ => {}
        }
    }
    upstream
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(address: &str) -> Server {
        Server { address: address.into(), weight: None, max_fails: Some(3), fail_timeout: Some("30s".into()), backup: false, down: false }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let mut b = server("127.0.0.1:8002");
        b.weight = Some(2);
        b.backup = true;
        b.down = true;
        let up = Upstream { name: "web".into(), method: "least_conn".into(), servers: vec![server("127.0.0.1:8001"), b] };
        let text = render(&up);
        assert!(text.contains("    server 127.0.0.1:8001 max_fails=3 fail_timeout=30s;\n"), "{text}");
        assert_eq!(parse(&text, "web"), Some(up));
        assert_eq!(parse(&text, "other"), None);
    }

    #[test]
    fn parse_finds_the_named_upstream_among_others() {
        let text = "upstream webx { server a:1; }\n# upstream web { server z:9; }\nupstream web {\n  server b:2;\n}\n";
        let up = parse(text, "web").expect("found");
        assert_eq!(up.servers.len(), 1);
        assert_eq!(up.servers[0].address, "b:2");
        assert_eq!(up.method, "round_robin");
    }
}
