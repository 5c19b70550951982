/** The options and inputs of `Model`'s methods, each with its default. */
import type { AttributionOptions } from '../analysis/attribution.js';
import type { FunctionVectorOptions } from '../analysis/function-vectors.js';
import type { PromptPair } from '../analysis/patching.js';
import type { SearchPrompts } from '../analysis/search-prompts.js';
import type { PositionSpec } from '../analysis/cache.js';
import type { Provider } from '../runtime/session.js';
import type { Batch, Split, Task, TaskConfig } from '../tasks/index.js';
import type { PromptRecord } from '../tasks/prompt-file.js';
import type { TextTaskInput } from '../text/tasks.js';
import type { Tensor } from './tensor.js';

export interface OpenModelOptions {
  /**
   * For a foreign model (an .onnx tvlens did not make): a hook map file, or its JSON, mapping
   * the graph's tensor names to hook names. Default: none (the model runs, but has no hooks).
   */
  readonly hookMap?: string | Record<string, unknown>;
  /** Execution provider. Default 'cpu'. */
  readonly provider?: Provider;
  /** ONNX Runtime threads. Default: one per core. */
  readonly threads?: number;
  /**
   * For a foreign export that fixed the sequence length: run prompts padded on the right to this
   * length. Default: the length the graph's token input declares ([batch, 16]), if it declares one.
   */
  readonly padTo?: number;
}

/**
 * Prompts: token ids as rows of equal length or a [batch, pos] int64 tensor (a Tensor, or any
 * `{ data, dims }` as onnxruntime's Tensor has them), or a tvlens batch (vector models too).
 */
export type Prompts = readonly (readonly number[])[] | Tensor<BigInt64Array> | { readonly data: BigInt64Array; readonly dims: readonly number[] } | Batch;

/**
 * A patch as data: write (or add) `value` into `hook` at `positions` of every prompt.
 * `value` is one cell's value (d_model for a residual hook; [head, d_head] for attn.hook_z),
 * broadcast over prompts and positions, or a tensor [batch, positions, …] with one value each.
 */
export interface HookPatch {
  readonly hook: string;
  /** Positions on the hook's pos axis; negative count from the end. Default: every position. */
  readonly positions?: readonly number[];
  readonly value: Tensor | ArrayLike<number>;
  /** 'replace' the activation (default) or 'add' to it. */
  readonly mode?: 'replace' | 'add';
}

export interface RunOptions {
  /** Patches applied in this run. Default none. */
  readonly patches?: readonly HookPatch[];
}

export interface RunWithCacheOptions extends RunOptions {
  /** Hooks to cache, by name. Default: every hook (or those `filter` keeps). */
  readonly names?: readonly string[];
  /** Keeps the hooks for which it returns true. */
  readonly filter?: (name: string) => boolean;
}

/** Prompts for an analysis: a task config to draw them from, or your own (prompt records, or built prompt sets). */
export type SearchInput = TaskConfig | readonly PromptRecord[] | SearchPrompts | TextTaskInput;
export type PatchInput = TaskConfig | readonly PromptRecord[] | PromptPair | TextTaskInput;

export interface CacheToArrowOptions {
  /** Prompts: a task config (drawn with `count`, `seed`, …) or prompt records. Default: a checkpoint's own task config. */
  readonly prompts?: TaskConfig | readonly PromptRecord[];
  /** Hook names or globs; 'resid' is the residual stream at every task-vector layer. Default ['resid']. */
  readonly hooks?: readonly string[];
  /** Keep only hooks of these blocks (block indices 0..L−1, not residual layers). Default: all. */
  readonly blocks?: readonly number[];
  /** Default 'last-arrow' (each prompt's query, or a record's position). */
  readonly positions?: PositionSpec;
  /** Prompts drawn from a task config. Default 256. */
  readonly count?: number;
  readonly seed?: number;
  readonly demos?: number;
  readonly split?: Split;
  /** Prompts per forward pass and record batch. Default 32. */
  readonly chunk?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Options of `Model.functionVectors`: the analysis's own (FunctionVectorOptions, whose other
 * fields give their defaults), with the defaults of those it leaves unsaid written out here.
 */
export interface FunctionVectorsOptions extends FunctionVectorOptions {
  /** These tasks instead of a split's. Default: the split's tasks (at most maxTasks). */
  readonly tasks?: readonly Task[];
  /** Called as each stage goes: (stage, done, total). Default: none. */
  readonly onProgress?: (stage: string, done: number, total: number) => void;
}

/**
 * Options of `Model.attributionPatch`: the analysis's own (AttributionOptions, whose other fields
 * give their defaults), with the defaults of those it leaves unsaid written out here. Prompt pairs
 * of your own go in the method's first argument (or `pairs`).
 */
export interface AttributionPatchOptions extends AttributionOptions {
  /** Tasks of this split. Default 'train'. */
  readonly split?: 'train' | 'heldout';
  /** These tasks instead of a split's. Default: the split's tasks (at most maxTasks). */
  readonly tasks?: readonly Task[];
  /** At most this many tasks. Default 8. */
  readonly maxTasks?: number;
  /** Seed of the prompt pairs. Default 0. */
  readonly seed?: number;
  /** These prompt pairs instead of drawing them from the task config. Default: drawn. */
  readonly pairs?: PromptPair;
  /** Called as exact patching goes: (done, total) cells. Default: none. */
  readonly onProgress?: (done: number, total: number) => void;
}
