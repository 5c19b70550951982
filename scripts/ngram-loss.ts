/**
 * The cross-entropy a model could reach on a sequence task's training loss with in-context n-gram
 * statistics alone: the in-context unigram (add-0.1 counts), the bigram backed off to it, and the
 * trigram backed off to the bigram. Each back-off is a Dirichlet prior of strength β on the order
 * below, β chosen from a grid to give that order its lowest loss (the bigram's first, then the
 * trigram's on top of it): how much an n-gram is worth depends on its smoothing, and a model is free
 * to learn the best one. Computed over the positions the training loss weights (with
 * `train.lmLoss`, every next symbol of every x), on 256 fresh training prompts. Compare a run's
 * `trainLoss` with these to see which it matches. The counts run across demo boundaries (a y and the
 * next x's first symbol), as the model may read them.
 *   npx tsx scripts/ngram-loss.ts reports/studies/regbench-pilots/M-markov/config.json …
 */
import { addSymbolTargets, sampleTrainBatch } from '../src/tasks/prompts.js';
import type { TokenBatch } from '../src/tasks/types.js';
import { resolveRunConfig } from '../src/train/config.js';
import { readJsonFile } from '../src/util/fs.js';
import { Rng } from '../src/util/rng.js';

const ALPHA = 0.1;
const BETAS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64];

/** Mean loss in nats of the unigram, bigram and trigram with back-off strengths `betaBi`, `betaTri`. */
function losses(batch: TokenBatch, V: number, betaBi: number, betaTri: number): [number, number, number] {
  const sums = [0, 0, 0];
  let n = 0;
  const bump = (table: Map<string, Float64Array>, key: string, token: number): void => {
    if (!table.has(key)) table.set(key, new Float64Array(V));
    table.get(key)![token]++;
  };
  const backedOff = (row: Float64Array | undefined, y: number, lower: number, beta: number): number =>
    ((row?.[y] ?? 0) + beta * lower) / ((row ? row.reduce((a, b) => a + b, 0) : 0) + beta);
  for (let r = 0; r < batch.batch; r++) {
    const uni = new Float64Array(V).fill(ALPHA);
    const successors = new Map<string, Float64Array>();
    const successorsOfPairs = new Map<string, Float64Array>();
    let [seen, last, beforeLast] = [0, -1, -1];
    for (let t = 0; t < batch.seq; t++) {
      const i = r * batch.seq + t;
      const token = Number(batch.tokens[i]);
      if (token < V) {
        // Count what this position reveals before predicting from it.
        if (last >= 0) bump(successors, `${last}`, token);
        if (beforeLast >= 0) bump(successorsOfPairs, `${beforeLast},${last}`, token);
        uni[token]++;
        seen++;
        [beforeLast, last] = [last, token];
      }
      if (batch.weights[i] === 0) continue;
      const y = Number(batch.targets[i]);
      const pUni = uni[y] / (seen + ALPHA * V);
      const pBi = backedOff(successors.get(`${last}`), y, pUni, betaBi);
      const pTri = backedOff(successorsOfPairs.get(`${beforeLast},${last}`), y, pBi, betaTri);
      [pUni, pBi, pTri].forEach((p, k) => (sums[k] -= Math.log(p)));
      n++;
    }
  }
  return sums.map((s) => s / n) as [number, number, number];
}

function ngramLosses(file: string): string {
  const run = resolveRunConfig(readJsonFile(file, 'a run config'));
  const cfg = run.task;
  const batch = sampleTrainBatch(cfg, new Rng(7), 256, cfg.demos.max);
  if (batch.kind !== 'tokens') throw new Error(`a ${cfg.kind} task has no symbols to count`);
  if (run.train.lmLoss) addSymbolTargets(cfg, batch);
  const argmin = (values: number[]): number => values.indexOf(Math.min(...values));
  const betaBi = BETAS[argmin(BETAS.map((b) => losses(batch, cfg.vocab, b, 1)[1]))];
  const betaTri = BETAS[argmin(BETAS.map((b) => losses(batch, cfg.vocab, betaBi, b)[2]))];
  const [unigram, bigram, trigram] = losses(batch, cfg.vocab, betaBi, betaTri);
  return `${file}: in-context unigram ${unigram.toFixed(3)} nats, bigram ${bigram.toFixed(3)} (β ${betaBi}), trigram ${trigram.toFixed(3)} (β ${betaTri})`;
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
