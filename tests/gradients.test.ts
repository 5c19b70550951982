/**
 * Every gradient rule, checked against central finite differences by the one checker in
 * support/gradcheck.ts (float64, |a − n| ≤ 1e-6 · max(1, |a|, |n|), fresh random inputs each run).
 */
import { describe, expect, it } from 'vitest';
import { GradientError } from '../src/errors.js';
import { Graph, differentiableOps, gradients, op, toOnnxBytes, type Value } from '../src/graph/index.js';
import { Session } from '../src/runtime/session.js';
import { awayFromZero, coveredOps, gradcheck, positive, type GradCase, type GradCheckResult } from './support/gradcheck.js';

interface Row extends GradCase {
  /** Extra assertions on the checked result. */
  readonly then?: (r: GradCheckResult) => void;
}

const BROADCASTS: [number[], number[]][] = [
  [[2, 3, 4], [4]],
  [[3, 1], [2, 3, 4]],
  [[2, 3, 4], [1, 3, 1]],
];
const s = (shape: readonly number[]) => `[${shape.join(',')}]`;

/** Lower-triangular causal mask [T, T], row = query, column = key. */
const causal = (T: number) => Array.from({ length: T * T }, (_, i) => (i % T <= Math.floor(i / T) ? 1 : 0));

/** Positions of a [B, T, …] tensor whose [B, T] weight is 0 must get an exactly zero gradient. */
function zeroWhereMasked(grad: Float64Array, weights: readonly number[], inner: number): void {
  weights.forEach((w, p) => {
    const row = Array.from(grad.subarray(p * inner, (p + 1) * inner));
    if (w === 0) expect(row.every((v) => v === 0)).toBe(true);
    else expect(row.some((v) => v !== 0)).toBe(true);
  });
}

const arithmetic: Row[] = BROADCASTS.flatMap(([sa, sb]) => [
  { name: `Add broadcasts ${s(sa)} with ${s(sb)}`, inputs: [{ shape: sa }, { shape: sb }], build: (_g, [a, b]) => op.add(a, b) },
  { name: `Sub broadcasts ${s(sa)} with ${s(sb)}`, inputs: [{ shape: sa }, { shape: sb }], build: (_g, [a, b]) => op.sub(a, b) },
  { name: `Mul broadcasts ${s(sa)} with ${s(sb)}`, inputs: [{ shape: sa }, { shape: sb }], build: (_g, [a, b]) => op.mul(a, b) },
  {
    name: `Div broadcasts ${s(sa)} with ${s(sb)}`,
    inputs: [{ shape: sa }, { shape: sb, sample: awayFromZero }],
    build: (_g, [a, b]) => op.div(a, b),
  },
  {
    name: `Pow broadcasts a positive base ${s(sa)} with an exponent ${s(sb)}`,
    inputs: [{ shape: sa, sample: positive }, { shape: sb }],
    build: (_g, [a, b]) => op.pow(a, b),
  },
  { name: `Max broadcasts ${s(sa)} with ${s(sb)}`, inputs: [{ shape: sa }, { shape: sb }], build: (_g, [a, b]) => op.max(a, b) },
]);

const cases: Row[] = [
  ...arithmetic,
  { name: 'Sum adds three tensors of broadcast shapes', inputs: [{ shape: [2, 3, 4] }, { shape: [4] }, { shape: [3, 1] }], build: (_g, xs) => op.sum(xs) },
  {
    name: 'arithmetic with plain numbers lifts them to constants',
    inputs: [{ shape: [3, 4], sample: positive }],
    build: (_g, [x]) => op.add(op.div(1, x), op.mul(op.sub(2, op.pow(x, 3)), 0.5)),
  },
  {
    name: 'Where broadcasts a [3,1] condition over [2,3,4] and [4] branches',
    inputs: [{ shape: [3, 1], dtype: 'bool', data: [1, 0, 1] }, { shape: [2, 3, 4] }, { shape: [4] }],
    build: (_g, [c, a, b]) => op.where(c, a, b),
  },
  {
    name: 'Where broadcasts a [4] condition over [1,3,1] and [2,3,4] branches',
    inputs: [{ shape: [4], dtype: 'bool', data: [0, 1, 1, 0] }, { shape: [1, 3, 1] }, { shape: [2, 3, 4] }],
    build: (_g, [c, a, b]) => op.where(c, a, b),
  },
  {
    name: 'Where against a constant sends no gradient to unselected positions',
    inputs: [{ shape: [2, 3], dtype: 'bool', data: [1, 0, 0, 1, 1, 0] }, { shape: [2, 3] }],
    build: (_g, [c, x]) => op.where(c, x, -1e9),
    then: (r) => expect(Array.from(r.analytic[1]!, (v) => (v === 0 ? 0 : 1))).toEqual([1, 0, 0, 1, 1, 0]),
  },

  // ---- matrix products
  { name: 'MatMul multiplies [3,4] by [4,5]', inputs: [{ shape: [3, 4] }, { shape: [4, 5] }], build: (_g, [a, b]) => op.matmul(a, b) },
  { name: 'MatMul shares a [4,5] weight across a [2,3,4] batch', inputs: [{ shape: [2, 3, 4] }, { shape: [4, 5] }], build: (_g, [a, b]) => op.matmul(a, b) },
  { name: 'MatMul multiplies batch by batch, [2,3,4] by [2,4,5]', inputs: [{ shape: [2, 3, 4] }, { shape: [2, 4, 5] }], build: (_g, [a, b]) => op.matmul(a, b) },
  { name: 'MatMul broadcasts a [3,4] matrix over a [2,4,5] batch', inputs: [{ shape: [3, 4] }, { shape: [2, 4, 5] }], build: (_g, [a, b]) => op.matmul(a, b) },
  { name: 'MatMul broadcasts batch axes, [2,1,3,4] by [2,4,5]', inputs: [{ shape: [2, 1, 3, 4] }, { shape: [2, 4, 5] }], build: (_g, [a, b]) => op.matmul(a, b) },
  {
    name: 'biases summed over the same rows, and over others, share a row of ones only where the rows agree',
    inputs: [{ shape: ['batch', 3, 4] }, { shape: [4] }, { shape: [4] }, { shape: [5, 4] }, { shape: [4] }],
    dims: { batch: 2 },
    build: (_g, [x, b1, b2, y, b3]) => {
      const h = op.mul(op.add(x, b1), op.tanh(op.add(x, b2))); // two biases over the batch × 3 rows
      return op.add(op.reduceSum(h, [0, 1], false), op.reduceSum(op.mul(op.add(y, b3), 0.5), [0], false)); // one over 5 rows
    },
  },
  {
    name: 'MatMul by the transpose of its second operand, xᵀ (attention\'s keys)',
    inputs: [{ shape: [2, 3, 4] }, { shape: [2, 5, 4] }],
    build: (_g, [a, x]) => op.matmul(a, op.transposeLast(x)),
  },
  {
    name: 'matmulTransB by head-split keys, a Transpose kept apart from the product\'s',
    inputs: [{ shape: [2, 2, 3, 4] }, { shape: [2, 5, 2, 4] }],
    build: (_g, [q, k]) => op.matmulTransB(q, op.transpose(k, [0, 2, 1, 3])),
  },
  {
    name: 'MatMul by head-split values, whose gradient multiplies by their transpose',
    inputs: [{ shape: [2, 2, 3, 5] }, { shape: [2, 5, 2, 4] }],
    build: (_g, [p, v]) => op.matmul(p, op.transpose(v, [0, 2, 1, 3])),
  },
  {
    name: 'MatMul shares a weight across a symbolic batch',
    inputs: [{ shape: ['batch', 3, 4] }, { shape: [4, 2] }],
    dims: { batch: 2 },
    build: (_g, [a, b]) => op.matmul(a, b),
  },

  // ---- moving data
  { name: 'Reshape flattens [2,3,4] to [6,-1]', inputs: [{ shape: [2, 3, 4] }], build: (_g, [x]) => op.reshape(x, [6, -1]) },
  { name: 'Reshape handles a symbolic batch dimension', inputs: [{ shape: ['batch', 4] }], dims: { batch: 3 }, build: (_g, [x]) => op.reshape(x, [-1, 2]) },
  { name: 'Transpose permutes [2,3,4] by [2,0,1]', inputs: [{ shape: [2, 3, 4] }], build: (_g, [x]) => op.transpose(x, [2, 0, 1]) },
  {
    name: 'Slice takes a window on two axes, with a negative start and "to the end"',
    inputs: [{ shape: [4, 5] }],
    build: (_g, [x]) => op.slice(x, [1, -3], [3, Infinity], [0, 1]),
  },
  { name: 'Slice takes negative starts and ends', inputs: [{ shape: [2, 6] }], build: (_g, [x]) => op.slice(x, [-4], [-1], [-1]) },
  {
    name: 'Slice runs "to the end" of a symbolic dimension',
    inputs: [{ shape: ['batch', 4] }],
    dims: { batch: 4 },
    build: (_g, [x]) => op.slice(x, [1], [Infinity], [0]),
  },
  {
    name: 'Slice takes the last rows of a symbolic dimension with a negative start',
    inputs: [{ shape: ['batch', 3] }],
    dims: { batch: 5 },
    build: (_g, [x]) => op.slice(x, [-2], [Infinity], [0]),
  },
  {
    name: 'Slice drops the last row of a symbolic dimension with a negative end',
    inputs: [{ shape: ['batch', 3] }],
    dims: { batch: 4 },
    build: (_g, [x]) => op.slice(x, [0], [-1], [0]),
  },
  {
    name: 'Slice takes a fixed window of a symbolic dimension',
    inputs: [{ shape: ['batch', 3] }],
    dims: { batch: 5 },
    build: (_g, [x]) => op.slice(x, [1], [3], [0]),
  },
  {
    name: 'Pad zero-pads both sides of two axes',
    inputs: [{ shape: [2, 3] }],
    build: (g, [x]) => g.apply('Pad', [x, op.int64s(g, [1, 0, 2, 1])], { mode: 'constant' })[0],
  },
  {
    name: 'Concat joins three tensors on the last axis',
    inputs: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }],
    build: (_g, xs) => op.concat(xs, -1),
  },
  {
    name: 'Concat joins a symbolic-batch tensor with a fixed one on the batch axis',
    inputs: [{ shape: ['batch', 3] }, { shape: [2, 3] }],
    dims: { batch: 3 },
    build: (_g, xs) => op.concat(xs, 0),
  },
  { name: 'Unsqueeze inserts axes 0 and 2', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.unsqueeze(x, [0, 2]) },
  { name: 'Squeeze removes a unit axis', inputs: [{ shape: [3, 1, 4] }], build: (_g, [x]) => op.squeeze(x, [1]) },
  { name: 'Expand broadcasts [3,1] to [2,3,4]', inputs: [{ shape: [3, 1] }], build: (_g, [x]) => op.expand(x, [2, 3, 4]) },
  {
    name: 'Gather accumulates the gradient of repeated embedding indices',
    inputs: [{ shape: [5, 3] }, { shape: [2, 4], dtype: 'int64', data: [1, 3, 1, 1, 0, 3, 4, 1] }],
    build: (_g, [table, idx]) => op.gather(table, idx),
    // Row 2 is never looked up: its gradient is zero.
    then: (r) => expect(Array.from(r.analytic[0]!.subarray(6, 9))).toEqual([0, 0, 0]),
  },
  {
    name: 'Gather takes int32 indices too',
    inputs: [{ shape: [4, 2] }, { shape: [5], dtype: 'int32', data: [3, 3, 0, 3, 1] }],
    build: (_g, [table, idx]) => op.gather(table, idx),
  },

  // ---- normalisations and reductions
  {
    name: 'LayerNormalization differentiates its input, gain and bias',
    inputs: [{ shape: [2, 3, 6] }, { shape: [6] }, { shape: [6] }],
    build: (_g, [x, gain, bias]) => op.layerNorm(x, gain, bias),
  },
  { name: 'Softmax over the last axis', inputs: [{ shape: [2, 3, 5] }], build: (_g, [x]) => op.softmax(x) },
  { name: 'LogSoftmax over the last axis', inputs: [{ shape: [2, 3, 5] }], build: (_g, [x]) => op.logSoftmax(x) },
  { name: 'ReduceSum drops the reduced axis', inputs: [{ shape: [2, 3, 4] }], build: (_g, [x]) => op.reduceSum(x, [1]) },
  { name: 'ReduceSum keeps the reduced axes with keepdims', inputs: [{ shape: [2, 3, 4] }], build: (_g, [x]) => op.reduceSum(x, [0, -1], true) },
  { name: 'ReduceSum over every axis gives a scalar', inputs: [{ shape: [2, 3] }], build: (_g, [x]) => op.reduceSum(x, [0, 1]) },
  { name: 'ReduceMean drops the reduced axes', inputs: [{ shape: [2, 3, 4] }], build: (_g, [x]) => op.reduceMean(x, [0, 2]) },
  { name: 'ReduceMean keeps the reduced axis with keepdims', inputs: [{ shape: [2, 3, 4] }], build: (_g, [x]) => op.reduceMean(x, [-1], true) },
  {
    name: 'ReduceMean handles a symbolic batch dimension',
    inputs: [{ shape: ['batch', 3] }],
    dims: { batch: 2 },
    build: (_g, [x]) => op.reduceMean(x, [0]),
  },

  // ---- unary
  { name: 'Exp', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.exp(x) },
  { name: 'Log of positive inputs', inputs: [{ shape: [3, 4], sample: positive }], build: (_g, [x]) => op.log(x) },
  { name: 'Sqrt of positive inputs', inputs: [{ shape: [3, 4], sample: positive }], build: (_g, [x]) => op.sqrt(x) },
  { name: 'Tanh', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.tanh(x) },
  { name: 'Sigmoid', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.sigmoid(x) },
  { name: 'Relu away from its kink at 0', inputs: [{ shape: [3, 4], sample: awayFromZero }], build: (_g, [x]) => op.relu(x) },
  { name: 'Neg', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.neg(x) },
  { name: 'Sin (rotary angles in imported graphs)', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.sin(x) },
  { name: 'Cos (rotary angles in imported graphs)', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.cos(x) },
  { name: 'Trilu keeps the lower triangle of the last two axes', inputs: [{ shape: [2, 4, 4] }], build: (_g, [x]) => op.trilu(x, false) },
  { name: 'Trilu keeps the upper triangle above diagonal 1', inputs: [{ shape: [3, 5] }], build: (_g, [x]) => op.trilu(x, true, 1) },
  { name: 'Gemm with a bias row', inputs: [{ shape: [3, 4] }, { shape: [4, 5] }, { shape: [5] }], build: (_g, [a, b, c]) => op.gemm(a, b, c) },
  {
    name: 'Gemm with transA, transB, alpha and beta (nn.Linear as exported)',
    inputs: [{ shape: [4, 3] }, { shape: [5, 4] }, { shape: [3, 5] }],
    build: (_g, [a, b, c]) => op.gemm(a, b, c, { transA: 1, transB: 1, alpha: 0.5, beta: 2 }),
  },
  { name: 'Identity', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.identity(x) },
  {
    name: 'Cast from float64 to float64 passes the gradient through',
    inputs: [{ shape: [3, 4] }],
    build: (g, [x]) => op.exp(g.apply('Cast', [x], { to: op.ONNX_DTYPE.float64 })[0]),
  },
  {
    // The perturbed float32 inputs are exact in float64 and the checker divides by the actual
    // difference of the stored values, so the central difference stays float64-accurate; the
    // analytic gradient is rounded to float32 once (relative 6e-8), well inside 1e-6.
    name: 'Cast from float32 to float64 casts the gradient back to float32',
    inputs: [{ shape: [3, 4], dtype: 'float32' }],
    build: (_g, [x]) => op.tanh(op.cast(x, 'float64')),
  },
  {
    // ONNX Runtime's CPU build has no float64 Erf kernel, so Erf is checked in float32. Outputs
    // rounded to float32 carry up to ~1.2e-7 absolute error each (erf ∈ (-1, 1), a few ulp); a
    // central difference over 2ε = 8e-3 turns that, times |r| ≲ 3, into ≲ 1e-4. Its truncation
    // error is ε²·max|erf'''|/6 = 1.6e-5·2.26/6 ≈ 6e-6. The analytic gradient is accurate to a few
    // float32 ulp (~1e-6 relative). Hence tol = 3e-4, about 2× the sum.
    name: 'Erf in float32, within a tolerance set by float32 rounding',
    dtype: 'float32',
    eps: 4e-3,
    tol: 3e-4,
    inputs: [{ shape: [3, 4] }],
    build: (_g, [x]) => op.erf(x),
  },

  // ---- composites
  { name: 'gelu (tanh form)', inputs: [{ shape: [3, 4] }], build: (_g, [x]) => op.gelu(x) },
  {
    name: 'crossEntropy with integer targets counts only positions of weight 1',
    inputs: [
      { shape: [2, 3, 5] },
      { shape: [2, 3], dtype: 'int64', data: [4, 0, 2, 2, 1, 4] },
      { shape: [2, 3], data: [0, 1, 1, 0, 0, 1] },
    ],
    build: (_g, [logits, targets, weights]) => op.crossEntropy(logits, targets, weights),
    then: (r) => zeroWhereMasked(r.analytic[0]!, [0, 1, 1, 0, 0, 1], 5),
  },
  {
    name: 'softmaxCrossEntropy per position (rows of a rank-3 input, a label repeated)',
    inputs: [
      { shape: [2, 3, 5] },
      { shape: [2, 3], dtype: 'int64', data: [4, 0, 4, 2, 1, 4] },
    ],
    build: (_g, [logits, targets]) => op.mul(op.softmaxCrossEntropy(logits, targets), op.softmaxCrossEntropy(logits, targets)),
  },
  {
    name: 'meanSquaredError with a mask differentiates predictions and targets',
    inputs: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [2, 3], data: [1, 0, 1, 1, 0, 0] }],
    build: (_g, [p, t, w]) => op.meanSquaredError(p, t, w),
    then: (r) => {
      zeroWhereMasked(r.analytic[0]!, [1, 0, 1, 1, 0, 0], 4);
      zeroWhereMasked(r.analytic[1]!, [1, 0, 1, 1, 0, 0], 4);
    },
  },
  {
    name: 'causal attention masks scores with where(mask, scores, -1e9) before softmax',
    inputs: [{ shape: [2, 4, 3] }, { shape: [2, 4, 3] }, { shape: [2, 4, 3] }, { shape: [4, 4], dtype: 'bool', data: causal(4) }],
    build: (_g, [q, k, v, mask]) => {
      const scores = op.mul(op.matmul(q, op.transposeLast(k)), 1 / Math.sqrt(3)); // (B, Tq, Tk)
      return op.matmul(op.softmax(op.where(mask, scores, -1e9)), v); // (B, Tq, d)
    },
    // The last key is seen only by the last query, through a probability that is not zero.
    then: (r) => expect(r.analytic[1]!.subarray(9, 12).some((v) => v !== 0)).toBe(true),
  },

  // ---- accumulation
  {
    name: 'a value used twice accumulates both gradients',
    inputs: [{ shape: [3, 4] }],
    build: (_g, [x]) => {
      const h = op.tanh(x);
      return op.add(op.mul(h, h), op.mul(h, x)); // h and x both feed two nodes
    },
  },
];

describe('gradients match central finite differences', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const result = await gradcheck(c);
      c.then?.(result);
    });
  }

  it('the checker rejects a gradient that is wrong', async () => {
    // detach(x)·x has the gradient x by autodiff but 2x by finite differences.
    const wrong: GradCase = { name: 'a deliberately wrong gradient', inputs: [{ shape: [3] }], build: (_g, [x]) => op.mul(op.detach(x), x) };
    await expect(gradcheck(wrong)).rejects.toThrow(/gradient mismatch/);
  });

  it('every differentiable op is exercised by at least one case', () => {
    const covered = new Set(cases.flatMap((c) => [...coveredOps(c)]));
    expect(differentiableOps().filter((o) => !covered.has(o))).toEqual([]);
  });
});

describe('gradients beyond the numbers', () => {
  it('a parameter the loss does not reach gets an explicit zero gradient', async () => {
    const g = new Graph('float64');
    const x = g.input('x', 'float64', [2, 3]);
    const unused = g.param('unused', [4, 2], new Float64Array(8).fill(1));
    const loss = op.reduceSum(op.mul(x, x), [0, 1]);
    const [gx, gu] = gradients(loss, [x, unused]);
    g.output(gx, 'gx');
    g.output(gu, 'gu');
    const session = await Session.open(toOnnxBytes(g, { paramsAs: 'inputs' }));
    const out = await session.run({
      x: { dtype: 'float64', shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6) },
      ...(session.inputNames.includes('unused') ? { unused: { dtype: 'float64', shape: [4, 2], data: new Float64Array(8).fill(1) } } : {}),
    });
    await session.release();
    expect(out.gu.shape).toEqual([4, 2]);
    expect(Array.from(out.gu.data as Float64Array)).toEqual(new Array(8).fill(0));
    expect(Array.from(out.gx.data as Float64Array)).toEqual([2, 4, 6, 8, 10, 12]);
  });

  it('op.detach stops the gradient', async () => {
    const g = new Graph('float64');
    const x = g.input('x', 'float64', [4]);
    const loss = op.reduceSum(op.mul(op.detach(x), x), [0]); // d/dx = x, not 2x
    g.output(gradients(loss, [x])[0], 'gx');
    const session = await Session.open(toOnnxBytes(g));
    const data = Float64Array.of(1, -2, 0.5, 3);
    const out = await session.run({ x: { dtype: 'float64', shape: [4], data } });
    await session.release();
    expect(Array.from(out.gx.data as Float64Array)).toEqual(Array.from(data));
  });

  it('a gradient through a detached value alone is an explicit zero', async () => {
    const g = new Graph('float64');
    const x = g.input('x', 'float64', [3]);
    const loss = op.reduceSum(op.exp(op.detach(x)), [0]);
    g.output(gradients(loss, [x])[0], 'gx');
    const session = await Session.open(toOnnxBytes(g));
    const out = await session.run({ x: { dtype: 'float64', shape: [3], data: Float64Array.of(1, 2, 3) } });
    await session.release();
    expect(Array.from(out.gx.data as Float64Array)).toEqual([0, 0, 0]);
  });

  it('op.sliceAt slices at a bound fed at run time, names the extent, and refuses a gradient in one line', async () => {
    const g = new Graph('float64');
    const x = g.input('x', 'float64', [2, 5]);
    const at = g.input('at', 'int64', [1]);
    const head = op.sliceAt(x, 0, at, 1, 'p');
    const tail = op.sliceAt(x, at, Infinity, 1, 's');
    expect([head.shape, tail.shape]).toEqual([[2, 'p'], [2, 's']]);
    g.output(head, 'head');
    g.output(tail, 'tail');
    const session = await Session.open(toOnnxBytes(g));
    const data = Float64Array.from({ length: 10 }, (_, i) => i);
    const out = await session.run({ x: { dtype: 'float64', shape: [2, 5], data }, at: { dtype: 'int64', shape: [1], data: BigInt64Array.of(2n) } });
    await session.release();
    expect([out.head.shape, Array.from(out.head.data as Float64Array)]).toEqual([[2, 2], [0, 1, 5, 6]]);
    expect([out.tail.shape, Array.from(out.tail.data as Float64Array)]).toEqual([[2, 3], [2, 3, 4, 7, 8, 9]]);
    expect(() => gradients(op.reduceSum(head, [0, 1]), [x])).toThrow(/must be a build-time constant/);
    expect(() => op.sliceAt(x, 0, g.input('f', 'float64', [1]), 1, 'q')).toThrow(/a slice bound must be an int64 \[1\], got f: float64\[1\]/);
  });

  it('asking a gradient for an int64 tensor throws a GradientError naming the tensor', () => {
    const g = new Graph('float64');
    const table = g.param('embed', [5, 3], new Float64Array(15));
    const ids = g.input('token_ids', 'int64', [2, 4]);
    const loss = op.reduceSum(op.gather(table, ids), [0, 1, 2]);
    expect(() => gradients(loss, [ids])).toThrow(GradientError);
    expect(() => gradients(loss, [ids])).toThrow(/token_ids.*int64/);
  });
});
