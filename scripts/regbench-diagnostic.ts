/**
 * Where a RegBench model's guesses at the query fall: in the DFA's alphabet (learned from the
 * context), among the symbols the DFA allows next (its transitions), or neither; beside it the
 * in-context unigram, bigram and trigram (`ngramCurve`) on the same prompts. 1024 fresh k-shot
 * prompts of train DFAs per checkpoint.
 *   npx tsx scripts/regbench-diagnostic.ts runs/second-wave/jobs/regbench_baseline_s0/run/checkpoints/step-002500.onnx …
 */
import { openModel } from '../src/api/model.js';
import { ngramCurve } from '../src/tasks/ngram.js';
import { sampleBatch } from '../src/tasks/prompts.js';
import { dfaAllowedNext } from '../src/tasks/dfa.js';
import { argmax, exampleInput, softmaxAt } from '../src/tasks/score.js';
import { Rng } from '../src/util/rng.js';

async function diagnose(file: string): Promise<string> {
  await using model = await openModel(file);
  const cfg = model.taskConfig;
  if (cfg?.kind !== 'dfa') throw new Error(`${file} is not a RegBench (dfa) checkpoint`);
  const batch = sampleBatch(cfg, new Rng(99), 1024, { split: 'train', demos: cfg.demos.max });
  if (batch.kind !== 'tokens') throw new Error('a dfa batch is tokens');
  const T = batch.seq;
  const logits = await model.run(Array.from({ length: batch.batch }, (_, b) => Array.from(batch.tokens.subarray(b * T, (b + 1) * T), Number)));
  const V = logits.dims[2];
  const sum = { inAlphabet: 0, allowed: 0, seen: 0, alphabetMass: 0, allowedMass: 0 };
  for (let b = 0; b < batch.batch; b++) {
    const task = batch.tasks[b];
    if (task.family !== 'dfa') throw new Error('a dfa batch holds dfa tasks');
    const q = batch.queryPos[b];
    const row = (logits.data as Float32Array).subarray((b * T + q) * V, (b * T + q + 1) * V);
    const best = argmax(row);
    const { alphabet } = task.params;
    const allowed = dfaAllowedNext(task, exampleInput(batch, b * T + q));
    sum.inAlphabet += Number(alphabet.includes(best));
    sum.allowed += Number(allowed.includes(best));
    sum.seen += Number(batch.tokens.subarray(b * T, b * T + q).includes(BigInt(best)));
    sum.alphabetMass += alphabet.reduce((s, v) => s + softmaxAt(row, v), 0);
    sum.allowedMass += allowed.reduce((s, v) => s + softmaxAt(row, v), 0);
  }
  const f = (x: number) => (x / batch.batch).toFixed(2);
  const k = cfg.demos.max;
  const ngrams = ([1, 2, 3] as const).map((n) => ngramCurve(batch, n).byShots[k].toFixed(2)).join(', ');
  return `${file}: top guess in the DFA's alphabet ${f(sum.inAlphabet)}, seen in the prompt ${f(sum.seen)}, allowed ${f(sum.allowed)} (in-context unigram, bigram, trigram ${ngrams}); probability on the alphabet ${f(sum.alphabetMass)}, on the allowed symbols ${f(sum.allowedMass)}`;
}

if (process.argv.length < 3) {
  console.error('usage: npx tsx scripts/regbench-diagnostic.ts <checkpoint.onnx>…');
  process.exit(1);
}
for (const file of process.argv.slice(2)) {
  try {
    console.log(await diagnose(file));
  } catch (e) {
    console.error(`regbench-diagnostic: ${e instanceof Error ? e.message.split('\n')[0] : e}`);
    process.exitCode = 1;
  }
}
