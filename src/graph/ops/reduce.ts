/** Reductions, and `unbroadcast`: the one place where broadcasting is undone. */
import { GraphError } from '../../errors.js';
import type { Dim, Graph, Value } from '../ir.js';
import { defineOp } from '../registry.js';
import { broadcast, normAxis } from '../shapes.js';
import { apply1 } from './apply.js';
import { ONNX_DTYPE, constLike, int64s, reshapeLike, shapeOf } from './constants.js';

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

/** Σ x² over `axes`, in one pass (no gradient rule: for statistics beside a graph's gradient). */
export const reduceSumSquare = (x: Value, axes: readonly number[], keepdims = false): Value =>
  apply1('ReduceSumSquare', [x], { axes, keepdims: keepdims ? 1 : 0 });
defineOp('ReduceSumSquare', {
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
  if (axes.every((i) => i < lead)) return x.rank === 1 && typeof x.shape[0] === 'number' ? sumRows(g, x.shape[0]) : reduceSum(g, axes, false);
  const summed = reduceSum(g, axes, true);
  return summed.rank === x.rank ? summed : reshapeLike(summed, x);
}

/**
 * Σ over every axis of `g` but its last (of width C): a bias's gradient. A row of ones times `g` as
 * an [N, C] matrix, which ONNX Runtime runs 2–2.5× faster than a ReduceSum over leading axes
 * ([64, 64, 128] → [128]: 0.11 against 0.27 ms; [64, 64, 512]: 0.37 against 0.81 ms).
 */
function sumRows(g: Value, C: number): Value {
  const graph = g.graph;
  const rows = apply1('Reshape', [g, int64s(graph, [-1, C])], {}, [g.shape.slice(0, -1).reduce<Dim>((a, d) => (typeof a === 'number' && typeof d === 'number' ? a * d : 'rows'), 1), C]);
  // One row of ones per graph, dtype and leading shape: a training graph sums about forty biases
  // over the same rows, and each row of ones took four small ops to build. Shared only where the
  // leading shape is known to be the same: numbers, or dimensions named by the graph's inputs
  // (inference names other unknown dimensions by position, which two shapes may share by chance).
  const lead = g.shape.slice(0, -1);
  const inputDims = new Set(graph.inputs.flatMap((x) => x.shape));
  const key = lead.every((d) => typeof d === 'number' || inputDims.has(d)) ? `${g.dtype} ${JSON.stringify(lead)}` : null;
  const cache = onesRows.get(graph) ?? onesRows.set(graph, new Map()).get(graph)!;
  let ones = key === null ? undefined : cache.get(key);
  if (!ones) {
    const n = apply1('Slice', [apply1('Shape', [rows]), int64s(graph, [0]), int64s(graph, [1]), int64s(graph, [0])]);
    const onesShape = apply1('Concat', [int64s(graph, [1]), n], { axis: 0 });
    ones = apply1('Expand', [constLike(g, 1), onesShape], {}, [1, rows.shape[0]]);
    if (key !== null) cache.set(key, ones);
  }
  return apply1('Reshape', [apply1('MatMul', [ones, rows]), int64s(graph, [C])]);
}
const onesRows = new WeakMap<Graph, Map<string, Value>>();
