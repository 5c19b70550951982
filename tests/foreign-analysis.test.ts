/**
 * Task-vector search and residual patching on models tvlens did not make, through FileBackend
 * (a FileBackend and its hook map, one full forward pass per variant). The strongest check: a
 * tvlens checkpoint opened as a foreign model, through a map of its own residual hooks, gives
 * what the fast GraphBackend gives on the checkpoint. Then a real PyTorch export, and the errors.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openModel } from '../src/api/model.js';
import { GraphBackend } from '../src/backend/graph.js';
import { residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { DIRECTION_RUNS, patch, patchSweep, promptPairs } from '../src/analysis/patching.js';
import { FileBackend, HEAD_PATCHING_NEEDS_CHECKPOINT } from '../src/backend/file.js';
import { tvSearch, tvSearchWithVectors } from '../src/analysis/tv-search.js';
import { decodeModel, loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { type Command, parse } from '../src/cli/command.js';
import { patchCommand } from '../src/cli/patch.js';
import { tvSearchCommand } from '../src/cli/tv-search.js';
import { residualAtLayer } from '../src/model/hooks.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import { handModel, handTaskConfig, handTasks } from './support/tv-hand-model.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-foreign-analysis-'));
afterAll(() => fs.rmSync(dir, { recursive: true }));

// The hand-built model whose task enters the arrow at layer 2, as a checkpoint, and its .onnx alone.
const hand = handModel();
const handCfg = handTaskConfig();
writeCheckpoint(path.join(dir, 'hand'), hand.cfg, hand.params, { step: 0, seed: 0, task: handCfg, metrics: {} });
fs.mkdirSync(path.join(dir, 'bare'));
const bare = path.join(dir, 'bare', 'hand.onnx');
fs.copyFileSync(path.join(dir, 'hand.onnx'), bare);
/** The checkpoint's own residual hook tensors, each mapped to its name. */
const ownHooks = { hooks: Object.fromEntries(range(hand.cfg.layers + 1).map((l) => [residualAtLayer(l).name, residualAtLayer(l).name])), maxSeq: hand.cfg.maxSeq };

// The PyTorch export: a 2-block GPT with 12 tokens whose graph runs at 8 positions only.
const TORCH = 'tests/fixtures/torch-gpt.onnx';
const torchMap = suggestHookMap(residualCandidates(decodeModel(new Uint8Array(fs.readFileSync(TORCH)), TORCH)));
const torchMapFile = path.join(dir, 'torch-map.json');
fs.writeFileSync(torchMapFile, JSON.stringify({ hooks: torchMap, maxSeq: 16 }));
/** Offsets on 10 symbols: token ids 0..11, as many as the model has; 1 demo, 6 positions. */
const torchTask = resolveTaskConfig({ kind: 'discrete', vocab: 10, demos: { min: 1, max: 1 }, heldoutTasks: 2, discrete: { families: ['offset'] } });
const torchTaskFile = path.join(dir, 'torch-task.json');
fs.writeFileSync(torchTaskFile, JSON.stringify(torchTask));

async function runJson(cmd: Command, argv: string[]): Promise<Record<string, unknown>> {
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    const { values, positionals } = parse(cmd, [...argv, '--json']);
    await cmd.run(values, positionals);
    return JSON.parse(log.mock.calls.at(-1)![0] as string);
  } finally {
    log.mockRestore();
  }
}

describe('a tvlens checkpoint analysed as a foreign model', { timeout: 120000 }, () => {
  const fast = GraphBackend.fromCheckpoint(loadCheckpoint(path.join(dir, 'hand.onnx')));
  const foreign = FileBackend.open(bare, { hookMap: ownHooks });
  afterAll(async () => {
    await fast.close();
    await (await foreign).close();
  });

  it('knows the layers, width and vocabulary the fast engine knows, and no heads', async () => {
    const f = await foreign;
    expect(f.facts.kind).toBe('foreign');
    expect([f.layers, f.dims.dModel, f.outWidth]).toEqual([fast.layers, fast.dims.dModel, fast.outWidth]);
    expect(f.dims.heads).toBeNull();
    expect(f.modelInfo.config).toBeNull();
  });

  it('finds the same task vectors and the same curve, baseline, ICL score and best layer as the fast engine', async () => {
    const opts = { tasks: handTasks, prompts: 6, queries: 16, seed: 3 } as const;
    const a = await tvSearchWithVectors(fast, handCfg, opts);
    const b = await tvSearchWithVectors(await foreign, handCfg, opts);
    // θ carries the model's constant BIG dimension (1000): float tolerance relative to it.
    a.vectors.theta.forEach((t, i) => expect(maxDiff(b.vectors.theta[i], t)).toBeLessThan(1e-3));
    expect(a.result.average.best.layer).toBe(2); // the search is not trivial: the hand model's layer
    const scores = (r: typeof a.result) => r.tasks.map((t) => [t.baseline.all.mean, t.icl.mean, ...t.curve.map((c) => c.all.mean), t.best.layer]);
    expect(scores(b.result)).toEqual(scores(a.result));
  });

  it('gives the same curve in add mode with centred vectors and several layers at once', async () => {
    const opts = { tasks: handTasks, prompts: 6, queries: 16, seed: 4, mode: 'add', center: true, sets: [[0, 2], [1, 3]] } as const;
    const [a, b] = [await tvSearch(fast, handCfg, opts), await tvSearch(await foreign, handCfg, opts)];
    const scores = (r: typeof a) => [...r.average.curve, ...r.average.sets].map((c) => c.all.mean);
    expect(scores(b)).toEqual(scores(a));
    expect(a.average.curve[2].all.mean).toBeGreaterThan(0.9);
  });

  it('gives the same residual patching effects as the fast engine, denoising resid_pre and noising resid_post', async () => {
    for (const [site, direction] of [['resid_pre', 'denoising'], ['resid_post', 'noising']] as const) {
      const opts = { tasks: handTasks, prompts: 3, seed: 1, site, direction };
      const [a, b] = [await patch(fast, handCfg, opts), await patch(await foreign, handCfg, opts)];
      expect(b.rows).toEqual(a.rows);
      expect(maxDiff(b.normalized.flat(), a.normalized.flat()), site).toBeLessThan(1e-4);
      expect(b.accuracy).toEqual(a.accuracy);
      expect(Math.abs(b.clean.logitDiff - a.clean.logitDiff)).toBeLessThan(1e-3);
      // Not a grid of zeros: the arrow at layer 2 carries the task.
      const arrow = a.columns.length - 1;
      expect(a.normalized[site === 'resid_pre' ? 2 : 1][arrow]).toBeCloseTo(direction === 'denoising' ? 1 : 0, 3);
    }
  });

  it('rejects head patching, saying it needs a tvlens checkpoint', async () => {
    const f = await foreign;
    await expect(patch(f, handCfg, { tasks: handTasks, prompts: 2, site: 'z' })).rejects.toThrow(/head.*needs a tvlens checkpoint/);
    const pair = promptPairs(handCfg, handTasks, { count: 2, corruption: 'other-task', seed: 0 });
    const cell = { site: { kind: 'z' as const, layer: 1 }, head: 0, positions: [0] };
    await expect(patchSweep(f, pair, [cell], DIRECTION_RUNS.denoising)).rejects.toThrow(HEAD_PATCHING_NEEDS_CHECKPOINT);
    await expect(f.patchedNaive({ tokens: { dtype: 'int64', shape: [1, 2], data: new BigInt64Array(2) } }, [[{ ...cell, mode: 'replace', value: () => new Float32Array(32) }]])).rejects.toThrow(HEAD_PATCHING_NEEDS_CHECKPOINT);
  });
});

describe('a GPT exported by PyTorch, analysed through a hook map', { timeout: 120000 }, () => {
  const engine = FileBackend.open(TORCH, { hookMap: torchMap, padTo: 8 });
  afterAll(async () => (await engine).close());

  it('reads the residuals PyTorch computed, also from a shorter prompt padded to the length its graph runs at', async () => {
    const e = await engine;
    expect([e.layers, e.dims.dModel, e.outWidth]).toEqual([2, 16, 12]);
    const ref = JSON.parse(fs.readFileSync('tests/fixtures/torch-gpt-reference.json', 'utf8')) as { input_ids: number[][]; logits: number[][][]; resid_post: number[][][][] };
    const ids = ref.input_ids[0];
    const D = 16;
    for (const T of [8, 5]) {
      const feeds = { tokens: { dtype: 'int64' as const, shape: [1, T], data: BigInt64Array.from(ids.slice(0, T), BigInt) } };
      for (const p of [0, T - 1]) {
        const { resid, last } = await e.at(feeds, p);
        for (const l of [1, 2]) expect(maxDiff(resid.subarray(l * D, (l + 1) * D), ref.resid_post[l - 1][0][p]), `T ${T}, position ${p}, layer ${l}`).toBeLessThan(1e-5);
        expect(maxDiff(last, ref.logits[0][T - 1])).toBeLessThan(1e-5);
      }
    }
  });

  it('runs tv-search and resid patching end to end from the command line, scoring residual layers 0..2', async () => {
    const args = [TORCH, '--hook-map', torchMapFile, '--task', torchTaskFile, '--pad-to', '8', '--tasks', '2'];
    const tv = await runJson(tvSearchCommand, [...args, '--prompts', '4', '--queries', '8']);
    expect(tv).toMatchObject({ analysis: 'tv-search', model: { kind: 'foreign', config: null, layers: 2, vocab: 12 }, positions: { zeroShot: 1, demo: 5 } });
    const curve = (tv.average as { curve: { layers: number[]; all: { mean: number } }[] }).curve;
    expect(curve.map((c) => c.layers)).toEqual([[0], [1], [2]]);
    for (const c of curve) expect(c.all.mean).toBeGreaterThanOrEqual(0);
    const p = await runJson(patchCommand, [...args, '--prompts', '2', '--site', 'resid_post']);
    expect(p).toMatchObject({ analysis: 'patch', rows: ['blocks.0.hook_resid_post', 'blocks.1.hook_resid_post'] });
    expect((p.normalized as number[][]).flat()).toHaveLength(2 * 6);
  });

  it('rejects a task whose token ids do not fit the vocabulary, a missing task, prompts longer than the graph runs at, and head patching', async () => {
    const e = await engine;
    await using model = await openModel(TORCH, { hookMap: torchMap, padTo: 8 });
    expect(() => model.checkFits(resolveTaskConfig({ kind: 'discrete', vocab: 16 }))).toThrow(/token ids 0\.\.17 .* 12 outputs .*vocab ≤ 10/);
    expect(() => model.checkFits(resolveTaskConfig({ kind: 'linreg' }))).toThrow(/linreg prompts are vectors/);
    const args = [TORCH, '--hook-map', torchMapFile, '--pad-to', '8'];
    const run = (cmd: Command, more: string[]) => {
      const { values, positionals } = parse(cmd, [...args, ...more]);
      return cmd.run(values, positionals);
    };
    await expect(run(tvSearchCommand, [])).rejects.toThrow(/--task: .* foreign model, which has no task config/);
    await expect(run(tvSearchCommand, ['--task', 'small-discrete'])).rejects.toThrow(/token ids 0\.\.\d+ .* 12 outputs/);
    const twoDemos = resolveTaskConfig({ ...torchTask, demos: { min: 2, max: 2 } }); // 10 positions
    await expect(tvSearch(e, twoDemos, { maxTasks: 1, prompts: 2, queries: 2 })).rejects.toThrow(/prompts of 10 positions are longer than the 8/);
    await expect(run(patchCommand, ['--task', torchTaskFile, '--site', 'z_pos', '--prompts', '1'])).rejects.toThrow(/head.*needs a tvlens checkpoint/);
  });
});
