//! A seeded generator of messy but valid HCL files for the differential
//! formatting test: attribute runs of uneven name lengths, blank-line runs,
//! comments of every style (with trailing spaces), nested and one-line
//! blocks, object and tuple literals on one line and on many, function
//! calls with object arguments, heredocs, templates with directives and
//! strip markers, conditional and `for` expressions, unary minus and `!`,
//! splats and indexes — each with random spacing, tabs, wrong indentation
//! and trailing whitespace where HCL allows them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One generated file, seeded so a failure can be reproduced by its seed.
pub fn file(seed: u64) -> String {
    let mut g = Gen { rng: StdRng::seed_from_u64(seed), out: String::new(), bodies: vec![Vec::new()] };
    g.blank_lines();
    let items = g.rng.random_range(1..=6);
    for _ in 0..items {
        g.top_item();
        g.blank_lines();
    }
    let crlf = g.chance(0.05);
    let mut text = g.out;
    // A file may end without a newline (not after a heredoc, whose
    // closing marker needs one).
    if g.rng.random_bool(0.1) && !text.contains("<<") {
        text.truncate(text.trim_end_matches('\n').len());
    }
    if crlf { text.replace('\n', "\r\n") } else { text }
}

struct Gen {
    rng: StdRng,
    out: String,
    /// Attribute names used in each open body: HCL refuses a repeated one.
    bodies: Vec<Vec<String>>,
}

const NAMES: &[&str] =
    &["a", "id", "ami", "name", "count", "tags", "instance_type", "bb", "description", "x", "long_attribute_name", "ü_name"];
const FUNCS: &[&str] =
    &["keys", "merge", "concat", "lookup", "join", "format", "length", "coalesce", "tolist", "jsonencode", "upper", "max"];
const REFS: &[&str] =
    &["var.x", "var.list", "local.a.b", "aws_instance.web[0].id", "each.value", "count.index", "module.m.out", "list.0", "self"];
const WORDS: &[&str] = &["hello", "a b", "", "café ☕", "with \\\"quote\\\"", "tab\\tsep", "esc $${x}", "pct %%{y}", "50%", "$HOME"];

impl Gen {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.rng.random_range(0..xs.len())]
    }

    /// Optional whitespace.
    fn sp0(&mut self) -> &'static str {
        ["", " ", " ", " ", "  ", "\t"][self.rng.random_range(0..6)]
    }

    /// Required whitespace.
    fn sp1(&mut self) -> &'static str {
        [" ", " ", " ", "  ", "\t", "   "][self.rng.random_range(0..6)]
    }

    /// A line break and the next line's indentation, often wrong.
    fn nl(&mut self, level: usize) -> String {
        let mut s = String::new();
        if self.chance(0.1) {
            s.push_str(self.pick(&[" ", "  ", "\t"]));
        }
        s.push('\n');
        s.push_str(&self.indent(level));
        s
    }

    fn indent(&mut self, level: usize) -> String {
        if self.chance(0.25) {
            return [" ", "   ", "    ", "\t", "      ", ""][self.rng.random_range(0..6)].to_string();
        }
        "  ".repeat(level)
    }

    fn line(&mut self, level: usize, text: &str) {
        let indent = self.indent(level);
        // A heredoc's closing marker must be alone on its line.
        let trailing = if self.chance(0.12) && !text.contains("<<") { self.pick(&[" ", "   ", "\t"]) } else { "" };
        self.out.push_str(&format!("{indent}{text}{trailing}\n"));
    }

    fn blank_lines(&mut self) {
        let n = [0, 0, 1, 1, 1, 2, 3][self.rng.random_range(0..7)];
        for _ in 0..n {
            let ws = if self.chance(0.2) { "  " } else { "" };
            self.out.push_str(ws);
            self.out.push('\n');
        }
    }

    fn comment(&mut self) -> String {
        let trailing = if self.chance(0.3) { self.pick(&["  ", "   ", "\t"]) } else { "" };
        match self.rng.random_range(0..4) {
            0 => format!("# a comment{trailing}"),
            1 => format!("// another one{trailing}"),
            2 => format!("/* inline */{trailing}"),
            _ => format!("#{}{trailing}", self.pick(&["", "#", " TODO: tidy", "  spaced"])),
        }
    }

    fn top_item(&mut self) {
        match self.rng.random_range(0..10) {
            0..=2 => self.attribute_run(0, 3),
            3 => {
                let c = self.comment();
                self.line(0, &c);
            }
            4 => self.line(0, "/* a block comment\n     that spans lines   \n*/"),
            5 => self.variable(),
            _ => self.block(0, 3),
        }
    }

    fn attribute_run(&mut self, level: usize, depth: u32) {
        let n = self.rng.random_range(1..=5);
        for _ in 0..n {
            self.attribute(level, depth);
            if self.chance(0.1) {
                let c = self.comment();
                self.line(level, &c);
            }
        }
    }

    fn attribute(&mut self, level: usize, depth: u32) {
        let mut name = self.pick(NAMES).to_string();
        let used = self.bodies.last().cloned().unwrap_or_default();
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{}{n}", name.trim_end_matches(|c: char| c.is_ascii_digit()));
            n += 1;
        }
        if let Some(body) = self.bodies.last_mut() {
            body.push(name.clone());
        }
        let (s1, s2) = (self.sp0(), self.sp0());
        let value = self.value(depth, level);
        let comment = if self.chance(0.2) && !value.contains("<<") { format!("{}{}", self.sp1(), self.comment()) } else { String::new() };
        self.line(level, &format!("{name}{s1}={s2}{value}{comment}"));
    }

    fn variable(&mut self) {
        let s = self.sp1();
        let n = self.rng.random_range(0..9);
        self.line(0, &format!("variable{s}\"v{n}\" {{"));
        let ty = self.pick(&[
            "string",
            "\"string\"",
            "list",
            "\"list\"",
            "map",
            "\"map\"",
            "set",
            "list(string)",
            "object({ a = string, b=number })",
            "number",
        ]);
        self.line(1, &format!("type = {ty}"));
        if self.chance(0.5) {
            let v = self.term(1, 1);
            let s = self.sp0();
            self.line(1, &format!("default{s}= {v}"));
        }
        self.line(0, "}");
    }

    fn block(&mut self, level: usize, depth: u32) {
        let header = match self.rng.random_range(0..8) {
            0 => format!("resource{}\"aws_instance\"{}\"web\"{}", self.sp1(), self.sp1(), self.sp0()),
            1 => "resource aws_instance web ".to_string(),
            2 => "locals ".to_string(),
            3 => format!("module \"m{}\" ", self.rng.random_range(0..5)),
            4 => "lifecycle ".to_string(),
            5 => "dynamic \"ingress\" ".to_string(),
            6 => format!("data{}\"x\" \"y\"{}", self.sp1(), self.sp0()),
            _ => "provisioner \"local-exec\" ".to_string(),
        };
        if self.chance(0.15) || depth == 0 {
            let inner = if self.chance(0.3) {
                String::new()
            } else {
                format!("{}{} = {}{}", self.sp1(), self.pick(NAMES), self.term(0, level), self.sp1())
            };
            self.line(level, &format!("{header}{{{inner}}}"));
            return;
        }
        self.line(level, &format!("{header}{{"));
        self.bodies.push(Vec::new());
        self.blank_lines();
        let items = self.rng.random_range(0..=4);
        for _ in 0..items {
            match self.rng.random_range(0..6) {
                0..=2 => self.attribute_run(level + 1, depth.saturating_sub(1)),
                3 => {
                    let c = self.comment();
                    self.line(level + 1, &c);
                }
                _ => self.block(level + 1, depth.saturating_sub(1)),
            }
            self.blank_lines();
        }
        self.bodies.pop();
        self.line(level, "}");
    }

    /// An attribute value: any expression, often a template or heredoc.
    fn value(&mut self, depth: u32, level: usize) -> String {
        match self.rng.random_range(0..12) {
            0 => self.heredoc(level),
            1 => self.template(),
            2 => format!("\"${{{}{}{}}}\"", self.sp0(), self.pick(REFS), self.sp0()),
            3 => format!("\"${{{}}}\"", self.expr(1, level)),
            4 if depth > 0 => self.object_multiline(depth, level),
            5 if depth > 0 => self.tuple_multiline(depth, level),
            6 if depth > 0 => self.call_multiline(depth, level),
            _ => self.expr(depth, level),
        }
    }

    fn expr(&mut self, depth: u32, level: usize) -> String {
        if depth == 0 {
            return self.term(0, level);
        }
        match self.rng.random_range(0..10) {
            0 => {
                let (c, a, b) = (
                    self.term(depth.saturating_sub(1), level),
                    self.term(depth.saturating_sub(1), level),
                    self.term(depth.saturating_sub(1), level),
                );
                format!("{c}{}?{}{a}{}:{}{b}", self.sp0(), self.sp0(), self.sp0(), self.sp0())
            }
            1..=3 => {
                let op = self.pick(&["+", "-", "*", "/", "%", "==", "!=", "<", ">=", "&&", "||"]);
                let (a, b) = (self.term(depth.saturating_sub(1), level), self.term(depth.saturating_sub(1), level));
                // `a-b` would be one identifier: a minus needs a space before it.
                let before = if op == "-" { self.sp1() } else { self.sp0() };
                format!("{a}{before}{op}{}{b}", self.sp0())
            }
            4 => format!("{}{}{}", self.pick(&["-", "!", "-"]), self.sp0_unary(), self.term(depth.saturating_sub(1), level)),
            5 => {
                let (a, b) = (self.term(depth.saturating_sub(1), level), self.term(depth.saturating_sub(1), level));
                format!("({}{a} + {b}{}) * -{}", self.sp0(), self.sp0(), self.pick(&["1", "var.n", "2.5"]))
            }
            6 => self.for_expr(depth, level),
            _ => self.term(depth, level),
        }
    }

    fn sp0_unary(&mut self) -> &'static str {
        if self.chance(0.3) { " " } else { "" }
    }

    fn term(&mut self, depth: u32, level: usize) -> String {
        match self.rng.random_range(0..14) {
            0 => self.pick(&["1", "42", "3.14", "1e3", "0.5", "-1", "true", "false", "null"]).to_string(),
            1 => format!("\"{}\"", self.pick(WORDS)),
            2 | 3 => self.pick(REFS).to_string(),
            4 => format!(
                "{}{}",
                self.pick(&["aws_instance.web", "var.list", "module.m"]),
                self.pick(&[".*.id", "[*].id", "[*]", ".*", "[0]", "[ 0 ]", "[\"k\"]", "[var.i].name"])
            ),
            5 => self.object_inline(depth, level),
            6 => self.tuple_inline(depth, level),
            7 | 8 => self.call_inline(depth, level),
            9 => self.template(),
            10 if depth > 0 => format!("({}{}{})", self.sp0(), self.expr(depth.saturating_sub(1), level), self.sp0()),
            11 => format!("{}{}", self.pick(REFS), self.pick(&["[0]", ".name", "[\"key\"]", "[count.index]"])),
            _ => self.pick(&["var.x", "\"plain\"", "7"]).to_string(),
        }
    }

    /// An object key not among `used` (hcl-edit refuses a repeated key).
    fn key(&mut self, used: &mut Vec<String>) -> String {
        let mut key = match self.rng.random_range(0..6) {
            0 => format!("\"{}\"", self.pick(&["quoted key", "k", "Name"])),
            _ => self.pick(NAMES).to_string(),
        };
        while used.iter().any(|k| k.trim_matches('"') == key.trim_matches('"')) {
            key = format!("k{}", used.len() + self.rng.random_range(0..1000));
        }
        used.push(key.clone());
        key
    }

    fn object_inline(&mut self, depth: u32, level: usize) -> String {
        let n = if depth == 0 { self.rng.random_range(0..=1) } else { self.rng.random_range(0..=3) };
        if n == 0 {
            return self.pick(&["{}", "{ }", "{  }"]).to_string();
        }
        let mut parts = Vec::new();
        let mut used = Vec::new();
        for _ in 0..n {
            let key = self.key(&mut used);
            let eq = self.pick(&["=", "=", "=", ":"]);
            let value = self.term(depth.saturating_sub(1), level);
            parts.push(format!("{key}{}{eq}{}{value}", self.sp0(), self.sp0()));
        }
        let (open, close) = (self.sp0(), self.sp0());
        format!("{{{open}{}{close}}}", parts.join(&format!(",{}", self.sp0())))
    }

    fn object_multiline(&mut self, depth: u32, level: usize) -> String {
        let mut s = String::from("{");
        let n = self.rng.random_range(1..=4);
        let mut used = Vec::new();
        for _ in 0..n {
            if self.chance(0.15) {
                s.push_str(&self.nl(level + 1));
                s.push_str(&self.comment().replace("/* inline */", "# own line"));
            }
            if self.chance(0.1) {
                s.push('\n');
            }
            s.push_str(&self.nl(level + 1));
            let key = self.key(&mut used);
            let value = if self.chance(0.2) && depth > 1 {
                self.object_multiline(depth.saturating_sub(1), level + 1)
            } else {
                self.term(depth.saturating_sub(1), level + 1)
            };
            s.push_str(&format!("{key}{}={}{value}", self.sp0(), self.sp0()));
            if self.chance(0.2) {
                s.push(',');
            }
            if self.chance(0.15) {
                s.push_str(&format!(" # note{}", self.pick(&["", "  "])));
            }
        }
        s.push_str(&self.nl(level));
        s.push('}');
        s
    }

    fn tuple_inline(&mut self, depth: u32, level: usize) -> String {
        let n = self.rng.random_range(0..=3);
        let items: Vec<String> = (0..n).map(|_| self.term(depth.saturating_sub(1), level)).collect();
        let sep = format!(",{}", self.sp0());
        let (open, close) = (self.sp0(), self.sp0());
        if items.is_empty() {
            return "[]".into();
        }
        format!("[{open}{}{close}]", items.join(&sep))
    }

    fn tuple_multiline(&mut self, depth: u32, level: usize) -> String {
        let mut s = String::from("[");
        let n = self.rng.random_range(1..=4);
        for i in 0..n {
            s.push_str(&self.nl(level + 1));
            let item = if self.chance(0.25) {
                self.object_multiline(depth.saturating_sub(1), level + 1)
            } else {
                self.term(depth.saturating_sub(1), level + 1)
            };
            s.push_str(&item);
            if i + 1 < n || self.chance(0.5) {
                s.push(',');
            }
            if self.chance(0.15) {
                s.push_str(&format!(" // item{}", self.pick(&["", "   "])));
            }
        }
        s.push_str(&self.nl(level));
        s.push(']');
        s
    }

    fn call_inline(&mut self, depth: u32, level: usize) -> String {
        let name = self.pick(FUNCS);
        let n = self.rng.random_range(0..=3);
        let mut args: Vec<String> = Vec::new();
        for _ in 0..n {
            let arg = if self.chance(0.35) {
                self.object_inline(depth.saturating_sub(1), level)
            } else {
                self.term(depth.saturating_sub(1), level)
            };
            args.push(arg);
        }
        let ellipsis = if !args.is_empty() && self.chance(0.1) { "..." } else { "" };
        let (open, close) = (self.sp0(), self.sp0());
        format!("{name}({open}{}{ellipsis}{close})", args.join(&format!(",{}", self.sp0())))
    }

    fn call_multiline(&mut self, depth: u32, level: usize) -> String {
        let name = self.pick(FUNCS);
        match self.rng.random_range(0..3) {
            // merge(var.a, {
            //   b = 1
            // })
            0 => format!("{name}({}, {})", self.pick(REFS), self.object_multiline(depth.saturating_sub(1), level)),
            1 => {
                let (doc, close) = (self.heredoc(level), self.nl(level));
                format!("trimspace({doc}{close})")
            }
            _ => {
                let mut s = format!("{name}(");
                let n = self.rng.random_range(1..=3);
                for i in 0..n {
                    s.push_str(&self.nl(level + 1));
                    s.push_str(&self.term(depth.saturating_sub(1), level + 1));
                    if i + 1 < n {
                        s.push(',');
                    }
                }
                s.push_str(&self.nl(level));
                s.push(')');
                s
            }
        }
    }

    fn for_expr(&mut self, depth: u32, level: usize) -> String {
        let coll = self.pick(&["var.list", "[1, 2]", "{ a = 1 }", "local.m"]);
        let cond = if self.chance(0.4) { format!(" if {}", self.pick(&["v != \"\"", "v", "k == \"a\""])) } else { String::new() };
        let (s1, s2) = (self.sp0(), self.sp1());
        if self.chance(0.5) {
            format!("[for v in {coll}{s1}:{s2}{}{cond}]", self.term(depth.saturating_sub(1), level))
        } else {
            format!("{{{}for k, v in {coll}{s1}:{s2}k => v{cond}{}}}", self.sp0(), self.sp0())
        }
    }

    fn template(&mut self) -> String {
        let parts = [
            "prefix-${var.x}",
            "${ var.x }-${ local.y }",
            "${~ var.x ~}",
            "%{ if var.c }yes%{ else }no%{ endif }",
            "%{if var.c~} trimmed %{~ endif}",
            "%{ for s in var.list ~}${s},%{ endfor ~}",
            "${join(\",\",var.list)}",
            "nested ${format(\"%s-%s\", var.a, \"${var.b}\")}",
            "${ { a = 1 }[\"a\"] }",
            "${var.n+1}",
        ];
        format!("\"{}\"", self.pick(&parts))
    }

    fn heredoc(&mut self, level: usize) -> String {
        let marker = self.pick(&["EOT", "EOF", "END_OF_TEXT"]);
        let indented = self.chance(0.5);
        let pad = if indented { "  ".repeat(level + 1) } else { String::new() };
        let mut lines = vec![
            format!("{pad}first line   "),
            format!("{pad}  indented ${{ var.x }} and ${{var.y}}"),
            format!("{pad}%{{ if var.c }}yes%{{ endif }}"),
            format!("{pad}%{{ for s in var.list ~}}"),
            format!("{pad}- ${{s}}"),
            format!("{pad}%{{ endfor ~}}"),
            format!("{pad}esc $${{x}} and 100%"),
            String::new(),
        ];
        let keep = self.rng.random_range(1..=lines.len());
        lines.truncate(keep);
        if (4..6).contains(&keep) {
            lines.truncate(3);
        }
        let close = if indented { format!("{}{marker}", "  ".repeat(level)) } else { marker.to_string() };
        format!("<<{}{marker}\n{}\n{close}", if indented { "-" } else { "" }, lines.join("\n"))
    }
}
