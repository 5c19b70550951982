/**
 * A confirmatory run of Hendel et al.'s protocol (analysis/emergence.ts) on fresh prompts with a
 * larger test set than the study's (the study: 256 queries, 128 of them test), for a cell where
 * the study's rule found a task vector on small samples. Prints, per checkpoint, ICL, zero-shot,
 * θ at the dev-chosen layer on test, the recovered share, and θ's edge over zero-shot in standard
 * errors of a difference of two accuracies.
 *   npx tsx scripts/hendel-confirm.ts [--queries 2048] [--seed 2027] <checkpoint.onnx>…
 */
import { parseArgs } from 'node:util';
import { emergenceDiagnostics } from '../src/analysis/emergence.js';
import { openModel } from '../src/api/model.js';

const { values, positionals } = parseArgs({ options: { queries: { type: 'string', default: '2048' }, seed: { type: 'string', default: '2027' } }, allowPositionals: true });
const freshQueries = Number(values.queries);
for (const file of positionals) {
  await using model = await openModel(file);
  const h = (await emergenceDiagnostics(model.backend, model.taskConfig!, { freshQueries, seed: Number(values.seed) })).hendel;
  const n = h.queries / 2;
  const se = Math.sqrt((h.best.test * (1 - h.best.test) + h.zeroShot * (1 - h.zeroShot)) / n);
  console.log(
    `${file}: ${n} test queries; ICL ${h.icl.toFixed(3)}, zero-shot ${h.zeroShot.toFixed(3)}, θ at ℓ=${h.best.layer} ${h.best.test.toFixed(3)}; recovered ${h.recovered.toFixed(2)}; θ − zero-shot ${(h.best.test - h.zeroShot).toFixed(3)} (${((h.best.test - h.zeroShot) / se).toFixed(1)} SE); θ by layer ${h.tv.all.map((x) => x.toFixed(2)).join(' ')}`,
  );
}
