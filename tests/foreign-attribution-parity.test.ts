/**
 * Attribution patching on a foreign model (foreign-attribution.ts: the ONNX file imported into the
 * graph IR and differentiated there) against the native path (attribution.ts: the checkpoint's
 * graph rebuilt, differentiated by the same autodiff), on one tvlens checkpoint opened both ways.
 * Both estimate Σ (clean − corrupted) · ∂metric/∂resid on the corrupted run, with the corrupted run's
 * favourite other token as "wrong", so the raw grids agree once the native one is un-normalised.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attributionPatch } from '../src/analysis/attribution.js';
import { foreignAttribution } from '../src/analysis/foreign-attribution.js';
import { promptPairsFrom } from '../src/analysis/prompt-pairs.js';
import { FileBackend } from '../src/backend/file.js';
import { GraphBackend } from '../src/backend/graph.js';
import { loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { resolveModelConfig } from '../src/model/config.js';
import { residualAtLayer } from '../src/model/hooks.js';
import { inferenceGraph } from '../src/model/inference.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import type { PromptRecord } from '../src/tasks/prompt-file.js';
import { Rng } from '../src/util/rng.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-attribution-parity-'));
afterAll(() => fs.rmSync(dir, { recursive: true }));

// A randomly initialised 3-block model (its weights as the init leaves them: the math is the same on any).
const cfg = resolveModelConfig({ layers: 3, dModel: 32, heads: 2, vocab: 12, maxSeq: 16 });
const params = new Map(inferenceGraph(cfg, 7).graph.params.map((p) => [p.value.name, p.data as Float32Array]));
const task = resolveTaskConfig({ kind: 'discrete', vocab: 10 });
writeCheckpoint(path.join(dir, 'model'), cfg, params, { step: 0, seed: 7, task, metrics: {} });
fs.mkdirSync(path.join(dir, 'bare'));
fs.copyFileSync(path.join(dir, 'model.onnx'), path.join(dir, 'bare', 'model.onnx'));
const ownHooks = { hooks: Object.fromEntries(Array.from({ length: cfg.layers + 1 }, (_, l) => [residualAtLayer(l).name, residualAtLayer(l).name])), maxSeq: cfg.maxSeq };

const rng = new Rng(3);
const tokens = () => Array.from({ length: 9 }, () => rng.int(cfg.vocab));
const records: PromptRecord[] = Array.from({ length: 4 }, () => ({ tokens: tokens(), corrupted: tokens(), answer: rng.int(cfg.vocab) }));

describe('attribution patching of a checkpoint opened as a foreign model', { timeout: 120000 }, () => {
  it('gives the native path’s residual estimates and exact patching, cell by cell', async () => {
    const native = GraphBackend.fromCheckpoint(loadCheckpoint(path.join(dir, 'model.onnx')));
    const foreign = await FileBackend.open(path.join(dir, 'bare', 'model.onnx'), { hookMap: ownHooks });
    try {
      const n = await attributionPatch(native, null, { pairs: promptPairsFrom(records), sites: ['resid_pre', 'resid_post'] });
      const f = await foreignAttribution(foreign, records);
      expect(f.clean).toBeCloseTo(n.clean, 4);
      expect(f.corrupted).toBeCloseTo(n.corrupted, 4);
      const scale = n.clean - n.corrupted;
      expect(Math.abs(scale)).toBeGreaterThan(0.05); // the pairs differ, so the grids are not all zero
      const [pre, post] = n.grids;
      // Residual layer ℓ is resid_pre of block ℓ, and layer L is resid_post of the last block.
      const layerRow = (l: number, which: 'estimate' | 'exact') => (l < cfg.layers ? pre[which]![l] : post[which]![cfg.layers - 1]);
      let cells = 0;
      for (let l = 0; l <= cfg.layers; l++) {
        for (let p = 0; p < records[0].tokens.length; p++) {
          expect(f.attribution[l][p] / scale).toBeCloseTo(layerRow(l, 'estimate')[p], 5);
          expect(f.exact[l][p] / scale).toBeCloseTo(layerRow(l, 'exact')[p], 5);
          cells++;
        }
      }
      expect(cells).toBe((cfg.layers + 1) * 9);
      // Not trivially equal: some cell carries a real effect.
      expect(Math.max(...f.exact.flat().map(Math.abs))).toBeGreaterThan(0.01);
    } finally {
      await native.close();
      await foreign.close();
    }
  });
});

describe("a backend's derived sessions", () => {
  it('keeps a session per key, forgets a failed build (the next call builds again), and closes cleanly after one', async () => {
    const backend = await FileBackend.open(path.join(dir, 'bare', 'model.onnx'), { hookMap: ownHooks });
    let builds = 0;
    const failing = async () => {
      builds++;
      throw new Error('op Round cannot be imported');
    };
    await expect(backend.derivedSession('k', failing)).rejects.toThrow(/Round/);
    await expect(backend.derivedSession('k', failing)).rejects.toThrow(/Round/);
    expect(builds).toBe(2);
    const bytes = fs.readFileSync(path.join(dir, 'bare', 'model.onnx'));
    const good = async () => {
      builds++;
      return new Uint8Array(bytes);
    };
    const [a, b] = [await backend.derivedSession('k', good), await backend.derivedSession('k', good)];
    expect(a).toBe(b);
    expect(builds).toBe(3);
    await expect(backend.close()).resolves.toBeUndefined();
  });
});
