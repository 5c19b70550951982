/**
 * `npm run bench`: prints one JSON object of figures. Times drift on a shared machine, so the
 * figures that matter are ratios measured side by side; absolute times are there for context.
 * `npm run bench -- train cache` runs only those groups.
 */
import os from 'node:os';
import { analysisFigures } from './analysis.js';
import { cacheFigures } from './cache.js';
import { matmulGflops, trainStepFigures } from './foundation.js';

const round = (x: number) => Math.round(x * 1000) / 1000;

const GROUPS: Record<string, () => Promise<Record<string, number>>> = {
  train: async () => ({ matmul_2048_gflops: await matmulGflops(), ...(await trainStepFigures()), train_step_target: 3.5 }),
  cache: () => cacheFigures(),
  analysis: () => analysisFigures(),
};

async function main(argv: string[]): Promise<void> {
  const unknown = argv.filter((g) => !(g in GROUPS));
  if (unknown.length) throw new Error(`unknown bench group '${unknown[0]}'. Should be one of: ${Object.keys(GROUPS).join(', ')}`);
  const figures: Record<string, number | string> = { machine_cores: os.cpus().length, load_average_1min: os.loadavg()[0] };
  for (const name of argv.length ? argv : Object.keys(GROUPS)) Object.assign(figures, await GROUPS[name]());
  console.log(JSON.stringify(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])), null, 2));
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`bench: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
