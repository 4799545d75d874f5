# Shared settings of the project's scripts (sourced, not run).
# Slow artefacts (compiled dependencies, the moto virtualenv, built servers)
# live outside the checkout so that fresh clones on this machine reuse them.
export HIMAPLAN_CACHE="${HIMAPLAN_CACHE:-$HOME/.cache/himaplan}"
export HIMAPLAN_RUN="${HIMAPLAN_RUN:-/tmp/himaplan-run}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HIMAPLAN_CACHE/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$HIMAPLAN_CACHE" "$HIMAPLAN_RUN"
