/**
 * Layers built from primitives. They need no gradient rules of their own: autodiff goes through
 * the primitives they are made of.
 */
import type { Value } from '../ir.js';
import { add, div, max, mul, pow, sub, tanh } from './elementwise.js';
import { softmaxCrossEntropy } from './nn.js';
import { reduceSum } from './reduce.js';

/**
 * GELU, tanh form (GPT-2's). The erf form has no float64 kernel in ONNX Runtime's CPU build, so it
 * could not be gradient-checked in float64; the two differ by under 1e-3.
 */
export function gelu(x: Value): Value {
  const inner = mul(add(x, mul(pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(mul(x, 0.5), add(tanh(inner), 1));
}

/**
 * Mean cross-entropy of `logits` [..., V] against integer `targets` [...], counting each position
 * by `weights` [...] (1 at answer positions, 0 elsewhere): Σ w·nll / Σ w.
 */
export function crossEntropy(logits: Value, targets: Value, weights: Value): Value {
  return weightedMean(softmaxCrossEntropy(logits, targets), weights);
}

/** Mean squared error over the last axis, averaged over positions by `weights` as above. */
export function meanSquaredError(predictions: Value, targets: Value, weights: Value): Value {
  const d = sub(predictions, targets);
  const perPosition = div(reduceSum(mul(d, d), [-1]), predictions.shape[predictions.rank - 1] as number);
  return weightedMean(perPosition, weights);
}

/** Σ w·x / max(Σ w, tiny), over every axis. */
export function weightedMean(x: Value, weights: Value): Value {
  const axes = [...x.shape.keys()];
  const total = reduceSum(weights, axes);
  return div(reduceSum(mul(x, weights), axes), max(total, 1e-12));
}
