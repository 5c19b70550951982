/**
 * A confirmatory run of Hendel et al.'s protocol (analysis/emergence.ts) on fresh prompts with a
 * larger test set than the study's (the study: 256 queries, 128 of them test), for a cell where
 * the study's rule found a task vector on small samples. Prints, per checkpoint, ICL, zero-shot,
 * θ at the dev-chosen layer on test, the recovered share, and θ's edge over zero-shot in standard
 * errors of a difference of two accuracies. The layer is chosen below the last, as the study's rule
 * reads a task vector: θ at ℓ = L is the demo prompt's own output, which no later block processes.
 *   npx tsx scripts/hendel-confirm.ts [--queries 2048] [--seed 2027] <checkpoint.onnx>…
 * --queries counts the queries of families that draw a fresh task per prompt (RegBench, regression);
 * families with a pool of tasks keep 32 per task.
 */
import { parseArgs } from 'node:util';
import { bestLayer, emergenceDiagnostics } from '../src/analysis/emergence.js';
import { openModel } from '../src/api/model.js';
import { share } from '../src/util/stats.js';

function fail(message: string): never {
  console.error(`hendel-confirm: ${message}`);
  process.exit(1);
}

let parsed;
try {
  parsed = parseArgs({ options: { queries: { type: 'string', default: '2048' }, seed: { type: 'string', default: '2027' } }, allowPositionals: true });
} catch (e) {
  fail((e as Error).message.split('\n')[0]);
}
const { values, positionals } = parsed;
const freshQueries = Number(values.queries);
const seed = Number(values.seed);
if (!Number.isInteger(freshQueries) || freshQueries < 4 || freshQueries > 1e6) fail(`--queries: expected an integer 4..1000000, got '${values.queries}'`);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed: expected an integer ≥ 0, got '${values.seed}'`);
if (positionals.length === 0) fail('usage: npx tsx scripts/hendel-confirm.ts [--queries 2048] [--seed 2027] <checkpoint.onnx>…');
for (const file of positionals) {
  try {
    await using model = await openModel(file);
    if (!model.taskConfig) throw new Error(`${file}: not a tvlens checkpoint (Hendel's protocol draws from its task config)`);
    const h = (await emergenceDiagnostics(model.backend, model.taskConfig, { freshQueries, seed })).hendel;
    const n = h.queries / 2;
    const best = bestLayer(h.tv, h.metric, h.tv.dev.length - 1);
    const recovered = share(best.test, h.zeroShot, h.icl);
    // The standard error of a difference of two accuracies (binomial); nMSE has none this simple.
    const se = Math.sqrt((best.test * (1 - best.test) + h.zeroShot * (1 - h.zeroShot)) / n);
    const edge = `θ − zero-shot ${(best.test - h.zeroShot).toFixed(3)}${h.metric === 'accuracy' ? ` (${((best.test - h.zeroShot) / se).toFixed(1)} SE)` : ''}`;
    console.log(
      `${file}: ${n} test queries; ICL ${h.icl.toFixed(3)}, zero-shot ${h.zeroShot.toFixed(3)}, θ at ℓ=${best.layer} ${best.test.toFixed(3)} (${h.metric}); recovered ${recovered.toFixed(2)}; ${edge}; θ by layer ${h.tv.all.map((x) => x.toFixed(2)).join(' ')}`,
    );
  } catch (e) {
    console.error(`hendel-confirm: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
    process.exitCode = 1;
  }
}
