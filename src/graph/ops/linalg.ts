/** Matrix products. */
import { ShapeError } from '../../errors.js';
import type { Value } from '../ir.js';
import { defineOp } from '../registry.js';
import { broadcast, fmt } from '../shapes.js';
import { apply1 } from './apply.js';
import { unbroadcast } from './reduce.js';
import { reshape, transpose } from './shape.js';

/** NumPy matmul: batched over leading axes, which broadcast. Both operands have rank ≥ 2. */
export const matmul = (a: Value, b: Value): Value => apply1('MatMul', [a, b]);

/** Swaps the last two axes. */
export const transposeLast = (x: Value): Value =>
  transpose(x, [...Array(x.rank - 2).keys(), x.rank - 1, x.rank - 2]);

defineOp('MatMul', {
  infer: ([a, b], _attrs, node) => {
    if (a.rank < 2 || b.rank < 2) throw new ShapeError(`MatMul needs rank ≥ 2, got ${fmt(a.shape)} @ ${fmt(b.shape)}`, node);
    const [k1, k2] = [a.shape[a.rank - 1], b.shape[b.rank - 2]];
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) {
      throw new ShapeError(`inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)}`, node);
    }
    if (a.dtype !== b.dtype) throw new ShapeError(`dtypes differ: ${a.dtype} @ ${b.dtype}`, node);
    const batch = broadcast(a.shape.slice(0, -2), b.shape.slice(0, -2), node);
    return [{ dtype: a.dtype, shape: [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]] }];
  },
  grad: (gy, { inputs: [a, b] }) => {
    const da = unbroadcast(matmul(gy, transposeLast(b)), a);
    // A weight shared by every row ([.., T, D] @ [D, E]): one large product over the flattened
    // rows instead of a batch of small ones followed by a sum.
    if (b.rank === 2 && a.rank > 2) {
      const rows = reshape(a, [-1, a.shape[a.rank - 1] as number]);
      const grows = reshape(gy, [-1, gy.shape[gy.rank - 1] as number]);
      return [da, matmul(transposeLast(rows), grows)];
    }
    return [da, unbroadcast(matmul(transposeLast(a), gy), b)];
  },
});
