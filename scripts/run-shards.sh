#!/usr/bin/env bash
# Runs every job of a study spec in N local shards (one ONNX Runtime thread each) and waits;
# exits 1 if a shard failed (its log: <out>.shard-<i>.log). Used by reproduce.sh and second-wave.sh.
# Usage: scripts/run-shards.sh <spec> <out> <processes>
set -uo pipefail
cd "$(dirname "$0")/.."
spec=$1 out=$2 n=$3
mkdir -p "$(dirname "$out")"
pids=()
for ((i = 1; i <= n; i++)); do
  TVLENS_THREADS=1 npx --no-install tsx src/cli/main.ts study "$spec" --out "$out" --shard "$i/$n" > "$out.shard-$i.log" 2>&1 &
  pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ "$status" -eq 0 ] || echo "some shard failed (see $out.shard-*.log); aggregating what finished"
exit "$status"
