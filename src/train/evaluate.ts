/**
 * In-context-learning evaluation on fresh prompts: the score at each scored position, grouped by
 * how many demos preceded it. Accuracy for token tasks, normalised MSE (MSE ÷ mean y²) for
 * regression, so that a model that always answers 0 scores 1.
 */
import type { HostTensor } from '../runtime/session.js';
import type { Batch } from '../tasks/index.js';

export interface ShotCurve {
  /** 'accuracy' (higher is better) or 'nmse' (lower is better). */
  readonly metric: 'accuracy' | 'nmse';
  /** score[k] = the metric over scored positions that had k demos before them. */
  readonly byShots: readonly number[];
  /** Scored positions behind each entry. */
  readonly counts: readonly number[];
}

/** The model inputs of a batch, as session feeds. */
export function batchFeeds(batch: Batch, withTargets = true): Record<string, HostTensor> {
  const { batch: B, seq: T } = batch;
  const feeds: Record<string, HostTensor> =
    batch.kind === 'tokens'
      ? { tokens: { dtype: 'int64', shape: [B, T], data: batch.tokens } }
      : { inputs: { dtype: 'float32', shape: [B, T, batch.dIn], data: batch.inputs }, markers: { dtype: 'int64', shape: [B, T], data: batch.markers } };
  if (withTargets) {
    feeds.weights = { dtype: 'float32', shape: [B, T], data: batch.weights };
    feeds.targets =
      batch.kind === 'tokens'
        ? { dtype: 'int64', shape: [B, T], data: batch.targets }
        : { dtype: 'float32', shape: [B, T, batch.dOut], data: batch.targets };
  }
  return feeds;
}

/** Per scored position: 1/0 correctness (tokens) or squared error (vectors), with its shot count. */
export function scorePositions(batch: Batch, output: HostTensor): { shots: number; value: number; target: number }[] {
  const out: { shots: number; value: number; target: number }[] = [];
  const width = output.shape[2];
  const data = output.data as Float32Array;
  for (let i = 0; i < batch.weights.length; i++) {
    if (batch.weights[i] === 0) continue;
    const row = data.subarray(i * width, (i + 1) * width);
    if (batch.kind === 'tokens') {
      out.push({ shots: batch.shots[i], value: argmax(row) === Number(batch.targets[i]) ? 1 : 0, target: 0 });
    } else {
      let se = 0;
      let y2 = 0;
      for (let j = 0; j < width; j++) {
        const y = batch.targets[i * width + j];
        se += (row[j] - y) ** 2;
        y2 += y * y;
      }
      out.push({ shots: batch.shots[i], value: se / width, target: y2 / width });
    }
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

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}
