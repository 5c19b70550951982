/**
 * `npm run bench -- scale [--out docs/bench]`: how cost grows with the model. One axis varies at a
 * time around a base point (d_model 128, 4 layers, sequence 256, 4,096 tokens per batch) rather
 * than the full product (4 × 4 × 3 points would take hours on 2 cores):
 *
 *   d_model ∈ {64, 128, 256, 512}   layers ∈ {2, 4, 8, 12}   sequence ∈ {64, 256, 1024}
 *
 * plus the goal point d_model 512, 8 layers (training step ≥ 0.7 of the matmul peak). Each point
 * runs in its own process (scale-point.ts: its peak RSS is its own) and measures the forward pass,
 * the training step, a task-vector search and a patch sweep, with the 2048² matmul interleaved.
 *
 * Arithmetic (matmul FLOPs, a multiply-add = 2): per token and layer 24·d² (QKV, output, MLP)
 * + 4·T·d (scores and mixing over T keys), plus 2·d·V for the unembedding; a training step is 3×
 * its forward pass. The search and the sweep are counted as the passes they make (estimates: see
 * searchFlops, sweepFlops). Each growth exponent is the least-squares slope of log(ms) against
 * log(axis), beside the same slope of the FLOP count: "no worse than its arithmetic" means the
 * measured slope is at most the arithmetic one (+0.2 for noise). Along the sequence axis the cost
 * is per prompt (a batch holds 4,096 / T prompts), so the arithmetic slope lies between 1 (the
 * linear layers) and 2 (attention).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { AXES, type Axis, GOAL, METRICS, type Metric, SCALE_VOCAB, SEARCH, SWEEP, type ScalePointResult, type ScalePointSpec, demosFor } from './scale-point.js';
import type { Figures, Repeats } from './timing.js';
import { scaleSvg } from './scale-svg.js';

export const BASE = { dModel: 128, layers: 4, seq: 256 } as const;
export const TOKENS = 4096;
export { AXES, GOAL, METRICS, type Axis, type Metric } from './scale-point.js';

type Shape = { dModel: number; layers: number; seq: number };

/** Matmul FLOPs of a forward pass over `prompts` prompts of `seq` tokens. */
export function forwardFlops(s: Shape, prompts: number, seq = s.seq): number {
  const d = s.dModel;
  return prompts * seq * (s.layers * (24 * d * d + 4 * seq * d) + 2 * d * SCALE_VOCAB);
}

/** The search: one pass over the demo prompts, then the queries (2 tokens each) once per layer, about half the model each time. */
function searchFlops(s: Shape): number {
  const T = 4 * demosFor(s.seq) + 2;
  return forwardFlops(s, SEARCH.tasks * SEARCH.prompts, T) + ((s.layers + 2) / 2) * forwardFlops(s, SEARCH.tasks * SEARCH.queries, 2);
}

/** The sweep: clean and corrupted passes, then per (block l, position p) the rows p..T−1 through blocks l..L−1. */
function sweepFlops(s: Shape): number {
  const T = 4 * demosFor(s.seq) + 2;
  const d = s.dModel;
  const pairs = SWEEP.tasks * SWEEP.prompts;
  const rows = (SWEEP.positions * (SWEEP.positions + 1)) / 2; // Σ over the last P positions of the rows after them
  return 2 * forwardFlops(s, pairs, T) + pairs * rows * ((s.layers * (s.layers + 1)) / 2) * (24 * d * d + 4 * T * d);
}

export function flopsOf(m: Metric, p: ScalePointResult): number {
  if (m === 'forwardMs') return forwardFlops(p, p.batch);
  if (m === 'trainMs') return 3 * forwardFlops(p, p.batch);
  return m === 'tvSearchMs' ? searchFlops(p) : sweepFlops(p);
}

/** Least-squares slope of log y against log x. */
export function logSlope(xs: readonly number[], ys: readonly number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i] - mx) * (ly[i] - my);
    den += (lx[i] - mx) ** 2;
  }
  return num / den;
}

export function scalePoints(): (ScalePointSpec & { axes: Axis[]; goal: boolean })[] {
  const points = new Map<string, ScalePointSpec & { axes: Axis[]; goal: boolean }>();
  const add = (s: Shape, axis: Axis | null, goal = false) => {
    const key = `${s.dModel}/${s.layers}/${s.seq}`;
    const p = points.get(key) ?? { ...s, tokens: TOKENS, timed: 3, analyses: !goal, axes: [], goal };
    if (axis) p.axes.push(axis);
    points.set(key, p);
  };
  for (const axis of Object.keys(AXES) as Axis[]) for (const v of AXES[axis]) add({ ...BASE, [axis]: v }, axis);
  add(GOAL, null, true);
  return [...points.values()];
}

export interface ScaleCurve {
  readonly command: string;
  readonly commit: string;
  readonly date: string;
  readonly base: typeof BASE;
  readonly tokensPerBatch: number;
  readonly points: (ScalePointResult & { axes: Axis[]; goal: boolean })[];
  /** Per axis and metric: the measured slope and the arithmetic one. */
  readonly exponents: Record<Axis, Record<Metric, { measured: number; arithmetic: number }>>;
}

/** Cost along an axis: per batch, except per prompt along the sequence axis (fixed tokens per batch). */
function costAlong(axis: Axis, m: Metric, p: ScalePointResult, value: number): number {
  return axis === 'seq' && (m === 'forwardMs' || m === 'trainMs') ? value / p.batch : value;
}

export function fitCurve(points: ScaleCurve['points']): ScaleCurve['exponents'] {
  const out = {} as ScaleCurve['exponents'];
  for (const axis of Object.keys(AXES) as Axis[]) {
    const along = points.filter((p) => p.axes.includes(axis)).sort((a, b) => a[axis] - b[axis]);
    out[axis] = {} as Record<Metric, { measured: number; arithmetic: number }>;
    for (const m of METRICS) {
      const have = along.filter((p) => p[m] !== null);
      const xs = have.map((p) => p[axis]);
      out[axis][m] = {
        measured: logSlope(xs, have.map((p) => costAlong(axis, m, p, p[m]!))),
        arithmetic: logSlope(xs, have.map((p) => costAlong(axis, m, p, flopsOf(m, p)))),
      };
    }
  }
  return out;
}

const git = (args: string[]) => {
  try {
    return execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};

/** `onPoint` sees each point as it finishes (a long run keeps what it measured if stopped). */
export async function measureScale(timed: number, log: (line: string) => void = () => {}, onPoint: (p: ScaleCurve['points'][number]) => void = () => {}): Promise<ScaleCurve> {
  const pointJs = path.join(import.meta.dirname, 'scale-point.js');
  const points: ScaleCurve['points'] = [];
  for (const spec of scalePoints()) {
    const { axes, goal, ...rest } = spec;
    const r = spawnSync(process.execPath, [pointJs, JSON.stringify({ ...rest, timed })], { encoding: 'utf8', env: process.env });
    if (r.status !== 0) throw new Error(`scale point d=${spec.dModel} L=${spec.layers} T=${spec.seq} failed: ${r.stderr.trim().split('\n').pop()}`);
    const res = JSON.parse(r.stdout) as ScalePointResult;
    points.push({ ...res, axes, goal });
    onPoint(points[points.length - 1]);
    log(`d=${res.dModel} L=${res.layers} T=${res.seq}: forward ${res.forwardMs.toFixed(0)} ms, train ${res.trainMs.toFixed(0)} ms, ${(res.seconds).toFixed(0)} s`);
  }
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? '-dirty' : '';
  return {
    command: `npm run bench -- scale${timed !== 3 ? ' --quick' : ''} --out docs/bench`,
    commit: `${git(['rev-parse', 'HEAD'])}${dirty}`,
    date: new Date().toISOString(),
    base: BASE,
    tokensPerBatch: TOKENS,
    points,
    exponents: fitCurve(points),
  };
}

/** The group's figures: exponents, the goal point's share of the peak, and each point's. */
export function scaleFigures(curve: ScaleCurve): Figures {
  const f: Figures = {};
  for (const [axis, ms] of Object.entries(curve.exponents)) {
    for (const [m, e] of Object.entries(ms)) {
      const name = `scale_${axis}_${m.replace(/Ms$/, '')}`;
      f[`${name}_exponent`] = e.measured;
      f[`${name}_arithmetic_exponent`] = e.arithmetic;
    }
  }
  for (const p of curve.points) {
    const tag = `d${p.dModel}_l${p.layers}_t${p.seq}`;
    f[`scale_${tag}_train_peak_fraction`] = flopsOf('trainMs', p) / p.trainMs / 1e6 / p.matmulGflops;
    f[`scale_${tag}_forward_peak_fraction`] = flopsOf('forwardMs', p) / p.forwardMs / 1e6 / p.matmulGflops;
    f[`scale_${tag}_peak_rss_mib`] = p.peakRssBytes / 2 ** 20;
  }
  const goal = curve.points.find((p) => p.goal)!;
  f.scale_goal_train_peak_fraction = flopsOf('trainMs', goal) / goal.trainMs / 1e6 / goal.matmulGflops;
  f.scale_goal_target = 0.7;
  return f;
}

/** The bench group: measures, writes `<out>/scale.json` and `scale.svg` when `out` is given. */
export async function scaleGroup(repeats: Repeats, out?: string): Promise<Figures> {
  if (out) fs.mkdirSync(out, { recursive: true });
  const partial = out ? path.join(out, 'scale.points.jsonl') : null;
  if (partial) fs.writeFileSync(partial, '');
  const curve = await measureScale(repeats.quick ? 1 : 3, (l) => process.stderr.write(`${l}\n`), (p) => partial && fs.appendFileSync(partial, `${JSON.stringify(p)}\n`));
  if (out) {
    if (partial) fs.rmSync(partial, { force: true });
    fs.writeFileSync(path.join(out, 'scale.json'), `${JSON.stringify(curve, null, 2)}\n`);
    fs.writeFileSync(path.join(out, 'scale.svg'), scaleSvg(curve));
  }
  return scaleFigures(curve);
}
