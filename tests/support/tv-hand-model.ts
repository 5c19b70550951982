/**
 * A 3-block transformer with hand-set weights in which one known layer carries the task.
 *
 * Tasks: two functions on V = 8 symbols, told apart by their labels: 'low' y = x mod 4 (labels
 * 0..3) and 'high' y = 4 + x mod 4 (labels 4..7). Residual dimensions, D = 32:
 *
 *   0..7 symbol one-hot · 8 arrow · 9 sep · 10 BIG (a constant M) · 11 x-position flag
 *   12 label-position flag · 13 recency (p/8) · 14 τ (task sign) · 15..22 the query's x
 *   23..30 the answer · 31 COMP (minus the sum of every other dimension but BIG)
 *
 * Block 0 writes nothing. Block 1's attention sends the arrow to the label positions and writes
 * τ = mean(±1 for a high / low label): the task, and nothing else, enters the arrow here, so
 * "layer 2" (blocks.1.hook_resid_post) carries it. Block 2's attention copies the last x into
 * 15..22, and its MLP turns (x, τ) into the answer, which the unembedding reads. With no labels
 * (a zero-shot prompt) the arrow attends to itself and τ stays 0, so no answer is written.
 *
 * So θ_2 (τ = ±1) written into a zero-shot arrow gives the right answer for any x_q; θ_0 and θ_1
 * hold no τ; θ_3 already holds the answer for the demo prompts' own dummy queries, not x_q.
 *
 * `copyBlock: 0` moves the query copy from block 2's attention to block 0's (block 2 keeps only
 * its MLP): the mechanism the first study found in trained models. The arrow then holds x_q from
 * layer 1 on and nothing reads x_q again, so θ_2 carries the dummy query and fails on x_q.
 *
 * LayerNorm: BIG dominates the variance, and COMP keeps the other dimensions summing to zero, so
 * the mean is exactly M/D and σ is constant to ~1e-5: with gain σ₀ and bias M/D on the others, every
 * LayerNorm passes them through unchanged.
 */
import { Graph } from '../../src/graph/index.js';
import { type ModelConfig, resolveModelConfig } from '../../src/model/config.js';
import { declareParams } from '../../src/model/transformer.js';
import { type PermutationTask, type TaskConfig, resolveTaskConfig } from '../../src/tasks/index.js';

const D = 32;
const [ARROW, SEP, BIG, XPOS, LPOS, REC, TAU, Q, ANS, COMP] = [8, 9, 10, 11, 12, 13, 14, 15, 23, 31];
const M = 1000;

export const handTasks: PermutationTask[] = [
  { id: 0, family: 'permutation', name: 'low', params: { perm: [0, 1, 2, 3, 0, 1, 2, 3] } },
  { id: 1, family: 'permutation', name: 'high', params: { perm: [4, 5, 6, 7, 4, 5, 6, 7] } },
];

export function handTaskConfig(): TaskConfig {
  return resolveTaskConfig({ kind: 'discrete', vocab: 8, demos: { min: 4, max: 4 }, heldoutTasks: 2, discrete: { families: ['permutation'], permutations: 4 } });
}

export function handModel(options: { copyBlock?: 0 | 2 } = {}): { cfg: ModelConfig; params: Map<string, Float32Array> } {
  const copy = `blocks.${options.copyBlock ?? 2}.attn`;
  const cfg = resolveModelConfig({ layers: 3, dModel: D, heads: 1, dMlp: 16, maxSeq: 24, vocab: 10 });
  const g = new Graph('float32');
  declareParams(g, cfg, 0);
  const params = new Map(g.params.map((p) => [p.value.name, new Float32Array(p.data.length)]));
  const at = (name: string, cols: number) => {
    const data = params.get(name)!;
    return (r: number, c: number, v: number) => (data[r * cols + c] = v);
  };
  // Writes `writes` into row r of a [rows, D] matrix and balances COMP.
  const row = (name: string, r: number, writes: Record<number, number>) => {
    const set = at(name, D);
    let sum = 0;
    for (const [c, v] of Object.entries(writes)) {
      set(r, Number(c), v);
      if (Number(c) !== BIG) sum += v;
    }
    set(r, COMP, -sum);
  };

  for (let s = 0; s < 8; s++) row('embed.W_E', s, { [s]: 1, [BIG]: M });
  row('embed.W_E', 8, { [ARROW]: 1, [BIG]: M });
  row('embed.W_E', 9, { [SEP]: 1, [BIG]: M });
  for (let p = 0; p < cfg.maxSeq; p++) row('pos_embed.W_pos', p, { [XPOS]: p % 4 === 0 ? 1 : 0, [LPOS]: p % 4 === 2 ? 1 : 0, [REC]: p / 8 });

  const sigma0 = (M * Math.sqrt(D - 1)) / D;
  for (const ln of ['blocks.0.ln1', 'blocks.0.ln2', 'blocks.1.ln1', 'blocks.1.ln2', 'blocks.2.ln1', 'blocks.2.ln2', 'ln_final']) {
    const w = params.get(`${ln}.w`)!;
    const b = params.get(`${ln}.b`)!;
    for (let i = 0; i < D; i++) if (i !== BIG && i !== COMP) [w[i], b[i]] = [sigma0, M / D];
  }

  // Block 1: the arrow reads the labels' high/low sign into τ; with no labels it attends to itself.
  const sq = Math.sqrt(D); // cancels the 1/√d_head score scale
  at('blocks.1.attn.W_Q', D)(ARROW, 0, 30 * sq);
  at('blocks.1.attn.W_K', D)(LPOS, 0, 1);
  at('blocks.1.attn.W_K', D)(ARROW, 0, 0.5);
  for (let s = 0; s < 8; s++) at('blocks.1.attn.W_V', D)(s, 0, s >= 4 ? 1 : -1);
  row('blocks.1.attn.W_O', 0, { [TAU]: 1 });

  // Block 2 (or 0): the arrow copies the last x (x positions first, then recency) into Q..Q+7.
  at(`${copy}.W_Q`, D)(ARROW, 0, sq);
  at(`${copy}.W_K`, D)(XPOS, 0, 100);
  at(`${copy}.W_K`, D)(REC, 0, 30);
  for (let s = 0; s < 8; s++) {
    at(`${copy}.W_V`, D)(s, s, 1);
    row(`${copy}.W_O`, s, { [Q + s]: 1 });
  }
  // ... and its MLP has one unit per (x, task sign) that fires only when both hold.
  const c = 20;
  for (let x = 0; x < 8; x++) {
    for (const [ti, t] of [[0, -1], [1, 1]]) {
      const j = 2 * x + ti;
      at('blocks.2.mlp.W_in', 16)(Q + x, j, c);
      at('blocks.2.mlp.W_in', 16)(TAU, j, c * t);
      params.get('blocks.2.mlp.b_in')![j] = -1.5 * c;
      const y = handTasks[ti].params.perm[x];
      row('blocks.2.mlp.W_out', j, { [ANS + y]: 0.5 });
    }
  }
  for (let y = 0; y < 8; y++) at('unembed.W_U', 10)(ANS + y, y, 10);
  return { cfg, params };
}
