/** The training loop: exact resume, atomic checkpoints, and the NaN guard. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { readState } from '../src/checkpoint/state.js';
import { op } from '../src/graph/index.js';
import { resolveRunConfig } from '../src/train/config.js';
import { iclLossProgram } from '../src/train/icl-loss.js';
import { latestCheckpoint } from '../src/runs/folder.js';
import { TrainingDivergedError, train } from '../src/train/loop.js';
import { writeFileAtomic } from '../src/util/fs.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-run-'));

const micro = (steps: number) =>
  resolveRunConfig({
    model: { layers: 1, dModel: 16, heads: 2, maxSeq: 32 },
    task: { vocab: 8, demos: { min: 2, max: 4 }, heldoutTasks: 2 },
    optimizer: { lr: 0.003, warmupSteps: 2 },
    train: { steps, batchSize: 8, evalEvery: 3, evalPrompts: 16, checkpointEvery: 3 },
  });

describe('training runs', () => {
  it('a run interrupted at step k and resumed ends with the same weights and moments as an uninterrupted run of 2k steps', async () => {
    const cfg = micro(6);
    const straight = tmp();
    await train(cfg, straight);
    const interrupted = tmp();
    await train(cfg, interrupted, { stopAfter: 3 });
    expect(latestCheckpoint(interrupted)?.step).toBe(3);
    await train(cfg, interrupted, { resume: true });

    const a = readState(path.join(straight, 'checkpoints', 'step-000006.state'));
    const b = readState(path.join(interrupted, 'checkpoints', 'step-000006.state'));
    expect(b.step).toBe(6);
    expect(b.rng).toEqual(a.rng);
    for (const [name, data] of a.params) expect(b.params.get(name)).toEqual(data);
    for (const [name, data] of a.m) expect(b.m.get(name), `first moment of ${name}`).toEqual(data);
    for (const [name, data] of a.v) expect(b.v.get(name), `second moment of ${name}`).toEqual(data);
    expect(a.m.size).toBe(a.params.size);
    // metrics.jsonl has one line per evaluation, none repeated by the resume.
    const steps = fs.readFileSync(path.join(interrupted, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).step);
    expect(steps).toEqual([3, 6]);
  });

  it('resumes a run started by an older tvlens, whose saved config lacks a key added since (with its default), and still refuses a changed config', async () => {
    const cfg = micro(6);
    // As the tvlens before dfa.markov resolved this config: the same, without the two new keys.
    const { markov: _m, doublyStochastic: _d, ...olderDfa } = cfg.task.dfa;
    const older = { ...cfg, task: { ...cfg.task, dfa: olderDfa } } as unknown as typeof cfg;
    const dir = tmp();
    await train(older, dir, { stopAfter: 3 });
    await train(cfg, dir, { resume: true });
    expect(latestCheckpoint(dir)?.step).toBe(6);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).task.dfa).not.toHaveProperty('markov'); // the run's record is left as written
    const changed = tmp();
    await train(micro(6), changed, { stopAfter: 3 });
    await expect(train(resolveRunConfig({ ...micro(6), optimizer: { ...micro(6).optimizer, lr: 0.01 } }), changed, { resume: true })).rejects.toThrow(/the config differs/);
  });

  it('keeps the whole checkpoint series, each model with a manifest whose weight hash matches, and no temporary files', async () => {
    const dir = tmp();
    await train(micro(6), dir);
    const files = fs.readdirSync(path.join(dir, 'checkpoints')).sort();
    expect(files).toEqual(['step-000003.json', 'step-000003.onnx', 'step-000003.state', 'step-000006.json', 'step-000006.onnx', 'step-000006.state']);
    for (const step of ['000003', '000006']) {
      const c = loadCheckpoint(path.join(dir, 'checkpoints', `step-${step}.onnx`));
      expect(c.manifest.step).toBe(Number(step));
      expect(c.manifest.model.layers).toBe(1);
    }
  });

  it('an atomic write that fails leaves neither a partial file nor a temporary one behind', () => {
    const dir = tmp();
    const target = path.join(dir, 'model.onnx');
    fs.mkdirSync(path.join(target, 'occupied'), { recursive: true }); // rename onto a non-empty folder fails
    expect(() => writeFileAtomic(target, new Uint8Array(1000))).toThrow();
    expect(fs.readdirSync(dir)).toEqual(['model.onnx']);
    expect(fs.statSync(target).isDirectory()).toBe(true);
  });

  it('a loss that turns NaN stops the run with a clear error and leaves the last good checkpoint as it was', async () => {
    const cfg = micro(6);
    const dir = tmp();
    await train(cfg, dir, { stopAfter: 3 });
    const before = fs.readFileSync(path.join(dir, 'checkpoints', 'step-000003.state'));
    const poisoned = () => {
      const p = iclLossProgram(cfg.model, cfg.train.seed);
      return { graph: p.graph, loss: op.div(p.loss, op.mul(p.loss, 0)) }; // x / 0·x is NaN or ±Inf
    };
    await expect(train(cfg, dir, { resume: true, program: poisoned })).rejects.toThrow(TrainingDivergedError);
    await expect(train(cfg, dir, { resume: true, program: poisoned })).rejects.toThrow(/the loss became (NaN|Infinity|-Infinity) at step 4; stopped\. The last good checkpoint is .*step-000003/);
    expect(latestCheckpoint(dir)?.step).toBe(3);
    expect(fs.readFileSync(path.join(dir, 'checkpoints', 'step-000003.state')).equals(before)).toBe(true);
  });
});
