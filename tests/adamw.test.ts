/**
 * The AdamW update in the train-step graph against a reference step computed here, in plain
 * TypeScript, from the textbook formulas (Loshchilov & Hutter; PyTorch's AdamW with clipping by
 * the global norm first): the loss ½Σ(w − t)² + ½Σ(b − u)² has the gradients w − t and b − u, so
 * nothing of the library's autodiff enters the reference.
 */
import { describe, expect, it } from 'vitest';
import { Graph, op } from '../src/graph/index.js';
import { type OptimizerConfig, resolveOptimizerConfig } from '../src/train/optimizer.js';
import { type StepLayout, Trainer } from '../src/train/step.js';

const W0 = [0.5, -1.25, 2, 0.75, -0.5, 1.5];
const B0 = [0.25, -0.75, 1];
/** Targets per step: the gradient changes direction and size from step to step. */
const T = [
  [1, 0, -1, 2, 0.5, -2],
  [-3, 4, 0.5, -1, 2, 0],
  [0.1, -0.2, 0.3, -0.4, 0.5, -0.6],
];
const U = [
  [0, 1, -1],
  [2, -2, 0.5],
  [-0.5, 0.25, 3],
];

/** `biasFirst`: the undecayed parameter declared first (the flat update puts decayed ones first). */
function program(biasFirst = false) {
  const g = new Graph('float64');
  const b0 = biasFirst ? g.param('b', [3], Float64Array.from(B0), { decay: false }) : null;
  const w = g.param('w', [2, 3], Float64Array.from(W0));
  const b = b0 ?? g.param('b', [3], Float64Array.from(B0), { decay: false });
  const dw = op.sub(w, g.input('t', 'float64', [2, 3]));
  const db = op.sub(b, g.input('u', 'float64', [3]));
  const loss = op.mul(op.add(op.reduceSum(op.mul(dw, dw), [0, 1]), op.reduceSum(op.mul(db, db), [0])), 0.5);
  return { graph: g, loss };
}

/** Three reference AdamW steps: global-norm clipping, moments, bias correction, decoupled decay (w only). */
function reference(c: OptimizerConfig, lr: number) {
  const p = { w: [...W0], b: [...B0] };
  const m = { w: W0.map(() => 0), b: B0.map(() => 0) };
  const v = { w: W0.map(() => 0), b: B0.map(() => 0) };
  for (let s = 0; s < T.length; s++) {
    const t = s + 1;
    const g = { w: p.w.map((x, i) => x - T[s][i]), b: p.b.map((x, i) => x - U[s][i]) };
    const norm = Math.sqrt([...g.w, ...g.b].reduce((a, x) => a + x * x, 0));
    const scale = c.clipNorm > 0 && norm > c.clipNorm ? c.clipNorm / norm : 1;
    for (const k of ['w', 'b'] as const) {
      for (let i = 0; i < p[k].length; i++) {
        const gi = g[k][i] * scale;
        m[k][i] = c.beta1 * m[k][i] + (1 - c.beta1) * gi;
        v[k][i] = c.beta2 * v[k][i] + (1 - c.beta2) * gi * gi;
        const mHat = m[k][i] / (1 - c.beta1 ** t);
        const vHat = v[k][i] / (1 - c.beta2 ** t);
        const decay = k === 'w' ? c.weightDecay * p[k][i] : 0;
        p[k][i] -= lr * (mHat / (Math.sqrt(vHat) + c.eps) + decay);
      }
    }
  }
  return { p, m, v };
}

describe('the AdamW step', () => {
  for (const [layout, biasFirst, worker] of [['fused', false, false], ['split', false, false], ['fused', true, false], ['fused', true, true]] as [StepLayout, boolean, boolean][]) {
    it(`matches three reference steps, with clipping and decay on weights only (${layout} layout${biasFirst ? ', bias declared first' : ''}${worker ? ', on the worker' : ''})`, async () => {
      const c = resolveOptimizerConfig({ lr: 0.1, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1, clipNorm: 2, schedule: 'constant' });
      const trainer = await Trainer.create(() => program(biasFirst), c, { layout, worker });
      const f64 = (shape: number[], data: number[]) => ({ dtype: 'float64' as const, shape, data: Float64Array.from(data) });
      for (let s = 0; s < T.length; s++) await trainer.step({ t: f64([2, 3], T[s]), u: f64([3], U[s]) }, c.lr);
      await trainer.release();
      const ref = reference(c, c.lr);
      const st = trainer.state;
      expect(st.step).toBe(3);
      for (const k of ['w', 'b'] as const) {
        const close = (got: ArrayLike<number>, want: number[]) => want.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 12));
        close(st.params.get(k) as Float64Array, ref.p[k]);
        close(st.m.get(k) as Float64Array, ref.m[k]);
        close(st.v.get(k) as Float64Array, ref.v[k]);
      }
      // The steps moved the weights, and clipping was active at the first step (|g| > 2).
      expect(Math.abs((st.params.get('w') as Float64Array)[0] - W0[0])).toBeGreaterThan(0.01);
    });
  }

  it('resumes from saved state as if it had not stopped (the fused step feeds back views of its own outputs)', async () => {
    const c = resolveOptimizerConfig({ lr: 0.1, weightDecay: 0.1, clipNorm: 2, schedule: 'constant' });
    const f64 = (shape: number[], data: number[]) => ({ dtype: 'float64' as const, shape, data: Float64Array.from(data) });
    const feeds = (s: number) => ({ t: f64([2, 3], T[s]), u: f64([3], U[s]) });
    const straight = await Trainer.create(() => program(true), c, { worker: true });
    for (let s = 0; s < 3; s++) await straight.step(feeds(s), c.lr);
    const first = await Trainer.create(() => program(true), c, { worker: true });
    await first.step(feeds(0), c.lr);
    // Saved and read back: separate arrays, in the file's order rather than the flat vector's.
    const copy = (m: ReadonlyMap<string, unknown>) => new Map([...m].reverse().map(([k, d]) => [k, (d as Float64Array).slice()]));
    const saved = { step: first.state.step, params: copy(first.state.params), m: copy(first.state.m), v: copy(first.state.v) };
    const resumed = await Trainer.create(() => program(true), c, { worker: true, initial: saved });
    for (let s = 1; s < 3; s++) await resumed.step(feeds(s), c.lr);
    for (const k of ['params', 'm', 'v'] as const) {
      for (const name of ['w', 'b']) expect(Array.from(resumed.state[k].get(name) as Float64Array)).toEqual(Array.from(straight.state[k].get(name) as Float64Array));
    }
    await Promise.all([straight.release(), first.release(), resumed.release()]);
  });

  it('builds the model once for the fused layout (its random init took 13 s at 38M parameters)', async () => {
    let builds = 0;
    const counted = () => {
      builds++;
      return program();
    };
    const c = resolveOptimizerConfig({ schedule: 'constant' });
    await (await Trainer.create(counted, c, { layout: 'fused' })).release();
    expect(builds).toBe(1);
    builds = 0;
    await (await Trainer.create(counted, c, { layout: 'split' })).release();
    expect(builds).toBe(2); // the split layout also writes a loss-only model, from a graph of its own
  });
});
