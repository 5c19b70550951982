/**
 * TVP-loss (Yang et al. 2025): L = L_ICL + λ·L_TVP, in ONE graph holding two forward passes that
 * share weights.
 *
 *   P = x₁ → y₁ , … , x_k → y_k , x′ →     few-shot prompt; its ICL loss is L_ICL
 *   h = P's residual at layer ℓ, at the source position (the last arrow by default)
 *   Q = x_q →                              zero-shot prompt of the same task, whose arrow state at
 *                                          layer ℓ is replaced by h; L_TVP is the loss of its answer
 *
 * Gradients flow through both passes, and through h into P unless h is detached.
 */
import { ConfigError } from '../errors.js';
import { Graph, type Value, op } from '../graph/index.js';
import { residualAtLayer } from '../model/hooks.js';
import { Transformer, declareParams } from '../model/transformer.js';
import type { RunConfig } from '../train/config.js';
import { modelInputs } from '../model/inputs.js';
import { lossOf } from '../train/icl-loss.js';
import type { LossProgram } from '../train/step.js';
import { resolveConfig } from '../util/config.js';
import { promptLength } from '../tasks/index.js';

export interface TvpConfig {
  /** ℓ in the task-vector convention (0 = embeddings, ℓ = output of block ℓ); -1 means the middle layer. */
  layer: number;
  /** λ, the weight of L_TVP. */
  lambda: number;
  /** Position in P that h is read from: -1 is P's last arrow. */
  position: number;
  /** Stop gradients into P through h (h acts as a constant target for Q). */
  detach: boolean;
  /** Average h over groups of this many prompts of the same task (1 = no averaging). Must divide the batch size. */
  average: number;
  /** Demos k in P; 0 keeps the task config's range. */
  demos: number;
}

export const TVP_DEFAULTS: Readonly<TvpConfig> = Object.freeze({ layer: -1, lambda: 1, position: -1, detach: false, average: 1, demos: 0 });

export function resolveTvpConfig(user: unknown, run: RunConfig): TvpConfig {
  const c = resolveConfig(TVP_DEFAULTS, user, 'tvp');
  const L = run.model.layers;
  if (c.layer === -1) c.layer = Math.ceil(L / 2);
  if (!Number.isInteger(c.layer) || c.layer < 0 || c.layer > L) throw new ConfigError(`layer ${c.layer} is out of range: this model has layers 0..${L} (0 = embeddings)`, 'tvp.layer');
  if (c.lambda < 0) throw new ConfigError(`must be ≥ 0, got ${c.lambda}`, 'tvp.lambda');
  if (!Number.isInteger(c.average) || c.average < 1 || run.train.batchSize % c.average !== 0) {
    throw new ConfigError(`must be a positive divisor of train.batchSize ${run.train.batchSize}, got ${c.average}`, 'tvp.average');
  }
  if (!Number.isInteger(c.demos) || c.demos < 0) throw new ConfigError(`must be a non-negative integer (0: the task config's range), got ${c.demos}`, 'tvp.demos');
  if (c.demos > 0 && promptLength(run.task, c.demos) > run.model.maxSeq) {
    throw new ConfigError(`prompts with ${c.demos} demos are ${promptLength(run.task, c.demos)} positions long, more than model.maxSeq ${run.model.maxSeq}`, 'tvp.demos');
  }
  // h is read at an absolute position of P: it must lie inside the shortest P, or be -1 (P's last arrow).
  const shortest = promptLength(run.task, c.demos || run.task.demos.min);
  if (!Number.isInteger(c.position) || c.position < -1 || c.position >= shortest) {
    throw new ConfigError(`must be -1 (the last arrow) or a position 0..${shortest - 1} of the few-shot prompt, got ${c.position}`, 'tvp.position');
  }
  return c;
}

/** Feed names of the TVP graph beyond the model's own (P uses the plain names, Q the `q.` ones). */
export const TVP_INPUTS = { sourcePos: 'tvp.source_pos', groupMean: 'tvp.group_mean', patchPos: 'q.patch_pos' } as const;

export function tvpLossProgram(run: RunConfig, tvp: TvpConfig, seed: number | null, floatType: 'float32' | 'float64' = 'float32'): LossProgram {
  const g = new Graph(floatType);
  const model = new Transformer(run.model, declareParams(g, run.model, seed));
  const at = residualAtLayer(tvp.layer).name;

  // P: the few-shot pass. Record its residual at layer ℓ on the way.
  let resid: Value | null = null;
  const p = model.forward(modelInputs(g, run.model), {
    intervene: (hook, x) => {
      if (hook.name === at) resid = x;
      return x;
    },
  });
  const lossIcl = lossOf(p.output, run.model);
  let h = g.scope('tvp', () => pickRows(resid!, g.input(TVP_INPUTS.sourcePos, 'int64', ['batch']))); // [batch, d_model]
  if (tvp.average > 1) h = op.matmul(g.input(TVP_INPUTS.groupMean, floatType, ['batch', 'batch']), h);
  if (tvp.detach) h = op.detach(h);

  // Q: the zero-shot pass, its arrow state at layer ℓ replaced by h.
  const patchPos = g.input(TVP_INPUTS.patchPos, 'int64', ['batch']);
  const q = model.forward(modelInputs(g, run.model, 'seq_q', 'q.'), {
    intervene: (hook, x) => (hook.name === at ? g.scope('tvp', () => replaceRows(x, patchPos, h)) : x),
  });
  const lossTvp = lossOf(q.output, run.model, 'seq_q', 'q.');
  g.output(lossIcl, 'loss_icl');
  g.output(lossTvp, 'loss_tvp');
  return { graph: g, loss: op.add(lossIcl, op.mul(lossTvp, tvp.lambda)) };
}

/** One-hot of per-row positions over a sequence axis: [batch, pos, 1], in x's float type. */
function positionMask(x: Value, positions: Value): Value {
  const seq = op.arange(op.dimOf(x, 1), x.shape[1]);
  return op.unsqueeze(op.cast(op.equal(op.unsqueeze(seq, [0]), op.unsqueeze(positions, [1])), x.dtype), [2]);
}

/** x[b, positions[b], :] for each b, as a differentiable masked sum: [batch, d_model]. */
export function pickRows(x: Value, positions: Value): Value {
  return op.reduceSum(op.mul(x, positionMask(x, positions)), [1]);
}

/** x with x[b, positions[b], :] replaced by rows[b]. */
export function replaceRows(x: Value, positions: Value, rows: Value): Value {
  const mask = positionMask(x, positions); // [batch, pos, 1]
  return op.add(op.mul(x, op.sub(1, mask)), op.mul(op.unsqueeze(rows, [1]), mask));
}
