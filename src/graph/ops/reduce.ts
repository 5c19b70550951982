/** Reductions, and `unbroadcast`: the one place where broadcasting is undone. */
import { GraphError } from '../../errors.js';
import type { Dim, Value } from '../ir.js';
import { defineOp } from '../registry.js';
import { broadcast, normAxis } from '../shapes.js';
import { apply1 } from './apply.js';
import { ONNX_DTYPE, int64s, reshapeLike, shapeOf } from './constants.js';

// The rules here build their nodes with apply1 rather than the builders of elementwise.ts and
// shape.ts: those files' rules call `unbroadcast`, so importing their builders would make a cycle.

function reducedShape(x: Value, axes: readonly number[], keepdims: boolean): Dim[] {
  const norm = axes.map((a) => normAxis(a, x.rank, 'reduce'));
  const out: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!norm.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** Expands a reduced gradient back over the reduced axes of `x`. */
function expandBack(gy: Value, x: Value, axes: readonly number[], keepdims: boolean): Value {
  const kept = keepdims ? gy : apply1('Unsqueeze', [gy, int64s(gy.graph, axes.map((a) => normAxis(a, x.rank, 'reduce')).sort((p, q) => p - q))]);
  return apply1('Expand', [kept, shapeOf(x)], {}, broadcast(kept.shape, x.shape, 'Expand'));
}

export const reduceSum = (x: Value, axes: readonly number[], keepdims = false): Value =>
  apply1('ReduceSum', [x, int64s(x.graph, axes)], { keepdims: keepdims ? 1 : 0 });
defineOp('ReduceSum', {
  infer: ([x, axes], attrs) => [{ dtype: x.dtype, shape: reducedShape(x, axesOf(axes), attrs.keepdims === 1) }],
  grad: (gy, { inputs: [x, axes], attrs }) => [expandBack(gy, x, axesOf(axes), attrs.keepdims === 1), null],
});

export const reduceMean = (x: Value, axes: readonly number[], keepdims = false): Value =>
  apply1('ReduceMean', [x], { axes, keepdims: keepdims ? 1 : 0 });
defineOp('ReduceMean', {
  infer: ([x], attrs) => [{ dtype: x.dtype, shape: reducedShape(x, attrs.axes as number[], attrs.keepdims === 1) }],
  grad: (gy, { inputs: [x], outputs: [y], attrs }) => {
    const size = (v: Value) => apply1('Cast', [apply1('Size', [v])], { to: ONNX_DTYPE[x.dtype] });
    const count = apply1('Div', [size(x), size(y)]);
    return [apply1('Div', [expandBack(gy, x, attrs.axes as number[], attrs.keepdims === 1), count])];
  },
});

export const reduceMax = (x: Value, axes: readonly number[], keepdims = false): Value =>
  apply1('ReduceMax', [x], { axes, keepdims: keepdims ? 1 : 0 });
defineOp('ReduceMax', {
  infer: ([x], attrs) => [{ dtype: x.dtype, shape: reducedShape(x, attrs.axes as number[], attrs.keepdims === 1) }],
});

defineOp('Size', { infer: () => [{ dtype: 'int64', shape: [] }] });

/** The axes of a reduction, which we always pass as an int64 constant. */
function axesOf(axes: Value): number[] {
  const data = axes.graph.constantValue(axes);
  if (!data) throw new GraphError(`reduction axes ${axes.name} must be a constant`);
  return Array.from(data as BigInt64Array, Number);
}

/**
 * Reduces a gradient `g` (shaped like a broadcast result) to the shape of the operand `x`: sums
 * over the leading axes `x` lacks and over the axes where `x` has size 1.
 */
export function unbroadcast(g: Value, x: Value): Value {
  const lead = g.rank - x.rank;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (x.shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  if (axes.length === 0) return g;
  // Only leading axes (a bias's gradient): one ReduceSum that drops them, not a ReduceSum and a Reshape.
  if (axes.every((i) => i < lead)) return reduceSum(g, axes, false);
  const summed = reduceSum(g, axes, true);
  return summed.rank === x.rank ? summed : reshapeLike(summed, x);
}
