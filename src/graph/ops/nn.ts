/** Normalisations over the last axis. Their rules are written out rather than derived, for speed. */
import { ShapeError } from '../../errors.js';
import type { Value } from '../ir.js';
import { defineOp } from '../registry.js';
import { fmt, normAxis } from '../shapes.js';
import { apply1 } from './apply.js';
import { reshapeLike } from './constants.js';
import { add, div, DTYPE_OF_ONNX, exp, mul, neg, ONNX_DTYPE, sqrt, sub } from './elementwise.js';
import { reduceMean, reduceSum, unbroadcast } from './reduce.js';
import { reshape, unsqueeze } from './shape.js';

const lastAxis = (x: Value, axis: number, node: string) => {
  if (normAxis(axis, x.rank, node) !== x.rank - 1) throw new ShapeError(`only the last axis is supported, got axis ${axis} of ${fmt(x.shape)}`, node);
};

export const softmax = (x: Value, axis = -1): Value => apply1('Softmax', [x], { axis });
defineOp('Softmax', {
  infer: ([x], { axis }, node) => (lastAxis(x, axis as number, node), [{ dtype: x.dtype, shape: x.shape }]),
  // dx = y ⊙ (gy − Σ gy ⊙ y)
  grad: (gy, { outputs: [y] }) => [mul(y, sub(gy, reduceSum(mul(gy, y), [-1], true)))],
});

export const logSoftmax = (x: Value, axis = -1): Value => apply1('LogSoftmax', [x], { axis });
defineOp('LogSoftmax', {
  infer: ([x], { axis }, node) => (lastAxis(x, axis as number, node), [{ dtype: x.dtype, shape: x.shape }]),
  // dx = gy − softmax(x) Σ gy
  grad: (gy, { outputs: [y] }) => [sub(gy, mul(exp(y), reduceSum(gy, [-1], true)))],
});

/**
 * LayerNorm over the last axis, with gain and bias. The fused ONNX op (opset 17) is used because it
 * is several times faster than the composite, and it also returns the mean and 1/σ its rule needs.
 * Those two come in the op's `stash_type`, float32 by default; ONNX Runtime's CPU build has no
 * kernel with a float64 stash, so for a float64 input the rule recomputes them in float64.
 */
export function layerNorm(x: Value, gain: Value, bias: Value, epsilon = 1e-5): Value {
  return x.graph.apply('LayerNormalization', [x, gain, bias], { axis: -1, epsilon })[0];
}
defineOp('LayerNormalization', {
  floatAttrs: ['epsilon'],
  infer: ([x, gain], { axis, stash_type }, node) => {
    lastAxis(x, axis as number, node);
    if (gain.rank !== 1 || gain.shape[0] !== x.shape[x.rank - 1]) throw new ShapeError(`gain ${fmt(gain.shape)} does not fit input ${fmt(x.shape)}`, node);
    const stat = { dtype: DTYPE_OF_ONNX[(stash_type as number | undefined) ?? ONNX_DTYPE.float32], shape: [...x.shape.slice(0, -1), 1] };
    return [{ dtype: x.dtype, shape: x.shape }, stat, stat];
  },
  // With x̂ = (x − μ)/σ and ĝ = gy ⊙ gain: dx = (ĝ − mean(ĝ) − x̂ ⊙ mean(ĝ ⊙ x̂)) / σ.
  grad: (gy, { inputs: [x, gain, bias], outputs: [, stashedMean, stashedInvStd], attrs }) => {
    let [mean, invStd] = [stashedMean, stashedInvStd];
    if (mean.dtype !== x.dtype) {
      mean = reduceMean(x, [-1], true);
      const d = sub(x, mean);
      invStd = div(1, sqrt(add(reduceMean(mul(d, d), [-1], true), (attrs.epsilon as number | undefined) ?? 1e-5)));
    }
    const xhat = mul(sub(x, mean), invStd);
    const gh = mul(gy, gain);
    const dx = mul(sub(sub(gh, reduceMean(gh, [-1], true)), mul(xhat, reduceMean(mul(gh, xhat), [-1], true))), invStd);
    return [dx, unbroadcast(mul(gy, xhat), gain), unbroadcast(gy, bias)];
  },
});

/**
 * Cross-entropy at each position of `logits` [..., V] against integer `targets` [...] (no
 * reduction): ONNX's SoftmaxCrossEntropyLoss over rows [N, V], which also returns the
 * log-probabilities its rule needs. Fused, its rule is three full-size ops where a log-softmax
 * times a one-hot took nine (they were about a tenth of an imported GPT-2-style backward pass over
 * a 784-token vocabulary). Every target must lie in 0..V−1, also at positions of weight 0.
 */
export function softmaxCrossEntropy(logits: Value, targets: Value): Value {
  const V = logits.shape[logits.rank - 1];
  if (typeof V !== 'number') throw new ShapeError(`cross-entropy needs a known class count, got ${fmt(logits.shape)}`, logits.name);
  if (targets.dtype !== 'int64') throw new ShapeError(`targets ${targets.name} must be int64, got ${targets.dtype}`, targets.name);
  const rows = reshape(logits, [-1, V]);
  const [loss] = logits.graph.apply('SoftmaxCrossEntropyLoss', [rows, reshape(targets, [-1])], { reduction: 'none' });
  return reshapeLike(loss, targets);
}
defineOp('SoftmaxCrossEntropyLoss', {
  infer: ([scores, labels, ...weights], { reduction, ignore_index }, node) => {
    // The rule below has no class weights and no ignored label: refuse them (an imported graph may carry them).
    if (weights.length > 0 || ignore_index !== undefined) throw new ShapeError('class weights and ignore_index are not supported', node);
    if (scores.rank !== 2 || labels.rank !== 1 || reduction !== 'none') throw new ShapeError(`only rows [N, C] with labels [N] and reduction 'none' are supported, got ${fmt(scores.shape)} and ${fmt(labels.shape)}`, node);
    if (labels.dtype !== 'int64') throw new ShapeError(`labels ${labels.name} must be int64, got ${labels.dtype}`, node);
    return [{ dtype: scores.dtype, shape: [scores.shape[0]] }, { dtype: scores.dtype, shape: scores.shape }];
  },
  // d scores = (softmax − onehot(label)) ⊙ gy: the softmax part, then −gy added at each label.
  grad: (gy, { inputs: [, labels], outputs: [, logProb] }) => {
    const g = unsqueeze(gy, [-1]);
    return [apply1('ScatterElements', [mul(exp(logProb), g), unsqueeze(labels, [-1]), neg(g)], { axis: 1, reduction: 'add' }), null];
  },
});
defineOp('ScatterElements', { infer: ([data]) => [{ dtype: data.dtype, shape: data.shape }] });
