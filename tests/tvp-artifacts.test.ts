/** TVP training artifacts are self-contained: a fresh process with only ONNX Runtime reproduces training. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../src/checkpoint/checkpoint.js';
import { readBundle, writeBundle } from '../src/checkpoint/bundle.js';
import type { HostTensor } from '../src/runtime/session.js';
import { learningRate } from '../src/train/optimizer.js';
import { tvpStepData } from '../src/tvp/data.js';
import { runTvp, tvpSource } from '../src/tvp/run.js';
import { resolveTvpConfig } from '../src/tvp/loss.js';
import { Rng } from '../src/util/rng.js';

const CONFIG = {
  model: { layers: 2, dModel: 16, heads: 2, maxSeq: 24 },
  task: { vocab: 8, demos: { min: 2, max: 4 }, heldoutTasks: 2 },
  optimizer: { lr: 0.003, warmupSteps: 2 },
  train: { steps: 5, batchSize: 8, evalEvery: 5, evalPrompts: 16, checkpointEvery: 5, layout: 'split' },
};

describe('TVP training artifacts', () => {
  it('load in a fresh process with only onnxruntime-node, and N steps through them give the in-process trainer\'s weights', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-artifacts-'));
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify(CONFIG));
    const out = path.join(dir, 'run');
    const tvpOptions = { layer: 1, lambda: 0.5 };
    const summary = await runTvp({ from: configFile, out, tvp: tvpOptions });

    // The same steps' data, drawn exactly as the trainer drew it, for the standalone runner.
    const { run } = tvpSource(configFile);
    const tvp = resolveTvpConfig(tvpOptions, run);
    const rng = new Rng(run.train.seed);
    const batches = new Map<string, HostTensor>();
    for (let i = 0; i < run.train.steps; i++) {
      for (const [k, t] of Object.entries(tvpStepData(run, tvp, rng, i).feeds)) batches.set(`step${i}/${k}`, t);
      batches.set(`step${i}/lr`, { dtype: 'float32', shape: [], data: Float32Array.of(learningRate(run.optimizer, i, run.train.steps)) });
    }
    writeBundle(path.join(dir, 'batches'), {}, batches);
    execFileSync(process.execPath, ['scripts/run-artifacts.mjs', path.join(out, 'artifacts'), path.join(dir, 'batches'), path.join(dir, 'final')], { stdio: 'pipe' });

    const standalone = readBundle(path.join(dir, 'final')).tensors;
    const inProcess = loadCheckpoint(`${summary.lastCheckpoint}.onnx`).params;
    expect(readBundle(path.join(dir, 'final')).fields.step).toBe(5);
    for (const [name, data] of inProcess) {
      const other = standalone.get(name)!.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < data.length; i++) worst = Math.max(worst, Math.abs(other[i] - data[i]));
      expect(worst, name).toBeLessThan(1e-6);
    }
  }, 60_000);

  it('a TVP run recorded by an older tvlens (a TVP key missing from tvp.json) resumes; changed options are still refused', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvlens-tvp-resume-'));
    const configFile = path.join(dir, 'config.json');
    fs.writeFileSync(configFile, JSON.stringify({ ...CONFIG, train: { ...CONFIG.train, steps: 6, checkpointEvery: 3, evalEvery: 3 } }));
    const out = path.join(dir, 'run');
    await runTvp({ from: configFile, out, tvp: { layer: 1 }, stopAfter: 3 });
    const tvpFile = path.join(out, 'tvp.json');
    const recorded = JSON.parse(fs.readFileSync(tvpFile, 'utf8'));
    delete recorded.tvp.average; // as if written before tvp.average existed (its default is 1)
    fs.writeFileSync(tvpFile, JSON.stringify(recorded));
    await expect(runTvp({ from: configFile, out, tvp: { layer: 1, lambda: 0.5 }, resume: true })).rejects.toThrow(/the TVP options differ/);
    const summary = await runTvp({ from: configFile, out, tvp: { layer: 1 }, resume: true });
    expect(summary.lastCheckpoint).toMatch(/step-000006$/);
  }, 60_000);
});
