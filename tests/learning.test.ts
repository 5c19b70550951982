/**
 * The whole training path (graph → autodiff → AdamW graph → ONNX Runtime) really learns: two toy
 * problems, fixed seeds, stated step budgets and loss thresholds.
 */
import { describe, expect, it } from 'vitest';
import { Graph, op } from '../src/graph/index.js';
import { resolveModelConfig } from '../src/model/config.js';
import type { HostTensor } from '../src/runtime/session.js';
import { iclLossProgram } from '../src/train/icl-loss.js';
import { resolveOptimizerConfig } from '../src/train/optimizer.js';
import { Trainer } from '../src/train/step.js';
import { Rng } from '../src/util/rng.js';

const f32 = (shape: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });
const i64 = (shape: number[], data: BigInt64Array): HostTensor => ({ dtype: 'int64', shape, data });

describe('training learns toy tasks', () => {
  it('a two-layer MLP learns 4-way classification of Gaussian points by a hidden linear rule (CE < 0.15 in 300 steps)', async () => {
    const D = 8, H = 32, C = 4, N = 128;
    const rule = new Rng(7);
    const R = Array.from({ length: D * C }, () => rule.normal());
    const build = () => {
      const g = new Graph('float32');
      const init = new Rng(1);
      const w = (shape: number[], std: number) => g.param(`W${g.params.length}`, shape, Float32Array.from({ length: shape[0] * shape[1] }, () => init.normal() * std));
      const x = g.input('x', 'float32', ['batch', D]);
      const h = op.relu(op.add(op.matmul(x, w([D, H], 0.3)), g.param('b1', [H], new Float32Array(H), { decay: false })));
      const logits = op.matmul(h, w([H, C], 0.3));
      const loss = op.crossEntropy(logits, g.input('targets', 'int64', ['batch']), g.input('weights', 'float32', ['batch']));
      return { graph: g, loss };
    };
    const trainer = await Trainer.create(build, resolveOptimizerConfig({ lr: 0.01, schedule: 'constant', weightDecay: 0 }));
    const data = new Rng(3);
    let loss = Infinity;
    for (let step = 0; step < 300; step++) {
      const x = Float32Array.from({ length: N * D }, () => data.normal());
      const y = new BigInt64Array(N);
      for (let n = 0; n < N; n++) {
        let best = 0, bestScore = -Infinity;
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += x[n * D + d] * R[d * C + c];
          if (s > bestScore) [best, bestScore] = [c, s];
        }
        y[n] = BigInt(best);
      }
      ({ loss } = await trainer.step({ x: f32([N, D], x), targets: i64([N], y), weights: f32([N], new Float32Array(N).fill(1)) }, 0.01));
    }
    await trainer.release();
    expect(loss).toBeLessThan(0.15);
  });

  it('a one-layer attention model learns to copy the first token to every position (CE < 0.1 in 150 steps)', async () => {
    const cfg = resolveModelConfig({ layers: 1, dModel: 32, heads: 2, vocab: 16, maxSeq: 8 });
    const trainer = await Trainer.create(() => iclLossProgram(cfg, 0), resolveOptimizerConfig({ lr: 0.01, schedule: 'constant' }));
    const rng = new Rng(5);
    const B = 32, T = 8;
    let loss = Infinity;
    for (let step = 0; step < 150; step++) {
      const tokens = BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(16)));
      const targets = new BigInt64Array(B * T);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) targets[b * T + t] = tokens[b * T];
      const weights = new Float32Array(B * T).fill(1);
      for (let b = 0; b < B; b++) weights[b * T] = 0; // position 0 would only need the identity
      ({ loss } = await trainer.step({ tokens: i64([B, T], tokens), targets: i64([B, T], targets), weights: f32([B, T], weights) }, 0.01));
    }
    await trainer.release();
    expect(loss).toBeLessThan(0.1);
  });
});
