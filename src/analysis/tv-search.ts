/**
 * Task-vector search (task-vector prompting, TVP). For each task, θ_ℓ is the mean residual at the
 * last arrow of demo prompts (k demos and a dummy query). It replaces (Hendel et al.) or is added
 * to (function-vector style) the arrow state of zero-shot prompts `x_q →` at layer ℓ, and the
 * zero-shot prompts are scored: accuracy for token tasks, normalised MSE for regression.
 *
 * Cost: one forward pass over the demo prompts (θ and the k-shot ICL score come out of it), one
 * over the zero-shot prompts (the baseline, and the cached keys and values), and then every layer
 * at once through the suffix forward, which only recomputes the injected position upward.
 *
 * Layers follow the task-vector convention (see LAYER_CONVENTION): ℓ = 0..L.
 */
import { InputError } from '../errors.js';
import type { Batch, Split, Task, TaskConfig } from '../tasks/index.js';
import { promptLength, taskPrompts, zeroShotPrompts } from '../tasks/index.js';
import { analysisMemory, checkMemory } from '../util/memory.js';
import { type Estimate, estimate } from '../util/stats.js';
import { Rng } from '../util/rng.js';
import { concatBatches } from '../tasks/index.js';
import { scoreQueries } from '../tasks/score.js';
import { analysisTasks, withDummies } from './batches.js';
import { SEARCH_PROMPT_DEFAULTS, type SearchPrompts, type TaskRef, drawSearchPrompts, stripUndefined, taskIndex } from './search-prompts.js';
import { type Backend, type AnalysisRun, LAYER_CONVENTION, type Variant, promptFeeds, range, sliceFeeds } from '../backend/backend.js';

export interface TvSearchOptions {
  /** Tasks of this split. Default 'train'. */
  readonly split?: Split;
  /** Search these tasks instead of a split's. */
  readonly tasks?: readonly Task[];
  /** At most this many tasks (the first of the list). Default: all. */
  readonly maxTasks?: number;
  /** Demo prompts per task that θ is averaged over. Default 16. */
  readonly prompts?: number;
  /** Dummy queries per demo prompt: each demo set is read with this many queries. Default 1. */
  readonly dummies?: number;
  /** Demos per prompt (k). Default: the task config's demos.max. */
  readonly shots?: number;
  /** Zero-shot queries per task; the first half is the dev split, the rest the test split. Default 64. */
  readonly queries?: number;
  /** 'replace' the state (Hendel et al.) or 'add' θ to it (function-vector style). Default 'replace'. */
  readonly mode?: 'replace' | 'add';
  /** Subtract the mean of θ over tasks before injecting, leaving the task-specific part. Default false. */
  readonly center?: boolean;
  /** Where to inject, counted back from the prompt's end: 0 is the last position (the arrow). Default 0. */
  readonly offset?: number;
  /** Layers to inject at, one at a time. Default: every layer 0..L. */
  readonly layers?: readonly number[];
  /** Layer sets injected together (multi-layer injection), e.g. [[2, 3]]. Default none. */
  readonly sets?: readonly (readonly number[])[];
  /** For each k here, inject at each task's best k layers (chosen on dev) together. Default none. */
  readonly combine?: readonly number[];
  /** 'fast' (the suffix forward) or 'naive' (one full forward pass per injection), for checks and benchmarks. Default 'fast'. */
  readonly method?: 'fast' | 'naive';
  /** Seed of the prompts. Default 0. */
  readonly seed?: number;
  /**
   * Search on these prompts instead of drawing them from the task config (bring-your-own prompts;
   * see `searchPromptsFrom`). The task config, split, tasks, prompts, dummies, shots, queries and
   * offset options then do not apply.
   */
  readonly given?: SearchPrompts;
  /** Demo prompts per forward pass; bounds memory. Default 256. */
  readonly chunk?: number;
  readonly onProgress?: (stage: string, done: number, total: number) => void;
}

/** The score of one injection: over all queries with a 95% interval, and on the dev and test halves. */
export interface LayerScore {
  readonly layers: readonly number[];
  readonly all: Estimate;
  readonly dev: number;
  readonly test: number;
}

export interface TaskSearch {
  readonly task: { readonly id: number; readonly name: string; readonly family: string };
  /** Zero-shot, nothing injected. */
  readonly baseline: LayerScore;
  /** k-shot ICL, on the demo prompts' own queries. */
  readonly icl: Estimate;
  /** One entry per layer of `layers`. */
  readonly curve: readonly LayerScore[];
  /** One entry per set of `sets`. */
  readonly sets: readonly LayerScore[];
  /** One entry per k of `combine`: the task's best k layers on dev, injected together. */
  readonly combined: readonly LayerScore[];
  /** The best single layer on dev, and its score on test. */
  readonly best: { readonly layer: number; readonly dev: number; readonly test: number };
}

export interface TvSearchResult {
  readonly analysis: 'tv-search';
  /** Where the prompts came from: drawn from the task config, or given (a prompts file). */
  readonly prompts: 'task' | 'given';
  readonly convention: string;
  /** 'accuracy' (higher is better) or 'nmse' (MSE ÷ mean y² of the task's queries; lower is better). */
  readonly metric: 'accuracy' | 'nmse';
  readonly options: Omit<Required<TvSearchOptions>, 'tasks' | 'onProgress' | 'maxTasks' | 'chunk' | 'given'> & { readonly maxTasks: number | null };
  /** Positions injected at: in the zero-shot prompts, and where θ is read in the demo prompts. */
  readonly positions: { readonly zeroShot: number; readonly demo: number };
  readonly tasks: readonly TaskSearch[];
  /**
   * Means over tasks, with intervals over tasks. `best` picks one layer on the mean dev curve;
   * `bestPerTask` averages each task's own best layer's test score.
   */
  readonly average: {
    readonly baseline: LayerScore;
    readonly icl: Estimate;
    readonly curve: readonly LayerScore[];
    readonly sets: readonly LayerScore[];
    readonly combined: readonly LayerScore[];
    readonly best: { readonly layer: number; readonly dev: number; readonly test: number };
    readonly bestPerTask: Estimate;
  };
  /** Prompts run and milliseconds per stage. */
  readonly cost: { readonly demoPrompts: number; readonly zeroShotPrompts: number; readonly ms: Readonly<Record<string, number>> };
}

/** Task vectors θ[task][ℓ] (d_model each) and the ICL scores of the demo prompts that made them. */
export interface TaskVectors {
  readonly tasks: readonly TaskRef[];
  /** theta[t] is [L+1, D] for tasks[t]. */
  readonly theta: readonly Float32Array[];
  /** Every demo prompt's residual at the read position [B, L+1, D], and its task's index. */
  readonly perPrompt: { readonly resid: Float32Array; readonly task: Int32Array };
  readonly icl: ReturnType<typeof scoreQueries>;
  readonly demos: Batch;
  readonly position: number;
}

const DEFAULTS = { ...SEARCH_PROMPT_DEFAULTS, split: 'train' as Split, mode: 'replace' as const, method: 'fast' as const, center: false, chunk: 256 };

/**
 * θ for each task: the mean residual, at every layer, at position (last − offset) of `prompts` ×
 * `dummies` demo prompts with `shots` demos. One forward pass (in chunks) over all tasks' prompts.
 */
export async function taskVectors(
  engine: Backend,
  cfg: TaskConfig,
  tasks: readonly Task[],
  options: { prompts?: number; dummies?: number; shots?: number; offset?: number; rng: Rng; chunk?: number; onProgress?: (done: number, total: number) => void },
): Promise<TaskVectors> {
  const shots = options.shots ?? cfg.demos.max;
  const parts = tasks.map((t) => withDummies(cfg, taskPrompts(cfg, t, options.rng.fork(), options.prompts ?? DEFAULTS.prompts, shots), options.dummies ?? 1));
  const demos = concatBatches(parts);
  const position = demos.seq - 1 + (options.offset ?? 0);
  if (position < 0) throw new InputError(`offset ${options.offset} reaches before the start of the ${demos.seq}-position demo prompts`);
  return taskVectorsOf(engine, tasks, demos, taskIndex(parts), position, options);
}

/** θ for each task from given demo prompts: the mean residual at every layer at `position`. */
export async function taskVectorsOf(
  engine: Backend,
  tasks: readonly TaskRef[],
  demos: Batch,
  task: Int32Array,
  position: number,
  options: { chunk?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<TaskVectors> {
  engine.checkSeq(demos.seq);
  const [L1, D, O] = [engine.layers + 1, engine.dims.dModel, engine.outWidth];
  const feeds = promptFeeds(demos);
  const resid = new Float32Array(demos.batch * L1 * D);
  const last = new Float32Array(demos.batch * O);
  const chunk = options.chunk ?? DEFAULTS.chunk;
  for (let b = 0; b < demos.batch; b += chunk) {
    const e = Math.min(b + chunk, demos.batch);
    const r = await engine.at(sliceFeeds(feeds, b, e), position);
    resid.set(r.resid, b * L1 * D);
    last.set(r.last, b * O);
    options.onProgress?.(e, demos.batch);
  }
  const theta = tasks.map((_, t) => {
    const sum = new Float64Array(L1 * D);
    let n = 0;
    for (let b = 0; b < demos.batch; b++) {
      if (task[b] !== t) continue;
      n++;
      for (let i = 0; i < L1 * D; i++) sum[i] += resid[b * L1 * D + i];
    }
    if (n === 0) throw new InputError(`task '${tasks[t].name}' has no demo prompts to read θ from`);
    return Float32Array.from(sum, (v) => v / n);
  });
  return { tasks, theta, perPrompt: { resid, task }, icl: scoreQueries(demos, last), demos, position };
}

/** Runs the search. Output shape: see TvSearchResult. */
export async function tvSearch<R extends AnalysisRun>(engine: Backend<R>, cfg: TaskConfig | null, options: TvSearchOptions = {}): Promise<TvSearchResult> {
  return (await tvSearchWithVectors(engine, cfg, options)).result;
}

/** The search, and the task vectors it made (for locality's separability and PCA). */
export async function tvSearchWithVectors<R extends AnalysisRun>(engine: Backend<R>, cfg: TaskConfig | null, options: TvSearchOptions = {}): Promise<{ result: TvSearchResult; vectors: TaskVectors }> {
  const o = { ...DEFAULTS, ...stripUndefined(options) };
  const L = engine.layers;
  const layers = [...(options.layers ?? range(L + 1))];
  const sets = (options.sets ?? []).map((s) => [...s]);
  const combine = [...(options.combine ?? [])];
  [...layers, ...sets.flat()].forEach((l) => engine.checkLayer(l));
  if (layers.length === 0 && sets.length === 0) throw new InputError('nothing to search: give at least one layer or layer set');
  for (const k of combine) {
    if (!Number.isInteger(k) || k < 1 || k > layers.length) throw new InputError(`combine ${k} needs an integer in 1..${layers.length} (the number of layers searched)`);
  }
  if (o.center && o.mode !== 'add') throw new InputError("center applies to mode 'add' (a centred vector written over the state would erase it)");
  if (!Number.isInteger(o.queries) || o.queries < 2) throw new InputError(`queries must be an integer ≥ 2 (half dev, half test), got ${o.queries}`);
  for (const k of ['prompts', 'dummies', 'chunk'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new InputError(`${k} must be a positive integer, got ${o[k]}`);
  }
  // Before any prompt is drawn: every library, CLI, report and study search is estimated here.
  if (!options.given && cfg) {
    const tasks = options.tasks?.length ?? options.maxTasks ?? 64;
    const seq = promptLength(cfg, options.shots ?? cfg.demos.max);
    const shape = { layers: L, dModel: engine.dims.dModel, heads: engine.dims.heads ?? 1, dMlp: 4 * engine.dims.dModel, vocab: engine.outWidth, maxSeq: seq };
    const total = tasks * (o.prompts * o.dummies + o.queries);
    checkMemory(analysisMemory(shape, total, seq, o.chunk), `a task-vector search over ${total} prompts of ${seq} positions`, 'lower prompts, queries or maxTasks');
  }
  const ms: Record<string, number> = {};
  const clock = async <T>(stage: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await f();
    ms[stage] = (ms[stage] ?? 0) + performance.now() - t0;
    return r;
  };
  if (!options.given && !cfg) throw new InputError('a task-vector search needs a task config or given prompts');
  const p =
    options.given ??
    (await drawSearchPrompts(cfg!, options.tasks ? [...options.tasks] : analysisTasks(cfg!, o.split, options.maxTasks, o.seed), o, (d, n) => options.onProgress?.('prompts', d, n)));
  const tasks = p.tasks;
  const tv = await clock('demo', () =>
    taskVectorsOf(engine, tasks, p.demos, p.demoTask, p.demoPosition, { chunk: o.chunk, onProgress: (d, n) => options.onProgress?.('task vectors', d, n) }),
  );
  const theta = o.center ? centered(tv.theta) : tv.theta;

  const zs = p.queries;
  const position = p.queryPosition;
  const taskOf = (n: number) => p.queryTask[n];
  const D = engine.dims.dModel;
  const inject = (ls: readonly number[]): Variant =>
    ls.map((l) => ({ site: { kind: 'resid', layer: l }, positions: [position], mode: o.mode, value: (n: number) => theta[taskOf(n)].subarray(l * D, (l + 1) * D) }));

  const feeds = promptFeeds(zs);
  const base = await clock('zero-shot', () => engine.base(feeds));
  const variants = [...layers.map((l) => inject([l])), ...sets.map(inject)];
  const progress = (d: number, n: number) => options.onProgress?.('search', d, n);
  const run = (vs: readonly Variant[]) => (o.method === 'naive' ? engine.patchedNaive(feeds, vs, progress) : engine.patched(base, vs, progress));
  const outs = await clock('search', () => run(variants));
  const scorer = new Scorer(zs, p.queryTask, tasks.length);
  const baseline = scorer.scores(base.out);
  const curves = outs.map((out) => scorer.scores(out));

  const per = tasks.map((task, t) => {
    const curve = layers.map((l, i) => scorer.summary(curves[i], t, [l]));
    const best = curve.length ? pickBest(curve, scorer.higher) : { layers: [-1], dev: NaN, test: NaN };
    return {
      task: { id: task.id, name: task.name, family: task.family },
      baseline: scorer.summary(baseline, t, []),
      icl: p.demoAnswers ? iclEstimate(tv.icl, tv.perPrompt.task, t) : estimate([]),
      curve,
      sets: sets.map((s, i) => scorer.summary(curves[layers.length + i], t, s)),
      combined: [] as LayerScore[],
      best: { layer: best.layers[0], dev: best.dev, test: best.test },
    };
  });

  // Non-locality: each task's best k layers on dev, injected together. One variant carries every
  // task's own set: a layer's patch writes only the prompts of tasks whose set holds it.
  for (const k of combine) {
    const chosen = per.map((p) =>
      [...p.curve]
        .sort((a, b) => (scorer.higher ? b.dev - a.dev : a.dev - b.dev) || a.layers[0] - b.layers[0])
        .slice(0, k)
        .map((c) => c.layers[0])
        .sort((a, b) => a - b),
    );
    const union = [...new Set(chosen.flat())].sort((a, b) => a - b);
    const variant: Variant = inject(union).map((p) => ({ ...p, value: (n: number, i: number) => (chosen[taskOf(n)].includes(p.site.layer) ? p.value(n, i) : null) }));
    const [out] = await clock('combine', () => run([variant]));
    const scores = scorer.scores(out);
    per.forEach((p, t) => p.combined.push(scorer.summary(scores, t, chosen[t])));
  }

  const average = averageOver(per, scorer.higher);
  const result: TvSearchResult = {
    analysis: 'tv-search',
    prompts: options.given ? 'given' : 'task',
    convention: LAYER_CONVENTION,
    metric: scorer.metric,
    options: options.given
      ? { split: o.split, method: o.method, maxTasks: null, prompts: p.demos.batch, dummies: 1, shots: -1, queries: p.queries.batch, mode: o.mode, center: o.center, offset: position - (zs.seq - 1), layers, sets, combine, seed: o.seed }
      : { split: o.split, method: o.method, maxTasks: options.maxTasks ?? null, prompts: o.prompts, dummies: o.dummies, shots: options.shots ?? cfg!.demos.max, queries: o.queries, mode: o.mode, center: o.center, offset: o.offset, layers, sets, combine, seed: o.seed },
    positions: { zeroShot: position, demo: p.demoPosition },
    tasks: per,
    average,
    cost: { demoPrompts: tv.demos.batch, zeroShotPrompts: zs.batch, ms },
  };
  return { result, vectors: tv };
}

/** Per-query scores of the zero-shot prompts, grouped by task; a task's first half is dev. */
class Scorer {
  readonly metric: 'accuracy' | 'nmse';
  readonly higher: boolean;
  private readonly norm: Float64Array;
  /** The prompts of each task, in order. */
  private readonly members: number[][];

  constructor(
    private readonly batch: Batch,
    private readonly taskOf: Int32Array,
    tasks: number,
  ) {
    this.metric = batch.kind === 'tokens' ? 'accuracy' : 'nmse';
    this.higher = this.metric === 'accuracy';
    this.members = range(tasks).map(() => []);
    taskOf.forEach((t, n) => this.members[t].push(n));
    // nMSE divides by the mean y² of the task's queries, so a model that always says 0 scores 1.
    const y2 = scoreQueries(batch, new Float32Array(batch.batch * (batch.kind === 'tokens' ? 1 : batch.dOut))).y2;
    this.norm = Float64Array.from(this.members, (m) => (this.metric === 'accuracy' ? 1 : mean(m.map((n) => y2[n])) || 1));
  }

  scores(out: Float32Array): Float64Array {
    const { value } = scoreQueries(this.batch, out);
    return value.map((v, n) => v / this.norm[this.taskOf[n]]);
  }

  summary(values: Float64Array, t: number, layers: readonly number[]): LayerScore {
    const own = this.members[t].map((n) => values[n]);
    const half = Math.floor(own.length / 2);
    return { layers, all: estimate(own), dev: mean(own.slice(0, half)), test: mean(own.slice(half)) };
  }
}

function iclEstimate(icl: ReturnType<typeof scoreQueries>, taskOf: Int32Array, t: number): Estimate {
  const idx = range(taskOf.length).filter((b) => taskOf[b] === t);
  if (icl.metric === 'accuracy') return estimate(idx.map((b) => icl.value[b]));
  const norm = mean(Float64Array.from(idx, (b) => icl.y2[b])) || 1;
  return estimate(idx.map((b) => icl.value[b] / norm));
}

/** The best entry on dev; ties go to the lower layer. */
export function pickBest(curve: readonly LayerScore[], higher: boolean): LayerScore {
  return curve.reduce((a, b) => ((higher ? b.dev > a.dev : b.dev < a.dev) ? b : a));
}

function averageOver(per: readonly TaskSearch[], higher: boolean): TvSearchResult['average'] {
  const avg = (pick: (p: TaskSearch) => LayerScore): LayerScore => {
    const xs = per.map(pick);
    return { layers: xs[0].layers, all: estimate(xs.map((x) => x.all.mean)), dev: mean(xs.map((x) => x.dev)), test: mean(xs.map((x) => x.test)) };
  };
  const curve = per[0].curve.map((_, i) => avg((p) => p.curve[i]));
  const best = curve.length ? pickBest(curve, higher) : null;
  return {
    baseline: avg((p) => p.baseline),
    icl: estimate(per.map((p) => p.icl.mean)),
    curve,
    sets: per[0].sets.map((_, i) => avg((p) => p.sets[i])),
    combined: per[0].combined.map((_, i) => {
      const xs = per.map((p) => p.combined[i]);
      return { layers: [], all: estimate(xs.map((x) => x.all.mean)), dev: mean(xs.map((x) => x.dev)), test: mean(xs.map((x) => x.test)) };
    }),
    best: best ? { layer: best.layers[0], dev: best.dev, test: best.test } : { layer: -1, dev: NaN, test: NaN },
    bestPerTask: estimate(per.map((p) => p.best.test)),
  };
}

function centered(theta: readonly Float32Array[]): Float32Array[] {
  const m = new Float64Array(theta[0].length);
  for (const t of theta) for (let i = 0; i < m.length; i++) m[i] += t[i] / theta.length;
  return theta.map((t) => t.map((v, i) => v - m[i]));
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return xs.length ? s / xs.length : NaN;
}
