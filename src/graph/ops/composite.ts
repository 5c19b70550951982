/**
 * Layers built from primitives. They need no gradient rules of their own: autodiff goes through
 * the primitives they are made of.
 */
import type { Value } from '../ir.js';
import { add, div, max, mul, pow, sigmoid, sub, tanh } from './elementwise.js';
import { softmaxCrossEntropy } from './nn.js';
import { reduceSum } from './reduce.js';

/**
 * GELU, tanh form (GPT-2's). The erf form has no float64 kernel in ONNX Runtime's CPU build, so it
 * could not be gradient-checked in float64; the two differ by under 1e-3.
 *
 * Its gradient is one rule from x and the output alone, so that no node inside is read by the
 * backward pass and ONNX Runtime fuses the eight into one FastGelu kernel in training graphs too, as
 * it does in inference graphs; through the eight nodes' own rules it was 20 ops of 2M floats per block.
 */
export function gelu(x: Value): Value {
  const inner = mul(add(x, mul(pow(x, 3), GELU_A)), GELU_K);
  const half = mul(x, 0.5);
  const s = add(tanh(inner), 1);
  const rule = (gy: Value) => [mul(gy, geluSlope(x, y))];
  const [y] = x.graph.apply('Mul', [half, s], {}, { vjp: { inputs: [x], rule } });
  return y;
}

const GELU_A = 0.044715;
const GELU_K = Math.sqrt(2 / Math.PI);

/**
 * d gelu / dx in its sigmoid form: gelu(x) = x·σ(z) with z = 2k(x + a·x³), so the slope is
 * σ(z) + x·σ(z)·(1 − σ(z))·2k(1 + 3a·x²), where x·σ(z) is gelu's output y, which the backward pass
 * keeps anyway (the next weight's gradient reads it); 11 ops.
 */
function geluSlope(x: Value, y: Value): Value {
  const x2 = mul(x, x);
  const s = sigmoid(mul(x, add(mul(x2, 2 * GELU_K * GELU_A), 2 * GELU_K)));
  const dz = add(mul(x2, 6 * GELU_K * GELU_A), 2 * GELU_K);
  return add(s, mul(mul(y, sub(1, s)), dz));
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
