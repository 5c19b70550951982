#!/usr/bin/env bash
# The reproduction study, end to end: every job of src/presets/studies/paper.json (training and
# analyses), spread over N local processes (one ONNX Runtime thread each), then the aggregate:
# runs/paper/{results.arrow,summary.json,reproduction.md}, copied to reports/studies/paper/, the
# report reports/reproduction.html, and the model zoo in models/.
# Resumable: stop it at any point and run it again; finished jobs are kept.
# Usage: scripts/reproduce.sh [processes]   (default 2; several hours on 2 cores)
# On a cluster, run `tvlens study src/presets/studies/paper.json --out runs/paper --shard i/n` as
# array job i of n instead, then this script with 0 processes to aggregate.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2}
spec=src/presets/studies/paper.json
out=runs/paper
tvlens=(npx --no-install tsx src/cli/main.ts)
status=0
scripts/run-shards.sh "$spec" "$out" "$n" || status=1
"${tvlens[@]}" study "$spec" --out "$out" --aggregate --report reports/reproduction.html
mkdir -p reports/studies/paper
cp "$out/results.arrow" "$out/summary.json" "$out/reproduction.md" reports/studies/paper/
npx --no-install tsx scripts/zoo.ts "$out"
npx --no-install tsx scripts/readme-tables.ts
exit "$status"
