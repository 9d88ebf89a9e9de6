#!/usr/bin/env bash
# Runs the end-to-end demo on a local control plane, installing what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm run --silent demo -- "$@"
