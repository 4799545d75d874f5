#!/usr/bin/env python3
"""Writes the committed seed corpus under fuzz/corpus/TARGET/ from the
project's own inputs: every *.hcl file, every HCL configuration written as
a string literal in tests/*.rs and crates/engine/tests/*.rs, state files
from tests, schedules from the cron tests. Run from the repository root;
names are content hashes, so a rerun adds only what is new."""
import hashlib, json, pathlib, re, sys

root = pathlib.Path(__file__).resolve().parent.parent
out = root / "fuzz" / "corpus"

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    if not data or len(data) > 64 * 1024:
        return
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)

def literals(text):
    # r#"..."# raw strings, then ordinary "..." strings with escapes.
    for m in re.finditer(r'r(#+)"(.*?)"\1', text, re.S):
        yield m.group(2)
    for m in re.finditer(r'(?<![r#\w])"((?:[^"\\]|\\.)*)"', text, re.S):
        s = m.group(1)
        s = re.sub(r'\\\n\s*', '', s)
        try:
            yield bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            pass

for path in sorted(root.glob("**/*.hcl")):
    if "target" not in path.parts and "fuzz" not in path.parts:
        put("validate_hcl", path.read_text())

cron_re = re.compile(r'^(@\w+|[\d*/,\-A-Za-z?]+( [\d*/,\-A-Za-z?]+){4})$')
for path in sorted(list(root.glob("tests/*.rs")) + list(root.glob("crates/engine/tests/*.rs")) + list(root.glob("src/**/*.rs")) + list(root.glob("crates/engine/src/**/*.rs"))):
    for s in literals(path.read_text()):
        # Inputs that loop a million times (tests/bounds.rs) would only slow
        # every replay down.
        if re.search(r'range\(\d{5,}\)', s):
            continue
        if re.search(r'^\s*(resource|variable|locals|output|module|himaplan|provider|moved|import)\b', s, re.M) and "{" in s:
            put("validate_hcl", s)
        if s.lstrip().startswith("{") and '"lineage"' in s:
            put("state_file", s)
        if cron_re.match(s.strip()) and path.name in ("schedule.rs", "next.rs", "cron_differential.rs", "kubernetes.rs", "kubernetes_jobs.rs"):
            put("cron", s.strip())

for s in ["0 18 * * 1-5\nEurope/Berlin\n1700000000", "*/15 7-18 * * MON-FRI", "@daily", "0 0 29 2 *", "0 0 31 4 *", "5 4 * * SUN\nAmerica/New_York\n1710054000"]:
    put("cron", s)
for pick, value in [("s", "hello"), ("n", "42"), ("n", "-1"), ("b", "true"), ("l", '["a", "b"]'), ("m", '{ a = 1, b = 2 }'), ("o", '{ name = "x" }'), ("a", '[1, "x", true]'), ("secret", "not-a-real-secret")]:
    put("var_value", chr(["s", "n", "b", "l", "m", "o", "a", "secret"].index(pick)) + value)

# State and plan files written by himaplan itself (argv[1], a debug binary).
if len(sys.argv) > 1:
    import subprocess, tempfile
    for s in list((out / "validate_hcl").iterdir())[:400]:
        text = s.read_text(errors="replace")
        if "himaplan_data" not in text or "module" in text:
            continue
        with tempfile.TemporaryDirectory() as d:
            (pathlib.Path(d) / "main.hcl").write_text(text)
            r = subprocess.run([sys.argv[1], "apply", "--auto-approve"], cwd=d, capture_output=True, timeout=60)
            st = pathlib.Path(d) / "state" / "default.json"
            if r.returncode == 0 and st.exists():
                put("state_file", st.read_text())
                (pathlib.Path(d) / "main.hcl").write_text(text.replace('"', '"x', 1) if False else text + '\nresource "himaplan_data" "fuzz_seed_extra" {\n  input = "x"\n}\n')
                r = subprocess.run([sys.argv[1], "plan", "--out", "p.plan"], cwd=d, capture_output=True, timeout=60)
                if (pathlib.Path(d) / "p.plan").exists():
                    put("plan_file", (pathlib.Path(d) / "p.plan").read_text())
for t in sorted(out.iterdir()):
    print(t.name, len(list(t.iterdir())))
