#!/usr/bin/env bash
# Smoke-checks each paper-* preset (or the presets named as arguments): builds its training graph
# and runs a few optimizer steps into a temporary folder (removed afterwards), printing the wall
# time. It does not train them: each takes hours on 2 cores.
# Usage: scripts/check-paper.sh [paper-discrete ...]   (STEPS=n sets the steps, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=($(ls src/presets | sed -n 's/^\(paper-.*\)\.json$/\1/p'))
steps=${STEPS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in "${presets[@]}"; do
  start=$(date +%s.%N)
  npx --no-install tsx src/cli/main.ts train --config "$name" --out "$tmp/$name" --stop-after "$steps" --json > "$tmp/$name.out"
  secs=$(node -e "console.log(($(date +%s.%N) - $start).toFixed(1))")
  echo "$name: $steps steps ran in ${secs} s wall (graph build and session start included)"
done
