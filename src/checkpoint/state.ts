/**
 * The training-state file (`*.state`): everything beyond the weights that a resumed run needs.
 *
 * Format, little-endian:
 *   bytes 0..7   ASCII "TVLSTATE"
 *   bytes 8..11  uint32 n, the length of the JSON header
 *   n bytes      UTF-8 JSON: { version: 1, step, rng: number[] (xoshiro128** state), dtype,
 *                tensors: [{ name, shape, offset, length }] } where name is a parameter name or
 *                `adam.m.<param>` / `adam.v.<param>`, offset/length count elements from the data start
 *   the rest     the tensors' elements, float32 or float64, back to back
 */
import fs from 'node:fs';
import { InputError } from '../errors.js';
import type { TypedData } from '../graph/ir.js';
import type { OptimizerState } from '../train/step.js';
import { writeFileAtomic } from '../util/fs.js';

const MAGIC = 'TVLSTATE';

export interface SavedState extends OptimizerState {
  rng: number[];
  /** Anything else the trainer wants back (for example the data generator's position). */
  extra?: Record<string, unknown>;
}

interface Header {
  version: 1;
  step: number;
  rng: number[];
  dtype: 'float32' | 'float64';
  extra?: Record<string, unknown>;
  tensors: { name: string; offset: number; length: number }[];
}

export function writeState(file: string, s: SavedState): void {
  const entries: [string, TypedData][] = [
    ...s.params,
    ...[...s.m].map(([k, v]) => [`adam.m.${k}`, v] as [string, TypedData]),
    ...[...s.v].map(([k, v]) => [`adam.v.${k}`, v] as [string, TypedData]),
  ];
  const dtype = entries[0]?.[1] instanceof Float64Array ? 'float64' : 'float32';
  let offset = 0;
  const tensors = entries.map(([name, data]) => {
    const t = { name, offset, length: data.length };
    offset += data.length;
    return t;
  });
  const header: Header = { version: 1, step: s.step, rng: s.rng, dtype, extra: s.extra, tensors };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const width = dtype === 'float64' ? 8 : 4;
  const out = new Uint8Array(12 + json.length + offset * width);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  const body = dtype === 'float64' ? new Float64Array(offset) : new Float32Array(offset);
  entries.forEach(([, data], i) => body.set(data as Float32Array, tensors[i].offset));
  out.set(new Uint8Array(body.buffer), 12 + json.length);
  writeFileAtomic(file, out);
}

export function readState(file: string): SavedState {
  const buf = fs.readFileSync(file);
  if (buf.length < 12 || buf.subarray(0, 8).toString('ascii') !== MAGIC) throw new InputError(`${file} is not a tvlens training-state file`);
  const n = buf.readUInt32LE(8);
  const header = JSON.parse(buf.subarray(12, 12 + n).toString('utf8')) as Header;
  const width = header.dtype === 'float64' ? 8 : 4;
  const start = 12 + n;
  const bytes = new Uint8Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length));
  const all = width === 8 ? new Float64Array(bytes.buffer) : new Float32Array(bytes.buffer);
  const s: SavedState = { step: header.step, rng: header.rng, extra: header.extra, params: new Map(), m: new Map(), v: new Map() };
  for (const t of header.tensors) {
    const data = all.slice(t.offset, t.offset + t.length);
    if (t.name.startsWith('adam.m.')) s.m.set(t.name.slice(7), data);
    else if (t.name.startsWith('adam.v.')) s.v.set(t.name.slice(7), data);
    else s.params.set(t.name, data);
  }
  return s;
}
