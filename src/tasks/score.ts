/**
 * Scoring model outputs against a batch's targets: the one implementation that training
 * evaluation, the analyses and patching share. Token tasks score 1/0 correctness (argmax) and the
 * answer's probability; regression scores the squared error, with y² kept to normalise it (nMSE =
 * MSE ÷ mean y², so a model that always answers 0 scores 1).
 */
import { dfaAllowedNext } from './dfa.js';
import { hmmNextDistribution } from './hmm.js';
import type { Batch, TokenBatch } from './types.js';

/** The index of the largest entry (the first, on ties). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

/** softmax(row)[j], computed stably. */
export function softmaxAt(row: ArrayLike<number>, j: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i] - max);
  return Math.exp(row[j] - max) / z;
}

/** Squared error and y², each the mean over the row's dims, of a prediction row against `targets[at..at+row.length)`. */
export function squaredError(row: ArrayLike<number>, targets: ArrayLike<number>, at: number): { se: number; y2: number } {
  let se = 0;
  let y2 = 0;
  for (let j = 0; j < row.length; j++) {
    const y = targets[at + j];
    se += (row[j] - y) ** 2;
    y2 += y * y;
  }
  return { se: se / row.length, y2: y2 / row.length };
}

/** The x tokens of the example whose scored position is flat index `i` (= prompt·T + pos). */
export function exampleInput(batch: TokenBatch, i: number): number[] {
  const start = i - batch.xOffset;
  return Array.from(batch.tokens.subarray(start, start + batch.segment), Number);
}

/**
 * Whether token `guess` is right at flat position `i`. Function tasks: it is the target. Sequence
 * tasks, whose y is sampled: RegBench (DFA) counts any symbol the DFA allows after x (Akyürek et
 * al. 2024); GINC (HMM) counts agreement with the task-known Bayes-optimal prediction (the argmax
 * of P(y | x, HMM)), so a perfect in-context learner scores 1 rather than the sampling ceiling.
 */
export function tokenCorrect(batch: TokenBatch, guess: number, i: number): boolean {
  const task = batch.tasks[Math.floor(i / batch.seq)];
  if (task?.family === 'dfa') return dfaAllowedNext(task, exampleInput(batch, i)).includes(guess);
  if (task?.family === 'hmm') return guess === argmax(hmmNextDistribution(task, exampleInput(batch, i)));
  return guess === Number(batch.targets[i]);
}

/** One output row scored against the batch's target at flat position `i` (= prompt·T + pos). */
function scoreAt(batch: Batch, row: ArrayLike<number>, i: number): { value: number; y2: number } {
  if (batch.kind === 'tokens') return { value: tokenCorrect(batch, argmax(row), i) ? 1 : 0, y2: 0 };
  const { se, y2 } = squaredError(row, batch.targets, i * batch.dOut);
  return { value: se, y2 };
}

// ---- every scored position (training evaluation) ------------------------------------------------

export interface ShotCurve {
  /** 'accuracy' (higher is better) or 'nmse' (lower is better). */
  readonly metric: 'accuracy' | 'nmse';
  /** score[k] = the metric over scored positions that had k demos before them. */
  readonly byShots: readonly number[];
  /** Scored positions behind each entry. */
  readonly counts: readonly number[];
}

/** Per scored position: 1/0 correctness (tokens) or squared error (vectors), with its shot count; `output` is [B, T, width]. */
export function scorePositions(batch: Batch, output: { readonly shape: readonly number[]; readonly data: unknown }): { shots: number; value: number; target: number }[] {
  const out: { shots: number; value: number; target: number }[] = [];
  const width = output.shape[2];
  const data = output.data as Float32Array;
  for (let i = 0; i < batch.weights.length; i++) {
    if (batch.weights[i] === 0) continue;
    const s = scoreAt(batch, data.subarray(i * width, (i + 1) * width), i);
    out.push({ shots: batch.shots[i], value: s.value, target: s.y2 });
  }
  return out;
}

/** Groups scored positions by shot count into a curve. */
export function shotCurve(kind: Batch['kind'], scores: readonly { shots: number; value: number; target: number }[]): ShotCurve {
  const maxShots = Math.max(...scores.map((s) => s.shots));
  const sum = new Array(maxShots + 1).fill(0);
  const counts = new Array(maxShots + 1).fill(0);
  let y2 = 0;
  for (const s of scores) {
    sum[s.shots] += s.value;
    counts[s.shots]++;
    y2 += s.target;
  }
  const norm = kind === 'tokens' ? 1 : y2 / scores.length || 1;
  return { metric: kind === 'tokens' ? 'accuracy' : 'nmse', byShots: sum.map((v, k) => v / counts[k] / norm), counts };
}

// ---- each prompt's query (the analyses) ---------------------------------------------------------

/** The score of each prompt's output at its query: 1/0 correct (tokens), or squared error and y² (vectors). */
export interface QueryScores {
  readonly metric: 'accuracy' | 'nmse';
  /** Per prompt: correct (0/1) or the squared error (mean over output dims). */
  readonly value: Float64Array;
  /** Per prompt: y² (mean over output dims), to normalise squared errors; 0 for tokens. */
  readonly y2: Float64Array;
}

/** Scores outputs [B, O] taken at each prompt's last position against the target at its query. */
export function scoreQueries(batch: Batch, out: Float32Array): QueryScores {
  const B = batch.batch;
  const O = out.length / B;
  const value = new Float64Array(B);
  const y2 = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    const s = scoreAt(batch, out.subarray(b * O, (b + 1) * O), b * batch.seq + batch.queryPos[b]);
    value[b] = s.value;
    y2[b] = s.y2;
  }
  return { metric: batch.kind === 'tokens' ? 'accuracy' : 'nmse', value, y2 };
}

/** The answer token of each prompt at its query (NaN for regression), for logit differences. */
export function queryTargets(batch: Batch): number[] {
  return Array.from({ length: batch.batch }, (_, b) => (batch.kind === 'tokens' ? Number(batch.targets[b * batch.seq + batch.queryPos[b]]) : NaN));
}
