/**
 * ONNX external data, read by tvlens and never by ONNX Runtime. A model file is untrusted input:
 * each tensor stored outside it names a file, and that file must lie inside the model's own folder
 * (no absolute path, no "..", no symlink that leaves the folder, a regular file), and the bytes it
 * asks for must be there. The data is copied into the model, so the bytes ONNX Runtime gets refer
 * to no file at all, whatever the current directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { InputError } from '../errors.js';

type TensorProto = onnxProto.onnx.ITensorProto;
type GraphProto = onnxProto.onnx.IGraphProto;

const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL

/** Bytes per element of the ONNX data types that can be stored as raw data (0: not allowed). */
const ELEMENT_BYTES: Readonly<Record<number, number>> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

/** Every TensorProto of a graph: initializers, sparse initializers, node attributes, subgraphs. */
function* tensors(g: GraphProto | null | undefined): Generator<TensorProto> {
  if (!g) return;
  yield* g.initializer ?? [];
  for (const s of g.sparseInitializer ?? []) {
    if (s.values) yield s.values;
    if (s.indices) yield s.indices;
  }
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.t) yield a.t;
      yield* a.tensors ?? [];
      yield* tensors(a.g);
      for (const sub of a.graphs ?? []) yield* tensors(sub);
    }
  }
}

/** Whether any tensor of the model keeps its data in another file. */
export function hasExternalData(model: onnxProto.onnx.IModelProto): boolean {
  for (const t of tensors(model.graph)) if (t.dataLocation === EXTERNAL) return true;
  return false;
}

/**
 * Reads every tensor's external data into the model, from files inside the folder of `file` only.
 * Returns the number of tensors inlined. Throws an InputError naming the model and the reference.
 */
export function inlineExternalData(model: onnxProto.onnx.IModelProto, file: string): number {
  let dir: string;
  try {
    dir = fs.realpathSync(path.dirname(path.resolve(file)));
  } catch {
    throw new InputError(`${file}: its folder cannot be read`);
  }
  let n = 0;
  for (const t of tensors(model.graph)) {
    if (t.dataLocation !== EXTERNAL) continue;
    t.rawData = readExternal(t, dir, file);
    t.dataLocation = 0;
    t.externalData = [];
    n++;
  }
  return n;
}

function readExternal(t: TensorProto, dir: string, file: string): Uint8Array {
  const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.get('location') ?? '';
  const what = `${file}: tensor '${t.name ?? '?'}' keeps its data in '${location}'`;
  if (!location) throw new InputError(`${file}: tensor '${t.name ?? '?'}' is marked as external data but names no file`);
  // A relative path inside the folder: no absolute path (either style), no drive, no "..", no NUL.
  if (location.includes('\0') || path.isAbsolute(location) || path.win32.isAbsolute(location) || /^[A-Za-z]:/.test(location)) {
    throw new InputError(`${what}, an absolute path: external data must lie in the model's own folder`);
  }
  if (location.split(/[\\/]/).includes('..')) throw new InputError(`${what}, which leaves the model's folder ('..'): external data must lie in the model's own folder`);
  const target = path.resolve(dir, location);
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch {
    throw new InputError(`${what}, which does not exist beside the model (${target})`);
  }
  if (!real.startsWith(dir + path.sep)) throw new InputError(`${what}, a link that leads out of the model's folder (to ${real}): refused`);
  const elem = ELEMENT_BYTES[t.dataType ?? 0] ?? 0;
  if (!elem) throw new InputError(`${what}, but its data type ${t.dataType} cannot be stored as external data`);
  const count = (t.dims ?? []).reduce<number>((a, d) => a * Number(d), 1);
  const offset = entries.has('offset') ? Number(entries.get('offset')) : 0;
  const expected = count * elem;
  const length = entries.has('length') ? Number(entries.get('length')) : expected;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new InputError(`${what} at offset ${entries.get('offset')} length ${entries.get('length')}: not byte counts`);
  }
  if (length !== expected) throw new InputError(`${what}: ${length} bytes, but its shape [${(t.dims ?? []).join(', ')}] needs ${expected}`);
  const fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new InputError(`${what}, which is not a regular file`);
    if (offset + length > st.size) throw new InputError(`${what}: bytes ${offset}..${offset + length} asked for, but the file has ${st.size}`);
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const got = fs.readSync(fd, buf, done, length - done, offset + done);
      if (got === 0) throw new InputError(`${what}: the file ended early`);
      done += got;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } finally {
    fs.closeSync(fd);
  }
}
