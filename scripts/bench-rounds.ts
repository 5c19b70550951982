/**
 * The table from one or more saved runs of `node dist/src/bench/compare.js --old … > file`:
 * for each target figure, both sides per round (this code's median of repeats with its min and max),
 * the median over all rounds and how many rounds meet the target; then the times behind them.
 *   npx tsx scripts/bench-rounds.ts docs/bench/compare-85b8702-at-b6a59d0.json docs/bench/compare-85b8702-at-709d553.json
 */
import fs from 'node:fs';
import { TABLE } from '../src/bench/targets.js';

type Figure = number | { median: number; min: number; max: number };
interface Round { old: Record<string, Figure>; new: Record<string, Figure> }

const TIMES = [
  ['forward_ms', 'forward pass'],
  ['train_step_fused_ms', 'fused training step'],
  ['patch_sweep_ms', 'patch sweep'],
  ['patch_naive_cell_ms', 'naive patched cell'],
  ['patch_attribution_ms', 'attribution'],
  ['patch_attribution_exact_ms', 'exact patching of its grid'],
  ['tv_search_ms', 'task-vector search'],
  ['tv_search_forward_ms', 'its plain forward passes'],
  ['foreign_tv_search_ms', 'foreign search'],
  ['foreign_tv_search_naive_ms', 'its naive path'],
  ['cache_resid_forward_ms', "cache's residual forward"],
] as const;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const value = (f: Figure) => (typeof f === 'number' ? f : f.median);
const meets = (x: number, target: string) => (target.startsWith('≤') ? x <= Number(target.slice(2)) : x >= Number(target.slice(2)));

/** A file's rounds; one line naming the file for what is not compare.js's output. */
function roundsOf(file: string): Round[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${e instanceof SyntaxError ? 'not JSON (truncated?)' : (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const results = (parsed as { results?: unknown } | null)?.results;
  const ok = Array.isArray(results) && results.every((r) => r && typeof r === 'object' && 'old' in r && 'new' in r);
  if (!ok) throw new Error(`${file}: not the output of compare.js (no results with old and new sides)`);
  const figures = (side: unknown) => ((side as { figures?: Record<string, Figure> }).figures ?? side) as Record<string, Figure>;
  return (results as { old: unknown; new: unknown }[]).map((r) => ({ old: figures(r.old), new: figures(r.new) }));
}

const files = process.argv.slice(2);
let rounds: Round[] = [];
try {
  if (!files.length) throw new Error('give one or more files written by compare.js');
  rounds = files.flatMap(roundsOf);
} catch (e) {
  console.error(`bench-rounds: ${(e as Error).message}`);
  process.exit(1);
}
/** Every round's value of `key`, on both sides, where the round measured it. */
const both = (key: string) => rounds.filter((r) => r.new[key] !== undefined && r.old[key] !== undefined);

const lines = ['| figure | old side, per round | this code, per round: median [min–max] | target | median of the rounds | rounds meeting it |', '|---|---|---|---|---|---|'];
for (const [key, target] of TABLE.filter(([, t]) => t)) {
  const rs = both(key);
  const mine = rs.map((r) => value(r.new[key]));
  const old = rs.map((r) => value(r.old[key]));
  const shown = rs.map((r) => { const f = r.new[key]; return typeof f === 'number' ? f.toFixed(2) : `${f.median.toFixed(2)} [${f.min.toFixed(2)}–${f.max.toFixed(2)}]`; });
  const m = median(mine);
  lines.push(`| \`${key}\` | ${old.map((x) => x.toFixed(2)).join(', ')} (median ${median(old).toFixed(2)}) | ${shown.join(', ')} | ${target} | ${m.toFixed(2)} ${meets(m, target) ? 'met' : 'not met'} | ${mine.filter((x) => meets(x, target)).length} of ${mine.length} |`);
}
lines.push('', '| time, ms, per round | old side | this code |', '|---|---|---|');
const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
for (const [key, name] of TIMES) {
  const rs = both(key);
  lines.push(`| ${name} | ${rs.map((r) => ms(value(r.old[key]))).join(', ')} | ${rs.map((r) => ms(value(r.new[key]))).join(', ')} |`);
}
process.stdout.write(lines.join('\n') + '\n');
