/**
 * The training-state file (`*.state`): a tensor bundle (see bundle.ts) holding the weights (by
 * parameter name), the AdamW moments (`adam.m.<param>`, `adam.v.<param>`), and in its header the
 * step, the data RNG's state (xoshiro128**, four uint32) and the parameter shapes.
 */
import type { TypedData } from '../graph/ir.js';
import type { HostTensor } from '../runtime/session.js';
import type { OptimizerState } from '../train/step.js';
import { readBundle, writeBundle } from './bundle.js';

export interface SavedState extends OptimizerState {
  rng: number[];
}

export function writeState(file: string, s: SavedState, shapes?: ReadonlyMap<string, readonly number[]>): void {
  const tensors = new Map<string, HostTensor>();
  const put = (name: string, param: string, data: TypedData) =>
    tensors.set(name, { dtype: data instanceof Float64Array ? 'float64' : 'float32', shape: shapes?.get(param) ?? [data.length], data });
  for (const [k, v] of s.params) put(k, k, v);
  for (const [k, v] of s.m) put(`adam.m.${k}`, k, v);
  for (const [k, v] of s.v) put(`adam.v.${k}`, k, v);
  writeBundle(file, { format: 'tvlens-state/1', step: s.step, rng: s.rng }, tensors);
}

export function readState(file: string): SavedState {
  const { fields, tensors } = readBundle(file);
  const s: SavedState = { step: fields.step as number, rng: fields.rng as number[], params: new Map(), m: new Map(), v: new Map() };
  for (const [name, t] of tensors) {
    if (name.startsWith('adam.m.')) s.m.set(name.slice(7), t.data);
    else if (name.startsWith('adam.v.')) s.v.set(name.slice(7), t.data);
    else s.params.set(name, t.data);
  }
  return s;
}
