/**
 * AdamW as graph ops: the optimizer model. It is built into the same graph as the loss for a fused
 * train step, or into a graph of its own (the training-artifact boundary): the same function does both.
 */
import { type Graph, type Value, op } from '../graph/index.js';
import { ConfigError } from '../errors.js';
import { oneOf, resolveConfig } from '../util/config.js';

export interface OptimizerConfig {
  /** Peak learning rate. */
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (AdamW), applied to weight matrices only, not to biases or LayerNorm gains. */
  weightDecay: number;
  /** Clip the global gradient norm to this value; 0 turns clipping off. */
  clipNorm: number;
  /** 'constant', or 'cosine': linear warmup, then cosine decay to minLrRatio·lr. */
  schedule: 'constant' | 'cosine';
  warmupSteps: number;
  minLrRatio: number;
}

export const OPTIMIZER_DEFAULTS: Readonly<OptimizerConfig> = Object.freeze({
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  clipNorm: 1,
  schedule: 'cosine',
  warmupSteps: 100,
  minLrRatio: 0.1,
});

export function resolveOptimizerConfig(user: unknown): OptimizerConfig {
  const c = resolveConfig(OPTIMIZER_DEFAULTS, user, 'optimizer');
  oneOf(c.schedule, ['constant', 'cosine'], 'optimizer.schedule');
  if (c.lr <= 0) throw new ConfigError(`must be positive, got ${c.lr}`, 'optimizer.lr');
  return c;
}

/** The learning rate at `step` (0-based) of `totalSteps`. */
export function learningRate(c: OptimizerConfig, step: number, totalSteps: number): number {
  if (c.schedule === 'constant') return c.lr;
  if (step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  const progress = Math.min(1, (step - c.warmupSteps) / Math.max(1, totalSteps - c.warmupSteps));
  return c.lr * (c.minLrRatio + (1 - c.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** One parameter's slot in the optimizer: its value and gradient. */
export interface AdamSlot {
  readonly name: string;
  readonly param: Value;
  readonly grad: Value;
  readonly decay: boolean;
}

/**
 * Where each parameter sits in the one vector the update runs on: decayed parameters first, so
 * that weight decay applies to a prefix.
 */
export interface FlatLayout {
  readonly entries: readonly { readonly name: string; readonly offset: number; readonly size: number; readonly shape: readonly number[] }[];
  readonly size: number;
  /** Length of the decayed prefix. */
  readonly decayed: number;
}

export function flatLayout(params: readonly { name: string; shape: readonly number[]; decay: boolean }[], c: OptimizerConfig): FlatLayout {
  const decays = (p: { decay: boolean }) => p.decay && c.weightDecay > 0;
  const order = [...params.filter(decays), ...params.filter((p) => !decays(p))];
  let offset = 0;
  let decayed = 0;
  const entries = order.map((p) => {
    const size = p.shape.reduce((n, d) => n * d, 1);
    const e = { name: p.name, offset, size, shape: p.shape };
    offset += size;
    if (decays(p)) decayed = offset;
    return e;
  });
  return { entries, size: offset, decayed };
}

/**
 * How the moments enter and leave the optimizer graph: one input and output per parameter
 * (`adam.m.<name>`, as ONNX Runtime's training artifacts have them), or one vector each
 * (`adam.flat.m`, `adam.flat.v`, in `flatLayout` order; the updated parameters then leave as the
 * vector `updated.flat.params` too), which saves the fused step a Reshape per tensor and feed.
 */
export type MomentsIO = 'per-parameter' | 'flat';

/** The names of the flat vectors (io 'flat'); their outputs are `updated.` and the name. */
export const FLAT = { params: 'flat.params', m: 'adam.flat.m', v: 'adam.flat.v' } as const;

/** Scalar inputs fed each step: the learning rate and Adam's bias corrections 1/(1−βᵗ). */
export interface AdamScalars {
  readonly lr: Value;
  readonly c1: Value;
  readonly c2: Value;
}

export const stateName = {
  m: (param: string) => `adam.m.${param}`,
  v: (param: string) => `adam.v.${param}`,
  grad: (param: string) => `grad.${param}`,
  updated: (name: string) => `updated.${name}`,
};

export function adamScalars(g: Graph): AdamScalars {
  return { lr: g.input('lr', g.floatType, []), c1: g.input('adam.c1', g.floatType, []), c2: g.input('adam.c2', g.floatType, []) };
}

/** The host-side values of the scalars for 1-based step `t`. */
export function adamScalarValues(c: OptimizerConfig, t: number, lr: number): { lr: number; c1: number; c2: number } {
  return { lr, c1: 1 / (1 - c.beta1 ** t), c2: 1 / (1 - c.beta2 ** t) };
}

/**
 * Adds the AdamW update to `g`, with its moments' inputs and outputs laid out as `io` says, and
 * `grad_norm` (before clipping). Per parameter, the updated tensors are outputs `updated.<name>`.
 *
 * The update runs on one vector that holds every parameter, so it is about twenty ops however
 * many parameters there are: per parameter it was eighteen, 1390 nodes for the bench's 4-layer
 * model, whose per-node cost made them 12 ms of a 170 ms step.
 */
export function addAdamW(g: Graph, slots: readonly AdamSlot[], s: AdamScalars, c: OptimizerConfig, io: MomentsIO): void {
  g.scope('adamw', () => {
    const layout = flatLayout(slots.map((x) => ({ name: x.name, shape: x.param.shape as number[], decay: x.decay })), c);
    const slotOf = new Map(slots.map((x) => [x.name, x]));
    const order = layout.entries.map((e) => slotOf.get(e.name)!);
    const flat = (xs: readonly Value[]) => op.concat(xs.map((x) => op.reshape(x, [-1])), 0);
    const moment = (kind: 'm' | 'v') =>
      io === 'flat' ? g.input(FLAT[kind], g.floatType, [layout.size]) : flat(order.map((x) => g.input(stateName[kind](x.name), g.floatType, x.param.shape)));
    const [param, grad0, m0, v0] = [flat(order.map((x) => x.param)), flat(order.map((x) => x.grad)), moment('m'), moment('v')];

    const norm = op.sqrt(op.reduceSum(op.mul(grad0, grad0), [0]));
    g.output(norm, 'grad_norm');
    const grad = c.clipNorm > 0 ? op.mul(grad0, op.where(op.greater(norm, c.clipNorm), op.div(c.clipNorm, norm), 1)) : grad0;
    const m = op.add(op.mul(m0, c.beta1), op.mul(grad, 1 - c.beta1));
    const v = op.add(op.mul(v0, c.beta2), op.mul(op.mul(grad, grad), 1 - c.beta2));
    let step = op.div(op.mul(m, s.c1), op.add(op.sqrt(op.mul(v, s.c2)), c.eps));
    if (layout.decayed > 0) {
      const rest = layout.size - layout.decayed;
      const decay = op.mul(op.slice(param, [0], [layout.decayed], [0]), c.weightDecay);
      step = op.add(step, rest > 0 ? op.concat([decay, op.expand(op.constLike(param, 0), [rest])], 0) : decay);
    }
    const updated = op.sub(param, op.mul(step, s.lr));

    if (io === 'flat') {
      g.output(updated, stateName.updated(FLAT.params));
      g.output(m, stateName.updated(FLAT.m));
      g.output(v, stateName.updated(FLAT.v));
      return;
    }
    // Back to one output per parameter, named as the inputs they replace.
    const unflatten = (x: Value, name: (param: string) => string) => {
      const parts = g.apply('Split', [x, op.int64s(g, layout.entries.map((e) => e.size))], { axis: 0 });
      layout.entries.forEach((e, i) => g.output(g.apply('Reshape', [parts[i], op.int64s(g, e.shape)], {}, { outputNames: [stateName.updated(name(e.name))] })[0]));
    };
    unflatten(updated, (name) => name);
    unflatten(m, stateName.m);
    unflatten(v, stateName.v);
  });
}
