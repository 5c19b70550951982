/**
 * Does the arrow's own state hold the query? A hypothesis for why small models show no task
 * vector: early blocks copy the query x_q into the last arrow's state, so writing a task vector
 * over that state at ℓ ≥ 1 erases the query, and the vector can only work where later blocks read
 * x_q again from its own position. Two measures on few-shot prompts, at the last arrow:
 *
 *   probe[ℓ]      how much of x_q a linear read-out recovers from the arrow's residual at layer ℓ
 *                 (ridge regression fitted on half the prompts, scored on the other half):
 *                 accuracy of the argmax over symbols for token tasks, R² for vector queries.
 *   reread[ℓ]     the attention the arrow pays to x_q's position in the blocks after ℓ
 *                 (blocks ℓ … L−1): the largest head's weight, averaged over prompts, then the
 *                 largest over those blocks. 0 for ℓ = L (no block is left to read it).
 *
 * Triplet prompts only: in the pairwise format the query's own position is where the answer is
 * read, so x_q is its input and both measures are trivially high.
 */
import { hookPoint, residualAtLayer } from '../model/hooks.js';
import { type TaskConfig, sampleBatch } from '../tasks/index.js';
import { Rng } from '../util/rng.js';
import { ridge } from '../util/ridge.js';
import { type Backend, promptFeeds } from '../backend/backend.js';

export interface QueryCopy {
  /** probe[ℓ] for ℓ = 0..L (accuracy, or R² for vector queries). */
  readonly probe: readonly number[];
  /** The probe's chance level: the most frequent query symbol's share (0 for R²). */
  readonly chance: number;
  /** attention[b]: the largest head's attention from the arrow to x_q in block b, mean over prompts. */
  readonly attention: readonly number[];
  /** reread[ℓ] = max of attention[b] over b ≥ ℓ (0 at ℓ = L). */
  readonly reread: readonly number[];
  readonly prompts: number;
}

/** Measures both on `prompts` few-shot prompts of the train tasks (the config's most demos). */
export async function queryCopy(source: Backend, cfg: TaskConfig, options: { prompts?: number; seed?: number } = {}): Promise<QueryCopy | null> {
  if (cfg.format !== 'triplet') return null;
  const batch = sampleBatch(cfg, new Rng(options.seed ?? 77), options.prompts ?? 512, { split: 'train', demos: cfg.demos.max });
  const L = source.layers;
  const resids = Array.from({ length: L + 1 }, (_, l) => residualAtLayer(l).name);
  const patterns = Array.from({ length: L }, (_, b) => hookPoint('attn.hook_pattern', b).name);
  const { hooks } = await source.run(promptFeeds(batch), { fetch: [...resids, ...patterns] });
  const [B, T] = [batch.batch, batch.seq];
  const arrow = batch.queryPos;

  // x_q of each prompt: a symbol (token tasks) or a vector (regression).
  const targets: number[][] = [];
  let classes = 0;
  if (batch.kind === 'tokens') {
    classes = Number(batch.tokens.reduce((m, t) => (t > m ? t : m), 0n)) + 1;
    for (let b = 0; b < B; b++) {
      const row = new Array(classes).fill(0);
      row[Number(batch.tokens[b * T + arrow[b] - 1])] = 1;
      targets.push(row);
    }
  } else {
    for (let b = 0; b < B; b++) {
      const at = (b * T + arrow[b] - 1) * batch.dIn;
      targets.push(Array.from(batch.inputs.subarray(at, at + batch.dIn)));
    }
  }
  const half = Math.floor(B / 2);
  const probe = resids.map((name) => {
    const h = hooks[name];
    const D = h.shape[2];
    const X = Array.from({ length: B }, (_, b) => Array.from((h.data as Float32Array).subarray((b * T + arrow[b]) * D, (b * T + arrow[b] + 1) * D)));
    const W = ridge(X.slice(0, half), targets.slice(0, half), 1e-2);
    const predict = (x: number[]) => W[0].map((_, j) => x.reduce((s, v, i) => s + v * W[i][j], W[D][j]));
    const test = X.slice(half).map(predict);
    const truth = targets.slice(half);
    return batch.kind === 'tokens' ? test.filter((p, i) => argmax(p) === argmax(truth[i])).length / test.length : rSquared(test, truth);
  });
  const counts = new Map<number, number>();
  if (batch.kind === 'tokens') for (const t of targets) counts.set(argmax(t), (counts.get(argmax(t)) ?? 0) + 1);
  const chance = batch.kind === 'tokens' ? Math.max(...counts.values()) / B : 0;

  const attention = patterns.map((name) => {
    const p = hooks[name];
    const [H, Q, K] = [p.shape[1], p.shape[2], p.shape[3]];
    let sum = 0;
    for (let b = 0; b < B; b++) {
      let top = 0;
      for (let h = 0; h < H; h++) top = Math.max(top, (p.data as Float32Array)[((b * H + h) * Q + arrow[b]) * K + arrow[b] - 1]);
      sum += top;
    }
    return sum / B;
  });
  const reread = resids.map((_, l) => (l < L ? Math.max(...attention.slice(l)) : 0));
  return { probe, chance, attention, reread, prompts: B };
}

function argmax(v: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** 1 − SSE/SST over all coordinates. */
function rSquared(pred: number[][], truth: number[][]): number {
  const K = truth[0].length;
  const mean = Array.from({ length: K }, (_, k) => truth.reduce((s, t) => s + t[k], 0) / truth.length);
  let sse = 0;
  let sst = 0;
  truth.forEach((t, n) => t.forEach((v, k) => ((sse += (v - pred[n][k]) ** 2), (sst += (v - mean[k]) ** 2))));
  return sst > 0 ? 1 - sse / sst : 0;
}
