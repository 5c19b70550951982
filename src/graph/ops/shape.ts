/** Ops that move data without arithmetic: reshape, transpose, slice, concat, gather, expand. */
import { GradientError, GraphError, ShapeError } from '../../errors.js';
import type { Dim, Value } from '../ir.js';
import { defineOp } from '../registry.js';
import { broadcast, fmt, normAxis, reshapeShape } from '../shapes.js';
import { apply1 } from './apply.js';
import { constLike, int64s, reshapeLike, shapeOf } from './constants.js';
import { add, sub } from './elementwise.js';
import { unbroadcast } from './reduce.js';

/** Integer contents of a constant input (shapes, axes, bounds), which builders always make constant. */
function ints(v: Value, node: string): number[] {
  const data = v.graph.constantValue(v);
  if (!data) throw new GraphError(`${v.name} must be a build-time constant`, node);
  return Array.from(data as BigInt64Array, Number);
}

// ---- reshape family ---------------------------------------------------------------------------

/** ONNX Reshape semantics: 0 keeps the input dimension, -1 is inferred. */
export const reshape = (x: Value, shape: readonly number[]): Value => apply1('Reshape', [x, int64s(x.graph, shape)]);
defineOp('Reshape', {
  infer: ([x, s], _attrs, node) => {
    const target = s.graph.constantValue(s);
    const shape = target ? reshapeShape(x.shape, Array.from(target as BigInt64Array, Number), node) : s.shape.map((_, i) => `d${i}`);
    return [{ dtype: x.dtype, shape }];
  },
  grad: (gy, { inputs: [x] }) => [reshapeLike(gy, x), null],
});

export const unsqueeze = (x: Value, axes: readonly number[]): Value => apply1('Unsqueeze', [x, int64s(x.graph, axes)]);
defineOp('Unsqueeze', {
  infer: ([x, a], _attrs, node) => {
    const raw = ints(a, node);
    const rank = x.rank + raw.length;
    const axes = raw.map((ax) => normAxis(ax, rank, node));
    const shape: Dim[] = [];
    for (let i = 0, j = 0; i < rank; i++) shape.push(axes.includes(i) ? 1 : x.shape[j++]);
    return [{ dtype: x.dtype, shape }];
  },
  grad: (gy, { inputs: [x] }) => [reshapeLike(gy, x), null],
});

export const squeeze = (x: Value, axes: readonly number[]): Value => apply1('Squeeze', [x, int64s(x.graph, axes)]);
defineOp('Squeeze', {
  infer: ([x, a], _attrs, node) => {
    const axes = ints(a, node).map((ax) => normAxis(ax, x.rank, node));
    for (const ax of axes) {
      if (x.shape[ax] !== 1 && typeof x.shape[ax] === 'number') throw new ShapeError(`cannot squeeze axis ${ax} of ${fmt(x.shape)}`, node);
    }
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) }];
  },
  grad: (gy, { inputs: [x] }) => [reshapeLike(gy, x), null],
});

export const transpose = (x: Value, perm: readonly number[]): Value => apply1('Transpose', [x], { perm });
defineOp('Transpose', {
  infer: ([x], { perm }, node) => {
    const p = perm as number[];
    if (p.length !== x.rank || [...p].sort().some((v, i) => v !== i)) throw new ShapeError(`perm [${p}] does not fit rank ${x.rank}`, node);
    return [{ dtype: x.dtype, shape: p.map((i) => x.shape[i]) }];
  },
  grad: (gy, { attrs }) => {
    const perm = attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [transpose(gy, inverse)];
  },
});

/** Broadcasts `x` to the shape of `like` (a value, or a static shape). */
export const expand = (x: Value, like: Value | readonly number[]): Value => {
  const target = Array.isArray(like) ? int64s(x.graph, like) : shapeOf(like as Value);
  const hint = Array.isArray(like) ? like : (like as Value).shape;
  return apply1('Expand', [x, target], {}, broadcast(x.shape, hint, 'Expand'));
};
defineOp('Expand', {
  infer: ([x, s]) => {
    const data = s.graph.constantValue(s);
    return [{ dtype: x.dtype, shape: data ? broadcast(x.shape, Array.from(data as BigInt64Array, Number), 'Expand') : x.shape }];
  },
  grad: (gy, { inputs: [x] }) => [unbroadcast(gy, x), null],
});

// ---- slicing and joining ----------------------------------------------------------------------

const END = 2 ** 62; // "to the end", as ONNX exporters write INT64_MAX

function slicedDim(d: Dim, s: number, e: number): Dim {
  if (typeof d === 'number') {
    const clamp = (i: number) => Math.min(Math.max(i < 0 ? i + d : i, 0), d);
    return Math.max(clamp(e) - clamp(s), 0);
  }
  if (s >= 0 && e >= 0 && e < END) return e - s;
  if (s < 0 && e >= END) return -s;
  if (s < 0 && e < 0) return e - s;
  if (s >= 0 && e >= END) return s === 0 ? d : `${d}-${s}`;
  return `${d}[${s}:${e}]`;
}

/** `x[starts:ends]` along `axes` with step 1. Use a large `end` (or `Infinity`) for "to the end". */
export function slice(x: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Value {
  const g = x.graph;
  const clip = (e: number) => (e >= END ? END : e);
  return apply1('Slice', [x, int64s(g, starts), int64s(g, ends.map(clip)), int64s(g, axes)]);
}
/** The last entry along `axis`, kept as an axis of length 1. */
export const lastAlong = (x: Value, axis: number): Value => slice(x, [-1], [Infinity], [axis]);

/**
 * `x[start:end]` along one axis, where `start` or `end` is a run-time int64 [1] (e.g. a position
 * fed to the graph): the sliced extent is then the symbolic dimension `dim`. No gradient.
 */
export function sliceAt(x: Value, start: Value | number, end: Value | number, axis: number, dim: string): Value {
  const g = x.graph;
  const bound = (b: Value | number) => {
    if (typeof b === 'number') return int64s(g, [Math.min(b, END)]);
    if (b.dtype !== 'int64' || b.rank !== 1) throw new ShapeError(`a slice bound must be an int64 [1], got ${b.name}: ${b.dtype}${fmt(b.shape)}`, x.name);
    return b;
  };
  const shape = x.shape.slice();
  shape[normAxis(axis, x.rank, x.name)] = dim;
  return apply1('Slice', [x, bound(start), bound(end), int64s(g, [axis])], {}, shape);
}
defineOp('Slice', {
  infer: (inputs, _attrs, node) => {
    const [x, s, e, a] = inputs;
    if (inputs.length > 4) throw new GraphError('Slice with steps is not supported', node);
    const axes = ints(a, node).map((ax) => normAxis(ax, x.rank, node));
    const shape = x.shape.slice();
    // Bounds known only at run time (sliceAt): the extent is open here, and sliceAt names it.
    if (!x.graph.constantValue(s) || !x.graph.constantValue(e)) {
      axes.forEach((ax) => (shape[ax] = `${node}:${ax}`));
      return [{ dtype: x.dtype, shape }];
    }
    const [starts, ends] = [ints(s, node), ints(e, node)];
    axes.forEach((ax, i) => (shape[ax] = slicedDim(x.shape[ax], starts[i], ends[i])));
    return [{ dtype: x.dtype, shape }];
  },
  // The gradient is the incoming one, zero-padded back to the input's extent on each sliced axis.
  grad: (gy, { inputs: [x, s, e, a], name }) => {
    const [starts, ends, axes] = [ints(s, name), ints(e, name), ints(a, name).map((ax) => normAxis(ax, x.rank, name))];
    const g = x.graph;
    const dims = shapeOf(x);
    const dimOf = (ax: number): Value | number => {
      const d = x.shape[ax];
      return typeof d === 'number' ? d : apply1('Gather', [dims, int64s(g, [ax])], { axis: 0 });
    };
    const before: (Value | number)[] = new Array(x.rank).fill(0);
    const after: (Value | number)[] = new Array(x.rank).fill(0);
    axes.forEach((ax, i) => {
      const [st, en] = [starts[i], ends[i]];
      const d = dimOf(ax);
      before[ax] = st >= 0 ? st : typeof d === 'number' ? Math.max(d + st, 0) : add(d, constLike(d, st));
      after[ax] =
        en >= END ? 0 : en < 0 ? -en : typeof d === 'number' ? Math.max(d - Math.min(en, d), 0) : sub(d, constLike(d, en));
    });
    const all = [...before, ...after];
    const pads = all.every((p) => typeof p === 'number')
      ? int64s(g, all as number[])
      : concat(all.map((p) => (typeof p === 'number' ? int64s(g, [p]) : p)), 0);
    return [apply1('Pad', [gy, pads], { mode: 'constant' }, x.shape), null, null, null];
  },
});

defineOp('Pad', {
  infer: ([x, pads], _attrs) => {
    const data = pads.graph.constantValue(pads);
    if (!data) return [{ dtype: x.dtype, shape: x.shape.map((_, i) => `pad${i}`) }];
    const p = Array.from(data as BigInt64Array, Number);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d + p[i] + p[i + x.rank] : d)) }];
  },
  grad: (gy, { inputs: [x, pads], name }) => {
    const p = ints(pads, name);
    const axes = x.shape.map((_, i) => i);
    return [slice(gy, p.slice(0, x.rank), p.slice(x.rank).map((q) => (q === 0 ? END : -q)), axes), null];
  },
});

export const concat = (xs: readonly Value[], axis: number): Value => apply1('Concat', xs, { axis });
defineOp('Concat', {
  infer: (xs, { axis }, node) => {
    const ax = normAxis(axis as number, xs[0].rank, node);
    const shape = xs[0].shape.slice();
    let total: Dim = 0;
    for (const x of xs) {
      if (x.rank !== shape.length || x.dtype !== xs[0].dtype) throw new ShapeError(`cannot concat ${xs.map((v) => `${v.dtype}${fmt(v.shape)}`).join(' and ')}`, node);
      x.shape.forEach((d, i) => {
        if (i !== ax && typeof d === 'number' && typeof shape[i] === 'number' && d !== shape[i]) {
          throw new ShapeError(`cannot concat ${fmt(xs[0].shape)} with ${fmt(x.shape)} on axis ${ax}`, node);
        }
      });
      const d = x.shape[ax];
      total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total}+${d}`;
    }
    shape[ax] = total;
    return [{ dtype: xs[0].dtype, shape }];
  },
  grad: (gy, { inputs, attrs, name }) => {
    const ax = normAxis(attrs.axis as number, gy.rank, name);
    const g = gy.graph;
    const sizes = inputs.every((x) => typeof x.shape[ax] === 'number')
      ? int64s(g, inputs.map((x) => x.shape[ax] as number))
      : concat(inputs.map((x) => apply1('Gather', [shapeOf(x), int64s(g, [ax])], { axis: 0 })), 0);
    const parts = g.apply('Split', [gy, sizes], { axis: ax });
    return parts.map((p, i) => reshapeLike(p, inputs[i]));
  },
});

// The sizes are a run-time tensor when the split axis is symbolic (the gradient of a Concat along a
// batch axis); their count, which fixes the number of outputs, is known either way.
defineOp('Split', {
  infer: ([x, sizes], { axis }, node) => {
    const ax = normAxis(axis as number, x.rank, node);
    const count = sizes.shape[0];
    if (sizes.rank !== 1 || typeof count !== 'number') throw new ShapeError(`split sizes ${fmt(sizes.shape)} must be a vector of known length`, node);
    const known = sizes.graph.constantValue(sizes) as BigInt64Array | undefined;
    return Array.from({ length: count }, (_, k) => ({
      dtype: x.dtype,
      shape: x.shape.map((d, i) => (i !== ax ? d : known ? Number(known[k]) : `${d}/${k}`)),
    }));
  },
});

// ---- indexing ---------------------------------------------------------------------------------

/** Rows of `data` picked by integer `indices` (an embedding lookup when axis is 0). */
export const gather = (data: Value, indices: Value, axis = 0): Value => apply1('Gather', [data, indices], { axis });
defineOp('Gather', {
  infer: ([data, idx], { axis }, node) => {
    const ax = normAxis(axis as number, data.rank, node);
    if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw new ShapeError(`indices ${idx.name} must be int64 or int32, got ${idx.dtype}`, node);
    return [{ dtype: data.dtype, shape: [...data.shape.slice(0, ax), ...idx.shape, ...data.shape.slice(ax + 1)] }];
  },
  // Scatter-add, so that an index that appears several times collects every one of its gradients.
  grad: (gy, { inputs: [data, idx], attrs, name }) => {
    if (attrs.axis !== 0) throw new GradientError(`${name}: Gather is differentiable on axis 0 only, got axis ${attrs.axis}`);
    const zeros = expand(constLike(data, 0), data);
    const at = unsqueeze(idx.dtype === 'int64' ? idx : apply1('Cast', [idx], { to: 7 }), [-1]);
    return [apply1('ScatterND', [zeros, at, gy], { reduction: 'add' }), null];
  },
});

defineOp('ScatterND', { infer: ([data]) => [{ dtype: data.dtype, shape: data.shape }] });

defineOp('Shape', { infer: ([x]) => [{ dtype: 'int64', shape: [x.rank] }] });

/** ONNX Trilu: the lower (upper = 0) or upper triangle of the last two axes, from diagonal k. */
export const trilu = (x: Value, upper: boolean, k = 0): Value => apply1('Trilu', k === 0 ? [x] : [x, int64s(x.graph, [k])], { upper: upper ? 1 : 0 });
defineOp('Trilu', {
  infer: ([x], _attrs, node) => {
    if (x.rank < 2) throw new ShapeError(`Trilu needs rank ≥ 2, got ${fmt(x.shape)}`, node);
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  // The kept triangle passes its gradient; the zeroed one gets none: the same Trilu of gy.
  grad: (gy, { inputs: [, k], attrs }) => [apply1('Trilu', k ? [gy, k] : [gy], attrs), ...(k ? [null] : [])],
});
