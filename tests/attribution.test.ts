/** Attribution patching: the gradient at every hook, checked against exact patching. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { runCli as cli } from './support/cli.js';
import { writeReport } from '../src/report/report.js';
import { AttributionRunner, attributionPatch } from '../src/analysis/attribution.js';
import { pearson, topKOverlap } from '../src/analysis/attribution-stats.js';
import { concatBatches } from '../src/tasks/index.js';
import { GraphBackend } from '../src/backend/graph.js';
import { type PromptPair, patch, promptPairs } from '../src/analysis/patching.js';
import { InputError } from '../src/errors.js';
import { Graph } from '../src/graph/index.js';
import { resolveModelConfig } from '../src/model/config.js';
import { declareParams } from '../src/model/transformer.js';
import { type Batch, resolveTaskConfig, taskList, taskPrompts } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

function engineFor(user: object, seed: number) {
  const cfg = resolveModelConfig(user);
  const g = new Graph('float32');
  declareParams(g, cfg, seed);
  return GraphBackend.open({ cfg, params: new Map(g.params.map((p) => [p.value.name, p.data as Float32Array])) });
}

describe('attribution patching', { timeout: 60000 }, () => {
  it('matches exact patching cell for cell when every patch is small (regression prompts, corrupted by a little noise)', async () => {
    // With patches of size ε the linear estimate is exact up to O(ε²), on every site: this checks
    // the gradient at every hook (resid, attn_out, mlp_out, per-head z) and the bookkeeping of each grid.
    for (const positional of ['learned', 'rotary'] as const) await smallPatchesAgree(positional);
  });

  async function smallPatchesAgree(positional: 'learned' | 'rotary'): Promise<void> {
    const engine = engineFor({ layers: 2, dModel: 16, heads: 2, maxSeq: 24, input: 'vectors', dIn: 3, output: 'vector', dOut: 1, initStd: 0.3, positional }, 3);
    const tcfg = resolveTaskConfig({ kind: 'linreg', linreg: { dIn: 3 }, demos: { min: 3, max: 3 } });
    const rng = new Rng(4);
    const clean = concatBatches([0, 1, 2].map(() => taskPrompts(tcfg, { id: -1, family: 'linreg', name: 'w', params: { w: [rng.normal(), rng.normal(), rng.normal()] } } as never, rng.fork(), 4, 3)));
    const noisy = clean.kind === 'vectors' ? Float32Array.from(clean.inputs, (x) => x + 1e-3 * rng.normal()) : null;
    const pair: PromptPair = { clean, corrupted: { ...clean, inputs: noisy! } as Batch, correct: [], wrong: [], corruption: 'other-task' };
    const runner = new AttributionRunner(engine);
    for (const direction of ['denoising', 'noising'] as const) {
      const r = await runner.run(pair, { direction });
      expect(r.grids.map((g) => g.site)).toEqual(['resid_pre', 'resid_post', 'attn_out', 'mlp_out', 'z']);
      for (const g of r.grids) {
        expect(g.estimate.length).toBe(g.site === 'z' ? 4 : 2);
        expect(g.pearson!, `${positional} ${direction} ${g.site}`).toBeGreaterThan(0.999);
        g.estimate.forEach((row, i) => row.forEach((e, j) => expect(Math.abs(e - g.exact![i][j]), `${positional} ${direction} ${g.site} ${g.rows[i]} ${j}`).toBeLessThan(0.02)));
      }
    }
    await engine.close();
  }

  it('matches exact patching under mean ablation when the prompts differ only a little, so the mean is a small patch', async () => {
    // Base: one prompt, twelve times, each with its own small noise; the source is their mean, fed
    // to the attribution graph as an input. The corrupted prompts (another task) set the scale only.
    const engine = engineFor({ layers: 2, dModel: 16, heads: 2, maxSeq: 24, input: 'vectors', dIn: 3, output: 'vector', dOut: 1, initStd: 0.3 }, 3);
    const tcfg = resolveTaskConfig({ kind: 'linreg', linreg: { dIn: 3 }, demos: { min: 3, max: 3 } });
    const rng = new Rng(5);
    const task = () => ({ id: -1, family: 'linreg', name: 'w', params: { w: [rng.normal(), rng.normal(), rng.normal()] } }) as never;
    const one = taskPrompts(tcfg, task(), rng.fork(), 1, 3);
    const clean = concatBatches(Array.from({ length: 12 }, () => one));
    const jittered = clean.kind === 'vectors' ? ({ ...clean, inputs: Float32Array.from(clean.inputs, (x) => x + 1e-3 * rng.normal()) } as Batch) : clean;
    const corrupted = concatBatches(Array.from({ length: 12 }, () => taskPrompts(tcfg, task(), rng.fork(), 1, 3)));
    const r = await new AttributionRunner(engine).run({ clean: jittered, corrupted, correct: [], wrong: [], corruption: 'other-task' }, { direction: 'mean' });
    // Measured 0.96 (per-head z) to 0.998; a source other than the mean (the corrupted run) gives no such agreement.
    for (const g of r.grids) expect(g.pearson!, g.site).toBeGreaterThan(0.95);
    await engine.close();
  });

  it('scores exact cells as the patching preset does, and estimates them on the same normalised scale', async () => {
    const engine = engineFor({ layers: 2, dModel: 16, heads: 2, vocab: 10, maxSeq: 24, initStd: 0.5 }, 5);
    const tcfg = resolveTaskConfig({ vocab: 8, demos: { min: 3, max: 3 }, heldoutTasks: 2 });
    const tasks = taskList(tcfg, 'train').slice(0, 3);
    for (const corruption of ['other-task', 'shuffled-labels'] as const) {
      const opts = { tasks, prompts: 4, corruption, seed: 2 };
      const a = await attributionPatch(engine, tcfg, { ...opts, sites: ['resid_pre', 'resid_post', 'z'] });
      const pre = await patch(engine, tcfg, { ...opts, site: 'resid_pre' });
      const post = await patch(engine, tcfg, { ...opts, site: 'resid_post' });
      const z = await patch(engine, tcfg, { ...opts, site: 'z_pos' });
      expect(a.clean).toBeCloseTo(pre.clean.logitDiff, 4);
      expect(a.corrupted).toBeCloseTo(pre.corrupted.logitDiff, 4);
      [pre, post, z].forEach((p, k) => {
        expect(a.grids[k].rows).toEqual(p.rows);
        expect(a.grids[k].columns).toEqual(p.columns);
        p.normalized.forEach((row, i) => row.forEach((v, j) => expect(a.grids[k].exact![i][j]).toBeCloseTo(v, 3)));
      });
      // At the last block's output, the metric is linear in the residual up to the final LayerNorm.
      expect(a.grids[1].pearson!).toBeGreaterThan(0.5);
    }
    await engine.close();
  });

  it('gives attn_out the same grids as the z of its one head, exact and estimated', async () => {
    // Replacing attn_out at a position is replacing every head's z there; with one head, the z grid's row is the attn_out row.
    const engine = engineFor({ layers: 2, dModel: 16, heads: 1, vocab: 10, maxSeq: 24, initStd: 0.5 }, 6);
    const tcfg = resolveTaskConfig({ vocab: 8, demos: { min: 3, max: 3 }, heldoutTasks: 2 });
    const pair = promptPairs(tcfg, taskList(tcfg, 'train').slice(0, 2), { count: 4, corruption: 'other-task', seed: 1 });
    const runner = new AttributionRunner(engine);
    const r = await runner.run(pair, { sites: ['attn_out', 'z'] });
    r.grids[0].exact!.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(r.grids[1].exact![i][j], 5)));
    r.grids[0].estimate.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(r.grids[1].estimate[i][j], 4)));
    await engine.close();
  });

  it('warns where the estimate is weak, and without exact patching flags large patches', async () => {
    const engine = engineFor({ layers: 2, dModel: 16, heads: 2, vocab: 10, maxSeq: 24, initStd: 0.5 }, 5);
    const tcfg = resolveTaskConfig({ vocab: 8, demos: { min: 3, max: 3 }, heldoutTasks: 2 });
    const tasks = taskList(tcfg, 'train').slice(0, 3);
    const a = await attributionPatch(engine, tcfg, { tasks, prompts: 4, seed: 2, sites: ['resid_pre'], exact: false });
    expect(a.grids[0].exact).toBeNull();
    expect(a.grids[0].pearson).toBeNull();
    expect(a.ms.exact).toBeNull();
    expect(a.warnings.some((w) => /embeddings swap token identities/.test(w))).toBe(true);
    await expect(attributionPatch(engine, tcfg, { tasks, sites: ['resid' as never] })).rejects.toThrow(InputError);
    await expect(attributionPatch(engine, tcfg, { tasks, sites: ['resid' as never] })).rejects.toThrow(/Should be one of: resid_pre, resid_post, attn_out, mlp_out, z/);
    await engine.close();
  });

  it('computes Pearson r and the top-k overlap', () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNull();
    expect(topKOverlap([5, -4, 0, 1], [-6, 0, 3, 1], 2)).toBe(0.5);
  });

  it('runs from the CLI: patch --method attribution prints every grid with its exact counterpart, and bad choices are one line and exit 1', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-attribution-'));
    try {
      const engine = engineFor({ layers: 2, dModel: 16, heads: 2, vocab: 10, maxSeq: 24, initStd: 0.5 }, 5);
      const tcfg = resolveTaskConfig({ vocab: 8, demos: { min: 3, max: 3 }, heldoutTasks: 2 });
      writeCheckpoint(path.join(dir, 'm'), engine.cfg, engine.model.params, { step: 0, seed: 0, task: tcfg, metrics: {} });
      const file = path.join(dir, 'm.onnx');
      const ok = await cli(['patch', file, '--method', 'attribution', '--site', 'resid_post,z', '--prompts', '2', '--tasks', '2', '--json']);
      expect(ok.code, ok.stderr).toBe(0);
      const r = JSON.parse(ok.stdout);
      expect(r.analysis).toBe('attribution');
      expect(r.grids.map((g: { site: string }) => g.site)).toEqual(['resid_post', 'z']);
      expect(r.grids[1].exact).toHaveLength(4);
      expect(typeof r.grids[0].pearson).toBe('number');
      // The report draws the output given beside its checkpoint: estimate and exact heat maps per site.
      const out = path.join(dir, 'attr.json');
      expect((await cli(['patch', file, '--method', 'attribution', '--site', 'resid_post', '--prompts', '2', '--tasks', '2', '--out', out])).code).toBe(0);
      const report = await writeReport([file, out], path.join(dir, 'r.html'), { analyse: false, explorer: false, series: false, log: () => {} });
      expect(report.sections).toContain('attribution');
      expect(fs.readFileSync(report.file, 'utf8')).toMatch(/exact patching, resid_post/);
      // The pairs written with --save-prompts, read back with --prompts-file, give the same estimates.
      const pairsFile = path.join(dir, 'pairs.jsonl');
      expect((await cli(['patch', file, '--prompts', '2', '--tasks', '2', '--save-prompts', pairsFile, '--json'])).code).toBe(0);
      const given = await cli(['patch', file, '--method', 'attribution', '--site', 'resid_post,z', '--prompts-file', pairsFile, '--json']);
      expect(given.code, given.stderr).toBe(0);
      const g = JSON.parse(given.stdout);
      expect(g.corruption).toBe('given');
      g.grids.forEach((grid: { estimate: number[][] }, k: number) => grid.estimate.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(r.grids[k].estimate[i][j], 5))));
      const text = await cli(['patch', file, '--method', 'attribution', '--skip-exact', '--prompts', '2', '--tasks', '2']);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/no exact comparison/);
      for (const args of [['--method', 'attribution', '--site', 'resid'], ['--method', 'gradient']]) {
        const bad = await cli(['patch', file, ...args]);
        expect(bad.code).toBe(1);
        expect(bad.stderr.trim().split('\n')).toHaveLength(1);
        expect(bad.stderr).toMatch(/Should be one of|must be one of|one of/);
      }
      await engine.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

