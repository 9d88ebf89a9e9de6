#!/usr/bin/env bash
# Runs every check: type check, lint, then the unit and integration tests against a real
# kube-apiserver and etcd that the mocha root hook starts and stops. Installs what the
# tests need first. Ends with a line "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo '== type check'
npm run --silent typecheck
echo '== lint'
npm run --silent lint

echo '== tests'
log_file=$(mktemp)
trap 'rm -f "$log_file"' EXIT
status=0
specs=("$@")
[[ ${#specs[@]} -gt 0 ]] || specs=("test/unit/**/*.test.ts" "test/integration/**/*.test.ts")
npx mocha --config .mocharc.json "${specs[@]}" 2>&1 | tee "$log_file" || status=$?

count() { grep -Eo "^ +[0-9]+ $1" "$log_file" | grep -Eo '[0-9]+' | tail -n 1 || true; }
passed=$(count passing)
failed=$(count failing)
skipped=$(count pending)
echo "tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
if [[ $status -eq 0 && -z "$passed" ]]; then
  echo 'no test ran' >&2
  exit 1
fi
exit "$status"
