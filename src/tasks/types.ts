/**
 * Tasks, examples and batches. Batches are flat, row-major typed arrays, ready to hand to ONNX
 * Runtime as tensors without copying.
 */

export const SPLITS = ['train', 'heldout'] as const;
export type Split = (typeof SPLITS)[number];

interface TaskBase<F extends string, P> {
  /** Unique across both splits of one config; -1 for a task drawn fresh for one prompt. */
  id: number;
  family: F;
  /** For reports, e.g. 'offset+3', 'mul×5', 'perm#2', 'linreg', 'sine', 'hmm#0', 'dfa#1'. */
  name: string;
  params: P;
}

/** y = (x + k) mod vocab. */
export type OffsetTask = TaskBase<'offset', { k: number; vocab: number }>;
/** y = (a·x) mod vocab, a coprime to vocab. */
export type MultiplyTask = TaskBase<'multiply', { a: number; vocab: number }>;
/** y = perm[x], one fixed random permutation of the symbols. */
export type PermutationTask = TaskBase<'permutation', { perm: number[] }>;
/** y = w·x. */
export type LinregTask = TaskBase<'linreg', { w: number[] }>;
/** y = a·sin(b·x + c). */
export type SineTask = TaskBase<'sine', { a: number; b: number; c: number }>;
/** A random HMM: rows of `transition` [state][state] and `emission` [state][symbol] sum to 1; the start state is uniform. */
export type HmmTask = TaskBase<'hmm', { transition: number[][]; emission: number[][] }>;
/** A random DFA over `alphabet` (symbol ids); next[state][i] is the state after alphabet[i], or -1 (not allowed). Start state 0. */
export type DfaTask = TaskBase<'dfa', { alphabet: number[]; next: number[][] }>;

export type DiscreteTask = OffsetTask | MultiplyTask | PermutationTask;
export type Task = DiscreteTask | LinregTask | SineTask | HmmTask | DfaTask;
export type Family = Task['family'];

/**
 * One (x, y) pair. Token tasks: x is one symbol (function tasks) or several (hmm, dfa), y a symbol.
 * Vector tasks: x is the input vector (length dIn; a 1-vector for sine), y a scalar.
 */
export interface Example {
  x: number[];
  y: number;
}

/** Out-of-distribution options for evaluation prompts. All default to "off". */
export interface OodOptions {
  /** Regression: multiply the query's x by this (only its effective coordinates). Default 1. */
  queryScale?: number;
  /** Regression: then add this to the query's x. Default 0. The query target is the clean f(x). */
  queryShift?: number;
  /** Regression: std of Gaussian noise added to demo labels; the query target stays clean. Default 0. */
  demoLabelNoise?: number;
  /** Token tasks: probability that a demo label is replaced by a uniformly random symbol. Default 0. */
  demoLabelFlip?: number;
  /** Permute the labels among a prompt's demos (Todd et al.'s shuffled-label prompts). Default false. */
  shuffleLabels?: boolean;
}

interface BatchBase {
  /** B: prompts in the batch. */
  batch: number;
  /** T: positions per prompt; all prompts in a batch have the same length (one demo count). */
  seq: number;
  /** Demos per prompt in this batch. */
  demos: number;
  /** [B*T] 1 at scored positions (every arrow, or every x in pairwise format), else 0. */
  weights: Float32Array;
  /** [B*T] demos seen before this scored position (0 for the first arrow); -1 where unscored. */
  shots: Int32Array;
  /** [B] the task id of each prompt (-1 for a task drawn fresh for that prompt). */
  taskIds: Int32Array;
  /** [B] position of the last scored position (the query's arrow, or the query's last x). */
  queryPos: Int32Array;
  /** Positions an x takes (m), and how far each scored position is past the start of its x (m for triplet, m-1 for pairwise). */
  segment: number;
  xOffset: number;
  /** The task of each prompt, for analysis (holds w for fresh regression tasks). */
  tasks: Task[];
}

export interface TokenBatch extends BatchBase {
  kind: 'tokens';
  /** [B*T] token ids. */
  tokens: BigInt64Array;
  /** [B*T] the token to predict at each scored position (the next token), 0 where unscored. */
  targets: BigInt64Array;
}

export interface VectorBatch extends BatchBase {
  kind: 'vectors';
  dIn: number;
  dOut: number;
  /** [B*T*dIn] x at x positions, [y, 0, …] at y positions, zeros at arrows and separators. */
  inputs: Float32Array;
  /** [B*T] 0 = data, 1 = arrow, 2 = separator (see MARKER). */
  markers: BigInt64Array;
  /** [B*T*dOut] the label to predict at each scored position, 0 where unscored. */
  targets: Float32Array;
}

export type Batch = TokenBatch | VectorBatch;
