#!/bin/sh
# Daily retraining check for cron: run the triggers, and when they fire (exit 1) build the retraining set.
# Exit codes of `workbench check`: 0 quiet, 1 the rule set fires, 2 a rule could not be evaluated / bad input.
# Settings: WORKBENCH_DB (the store), WORKBENCH_RULES (the rules file), WORKBENCH_EXPORTS (retraining sets).
set -u
WORKBENCH="${WORKBENCH_BIN:-workbench}"
STORE="${WORKBENCH_DB:-/srv/workbench/workbench.duckdb}"
RULES="${WORKBENCH_RULES:-/srv/workbench/rules.toml}"
EXPORTS="${WORKBENCH_EXPORTS:-/srv/workbench/retraining}"

"$WORKBENCH" check --rules "$RULES" --db "$STORE"
code=$?
case "$code" in
  0) echo "workbench check: quiet, nothing to do" ;;
  1) "$WORKBENCH" curate --db "$STORE" --out "$EXPORTS/$(date -u +%Y-%m-%d)" --created-by cron || exit 2 ;;
  *) echo "workbench check failed with exit code $code" >&2; exit 2 ;;
esac
