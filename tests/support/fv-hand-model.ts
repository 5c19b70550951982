/**
 * A 3-block, 2-head transformer with hand-set weights in which ONE known head carries the task,
 * and reads it from the demos' (x, y) *pairs*, so shuffling the labels hides the task from it.
 * Function-vector head ranking (Todd et al.) must put that head, block 1 head 1, first.
 *
 * Tasks as in tv-hand-model.ts: on V = 8 symbols, 'low' y = x mod 4 and 'high' y = 4 + x mod 4.
 * Residual dimensions, D = 48 (d_head 24):
 *
 *   0..7 symbol one-hot · 8 arrow · 9 sep · 10 BIG · 11 x-position flag · 12 label-position flag
 *   13 recency (p/8) · 14 τ · 15..22 the query's x · 23..30 the answer · 31..38 the pair's x (at
 *   its label) · 39 pair fits 'low' · 40 pair fits 'high' · 47 COMP
 *
 * Block 0, head 0: each label position copies its pair's x (the latest x) into 31..38; block 0's
 *   MLP sets 39 or 40 where the label is the task's y for that x (units that fire on x AND y).
 * Block 1, head 1 (the task head): the arrow attends to the label positions and writes
 *   τ = mean(fits high − fits low). Clean demos give τ = ±1; shuffled labels break most pairs, so
 *   |τ| < 1. Block 1 head 0 is all zeros.
 * Block 2, head 0: the arrow copies the last x into 15..22; block 2's MLP writes the answer for
 *   (x, task) only when |τ| = 1 (threshold 1.75 on x + τ·sign). Block 2 head 1 is all zeros.
 *
 * So block 1 head 1's mean output on clean prompts, patched into a shuffled prompt, restores the
 * answer (a large indirect effect); no other head does. Its mean output through its W_O rows is
 * τ = ±1 on dimension 14: added to a zero-shot arrow at layer 0, 1 or 2 it gives the answer.
 *
 * LayerNorm passes everything through unchanged, as in tv-hand-model.ts: BIG dominates the
 * variance, and COMP keeps the other dimensions summing to zero.
 */
import { Graph } from '../../src/graph/index.js';
import { type ModelConfig, resolveModelConfig } from '../../src/model/config.js';
import { declareParams } from '../../src/model/transformer.js';
import { handTaskConfig, handTasks } from './tv-hand-model.js';

export { handTaskConfig as fvHandTaskConfig, handTasks as fvHandTasks };

const D = 48;
const DH = 24;
const [ARROW, BIG, XPOS, LPOS, REC, TAU, Q, ANS, XPREV, FITS_LOW, FITS_HIGH, COMP] = [8, 10, 11, 12, 13, 14, 15, 23, 31, 39, 40, 47];
const SEP = 9;
const M = 1000;
/** The task head: block 1, head 1. */
export const TASK_HEAD = { layer: 1, head: 1 } as const;

export function fvHandModel(): { cfg: ModelConfig; params: Map<string, Float32Array> } {
  const cfg = resolveModelConfig({ layers: 3, dModel: D, heads: 2, dMlp: 32, maxSeq: 24, vocab: 10 });
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
  const sq = Math.sqrt(DH); // cancels the 1/√d_head score scale
  const c = 20;

  // Block 0, head 0: a label position copies the latest x (x positions first, then recency).
  at('blocks.0.attn.W_Q', D)(LPOS, 0, sq);
  at('blocks.0.attn.W_K', D)(XPOS, 0, 100);
  at('blocks.0.attn.W_K', D)(REC, 0, 30);
  for (let s = 0; s < 8; s++) {
    at('blocks.0.attn.W_V', D)(s, s, 1);
    row('blocks.0.attn.W_O', s, { [XPREV + s]: 1 });
  }
  // ... and its MLP: unit (x, task) fires where the pair's x is x and the label is the task's y.
  for (let x = 0; x < 8; x++) {
    for (const t of [0, 1]) {
      const j = 2 * x + t;
      at('blocks.0.mlp.W_in', 32)(XPREV + x, j, c);
      at('blocks.0.mlp.W_in', 32)(handTasks[t].params.perm[x], j, c);
      params.get('blocks.0.mlp.b_in')![j] = -1.75 * c;
      row('blocks.0.mlp.W_out', j, { [t === 0 ? FITS_LOW : FITS_HIGH]: 1 / (0.25 * c) });
    }
  }

  // Block 1, head 1 (columns and W_O rows DH..2·DH−1): the arrow reads the pairs' fit into τ.
  at('blocks.1.attn.W_Q', D)(ARROW, DH, 30 * sq);
  at('blocks.1.attn.W_K', D)(LPOS, DH, 1);
  at('blocks.1.attn.W_K', D)(ARROW, DH, 0.5);
  at('blocks.1.attn.W_V', D)(FITS_LOW, DH, -1);
  at('blocks.1.attn.W_V', D)(FITS_HIGH, DH, 1);
  row('blocks.1.attn.W_O', DH, { [TAU]: 1 });

  // Block 2, head 0: the arrow copies the last x into Q..Q+7.
  at('blocks.2.attn.W_Q', D)(ARROW, 0, sq);
  at('blocks.2.attn.W_K', D)(XPOS, 0, 100);
  at('blocks.2.attn.W_K', D)(REC, 0, 30);
  for (let s = 0; s < 8; s++) {
    at('blocks.2.attn.W_V', D)(s, s, 1);
    row('blocks.2.attn.W_O', s, { [Q + s]: 1 });
  }
  // ... and its MLP answers for (x, task sign) only when |τ| = 1.
  for (let x = 0; x < 8; x++) {
    for (const [ti, t] of [[0, -1], [1, 1]]) {
      const j = 2 * x + ti;
      at('blocks.2.mlp.W_in', 32)(Q + x, j, c);
      at('blocks.2.mlp.W_in', 32)(TAU, j, c * t);
      params.get('blocks.2.mlp.b_in')![j] = -1.75 * c;
      row('blocks.2.mlp.W_out', j, { [ANS + handTasks[ti].params.perm[x]]: 1 / (0.25 * c) });
    }
  }
  for (let y = 0; y < 8; y++) at('unembed.W_U', 10)(ANS + y, y, 10);
  return { cfg, params };
}
