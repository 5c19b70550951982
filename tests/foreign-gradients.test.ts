/**
 * Gradients of imported ONNX graphs: PyTorch's exports of a GPT-2-style and a Llama-style decoder
 * rebuilt in the graph IR (graph/import.ts) and differentiated by our own autodiff match PyTorch's
 * autograd on every weight; an op with no rule is one line naming the op and the node.
 */
import fs from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { importForShape, withWeightGradients } from '../src/backend/foreign-grad.js';
import { decodeModel } from '../src/checkpoint/checkpoint.js';
import { GradientError } from '../src/errors.js';
import { gradients, op } from '../src/graph/index.js';
import { importPlan } from '../src/graph/import.js';
import { type HostTensor, Session } from '../src/runtime/session.js';
import { GPT2, LLAMA, maxAbsDiff, readExpected } from './support/decoders.js';

const load = (dir: string) => decodeModel(new Uint8Array(fs.readFileSync(path.join(dir, 'model.onnx'))), dir);

describe.each([
  ['GPT-2 style (LayerNormalization, Erf GELU, Trilu/Where mask)', GPT2],
  ['Llama style (RMSNorm, rotary Sin/Cos/Neg/Slice/Concat, SwiGLU)', LLAMA],
])('the imported %s', (_, dir) => {
  const expected = readExpected(dir);
  const B = expected.inputIds.length;
  const T = expected.inputIds[0].length;

  it('folds the shape arithmetic and keeps only ops on the path from inputs and weights', () => {
    const plan = importPlan(load(dir));
    expect(plan.fold.length).toBeGreaterThan(0);
    const ops = new Set((load(dir).graph!.node ?? []).filter((n) => (n.output ?? []).some((o) => plan.dynamic.has(o))).map((n) => n.opType));
    for (const shapeOp of ['Shape', 'ConstantOfShape', 'Range', 'Constant']) expect(ops.has(shapeOp)).toBe(false);
  });

  it('matches PyTorch: the loss, and d(loss)/d(weight) on every weight to 1e-4 relative', async () => {
    const imported = await importForShape(load(dir), B, T);
    const g = imported.graph;
    const targets = g.input('targets', 'int64', [B, T]);
    const weights = g.input('weights', 'float32', [B, T]);
    const loss = op.crossEntropy(imported.outputs.get('logits')!, targets, weights);
    const { bytes, gradNames } = withWeightGradients(imported, loss);
    const tg = new BigInt64Array(B * T);
    const w = new Float32Array(B * T);
    expected.inputIds.forEach((row, b) => row.slice(1).forEach((t, p) => ((tg[b * T + p] = BigInt(t)), (w[b * T + p] = 1))));
    const int = (data: BigInt64Array): HostTensor => ({ dtype: 'int64', shape: [B, T], data });
    const session = await Session.open(bytes);
    const out = await session.run({
      input_ids: int(BigInt64Array.from(expected.inputIds.flat(), BigInt)),
      attention_mask: int(new BigInt64Array(B * T).fill(1n)),
      position_ids: int(BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T))),
      targets: int(tg),
      weights: { dtype: 'float32', shape: [B, T], data: w },
    });
    await session.release();
    expect(out.loss.data[0]).toBeCloseTo(expected.loss, 4);
    const torchWeights = [...expected.tensors.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
    expect([...gradNames.keys()].sort()).toEqual(torchWeights.sort());
    for (const [weight, output] of gradNames) {
      const want = expected.tensors.get(`grad.${weight}`)!.data;
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(maxAbsDiff(out[output].data as Float32Array, want) / scale, weight).toBeLessThan(1e-4);
    }
  });
});

describe('an op without a gradient rule', () => {
  it('is one line naming the op and the node', async () => {
    // A GPT-2 export with its first Erf replaced by ReduceMax over the last axis: an op tvlens
    // imports and runs, but has no gradient rule for (its [.., 1] output broadcasts on).
    const edited = onnxProto.onnx.ModelProto.decode(onnxProto.onnx.ModelProto.encode(load(GPT2)).finish());
    const node = edited.graph!.node!.find((n) => n.opType === 'Erf')!;
    node.opType = 'ReduceMax';
    node.attribute = [onnxProto.onnx.AttributeProto.create({ name: 'axes', type: 7, ints: [-1] }), onnxProto.onnx.AttributeProto.create({ name: 'keepdims', type: 2, i: 1 })];
    const imported = await importForShape(edited, 1, 4);
    const loss = op.reduceSum(imported.outputs.get('logits')!, [0, 1, 2]);
    const params = [...imported.params.values()];
    expect(() => gradients(loss, params)).toThrow(GradientError);
    expect(() => gradients(loss, params)).toThrow(new RegExp(`^${node.name!.replace(/[/.]/g, '\\$&')}: no gradient rule for op 'ReduceMax'`));
  });

  it('an op the IR does not know at all names itself and its node on import', async () => {
    const model = load(GPT2);
    const edited = onnxProto.onnx.ModelProto.decode(onnxProto.onnx.ModelProto.encode(model).finish());
    const node = edited.graph!.node!.find((n) => n.opType === 'Erf')!;
    node.opType = 'Round';
    await expect(importForShape(edited, 1, 4)).rejects.toThrow(/op Round cannot be imported/);
  });
});
