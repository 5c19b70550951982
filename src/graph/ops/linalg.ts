/** Matrix products. */
import { ShapeError } from '../../errors.js';
import type { Value } from '../ir.js';
import { defineOp } from '../registry.js';
import { broadcast, fmt } from '../shapes.js';
import { apply1 } from './apply.js';
import { unbroadcast } from './reduce.js';
import { reshape, transpose } from './shape.js';
import { mul } from './elementwise.js';

/** NumPy matmul: batched over leading axes, which broadcast. Both operands have rank ≥ 2. */
export const matmul = (a: Value, b: Value): Value => apply1('MatMul', [a, b]);

/** Swaps the last two axes. */
export const transposeLast = (x: Value): Value =>
  transpose(x, [...Array(x.rank - 2).keys(), x.rank - 1, x.rank - 2]);

/**
 * a·bᵀ. ONNX Runtime folds the transpose into the product (a FusedMatMul reading b as it lies), but
 * where b is itself a Transpose's output (attention's heads) it merges the two transposes first, into
 * one copy across the innermost axis: 0.9–1 ms for [64, 64, 4, 32] where the head split alone takes
 * 0.15. A Reshape to the same shape between them keeps them apart.
 */
export const matmulTransB = (a: Value, b: Value): Value =>
  matmul(a, transposeLast(b.producer?.op === 'Transpose' && !swapsLastTwo(b) ? reshape(b, b.shape.map(() => 0)) : b));

/** Whether x is the Transpose of its input's last two axes. */
function swapsLastTwo(x: Value): boolean {
  if (x.producer?.op !== 'Transpose') return false;
  const perm = x.producer.attrs.perm as readonly number[];
  const n = perm.length;
  return perm.every((axis, i) => axis === (i === n - 2 ? n - 1 : i === n - 1 ? n - 2 : i));
}

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
    const da = unbroadcast(matmulTransB(gy, b), a);
    // A weight shared by every row ([.., T, D] @ [D, E]): one large product over the flattened
    // rows instead of a batch of small ones followed by a sum.
    if (b.rank === 2 && a.rank > 2) {
      const rows = reshape(a, [-1, a.shape[a.rank - 1] as number]);
      const grows = reshape(gy, [-1, gy.shape[gy.rank - 1] as number]);
      return [da, matmul(transposeLast(rows), grows)];
    }
    // Where b = xᵀ (attention's keys), (gyᵀ·a)ᵀ: the transpose rule's own transpose cancels the outer
    // one and ONNX Runtime folds gyᵀ into the product, where aᵀ·gy copied a across its innermost axis
    // and the transpose rule copied the product back so.
    const db = swapsLastTwo(b) && a.rank === b.rank ? transposeLast(matmul(transposeLast(gy), a)) : matmul(transposeLast(a), gy);
    return [da, unbroadcast(db, b)];
  },
});

/** ONNX Gemm: alpha·A'·B' + beta·C on matrices, A' = Aᵀ when transA, B' = Bᵀ when transB (exporters write nn.Linear so). */
export const gemm = (a: Value, b: Value, c: Value | null, attrs: { transA?: number; transB?: number; alpha?: number; beta?: number } = {}): Value =>
  apply1('Gemm', c ? [a, b, c] : [a, b], attrs);

defineOp('Gemm', {
  floatAttrs: ['alpha', 'beta'],
  infer: ([a, b, c], { transA, transB }, node) => {
    if (a.rank !== 2 || b.rank !== 2) throw new ShapeError(`Gemm needs matrices, got ${fmt(a.shape)} and ${fmt(b.shape)}`, node);
    const [m, k1] = transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) throw new ShapeError(`inner dimensions differ: ${fmt(a.shape)} and ${fmt(b.shape)} (transA ${transA ?? 0}, transB ${transB ?? 0})`, node);
    const shape = [m, n];
    if (c) broadcast(c.shape, shape, node);
    return [{ dtype: a.dtype, shape }];
  },
  // With A' and B' as used: dA' = α·gy·B'ᵀ and dB' = α·A'ᵀ·gy, transposed back where the op transposed.
  grad: (gy, { inputs: [a, b, c], attrs }) => {
    const alpha = (attrs.alpha as number | undefined) ?? 1;
    const beta = (attrs.beta as number | undefined) ?? 1;
    const ap = attrs.transA ? transposeLast(a) : a;
    const bp = attrs.transB ? transposeLast(b) : b;
    const scale = (x: Value, s: number) => (s === 1 ? x : mul(x, s));
    const dap = scale(matmul(gy, transposeLast(bp)), alpha);
    const dbp = scale(matmul(transposeLast(ap), gy), alpha);
    return [attrs.transA ? transposeLast(dap) : dap, attrs.transB ? transposeLast(dbp) : dbp, c ? unbroadcast(scale(gy, beta), c) : null];
  },
});
