/**
 * The tensor bundle: a small, documented binary container for named tensors plus a JSON header.
 * Training-state files (`*.state`) and exported batches use it; any language reads it in a few
 * lines (see scripts/run_artifacts.py).
 *
 * Layout, little-endian:
 *   bytes 0..7    ASCII "TVLSTATE"
 *   bytes 8..11   uint32 n: length of the JSON header
 *   n bytes       UTF-8 JSON: { ...fields, tensors: [{ name, dtype, shape, offset, bytes }] }
 *                 dtype is float32 | float64 | int64 | int32; offset and bytes count from the data start
 *   the rest      the tensors' raw elements, each starting at a multiple of 8 bytes
 */
import fs from 'node:fs';
import { InputError } from '../errors.js';
import type { DType, TypedData } from '../graph/ir.js';
import type { HostTensor } from '../runtime/session.js';
import { writeFileAtomic } from '../util/fs.js';

const MAGIC = 'TVLSTATE';

export interface Bundle {
  readonly fields: Record<string, unknown>;
  readonly tensors: Map<string, HostTensor>;
}

interface Entry {
  name: string;
  dtype: DType;
  shape: readonly number[];
  offset: number;
  bytes: number;
}

export function writeBundle(file: string, fields: Record<string, unknown>, tensors: ReadonlyMap<string, HostTensor>): void {
  const entries: Entry[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    entries.push({ name, dtype: t.dtype, shape: t.shape, offset, bytes: t.data.byteLength });
    offset += Math.ceil(t.data.byteLength / 8) * 8;
  }
  const json = new TextEncoder().encode(JSON.stringify({ ...fields, tensors: entries }));
  const start = 12 + json.length;
  const out = new Uint8Array(start + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  let i = 0;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), start + entries[i++].offset);
  }
  writeFileAtomic(file, out);
}

const ARRAYS: Record<string, new (b: ArrayBuffer) => TypedData> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
};

export function readBundle(file: string): Bundle {
  if (!fs.existsSync(file)) throw new InputError(`${file} does not exist`);
  const buf = fs.readFileSync(file);
  if (buf.length < 12 || buf.subarray(0, 8).toString('ascii') !== MAGIC) throw new InputError(`${file} is not a tvlens tensor bundle (no TVLSTATE header)`);
  const n = buf.readUInt32LE(8);
  const { tensors: entries, ...fields } = JSON.parse(buf.subarray(12, 12 + n).toString('utf8')) as { tensors: Entry[] };
  const start = buf.byteOffset + 12 + n;
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const bytes = buf.buffer.slice(start + e.offset, start + e.offset + e.bytes);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: new ARRAYS[e.dtype](bytes as ArrayBuffer) });
  }
  return { fields, tensors };
}
