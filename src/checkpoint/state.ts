/**
 * The training-state file (`*.state`): a tensor bundle (see bundle.ts) holding the weights (by
 * parameter name), the AdamW moments (`adam.m.<param>`, `adam.v.<param>`), and in its header the
 * step, the data RNG's state (xoshiro128**, four uint32), the run id and the config's hash. The
 * bundle's data checksum catches changed or truncated bytes; `verifyState` checks the rest before
 * a resume trusts the file.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../errors.js';
import type { TypedData } from '../graph/ir.js';
import type { HostTensor } from '../runtime/session.js';
import { readBundle, writeBundle } from './bundle.js';

/** Everything a checkpoint needs to continue training exactly: the step, the weights and AdamW's moments. */
export interface OptimizerState {
  /** Steps taken so far. */
  step: number;
  params: Map<string, TypedData>;
  m: Map<string, TypedData>;
  v: Map<string, TypedData>;
}

export interface SavedState extends OptimizerState {
  rng: number[];
  /** The run this state belongs to (run.json's runId); absent in files written before run ids. */
  runId?: string;
  /** sha256 of the run config; absent in files written before it was recorded. */
  configSha256?: string;
}

/** sha256 of a config, as the state file and run.json record it. */
export const configHash = (cfg: unknown): string => createHash('sha256').update(JSON.stringify(cfg)).digest('hex');

export function writeState(file: string, s: SavedState, shapes?: ReadonlyMap<string, readonly number[]>): void {
  const tensors = new Map<string, HostTensor>();
  const put = (name: string, param: string, data: TypedData) =>
    tensors.set(name, { dtype: data instanceof Float64Array ? 'float64' : 'float32', shape: shapes?.get(param) ?? [data.length], data });
  for (const [k, v] of s.params) put(k, k, v);
  for (const [k, v] of s.m) put(`adam.m.${k}`, k, v);
  for (const [k, v] of s.v) put(`adam.v.${k}`, k, v);
  const ids = { ...(s.runId ? { runId: s.runId } : {}), ...(s.configSha256 ? { configSha256: s.configSha256 } : {}) };
  writeBundle(file, { format: 'tvlens-state/1', step: s.step, rng: s.rng, ...ids }, tensors);
}

export function readState(file: string): SavedState {
  const { fields, tensors } = readBundle(file);
  const bad = (why: string) => new InputError(`${file} is not a usable training state (${why})`);
  if (!Number.isInteger(fields.step) || (fields.step as number) < 0) throw bad('its header has no step');
  const rng = fields.rng;
  if (!Array.isArray(rng) || rng.length !== 4 || !rng.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)) throw bad('its header has no data-RNG state');
  const s: SavedState = {
    step: fields.step as number,
    rng: rng as number[],
    params: new Map(),
    m: new Map(),
    v: new Map(),
    ...(typeof fields.runId === 'string' ? { runId: fields.runId } : {}),
    ...(typeof fields.configSha256 === 'string' ? { configSha256: fields.configSha256 } : {}),
  };
  for (const [name, t] of tensors) {
    if (name.startsWith('adam.m.')) s.m.set(name.slice(7), t.data);
    else if (name.startsWith('adam.v.')) s.v.set(name.slice(7), t.data);
    else s.params.set(name, t.data);
  }
  return s;
}

export interface StateExpectation {
  /** The step the file's name says. */
  readonly step: number;
  /** The run folder's id (run.json), when it has one. */
  readonly runId?: string;
  readonly configSha256: string;
  /** The model's parameters and their element counts. */
  readonly params: ReadonlyMap<string, number>;
  /** The weights hash of the manifest beside the state, when there is one. */
  readonly weightsSha256?: string;
  /** Computes the weights hash as the manifest does. */
  readonly hashWeights?: (params: ReadonlyMap<string, TypedData>) => string;
}

/**
 * Checks a state read from `file` against what the run folder expects, and throws an InputError
 * naming the file on the first mismatch: another run's state, another step's, another config's,
 * weights that are not the checkpoint's, or tensors the model does not have.
 */
export function verifyState(file: string, s: SavedState, want: StateExpectation): void {
  const refuse = (why: string) => new InputError(`${file}: ${why}; refusing to resume from it (move it away to resume from the checkpoint before it)`);
  if (s.step !== want.step) throw refuse(`it holds step ${s.step}, but its name says step ${want.step}`);
  if (s.runId && want.runId && s.runId !== want.runId) throw refuse(`it belongs to another run (run id ${s.runId.slice(0, 8)}…, this folder's is ${want.runId.slice(0, 8)}…)`);
  if (s.configSha256 && s.configSha256 !== want.configSha256) throw refuse('it was written with another config');
  for (const [name, count] of want.params) {
    for (const [what, map] of [
      ['weights', s.params],
      ['first moments', s.m],
      ['second moments', s.v],
    ] as const) {
      const d = map.get(name);
      if (!d) throw refuse(`its ${what} lack the parameter '${name}'`);
      if (d.length !== count) throw refuse(`its ${what} of '${name}' have ${d.length} elements, the model's have ${count}`);
    }
  }
  for (const name of s.params.keys()) if (!want.params.has(name)) throw refuse(`it has a parameter '${name}' the model lacks`);
  if (want.weightsSha256 && want.hashWeights) {
    const f32 = new Map([...s.params].map(([k, v]) => [k, v instanceof Float32Array ? v : Float32Array.from(v as Float64Array)]));
    if (want.hashWeights(f32) !== want.weightsSha256) throw refuse("its weights do not match the checkpoint's manifest beside it");
  }
}
