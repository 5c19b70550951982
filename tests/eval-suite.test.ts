/**
 * The evaluation suite (`tvlens eval`), which made the README's headline table: each figure it
 * reports is recomputed here from the model's own outputs, the length condition reports "not
 * applicable" past a learned context, group summaries are means with intervals over models, and
 * the command prints the same numbers as JSON.
 */
import { promptFeeds } from '../src/backend/backend.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openModel } from '../src/api/model.js';
import { FileBackend } from '../src/backend/file.js';
import { loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { parse } from '../src/cli/command.js';
import { evalCommand } from '../src/cli/eval.js';
import { SUITE_DEFAULTS, evaluateModel, figuresOf, final, summarise } from '../src/eval/suite.js';
import { taskVectorScores } from '../src/eval/task-vectors.js';
import { sampleBatch } from '../src/tasks/index.js';
import { argmax } from '../src/tasks/score.js';
import { Rng } from '../src/util/rng.js';
import { handModel, handTaskConfig } from './support/tv-hand-model.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-eval-'));
afterAll(() => fs.rmSync(dir, { recursive: true }));
const hand = handModel();
const task = handTaskConfig(); // 4 demos: 18 positions; the model's learned context is 24
writeCheckpoint(path.join(dir, 'hand'), hand.cfg, hand.params, { step: 0, seed: 0, task, metrics: {} });
const ckpt = path.join(dir, 'hand.onnx');
const options = { ...SUITE_DEFAULTS, prompts: 24, seed: 5 };

describe('the eval suite', { timeout: 120000 }, () => {
  it('scores ICL by shots as the model\'s own argmax at every scored position says', async () => {
    const r = await evaluateModel(ckpt, options);
    // Recomputed from the model's logits on the same prompts: correct answers per shot count.
    const batch = sampleBatch(task, new Rng(options.seed), options.prompts, { split: 'train', demos: task.demos.max });
    const source = await FileBackend.open(ckpt);
    const { output } = await source.run(promptFeeds(batch));
    await source.close();
    const V = output.shape[2];
    const hits = new Array(task.demos.max + 1).fill(0);
    const counts = new Array(task.demos.max + 1).fill(0);
    for (let i = 0; i < batch.weights.length; i++) {
      if (!batch.weights[i]) continue;
      const row = (output.data as Float32Array).subarray(i * V, (i + 1) * V);
      counts[batch.shots[i]]++;
      if (batch.kind === 'tokens' && argmax(row) === Number(batch.targets[i])) hits[batch.shots[i]]++;
    }
    expect(r.metric).toBe('accuracy');
    expect(r.icl.counts).toEqual(counts);
    expect(r.icl.byShots).toEqual(hits.map((h, k) => h / counts[k]));
    expect(final(r.icl)).toBe(r.icl.byShots[task.demos.max]);
    expect(r.queryShift).toBeNull(); // a token task has no regression query shift
    expect(r.heldout).not.toBeNull();
    expect(r.modelHash).toBe(loadCheckpoint(ckpt).manifest.weightsSha256);
  });

  it('reports lengths past the learned context as not applicable rather than running them', async () => {
    const r = await evaluateModel(ckpt, options);
    // 2, 4, 6 and 8 demos: 10, 18, 26 and 34 positions against a context of 24.
    expect(r.length.map((l) => l.demos)).toEqual([2, 4, 6, 8]);
    expect(r.length.map((l) => l.score === null)).toEqual([false, false, true, true]);
    expect(r.length[1].score).toBe(final(r.icl)); // 4 demos is the ICL condition itself
  });

  it("takes task-vector scores at the prescribed layer: the option's, else the TVP layer the manifest records, else the middle one", async () => {
    const tvp = path.join(dir, 'tvp');
    writeCheckpoint(tvp, hand.cfg, hand.params, { step: 0, seed: 0, task, metrics: {}, extra: { tvp: { tvp: { layer: 1 } } } });
    await using plain = await openModel(ckpt);
    await using trained = await openModel(`${tvp}.onnx`);
    const middle = await taskVectorScores(plain, { seed: 0 });
    expect(middle.layer).toBe(2); // ⌈3 / 2⌉
    expect((await taskVectorScores(trained, { seed: 0 })).layer).toBe(1);
    expect((await taskVectorScores(trained, { layer: 3, seed: 0 })).layer).toBe(3);
    for (const x of [middle.atLayer, middle.atBest, middle.icl, middle.zeroShot]) expect(x).toBeGreaterThanOrEqual(0);
    for (const x of [middle.atLayer, middle.atBest, middle.icl, middle.zeroShot]) expect(x).toBeLessThanOrEqual(1);
    expect(middle.bestLayer).toBeGreaterThanOrEqual(0);
    expect(middle.bestLayer).toBeLessThanOrEqual(3);
  });

  it('summarises a group as the mean over its models with a 95% interval, and prints it as JSON', async () => {
    const a = await evaluateModel(ckpt, options);
    const b = await evaluateModel(ckpt, { ...options, seed: 6 });
    const g = summarise('hand', [a, b]);
    const fa = figuresOf(a);
    const fb = figuresOf(b);
    expect(g.figures.icl_final.mean).toBeCloseTo(((fa.icl_final as number) + (fb.icl_final as number)) / 2, 12);
    expect(g.figures.icl_final.n).toBe(2);
    expect(g.figures).not.toHaveProperty('length_6_demos'); // not applicable for either model
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const { values, positionals } = parse(evalCommand, ['--group', `hand=${ckpt}`, '--prompts', '24', '--seed', '5', '--no-task-vectors', '--json']);
      await evalCommand.run(values, positionals);
      const out = JSON.parse(log.mock.calls.at(-1)![0] as string);
      expect(out.groups[0]).toMatchObject({ name: 'hand', models: [ckpt] });
      expect(out.groups[0].figures.icl_final.mean).toBe(fa.icl_final);
      expect(out.models[0].icl.byShots).toEqual(a.icl.byShots);
    } finally {
      log.mockRestore();
    }
  });
});
