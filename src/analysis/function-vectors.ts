/**
 * Function vectors (Todd et al. 2024). Three steps:
 *
 *   1. Mean head outputs. For each task, each head's attn.hook_z at the last arrow, averaged over
 *      clean ICL prompts of the task: z̄[t][ℓ][h] (d_head each).
 *   2. Head ranking by average indirect effect (AIE). On shuffled-label prompts of the task (the
 *      demos' labels permuted among them, so the x → y mapping is broken), write one head's z̄ at
 *      the last arrow and measure the rise in the probability of the correct answer (regression:
 *      the fall in normalised squared error). Average over prompts, then over tasks.
 *   3. The function vector of a task: the top-k heads' z̄, each projected through its rows of its
 *      block's W_O, summed: FV[t] = Σ_(ℓ,h) z̄[t][ℓ][h] · W_O^ℓ[h·dh:(h+1)·dh, :] (d_model). It is
 *      *added* to the last arrow of zero-shot prompts `x_q →` at residual layer ℓ, for every ℓ.
 *
 * Beside it, Hendel et al.'s task vector (the mean residual, written over the arrow state) on the
 * same demo and zero-shot prompts, through tv-search.
 *
 * Cost: a forward pass over the demo prompts (with z), one over the shuffled prompts, L·H one-row
 * suffix passes for the ranking, a forward pass over the zero-shot prompts and L+1 one-row suffix
 * passes for the sweep. Layers follow the task-vector convention (LAYER_CONVENTION).
 */
import { InputError } from '../errors.js';
import { hookPoint } from '../model/hooks.js';
import { type Batch, type Split, type Task, type TaskConfig, promptLength, taskPrompts } from '../tasks/index.js';
import { checkRunsFit } from './guard.js';
import { type Estimate, estimate } from '../util/stats.js';
import { Rng } from '../util/rng.js';
import { concatBatches } from '../tasks/index.js';
import { scoreQueries } from '../tasks/score.js';
import { analysisTasks } from './batches.js';
import { LAYER_CONVENTION, type Variant, promptFeeds, range } from '../backend/backend.js';
import type { GraphBackend } from '../backend/graph.js';
import { searchPromptsFor } from './search-prompts.js';
import { type TvSearchResult, tvSearch } from './tv-search.js';

export interface FunctionVectorOptions {
  /** Tasks of this split. Default 'train'. */
  readonly split?: Split;
  /** These tasks instead of a split's. */
  readonly tasks?: readonly Task[];
  /** At most this many tasks (the first of the list). Default: all. */
  readonly maxTasks?: number;
  /** Clean demo prompts per task that z̄ (and Hendel's θ) average over. Default 16. */
  readonly prompts?: number;
  /** Shuffled-label prompts per task for the head ranking. Default 16. */
  readonly shuffled?: number;
  /** Demos per prompt (k). Default: the task config's demos.max. */
  readonly shots?: number;
  /** Zero-shot queries per task; the first half is dev, the rest test. Default 64. */
  readonly queries?: number;
  /** Heads summed into the function vector. Default 3 (Todd et al. use 10 of ~1,000 heads; these models have tens). */
  readonly topK?: number;
  /** Layers the FV is added at, one at a time. Default every layer 0..L. */
  readonly layers?: readonly number[];
  /** Also run Hendel's task-vector search on the same prompts. Default true. */
  readonly compareTv?: boolean;
  /** Seed of the prompts. Default 0. */
  readonly seed?: number;
  readonly onProgress?: (stage: string, done: number, total: number) => void;
}

/** One head of the ranking. */
export interface RankedHead {
  readonly layer: number;
  readonly head: number;
  /** The hook the head's z is read from. */
  readonly hook: string;
  readonly aie: number;
}

/** The FV's score at one layer: over all queries with a 95% interval, and on the dev and test halves. */
export interface FvLayerScore {
  readonly layer: number;
  readonly all: Estimate;
  readonly dev: number;
  readonly test: number;
}

export interface FvTaskResult {
  readonly task: { readonly id: number; readonly name: string; readonly family: string };
  /** AIE per head [L][H] on this task's shuffled prompts. */
  readonly aie: number[][];
  /** The score of the shuffled prompts, unpatched: P(correct) or −nMSE. */
  readonly shuffledScore: number;
  readonly baseline: Estimate;
  readonly icl: Estimate;
  readonly curve: readonly FvLayerScore[];
  /** ‖FV‖, and its layer-best on dev scored on test. */
  readonly norm: number;
  readonly best: { readonly layer: number; readonly dev: number; readonly test: number };
}

export interface FunctionVectorResult {
  readonly analysis: 'function-vectors';
  readonly convention: string;
  /** 'accuracy' (higher is better) or 'nmse' (lower is better) for the sweeps; the AIE is in P(correct) (tokens) or −nMSE. */
  readonly metric: 'accuracy' | 'nmse';
  readonly aieUnit: 'p(correct)' | '-nmse';
  readonly options: Readonly<Record<string, unknown>>;
  /** AIE per head [L][H], averaged over tasks: the heat map. */
  readonly aie: number[][];
  /** Every head, best first. */
  readonly ranking: readonly RankedHead[];
  /** The top-k heads summed into the FV. */
  readonly heads: readonly RankedHead[];
  readonly tasks: readonly FvTaskResult[];
  /** Means over tasks, with intervals over tasks (accuracy intervals clipped to [0, 1]). */
  readonly average: {
    readonly baseline: Estimate;
    readonly icl: Estimate;
    readonly curve: readonly FvLayerScore[];
    readonly best: { readonly layer: number; readonly dev: number; readonly test: number };
  };
  /** Hendel et al.'s task vector on the same demo and zero-shot prompts (replace), per layer; null when not run. */
  readonly tv: { readonly curve: readonly FvLayerScore[]; readonly best: { readonly layer: number; readonly dev: number; readonly test: number } } | null;
  /** Milliseconds per stage, and prompts run. */
  readonly cost: { readonly ms: Readonly<Record<string, number>>; readonly prompts: { readonly demo: number; readonly shuffled: number; readonly zeroShot: number } };
}

const DEFAULTS = { split: 'train' as Split, prompts: 16, shuffled: 16, queries: 64, topK: 3, seed: 0, compareTv: true };

/**
 * Ranks heads by AIE, builds each task's function vector from the top-k, and sweeps it over the
 * layers of zero-shot prompts. Output: see FunctionVectorResult.
 */
export async function functionVectors(engine: GraphBackend, cfg: TaskConfig, options: FunctionVectorOptions = {}): Promise<FunctionVectorResult> {
  const o = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as typeof DEFAULTS & FunctionVectorOptions;
  const L = engine.layers;
  const { heads: H, dModel: D } = engine.dims;
  const dh = D / H;
  const layers = [...(options.layers ?? range(L + 1))];
  layers.forEach((l) => engine.checkLayer(l));
  if (layers.length === 0) throw new InputError('no layers to add the function vector at');
  if (!Number.isInteger(o.topK) || o.topK < 1 || o.topK > L * H) throw new InputError(`top-k must be an integer in 1..${L * H} (this model's heads), got ${o.topK}`);
  for (const k of ['prompts', 'shuffled'] as const) if (!Number.isInteger(o[k]) || o[k] < 1) throw new InputError(`${k} must be an integer ≥ 1, got ${o[k]}`);
  if (!Number.isInteger(o.queries) || o.queries < 2) throw new InputError(`queries must be an integer ≥ 2 (half dev, half test), got ${o.queries}`);
  if (cfg.kind === 'hmm' || cfg.kind === 'dfa') throw new InputError(`function vectors need function tasks (x → y) whose demo labels can be shuffled; '${cfg.kind}' is a sequence task`);
  const tasks = options.tasks ? [...options.tasks] : analysisTasks(cfg, o.split, options.maxTasks, o.seed);
  const shots = options.shots ?? cfg.demos.max;
  if (shots < 2) throw new InputError('function vectors need prompts with at least two demos, whose labels can be shuffled');
  // The demo and shuffled runs, each with q, k, v and z per block.
  checkRunsFit(engine, 'function vectors', { prompts: tasks.length * Math.max(o.prompts, o.shuffled, o.queries), seq: promptLength(cfg, shots), perBlock: 4, count: 2 }, 'lower prompts, shuffled, queries or maxTasks');
  const ms: Record<string, number> = {};
  const clock = async <T>(stage: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    ms[stage] = (ms[stage] ?? 0) + performance.now() - t0;
    return r;
  };
  const progress = (stage: string) => (d: number, n: number) => options.onProgress?.(stage, d, n);

  // The demo and zero-shot prompts are tv-search's own (same seed), so the comparison is paired.
  const p = searchPromptsFor(cfg, tasks, { prompts: o.prompts, shots, queries: o.queries, seed: o.seed });
  const shufRng = new Rng(o.seed ^ 0x5a1f);
  const shufParts = tasks.map((t) => taskPrompts(cfg, t, shufRng.fork(), o.shuffled, shots, { shuffleLabels: true }));
  const shuffled = concatBatches(shufParts);
  const shufTask = Int32Array.from(shufParts.flatMap((b, t) => new Array<number>(b.batch).fill(t)));
  [p.demos.seq, shuffled.seq, p.queries.seq].forEach((s) => engine.checkSeq(s));

  // 1. Mean head outputs at the last arrow, per task.
  progress('mean head outputs')(0, 1); // a line before the first full run, which takes a while on many prompts
  const demoRun = await clock('demo', () => engine.base(promptFeeds(p.demos), { z: true }));
  const T = p.demos.seq;
  const zbar = tasks.map((_, t) =>
    range(L).map((l) => {
      const sum = new Float64Array(H * dh);
      let n = 0;
      for (let b = 0; b < p.demos.batch; b++) {
        if (p.demoTask[b] !== t) continue;
        n++;
        const z = demoRun.z![l].subarray((b * T + T - 1) * H * dh, (b * T + T) * H * dh);
        for (let i = 0; i < H * dh; i++) sum[i] += z[i];
      }
      return Float32Array.from(sum, (v) => v / n);
    }),
  );
  const icl = scoreQueries(p.demos, demoRun.out);

  // 2. AIE: each head's z̄ written into the shuffled prompts' last arrow.
  const shufRun = await clock('shuffled', () => engine.base(promptFeeds(shuffled), { z: true }));
  const Ts = shuffled.seq;
  const heads = range(L).flatMap((l) => range(H).map((h) => ({ l, h })));
  const variants: Variant[] = heads.map(({ l, h }) => [{ site: { kind: 'z', layer: l }, head: h, positions: [Ts - 1], mode: 'replace', value: (n: number) => zbar[shufTask[n]][l].subarray(h * dh, (h + 1) * dh) }]);
  const outs = await clock('ranking', () => engine.patched(shufRun, variants, progress('head ranking')));
  const effect = effectScorer(shuffled, shufTask, tasks.length);
  const before = effect(shufRun.out);
  const perTaskAie = tasks.map(() => range(L).map(() => new Array<number>(H).fill(0)));
  const counts = tasks.map((_, t) => shufTask.filter((x) => x === t).length);
  heads.forEach(({ l, h }, i) => {
    const after = effect(outs[i]);
    for (let n = 0; n < shuffled.batch; n++) perTaskAie[shufTask[n]][l][h] += (after[n] - before[n]) / counts[shufTask[n]];
  });
  const aie = range(L).map((l) => range(H).map((h) => mean(perTaskAie.map((a) => a[l][h]))));
  const ranking: RankedHead[] = heads
    .map(({ l, h }) => ({ layer: l, head: h, hook: hookPoint('attn.hook_z', l).name, aie: aie[l][h] }))
    .sort((a, b) => b.aie - a.aie || a.layer - b.layer || a.head - b.head);
  const top = ranking.slice(0, o.topK);

  // 3. FV[t] = Σ_top z̄ · W_O rows of the head, then added at each layer of the zero-shot prompts.
  const fv = tasks.map((_, t) => {
    const v = new Float64Array(D);
    for (const { layer, head } of top) {
      const W = engine.model.params.get(`blocks.${layer}.attn.W_O`)!; // [H·dh, D]
      const z = zbar[t][layer];
      for (let k = 0; k < dh; k++) {
        const zk = z[head * dh + k];
        const row = (head * dh + k) * D;
        for (let d = 0; d < D; d++) v[d] += zk * W[row + d];
      }
    }
    return Float32Array.from(v);
  });
  const zs = p.queries;
  const zsRun = await clock('zero-shot', () => engine.base(promptFeeds(zs)));
  const sweep = await clock('sweep', () =>
    engine.patched(
      zsRun,
      layers.map((l) => [{ site: { kind: 'resid', layer: l }, positions: [p.queryPosition], mode: 'add', value: (n: number) => fv[p.queryTask[n]] }]),
      progress('sweep'),
    ),
  );
  const metric = zs.kind === 'tokens' ? 'accuracy' : 'nmse';
  const score = querySummary(zs, p.queryTask, tasks.length);
  const iclScore = querySummary(p.demos, p.demoTask, tasks.length);
  const iclValues = iclScore.values(demoRun.out);
  const baseValues = score.values(zsRun.out);
  const curves = sweep.map((out) => score.values(out));
  const higher = metric === 'accuracy';
  const pickBest = (curve: readonly FvLayerScore[]) => curve.reduce((a, b) => ((higher ? b.dev > a.dev : b.dev < a.dev) ? b : a));

  const per: FvTaskResult[] = tasks.map((task, t) => {
    const curve = layers.map((l, i) => ({ layer: l, ...score.summary(curves[i], t) }));
    const best = pickBest(curve);
    return {
      task: { id: task.id, name: task.name, family: task.family },
      aie: perTaskAie[t],
      shuffledScore: mean(Array.from(before).filter((_, n) => shufTask[n] === t)),
      baseline: score.summary(baseValues, t).all,
      icl: iclScore.summary(iclValues, t).all,
      curve,
      norm: Math.hypot(...fv[t]),
      best: { layer: best.layer, dev: best.dev, test: best.test },
    };
  });
  const clip = (e: Estimate): Estimate => (higher ? { ...e, low: Math.max(0, e.low), high: Math.min(1, e.high) } : e);
  const over = (xs: readonly number[]) => clip(estimate([...xs]));
  const avgCurve = layers.map((l, i) => ({ layer: l, all: over(per.map((x) => x.curve[i].all.mean)), dev: mean(per.map((x) => x.curve[i].dev)), test: mean(per.map((x) => x.curve[i].test)) }));
  const avgBest = pickBest(avgCurve);

  let tv: FunctionVectorResult['tv'] = null;
  if (o.compareTv) {
    const r: TvSearchResult = await clock('tv', () => tvSearch(engine, cfg, { given: p, layers, mode: 'replace', onProgress: options.onProgress && ((s, d, n) => options.onProgress!(`task vector: ${s}`, d, n)) }));
    const curve = r.average.curve.map((c) => ({ layer: c.layers[0], all: clip(c.all), dev: c.dev, test: c.test }));
    tv = { curve, best: r.average.best };
  }
  return {
    analysis: 'function-vectors',
    convention: `${LAYER_CONVENTION}; heads are (block, head) of blocks.{block}.attn.hook_z; the FV is added at the last position`,
    metric,
    aieUnit: zs.kind === 'tokens' ? 'p(correct)' : '-nmse',
    options: { tasks: tasks.map((t) => t.name), split: o.split, prompts: o.prompts, shuffled: o.shuffled, shots, queries: o.queries, topK: o.topK, layers, seed: o.seed, compareTv: o.compareTv },
    aie,
    ranking,
    heads: top,
    tasks: per,
    average: { baseline: over(per.map((x) => x.baseline.mean)), icl: over(per.map((x) => x.icl.mean)), curve: avgCurve, best: { layer: avgBest.layer, dev: avgBest.dev, test: avgBest.test } },
    tv,
    cost: { ms, prompts: { demo: p.demos.batch, shuffled: shuffled.batch, zeroShot: zs.batch } },
  };
}

/** Per prompt, the AIE's score at the query: P(correct) for tokens, −nMSE (÷ the task's mean y²) for vectors. */
function effectScorer(batch: Batch, taskOf: Int32Array, tasks: number): (out: Float32Array) => Float64Array {
  const B = batch.batch;
  if (batch.kind === 'tokens') {
    return (out) => {
      const O = out.length / B;
      return Float64Array.from(range(B), (n) => {
        const row = out.subarray(n * O, (n + 1) * O);
        const c = Number(batch.targets[n * batch.seq + batch.queryPos[n]]);
        let max = -Infinity;
        for (let j = 0; j < O; j++) max = Math.max(max, row[j]);
        let z = 0;
        for (let j = 0; j < O; j++) z += Math.exp(row[j] - max);
        return Math.exp(row[c] - max) / z;
      });
    };
  }
  const s = querySummary(batch, taskOf, tasks);
  return (out) => s.values(out).map((v) => -v);
}

/** Per-query scores (accuracy, or nMSE ÷ the task's mean y²) and their summary per task. */
function querySummary(batch: Batch, taskOf: Int32Array, tasks: number) {
  const accuracy = batch.kind === 'tokens';
  const y2 = scoreQueries(batch, new Float32Array(batch.batch * (accuracy ? 1 : batch.dOut))).y2;
  const norm = range(tasks).map((t) => (accuracy ? 1 : mean(Array.from(y2).filter((_, n) => taskOf[n] === t)) || 1));
  return {
    values: (out: Float32Array) => scoreQueries(batch, out).value.map((v, n) => v / norm[taskOf[n]]),
    summary: (values: Float64Array, t: number) => {
      const own = Array.from(values).filter((_, n) => taskOf[n] === t);
      const half = Math.floor(own.length / 2);
      return { all: estimate(own), dev: mean(own.slice(0, half)), test: mean(own.slice(half)) };
    },
  };
}

function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}
