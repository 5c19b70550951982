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

/** One parameter's slot in the optimizer: its value, gradient and Adam moments. */
export interface AdamSlot {
  readonly name: string;
  readonly param: Value;
  readonly grad: Value;
  readonly m: Value;
  readonly v: Value;
  readonly decay: boolean;
}

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
 * Adds the AdamW update to `g` and marks the updated parameters and moments as outputs named
 * `updated.<name>`, plus `grad_norm` (before clipping).
 */
export function addAdamW(g: Graph, slots: readonly AdamSlot[], s: AdamScalars, c: OptimizerConfig): void {
  g.scope('adamw', () => {
    const sq = slots.map((slot) => op.reduceSum(op.mul(slot.grad, slot.grad), [...slot.grad.shape.keys()]));
    const norm = op.sqrt(op.sum(sq));
    g.output(norm, 'grad_norm');
    const scale = c.clipNorm > 0 ? op.where(op.greater(norm, c.clipNorm), op.div(c.clipNorm, norm), 1) : null;
    for (const slot of slots) {
      const grad = scale ? op.mul(slot.grad, scale) : slot.grad;
      const m = op.add(op.mul(slot.m, c.beta1), op.mul(grad, 1 - c.beta1));
      const v = op.add(op.mul(slot.v, c.beta2), op.mul(op.mul(grad, grad), 1 - c.beta2));
      let step = op.div(op.mul(m, s.c1), op.add(op.sqrt(op.mul(v, s.c2)), c.eps));
      if (slot.decay && c.weightDecay > 0) step = op.add(step, op.mul(slot.param, c.weightDecay));
      g.output(op.sub(slot.param, op.mul(step, s.lr)), stateName.updated(slot.name));
      g.output(m, stateName.updated(stateName.m(slot.name)));
      g.output(v, stateName.updated(stateName.v(slot.name)));
    }
  });
}
