/** Integer index arithmetic for sequences whose length is only known at run time. */
import type { Value } from '../ir.js';
import { defineOp } from '../registry.js';
import { apply1 } from './apply.js';
import { int64s, scalar, shapeOf } from './constants.js';
import { mul, neg } from './elementwise.js';

/** The size of axis `axis` of `x`, as an int64 scalar. */
export function dimOf(x: Value, axis: number): Value {
  const d = x.shape[axis];
  if (typeof d === 'number') return scalar(x.graph, 'int64', d);
  return apply1('Squeeze', [apply1('Gather', [shapeOf(x), int64s(x.graph, [axis])], { axis: 0 }), int64s(x.graph, [0])], {}, []);
}

/** 0, 1, …, n−1 for an int64 scalar `n`; `name` is the symbolic length for shape inference. */
export function arange(n: Value, name: string | number): Value {
  return apply1('Range', [scalar(n.graph, 'int64', 0), n, scalar(n.graph, 'int64', 1)], {}, [name]);
}
defineOp('Range', { infer: ([start]) => [{ dtype: start.dtype, shape: ['range'] }] });

/** Cosine and sine: position tables, and rotary angles in imported graphs. */
export const cos = (x: Value): Value => apply1('Cos', [x]);
export const sin = (x: Value): Value => apply1('Sin', [x]);
defineOp('Cos', { infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }], grad: (gy, { inputs: [x] }) => [neg(mul(gy, sin(x)))] });
defineOp('Sin', { infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }], grad: (gy, { inputs: [x] }) => [mul(gy, cos(x))] });
