/**
 * The two backends behind Model run a checkpoint two ways: the FileBackend executes its .onnx file,
 * the GraphBackend graphs rebuilt from its config and weights (the analyses' base, naive and suffix
 * graphs). On one checkpoint they must agree: every hook, the residual stream at every layer, the
 * heads' z, the output, and patched variants.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Variant, promptFeeds } from '../src/backend/backend.js';
import { FileBackend } from '../src/backend/file.js';
import { GraphBackend } from '../src/backend/graph.js';
import { loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { resolveModelConfig } from '../src/model/config.js';
import { hookPoint } from '../src/model/hooks.js';
import { inferenceGraph } from '../src/model/inference.js';
import { resolveTaskConfig, sampleBatch } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-backend-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const task = resolveTaskConfig({ kind: 'discrete', vocab: 8, demos: { min: 2, max: 2 } });

for (const positional of ['learned', 'rotary'] as const) {
  describe(`a checkpoint with ${positional} positions, run by both backends`, { timeout: 120000 }, () => {
    // A large init scale makes activations far from uniform, so a difference would show.
    const cfg = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, vocab: 10, maxSeq: 16, positional, initStd: 0.3 });
    const params = new Map(inferenceGraph(cfg, 11).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
    const file = path.join(dir, positional);
    writeCheckpoint(file, cfg, params, { step: 0, seed: 0, task, metrics: {} });
    const graph = GraphBackend.fromCheckpoint(loadCheckpoint(`${file}.onnx`));
    const rebuilt = GraphBackend.open({ cfg, params }); // no file: `run` executes the inference graph rebuilt from the weights
    const onnx = FileBackend.open(`${file}.onnx`);
    afterAll(async () => {
      await graph.close();
      await rebuilt.close();
      await (await onnx).close();
    });
    const feeds = promptFeeds(sampleBatch(task, new Rng(3), 3, { demos: 2 }));
    const hooks = graph.facts.hooks.map((h) => h.name);

    it('fetch every hook alike from the file and from the graph rebuilt from the weights (to 1e-6)', async () => {
      const [a, b] = [await (await onnx).run(feeds, { fetch: hooks }), await rebuilt.run(feeds, { fetch: hooks })];
      expect(hooks.length).toBeGreaterThan(10);
      for (const h of hooks) expect(maxDiff(a.hooks[h].data as Float32Array, b.hooks[h].data as Float32Array), h).toBeLessThanOrEqual(1e-6);
      expect(maxDiff(a.output.data as Float32Array, b.output.data as Float32Array)).toBeLessThanOrEqual(1e-6);
    });

    it("give the analyses' base run as the file's hooks say: every residual layer, every head's z, the last output (to 1e-6)", async () => {
      const f = await onnx;
      const base = await graph.base(feeds, { z: true });
      const fb = await f.base(feeds);
      const ran = await f.run(feeds, { fetch: hooks });
      for (let l = 0; l <= cfg.layers; l++) expect(maxDiff(base.resid[l], fb.resid[l]), `resid ${l}`).toBeLessThanOrEqual(1e-6);
      for (let l = 0; l < cfg.layers; l++) expect(maxDiff(base.z![l], ran.hooks[hookPoint('attn.hook_z', l).name].data as Float32Array), `z ${l}`).toBeLessThanOrEqual(1e-6);
      expect(maxDiff(base.out, fb.out)).toBeLessThanOrEqual(1e-6);
      const [ga, fa] = [await graph.at(feeds, 2), await f.at(feeds, 2)];
      expect(maxDiff(ga.resid, fa.resid)).toBeLessThanOrEqual(1e-6);
      expect(maxDiff(ga.last, fa.last)).toBeLessThanOrEqual(1e-6);
    });

    it('give the same output for patched variants, by the fast path and by the file (to 1e-5)', async () => {
      const f = await onnx;
      const rng = new Rng(5);
      const T = feeds.tokens.shape[1];
      const vector = Float32Array.from({ length: cfg.dModel }, () => rng.normal());
      const variants: Variant[] = [0, 1, 2].flatMap((layer) => [
        [{ site: { kind: 'resid', layer }, positions: [T - 1], mode: 'replace', value: () => vector }],
        [{ site: { kind: 'resid', layer }, positions: [1, T - 1], mode: 'add', value: () => vector }],
      ]);
      const [gb, fb] = [await graph.base(feeds), await f.base(feeds)];
      const [fast, viaFile] = [await graph.patched(gb, variants), await f.patched(fb, variants)];
      const naive = await graph.patchedNaive(feeds, variants);
      variants.forEach((_, i) => {
        expect(maxDiff(fast[i], viaFile[i]), `variant ${i}`).toBeLessThanOrEqual(1e-5);
        expect(maxDiff(naive[i], viaFile[i]), `variant ${i}, naive`).toBeLessThanOrEqual(1e-5);
        expect(maxDiff(fast[i], gb.out), `variant ${i} changes the output`).toBeGreaterThan(1e-3);
      });
    });
  });
}
