/** Constants and the few shape helpers that gradient rules share. */
import { floatArray, type DType, type Graph, type Value } from '../ir.js';
import { isStatic } from '../shapes.js';
import { apply1 } from './apply.js';

/** ONNX's TensorProto data type codes. */
export const ONNX_DTYPE: Record<DType, number> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };
export const DTYPE_OF_ONNX: Record<number, DType> = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };

const scalarCache = new WeakMap<Graph, Map<string, Value>>();

/** A scalar constant with the dtype of `like` (cached, so `0.5` is one initializer per graph). */
export function constLike(like: Value, value: number): Value {
  return scalar(like.graph, like.dtype, value);
}

export function scalar(g: Graph, dtype: DType, value: number): Value {
  let cache = scalarCache.get(g);
  if (!cache) scalarCache.set(g, (cache = new Map()));
  const key = `${dtype}:${value}`;
  let v = cache.get(key);
  if (!v) {
    const data =
      dtype === 'float32' || dtype === 'float64'
        ? floatArray(dtype, [value])
        : dtype === 'int64'
          ? BigInt64Array.of(BigInt(value))
          : dtype === 'int32'
            ? Int32Array.of(value)
            : Uint8Array.of(value ? 1 : 0);
    v = g.constant(data, dtype, [], g.fresh(`scalar_${dtype}`));
    cache.set(key, v);
  }
  return v;
}

/** A 1-D int64 constant, as ONNX wants for shapes, axes and slice bounds. */
export function int64s(g: Graph, values: readonly number[]): Value {
  return g.constant(BigInt64Array.from(values, (x) => BigInt(x)), 'int64', [values.length]);
}

/** Shape(x) as an int64 tensor, or a constant when the shape is known at build time. */
export function shapeOf(x: Value): Value {
  return isStatic(x.shape) ? int64s(x.graph, x.shape) : apply1('Shape', [x]);
}

/** Reshapes `g` to the shape of `like`; `g` must have the same number of elements. */
export function reshapeLike(g: Value, like: Value): Value {
  return apply1('Reshape', [g, shapeOf(like)], {}, like.shape);
}
