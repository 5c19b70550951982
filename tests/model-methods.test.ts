/**
 * Model.functionVectors and Model.attributionPatch: thin wrappers over the analysis functions, so
 * on a checkpoint they give the analysis's numbers exactly, and a foreign model is refused in one line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attributionPatch } from '../src/analysis/attribution.js';
import { GraphBackend } from '../src/backend/graph.js';
import { functionVectors } from '../src/analysis/function-vectors.js';
import { residualCandidates, suggestHookMap } from '../src/backend/hookmap.js';
import { decodeModel, loadCheckpoint, writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { type AttributionPatchOptions, type AttributionResult, type FunctionVectorResult, type FunctionVectorsOptions, InputError, openModel, promptPairs } from '../src/index.js';
import { TASK_HEAD, fvHandModel, fvHandTaskConfig, fvHandTasks } from './support/fv-hand-model.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-model-methods-'));
const hand = fvHandModel();
const cfg = fvHandTaskConfig();
writeCheckpoint(path.join(dir, 'hand'), hand.cfg, hand.params, { step: 0, seed: 0, task: cfg, metrics: {} });
const ckpt = path.join(dir, 'hand.onnx');
const engine = GraphBackend.fromCheckpoint(loadCheckpoint(ckpt));
afterAll(async () => {
  await engine.close();
  fs.rmSync(dir, { recursive: true });
});

// Timings differ between any two runs; everything else must match to the bit.
const fvNumbers = ({ cost, ...r }: FunctionVectorResult) => ({ ...r, prompts: cost.prompts });
const attributionNumbers = ({ ms, ...r }: AttributionResult) => r;

describe('Model.functionVectors and Model.attributionPatch', { timeout: 120000 }, () => {
  it('functionVectors gives the numbers of the analysis function, on the checkpoint\'s own task config or a given one', async () => {
    const opts: FunctionVectorsOptions = { tasks: fvHandTasks, prompts: 6, shuffled: 8, queries: 8, topK: 1, seed: 3 };
    const direct = await functionVectors(engine, cfg, opts);
    await using model = await openModel(ckpt);
    const own = await model.functionVectors(undefined, opts);
    expect(fvNumbers(own)).toEqual(fvNumbers(direct));
    expect(own.ranking[0]).toMatchObject({ layer: TASK_HEAD.layer, head: TASK_HEAD.head });
    expect(fvNumbers(await model.functionVectors(cfg, { ...opts, compareTv: false }))).toEqual(fvNumbers(await functionVectors(engine, cfg, { ...opts, compareTv: false })));
  });

  it('attributionPatch gives the numbers of the analysis function, on pairs drawn from the task config and on given pairs', async () => {
    const opts: AttributionPatchOptions = { tasks: fvHandTasks, prompts: 3, sites: ['resid_pre', 'z'], seed: 1 };
    await using model = await openModel(ckpt);
    const drawn = await model.attributionPatch(undefined, opts);
    expect(attributionNumbers(drawn)).toEqual(attributionNumbers(await attributionPatch(engine, cfg, opts)));
    expect(drawn.grids.map((g) => g.site)).toEqual(['resid_pre', 'z']);
    expect(drawn.grids[1].exact).not.toBeNull();
    // Against the hand model's construction, not the code: with shuffled labels only the task head
    // reads the demos, so its z at the query is the one cell whose patch restores the clean answer
    // (fully), and the attribution estimate ranks that cell first too.
    const z = drawn.grids[1];
    const head = z.rows.indexOf(`blocks.${TASK_HEAD.layer}.attn.hook_z[head ${TASK_HEAD.head}]`);
    const last = z.columns.length - 1;
    const cells = z.exact!.flatMap((row, i) => row.map((v, j) => ({ i, j, v })));
    expect(cells.filter((c) => Math.abs(c.v) > 0.01).map((c) => [c.i, c.j])).toEqual([[head, last]]);
    expect(z.exact![head][last]).toBeCloseTo(1, 4); // float32
    const top = z.estimate.flatMap((row, i) => row.map((v, j) => ({ i, j, v }))).sort((a, b) => b.v - a.v)[0];
    expect([top.i, top.j]).toEqual([head, last]);
    const pairs = promptPairs(cfg, fvHandTasks, { count: 2, corruption: 'shuffled-labels', seed: 2 });
    const given = await model.attributionPatch(pairs, { sites: ['resid_post'], exact: false });
    expect(attributionNumbers(given)).toEqual(attributionNumbers(await attributionPatch(engine, null, { pairs, sites: ['resid_post'], exact: false })));
    expect(given.corruption).toBe('shuffled-labels');
  });

  it('both refuse a foreign model with one InputError line that says a tvlens checkpoint is needed and what runs instead', async () => {
    const torch = 'tests/fixtures/torch-gpt.onnx';
    const hookMap = { hooks: suggestHookMap(residualCandidates(decodeModel(new Uint8Array(fs.readFileSync(torch)), torch))), maxSeq: 16 };
    await using model = await openModel(torch, { hookMap, padTo: 8 });
    expect(model.kind).toBe('foreign');
    const fv = model.functionVectors(cfg);
    await expect(fv).rejects.toThrow(InputError);
    await expect(fv).rejects.toThrow(/^function vectors need a tvlens checkpoint \(.*\), and .*torch-gpt\.onnx is a foreign model: use tvSearch/);
    const ap = model.attributionPatch(cfg);
    await expect(ap).rejects.toThrow(InputError);
    await expect(ap).rejects.toThrow(/^attribution patching needs a tvlens checkpoint \(.*\), and .*: use patch \(exact patching\) on it$/);
    for (const p of [fv, ap]) expect((await p.catch((e: Error) => e.message)) as string).not.toContain('\n');
  });
});
