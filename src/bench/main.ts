/**
 * `npm run bench`: one JSON object on stdout, and a table of the figures on stderr.
 *
 *   npm run bench                       every group, 5 timed repeats of each figure (a few minutes)
 *   npm run bench -- train cache        only those groups
 *   npm run bench -- --quick            2 repeats and smaller prompt sets: a look, not a target
 *   npm run bench -- scale --out docs/bench   the scale curve (not in the default set: ~10 min);
 *                                       --out writes scale.json and scale.svg there
 *   npm run bench -- --repeats 3        fewer (or more) timed repeats than 5 (the JSON records how many)
 *   npm run bench -- --no-pause         leave a background `tvlens study` running
 *   npm run bench -- --pause study,train   pause these tvlens subcommands (default: study)
 *
 * Every timed figure is the median of the repeats with its min and max ({median, min, max, n});
 * the two sides of a ratio run interleaved in this one process after a warm-up (timing.ts).
 * Threads: $TVLENS_THREADS, else one per core; both sides of every ratio use the same count.
 */
import os from 'node:os';
import { sessionThreads } from '../runtime/session.js';
import { patchFigures, tvSearchFigures } from './analysis.js';
import { attributionFigures } from './attribution.js';
import { cacheFigures } from './cache.js';
import { foreignFigures } from './foreign.js';
import { foreignGradFigures } from './foreign-grad.js';
import { trainStepFigures } from './foundation.js';
import { fvFigures, tvpStepFigures } from './methods.js';
import { pauseBackground } from './pause.js';
import { scaleGroup } from './scale.js';

import { parseBenchArgs } from './args.js';
import { type Figure, type Figures, type Repeats } from './timing.js';

type Group = (repeats: Repeats, out?: string) => Promise<Figures>;

const GROUPS: Record<string, Group> = {
  train: trainStepFigures,
  tvp: tvpStepFigures,
  cache: cacheFigures,
  analysis: async (r) => ({ ...(await tvSearchFigures(r)), ...(await patchFigures(r)) }),
  attribution: attributionFigures,
  fv: fvFigures,
  foreign: foreignFigures,
  nl: foreignGradFigures,
};
/** Groups run only when named: they take longer than the rest together. */
const EXTRA_GROUPS: Record<string, Group> = { scale: scaleGroup };

const round = (x: number) => Math.round(x * 1000) / 1000;
const rounded = (f: Figure): Figure => (typeof f === 'number' ? round(f) : { median: round(f.median), min: round(f.min), max: round(f.max), n: f.n });

function table(figures: Figures): string {
  return Object.entries(figures)
    .map(([k, f]) => (typeof f === 'number' ? `${k.padEnd(52)} ${f}` : `${k.padEnd(52)} ${String(f.median).padStart(10)}  [${f.min} – ${f.max}]`))
    .join('\n');
}

async function main(argv: string[]): Promise<void> {
  const args = parseBenchArgs(argv, Object.keys(GROUPS), Object.keys(EXTRA_GROUPS));
  const loadBefore = os.loadavg();
  const { paused } = pauseBackground(args.pause);
  const machine = {
    cpu_model: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    threads: sessionThreads(),
    threads_from: process.env.TVLENS_THREADS ? 'TVLENS_THREADS' : 'os.availableParallelism()',
    node: process.version,
  };
  const t0 = performance.now();
  const figures: Figures = {};
  for (const name of args.groups) Object.assign(figures, await (GROUPS[name] ?? EXTRA_GROUPS[name])(args.repeats, args.out));
  const out = {
    machine,
    run: {
      groups: args.groups,
      repeats: args.repeats.timed,
      warmup: args.repeats.warmup,
      quick: args.repeats.quick,
      ...(args.repeats.quick ? { note: `--quick: ${args.repeats.timed} repeats and smaller prompt sets; not for judging a target` } : {}),
      paused: paused.map((p) => p.command),
      load_average_before: loadBefore.map(round),
      load_average_after: os.loadavg().map(round),
      seconds: round((performance.now() - t0) / 1000),
    },
    figures: Object.fromEntries(Object.entries(figures).map(([k, f]) => [k, rounded(f)])),
  };
  console.error(table(out.figures));
  console.log(JSON.stringify(out, null, 2));
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`bench: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
