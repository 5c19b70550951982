/**
 * A tensor that carries its shape: flat row-major data and its dims, as ONNX Runtime hands them
 * over, with the few helpers an analysis needs (index by [batch, pos], read one number). No copy is
 * made: `at` returns a view into `data`.
 */
import { InputError } from '../errors.js';
import type { HostTensor } from '../runtime/session.js';

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export class Tensor<T extends TensorData = Float32Array> {
  constructor(
    /** Row-major elements. */
    readonly data: T,
    /** The shape, outermost first (TransformerLens order: [batch, pos, d_model], [batch, pos, head, d_head], …). */
    readonly dims: readonly number[],
  ) {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new InputError(`a tensor of dims [${dims.join(', ')}] holds ${size} numbers, not ${data.length}`);
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /**
   * The sub-tensor at the leading indices, as a view: `t.at(b, p)` of a [batch, pos, d_model]
   * tensor is that position's d_model vector. Negative indices count from the end.
   */
  at(...index: number[]): T {
    if (index.length > this.dims.length) throw new InputError(`${index.length} indices into a tensor of dims [${this.dims.join(', ')}]`);
    let offset = 0;
    let stride = this.data.length;
    index.forEach((raw, axis) => {
      const n = this.dims[axis];
      const i = raw < 0 ? n + raw : raw;
      if (!Number.isInteger(i) || i < 0 || i >= n) throw new InputError(`index ${raw} is out of range on axis ${axis} of a tensor of dims [${this.dims.join(', ')}] (valid: 0..${n - 1})`);
      stride /= n;
      offset += i * stride;
    });
    return this.data.subarray(offset, offset + stride) as T;
  }

  /** One element, by a full index. */
  get(...index: number[]): T extends BigInt64Array ? bigint : number {
    if (index.length !== this.dims.length) throw new InputError(`get needs ${this.dims.length} indices for dims [${this.dims.join(', ')}], got ${index.length}`);
    return this.at(...index)[0] as T extends BigInt64Array ? bigint : number;
  }

  /** The data as nested arrays (small tensors: printing, tests). */
  toArray(): unknown {
    const nest = (axis: number, offset: number): unknown => {
      if (axis === this.dims.length) return typeof this.data[offset] === 'bigint' ? Number(this.data[offset]) : this.data[offset];
      const stride = this.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.dims[axis] }, (_, i) => nest(axis + 1, offset + i * stride));
    };
    return nest(0, 0);
  }

  /** From ONNX Runtime's host form. */
  static from<T extends TensorData = Float32Array>(t: HostTensor): Tensor<T> {
    return new Tensor(t.data as T, [...t.shape]);
  }
}
