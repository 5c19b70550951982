import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GraphBackend } from '../src/backend/graph.js';
import { curveMetrics, locality, pcaByLayer, separability } from '../src/analysis/locality.js';
import { localityTable } from '../src/api/tables.js';
import { runCheckpoints } from '../src/runs/folder.js';
import type { TaskVectors } from '../src/analysis/tv-search.js';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { InputError } from '../src/errors.js';
import { Rng } from '../src/util/rng.js';
import { handModel, handTaskConfig, handTasks } from './support/tv-hand-model.js';

const curve = (values: number[], best: number, extra: Partial<Parameters<typeof curveMetrics>[0]> = {}) =>
  curveMetrics({ higherIsBetter: true, curve: values, layers: values.map((_, i) => i), baseline: 0.1, icl: 1, best: { layer: best, test: values[best] }, ...extra });

/** Prompts of `tasks` tasks whose residuals point along the task's own direction, plus noise. */
function clustered(tasks: number, per: number, d: number, spread: number, seed = 1): TaskVectors {
  const rng = new Rng(seed);
  const dirs = Array.from({ length: tasks }, () => Array.from({ length: d }, () => rng.normal()));
  const B = tasks * per;
  const resid = new Float32Array(B * d); // one layer: [B, 1, D]
  const task = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    task[b] = b % tasks;
    for (let i = 0; i < d; i++) resid[b * d + i] = dirs[task[b]][i] + spread * rng.normal();
  }
  const theta = dirs.map((dir, t) => Float32Array.from(dir, (_, i) => { let s = 0; for (let b = t; b < B; b += tasks) s += resid[b * d + i]; return s / per; }));
  return { tasks: [], theta, perPrompt: { resid, task }, icl: { metric: 'accuracy', value: new Float64Array(), y2: new Float64Array() }, demos: undefined as never, position: 0 };
}

describe('locality metrics', { timeout: 60000 }, () => {
  it('gives entropy 0 and width 1 to a curve whose gain sits in one layer', () => {
    const m = curve([0.1, 0.1, 0.9, 0.1], 2);
    expect(m).toMatchObject({ peakLayer: 2, peak: 0.9, entropy: 0, halfWidth: 1 });
    expect(m.strength).toBeCloseTo(0.9, 12);
    expect(m.recovered).toBeCloseTo(0.8 / 0.9, 12);
  });

  it('gives entropy 1 and full width to a flat gain, and 1/2 and width 2 to two equal layers of four', () => {
    expect(curve([0.5, 0.5, 0.5, 0.5], 0)).toMatchObject({ entropy: 1, halfWidth: 4 });
    const two = curve([0.1, 0.5, 0.5, 0.1], 1);
    expect(two.entropy).toBeCloseTo(0.5, 12);
    expect(two.halfWidth).toBe(2);
  });

  it('counts only the contiguous layers around the peak in the half width', () => {
    expect(curve([0.6, 0.1, 0.9, 0.7, 0.2], 2).halfWidth).toBe(2);
  });

  it('has no concentration when no layer beats the baseline', () => {
    expect(curve([0.1, 0.05, 0.1], 0)).toMatchObject({ entropy: null, halfWidth: null });
  });

  it('reads regression curves as 1 − nMSE, and non-locality as the gain of the best k layers over the best one', () => {
    const m = curveMetrics({ higherIsBetter: false, curve: [1, 0.5, 0.2], layers: [0, 1, 2], baseline: 1, icl: 0.1, best: { layer: 2, test: 0.2 }, combined: [{ k: 2, test: 0.15 }] });
    expect(m.strength).toBeCloseTo(0.8 / 0.9, 12);
    expect(m.recovered).toBeCloseTo(0.8 / 0.9, 12);
    expect(m.nonLocality[0].k).toBe(2);
    expect(m.nonLocality[0].gain).toBeCloseTo(0.05, 12);
  });

  it('finds clustered task vectors separable and shuffled ones not', () => {
    const sep = separability(clustered(3, 10, 16, 0.3), 0, 16, { permutations: 100 })[0];
    expect(sep.within).toBeGreaterThan(sep.between);
    expect(sep.p).toBeCloseTo(1 / 101, 12);
    expect(sep.t).toBeGreaterThan(5);
    const noise = clustered(3, 10, 16, 0.3);
    noise.perPrompt.resid.set(clustered(1, 30, 16, 0.3, 9).perPrompt.resid); // one distribution, three labels
    expect(separability(noise, 0, 16, { permutations: 100 })[0].p).toBeGreaterThan(0.05);
  });

  it('puts two clusters apart on the first principal component', () => {
    const [layer] = pcaByLayer(clustered(2, 12, 8, 0.1), 0, 8);
    expect(layer.explained[0]).toBeGreaterThan(0.5);
    const side = (t: number) => new Set(layer.points.filter((p) => p.task === t).map((p) => Math.sign(p.x)));
    expect(side(0).size).toBe(1);
    expect(side(1).size).toBe(1);
    expect([...side(0)][0]).not.toBe([...side(1)][0]);
    expect(layer.centroids).toHaveLength(2);
  });

  it('on the hand-built model: peak at layer 2, full strength, and no separability below block 1', async () => {
    const engine = GraphBackend.open(handModel());
    const r = await locality(engine, handTaskConfig(), { tasks: handTasks, prompts: 12, queries: 32, permutations: 50 });
    expect(r.average.peakLayer).toBe(2);
    expect(r.average.strength).toBeGreaterThan(0.95);
    expect(r.average.halfWidth).toBe(1);
    expect(r.average.nonLocality.map((n) => n.k)).toEqual([2, 3]);
    for (const n of r.average.nonLocality) expect(n.gain).toBeLessThanOrEqual(1e-12);
    // Below block 1 every demo arrow holds the same vector (the arrow at the same position).
    for (const l of [0, 1]) expect(r.separability[l]).toMatchObject({ difference: 0, p: 1 });
    expect(r.separability[2].p).toBeCloseTo(1 / 51, 12);
    expect(r.pca).toHaveLength(4);
  });

  it('tables a run folder of checkpoints by step, and rejects a folder without any', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-locality-'));
    const ck = path.join(dir, 'checkpoints');
    fs.mkdirSync(ck);
    const { cfg, params } = handModel();
    // Step 0: block 1 writes nothing yet, so no layer carries the task.
    const blank = new Map(params);
    blank.set('blocks.1.attn.W_O', new Float32Array(params.get('blocks.1.attn.W_O')!.length));
    const fields = (step: number) => ({ step, seed: 0, task: handTaskConfig(), metrics: {} });
    writeCheckpoint(path.join(ck, 'step-000100'), cfg, params, fields(100));
    writeCheckpoint(path.join(ck, 'step-000000'), cfg, blank, fields(0));
    const files = runCheckpoints(dir);
    expect(files.map((f) => path.basename(f))).toEqual(['step-000000.onnx', 'step-000100.onnx']);
    const { rows } = await localityTable(files, { tasks: handTasks, prompts: 8, queries: 16, permutations: 20, pca: false });
    expect(rows.map((r) => r.step)).toEqual([0, 100]);
    // Before block 1 learns, neither ICL nor any task vector works (strength, a ratio, says nothing then).
    expect(rows[0].icl).toBeLessThan(0.5);
    expect(rows[0].peak).toBeLessThan(0.5);
    expect(rows[1].strength).toBeGreaterThan(0.95);
    expect(rows[1].peakLayer).toBe(2);
    expect(() => runCheckpoints(path.join(dir, 'nothing'))).toThrow(InputError);
    fs.rmSync(dir, { recursive: true });
  });
});
