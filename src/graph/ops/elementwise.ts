/**
 * Elementwise ops. Each builder stands next to its gradient rule. Binary ops broadcast as NumPy
 * does; their rules hand back a full-size gradient and `unbroadcast` reduces it to the input's shape.
 */
import { ShapeError } from '../../errors.js';
import { isFloat, type DType, type Value } from '../ir.js';
import { defineOp, type OutputType } from '../registry.js';
import { broadcast, broadcastAll, fmt } from '../shapes.js';
import { apply1 } from './apply.js';
import { DTYPE_OF_ONNX, ONNX_DTYPE, constLike } from './constants.js';
import { unbroadcast } from './reduce.js';

export type Operand = Value | number;

function lift(a: Operand, b: Operand): [Value, Value] {
  if (typeof a === 'number' && typeof b === 'number') throw new TypeError('at least one operand must be a graph value');
  return [typeof a === 'number' ? constLike(b as Value, a) : a, typeof b === 'number' ? constLike(a as Value, b) : b];
}

const sameType = (inputs: readonly Value[], node: string): DType => {
  const t = inputs[0].dtype;
  for (const x of inputs) {
    if (x.dtype !== t) throw new ShapeError(`mixed dtypes ${inputs.map((v) => `${v.name}: ${v.dtype}`).join(', ')}`, node);
  }
  return t;
};

const broadcasting = (outDtype?: DType) => (inputs: readonly Value[], _a: unknown, node: string): OutputType[] => {
  const dtype = sameType(inputs, node);
  return [{ dtype: outDtype ?? dtype, shape: broadcastAll(inputs.map((x) => x.shape), node) }];
};
const unary = (inputs: readonly Value[]): OutputType[] => [{ dtype: inputs[0].dtype, shape: inputs[0].shape }];

// ---- arithmetic -------------------------------------------------------------------------------

export const add = (a: Operand, b: Operand): Value => apply1('Add', lift(a, b));
defineOp('Add', { infer: broadcasting(), grad: (gy, { inputs: [a, b] }) => [unbroadcast(gy, a), unbroadcast(gy, b)] });

export const sub = (a: Operand, b: Operand): Value => apply1('Sub', lift(a, b));
defineOp('Sub', { infer: broadcasting(), grad: (gy, { inputs: [a, b] }) => [unbroadcast(gy, a), unbroadcast(neg(gy), b)] });

export const mul = (a: Operand, b: Operand): Value => apply1('Mul', lift(a, b));
defineOp('Mul', {
  infer: broadcasting(),
  grad: (gy, { inputs: [a, b] }) => [unbroadcast(mul(gy, b), a), unbroadcast(mul(gy, a), b)],
});

export const div = (a: Operand, b: Operand): Value => apply1('Div', lift(a, b));
defineOp('Div', {
  infer: broadcasting(),
  // d(a/b)/db = -(a/b)/b
  grad: (gy, { inputs: [a, b], outputs: [y] }) => [unbroadcast(div(gy, b), a), unbroadcast(neg(mul(gy, div(y, b))), b)],
});

export const pow = (x: Operand, p: Operand): Value => apply1('Pow', lift(x, p));
defineOp('Pow', {
  infer: broadcasting(),
  grad: (gy, { inputs: [x, p], outputs: [y] }) => [
    unbroadcast(mul(gy, mul(p, pow(x, sub(p, 1)))), x),
    unbroadcast(mul(gy, mul(y, log(x))), p),
  ],
});

/** Sum of any number of same-typed tensors (one node, used to accumulate gradients). */
export const sum = (xs: readonly Value[]): Value => (xs.length === 1 ? xs[0] : apply1('Sum', xs));
defineOp('Sum', { infer: broadcasting(), grad: (gy, { inputs }) => inputs.map((x) => unbroadcast(gy, x)) });

/** Elementwise maximum; the gradient goes to the larger operand (to `a` on ties). */
export const max = (a: Operand, b: Operand): Value => apply1('Max', lift(a, b));
defineOp('Max', {
  infer: broadcasting(),
  grad: (gy, { inputs: [a, b] }) => {
    const aWins = less(b, a);
    const tie = equal(a, b);
    return [unbroadcast(where(apply1('Or', [aWins, tie]), gy, 0), a), unbroadcast(where(apply1('Or', [aWins, tie]), 0, gy), b)];
  },
});
defineOp('Or', { infer: broadcasting('bool') });

// ---- unary ------------------------------------------------------------------------------------

export const neg = (x: Value): Value => apply1('Neg', [x]);
defineOp('Neg', { infer: unary, grad: (gy) => [neg(gy)] });

export const exp = (x: Value): Value => apply1('Exp', [x]);
defineOp('Exp', { infer: unary, grad: (gy, { outputs: [y] }) => [mul(gy, y)] });

export const log = (x: Value): Value => apply1('Log', [x]);
defineOp('Log', { infer: unary, grad: (gy, { inputs: [x] }) => [div(gy, x)] });

export const sqrt = (x: Value): Value => apply1('Sqrt', [x]);
defineOp('Sqrt', { infer: unary, grad: (gy, { outputs: [y] }) => [div(mul(gy, 0.5), y)] });

export const tanh = (x: Value): Value => apply1('Tanh', [x]);
defineOp('Tanh', { infer: unary, grad: (gy, { outputs: [y] }) => [mul(gy, sub(1, mul(y, y)))] });

export const sigmoid = (x: Value): Value => apply1('Sigmoid', [x]);
defineOp('Sigmoid', { infer: unary, grad: (gy, { outputs: [y] }) => [mul(gy, mul(y, sub(1, y)))] });

/** ONNX Runtime's CPU build has no float64 Erf kernel: gradient checks of Erf run in float32. */
export const erf = (x: Value): Value => apply1('Erf', [x]);
defineOp('Erf', {
  infer: unary,
  grad: (gy, { inputs: [x] }) => [mul(gy, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))],
});

export const relu = (x: Value): Value => apply1('Relu', [x]);
defineOp('Relu', { infer: unary, grad: (gy, { inputs: [x] }) => [where(greater(x, 0), gy, 0)] });

export const identity = (x: Value): Value => apply1('Identity', [x]);
defineOp('Identity', { infer: unary, grad: (gy) => [gy] });

/** Identity that autodiff does not pass through (torch's `.detach()`). */
export const detach = (x: Value): Value => x.graph.apply('Identity', [x], {}, { stopGradient: true })[0];

export const cast = (x: Value, to: DType): Value => (x.dtype === to ? x : apply1('Cast', [x], { to: ONNX_DTYPE[to] }));
defineOp('Cast', {
  infer: (inputs, attrs) => [{ dtype: DTYPE_OF_ONNX[attrs.to as number], shape: inputs[0].shape }],
  grad: (gy, { inputs: [x] }) => [isFloat(x.dtype) ? cast(gy, x.dtype) : null],
});

// ---- comparisons and selection (no gradient flows into a condition) ---------------------------

export const equal = (a: Operand, b: Operand): Value => apply1('Equal', lift(a, b));
defineOp('Equal', { infer: broadcasting('bool') });

export const greater = (a: Operand, b: Operand): Value => apply1('Greater', lift(a, b));
defineOp('Greater', { infer: broadcasting('bool') });

export const less = (a: Operand, b: Operand): Value => apply1('Less', lift(a, b));
defineOp('Less', { infer: broadcasting('bool') });

export const where = (cond: Value, a: Operand, b: Operand): Value => apply1('Where', [cond, ...lift(a, b)]);
defineOp('Where', {
  infer: (inputs, _attrs, node) => {
    const [c, a, b] = inputs;
    if (c.dtype !== 'bool') throw new ShapeError(`condition ${c.name} must be bool, got ${c.dtype}`, node);
    if (a.dtype !== b.dtype) throw new ShapeError(`branches differ in dtype: ${a.dtype} and ${b.dtype}`, node);
    return [{ dtype: a.dtype, shape: broadcastAll([c.shape, a.shape, b.shape], node) }];
  },
  // The gradient reaches only the branch that was selected at each position.
  grad: (gy, { inputs: [c, a, b] }) => [null, unbroadcast(where(c, gy, 0), a), unbroadcast(where(c, 0, gy), b)],
});

/** Logical and of two bool tensors (an imported graph's attention mask); no gradient. */
export const and = (a: Value, b: Value): Value => apply1('And', [a, b]);
defineOp('And', { infer: broadcasting('bool') });

export { ONNX_DTYPE, DTYPE_OF_ONNX } from './constants.js';

/** Checks at build time that two shapes are identical (for ops that do not broadcast). */
export function assertSameShape(a: Value, b: Value, node: string): void {
  broadcast(a.shape, b.shape, node);
  if (a.rank !== b.rank) throw new ShapeError(`shapes differ: ${fmt(a.shape)} and ${fmt(b.shape)}`, node);
}
