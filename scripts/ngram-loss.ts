/**
 * The cross-entropy a model could reach on a sequence task's training loss with in-context n-gram
 * statistics alone: the in-context unigram, and the bigram backed off to it. Computed over the
 * positions the training loss weights (with `train.lmLoss`, every next symbol of every x), on 256
 * fresh training prompts. Compare a run's `trainLoss` with these to see which of the two it matches.
 *   npx tsx scripts/ngram-loss.ts reports/studies/regbench-pilots/M-markov/config.json …
 */
import { addSymbolTargets, sampleTrainBatch } from '../src/tasks/prompts.js';
import { resolveRunConfig } from '../src/train/config.js';
import { readJsonFile } from '../src/util/fs.js';
import { Rng } from '../src/util/rng.js';

/** Add-α counts over the V symbols; the bigram mixes in the unigram with a pseudo-count of 1. */
const ALPHA = 0.1;

function ngramLosses(file: string): string {
  const run = resolveRunConfig(readJsonFile(file, 'a run config'));
  const cfg = run.task;
  const batch = sampleTrainBatch(cfg, new Rng(7), 256, cfg.demos.max);
  if (batch.kind !== 'tokens') throw new Error(`a ${cfg.kind} task has no symbols to count`);
  if (run.train.lmLoss) addSymbolTargets(cfg, batch);
  const V = cfg.vocab;
  let [unigram, bigram, n] = [0, 0, 0];
  for (let r = 0; r < batch.batch; r++) {
    const uni = new Float64Array(V).fill(ALPHA);
    const successors = new Map<number, Float64Array>();
    let [seen, last] = [0, -1];
    for (let t = 0; t < batch.seq; t++) {
      const i = r * batch.seq + t;
      const token = Number(batch.tokens[i]);
      if (token < V) {
        // Count what this position reveals before predicting from it.
        if (last >= 0) {
          if (!successors.has(last)) successors.set(last, new Float64Array(V));
          successors.get(last)![token]++;
        }
        uni[token]++;
        seen++;
        last = token;
      }
      if (batch.weights[i] === 0) continue;
      const y = Number(batch.targets[i]);
      const pUni = uni[y] / (seen + ALPHA * V);
      const next = last >= 0 ? successors.get(last) : undefined;
      const count = next ? next.reduce((a, b) => a + b, 0) : 0;
      unigram -= Math.log(pUni);
      bigram -= Math.log(((next?.[y] ?? 0) + pUni) / (count + 1));
      n++;
    }
  }
  return `${file}: in-context unigram ${(unigram / n).toFixed(3)} nats, bigram backed off to it ${(bigram / n).toFixed(3)} nats (${n} scored positions of 256 prompts)`;
}

for (const file of process.argv.slice(2)) {
  try {
    console.log(ngramLosses(file));
  } catch (e) {
    const message = (e as Error).message;
    console.error(message.includes(file) ? message : `${file}: ${message}`); // one line; the other files still run
    process.exitCode = 1;
  }
}
