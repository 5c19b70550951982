#!/usr/bin/env node
// Prints the ICL curve (score by number of shots) of a run's last evaluation, or of every
// evaluation with --all, on train tasks and held-out tasks.
// Usage: node scripts/curve.mjs runs/<name> [--all]
import fs from 'node:fs';
import path from 'node:path';

const [dir, flag] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node scripts/curve.mjs <run folder> [--all]');
  process.exit(2);
}
const file = path.join(dir, 'metrics.jsonl');
if (!fs.existsSync(file)) {
  console.error(`curve: ${file} does not exist`);
  process.exit(1);
}
const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
if (lines.length === 0) {
  console.error(`curve: ${file} is empty`);
  process.exit(1);
}
const fmt = (c) => c.byShots.map((v) => v.toFixed(3)).join(' ');
for (const m of flag === '--all' ? lines : lines.slice(-1)) {
  const { train, heldout } = m.eval;
  console.log(`${path.basename(dir)} step ${m.step} loss ${m.trainLoss.toFixed(4)} (${train.metric} by shots 0..${train.byShots.length - 1})`);
  console.log(`  train tasks:    ${fmt(train)}`);
  if (heldout) console.log(`  held-out tasks: ${fmt(heldout)}`);
}
