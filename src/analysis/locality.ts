/**
 * Locality and strength of task vectors: how much of ICL one layer's task vector recovers, and
 * how concentrated in one layer that is. Built on the task-vector search; per task and averaged:
 *
 *   peak layer     the best layer on the dev queries (its score is the test queries')
 *   strength       peak TV score ÷ ICL score (regression: on 1 − nMSE, an R²)
 *   recovered      (peak − baseline) ÷ (ICL − baseline): the share of ICL's gain over zero-shot
 *   entropy        normalised entropy of the per-layer gain over the baseline: 0 = one layer, 1 = flat
 *   halfWidth      layers around the peak whose gain is at least half the peak gain (FWHM in layers)
 *   nonLocality    best k layers injected together minus the best single layer, k = 2, 3 (test)
 *
 * and per layer, over the demo prompts' residuals: separability (mean cosine within a task
 * against between tasks, with a permutation test over task labels) and a PCA for plots.
 * The same over a run's checkpoints (emergence) and over several models side by side.
 */
import { PCA } from 'ml-pca';
import { tTestTwoSample } from 'simple-statistics';
import { InputError } from '../errors.js';
import type { TaskConfig } from '../tasks/index.js';
import { Rng } from '../util/rng.js';
import { type Backend, type AnalysisRun, LAYER_CONVENTION, range } from '../backend/backend.js';
import { type LayerScore, type TaskVectors, type TvSearchOptions, type TvSearchResult, tvSearchWithVectors } from './tv-search.js';

export interface CurveInput {
  readonly higherIsBetter: boolean;
  /** Score per layer (all queries), in layer order. */
  readonly curve: readonly number[];
  readonly layers: readonly number[];
  readonly baseline: number;
  readonly icl: number;
  /** The dev-chosen best layer and its test score. */
  readonly best: { readonly layer: number; readonly test: number };
  /** Best-k combinations' test scores, by k. */
  readonly combined?: readonly { readonly k: number; readonly test: number }[];
}

export interface LocalityMetrics {
  readonly peakLayer: number;
  readonly peak: number;
  readonly strength: number;
  readonly recovered: number;
  readonly entropy: number | null;
  readonly halfWidth: number | null;
  readonly nonLocality: readonly { readonly k: number; readonly gain: number }[];
}

/**
 * The metrics of one layer curve. For regression (lower nMSE is better) every score s is read
 * as 1 − s first, so that higher is better everywhere and strength is a ratio of R²s.
 */
export function curveMetrics(c: CurveInput): LocalityMetrics {
  const up = (s: number) => (c.higherIsBetter ? s : 1 - s);
  const curve = c.curve.map(up);
  const [baseline, icl, peak] = [up(c.baseline), up(c.icl), up(c.best.test)];
  const gain = curve.map((v) => Math.max(0, v - baseline));
  const total = gain.reduce((a, b) => a + b, 0);
  let entropy: number | null = null;
  let halfWidth: number | null = null;
  if (total > 0 && gain.length > 1) {
    const plogp = gain.reduce((h, g) => (g > 0 ? h + (g / total) * Math.log(g / total) : h), 0);
    entropy = plogp === 0 ? 0 : -plogp / Math.log(gain.length); // (not −0 for a single layer)
    const top = gain.indexOf(Math.max(...gain));
    const half = gain[top] / 2;
    let [lo, hi] = [top, top];
    while (lo > 0 && gain[lo - 1] >= half) lo--;
    while (hi < gain.length - 1 && gain[hi + 1] >= half) hi++;
    halfWidth = hi - lo + 1;
  } else if (total > 0) {
    [entropy, halfWidth] = [0, 1];
  }
  return {
    peakLayer: c.best.layer,
    peak: c.best.test,
    strength: peak / icl,
    recovered: (peak - baseline) / (icl - baseline),
    entropy,
    halfWidth,
    nonLocality: (c.combined ?? []).map(({ k, test }) => ({ k, gain: up(test) - peak })),
  };
}

export interface Separability {
  readonly layer: number;
  /** Mean cosine similarity of two demo prompts' residuals, same task and different tasks. */
  readonly within: number;
  readonly between: number;
  /** within − between, and that difference over the pooled standard deviation of pair cosines. */
  readonly difference: number;
  readonly effectSize: number;
  /** Welch's t over pairs (simple-statistics; pairs share prompts, so read it as descriptive). */
  readonly t: number | null;
  /** Permutation test over the prompts' task labels: P(difference ≥ observed), with (1 + hits)/(1 + n). */
  readonly p: number;
  readonly permutations: number;
}

/** Separability at each layer of the demo prompts' residuals [B, L+1, D], labelled by task. */
export function separability(vectors: TaskVectors, layers: number, d: number, options: { permutations?: number; seed?: number } = {}): Separability[] {
  const { resid, task } = vectors.perPrompt;
  const B = task.length;
  const perms = options.permutations ?? 200;
  if (new Set(task).size < 2) throw new InputError('separability needs task vectors of at least two tasks');
  return range(layers + 1).map((l) => {
    const unit = range(B).map((b) => normalised(resid.subarray((b * (layers + 1) + l) * d, (b * (layers + 1) + l + 1) * d)));
    const cos = new Float64Array(B * B);
    for (let i = 0; i < B; i++) for (let j = i + 1; j < B; j++) cos[i * B + j] = dot(unit[i], unit[j]);
    const stat = (labels: ArrayLike<number>) => {
      let [w, nw, bt, nb] = [0, 0, 0, 0];
      for (let i = 0; i < B; i++) {
        for (let j = i + 1; j < B; j++) {
          if (labels[i] === labels[j]) [w, nw] = [w + cos[i * B + j], nw + 1];
          else [bt, nb] = [bt + cos[i * B + j], nb + 1];
        }
      }
      return { within: w / nw, between: bt / nb };
    };
    const observed = stat(task);
    const diff = observed.within - observed.between;
    const rng = new Rng((options.seed ?? 0) + l);
    let hits = 0;
    for (let k = 0; k < perms; k++) {
      const order = rng.permutation(B);
      const s = stat(Int32Array.from(order, (o) => task[o]));
      if (s.within - s.between >= diff) hits++;
    }
    const within: number[] = [];
    const between: number[] = [];
    for (let i = 0; i < B; i++) for (let j = i + 1; j < B; j++) (task[i] === task[j] ? within : between).push(cos[i * B + j]);
    const sd = Math.sqrt((variance(within) + variance(between)) / 2);
    return { layer: l, within: observed.within, between: observed.between, difference: diff, effectSize: sd > 0 ? diff / sd : NaN, t: tTestTwoSample(within, between), p: (1 + hits) / (1 + perms), permutations: perms };
  });
}

export interface PcaLayer {
  readonly layer: number;
  /** Share of variance of the first components. */
  readonly explained: readonly number[];
  /** Each demo prompt's coordinates on the first two components, and its task's index. */
  readonly points: readonly { readonly task: number; readonly x: number; readonly y: number }[];
  /** Each task vector θ (the mean of its prompts) on the same components. */
  readonly centroids: readonly { readonly task: number; readonly x: number; readonly y: number }[];
}

/** PCA (ml-pca, centred) of the demo prompts' residuals, layer by layer. */
export function pcaByLayer(vectors: TaskVectors, layers: number, d: number): PcaLayer[] {
  const { resid, task } = vectors.perPrompt;
  const B = task.length;
  return range(layers + 1).map((l) => {
    const rows = range(B).map((b) => Array.from(resid.subarray((b * (layers + 1) + l) * d, (b * (layers + 1) + l + 1) * d)));
    const pca = new PCA(rows, { center: true });
    const xy = (m: number[][]) => pca.predict(m, { nComponents: 2 }).to2DArray();
    const pts = xy(rows);
    const centroids = xy(vectors.theta.map((t) => Array.from(t.subarray(l * d, (l + 1) * d))));
    const round = (v: number | undefined) => Math.round((v ?? 0) * 1e4) / 1e4;
    return {
      layer: l,
      explained: pca.getExplainedVariance().slice(0, 3).map(round),
      points: pts.map((p, b) => ({ task: task[b], x: round(p[0]), y: round(p[1]) })),
      centroids: centroids.map((p, t) => ({ task: t, x: round(p[0]), y: round(p[1]) })),
    };
  });
}

export interface LocalityOptions extends TvSearchOptions {
  /** Best-k combinations for non-locality. Default [2, 3] (those that fit the layers searched). */
  readonly combine?: readonly number[];
  /** Label permutations for the separability test. Default 200. */
  readonly permutations?: number;
  /** Keep the PCA coordinates. Default true. */
  readonly pca?: boolean;
}

export interface LocalityResult {
  readonly analysis: 'locality';
  readonly convention: string;
  readonly metric: TvSearchResult['metric'];
  readonly model: { readonly file?: string; readonly weightsSha256?: string; readonly step?: number; readonly config: unknown };
  readonly tasks: readonly ({ readonly task: string } & LocalityMetrics)[];
  /** The metrics of the task-averaged curve. */
  readonly average: LocalityMetrics & { readonly icl: number; readonly baseline: number };
  readonly separability: readonly Separability[];
  readonly pca: readonly PcaLayer[] | null;
  /** The search behind it (curves, intervals, options). */
  readonly search: TvSearchResult;
}

/** Locality, strength and separability of one model. */
export async function locality<R extends AnalysisRun>(engine: Backend<R>, cfg: TaskConfig | null, options: LocalityOptions = {}, model: Partial<LocalityResult['model']> = {}): Promise<LocalityResult> {
  const perms = options.permutations;
  if (perms !== undefined && (!Number.isInteger(perms) || perms < 1 || perms > 100_000)) throw new InputError(`permutations must be an integer in 1..100000, got ${perms}`);
  const searched = options.layers?.length ?? engine.layers + 1;
  const combine = (options.combine ?? [2, 3]).filter((k) => k <= searched);
  const { result, vectors } = await tvSearchWithVectors(engine, cfg, { ...options, combine });
  const higher = result.metric === 'accuracy';
  const input = (curve: readonly LayerScore[], baseline: LayerScore, icl: number, best: { layer: number; test: number }, combined: readonly LayerScore[]): CurveInput => ({
    higherIsBetter: higher,
    curve: curve.map((c) => c.all.mean),
    layers: curve.map((c) => c.layers[0]),
    baseline: baseline.all.mean,
    icl,
    best,
    combined: combined.map((c, i) => ({ k: combine[i], test: c.test })),
  });
  const tasks = result.tasks.map((t) => ({ task: t.task.name, ...curveMetrics(input(t.curve, t.baseline, t.icl.mean, t.best, t.combined)) }));
  const a = result.average;
  const average = { ...curveMetrics(input(a.curve, a.baseline, a.icl.mean, a.best, a.combined)), icl: a.icl.mean, baseline: a.baseline.all.mean };
  const d = engine.dims.dModel;
  const multi = new Set(vectors.perPrompt.task).size > 1;
  return {
    analysis: 'locality',
    convention: LAYER_CONVENTION,
    metric: result.metric,
    model: { config: engine.modelInfo.config, weightsSha256: engine.modelInfo.weightsSha256, ...model },
    tasks,
    average,
    separability: multi ? separability(vectors, engine.layers, d, { permutations: options.permutations, seed: options.seed }) : [],
    pca: options.pca === false ? null : pcaByLayer(vectors, engine.layers, d),
    search: result,
  };
}

/** One row of a series or comparison table: a model's (or checkpoint's) averaged metrics. */
export interface LocalityRow extends LocalityMetrics {
  readonly file: string;
  readonly step: number | null;
  readonly weightsSha256: string;
  readonly layers: number;
  readonly metric: TvSearchResult['metric'];
  readonly baseline: number;
  readonly icl: number;
  /** Separability difference at the peak layer, and its p. */
  readonly separabilityAtPeak: { readonly difference: number; readonly p: number } | null;
}

/** One table row of a checkpoint's locality: over a run's checkpoints rows show emergence, over models a comparison. */
export function localityRow(r: LocalityResult, model: { readonly file: string; readonly step: number | null; readonly weightsSha256: string; readonly layers: number }): LocalityRow {
  const sep = r.separability.find((s) => s.layer === r.average.peakLayer);
  return {
    ...model,
    metric: r.metric,
    baseline: r.average.baseline,
    icl: r.average.icl,
    peakLayer: r.average.peakLayer,
    peak: r.average.peak,
    strength: r.average.strength,
    recovered: r.average.recovered,
    entropy: r.average.entropy,
    halfWidth: r.average.halfWidth,
    nonLocality: r.average.nonLocality,
    separabilityAtPeak: sep ? { difference: sep.difference, p: sep.p } : null,
  };
}

function normalised(v: Float32Array): Float64Array {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  return Float64Array.from(v, (x) => x / n);
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function variance(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
}
