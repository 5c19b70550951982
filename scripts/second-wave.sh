#!/usr/bin/env bash
# The second wave of the reproduction, end to end: every job of
# src/presets/studies/second-wave.json in N local processes (one ONNX Runtime thread each), then
# the aggregate (runs/second-wave/{results.arrow,summary.json,reproduction.md}), copied to
# reports/studies/second-wave/, and reports/reproduction.html with both waves (the second first).
# Resumable: stop it at any point and run it again; finished jobs are kept.
# Usage: scripts/second-wave.sh [processes]   (default 2; 0 only aggregates what has finished)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2}
spec=src/presets/studies/second-wave.json
out=${OUT:-runs/second-wave}
tvlens=(npx --no-install tsx src/cli/main.ts)
status=0
scripts/run-shards.sh "$spec" "$out" "$n" || status=1
"${tvlens[@]}" study "$spec" --out "$out" --aggregate
mkdir -p reports/studies/second-wave
cp "$out/results.arrow" "$out/summary.json" "$out/reproduction.md" reports/studies/second-wave/
npx --no-install tsx scripts/reproduction-page.ts reports/studies/second-wave/summary.json reports/studies/paper/summary.json
npx --no-install tsx scripts/readme-tables.ts
exit "$status"
