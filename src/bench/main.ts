/**
 * `npm run bench`: prints one JSON object of figures. Times drift on a shared machine, so the
 * figures that matter are ratios measured side by side; absolute times are there for context.
 */
import { matmulGflops, trainStepFigures } from './foundation.js';

const round = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const figures: Record<string, number | string> = { machine_cores: (await import('node:os')).cpus().length };
  figures.matmul_2048_gflops = await matmulGflops();
  Object.assign(figures, await trainStepFigures());
  figures.train_step_target = 3.5;
  console.log(JSON.stringify(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v])), null, 2));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
