/**
 * The one backend contract behind `Model` (nnsight's shape: one front end, one small interface),
 * and the vocabulary it shares with the analyses: sites, patches, variants and runs
 * (TransformerLens layouts), the layer convention, the range checks, and the one routine that
 * writes a patch's values. Two backends answer it:
 *
 *   FileBackend   (file.ts)   runs an ONNX file as it is, fetching and patching hooks by graph
 *                             rewrites: any model with a hook map, a foreign export included;
 *   GraphBackend  (graph.ts)  a tvlens checkpoint: `run` executes its file, the analyses a graph
 *                             rebuilt from its config and weights (the suffix forward reuses
 *                             everything before a patch). tests/backend.test.ts holds the two to
 *                             1e-6 on every hook of a checkpoint.
 *
 * `openBackend` (open.ts) picks one for a file; only `Model` calls it.
 *
 * Layers follow the task-vector convention: residual layer ℓ is the stream entering block ℓ
 * (ℓ = 0 the embeddings, `blocks.0.hook_resid_pre`; ℓ ≥ 1 `blocks.{ℓ-1}.hook_resid_post`; ℓ = L
 * the final stream). A z site at layer ℓ is `blocks.{ℓ}.attn.hook_z`.
 */
import type { Manifest } from '../checkpoint/checkpoint.js';
import { InputError, RangeInputError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { HookPoint } from '../model/hooks.js';
import type { EntrySite } from '../model/suffix.js';
import type { ModelFolder } from './model-folder.js';
import type { HostTensor } from '../runtime/session.js';
import type { Batch } from '../tasks/index.js';
import { batchFeeds } from '../tasks/feeds.js';

export { RangeInputError } from '../errors.js';

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

/** A patch at one hook for one run. Both tensors broadcast against the hook's shape. */
export interface Patch {
  readonly hook: string;
  readonly value: HostTensor;
  /** 1 where the value is written (or added), 0 where the model's own value stays. */
  readonly mask: HostTensor;
  /** Default 'replace'. */
  readonly mode?: 'replace' | 'add';
}

export interface RunOptions {
  /** Hooks to return, by name. Default: none. */
  readonly fetch?: readonly string[];
  /** Tensors to return by their names in the graph (not hooks): what a graph suffix reads. Default: none. */
  readonly tensors?: readonly string[];
  readonly patches?: readonly Patch[];
}

export interface RunResult {
  /** The model's main output (logits or predictions). */
  readonly output: HostTensor;
  /** Each fetched hook, by hook name. A patched hook shows its value before the patch. */
  readonly hooks: Readonly<Record<string, HostTensor>>;
  /** Each tensor of `tensors`, by its name in the graph. */
  readonly tensors: Readonly<Record<string, HostTensor>>;
}

/** What a backend knows of its model without running it. */
export interface ModelFacts {
  /** 'tvlens': a checkpoint (its manifest beside it); 'foreign': any other ONNX model. */
  readonly kind: 'tvlens' | 'foreign';
  /** The .onnx file. */
  readonly file: string;
  /** A checkpoint's manifest (read once, when the backend opened); null for a foreign model. */
  readonly manifest: Manifest | null;
  /** The manifest's weightsSha256 for a checkpoint, the sha256 of the file for a foreign model. */
  readonly modelHash: string;
  /** Number of transformer blocks. */
  readonly layers: number;
  /** The hooks this model can fetch and patch, in forward order. */
  readonly hooks: readonly HookPoint[];
  /** The input that takes token ids [batch, seq] (or markers, for vector models), and the main output. */
  readonly tokenInput: string;
  readonly output: string;
  /** The longest prompt the model takes, where known. */
  readonly maxSeq: number | null;
  /** The sequence length the graph's token input fixes ([batch, 16]), where it fixes one. */
  readonly staticSeq: number | null;
  /** The model folder it was opened from (model.onnx, tokenizer.json, config.json), or null for a file. */
  readonly folder: ModelFolder | null;
}

/**
 * The backend contract. `run` executes the model once, fetching and patching any hooks;
 * `at`, `base` and `patched` are what task-vector search, patching and locality ask of it. `Run`
 * is the backend's own base run: `patched` takes only what its own `base` made.
 */
export interface Backend<Run extends AnalysisRun = AnalysisRun> {
  readonly facts: ModelFacts;
  /** Prompts run padded on the right to this length (a fixed-length export); null: at their own length. */
  readonly padTo: number | null;
  /** A hook by name, or an error listing the closest names. */
  hook(name: string): HookPoint;
  /** The residual hook at residual layer ℓ (LAYER_CONVENTION). */
  residual(layer: number): HookPoint;
  /** The tensor in the graph behind a hook. */
  tensorOf(hook: string): string;
  /** One forward pass: the output, and the hooks asked for, with the patches written in. */
  run(feeds: Readonly<Record<string, HostTensor>>, options?: RunOptions): Promise<RunResult>;
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
  /** Releases every session; the backend is unusable afterwards. */
  close(): Promise<void>;
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
