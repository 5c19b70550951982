/** The PyTorch-made decoder fixtures (scripts/fixtures/make_decoders.py) and what PyTorch computed on them. */
import fs from 'node:fs';
import path from 'node:path';

export const DECODERS = path.resolve(__dirname, '..', 'fixtures', 'decoders');
export const GPT2 = path.join(DECODERS, 'gpt2');
export const GPT2_FIXED = path.join(DECODERS, 'gpt2-fixed');
export const LLAMA = path.join(DECODERS, 'llama');

export interface Expected {
  readonly inputIds: number[][];
  readonly loss: number;
  /** By name: 'logits', 'resid.{ℓ}', 'grad.{parameter}' (the ONNX initializer of that name). */
  readonly tensors: ReadonlyMap<string, { shape: number[]; data: Float32Array }>;
}

export function readExpected(dir: string): Expected {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { input_ids: number[][]; loss: number; tensors: { name: string; shape: number[]; offset: number }[] };
  const buf = fs.readFileSync(path.join(dir, 'expected.bin'));
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const tensors = new Map(index.tensors.map((t) => [t.name, { shape: t.shape, data: all.slice(t.offset, t.offset + t.shape.reduce((a, b) => a * b, 1)) }]));
  return { inputIds: index.input_ids, loss: index.loss, tensors };
}

/** The largest |a − b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} and ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
