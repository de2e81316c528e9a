#!/usr/bin/env bash
# shellcheck over the service, setup, test, demo and benchmark scripts (and the helpers they source).
#   shellcheck.sh REPO_ROOT        exit 77 when shellcheck is not installed (ctest: skipped)
set -euo pipefail
root=${1:?usage: shellcheck.sh REPO_ROOT}
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "shellcheck is not installed (Debian package shellcheck): skipped" >&2
  exit 77
fi
cd "${root}"
files=(scripts/demo scripts/bench scripts/services scripts/setup scripts/test scripts/lib/stack.sh
  bench/e2e/run.sh bench/broadcaster/run.sh bench/relay/run.sh bench/wallet/run.sh bench/peers/run.sh
  bench/soak/run.sh bench/soak/report.sh bench/peers/debezium/peer.sh bench/peers/debezium/smoke.sh
  bench/peers/watermill/peer.sh bench/peers/watermill/smoke.sh)
for f in "${files[@]}"; do
  [[ -f ${f} ]] || { echo "missing: ${f}" >&2; exit 1; }
done
# -x: follow `source` into scripts/lib; SCRIPTDIR-relative source paths are declared in the files.
shellcheck -x --severity=style "${files[@]}"
echo "shellcheck: ${#files[@]} scripts clean"
