/** Joins batches of the same layout (same kind, length and widths) along the batch axis. */
import { InputError } from '../errors.js';
import type { Batch, TokenBatch, VectorBatch } from './types.js';

export function concatBatches(parts: readonly Batch[]): Batch {
  if (parts.length === 0) throw new InputError('no prompts to join');
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
    segment: first.segment,
    xOffset: first.xOffset,
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

/** Prompts [from, to) of a batch, as a batch of their own (views, no copy). */
export function sliceBatch(b: Batch, from: number, to: number): Batch {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > b.batch || from >= to) throw new InputError(`prompts ${from}..${to} are not a slice of a batch of ${b.batch}`);
  const T = b.seq;
  const rows = <A extends { subarray(a: number, e: number): A }>(a: A, width = 1) => a.subarray(from * T * width, to * T * width);
  const common = {
    batch: to - from,
    seq: T,
    demos: b.demos,
    weights: rows(b.weights),
    shots: rows(b.shots),
    taskIds: b.taskIds.subarray(from, to),
    queryPos: b.queryPos.subarray(from, to),
    segment: b.segment,
    xOffset: b.xOffset,
    tasks: b.tasks.slice(from, to),
  };
  if (b.kind === 'tokens') return { kind: 'tokens', ...common, tokens: rows(b.tokens), targets: rows(b.targets) };
  return { kind: 'vectors', ...common, dIn: b.dIn, dOut: b.dOut, inputs: rows(b.inputs, b.dIn), markers: rows(b.markers), targets: rows(b.targets, b.dOut) };
}
