/**
 * `npm run bench`: prints one JSON object of figures. Times drift on a shared machine, so the
 * figures that matter are ratios measured side by side; absolute times are there for context.
 * `npm run bench -- train cache` runs only those groups; `--quick` runs every group with fewer
 * repeats and smaller prompt sets (under a minute on an idle 2-core machine), for a quick look.
 */
import os from 'node:os';
import { analysisFigures, patchFigures, tvSearchFigures } from './analysis.js';
import { attributionFigures } from './attribution.js';
import { cacheFigures } from './cache.js';
import { foreignFigures } from './foreign.js';
import { matmulGflops, trainStepFigures } from './foundation.js';
import { fvFigures, tvpStepFigures } from './methods.js';

const round = (x: number) => Math.round(x * 1000) / 1000;

const GROUPS: Record<string, (quick: boolean) => Promise<Record<string, number>>> = {
  train: async (quick) => ({ matmul_2048_gflops: await matmulGflops(2048, quick ? 2 : 5), ...(await trainStepFigures(quick ? 2 : 8)), train_step_target: 3.5 }),
  tvp: (quick) => tvpStepFigures(quick),
  cache: (quick) => cacheFigures(quick ? 3 : 10),
  analysis: async (quick) => (quick ? { ...(await tvSearchFigures(1)), ...(await patchFigures(1)) } : analysisFigures()),
  attribution: (quick) => attributionFigures(quick),
  fv: (quick) => fvFigures(quick),
  foreign: (quick) => foreignFigures(quick ? 1 : 5),
};

async function main(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const names = argv.filter((a) => a !== '--quick');
  const unknown = names.filter((g) => !(g in GROUPS));
  if (unknown.length) throw new Error(`unknown bench group '${unknown[0]}'. Should be one of: ${Object.keys(GROUPS).join(', ')} (and --quick)`);
  const t0 = performance.now();
  const figures: Record<string, number | string> = { machine_cores: os.cpus().length, load_average_1min: os.loadavg()[0], quick: quick ? 'yes' : 'no' };
  for (const name of names.length ? names : Object.keys(GROUPS)) Object.assign(figures, await GROUPS[name](quick));
  figures.load_average_1min_after = os.loadavg()[0];
  figures.bench_seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])), null, 2));
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`bench: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
