/** A batch's model inputs (and, for training, its targets and weights) as named tensors for a session. */
import type { Batch } from './types.js';

/** A named input tensor; the runtime's HostTensor has this shape. */
export interface Feed {
  readonly dtype: 'int64' | 'float32';
  readonly shape: readonly number[];
  readonly data: BigInt64Array | Float32Array;
}

/** The model inputs of a batch: `tokens` [B, T], or `inputs` [B, T, dIn] and `markers` [B, T]; with targets, also `weights` and `targets`. */
export function batchFeeds(batch: Batch, withTargets = true): Record<string, Feed> {
  const { batch: B, seq: T } = batch;
  const feeds: Record<string, Feed> =
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
