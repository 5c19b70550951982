import { describe, expect, it } from 'vitest';
import {
  MARKER,
  effectiveDim,
  resolveTaskConfig,
  sampleBatch,
  sampleHeldoutBatch,
  sampleTrainBatch,
  taskIO,
  taskList,
  taskPrompts,
  type Batch,
  type LinregTask,
  type SineTask,
  type TaskConfig,
  type VectorBatch,
} from '../src/tasks/index.js';
import { Rng } from '../src/util/rng.js';

function vectors(b: Batch): VectorBatch {
  if (b.kind !== 'vectors') throw new Error('expected a vector batch');
  return b;
}

/** The input vector at position t of row r. */
function input(b: VectorBatch, r: number, t: number): number[] {
  const o = (r * b.seq + t) * b.dIn;
  return Array.from(b.inputs.subarray(o, o + b.dIn));
}

const dot = (w: number[], x: number[]) => w.reduce((s, wi, i) => s + wi * x[i], 0);

/** Solves A w = y in the least-squares sense, by the normal equations and Gaussian elimination. */
function leastSquares(X: number[][], y: number[]): number[] {
  const d = X[0].length;
  const M = Array.from({ length: d }, (_, i) => [...Array.from({ length: d }, (_, j) => X.reduce((s, x) => s + x[i] * x[j], 0)), X.reduce((s, x, n) => s + x[i] * y[n], 0)]);
  for (let c = 0; c < d; c++) {
    const p = M.slice(c).reduce((best, row, i) => (Math.abs(row[c]) > Math.abs(M[best][c]) ? c + i : best), c);
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= d; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row[d] / row[i]);
}

function linreg(user: object = {}): TaskConfig {
  return resolveTaskConfig({ kind: 'linreg', demos: { min: 6, max: 6 }, ...user });
}

describe('linear regression prompts', () => {
  it('gives y = w·x exactly with the known w when there is no noise', () => {
    const b = vectors(sampleTrainBatch(linreg(), new Rng(1), 8));
    for (let r = 0; r < b.batch; r++) {
      const w = (b.tasks[r] as LinregTask).params.w;
      for (let i = 0; i <= 6; i++) {
        const x = input(b, r, 4 * i);
        expect(b.targets[r * b.seq + 4 * i + 1]).toBeCloseTo(dot(w, x), 4); // float32 storage
        if (i < 6) expect(input(b, r, 4 * i + 2)).toEqual([b.targets[r * b.seq + 4 * i + 1], 0, 0, 0, 0]);
      }
    }
  });

  it('recovers w by least squares from the demos of one long prompt', () => {
    const cfg = linreg({ heldoutTasks: 1 });
    const task = taskList(cfg, 'heldout')[0] as LinregTask;
    const b = vectors(taskPrompts(cfg, task, new Rng(2), 1, 20));
    const X = Array.from({ length: 20 }, (_, i) => input(b, 0, 4 * i));
    const y = Array.from({ length: 20 }, (_, i) => input(b, 0, 4 * i + 2)[0]);
    const w = leastSquares(X, y);
    w.forEach((wi, j) => expect(wi).toBeCloseTo(task.params.w[j], 4));
  });

  it('marks arrows and separators, and leaves their inputs zero', () => {
    const b = vectors(sampleTrainBatch(linreg(), new Rng(3), 4));
    expect(b.seq).toBe(4 * 6 + 2);
    expect(b.dIn).toBe(5);
    expect(b.dOut).toBe(1);
    for (let r = 0; r < b.batch; r++) {
      for (let t = 0; t < b.seq; t++) {
        const want = t % 4 === 1 ? MARKER.arrow : t % 4 === 3 ? MARKER.sep : MARKER.data;
        expect(Number(b.markers[r * b.seq + t])).toBe(want);
        if (want !== MARKER.data) expect(input(b, r, t)).toEqual([0, 0, 0, 0, 0]);
        expect(b.weights[r * b.seq + t]).toBe(t % 4 === 1 ? 1 : 0);
        expect(b.shots[r * b.seq + t]).toBe(t % 4 === 1 ? (t - 1) / 4 : -1);
      }
      expect(b.queryPos[r]).toBe(b.seq - 1);
    }
  });

  it('lays out pairwise prompts as x, [y, 0, …] and scores each x', () => {
    const b = vectors(sampleTrainBatch(linreg({ format: 'pairwise' }), new Rng(4), 4));
    expect(b.seq).toBe(2 * 6 + 1);
    for (let r = 0; r < b.batch; r++) {
      const w = (b.tasks[r] as LinregTask).params.w;
      for (let t = 0; t < b.seq; t++) {
        const p = r * b.seq + t;
        expect(Number(b.markers[p])).toBe(MARKER.data);
        if (t % 2 === 0) {
          expect(b.weights[p]).toBe(1);
          expect(b.targets[p]).toBeCloseTo(dot(w, input(b, r, t)), 4);
        } else {
          expect(b.weights[p]).toBe(0);
          expect(input(b, r, t).slice(1)).toEqual([0, 0, 0, 0]);
          expect(input(b, r, t)[0]).toBeCloseTo(dot(w, input(b, r, t - 1)), 4);
        }
      }
    }
  });

  it('adds label noise of the configured size to every label', () => {
    const b = vectors(sampleTrainBatch(linreg({ linreg: { noise: 0.5 } }), new Rng(5), 64));
    const residuals: number[] = [];
    for (let r = 0; r < b.batch; r++) {
      const w = (b.tasks[r] as LinregTask).params.w;
      for (let i = 0; i <= 6; i++) residuals.push(b.targets[r * b.seq + 4 * i + 1] - dot(w, input(b, r, 4 * i)));
    }
    const std = Math.sqrt(residuals.reduce((s, e) => s + e * e, 0) / residuals.length);
    expect(std).toBeGreaterThan(0.4);
    expect(std).toBeLessThan(0.6);
  });

  it('draws a fresh task for every train prompt, and has no list of train tasks then', () => {
    const cfg = linreg();
    const b = sampleTrainBatch(cfg, new Rng(6), 4);
    expect([...b.taskIds]).toEqual([-1, -1, -1, -1]);
    expect(new Set(b.tasks.map((t) => (t as LinregTask).params.w[0])).size).toBe(4);
    expect(() => taskList(cfg, 'train')).toThrow(/fresh train task/);
  });

  it('keeps fixed train and held-out pools apart when trainTasks is set', () => {
    const cfg = linreg({ trainTasks: 5, heldoutTasks: 3 });
    const train = taskList(cfg, 'train');
    const heldout = taskList(cfg, 'heldout');
    expect(train.map((t) => t.id)).toEqual([3, 4, 5, 6, 7]);
    expect(heldout.map((t) => t.id)).toEqual([0, 1, 2]);
    const ws = new Set(train.map((t) => (t as LinregTask).params.w.join()));
    for (const t of heldout) expect(ws.has((t as LinregTask).params.w.join())).toBe(false);
    for (const id of sampleHeldoutBatch(cfg, new Rng(1), 16).taskIds) expect([0, 1, 2]).toContain(id);
  });

  it('reports vector inputs and a scalar output to the model', () => {
    expect(taskIO(linreg({ linreg: { dIn: 7 } }))).toEqual({ input: 'vectors', dIn: 7, markers: 3, output: 'scalar', outDim: 1 });
  });
});

describe('linear regression curriculum', () => {
  const cfg = linreg({ linreg: { dIn: 8, curriculum: { start: 2, end: 8, steps: 600 } } });

  it('ramps the effective dimension from start to end over the configured steps', () => {
    expect([0, 99, 100, 300, 599, 600, 10_000].map((s) => effectiveDim(cfg, s))).toEqual([2, 2, 3, 5, 7, 8, 8]);
    expect(effectiveDim(cfg)).toBe(8);
  });

  it('zeroes the coordinates of x past the effective dimension', () => {
    const b = vectors(sampleTrainBatch(cfg, new Rng(1), 16, 6, 300));
    for (let r = 0; r < b.batch; r++) {
      for (let i = 0; i <= 6; i++) {
        const x = input(b, r, 4 * i);
        expect(x.slice(5)).toEqual([0, 0, 0]);
        expect(x.slice(0, 5).every((v) => v !== 0)).toBe(true);
      }
    }
  });

  it('uses every coordinate once the curriculum has ended', () => {
    const b = vectors(sampleTrainBatch(cfg, new Rng(1), 4, 6, 600));
    for (let r = 0; r < b.batch; r++) expect(input(b, r, 0).every((v) => v !== 0)).toBe(true);
  });
});

describe('sinusoidal regression prompts', () => {
  const cfg = resolveTaskConfig({ kind: 'sine', demos: { min: 10, max: 10 } });

  it('gives y = a·sin(b·x + c) with a, b, c and x in their configured ranges', () => {
    const b = vectors(sampleTrainBatch(cfg, new Rng(1), 16));
    expect(b.dIn).toBe(1);
    for (let r = 0; r < b.batch; r++) {
      const { a, b: f, c } = (b.tasks[r] as SineTask).params;
      expect(a).toBeGreaterThanOrEqual(0.1);
      expect(a).toBeLessThanOrEqual(5);
      expect(f).toBeGreaterThanOrEqual(0.5);
      expect(f).toBeLessThanOrEqual(2);
      expect(c).toBeGreaterThanOrEqual(0);
      expect(c).toBeLessThanOrEqual(Math.PI);
      for (let i = 0; i <= 10; i++) {
        const x = b.inputs[r * b.seq + 4 * i];
        expect(Math.abs(x)).toBeLessThanOrEqual(5);
        expect(b.targets[r * b.seq + 4 * i + 1]).toBeCloseTo(a * Math.sin(f * x + c), 4);
      }
    }
  });

  it('gives different tasks different parameters', () => {
    const b = sampleTrainBatch(cfg, new Rng(2), 8);
    expect(new Set(b.tasks.map((t) => (t as SineTask).params.a)).size).toBe(8);
  });
});

describe('out-of-distribution regression prompts', () => {
  const cfg = linreg({ heldoutTasks: 2 });
  const task = taskList(cfg, 'heldout')[0] as LinregTask;

  it('scales and shifts only the query, whose target stays the clean w·x', () => {
    const clean = vectors(taskPrompts(cfg, task, new Rng(1), 8, 6));
    const ood = vectors(taskPrompts(cfg, task, new Rng(1), 8, 6, { queryScale: 3, queryShift: 2 }));
    for (let r = 0; r < 8; r++) {
      for (let t = 0; t < clean.seq - 2; t++) expect(input(ood, r, t)).toEqual(input(clean, r, t));
      const q = clean.seq - 2;
      input(ood, r, q).forEach((v, j) => expect(v).toBeCloseTo(3 * input(clean, r, q)[j] + 2, 4));
      expect(ood.targets[r * ood.seq + q + 1]).toBeCloseTo(dot(task.params.w, input(ood, r, q)), 4);
    }
  });

  it('adds noise to demo labels only', () => {
    const clean = vectors(taskPrompts(cfg, task, new Rng(2), 8, 6));
    const noisy = vectors(taskPrompts(cfg, task, new Rng(2), 8, 6, { demoLabelNoise: 1 }));
    let changed = 0;
    for (let r = 0; r < 8; r++) {
      for (let i = 0; i < 6; i++) changed += Number(input(noisy, r, 4 * i + 2)[0] !== input(clean, r, 4 * i + 2)[0]);
      const q = r * clean.seq + clean.queryPos[r];
      expect(noisy.targets[q]).toBe(clean.targets[q]);
    }
    expect(changed).toBe(48);
  });

  it('refuses label flips, which are for token tasks', () => {
    expect(() => sampleBatch(cfg, new Rng(1), 2, { ood: { demoLabelFlip: 0.5 } })).toThrow(/token tasks only/);
  });
});
