/**
 * Regression tasks. Linear regression as in Garg et al. 2022: x ~ N(0, I_d), w ~ N(0, I_d),
 * y = w·x (+ noise), with an optional curriculum on the effective dimension. Sinusoidal
 * regression: y = a·sin(b·x + c), with a, b, c drawn per task and x a scalar.
 */
import type { Rng } from '../util/rng.js';
import type { TaskConfig } from './config.js';
import type { Example, LinregTask, OodOptions, SineTask } from './types.js';

export function applyLinreg(task: LinregTask, x: readonly number[]): number {
  let y = 0;
  for (let j = 0; j < x.length; j++) y += task.params.w[j] * x[j];
  return y;
}

export function applySine(task: SineTask, x: number): number {
  const { a, b, c } = task.params;
  return a * Math.sin(b * x + c);
}

/**
 * The curriculum's effective dimension at a training step: a linear ramp from start to end over
 * `steps` steps, rounded down. Without a step (evaluation, analysis) it is the end dimension.
 */
export function effectiveDim(cfg: TaskConfig, step?: number): number {
  const { dIn, curriculum: c } = cfg.linreg;
  const start = c.start || dIn;
  const end = c.end || dIn;
  if (step === undefined || c.steps <= 0) return end;
  return Math.min(end, start + Math.floor(((end - start) * Math.max(0, step)) / c.steps));
}

export function drawLinreg(cfg: TaskConfig, rng: Rng, id: number): LinregTask {
  const w = Array.from({ length: cfg.linreg.dIn }, () => rng.normal());
  return { id, family: 'linreg', name: id < 0 ? 'linreg' : `linreg#${id}`, params: { w } };
}

export function drawSine(cfg: TaskConfig, rng: Rng, id: number): SineTask {
  const s = cfg.sine;
  const params = { a: uniform(rng, s.amplitude), b: uniform(rng, s.frequency), c: uniform(rng, s.phase) };
  return { id, family: 'sine', name: id < 0 ? 'sine' : `sine#${id}`, params };
}

/**
 * n examples; the first is the query. Every coordinate is drawn and the ones past the effective
 * dimension are then zeroed, so the random stream (and so the data) does not depend on the step.
 * The query's OOD scale and shift touch only the effective coordinates, and its target is then the
 * clean w·x.
 */
export function linregExamples(cfg: TaskConfig, task: LinregTask, rng: Rng, n: number, step: number | undefined, ood: OodOptions): Example[] {
  const d = effectiveDim(cfg, step);
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    const x = Array.from({ length: cfg.linreg.dIn }, (_, j) => {
      const v = rng.normal();
      return j < d ? v : 0;
    });
    out.push({ x, y: applyLinreg(task, x) + noise(rng, cfg.linreg.noise) });
  }
  const q = out[0];
  if (isShifted(ood)) {
    for (let j = 0; j < d; j++) q.x[j] = q.x[j] * (ood.queryScale ?? 1) + (ood.queryShift ?? 0);
    q.y = applyLinreg(task, q.x);
  }
  return out;
}

export function sineExamples(cfg: TaskConfig, task: SineTask, rng: Rng, n: number, ood: OodOptions): Example[] {
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    const x = uniform(rng, cfg.sine.x);
    out.push({ x: [x], y: applySine(task, x) + noise(rng, cfg.sine.noise) });
  }
  const q = out[0];
  if (isShifted(ood)) {
    q.x[0] = q.x[0] * (ood.queryScale ?? 1) + (ood.queryShift ?? 0);
    q.y = applySine(task, q.x[0]);
  }
  return out;
}

function isShifted(ood: OodOptions): boolean {
  return (ood.queryScale ?? 1) !== 1 || (ood.queryShift ?? 0) !== 0;
}

// Drawn only when there is noise, so that noise 0 leaves the stream as without the option.
function noise(rng: Rng, std: number): number {
  return std > 0 ? std * rng.normal() : 0;
}

function uniform(rng: Rng, [lo, hi]: readonly number[]): number {
  return lo + (hi - lo) * rng.uniform();
}
