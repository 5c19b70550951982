/**
 * The tensor bundle: a small, documented binary container for named tensors plus a JSON header.
 * Training-state files (`*.state`) and exported batches use it; any language reads it in a few
 * lines (see scripts/run_artifacts.py).
 *
 * Layout, little-endian:
 *   bytes 0..7    ASCII "TVLSTATE"
 *   bytes 8..11   uint32 n: length of the JSON header
 *   n bytes       UTF-8 JSON: { ...fields, dataSha256, tensors: [{ name, dtype, shape, offset, bytes }] }
 *                 dataSha256 (files written since the field was added) is the sha256 of the rest
 *                 dtype is float32 | float64 | int64 | int32; offset and bytes count from the data start
 *   the rest      the tensors' raw elements, each starting at a multiple of 8 bytes
 */
import { createHash } from 'node:crypto';
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
  const body = new Uint8Array(offset);
  let i = 0;
  for (const t of tensors.values()) {
    body.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), entries[i++].offset);
  }
  // The checksum of the tensor data, so that a changed or truncated file is refused on reading.
  const dataSha256 = createHash('sha256').update(body).digest('hex');
  const json = new TextEncoder().encode(JSON.stringify({ ...fields, dataSha256, tensors: entries }));
  const out = new Uint8Array(12 + json.length + offset);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(body, 12 + json.length);
  writeFileAtomic(file, out);
}

const ARRAYS: Record<string, new (b: ArrayBuffer) => TypedData> = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
};

export function readBundle(file: string): Bundle {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) throw new InputError(`${file} does not exist`);
  if (st.isDirectory()) throw new InputError(`${file} is a folder, not a tvlens tensor bundle`);
  const buf = fs.readFileSync(file);
  if (buf.length < 12 || buf.subarray(0, 8).toString('ascii') !== MAGIC) throw new InputError(`${file} is not a tvlens tensor bundle (no TVLSTATE header)`);
  const n = buf.readUInt32LE(8);
  const broken = (why: string) => new InputError(`${file} is damaged or truncated (${why})`);
  if (12 + n > buf.length) throw broken(`its header claims ${n} bytes, the file has ${buf.length - 12}`);
  let header: Record<string, unknown> & { tensors?: Entry[]; dataSha256?: string };
  try {
    header = JSON.parse(buf.subarray(12, 12 + n).toString('utf8'));
  } catch {
    throw broken('its header is not valid JSON');
  }
  const { tensors: entries, dataSha256, ...fields } = header;
  if (!Array.isArray(entries)) throw broken('its header lists no tensors');
  const start = 12 + n;
  const dataBytes = buf.length - start;
  for (const e of entries) {
    const size = ARRAYS[e?.dtype] ? new ARRAYS[e.dtype](new ArrayBuffer(0)).BYTES_PER_ELEMENT : 0;
    const count = Array.isArray(e?.shape) ? e.shape.reduce((a, b) => a * b, 1) : NaN;
    if (!size || !Number.isInteger(e.offset) || !Number.isInteger(e.bytes) || e.offset < 0 || e.bytes !== count * size) throw broken(`tensor '${e?.name}' has a bad entry`);
    if (e.offset + e.bytes > dataBytes) throw broken(`tensor '${e.name}' runs past the end of the file`);
  }
  if (typeof dataSha256 === 'string') {
    const actual = createHash('sha256').update(buf.subarray(start)).digest('hex');
    if (actual !== dataSha256) throw broken(`its data checksum is ${actual.slice(0, 12)}…, its header says ${dataSha256.slice(0, 12)}…`);
  }
  const tensors = new Map<string, HostTensor>();
  for (const e of entries) {
    const bytes = buf.buffer.slice(buf.byteOffset + start + e.offset, buf.byteOffset + start + e.offset + e.bytes);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: new ARRAYS[e.dtype](bytes as ArrayBuffer) });
  }
  return { fields, tensors };
}
