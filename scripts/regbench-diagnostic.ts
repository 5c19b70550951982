/**
 * Where a RegBench model's guesses at the query fall: in the DFA's alphabet (learned from the
 * context), among the symbols the DFA allows next (its transitions), or neither. 512 fresh k-shot
 * prompts of train DFAs per checkpoint.
 *   npx tsx scripts/regbench-diagnostic.ts runs/second-wave/jobs/regbench_baseline_s0/run/checkpoints/step-002500.onnx …
 */
import { openModel } from '../src/api/model.js';
import { sampleBatch } from '../src/tasks/prompts.js';
import { dfaAllowedNext } from '../src/tasks/dfa.js';
import { exampleInput } from '../src/tasks/score.js';
import { Rng } from '../src/util/rng.js';
for (const file of process.argv.slice(2)) {
  await using model = await openModel(file);
  const cfg = model.taskConfig!;
  if (cfg.kind !== 'dfa') throw new Error(`${file} is not a RegBench (dfa) checkpoint`);
  const batch = sampleBatch(cfg, new Rng(99), 512, { split: 'train', demos: cfg.demos.max });
  if (batch.kind !== 'tokens') throw new Error('a dfa batch is tokens');
  const logits = await model.run(Array.from({ length: batch.batch }, (_, b) => Array.from(batch.tokens.subarray(b * batch.seq, (b + 1) * batch.seq), Number)));
  const V = logits.dims[2];
  let inAlpha = 0, allowed = 0, inContext = 0, n = 0, allowedMass = 0, alphaMass = 0;
  for (let b = 0; b < batch.batch; b++) {
    const q = batch.queryPos[b];
    const row = (logits.data as Float32Array).subarray((b * batch.seq + q) * V, (b * batch.seq + q + 1) * V);
    let best = 0; for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    const task = batch.tasks[b];
    if (task.family !== 'dfa') continue;
    const alphabet = task.params.alphabet;
    const x = exampleInput(batch, b * batch.seq + q);
    const ok = dfaAllowedNext(task, x);
    const seen = new Set(Array.from(batch.tokens.subarray(b * batch.seq, b * batch.seq + q), Number));
    const mx = Math.max(...row); let z = 0; const p = Array.from(row, (l) => { const e = Math.exp(l - mx); z += e; return e; });
    allowedMass += ok.reduce((s, v) => s + p[v] / z, 0); alphaMass += alphabet.reduce((s, v) => s + p[v] / z, 0);
    n++; if (alphabet.includes(best)) inAlpha++; if (ok.includes(best)) allowed++; if (seen.has(best)) inContext++;
  }
  console.log(file, `top guess: in the DFA's alphabet ${(inAlpha / n).toFixed(2)}, seen in the prompt ${(inContext / n).toFixed(2)}, allowed ${(allowed / n).toFixed(2)}; probability on the alphabet ${(alphaMass / n).toFixed(2)}, on the allowed symbols ${(allowedMass / n).toFixed(2)}`);
}
