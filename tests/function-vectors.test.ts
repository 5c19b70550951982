/** Function vectors (Todd et al.): head ranking by AIE, the FV sweep, and the comparison with Hendel's task vector. */
import { describe, expect, it } from 'vitest';
import { Engine } from '../src/analysis/engine.js';
import { functionVectors } from '../src/analysis/function-vectors.js';
import { InputError } from '../src/errors.js';
import { TASK_HEAD, fvHandModel, fvHandTaskConfig, fvHandTasks } from './support/fv-hand-model.js';

const opts = { tasks: fvHandTasks, prompts: 12, shuffled: 24, queries: 32, topK: 1, seed: 3 } as const;

describe('function vectors', { timeout: 60000 }, () => {
  const engine = Engine.open(fvHandModel());
  const cfg = fvHandTaskConfig();

  it('ranks the hand-built model\'s task head first, and no other head helps shuffled-label prompts', async () => {
    const r = await functionVectors(engine, cfg, opts);
    expect(r.ranking[0]).toMatchObject({ layer: TASK_HEAD.layer, head: TASK_HEAD.head, hook: 'blocks.1.attn.hook_z' });
    expect(r.aie[TASK_HEAD.layer][TASK_HEAD.head]).toBeGreaterThan(0.5);
    for (const h of r.ranking.slice(1)) expect(h.aie, `block ${h.layer} head ${h.head}`).toBeLessThan(0.05);
    for (const t of r.tasks) expect(t.aie[TASK_HEAD.layer][TASK_HEAD.head], t.task.name).toBeGreaterThan(0.5);
    expect(r.heads).toEqual([r.ranking[0]]);
    expect(r.aieUnit).toBe('p(correct)');
  });

  it('makes zero-shot prompts solve the task when added before the answer is read, and not after', async () => {
    const r = await functionVectors(engine, cfg, opts);
    const acc = (l: number) => r.average.curve[l].all.mean;
    expect(r.average.icl.mean).toBeGreaterThan(0.95);
    expect(r.average.baseline.mean).toBeLessThan(0.3);
    for (const l of [0, 1, 2]) expect(acc(l), `layer ${l}`).toBeGreaterThan(0.95);
    expect(acc(3)).toBeLessThan(0.5);
    expect(r.average.best.layer).toBe(0);
    // Hendel's task vector on the same prompts works only at layer 2, where τ has been written but the answer not yet.
    expect(r.tv!.best.layer).toBe(2);
    expect(r.tv!.curve[2].all.mean).toBeGreaterThan(0.95);
    for (const l of [0, 1, 3]) expect(r.tv!.curve[l].all.mean, `tv layer ${l}`).toBeLessThan(0.5);
    // Accuracy intervals stay in [0, 1].
    for (const c of [...r.average.curve, ...r.tv!.curve]) expect(c.all.low >= 0 && c.all.high <= 1).toBe(true);
  });

  it('rejects a top-k beyond the model\'s heads and too few demos, naming the valid range', async () => {
    await expect(functionVectors(engine, cfg, { ...opts, topK: 7 })).rejects.toThrow(/top-k must be an integer in 1\.\.6/);
    await expect(functionVectors(engine, cfg, { ...opts, shots: 1 })).rejects.toThrow(InputError);
  });
});
