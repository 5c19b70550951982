/**
 * The graphs attribution patching runs (the whole estimate in one graph, with the metric's gradient
 * from tvlens's own autodiff; and the activations at every hook, for exact patching and mean
 * ablation), the metric's inputs, and the activations it reads.
 */
import type { GraphBackend } from '../backend/graph.js';
import { range } from '../backend/backend.js';
import { Graph, type Value, gradients, op } from '../graph/index.js';
import { hookPoint, residualAtLayer } from '../model/hooks.js';
import { modelInputs } from '../model/inputs.js';
import { Transformer, blockMlp, declareParams, finalNorm, lastPosition, unembed } from '../model/transformer.js';
import type { PromptPair } from './patching.js';
/** Every hook activation the attribution reads, per block, [B, T, width] (z: [B, T, H, dh]). */
export interface Activations {
  /** resid[ℓ] for ℓ = 0..L (TV convention), [B, T, D]. */
  readonly resid: Float32Array[];
  readonly attnOut: Float32Array[];
  readonly mlpOut: Float32Array[];
  readonly z: Float32Array[];
  /** The output at the last position [B, O]. */
  readonly out: Float32Array;
}

export type ActivationName = 'resid' | 'attnOut' | 'mlpOut' | 'z';
export const ACTIVATIONS: readonly ActivationName[] = ['resid', 'attnOut', 'mlpOut', 'z'];

/** The hook value of one activation at layer `l` of a forward result. */
function hookValue(hooks: ReadonlyMap<string, Value>, name: ActivationName, l: number): Value {
  const hook =
    name === 'resid' ? residualAtLayer(l) : name === 'attnOut' ? hookPoint('hook_attn_out', l) : name === 'mlpOut' ? hookPoint('hook_mlp_out', l) : hookPoint('attn.hook_z', l);
  return hooks.get(hook.name)!;
}

/** The forward pass with every residual, attn_out, mlp_out and z as outputs (`act.*`), and `out.last`. */
export function activationGraph(cfg: GraphBackend['cfg']): Graph {
  const g = new Graph('float32');
  const { output, hooks } = new Transformer(cfg, declareParams(g, cfg, null)).forward(modelInputs(g, cfg));
  for (const { key, name, l } of activationKeys(cfg)) g.output(hookValue(hooks, name, l), `act.${key}`);
  g.output(lastPosition(output), 'out.last');
  return g;
}


/**
 * Where the patch values come from: the other run's own activations (denoising, noising), or inputs
 * `source.<activation>` (mean ablation: the mean of the base run's, which a slice of prompts cannot
 * compute alone).
 */
export type SourceKind = 'other' | 'given';

/**
 * The whole attribution in one graph, with nothing large coming out. Two forward passes over the
 * same weights, the other run (`other.tokens`, or `other.inputs` and `other.markers`) and the base
 * run, and the gradient at every activation of the base run's metric
 *
 *   metric = Σ_n Σ_j lin[n,j]·o[n,j] + quad[n,j]·o[n,j]²     (o the output at the last position).
 *
 * A logit difference is lin = ±1 at two tokens; −(o − t)²/O is lin = 2t/O, quad = −1/O (plus a
 * constant). Where a prompt's wrong token is the corrupted run's favourite among the others
 * (`metric.undecided` 1, `metric.pick` −1e9 at the correct token), the graph picks it, so no extra
 * pass is needed: lin −= one-hot(argmax(o_corrupted + pick)), as `metric.picked` [B, O]. The
 * weights are constants to the gradient; nodes no output reads (their gradients) are dropped.
 * Per activation, per prompt and cell (a position, and a head for z), the graph returns
 *
 *   dot.<activation>     Σ over the cell's width of (source − base) · ∂metric/∂base   [B, T(, H)]
 *   delta2.<activation>  ‖source − base‖² over the cell's width                      [B, T(, H)]
 *   base2.<activation>   ‖base‖² over the cell's width (with delta2, the patch's size)
 *
 * and `out.last`, `other.out.last` [B, O] and `metric.picked`. The corrupted run is the base run or
 * the other one (`corrupted`). Every output leads with the batch axis, so a run may go in slices
 * of prompts.
 */
export function attributionGraph(cfg: GraphBackend['cfg'], source: SourceKind, corrupted: 'base' | 'other'): Graph {
  const g = new Graph('float32');
  const O = cfg.output === 'logits' ? cfg.vocab : cfg.dOut;
  const params = declareParams(g, cfg, null);
  const base = new Transformer(cfg, params).forward(modelInputs(g, cfg));
  const other = new Transformer(cfg, params).forward(modelInputs(g, cfg, 'seq', 'other.'));
  // The metric reads the last position only, so the base run's last MLP and read-out run again on
  // that one row for it: the backward pass then skips them at every other position, where the
  // gradient is zero. The full-width values still give the activations.
  const L = cfg.layers;
  const readout = (x: Value) => op.reshape(unembed(params, finalNorm(cfg, params, x)), [0, -1]); // [B, O]
  const midLast = op.lastAlong(base.hooks.get(hookPoint('hook_resid_mid', L - 1).name)!, 1);
  const mlpLast = blockMlp(cfg, params, L - 1, midLast);
  const postLast = op.add(midLast, mlpLast);
  const [last, otherLast] = [readout(postLast), readout(op.lastAlong(hookValue(other.hooks, 'resid', L), 1))];
  g.output(last, 'out.last');
  g.output(otherLast, 'other.out.last');
  const keys = activationKeys(cfg);
  const input = (name: string, width: number | string) => g.input(`metric.${name}`, 'float32', ['batch', width]);
  const [given, quad, pick, undecided] = [input('lin', O), input('quad', O), input('pick', O), input('undecided', 1)];
  const masked = op.add(op.detach(corrupted === 'base' ? last : otherLast), pick);
  const picked = op.mul(op.cast(op.equal(masked, op.reduceMax(masked, [1], true)), 'float32'), undecided); // [B, O]
  g.output(picked, 'metric.picked');
  const lin = op.detach(op.sub(given, picked));
  const metric = op.reduceSum(op.add(op.mul(last, lin), op.mul(op.mul(last, last), quad)), [0, 1]); // scalar
  const at = keys.map(({ name, l }) => hookValue(base.hooks, name, l));
  // The last block's mlp_out and the last residual reach the metric at the last row alone.
  const rowOnly = (name: ActivationName, l: number) => (name === 'mlpOut' && l === L - 1 ? mlpLast : name === 'resid' && l === L ? postLast : null);
  const grads = gradients(metric, keys.map(({ name, l }, i) => rowOnly(name, l) ?? at[i]));
  keys.forEach(({ key, name, l }, i) => {
    const a = at[i];
    const src = source === 'other' ? op.detach(hookValue(other.hooks, name, l)) : g.input(`source.${key}`, 'float32', a.shape);
    const delta = op.sub(src, op.detach(a));
    const delta2 = op.reduceSumSquare(delta, [-1]);
    // A last-row gradient: zero at every earlier position (a [B, T−1] of zeros from delta2's shape).
    const dot = rowOnly(name, l)
      ? op.concat([op.mul(op.slice(delta2, [0], [-1], [1]), 0), op.reduceSum(op.mul(op.lastAlong(delta, 1), grads[i]), [-1])], 1)
      : op.reduceSum(op.mul(delta, grads[i]), [-1]);
    g.output(dot, `dot.${key}`);
    g.output(delta2, `delta2.${key}`);
    g.output(op.reduceSumSquare(op.detach(a), [-1]), `base2.${key}`);
  });
  return pruned(g);
}

/** Every activation the attribution reads, by its key `<name>.<layer>`. */
function activationKeys(cfg: GraphBackend['cfg']): { key: string; name: ActivationName; l: number }[] {
  return ACTIVATIONS.flatMap((name) => range(name === 'resid' ? cfg.layers + 1 : cfg.layers).map((l) => ({ key: `${name}.${l}`, name, l })));
}

/** Drops the nodes no graph output depends on. */
function pruned(g: Graph): Graph {
  const live = new Set<Value>(g.outputs);
  const keep = g.nodes.map(() => false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const node = g.nodes[i];
    if (!node.outputs.some((o) => live.has(o))) continue;
    keep[i] = true;
    node.inputs.forEach((x) => live.add(x));
  }
  const kept = g.nodes.filter((_, i) => keep[i]);
  g.nodes.splice(0, g.nodes.length, ...kept);
  return g;
}

/**
 * Per-prompt metric weights, matching patching.ts's logit difference: +1 at the correct token, −1 at
 * the wrong one; where the wrong one is the corrupted run's favourite among the others, `undecided`
 * is 1 and the graph picks it from `pick` (or `resolve` does, from a corrupted output). Regression:
 * −(o − t)²/O as lin and quad.
 */
export interface Metric {
  readonly lin: Float32Array;
  readonly quad: Float32Array;
  readonly pick: Float32Array;
  readonly undecided: Float32Array;
  /** Fixes the wrong tokens from `picked` [B, O] (the graph's one-hot pick) or from the corrupted run's output. */
  readonly resolve: (picked: Float32Array, fromOutput: boolean) => void;
  /** The metric per prompt of an output [B, O]; its mean over prompts is patching's `logitDiff`. */
  readonly of: (out: Float32Array) => Float64Array;
}

export function metricFor(pair: PromptPair, O: number): Metric {
  const B = pair.clean.batch;
  const lin = new Float32Array(B * O);
  const quad = new Float32Array(B * O);
  const pick = new Float32Array(B * O);
  const undecided = new Float32Array(B);
  if (pair.clean.kind === 'tokens') {
    const wrong = [...pair.wrong];
    pair.correct.forEach((c, n) => {
      lin[n * O + c] += 1;
      if (Number.isNaN(wrong[n])) {
        undecided[n] = 1;
        pick[n * O + c] = -1e9;
      } else lin[n * O + wrong[n]] -= 1;
    });
    const resolve = (src: Float32Array, fromOutput: boolean) => {
      for (let n = 0; n < B; n++) {
        if (!undecided[n]) continue;
        const c = pair.correct[n];
        const row = src.subarray(n * O, (n + 1) * O);
        // As patching.ts: the corrupted run's favourite among the other tokens (first of any tie).
        let best = c === 0 ? 1 : 0;
        for (let j = 0; j < O; j++) if (j !== c && row[j] > row[best]) best = j;
        wrong[n] = best;
        if (fromOutput) {
          lin[n * O + best] -= 1;
          undecided[n] = 0;
          pick[n * O + c] = 0;
        }
      }
    };
    return { lin, quad, pick, undecided, resolve, of: (out) => Float64Array.from(range(B), (n) => out[n * O + pair.correct[n]] - out[n * O + wrong[n]]) };
  }
  const targets = pair.clean.targets as Float32Array; // vectors: [B, T, dOut]
  const target = (n: number, j: number) => targets[(n * pair.clean.seq + pair.clean.queryPos[n]) * O + j];
  for (let n = 0; n < B; n++) {
    for (let j = 0; j < O; j++) {
      lin[n * O + j] = (2 * target(n, j)) / O;
      quad[n * O + j] = -1 / O;
    }
  }
  return {
    lin,
    quad,
    pick,
    undecided,
    resolve: () => {},
    of: (out) =>
      Float64Array.from(range(B), (n) => {
        let se = 0;
        for (let j = 0; j < O; j++) se += (out[n * O + j] - target(n, j)) ** 2;
        return -se / O;
      }),
  };
}

/** The mean over prompts of every activation, for every prompt (mean ablation's source). */
export function meanActivations(a: Activations, B: number): Activations {
  const mean = (x: Float32Array) => {
    const per = x.length / B;
    const m = new Float64Array(per);
    for (let n = 0; n < B; n++) for (let i = 0; i < per; i++) m[i] += x[n * per + i];
    const out = new Float32Array(x.length);
    for (let n = 0; n < B; n++) for (let i = 0; i < per; i++) out[n * per + i] = m[i] / B;
    return out;
  };
  return { resid: a.resid.map(mean), attnOut: a.attnOut.map(mean), mlpOut: a.mlpOut.map(mean), z: a.z.map(mean), out: a.out };
}

/** Pearson's r; null when either side is constant. */
