import { describe, expect, it } from 'vitest';
import { RangeInputError } from '../src/backend/backend.js';
import { GraphBackend } from '../src/backend/graph.js';
import { tvSearch } from '../src/analysis/tv-search.js';
import { InputError } from '../src/errors.js';
import { Graph } from '../src/graph/index.js';
import { resolveModelConfig } from '../src/model/config.js';
import { declareParams } from '../src/model/transformer.js';
import { resolveTaskConfig, taskList, taskPrompts } from '../src/tasks/index.js';
import { drawSearchPrompts, searchPromptsFor } from '../src/analysis/search-prompts.js';
import { Rng } from '../src/util/rng.js';
import { handModel, handTaskConfig, handTasks } from './support/tv-hand-model.js';

const opts = { tasks: handTasks, prompts: 12, queries: 32, seed: 3 } as const;
const acc = (r: Awaited<ReturnType<typeof tvSearch>>, l: number) => r.average.curve[l].all.mean;

describe('task-vector search', { timeout: 60000 }, () => {
  const engine = GraphBackend.open(handModel());
  const cfg = handTaskConfig();

  it('finds the layer that the hand-built model copies the task into', async () => {
    const r = await tvSearch(engine, cfg, opts);
    expect(r.metric).toBe('accuracy');
    expect(r.average.icl.mean).toBeGreaterThan(0.95);
    expect(r.average.baseline.all.mean).toBeLessThan(0.3);
    expect(acc(r, 2)).toBeGreaterThan(0.95);
    for (const l of [0, 1, 3]) expect(acc(r, l), `layer ${l}`).toBeLessThan(0.5);
    expect(r.average.best.layer).toBe(2);
    for (const t of r.tasks) expect(t.best).toMatchObject({ layer: 2 });
    expect(r.average.best.test).toBeGreaterThan(0.95);
    expect(r.convention).toMatch(/ℓ = 0 is the embeddings/);
  });

  it('finds the same layer when the centred task vector is added instead of written over', async () => {
    // Uncentred, the sum doubles the residual's constant part and LayerNorm halves τ: centring
    // leaves only the task-specific direction, as function vectors are.
    const r = await tvSearch(engine, cfg, { ...opts, mode: 'add', center: true });
    expect(r.average.best.layer).toBe(2);
    expect(acc(r, 2)).toBeGreaterThan(0.95);
  });

  it('injects at several layers at once, the later write winning at the injected position', async () => {
    const r = await tvSearch(engine, cfg, { ...opts, sets: [[0, 2], [2, 3]], combine: [2] });
    expect(r.average.sets[0].all.mean).toBe(acc(r, 2));
    expect(r.average.sets[1].all.mean).toBe(acc(r, 3));
    // The best two layers on dev are 2 and one other; together they do what layer 2 alone does,
    // unless the other is 3, which overwrites it.
    for (const t of r.tasks) expect(t.combined[0].layers).toContain(2);
  });

  it('gives the same curve through the suffix forward as with one full forward pass per layer', async () => {
    const fast = await tvSearch(engine, cfg, { ...opts, mode: 'add', sets: [[1, 3]] });
    const naive = await tvSearch(engine, cfg, { ...opts, mode: 'add', sets: [[1, 3]], method: 'naive' });
    expect(naive.tasks.map((t) => t.curve.map((c) => c.all.mean))).toEqual(fast.tasks.map((t) => t.curve.map((c) => c.all.mean)));
    expect(naive.average.sets[0].all.mean).toBe(fast.average.sets[0].all.mean);
  });

  it('leaves the baseline unchanged when a centred vector of a single task is added', async () => {
    const r = await tvSearch(engine, cfg, { ...opts, tasks: [handTasks[1]], mode: 'add', center: true });
    for (const point of r.average.curve) expect(point.all.mean).toBe(r.average.baseline.all.mean);
  });

  it('rejects a layer out of range, naming the valid range', async () => {
    await expect(tvSearch(engine, cfg, { ...opts, layers: [4] })).rejects.toThrow(RangeInputError);
    await expect(tvSearch(engine, cfg, { ...opts, layers: [4] })).rejects.toThrow(/valid layers are 0\.\.3/);
    await expect(tvSearch(engine, cfg, { ...opts, sets: [[1, -1]] })).rejects.toThrow(/valid layers are 0\.\.3/);
  });

  it('rejects demo prompts longer than the model context', async () => {
    await expect(tvSearch(engine, cfg, { ...opts, shots: 6 })).rejects.toThrow(InputError);
    await expect(tvSearch(engine, cfg, { ...opts, shots: 6 })).rejects.toThrow(/longer than the model's context of 24/);
  });
});

describe('task-vector search on regression and other positions', { timeout: 60000 }, () => {
  it('scores regression by normalised MSE, draws stand-in tasks, and matches the naive search', async () => {
    const cfg = resolveModelConfig({ layers: 2, dModel: 16, heads: 2, maxSeq: 24, input: 'vectors', dIn: 3, output: 'vector', dOut: 1, initStd: 0.3 });
    const g = new Graph('float32');
    declareParams(g, cfg, 4);
    const engine = GraphBackend.open({ cfg, params: new Map(g.params.map((p) => [p.value.name, p.data as Float32Array])) });
    const tcfg = resolveTaskConfig({ kind: 'linreg', linreg: { dIn: 3 }, demos: { min: 4, max: 4 } });
    const o = { maxTasks: 3, prompts: 4, dummies: 2, queries: 8, mode: 'add' as const, center: true };
    const fast = await tvSearch(engine, tcfg, o);
    const naive = await tvSearch(engine, tcfg, { ...o, method: 'naive' });
    expect(fast.metric).toBe('nmse');
    expect(fast.tasks.map((t) => t.task.name)).toEqual(['linreg#0', 'linreg#1', 'linreg#2']);
    expect(fast.cost.demoPrompts).toBe(3 * 4 * 2);
    fast.average.curve.forEach((c, i) => expect(c.all.mean).toBeCloseTo(naive.average.curve[i].all.mean, 4));
    // A centred vector added at the final layer moves the prediction: the curve is not the baseline.
    expect(fast.average.curve[2].all.mean).not.toBe(fast.average.baseline.all.mean);
  });

  it('injects at the x of the query when asked, reading θ at the dummy x of the demo prompts', async () => {
    const engine = GraphBackend.open(handModel());
    const r = await tvSearch(engine, handTaskConfig(), { ...opts, offset: -1 });
    expect(r.positions).toEqual({ zeroShot: 0, demo: 16 });
    // Writing over x_q destroys the query the answer depends on: no layer works there.
    for (const c of r.average.curve) expect(c.all.mean).toBeLessThan(0.5);
    await expect(tvSearch(engine, handTaskConfig(), { ...opts, offset: -2 })).rejects.toThrow(/valid: -1\.\.0/);
  });
});

describe('drawing the prompts of a large search', { timeout: 60000 }, () => {
  it('gives the prompts of one draw, in chunks, letting the event loop run and reporting progress', async () => {
    const cfg = resolveTaskConfig({ kind: 'discrete', vocab: 16, demos: { min: 2, max: 2 } });
    const task = taskList(cfg, 'train')[0];
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const progress: number[] = [];
    const drawn = await drawSearchPrompts(cfg, [task], { prompts: 5000, queries: 4, seed: 3 }, (done) => progress.push(done));
    clearInterval(timer);
    // One call of the generator, with the RNG the search forks for the task's demo prompts.
    const oneCall = taskPrompts(cfg, task, new Rng(3).fork().fork(), 5000, 2);
    expect(drawn.demos.batch).toBe(5000);
    expect(drawn.demos.kind === 'tokens' && oneCall.kind === 'tokens').toBe(true);
    if (drawn.demos.kind === 'tokens' && oneCall.kind === 'tokens') {
      expect(drawn.demos.tokens).toEqual(oneCall.tokens);
      expect(drawn.demos.targets).toEqual(oneCall.targets);
    }
    expect(progress.at(-1)).toBe(5004);
    expect(progress.length).toBeGreaterThanOrEqual(3); // 2048 + 2048 + 904, then the queries
    expect(ticks).toBeGreaterThan(0);
    // The synchronous form draws the same prompts.
    const sync = searchPromptsFor(cfg, [task], { prompts: 5000, queries: 4, seed: 3 });
    expect(sync.demos).toEqual(drawn.demos);
    expect(sync.queries).toEqual(drawn.queries);
  });
});
