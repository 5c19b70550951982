#!/usr/bin/env bash
# TVP-loss on a foreign model (issue 18's oracle): the PyTorch-trained GPT-2-style fixture
# fine-tuned at layer 1 on antonyms and copy_word, two tasks over the same words, so a zero-shot
# prompt cannot tell them apart and only a task vector can; then one report with the fixture and
# the fine-tuned folder side by side (reports/foreign-tvp.html). About 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-runs/gpt2-tvp-copy}
tvlens=(node dist/src/cli/main.js)
npm run build > /dev/null
rm -rf "$out"
"${tvlens[@]}" tvp --from tests/fixtures/decoders/gpt2 --task antonyms,copy_word --layer 1 --steps 800 --out "$out"
"${tvlens[@]}" report tests/fixtures/decoders/gpt2 "$out" --task antonyms,copy_word --prompts 16 --out reports/foreign-tvp.html
