/**
 * Side by side with another commit, in one session on one machine: for each group, the other
 * commit's bench and this one's run back to back as child processes (old, new, old, new … with
 * `--rounds`), while a background study stays paused for the whole comparison. Figures from
 * another day or another machine are not comparable (DESIGN §4); these are.
 *
 *   git worktree add /tmp/old 85b8702 && cp -al node_modules /tmp/old/ && (cd /tmp/old && npx tsc -p .)
 *   node dist/src/bench/compare.js --old /tmp/old [--pause study,train] [--rounds 1] [groups…] [--quick]
 *
 * Prints a markdown table (figure, old, new, target) on stderr and both JSON outputs on stdout.
 * The old bench prints one number per figure (one sample or its own median); this one prints
 * {median, min, max}. Both sides run with the same TVLENS_THREADS: the caller's, else one per core.
 * Left unset, a commit before 2a5efdd let ONNX Runtime choose, which acted as one thread on this
 * machine's 2 cores while this one took both: its forward passes ran faster and every ratio over
 * a forward pass looked worse than the old code's for that reason alone.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { sessionThreads } from '../runtime/session.js';
import { pauseBackground } from './pause.js';
import { TABLE } from './targets.js';

type Output = Record<string, unknown>;

function runBench(mainJs: string, args: string[], threads: string): Output {
  const env = { ...process.env, TVLENS_THREADS: threads };
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, env });
  if (r.status !== 0) throw new Error(`${mainJs} ${args.join(' ')} failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout) as Output;
}

/** A figure as "median [min – max]" from either format. */
function show(v: unknown): string {
  if (typeof v === 'number') return v.toFixed(2);
  if (v && typeof v === 'object' && 'median' in v) {
    const s = v as { median: number; min: number; max: number };
    return `${s.median.toFixed(2)} [${s.min.toFixed(2)}–${s.max.toFixed(2)}]`;
  }
  return '—';
}

function main(argv: string[]): void {
  let old = '';
  let pause = ['study'];
  let rounds = 1;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--old') old = argv[++i];
    else if (argv[i] === '--pause') pause = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (argv[i] === '--no-pause') pause = [];
    else if (argv[i] === '--rounds') rounds = Number(argv[++i]);
    else rest.push(argv[i]);
  }
  if (!old) throw new Error('--old <a built checkout of the other commit> is required');
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error('--rounds takes a whole number ≥ 1');
  const quick = rest.includes('--quick');
  const groups = rest.filter((a) => a !== '--quick');
  const all = ['train', 'tvp', 'cache', 'analysis', 'attribution', 'fv', 'foreign'];
  const oldMain = path.join(path.resolve(old), 'dist', 'src', 'bench', 'main.js');
  const newMain = path.join(import.meta.dirname, 'main.js');
  const threads = String(sessionThreads()); // the caller's TVLENS_THREADS, checked, else one per core
  const { paused, stopAgain } = pauseBackground(pause);
  const results: { group: string; round: number; old: Output; new: Output }[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const g of groups.length ? groups : all) {
      const flags = quick ? [g, '--quick'] : [g];
      // A bench since 8061edf pauses a background study itself and continues it when it ends, which
      // left it running through the other side's run: every "new" figure of a comparison with
      // 8061edf was taken beside a running study. Each side now starts with it stopped.
      const o = runBench(oldMain, flags, threads);
      stopAgain();
      const n = runBench(newMain, [...flags, '--no-pause'], threads);
      stopAgain();
      results.push({ group: g, round, old: o, new: n });
      process.stderr.write(`${g} (round ${round + 1}) done\n`);
    }
  }
  const figure = (out: Output, k: string) => (out.figures ? (out.figures as Output)[k] : out[k]);
  const rows = [`| figure | ${path.basename(path.resolve(old))} (old) | this commit | target |`, '|---|---|---|---|'];
  for (const [k, target] of TABLE) {
    for (const r of results) {
      const [o, n] = [figure(r.old, k), figure(r.new, k)];
      if (o !== undefined || n !== undefined) rows.push(`| \`${k}\`${rounds > 1 ? ` (round ${r.round + 1})` : ''} | ${show(o)} | ${show(n)} | ${target} |`);
    }
  }
  process.stderr.write(`TVLENS_THREADS=${threads} on both sides\n${rows.join('\n')}\n`);
  console.log(JSON.stringify({ paused: paused.map((p) => p.command), threads: Number(threads), rounds, results }, null, 2));
}

try {
  main(process.argv.slice(2));
} catch (e) {
  console.error(`bench compare: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
