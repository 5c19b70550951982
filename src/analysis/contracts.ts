/**
 * What the analyses ask of a model, and the vocabulary they share: sites, patches, variants and
 * runs (TransformerLens layouts), the layer convention, the range checks, and the one routine
 * that writes a patch's values. `Engine` (engine.ts) answers the contract for a tvlens checkpoint,
 * `SourceEngine` (source-engine.ts) for any model with a hook map.
 *
 * Layers follow the task-vector convention: residual layer ℓ is the stream entering block ℓ
 * (ℓ = 0 the embeddings, `blocks.0.hook_resid_pre`; ℓ ≥ 1 `blocks.{ℓ-1}.hook_resid_post`; ℓ = L
 * the final stream). A z site at layer ℓ is `blocks.{ℓ}.attn.hook_z`.
 */
import { InputError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { EntrySite } from '../model/suffix.js';
import type { HostTensor } from '../runtime/session.js';
import type { Batch } from '../tasks/index.js';
import { batchFeeds } from '../tasks/feeds.js';

/** A layer, position or head outside the model or the prompt; the message gives the valid range. */
export class RangeInputError extends InputError {
  override name = 'RangeInputError';
}

export const LAYER_CONVENTION =
  'layer ℓ = the residual stream entering block ℓ: ℓ = 0 is the embeddings (blocks.0.hook_resid_pre), ℓ ≥ 1 is blocks.{ℓ-1}.hook_resid_post, ℓ = L the final stream';

/** Where a patch writes: the residual stream at layer ℓ (0..L), or block ℓ's attn.hook_z (0..L−1). */
export type Site = EntrySite;

/** One write into a run. */
export interface SitePatch {
  readonly site: Site;
  /** Positions written, in the prompt. */
  readonly positions: readonly number[];
  /** z sites: the head written; absent for all heads. */
  readonly head?: number;
  /** 'replace' the activation, or 'add' to it. */
  readonly mode: 'replace' | 'add';
  /**
   * The vector written for prompt n at positions[i]: d_model floats (resid), d_head (z, one head)
   * or heads·d_head (z, all heads); null leaves that prompt as it is (a patch for some prompts only).
   */
  readonly value: (n: number, i: number) => ArrayLike<number> | null;
}

/** A patched variant of a base run: its patches, all applied. */
export type Variant = readonly SitePatch[];

/** What the analyses read of a base run. Layouts as in TransformerLens. */
export interface AnalysisRun {
  readonly batch: number;
  readonly seq: number;
  /** resid[ℓ] [B, T, D] for ℓ = 0..L. */
  readonly resid: readonly Float32Array[];
  /** z[ℓ] [B, T, H, dh] for each block, when asked for. */
  readonly z: readonly Float32Array[] | null;
  /** The output at the last position [B, vocab | dOut]. */
  readonly out: Float32Array;
}

/**
 * What task-vector search, patching and locality ask of a model. `Engine` answers it for a tvlens
 * checkpoint through the suffix forward; `SourceEngine` (source-engine.ts) for any model with a
 * hook map, one full forward pass per variant. `Run` is the engine's own base run: `patched`
 * takes only what its own `base` made.
 */
export interface AnalysisEngine<Run extends AnalysisRun = AnalysisRun> {
  /** Blocks, L: residual layers are 0..L. */
  readonly layers: number;
  /** d_model, and the heads where the model's heads can be patched (null: they cannot). */
  readonly dims: { readonly dModel: number; readonly heads: number | null };
  /** Width of the output: vocab (logits) or dOut. */
  readonly outWidth: number;
  /** What outputs record of the model: its config (null for a foreign model) and its hash. */
  readonly modelInfo: { readonly config: ModelConfig | null; readonly weightsSha256?: string };
  /** Checks a residual layer (0..L) or z layer (0..L−1). */
  checkLayer(layer: number, kind?: Site['kind']): void;
  /** Checks that prompts of `seq` positions fit the model's context. */
  checkSeq(seq: number): void;
  /** The residual at every layer at one position [B, L+1, D], and the output at the last position [B, O]. */
  at(feeds: Record<string, HostTensor>, position: number): Promise<{ resid: Float32Array; last: Float32Array }>;
  /** A full forward pass that keeps what patched variants read (z only when asked for). */
  base(feeds: Record<string, HostTensor>, options?: { z?: boolean }): Promise<Run>;
  /** The output at the last position [B, O] of each variant of a base run. */
  patched(base: Run, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]>;
  /** The same, by one full forward pass per variant. */
  patchedNaive(feeds: Record<string, HostTensor>, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/** The input feeds of a prompt batch. */
export const promptFeeds = (batch: Batch): Record<string, HostTensor> => batchFeeds(batch, false);


export const siteKey = (s: Site): string => `${s.kind}.${s.layer}`;

/** Checks a residual layer (0..L) or z layer (0..L−1) of a model with `blocks` blocks. */
export function checkLayer(layer: number, blocks: number, kind: Site['kind'] = 'resid'): void {
  const max = kind === 'resid' ? blocks : blocks - 1;
  if (!Number.isInteger(layer) || layer < 0 || layer > max) {
    const what = kind === 'resid' ? 'residual layer' : 'attn.hook_z layer';
    throw new RangeInputError(`${what} ${layer} is out of range: this model has ${blocks} blocks, so valid layers are 0..${max} (${kind === 'resid' ? 'layer ℓ = the stream entering block ℓ' : 'block index'})`);
  }
}

/** Checks a position of prompts `seq` long. */
export function checkPosition(pos: number, seq: number): void {
  if (!Number.isInteger(pos) || pos < 0 || pos >= seq) throw new RangeInputError(`position ${pos} is out of range: these prompts have positions 0..${seq - 1}`);
}

/**
 * The one patch writer: for prompts [n0, n0 + N) of `p`, each value it writes (null: that prompt
 * is left alone), checked to be `width` numbers, handed to `write` with the prompt (0-based from
 * n0), the position and the value. Replace or add is the caller's `into`: see `writeValue`.
 */
export function forEachWrite(p: SitePatch, n0: number, N: number, width: number, write: (n: number, pos: number, value: ArrayLike<number>) => void): void {
  for (let n = 0; n < N; n++) {
    p.positions.forEach((pos, i) => {
      const value = p.value(n0 + n, i);
      if (value === null) return;
      if (value.length !== width) throw new InputError(`a patch at ${siteKey(p.site)} writes ${value.length} numbers where ${width} are needed`);
      write(n, pos, value);
    });
  }
}

/**
 * Writes `count` numbers of `value` from `from` at `at` of `data`, in a patch's mode: 'replace'
 * (the later write wins) or 'add' (writes add up).
 */
export function writeValue(data: Float32Array, at: number, value: ArrayLike<number>, mode: SitePatch['mode'], from = 0, count = value.length - from): void {
  if (mode === 'replace') for (let d = 0; d < count; d++) data[at + d] = value[from + d];
  else for (let d = 0; d < count; d++) data[at + d] += value[from + d];
}

/** Prompts [from, to) of a set of feeds (every feed has the prompt on axis 0). */
export function sliceFeeds(feeds: Readonly<Record<string, HostTensor>>, from: number, to: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const per = t.data.length / t.shape[0];
    out[name] = { dtype: t.dtype, shape: [to - from, ...t.shape.slice(1)], data: t.data.subarray(from * per, to * per) as HostTensor['data'] };
  }
  return out;
}

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
