#!/usr/bin/env bash
# Trains each small-* preset (or the presets named as arguments) into runs/<name>, one after the
# other, then prints its wall time and the ICL curve of its last evaluation.
# A finished run is not retrained; an interrupted one is resumed.
# Usage: scripts/train-small.sh [small-discrete small-linreg small-sine]
set -euo pipefail
cd "$(dirname "$0")/.."
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(small-discrete small-linreg small-sine)
tvlens=(npx --no-install tsx src/cli/main.ts)
for name in "${presets[@]}"; do
  out="runs/$name"
  steps=$(node -e "const c=JSON.parse(require('fs').readFileSync('src/presets/$name.json','utf8'));console.log((c.train&&c.train.steps)||1000)")
  last=$( (ls "$out/checkpoints" 2>/dev/null || true) | sed -n 's/^step-0*\([0-9][0-9]*\)\.state$/\1/p' | sort -n | tail -1)
  start=$(date +%s)
  if [ -n "$last" ] && [ "$last" -ge "$steps" ]; then
    echo "== $name: already trained ($steps steps) in $out"
  else
    resume=()
    [ -n "$last" ] && resume=(--resume)
    echo "== $name: training $steps steps into $out ${resume[*]:-}"
    "${tvlens[@]}" train --config "$name" --out "$out" "${resume[@]}"
    echo "== $name: $(( $(date +%s) - start )) s wall"
  fi
  node scripts/curve.mjs "$out"
done
