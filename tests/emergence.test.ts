/**
 * The science code behind the headline mechanism and the second wave's diagnostics, on hand-built
 * models whose answer is known by construction (tests/support/tv-hand-model.ts): one that carries
 * the task at layer 2 and reads x_q again in block 2, and one that copies x_q into the arrow in
 * block 0 and never reads it again (what the first study found in trained models).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { emergenceDiagnostics } from '../src/analysis/emergence.js';
import { GraphBackend } from '../src/backend/graph.js';
import { queryCopy } from '../src/analysis/query-copy.js';
import { FileBackend } from '../src/backend/file.js';
import { writeCheckpoint } from '../src/checkpoint/checkpoint.js';
import { demoKeepMask } from '../src/train/loop.js';
import { sampleBatch } from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';
import { handModel, handTaskConfig, handTasks } from './support/tv-hand-model.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-emergence-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function copyMeasures(copyBlock: 0 | 2) {
  const { cfg, params } = handModel({ copyBlock });
  const stem = path.join(dir, `hand-copy${copyBlock}`);
  writeCheckpoint(stem, cfg, params, { step: 0, seed: 0, task: handTaskConfig(), metrics: {} });
  const source = await FileBackend.open(`${stem}.onnx`);
  try {
    return (await queryCopy(source, handTaskConfig(), { prompts: 256 }))!;
  } finally {
    await source.close();
  }
}

describe('query-copy on hand-built models', () => {
  it('finds x_q in the arrow from layer 1 on, and no re-read, when block 0 copies it', async () => {
    const m = await copyMeasures(0);
    expect(m.probe[0]).toBeLessThan(m.chance + 0.2); // the arrow's embedding knows nothing of x_q
    for (const l of [1, 2, 3]) expect(m.probe[l]).toBeGreaterThan(0.95);
    expect(m.reread[1]).toBeLessThan(0.3); // blocks 1 and 2 look elsewhere
  });

  it('finds x_q only after block 2, which reads it again, when block 2 copies it', async () => {
    const m = await copyMeasures(2);
    for (const l of [0, 1, 2]) expect(m.probe[l]).toBeLessThan(m.chance + 0.2);
    expect(m.probe[3]).toBeGreaterThan(0.95);
    expect(m.reread[1]).toBeGreaterThan(0.9); // block 2 attends to x_q
    expect(m.reread[3]).toBe(0); // no block is left after the last layer
  });
});

describe('the emergence diagnostics on hand-built models', () => {
  const options = { tasks: handTasks, queries: 32 };

  it("Hendel's per-demo-set task vector works at layer 2, the demos are read by layer 2, and the probe finds the task from layer 2 on", async () => {
    const { cfg, params } = handModel();
    const engine = GraphBackend.open({ cfg, params });
    const r = await emergenceDiagnostics(engine, handTaskConfig(), options).finally(() => engine.close());
    expect(r.hendel.best.layer).toBe(2);
    expect(r.hendel.best.test).toBeGreaterThan(0.95);
    expect(r.hendel.icl).toBeGreaterThan(0.95);
    expect(r.hendel.recovered).toBeGreaterThan(0.9);
    expect(r.hendel.tv.test[0]).toBeLessThan(0.6); // θ_0 holds no task
    // Block 1 reads the labels: cutting the demos from block 1 on leaves τ = 0; from block 2 on, nothing is lost.
    expect(r.masking.masked[2]).toBeGreaterThan(0.95);
    expect(r.masking.masked[1]).toBeLessThan(0.6);
    expect(r.masking.readBy).toBe(2);
    expect(r.probe!.chance).toBe(0.5);
    expect(r.probe!.accuracy[1]).toBeLessThan(0.75);
    expect(r.probe!.accuracy[2]).toBeGreaterThan(0.95);
  });

  it('the task vector fails where the arrow already holds a copy of the dummy query', async () => {
    const { cfg, params } = handModel({ copyBlock: 0 });
    const engine = GraphBackend.open({ cfg, params });
    const r = await emergenceDiagnostics(engine, handTaskConfig(), options).finally(() => engine.close());
    expect(r.hendel.icl).toBeGreaterThan(0.95); // ICL itself is intact
    expect(r.hendel.tv.test[2]).toBeLessThan(0.5); // θ_2 answers for the dummy's x, not x_q
    expect(r.hendel.recovered).toBeLessThan(0.5);
  });
});

describe('token-wise dropout on the demos', () => {
  it('drops about 1 − keep of the demo positions, never the query block, and the same for the same Rng', () => {
    const cfg = handTaskConfig();
    const batch = sampleBatch(cfg, new Rng(1), 400, { demos: 4 });
    const mask = demoKeepMask(batch, 0.8, new Rng(2));
    expect(demoKeepMask(batch, 0.8, new Rng(2))).toEqual(mask);
    let [demo, dropped] = [0, 0];
    for (let b = 0; b < batch.batch; b++) {
      const queryStart = batch.queryPos[b] - batch.xOffset;
      for (let p = 0; p < batch.seq; p++) {
        const v = mask[b * batch.seq + p];
        if (p >= queryStart) expect(v).toBe(1);
        else [demo, dropped] = [demo + 1, dropped + (v === 0 ? 1 : 0)];
      }
    }
    expect(dropped / demo).toBeGreaterThan(0.17);
    expect(dropped / demo).toBeLessThan(0.23);
  });
});
