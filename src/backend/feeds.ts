/** Prompt feeds as the backends handle them: their [batch, seq], padded to a fixed length, and the output read at one position. */
import { InputError } from '../errors.js';
import type { HostTensor } from '../runtime/session.js';
import type onnxProto from 'onnx-proto';
import { graphInputs } from './onnx-edit.js';

/** [batch, seq] of a prompt batch's feeds. */
export function shapeOf(feeds: Readonly<Record<string, HostTensor>>): [number, number] {
  const first = Object.values(feeds)[0];
  if (!first || first.shape.length < 2) throw new InputError('expected prompt feeds of shape [batch, seq]');
  return [first.shape[0], first.shape[1]];
}

/** The output at one position: [B, P, O] → [B, O]. */
export function outputAt(output: HostTensor, position: number): Float32Array {
  const [B, P, O] = output.shape;
  const data = output.data as Float32Array;
  const out = new Float32Array(B * O);
  for (let n = 0; n < B; n++) out.set(data.subarray((n * P + position) * O, (n * P + position + 1) * O), n * O);
  return out;
}

/** Each feed [B, T, …] padded with zeros on axis 1 to [B, P, …]. */
export function padFeeds(feeds: Readonly<Record<string, HostTensor>>, P: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const [B, T] = t.shape;
    const row = t.data.length / (B * T);
    const data = new (t.data.constructor as new (n: number) => HostTensor['data'])(B * P * row);
    for (let n = 0; n < B; n++) data.set(t.data.subarray(n * T * row, (n + 1) * T * row) as never, n * P * row);
    out[name] = { dtype: t.dtype, shape: [B, P, ...t.shape.slice(2)], data };
  }
  return out;
}

/** An empty key/value cache [batch, heads, 0, d_head] for a with-past export's input `name`: the prompt runs from its start. */
export function emptyPast(model: onnxProto.onnx.ModelProto, name: string, B: number, file: string): HostTensor {
  const dims = graphInputs(model).find((v) => v.name === name)?.type?.tensorType?.shape?.dim ?? [];
  const fixed = dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null));
  if (dims.length !== 4 || fixed[1] === null || fixed[3] === null) {
    throw new InputError(`${file} takes a key/value cache ('${name}') whose shape tvlens cannot tell: export it without past (optimum-cli export onnx --task text-generation)`);
  }
  return { dtype: 'float32', shape: [B, fixed[1], 0, fixed[3]], data: new Float32Array(0) };
}
