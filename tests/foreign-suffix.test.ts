/**
 * The foreign model's fast path: the ONNX graph split at a patched residual, the prefix run once
 * and the suffix per variant. It must give what one full patched run per variant gives, on a
 * checkpoint opened as a foreign model and on the PyTorch export (whose graph fixes its length).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { suffixSplit } from '../src/backend/onnx-edit.js';
import { patch } from '../src/analysis/patching.js';
import { FileBackend } from '../src/backend/file.js';
import { tvSearch } from '../src/analysis/tv-search.js';
import { decodeModel, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { residualAtLayer } from '../src/model/hooks.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import { handModel, handTaskConfig, handTasks } from './support/tv-hand-model.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-foreign-suffix-'));
afterAll(() => fs.rmSync(dir, { recursive: true }));

const hand = handModel();
const handCfg = handTaskConfig();
writeCheckpoint(path.join(dir, 'hand'), hand.cfg, hand.params, { step: 0, seed: 0, task: handCfg, metrics: {} });
fs.mkdirSync(path.join(dir, 'bare'));
const bare = path.join(dir, 'bare', 'hand.onnx');
fs.copyFileSync(path.join(dir, 'hand.onnx'), bare);
const ownHooks = { hooks: Object.fromEntries(range(hand.cfg.layers + 1).map((l) => [residualAtLayer(l).name, residualAtLayer(l).name])), maxSeq: hand.cfg.maxSeq };

const TORCH = 'tests/fixtures/torch-gpt.onnx';
const torchModel = decodeModel(new Uint8Array(fs.readFileSync(TORCH)), TORCH);
const torchMap = suggestHookMap(residualCandidates(torchModel));
const torchTask = resolveTaskConfig({ kind: 'discrete', vocab: 10, demos: { min: 1, max: 1 }, heldoutTasks: 2, discrete: { families: ['offset'] } });

const scores = (r: Awaited<ReturnType<typeof tvSearch>>) => r.tasks.map((t) => [t.baseline.all.mean, ...t.curve.map((c) => c.all.mean), ...t.sets.map((c) => c.all.mean), t.best.layer]);

describe('the graph split at a residual', () => {
  it('keeps only what follows the cut, and feeds back what the prefix computed for it', () => {
    const tensors = Object.keys(torchMap);
    const first = suffixSplit(torchModel, tensors[0], 'logits')!;
    const last = suffixSplit(torchModel, tensors.at(-1)!, 'logits')!;
    expect(first.nodes.length).toBeGreaterThan(last.nodes.length);
    expect(last.nodes.length).toBeLessThan((torchModel.graph!.node ?? []).length / 2);
    expect(suffixSplit(torchModel, 'logits', 'logits')).toBeNull(); // nothing after the output
  });
});

describe('a foreign model patched through its graph suffix', { timeout: 120000 }, () => {
  it('gives the full runs\' task-vector curves on a checkpoint opened as a foreign model, sets and centred add mode included', async () => {
    const split = await FileBackend.open(bare, { hookMap: ownHooks });
    const naive = await FileBackend.open(bare, { hookMap: ownHooks, split: false });
    try {
      for (const opts of [
        { tasks: handTasks, prompts: 6, queries: 16, seed: 3 },
        { tasks: handTasks, prompts: 6, queries: 16, seed: 4, mode: 'add', center: true, sets: [[0, 2]] },
      ] as const) {
        const [a, b] = [await tvSearch(split, handCfg, opts), await tvSearch(naive, handCfg, opts)];
        expect(scores(a)).toEqual(scores(b));
      }
      const a = await patch(split, handCfg, { tasks: handTasks, prompts: 3, seed: 1, site: 'resid_pre' });
      const b = await patch(naive, handCfg, { tasks: handTasks, prompts: 3, seed: 1, site: 'resid_pre' });
      expect(a.accuracy).toEqual(b.accuracy);
      a.normalized.flat().forEach((x, i) => expect(Math.abs(x - b.normalized.flat()[i])).toBeLessThan(1e-4));
    } finally {
      await split.close();
      await naive.close();
    }
  });

  it('gives the full runs\' outputs on the PyTorch export, padded to the length its graph runs at', async () => {
    const split = await FileBackend.open(TORCH, { hookMap: torchMap, padTo: 8 });
    const naive = await FileBackend.open(TORCH, { hookMap: torchMap, padTo: 8, split: false });
    try {
      const opts = { maxTasks: 2, prompts: 4, queries: 8, seed: 5 };
      const [a, b] = [await tvSearch(split, torchTask, opts), await tvSearch(naive, torchTask, opts)];
      expect(scores(a)).toEqual(scores(b));
      // The raw outputs, variant by variant.
      const feeds = { tokens: { dtype: 'int64' as const, shape: [2, 6], data: BigInt64Array.from([1, 10, 3, 11, 4, 10, 2, 10, 5, 11, 7, 10], BigInt) } };
      const base = await split.base(feeds);
      const value = new Float32Array(16).fill(0.5);
      const variants = range(3).map((l) => [{ site: { kind: 'resid' as const, layer: l }, positions: [5], mode: 'replace' as const, value: () => value }]);
      const [fast, full] = [await split.patched(base, variants), await naive.patchedNaive(feeds, variants)];
      fast.forEach((o, i) => o.forEach((x, j) => expect(Math.abs(x - full[i][j])).toBeLessThan(1e-5)));
    } finally {
      await split.close();
      await naive.close();
    }
  });
});
