/** Joins batches of the same layout (same kind, length and widths) along the batch axis. */
import { InputError } from '../errors.js';
import type { Batch, TokenBatch, VectorBatch } from './types.js';

export function concatBatches(parts: readonly Batch[]): Batch {
  const first = parts[0];
  for (const b of parts) {
    if (b.kind !== first.kind || b.seq !== first.seq) throw new InputError(`cannot join a ${b.kind} batch of length ${b.seq} to a ${first.kind} batch of length ${first.seq}`);
  }
  const join = <T extends { length: number; set(a: ArrayLike<unknown>, o: number): void }>(pick: (b: Batch) => T, make: (n: number) => T): T => {
    const out = make(parts.reduce((n, b) => n + pick(b).length, 0));
    let at = 0;
    for (const b of parts) {
      out.set(pick(b) as unknown as ArrayLike<unknown>, at);
      at += pick(b).length;
    }
    return out;
  };
  const common = {
    batch: parts.reduce((n, b) => n + b.batch, 0),
    seq: first.seq,
    demos: first.demos,
    weights: join((b) => b.weights, (n) => new Float32Array(n)),
    shots: join((b) => b.shots, (n) => new Int32Array(n)),
    taskIds: join((b) => b.taskIds, (n) => new Int32Array(n)),
    queryPos: join((b) => b.queryPos, (n) => new Int32Array(n)),
    tasks: parts.flatMap((b) => b.tasks),
  };
  if (first.kind === 'tokens') {
    return {
      kind: 'tokens',
      ...common,
      tokens: join((b) => (b as TokenBatch).tokens, (n) => new BigInt64Array(n)),
      targets: join((b) => (b as TokenBatch).targets, (n) => new BigInt64Array(n)),
    };
  }
  return {
    kind: 'vectors',
    ...common,
    dIn: first.dIn,
    dOut: first.dOut,
    inputs: join((b) => (b as VectorBatch).inputs, (n) => new Float32Array(n)),
    markers: join((b) => (b as VectorBatch).markers, (n) => new BigInt64Array(n)),
    targets: join((b) => (b as VectorBatch).targets, (n) => new Float32Array(n)),
  };
}
