/**
 * The library's one Model: a checkpoint and a foreign PyTorch export opened with `openModel`,
 * run with and without a cache and with patches as data, and analysed with task configs or with
 * one's own prompt records (which give the same numbers as the task for the same prompts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GraphBackend } from '../src/backend/graph.js';
import { residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { FileBackend } from '../src/backend/file.js';
import { tvSearch } from '../src/analysis/tv-search.js';
import { decodeModel, loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { InputError, Tensor, formatPrompts, openModel, parsePrompts, readCache, searchPromptRecords, searchPromptsFor } from '../src/index.js';
import { resolveTaskConfig } from '../src/tasks/index.js';
import { handModel, handTaskConfig, handTasks } from './support/tv-hand-model.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-model-api-'));
afterAll(() => fs.rmSync(dir, { recursive: true }));

const hand = handModel();
const handCfg = handTaskConfig();
writeCheckpoint(path.join(dir, 'hand'), hand.cfg, hand.params, { step: 0, seed: 0, task: handCfg, metrics: {} });
const ckpt = path.join(dir, 'hand.onnx');

const TORCH = 'tests/fixtures/torch-gpt.onnx';
const torchMap = { hooks: suggestHookMap(residualCandidates(decodeModel(new Uint8Array(fs.readFileSync(TORCH)), TORCH))), maxSeq: 16 };
const torchTask = resolveTaskConfig({ kind: 'discrete', vocab: 10, demos: { min: 1, max: 1 }, heldoutTasks: 2, discrete: { families: ['offset'] } });

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('openModel on a tvlens checkpoint', { timeout: 120000 }, () => {
  const prompts = [
    [0, 4, 1, 5, 2, 4, 3, 5, 1, 4],
    [1, 4, 2, 5, 3, 4, 0, 5, 2, 4],
  ];

  it('knows its hooks, layers, width and config, and closes with await using', async () => {
    await using model = await openModel(ckpt);
    expect(model.kind).toBe('tvlens');
    expect([model.layers, model.dModel]).toEqual([hand.cfg.layers, hand.cfg.dModel]);
    expect(model.config).toEqual(hand.cfg);
    expect(model.hooks).toContain('blocks.1.hook_resid_post');
    expect(model.taskConfig).toEqual(handCfg);
  });

  it('runs prompts to logits with dims, and caches hooks by name as FileBackend fetches them', async () => {
    const model = await openModel(ckpt);
    try {
      const logits = await model.run(prompts);
      expect(logits.dims).toEqual([2, 10, hand.cfg.vocab]);
      const { logits: again, cache } = await model.runWithCache(prompts, { filter: (n) => n.endsWith('hook_resid_post') });
      expect(maxDiff(again.data, logits.data)).toBe(0);
      expect(cache.names).toEqual(Array.from({ length: hand.cfg.layers }, (_, l) => `blocks.${l}.hook_resid_post`));
      const r1 = cache.get('blocks.1.hook_resid_post');
      expect(r1.dims).toEqual([2, 10, hand.cfg.dModel]);
      expect(cache.residual(2)).toBe(r1); // task-vector layer 2 = the output of block 1
      const source = await FileBackend.open(ckpt);
      const ref = await source.run({ tokens: { dtype: 'int64', shape: [2, 10], data: BigInt64Array.from(prompts.flat(), BigInt) } }, { fetch: ['blocks.1.hook_resid_post'] });
      await source.close();
      expect(maxDiff(r1.data, ref.hooks['blocks.1.hook_resid_post'].data as Float32Array)).toBe(0);
      expect(r1.at(1, -1)).toEqual((ref.hooks['blocks.1.hook_resid_post'].data as Float32Array).subarray((1 * 10 + 9) * hand.cfg.dModel, (2 * 10) * hand.cfg.dModel));
      expect(() => cache.get('blocks.9.hook_resid_post')).toThrow(InputError);
    } finally {
      await model.close();
    }
  });

  it('applies patches as data: writing back a run\'s own value changes nothing, writing another prompt\'s whole stream gives its logits', async () => {
    await using model = await openModel(ckpt);
    const hook = 'blocks.0.hook_resid_post';
    const { logits, cache } = await model.runWithCache(prompts, { names: [hook] });
    const own = await model.run(prompts, { patches: [{ hook, value: new Tensor(cache.get(hook).data.slice(), cache.get(hook).dims) }] });
    expect(maxDiff(own.data, logits.data)).toBeLessThan(1e-5);
    // Prompt 1's stream written into both prompts: both now give prompt 1's logits.
    const r = cache.get(hook);
    const swapped = new Float32Array(r.data.length);
    swapped.set(r.data.subarray(r.size / 2), 0);
    swapped.set(r.data.subarray(r.size / 2), r.size / 2);
    const out = await model.run(prompts, { patches: [{ hook, value: new Tensor(swapped, r.dims) }] });
    expect(maxDiff(out.at(0), logits.at(1))).toBeLessThan(1e-4);
    // 'add' of a zero vector at the last position: unchanged.
    const added = await model.run(prompts, { patches: [{ hook, positions: [-1], value: new Float32Array(hand.cfg.dModel), mode: 'add' }] });
    expect(maxDiff(added.data, logits.data)).toBe(0);
    await expect(model.run(prompts, { patches: [{ hook, value: [1, 2, 3] }] })).rejects.toThrow(/3 numbers/);
  });

  it('runs a task-vector search that agrees with the engine, and gives the same numbers from its prompts as records', async () => {
    await using model = await openModel(ckpt);
    const opts = { tasks: handTasks, prompts: 4, queries: 8, seed: 2 };
    const viaModel = await model.tvSearch(undefined, opts);
    const engine = GraphBackend.fromCheckpoint(loadCheckpoint(ckpt));
    const direct = await tvSearch(engine, handCfg, opts);
    await engine.close();
    const scores = (r: typeof direct) => r.tasks.map((t) => [t.task.name, t.baseline.all.mean, t.icl.mean, ...t.curve.map((c) => c.all.mean), t.best.layer]);
    expect(scores(viaModel)).toEqual(scores(direct));
    // Against the hand model's construction, not the code: only θ at layer 2 carries the task (τ),
    // so it alone answers every zero-shot query; ICL is exact; layers 0, 1 and 3 do not transfer it.
    for (const t of viaModel.tasks) {
      expect(t.icl.mean).toBe(1);
      expect(t.best.layer).toBe(2);
      expect(t.curve[2].all.mean).toBe(1);
      for (const l of [0, 1, 3]) expect(t.curve[l].all.mean).toBeLessThan(0.5);
    }
    // The same prompts through a JSONL round trip.
    const records = parsePrompts(formatPrompts(searchPromptRecords(searchPromptsFor(handCfg, handTasks, opts))));
    const given = await model.tvSearch(records);
    expect(given.prompts).toBe('given');
    expect(scores(given)).toEqual(scores(direct));
    expect(given.average.curve.map((c) => c.all.mean)).toEqual(direct.average.curve.map((c) => c.all.mean));
  });

  it('patches given prompt pairs, and refuses token ids outside the vocabulary', async () => {
    await using model = await openModel(ckpt);
    const pairs = parsePrompts(
      [
        { tokens: prompts[0], corrupted: prompts[1], answer: 1 },
        { tokens: prompts[1], corrupted: prompts[0], answer: 0 },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n'),
    );
    const r = await model.patch(pairs, { site: 'resid_pre', positions: [9] });
    expect(r.corruption).toBe('given');
    expect(r.normalized).toHaveLength(hand.cfg.layers);
    expect(r.columns).toEqual(['9(4)']);
    await expect(model.patch([{ tokens: [999], corrupted: [0], answer: 0 }])).rejects.toThrow(/token id 999/);
  });
});

describe('cacheToArrow', { timeout: 120000 }, () => {
  it('streams a checkpoint\'s hooks for its own task, and for given prompts at their positions, as readCache reads them', async () => {
    await using model = await openModel(ckpt);
    const drawn = await model.cacheToArrow(path.join(dir, 'drawn.arrow'), { count: 6, hooks: ['resid'] });
    expect(drawn).toMatchObject({ prompts: 6, rows: 6, hooks: ['blocks.0.hook_resid_pre', 'blocks.0.hook_resid_post', 'blocks.1.hook_resid_post', 'blocks.2.hook_resid_post'] });
    const records = parsePrompts('{"tokens": [0, 8, 1, 9, 2, 8], "position": 1}\n{"tokens": [3, 8, 4, 9, 5, 8]}');
    const given = await model.cacheToArrow(path.join(dir, 'given.arrow'), { prompts: records, hooks: ['blocks.1.hook_resid_post'] });
    expect(given).toMatchObject({ prompts: 2, rows: 2 });
    const cache = readCache(path.join(dir, 'given.arrow'));
    expect(Array.from(cache.position)).toEqual([1, 5]);
    const { cache: run } = await model.runWithCache([records[0].tokens as number[]], { names: ['blocks.1.hook_resid_post'] });
    expect(maxDiff(cache.hooks['blocks.1.hook_resid_post'].data.subarray(0, hand.cfg.dModel), run.get('blocks.1.hook_resid_post').at(0, 1))).toBe(0);
  });
});

describe('openModel on a foreign PyTorch export', { timeout: 120000 }, () => {
  it('runs, caches, and gives the same search from records as from the task', async () => {
    await using model = await openModel(TORCH, { hookMap: torchMap, padTo: 8 });
    expect([model.kind, model.layers, model.dModel, model.config]).toEqual(['foreign', 2, 16, null]);
    const ref = JSON.parse(fs.readFileSync('tests/fixtures/torch-gpt-reference.json', 'utf8')) as { input_ids: number[][]; logits: number[][][] };
    const { logits, cache } = await model.runWithCache([ref.input_ids[0].slice(0, 5)], { names: ['blocks.1.hook_resid_post'] });
    expect(logits.dims).toEqual([1, 5, 12]);
    expect(cache.get('blocks.1.hook_resid_post').dims).toEqual([1, 5, 16]);
    expect(maxDiff(logits.at(0, 4), ref.logits[0][4])).toBeLessThan(1e-5);
    const opts = { maxTasks: 2, prompts: 4, queries: 8, seed: 1 };
    const fromTask = await model.tvSearch(torchTask, opts);
    const tasks = fromTask.tasks.map((t) => t.task.name);
    const { taskList } = await import('../src/tasks/index.js');
    const records = searchPromptRecords(searchPromptsFor(torchTask, taskList(torchTask, 'train').filter((t) => tasks.includes(t.name)), opts));
    const fromFile = await model.tvSearch(records);
    const scores = (r: typeof fromTask) => r.tasks.map((t) => [t.baseline.all.mean, t.icl.mean, ...t.curve.map((c) => c.all.mean), t.best.layer]);
    expect(scores(fromFile)).toEqual(scores(fromTask));
  });
});
