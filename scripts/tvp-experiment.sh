#!/usr/bin/env bash
# The TVP-loss experiment (issue 5): for each seed, on the same data stream and step budget,
#   baseline  : plain ICL training for N steps
#   scratch   : TVP-loss training from scratch for N steps (L = L_ICL + λ·L_TVP at layer ℓ)
#   finetune  : the baseline's checkpoint at N/2, fine-tuned with TVP-loss for N/2 steps
# then `tvlens eval` compares the three groups (task vectors at ℓ and at the best layer, ICL by
# shots, OOD, length generalisation; means over seeds with 95% intervals).
# Usage: scripts/tvp-experiment.sh [preset] [steps] [seeds...]   (default: tvp-discrete 600 0 1 2)
# Finished runs are kept and not retrained. About 3 runs × seeds × N steps of training.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-tvp-discrete}
steps=${2:-600}
shift $(( $# > 2 ? 2 : $# )) || true
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(0 1 2)
half=$(( steps / 2 ))
out="runs/tvp-$preset"
tvlens=(node dist/src/cli/main.js)
[ -f dist/src/cli/main.js ] || npm run -s build
done_run() { ls "$1/checkpoints/step-$(printf %06d "$2").state" >/dev/null 2>&1; }
for s in "${seeds[@]}"; do
  done_run "$out/base-$s" "$steps" || { rm -rf "$out/base-$s"; "${tvlens[@]}" train --config "$preset" --steps "$steps" --seed "$s" --out "$out/base-$s"; }
  done_run "$out/scratch-$s" "$steps" || { rm -rf "$out/scratch-$s"; "${tvlens[@]}" tvp --from "$preset" --steps "$steps" --seed "$s" --out "$out/scratch-$s"; }
  base_half="$out/base-$s/checkpoints/step-$(printf %06d "$half").onnx"
  [ -f "$base_half" ] || { echo "no checkpoint at step $half in $out/base-$s (checkpointEvery must divide $half)"; exit 1; }
  done_run "$out/finetune-$s" "$half" || { rm -rf "$out/finetune-$s"; "${tvlens[@]}" tvp --from "$base_half" --steps "$half" --seed "$s" --out "$out/finetune-$s"; }
done
join() { local IFS=,; echo "$*"; }
group() { local g=$1; shift; local xs=(); for s in "${seeds[@]}"; do xs+=("$out/$g-$s"); done; echo "$(join "${xs[@]}")"; }
"${tvlens[@]}" eval --group "baseline=$(group base)" --group "tvp-scratch=$(group scratch)" --group "tvp-finetune=$(group finetune)" --out "$out/eval.json"
