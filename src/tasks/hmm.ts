/**
 * GINC-style tasks (Xie et al. 2021): each task ("concept") is a random HMM over the V symbols.
 * An example is one sequence of `hmm.length` emissions from a uniformly random start state; its
 * first length-1 tokens are x and its last token is y. y is sampled, so even the Bayes-optimal
 * predictor (`hmmNextDistribution`) is not always right: score against it, not only against y.
 */
import type { Rng } from '../util/rng.js';
import type { TaskConfig } from './config.js';
import type { Example, HmmTask } from './types.js';

export function drawHmm(cfg: TaskConfig, rng: Rng, id: number): HmmTask {
  const { states, transitionConcentration, emissionConcentration } = cfg.hmm;
  const transition = Array.from({ length: states }, () => dirichlet(rng, states, transitionConcentration));
  const emission = Array.from({ length: states }, () => dirichlet(rng, cfg.vocab, emissionConcentration));
  return { id, family: 'hmm', name: id < 0 ? 'hmm' : `hmm#${id}`, params: { transition, emission } };
}

/** n examples, each an independent run of the HMM; the first is the query. */
export function hmmExamples(cfg: TaskConfig, task: HmmTask, rng: Rng, n: number): Example[] {
  const { transition, emission } = task.params;
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    let s = rng.int(transition.length);
    const seq: number[] = [];
    for (let t = 0; t < cfg.hmm.length; t++) {
      seq.push(categorical(rng, emission[s]));
      s = categorical(rng, transition[s]);
    }
    out.push({ x: seq.slice(0, -1), y: seq[seq.length - 1] });
  }
  return out;
}

/** P(next symbol | prefix) under the task's HMM, by the forward algorithm (uniform start state). */
export function hmmNextDistribution(task: HmmTask, prefix: readonly number[]): number[] {
  const { transition, emission } = task.params;
  const S = transition.length;
  let alpha = new Array<number>(S).fill(1 / S); // P(state_t | prefix before t)
  for (const sym of prefix) {
    const post = alpha.map((a, s) => a * emission[s][sym]);
    const z = post.reduce((a, b) => a + b, 0) || 1;
    alpha = Array.from({ length: S }, (_, s2) => post.reduce((acc, p, s) => acc + (p / z) * transition[s][s2], 0));
  }
  const V = emission[0].length;
  return Array.from({ length: V }, (_, v) => alpha.reduce((acc, a, s) => acc + a * emission[s][v], 0));
}

function categorical(rng: Rng, p: readonly number[]): number {
  let u = rng.uniform();
  for (let i = 0; i < p.length; i++) if ((u -= p[i]) < 0) return i;
  return p.length - 1; // rounding left u a hair above zero
}

/** A Dirichlet(α, …, α) draw: normalised Gamma(α) draws. */
function dirichlet(rng: Rng, n: number, alpha: number): number[] {
  const g = Array.from({ length: n }, () => gamma(rng, alpha));
  const z = g.reduce((a, b) => a + b, 0);
  if (z > 0) return g.map((v) => v / z);
  // Small α can underflow every draw; the limit of such a row is one-hot.
  const one = new Array<number>(n).fill(0);
  one[rng.int(n)] = 1;
  return one;
}

/** Marsaglia–Tsang; shapes below 1 through Gamma(α+1)·U^(1/α). */
function gamma(rng: Rng, alpha: number): number {
  if (alpha < 1) return gamma(rng, alpha + 1) * Math.pow(rng.uniform(), 1 / alpha);
  const d = alpha - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = rng.normal();
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = rng.uniform();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}
