import { describe, expect, it } from 'vitest';
import { RangeInputError } from '../src/backend/backend.js';
import { GraphBackend } from '../src/backend/graph.js';
import { type PatchCell, patch, patchSweep, promptPairs } from '../src/analysis/patching.js';
import { Graph } from '../src/graph/index.js';
import { resolveModelConfig } from '../src/model/config.js';
import { declareParams } from '../src/model/transformer.js';
import { resolveTaskConfig, taskList } from '../src/tasks/index.js';
import { handModel, handTaskConfig, handTasks } from './support/tv-hand-model.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function randomEngine() {
  const cfg = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, vocab: 10, maxSeq: 24, initStd: 0.5 });
  const g = new Graph('float32');
  declareParams(g, cfg, 5);
  return GraphBackend.open({ cfg, params: new Map(g.params.map((p) => [p.value.name, p.data as Float32Array])) });
}

describe('activation patching', { timeout: 60000 }, () => {
  const hand = GraphBackend.open(handModel());
  const cfg = handTaskConfig();
  const base = { tasks: handTasks, prompts: 8, seed: 1 } as const;

  it('gives a normalised effect of 1 patching clean into clean and 0 patching corrupted into corrupted', async () => {
    const pair = promptPairs(cfg, handTasks, { count: 6, corruption: 'other-task', seed: 2 });
    const T = pair.clean.seq;
    const cells: PatchCell[] = [
      ...range(4).flatMap((l) => range(T).map((p) => ({ site: { kind: 'resid' as const, layer: l }, positions: [p] }))),
      ...range(3).map((l) => ({ site: { kind: 'z' as const, layer: l }, head: 0, positions: range(T) })),
    ];
    const same = await patchSweep(hand, pair, cells, { base: 'clean', source: 'clean' });
    const none = await patchSweep(hand, pair, cells, { base: 'corrupted', source: 'corrupted' });
    expect(same.clean.normalized).toBe(1);
    expect(same.corrupted.normalized).toBe(0);
    for (const c of same.cells) expect(Math.abs(c.normalized - 1)).toBeLessThan(1e-5);
    for (const c of none.cells) expect(Math.abs(c.normalized)).toBeLessThan(1e-5);
  });

  it('finds where the hand-built model reads the task: the query arrow from layer 2 on, and block 1 head 0', async () => {
    const r = await patch(hand, cfg, { ...base, site: 'resid_pre' });
    const arrow = r.columns.length - 1;
    expect(r.columns[arrow]).toMatch(/→q/);
    expect(r.direction).toBe('denoising');
    expect(r.clean.logitDiff).toBeGreaterThan(10);
    expect(r.corrupted.logitDiff).toBeLessThan(-10);
    expect(r.normalized[2][arrow]).toBeCloseTo(1, 3);
    // The arrow's residual below block 1 is the same in both runs: patching it changes nothing.
    expect(Math.abs(r.normalized[0][arrow])).toBeLessThan(1e-6);
    expect(Math.abs(r.normalized[1][arrow])).toBeLessThan(1e-6);
    expect(r.accuracy[2][arrow]).toBe(1);

    const heads = await patch(hand, cfg, { ...base, site: 'z' });
    expect(heads.normalized[1][0]).toBeCloseTo(1, 3);
    expect(Math.abs(heads.normalized[0][0])).toBeLessThan(1e-6);
    expect(Math.abs(heads.normalized[2][0])).toBeLessThan(1e-3);

    const noising = await patch(hand, cfg, { ...base, site: 'resid_post', direction: 'noising', layers: [1] });
    expect(noising.directionNote).toMatch(/^noising/);
    expect(noising.normalized[0][arrow]).toBeCloseTo(0, 3);
  });

  it('gives the same grids through the suffix forward as with one forward pass per cell', async () => {
    const engine = randomEngine();
    const tcfg = resolveTaskConfig({ vocab: 8, demos: { min: 3, max: 3 }, heldoutTasks: 2 });
    const tasks = taskList(tcfg, 'train').slice(0, 3);
    for (const [site, corruption, direction] of [
      ['resid_pre', 'other-task', 'denoising'],
      ['z_pos', 'shuffled-labels', 'noising'],
      ['resid_post', 'shuffled-labels', 'mean'],
    ] as const) {
      const opts = { tasks, prompts: 4, site, corruption, direction, positions: site === 'z_pos' ? [0, 5, 13] : undefined };
      const fast = await patch(engine, tcfg, opts);
      const naive = await patch(engine, tcfg, { ...opts, method: 'naive' });
      expect(fast.logitDiff.flat().every(Number.isFinite)).toBe(true);
      fast.logitDiff.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(v - naive.logitDiff[i][j]), `${site} ${i},${j}`).toBeLessThan(1e-3)));
    }
    await engine.close();
  });

  it('rejects a block or position out of range, naming the valid range', async () => {
    await expect(patch(hand, cfg, { ...base, layers: [3] })).rejects.toThrow(RangeInputError);
    await expect(patch(hand, cfg, { ...base, layers: [3] })).rejects.toThrow(/block 3 is out of range: this model has 3 blocks, 0\.\.2/);
    await expect(patch(hand, cfg, { ...base, positions: [18] })).rejects.toThrow(/positions 0\.\.17/);
    await expect(patch(hand, cfg, { ...base, tasks: [handTasks[0]] })).rejects.toThrow(/at least two tasks/);
  });
});
