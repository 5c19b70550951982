/**
 * Model's front end as a new user meets it: the length a fixed-length export declares, prompts as
 * any `{ data, dims }` int64 tensor, one line when prompts are the wrong kind, the cache's
 * TransformerLens conveniences, and every public error class exported.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, InputError, RangeInputError, TrainingDivergedError, TvlensError, openModel } from '../src/index.js';
import { residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { decodeModel, loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { hooksReport } from '../src/cli/hooks.js';
import { resolveModelConfig } from '../src/model/config.js';
import { inferenceGraph } from '../src/model/inference.js';
import { resolveTaskConfig, sampleBatch } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-front-end-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const cfg = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, vocab: 10, maxSeq: 16, initStd: 0.3 });
const params = new Map(inferenceGraph(cfg, 3).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
const task = resolveTaskConfig({ kind: 'discrete', vocab: 8, demos: { min: 2, max: 2 } });
writeCheckpoint(path.join(dir, 'tokens'), cfg, params, { step: 0, seed: 0, task, metrics: {} });
const ckpt = path.join(dir, 'tokens.onnx');
const rows = [
  [0, 8, 1, 9, 2, 8],
  [3, 8, 4, 9, 5, 8],
];

describe('a foreign export whose graph fixes the sequence length', { timeout: 120000 }, () => {
  // The PyTorch fixture traced at 8 positions; declaring that on its input ([batch, 8]) is what
  // torch.onnx.export does without dynamic axes.
  const TORCH = 'tests/fixtures/torch-gpt.onnx';
  const proto = decodeModel(new Uint8Array(fs.readFileSync(TORCH)), TORCH);
  const input = proto.graph!.input!.find((i) => i.name === 'input_ids')!;
  input.type!.tensorType!.shape!.dim![1] = onnxProto.onnx.TensorShapeProto.Dimension.create({ dimValue: 8 });
  const fixed = path.join(dir, 'fixed.onnx');
  fs.writeFileSync(fixed, onnxProto.onnx.ModelProto.encode(proto).finish());
  const hookMap = { hooks: suggestHookMap(residualCandidates(proto)) };

  it('runs shorter prompts padded to the length its graph declares, as the same export given padTo does', async () => {
    await using model = await openModel(fixed, { hookMap });
    expect(model.staticSeq).toBe(8);
    expect(model.maxSeq).toBe(8);
    await using padded = await openModel(TORCH, { hookMap, padTo: 8 });
    const prompts = [[1, 10, 2, 11, 3]];
    const [a, b] = [await model.run(prompts), await padded.run(prompts)];
    expect(a.dims).toEqual([1, 5, 12]);
    expect(maxDiff(a.data, b.data)).toBe(0);
    await expect(model.run([[1, 2, 3, 4, 5, 6, 7, 8, 9]])).rejects.toThrow(/prompts of 9 positions are longer than the (8 that|context of .*fixed\.onnx \(8 positions\))/);
  });

  it('has the length shown by `tvlens hooks`', async () => {
    const r = await hooksReport(fixed, undefined);
    expect(r.staticSeq).toBe(8);
    expect(r.maxSeq).toBe(8);
    expect((await hooksReport(TORCH)).staticSeq).toBeNull();
  });
});

describe('prompts', { timeout: 120000 }, () => {
  it('may be any { data, dims } int64 tensor, as onnxruntime hands one over', async () => {
    await using model = await openModel(ckpt);
    const data = BigInt64Array.from(rows.flat(), (x) => BigInt(x));
    const plain = { data, dims: [2, 6] };
    const [a, b] = [await model.run(plain), await model.run(rows)];
    expect(a.dims).toEqual([2, 6, 10]);
    expect(maxDiff(a.data, b.data)).toBe(0);
    await expect(model.run({ data, dims: [3, 6] })).rejects.toThrow(/int64 tensor \[batch, pos\].*dims \[3, 6\]/);
    await expect(model.run({ data: new Float32Array(12) as unknown as BigInt64Array, dims: [2, 6] })).rejects.toThrow(/BigInt64Array.*got Float32Array/);
  });

  it('of the wrong kind get one line saying what the model takes', async () => {
    const vcfg = resolveModelConfig({ layers: 1, dModel: 8, heads: 2, maxSeq: 24, input: 'vectors', dIn: 3, output: 'vector', dOut: 1 });
    const vparams = new Map(inferenceGraph(vcfg, 1).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
    const vtask = resolveTaskConfig({ kind: 'linreg', linreg: { dIn: 3 }, demos: { min: 2, max: 2 } });
    writeCheckpoint(path.join(dir, 'vectors'), vcfg, vparams, { step: 0, seed: 0, task: vtask, metrics: {} });
    await using vectors = await openModel(path.join(dir, 'vectors.onnx'));
    const err = await vectors.run(rows).catch((e: Error) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(/^\S*vectors\.onnx takes vector prompts \(inputs \[batch, pos, d_in\] with markers\), not token ids: give a batch of a vector task/);
    expect((err as Error).message).not.toMatch(/\n/);
    const batch = sampleBatch(vtask, new Rng(1), 2);
    expect((await vectors.run(batch)).dims).toEqual([2, batch.seq, 1]);
    await using tokens = await openModel(ckpt);
    await expect(tokens.run(batch)).rejects.toThrow(/tokens\.onnx takes token ids \[batch, pos\].*not vectors/);
  });
});

describe("the cache's conveniences", { timeout: 120000 }, () => {
  it('read the residual stream by layer, negative layers from the end, and stack it', async () => {
    await using model = await openModel(ckpt);
    const { cache } = await model.runWithCache(rows);
    expect(cache.resid(0)).toBe(cache.get('blocks.0.hook_resid_pre'));
    expect(cache.resid(1)).toBe(cache.get('blocks.0.hook_resid_post'));
    expect(cache.resid(-1)).toBe(cache.get('blocks.1.hook_resid_post'));
    expect(cache.resid(-3)).toBe(cache.resid(0));
    expect(() => cache.resid(3)).toThrow(/residual layer 3 is out of range: this model has layers 0\.\.2 \(or −3\.\.−1 from the end\)/);
    expect(() => cache.resid(-4)).toThrow(InputError);
    const acc = cache.accumulatedResid();
    expect(acc.labels).toEqual(['embed', '0_resid_post', '1_resid_post']);
    expect(acc.stack.dims).toEqual([3, 2, 6, 16]);
    for (let l = 0; l < 3; l++) expect(Array.from(acc.stack.at(l))).toEqual(Array.from(cache.resid(l).data));
  });

  it('decompose the final stream into what wrote it, and the components sum back to it', async () => {
    await using model = await openModel(ckpt);
    const { cache } = await model.runWithCache(rows);
    const parts = cache.decomposeResid();
    expect(parts.labels).toEqual(['embed', 'pos_embed', '0_attn_out', '0_mlp_out', '1_attn_out', '1_mlp_out']);
    const final = cache.resid(-1);
    const sum = new Float32Array(final.size);
    for (let c = 0; c < parts.labels.length; c++) parts.stack.at(c).forEach((v, i) => (sum[i] += v));
    expect(maxDiff(sum, final.data)).toBeLessThan(1e-5);
  });

  it("attribute the logit of each prompt's token to the components, which with the final LayerNorm's and unembedding's biases add up to the logit", async () => {
    await using model = await openModel(ckpt);
    const { logits, cache } = await model.runWithCache(rows);
    const tokens = [3, 7];
    const attrs = cache.logitAttrs(cache.decomposeResid(), tokens);
    expect(attrs.dims).toEqual([6, 2]);
    const w = loadCheckpoint(ckpt).params;
    const [lnB, WU, bU] = [w.get('ln_final.b')!, w.get('unembed.W_U')!, w.get('unembed.b_U')!];
    tokens.forEach((t, b) => {
      let bias = bU[t];
      for (let d = 0; d < 16; d++) bias += lnB[d] * WU[d * 10 + t];
      let total = bias;
      for (let c = 0; c < 6; c++) total += attrs.get(c, b);
      expect(Math.abs(total - logits.get(b, 5, t))).toBeLessThan(1e-4);
    });
    expect(() => cache.logitAttrs(cache.decomposeResid(), [3])).toThrow(/one token per prompt: 2 prompts, 1 tokens/);
  });
});

describe('the error classes', () => {
  it('are all exported, each a TvlensError', () => {
    for (const E of [InputError, RangeInputError, ConfigError, TrainingDivergedError]) expect(E.prototype).toBeInstanceOf(TvlensError);
    expect(RangeInputError.prototype).toBeInstanceOf(InputError);
  });
});
