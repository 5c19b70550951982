/**
 * Model sources over tvlens checkpoints: hooks with numeric layers, fetching hooks as extra
 * outputs, patch points (exact at mask 0 and 1, and checked against a plain-TS read-out), and the
 * bad-input errors.
 */
import { readModelFile } from '../src/backend/file-open.js';
import { promptFeeds } from '../src/backend/backend.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { FileBackend } from '../src/backend/file.js';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { inferenceGraph } from '../src/model/inference.js';
import { InputError } from '../src/errors.js';
import { resolveModelConfig } from '../src/model/config.js';
import type { HostTensor } from '../src/runtime/session.js';
import { resolveTaskConfig, sampleBatch } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

const TASK = resolveTaskConfig({ kind: 'discrete', vocab: 16, demos: { min: 2, max: 2 } });
const CFG = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, vocab: 18, maxSeq: 12, initStd: 0.3 });
const D = CFG.dModel;

function checkpoint(dir: string, seed: number): string {
  const params = new Map(inferenceGraph(CFG, seed).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
  const file = path.join(dir, `ckpt-${seed}`);
  writeCheckpoint(file, CFG, params, { step: 0, seed, task: TASK, metrics: {} });
  return `${file}.onnx`;
}

const f32 = (shape: number[], data: ArrayLike<number>): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

let dir: string;
let file: string;
let source: FileBackend;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-source-'));
  file = checkpoint(dir, 1);
  source = await FileBackend.open(file);
  return () => source.close();
});

describe('a tvlens checkpoint as a model source', () => {
  it('lists every hook with a numeric layer, and knows its layers, context, input and weights hash', async () => {
    const manifest = JSON.parse(fs.readFileSync(file.replace(/\.onnx$/, '.json'), 'utf8'));
    expect(source.facts.kind).toBe('tvlens');
    expect(source.layers).toBe(2);
    expect(source.facts.maxSeq).toBe(12);
    expect(source.facts.tokenInput).toBe('tokens');
    expect(source.facts.modelHash).toBe(manifest.weightsSha256);
    expect(source.facts.hooks.map((h) => h.name)).toEqual(manifest.hooks);
    expect(source.hook('blocks.1.attn.hook_z')).toMatchObject({ kind: 'attn.hook_z', layer: 1 });
    expect(source.residual(0).name).toBe('blocks.0.hook_resid_pre');
    expect(source.residual(2).name).toBe('blocks.1.hook_resid_post');
    expect((await FileBackend.open(file.replace(/\.onnx$/, '.json'))).facts.modelHash).toBe(source.facts.modelHash);
  });

  it('fetches hooks whose values obey their definitions, and leaves the output as a plain run gives it', async () => {
    const batch = sampleBatch(TASK, new Rng(2), 3, { demos: 2 });
    const plain = await source.run(promptFeeds(batch));
    const r = await source.run(promptFeeds(batch), { fetch: ['blocks.0.hook_resid_mid', 'blocks.0.hook_mlp_out', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_pre', 'blocks.1.attn.hook_pattern'] });
    expect(maxDiff(r.output.data as Float32Array, plain.output.data as Float32Array)).toBe(0);
    expect(Object.keys(plain.hooks)).toEqual([]);
    const h = r.hooks;
    expect(h['blocks.0.hook_resid_post'].shape).toEqual([3, batch.seq, D]);
    expect(h['blocks.1.attn.hook_pattern'].shape).toEqual([3, 2, batch.seq, batch.seq]);
    const mid = h['blocks.0.hook_resid_mid'].data as Float32Array;
    const mlp = h['blocks.0.hook_mlp_out'].data as Float32Array;
    expect(maxDiff(mid.map((v, i) => v + mlp[i]), h['blocks.0.hook_resid_post'].data as Float32Array)).toBeLessThan(1e-6);
    expect(h['blocks.1.hook_resid_pre'].data).toEqual(h['blocks.0.hook_resid_post'].data);
  });

  it('leaves every output bit-identical under a patch with mask 0, in both modes', async () => {
    const batch = sampleBatch(TASK, new Rng(3), 2, { demos: 2 });
    const plain = (await source.run(promptFeeds(batch))).output.data as Float32Array;
    for (const mode of ['replace', 'add'] as const) {
      const r = await source.run(promptFeeds(batch), { patches: [{ hook: 'blocks.0.hook_resid_post', mode, value: f32([D], new Array(D).fill(3)), mask: f32([1], [0]) }] });
      expect(maxDiff(r.output.data as Float32Array, plain)).toBe(0);
    }
  });

  it('reproduces the clean output exactly when a hook is replaced by its own value at mask 1', async () => {
    const batch = sampleBatch(TASK, new Rng(4), 2, { demos: 2 });
    const clean = await source.run(promptFeeds(batch), { fetch: ['blocks.0.hook_resid_mid'] });
    const r = await source.run(promptFeeds(batch), { patches: [{ hook: 'blocks.0.hook_resid_mid', value: clean.hooks['blocks.0.hook_resid_mid'], mask: f32([1], [1]) }] });
    expect(maxDiff(r.output.data as Float32Array, clean.output.data as Float32Array)).toBe(0);
  });

  it('patches the final normalized residual so that the logits are the plain-TS read-out of the patched value', async () => {
    const batch = sampleBatch(TASK, new Rng(5), 2, { demos: 2 });
    const T = batch.seq;
    const q = batch.queryPos[1];
    const v = Array.from({ length: D }, (_, i) => Math.cos(3 * i));
    const mask = Array.from({ length: 2 * T }, (_, i) => (i === T + q ? 1 : 0)); // prompt 1, its query
    const clean = await source.run(promptFeeds(batch), { fetch: ['ln_final.hook_normalized'] });
    const x = clean.hooks['ln_final.hook_normalized'].data as Float32Array;
    const graph = inferenceGraph(CFG, 1).graph;
    const W = graph.params.find((p) => p.value.name === 'unembed.W_U')!.data as Float32Array;
    const bU = graph.params.find((p) => p.value.name === 'unembed.b_U')!.data as Float32Array;
    const V = CFG.vocab;
    const readOut = (h: number[]) => Array.from({ length: V }, (_, j) => h.reduce((s, hv, k) => s + hv * W[k * V + j], bU[j]));
    for (const mode of ['replace', 'add'] as const) {
      const r = await source.run(promptFeeds(batch), { patches: [{ hook: 'ln_final.hook_normalized', mode, value: f32([D], v), mask: f32([2, T, 1], mask) }] });
      const logits = r.output.data as Float32Array;
      const at = T + q;
      const h = mode === 'replace' ? v : v.map((vi, k) => vi + x[at * D + k]);
      expect(maxDiff(logits.subarray(at * V, (at + 1) * V), readOut(h))).toBeLessThan(1e-4);
      // Unmasked positions are untouched.
      expect(maxDiff(logits.subarray(0, at * V), (clean.output.data as Float32Array).subarray(0, at * V))).toBe(0);
    }
  });
});

describe('a checkpoint opened as a foreign model (its .onnx alone)', () => {
  it('has its residual path found through the Identity hook nodes, and the suggested map fetches the same values as its named hooks', async () => {
    const bare = path.join(fs.mkdtempSync(path.join(dir, 'bare-')), 'model.onnx');
    fs.copyFileSync(file, bare);
    const plain = await FileBackend.open(bare);
    expect(plain.facts.kind).toBe('foreign');
    const cands = residualCandidates(plain.proto);
    expect(cands.map((c) => c.suggested)).toEqual(['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_mid', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_mid', 'blocks.1.hook_resid_post']);
    const mapped = await FileBackend.open(bare, { hookMap: suggestHookMap(cands) });
    const batch = sampleBatch(TASK, new Rng(8), 2, { demos: 2 });
    const names = cands.map((c) => c.suggested);
    const [a, b] = [await mapped.run(promptFeeds(batch), { fetch: names }), await source.run(promptFeeds(batch), { fetch: names })];
    for (const n of names) expect(a.hooks[n].data).toEqual(b.hooks[n].data);
    await Promise.all([plain.close(), mapped.close()]);
  });
});

describe('model-source errors', () => {
  it('rejects an ONNX file that is not a model', () => {
    const junk = path.join(dir, 'junk.onnx');
    fs.writeFileSync(junk, 'this is not a protobuf, just text that claims to be a model\n');
    expect(() => readModelFile(junk)).toThrow(InputError);
    expect(() => readModelFile(junk)).toThrow(/junk\.onnx is not an ONNX model/);
    expect(() => readModelFile(path.join(dir, 'missing.onnx'))).toThrow(/does not exist/);
  });

  it('rejects a layer index out of range, giving the valid range', () => {
    expect(() => source.residual(3)).toThrow(/layer 3 is out of range: this model has layers 0\.\.2/);
    expect(() => source.residual(-1)).toThrow(InputError);
  });

  it('rejects an unknown hook name, suggesting the closest', () => {
    expect(() => source.hook('blocks.0.hook_resid_psot')).toThrow(/no hook 'blocks\.0\.hook_resid_psot'.*Did you mean: blocks\.0\.hook_resid_post/);
  });

  it("rejects prompts longer than the model's context, with both lengths", async () => {
    const long = sampleBatch(TASK, new Rng(6), 1, { demos: 3 }); // 14 positions, context 12
    await expect(source.run(promptFeeds(long))).rejects.toThrow(/prompts longer than the model's context: they have 14 positions, .* takes at most 12/);
  });

  it('rejects a hook map for a checkpoint, whose hooks are named already', () => {
    expect(() => readModelFile(file, { hookMap: {} })).toThrow(/tvlens checkpoint.*drop the hook map/);
  });
});
