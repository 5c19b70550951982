#!/usr/bin/env node
// Runs tvlens training artifacts with nothing but onnxruntime-node: no tvlens code.
//
//   node scripts/run-artifacts.mjs <artifacts-dir> <batches.bundle> <out.bundle>
//
// <batches.bundle> holds, for steps i = 0..n-1, tensors named `step<i>/<input>` (every batch input
// of training_model.onnx) and `step<i>/lr`. Each step runs the training model (loss and gradients),
// then the optimizer model (AdamW). The final weights and moments are written to <out.bundle>.
// Bundle format: "TVLSTATE", uint32 header length, JSON header {tensors: [{name, dtype, shape,
// offset, bytes}], dataSha256, ...}, then the raw little-endian data (see src/checkpoint/bundle.ts).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

const ARRAYS = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array };

function readBundle(file) {
  const buf = fs.readFileSync(file);
  if (buf.subarray(0, 8).toString('ascii') !== 'TVLSTATE') throw new Error(`${file} is not a tensor bundle`);
  const n = buf.readUInt32LE(8);
  const header = JSON.parse(buf.subarray(12, 12 + n).toString('utf8'));
  const start = buf.byteOffset + 12 + n;
  const tensors = new Map();
  for (const e of header.tensors) {
    const data = new ARRAYS[e.dtype](buf.buffer.slice(start + e.offset, start + e.offset + e.bytes));
    tensors.set(e.name, new ort.Tensor(e.dtype, data, e.shape));
  }
  return { header, tensors };
}

function writeBundle(file, fields, tensors) {
  const entries = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    entries.push({ name, dtype: t.type, shape: t.dims, offset, bytes: t.data.byteLength });
    offset += Math.ceil(t.data.byteLength / 8) * 8;
  }
  const body = Buffer.alloc(offset);
  let i = 0;
  for (const t of tensors.values()) Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(body, entries[i++].offset);
  // dataSha256: the checksum tvlens verifies when it reads a bundle.
  const dataSha256 = createHash('sha256').update(body).digest('hex');
  const json = Buffer.from(JSON.stringify({ ...fields, dataSha256, tensors: entries }));
  const out = Buffer.alloc(12 + json.length);
  out.write('TVLSTATE', 0, 'ascii');
  out.writeUInt32LE(json.length, 8);
  json.copy(out, 12);
  fs.writeFileSync(file, Buffer.concat([out, body]));
}

const [dir, batchesFile, outFile] = process.argv.slice(2);
if (!outFile) {
  console.error('usage: node scripts/run-artifacts.mjs <artifacts-dir> <batches.bundle> <out.bundle>');
  process.exit(2);
}
const training = await ort.InferenceSession.create(path.join(dir, 'training_model.onnx'));
const optimizer = await ort.InferenceSession.create(path.join(dir, 'optimizer_model.onnx'));
const { header, tensors: state } = readBundle(path.join(dir, 'checkpoint'));
const { beta1, beta2 } = header.optimizer;
const batches = readBundle(batchesFile).tensors;
const params = [...state.keys()].filter((k) => !k.startsWith('adam.'));
const steps = new Set([...batches.keys()].map((k) => k.split('/')[0])).size;
const scalar = (x) => new ort.Tensor('float32', Float32Array.of(x), []);

let step = header.step;
for (let i = 0; i < steps; i++) {
  const feeds = {};
  for (const [k, t] of batches) if (k.startsWith(`step${i}/`) && !k.endsWith('/lr')) feeds[k.slice(`step${i}/`.length)] = t;
  for (const p of params) feeds[p] = state.get(p);
  const grads = await training.run(feeds);
  step++;
  const opt = { lr: scalar(batches.get(`step${i}/lr`).data[0]), 'adam.c1': scalar(1 / (1 - beta1 ** step)), 'adam.c2': scalar(1 / (1 - beta2 ** step)) };
  for (const p of params) {
    opt[p] = state.get(p);
    opt[`grad.${p}`] = grads[`grad.${p}`];
    opt[`adam.m.${p}`] = state.get(`adam.m.${p}`);
    opt[`adam.v.${p}`] = state.get(`adam.v.${p}`);
  }
  const updated = await optimizer.run(opt);
  for (const [k, t] of Object.entries(updated)) if (k.startsWith('updated.')) state.set(k.slice('updated.'.length), t);
  console.log(`step ${step}: loss ${grads.loss.data[0].toFixed(5)}`);
}
writeBundle(outFile, { ...header, step }, state);
