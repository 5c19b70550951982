/**
 * The front end's inputs turned into what a backend runs: prompts into feeds (with one line saying
 * what the model takes when they do not fit it), patches as data into value and mask tensors over
 * the whole hook, and padded outputs cut back to the prompts' length.
 */
import type { Patch } from '../backend/backend.js';
import { InputError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { HookPoint } from '../model/hooks.js';
import type { HostTensor } from '../runtime/session.js';
import type { Batch } from '../tasks/index.js';
import { batchFeeds } from '../tasks/feeds.js';
import type { HookPatch, Prompts } from './options.js';
import { Tensor } from './tensor.js';

/** What a model's prompts are, for the line that says so when others are given. */
export interface PromptKind {
  readonly file: string;
  /** 'tokens' (token ids [batch, pos]) or 'vectors' (a vector task's batch: inputs and markers). */
  readonly takes: 'tokens' | 'vectors';
}

/** Prompts as the feeds of a model that takes `kind`. */
export function toFeeds(prompts: Prompts, kind: PromptKind): Record<string, HostTensor> {
  const isBatch = !Array.isArray(prompts) && !(prompts instanceof Tensor) && 'kind' in prompts;
  const given = isBatch ? ((prompts as Batch).kind === 'tokens' ? 'tokens' : 'vectors') : 'tokens';
  if (given !== kind.takes) {
    throw new InputError(
      kind.takes === 'vectors'
        ? `${kind.file} takes vector prompts (inputs [batch, pos, d_in] with markers), not token ids: give a batch of a vector task (resolveTaskConfig → a regression task's batch)`
        : `${kind.file} takes token ids [batch, pos] (rows of ids, an int64 tensor, or a token task's batch), not vectors`,
    );
  }
  if (isBatch) return batchFeeds(prompts as Batch, false);
  if (!Array.isArray(prompts)) {
    // A Tensor, or any { data, dims } (onnxruntime's Tensor has both).
    const t = prompts as { data: unknown; dims: readonly number[] };
    if (!(t.data instanceof BigInt64Array) || !Array.isArray(t.dims) || t.dims.length !== 2 || t.dims[0] * t.dims[1] !== t.data.length) {
      throw new InputError(`token prompts are an int64 tensor [batch, pos] (data a BigInt64Array), got ${t.data?.constructor?.name ?? typeof t.data} with dims [${Array.isArray(t.dims) ? t.dims.join(', ') : '?'}]`);
    }
    return { tokens: { dtype: 'int64', shape: [...t.dims], data: t.data } };
  }
  const rows = prompts as readonly (readonly number[])[];
  if (rows.length === 0 || !rows.every((r) => Array.isArray(r))) throw new InputError('token prompts are rows of token ids, e.g. [[3, 12, 5]]');
  const T = rows[0].length;
  if (T === 0 || rows.some((r) => r.length !== T)) throw new InputError('token prompts must be non-empty rows of one length');
  const data = new BigInt64Array(rows.length * T);
  rows.forEach((r, b) =>
    r.forEach((t, p) => {
      if (!Number.isInteger(t) || t < 0) throw new InputError(`token ${t} (prompt ${b}, position ${p}) is not a token id`);
      data[b * T + p] = BigInt(t);
    }),
  );
  return { tokens: { dtype: 'int64', shape: [rows.length, T], data } };
}

/** The first `T` entries along `axis` (−1: none cut). */
export function cutAxis(t: HostTensor, axis: number, T: number): HostTensor {
  if (axis < 0 || t.shape[axis] === T) return t;
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const P = t.shape[axis];
  const inner = t.data.length / (outer * P);
  const data = new (t.data.constructor as new (n: number) => HostTensor['data'])(outer * T * inner);
  for (let o = 0; o < outer; o++) data.set(t.data.subarray(o * P * inner, (o * P + T) * inner) as never, o * T * inner);
  return { dtype: t.dtype, shape: [...t.shape.slice(0, axis), T, ...t.shape.slice(axis + 1)], data };
}

/**
 * A patch as data → value and mask tensors over the whole hook [B, P, …cell], for prompts of `T`
 * positions run at `P`. `cfg` and `dModel` say what a cell is where the model knows it.
 */
export function hookPatch(p: HookPatch, hook: HookPoint, B: number, T: number, P: number, cfg: ModelConfig | null, dModel: number | null): Patch {
  if (p.mode !== undefined && p.mode !== 'replace' && p.mode !== 'add') throw new InputError(`patch at ${p.hook}: unknown mode ${JSON.stringify(p.mode)}. Should be one of: replace, add`);
  if (p.value === undefined || p.value === null || (typeof p.value !== 'object' && typeof p.value !== 'string')) throw new InputError(`patch at ${p.hook}: no value (give a Tensor or a list of numbers)`);
  if (!(p.value instanceof Tensor) && (typeof p.value === 'string' || typeof (p.value as ArrayLike<number>).length !== 'number')) throw new InputError(`patch at ${p.hook}: the value must be a Tensor or a list of numbers`);
  if (hook.axes[1] !== 'pos') throw new InputError(`patches as data write along the pos axis; ${hook.name} is [${hook.axes.join(', ')}]`);
  const cellRank = hook.axes.length - 2;
  const positions = (p.positions ?? Array.from({ length: T }, (_, i) => i)).map((q) => {
    const at = q < 0 ? T + q : q;
    if (!Number.isInteger(at) || at < 0 || at >= T) throw new InputError(`patch at ${hook.name}: position ${q} is out of range for prompts of ${T} positions`);
    return at;
  });
  const full = p.value instanceof Tensor && p.value.dims.length === hook.axes.length;
  let cellDims: number[];
  if (p.value instanceof Tensor) {
    cellDims = full ? p.value.dims.slice(2) : [...p.value.dims];
    if (full && (p.value.dims[0] !== B || p.value.dims[1] !== positions.length)) {
      throw new InputError(`patch at ${hook.name}: a per-prompt value has dims [${p.value.dims.join(', ')}], expected [${B}, ${positions.length}, …]`);
    }
  } else if (cellRank === 1) cellDims = [p.value.length];
  else if (cfg && hook.kind === 'attn.hook_z') cellDims = [cfg.heads, cfg.dModel / cfg.heads];
  else throw new InputError(`patch at ${hook.name}: give the value as a Tensor with dims [${hook.axes.slice(2).join(', ')}]`);
  const known: Record<string, number | undefined> = { d_model: dModel ?? undefined, head: cfg?.heads, d_head: cfg ? cfg.dModel / cfg.heads : undefined };
  const expected = hook.axes.slice(2).map((a) => known[a]);
  if (cellDims.length !== cellRank || cellDims.some((d, i) => expected[i] !== undefined && d !== expected[i])) {
    throw new InputError(`patch at ${hook.name}: a value of dims [${cellDims.join(', ')}] (${cellDims.reduce((a, b) => a * b, 1)} numbers) does not fit [${hook.axes.slice(2).map((a, i) => expected[i] ?? a).join(', ')}]`);
  }
  const width = cellDims.reduce((a, b) => a * b, 1);
  const src = p.value instanceof Tensor ? p.value.data : p.value;
  if (!full && src.length !== width) throw new InputError(`patch at ${hook.name}: the value has ${src.length} numbers, its dims [${cellDims.join(', ')}] ${width}`);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`patch at ${hook.name}: value ${i} is ${typeof v === 'number' ? v : JSON.stringify(v)}, not a finite number`);
  }
  const value = new Float32Array(B * P * width);
  const mask = new Float32Array(B * P);
  for (let n = 0; n < B; n++) {
    positions.forEach((pos, i) => {
      const from = full ? (n * positions.length + i) * width : 0;
      for (let d = 0; d < width; d++) value[(n * P + pos) * width + d] = Number(src[from + d]);
      mask[n * P + pos] = 1;
    });
  }
  return {
    hook: hook.name,
    mode: p.mode ?? 'replace',
    value: { dtype: 'float32', shape: [B, P, ...cellDims], data: value },
    mask: { dtype: 'float32', shape: [B, P, ...cellDims.map(() => 1)], data: mask },
  };
}
