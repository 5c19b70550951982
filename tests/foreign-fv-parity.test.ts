/**
 * Function vectors on a foreign model (foreign-fv.ts: full runs of the ONNX file with hook patches)
 * against the native path (function-vectors.ts: the checkpoint's graph rebuilt, one-row suffix
 * runs), on one trained zoo checkpoint opened both ways, with the same prompts: the head ranking
 * by AIE, the zero-shot baseline and the FV's accuracy at every layer agree.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analysisTasks } from '../src/analysis/batches.js';
import { foreignFunctionVectors } from '../src/analysis/foreign-fv.js';
import { functionVectors } from '../src/analysis/function-vectors.js';
import { searchPromptsFor } from '../src/analysis/search-prompts.js';
import { FileBackend } from '../src/backend/file.js';
import { GraphBackend } from '../src/backend/graph.js';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { hookPoint, residualAtLayer } from '../src/model/hooks.js';
import { type Batch, resolveTaskConfig, taskPrompts } from '../src/tasks/index.js';
import type { PromptRecord } from '../src/tasks/prompt-file.js';
import { Rng } from '../src/util/rng.js';

const MODEL = path.resolve(__dirname, '..', 'models', 'offsets-2L-baseline.onnx');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-fv-parity-'));
afterAll(() => fs.rmSync(dir, { recursive: true }));

/** A batch's prompts as prompts-file records: tokens, the answer at the query, the task's name. */
function records(batch: Batch, taskOf: Int32Array, names: readonly string[], role?: 'demo' | 'query'): PromptRecord[] {
  if (batch.kind !== 'tokens') throw new Error('token prompts expected');
  const T = batch.seq;
  return Array.from({ length: batch.batch }, (_, b) => {
    const tokens = Array.from(batch.tokens.subarray(b * T, (b + 1) * T), Number);
    const answer = Number(batch.targets[b * T + batch.queryPos[b]]);
    return { tokens, task: names[taskOf[b]], ...(role ? { role } : { corrupted: tokens }), answer };
  });
}

describe('function vectors of a checkpoint opened as a foreign model', { timeout: 120000 }, () => {
  it('give the native path’s head ranking, zero-shot baseline and layer curve on the same prompts', async () => {
    const ck = loadCheckpoint(MODEL);
    const cfg = resolveTaskConfig(ck.manifest.task);
    const L = ck.manifest.model.layers;
    const options = { prompts: 8, shuffled: 8, queries: 16, topK: 3, seed: 0, maxTasks: 3 };
    // The native analysis's own draws, as function-vectors.ts makes them.
    const tasks = analysisTasks(cfg, 'train', options.maxTasks, options.seed);
    const shots = cfg.demos.max;
    const p = searchPromptsFor(cfg, tasks, { prompts: options.prompts, shots, queries: options.queries, seed: options.seed });
    const shufRng = new Rng(options.seed ^ 0x5a1f);
    const names = tasks.map((t) => t.name);
    const shufParts = tasks.map((t) => taskPrompts(cfg, t, shufRng.fork(), options.shuffled, shots, { shuffleLabels: true }));
    const shuffled = shufParts.flatMap((b, t) => records(b, new Int32Array(b.batch).fill(t), names));
    const search = [...records(p.demos, p.demoTask, names, 'demo'), ...records(p.queries, p.queryTask, names, 'query')];

    fs.copyFileSync(MODEL, path.join(dir, 'model.onnx'));
    const hooks = Object.fromEntries([
      ...Array.from({ length: L + 1 }, (_, l) => residualAtLayer(l).name),
      ...Array.from({ length: L }, (_, l) => hookPoint('attn.hook_z', l).name),
    ].map((h) => [h, h]));
    const native = GraphBackend.fromCheckpoint(ck);
    const foreign = await FileBackend.open(path.join(dir, 'model.onnx'), { hookMap: { hooks, maxSeq: ck.manifest.model.maxSeq } });
    try {
      const n = await functionVectors(native, cfg, { ...options, compareTv: false });
      const f = await foreignFunctionVectors(foreign, search, shuffled, { topK: options.topK });
      expect(f.tasks).toEqual(names);
      expect(f.heads.length).toBe(n.ranking.length);
      n.ranking.forEach((h, i) => {
        expect(f.heads[i].aie).toBeCloseTo(h.aie, 5);
        expect([f.heads[i].layer, f.heads[i].head]).toEqual([h.layer, h.head]);
      });
      expect(Math.max(...n.ranking.map((h) => Math.abs(h.aie)))).toBeGreaterThan(1e-3); // the heads matter: not trivially zero
      expect(f.zeroShot).toBeCloseTo(n.average.baseline.mean, 6);
      expect(f.curve.map((c) => c.layer)).toEqual(n.average.curve.map((c) => c.layer));
      f.curve.forEach((c, i) => expect(c.accuracy).toBeCloseTo(n.average.curve[i].all.mean, 6));
      // The FV changes the answers somewhere, so the curve is not the baseline copied.
      expect(Math.max(...f.curve.map((c) => Math.abs(c.accuracy - f.zeroShot)))).toBeGreaterThan(0);
    } finally {
      await native.close();
      await foreign.close();
    }
  });
});
