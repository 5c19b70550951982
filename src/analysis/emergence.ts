/**
 * Three diagnostics of whether a model separates "learn the task from the demos" from "apply it to
 * the query": the second wave's tests of claim 1 (Yang et al. 2025), beside the task-wide search
 * of tv-search.ts. Layers follow the task-vector convention: ℓ = 0 is the embeddings, ℓ ≥ 1 the
 * output of block ℓ (blocks.{ℓ-1}.hook_resid_post).
 *
 *   hendel    Hendel et al. (2023)'s protocol exactly (their code, LITERATURE.md §2.1): one θ per
 *             demo set S, not a task-wide mean. θ_ℓ(S) is the last position's residual at ℓ of S
 *             followed by a dummy query x' ≠ x_q, averaged over 2 dummies; it *replaces* the last
 *             position's residual at ℓ of the zero-shot prompt `x_q →`, and the first (only)
 *             answer token is scored. ℓ is chosen on dev demo sets and scored on test ones.
 *   masking   their attention-masking diagnostic: in blocks ℓ … L−1 the last position may not
 *             attend to the demonstrations (its pattern renormalised over the query's own block).
 *             ICL that survives masking from ℓ on means the demos were read by layer ℓ, so a task
 *             vector at ℓ has everything it needs. masked[L] is plain ICL, masked[0] sees no demo.
 *   probe     task decodability (Han et al. 2024): a ridge probe of the task's identity (one-hot)
 *             from the last position's residual at each layer, fitted on half the prompts and
 *             scored on the other half. Only where tasks come from a finite pool.
 *
 * Each runs small graphs built from the model's config with its weights bound, on the CPU.
 */
import type { Backend } from '../backend/backend.js';
import { GraphBackend } from '../backend/graph.js';
import { InputError } from '../errors.js';
import { Graph, type Value, op } from '../graph/index.js';
import type { ModelConfig } from '../model/config.js';
import { residualAtLayer } from '../model/hooks.js';
import { modelInputs } from '../model/inputs.js';
import { Transformer, declareParams, lastPosition } from '../model/transformer.js';
import type { HostTensor, Session } from '../runtime/session.js';
import { type Batch, type Example, type Task, type TaskConfig, examplesBatch, sampleBatch, taskList } from '../tasks/index.js';
import { batchFeeds } from '../tasks/feeds.js';
import { type QueryScores, argmax, scoreQueries } from '../tasks/score.js';
import { suiteFor } from '../tasks/suites.js';
import { universe } from '../tasks/universe.js';
import { Rng } from '../util/rng.js';
import { ridge, ridgePredict } from '../util/ridge.js';
import { share } from '../util/stats.js';

export interface EmergenceOptions {
  /** Test queries (each with its own demo set) per task; half dev, half test. Default 32. */
  readonly queries?: number;
  /** At most this many train tasks (finite pools). Default 16. */
  readonly maxTasks?: number;
  /** These tasks instead of the config's train tasks. Default: the train tasks (or fresh draws where the config has no pool). */
  readonly tasks?: readonly Task[];
  /** Queries in all for kinds that draw a fresh task per prompt. Default 256. */
  readonly freshQueries?: number;
  /** Demos per prompt. Default: the task config's demos.max. */
  readonly shots?: number;
  readonly seed?: number;
}

/** A score per layer ℓ = 0..L on dev and test queries, and over all of them. */
export interface Curve {
  readonly all: readonly number[];
  readonly dev: readonly number[];
  readonly test: readonly number[];
}

export interface HendelResult {
  readonly metric: 'accuracy' | 'nmse';
  /** θ(S) written at each layer. */
  readonly tv: Curve;
  /** The best layer on dev, and its test score. */
  readonly best: { readonly layer: number; readonly dev: number; readonly test: number };
  /** The same queries k-shot (their own demo set) and zero-shot, on test. */
  readonly icl: number;
  readonly zeroShot: number;
  /** (best test − zero-shot) ÷ (ICL − zero-shot): the share of ICL's gain the task vector recovers. */
  readonly recovered: number;
  readonly queries: number;
}

export interface MaskingResult {
  readonly metric: 'accuracy' | 'nmse';
  /** masked[ℓ]: ICL with the last position blind to the demos in blocks ℓ … L−1 (ℓ = 0..L). */
  readonly masked: readonly number[];
  readonly icl: number;
  readonly zeroShot: number;
  /** The lowest ℓ at which masked ICL keeps ≥ 90% of ICL's gain over zero-shot (L when only unmasked does). */
  readonly readBy: number;
}

export interface ProbeResult {
  /** Held-out accuracy of the task probe at each layer ℓ = 0..L. */
  readonly accuracy: readonly number[];
  /** 1 ÷ the number of tasks. */
  readonly chance: number;
  readonly tasks: number;
}

const higherIsBetter = (metric: 'accuracy' | 'nmse') => metric === 'accuracy';

/** The three diagnostics, sharing one set of sessions. */
export async function emergenceDiagnostics(engine: Backend, task: TaskConfig, options: EmergenceOptions = {}): Promise<{ hendel: HendelResult; masking: MaskingResult; probe: ProbeResult | null }> {
  if (!(engine instanceof GraphBackend)) throw new InputError(`the emergence diagnostics rebuild the model's graph with its attention masked, and ${engine.facts.file} is a foreign model`);
  const runner = new Runner(engine);
  const draw = drawQueries(task, options);
  return { hendel: await hendel(runner, task, draw), masking: await masking(runner, task, draw), probe: await probe(runner, task, options) };
}

// ---- the prompts ----------------------------------------------------------------------------

/** Each query with its own demo set and two dummy queries, all drawn as one run of examples. */
interface QuerySet {
  readonly tasks: Task[];
  /** [query, dummy₁, dummy₂, demo₁ … demo_k] per query. */
  readonly examples: Example[][];
  /** Whether query i is in the dev half (of its task). */
  readonly dev: boolean[];
  readonly shots: number;
}

function drawQueries(cfg: TaskConfig, options: EmergenceOptions): QuerySet {
  const rng = new Rng(options.seed ?? 11);
  const shots = options.shots ?? cfg.demos.max;
  const suite = suiteFor(cfg);
  const pool = options.tasks ?? universe(cfg).train;
  const perTask = options.queries ?? 32;
  const tasks: Task[] = [];
  if (pool) {
    for (const t of pool.slice(0, options.maxTasks ?? 16)) for (let i = 0; i < perTask; i++) tasks.push(t);
  } else {
    for (let i = 0; i < (options.freshQueries ?? 256); i++) tasks.push(suite.draw!(cfg, rng.fork(), -1));
  }
  // Discrete examples come out with distinct inputs (distinctInputs), so the dummies differ from x_q.
  const examples = tasks.map((t) => suite.examples(cfg, t, rng.fork(), shots + 3, undefined, {}));
  const dev = tasks.map((_, i) => (pool ? i % perTask < perTask / 2 : i % 2 === 0));
  return { tasks, examples, dev, shots };
}

const demosOf = (ex: Example[]) => ex.slice(3);

// ---- Hendel et al.'s protocol -----------------------------------------------------------------

async function hendel(runner: Runner, cfg: TaskConfig, q: QuerySet): Promise<HendelResult> {
  const L = runner.cfg.layers;
  const n = q.tasks.length;
  // Demo prompts: S then dummy 1, S then dummy 2; their last-position residuals at every layer.
  const dummyBatch = examplesBatch(cfg, [...q.tasks, ...q.tasks], [...q.examples.map((e) => [...demosOf(e), e[1]]), ...q.examples.map((e) => [...demosOf(e), e[2]])]);
  const base = await runner.last(dummyBatch);
  const D = runner.cfg.dModel;
  const theta = (l: number) => {
    const r = base[`resid.${l}`].data as Float32Array;
    const out = new Float32Array(n * D);
    for (let i = 0; i < n * D; i++) out[i] = (r[i] + r[n * D + i]) / 2;
    return out;
  };
  const zero = examplesBatch(cfg, q.tasks, q.examples.map((e) => [e[0]]));
  const icl = examplesBatch(cfg, q.tasks, q.examples.map((e) => [...demosOf(e), e[0]]));
  const zeroScores = scoreQueries(zero, (await runner.last(zero))['out.last'].data as Float32Array);
  const iclScores = scoreQueries(icl, (await runner.last(icl))['out.last'].data as Float32Array);
  const curves: QueryScores[] = [];
  for (let l = 0; l <= L; l++) curves.push(scoreQueries(zero, await runner.replaceLast(zero, l, theta(l))));
  const tv = curveOf(curves, q.dev);
  const metric = zeroScores.metric;
  const best = bestLayer(tv, metric);
  const [zs, ic] = [split(zeroScores, q.dev).test, split(iclScores, q.dev).test];
  return { metric, tv, best, icl: ic, zeroShot: zs, recovered: share(best.test, zs, ic), queries: n };
}

// ---- attention masking ------------------------------------------------------------------------

async function masking(runner: Runner, cfg: TaskConfig, q: QuerySet): Promise<MaskingResult> {
  const L = runner.cfg.layers;
  const icl = examplesBatch(cfg, q.tasks, q.examples.map((e) => [...demosOf(e), e[0]]));
  const zero = examplesBatch(cfg, q.tasks, q.examples.map((e) => [e[0]]));
  const all = new Array(icl.batch).fill(true);
  const masked: number[] = [];
  for (let l = 0; l <= L; l++) masked.push(split(scoreQueries(icl, await runner.masked(icl, l)), all).all);
  const zeroShot = split(scoreQueries(zero, (await runner.last(zero))['out.last'].data as Float32Array), all).all;
  const iclScore = masked[L];
  const readBy = masked.findIndex((m) => share(m, zeroShot, iclScore) >= 0.9);
  return { metric: icl.kind === 'tokens' ? 'accuracy' : 'nmse', masked, icl: iclScore, zeroShot, readBy: readBy < 0 ? L : readBy };
}

// ---- task probe -------------------------------------------------------------------------------

async function probe(runner: Runner, cfg: TaskConfig, options: EmergenceOptions): Promise<ProbeResult | null> {
  if (!options.tasks && !universe(cfg).train) return null;
  const tasks = (options.tasks ?? taskList(cfg, 'train')).slice(0, options.maxTasks ?? 16);
  if (tasks.length < 2) return null;
  const rng = new Rng((options.seed ?? 11) + 1);
  const per = 64;
  const batches: Batch[] = tasks.map((t) => sampleBatch(cfg, rng, per, { tasks: [t], demos: options.shots ?? cfg.demos.max }));
  const outs = [];
  for (const b of batches) outs.push(await runner.last(b));
  const L = runner.cfg.layers;
  const D = runner.cfg.dModel;
  const accuracy: number[] = [];
  for (let l = 0; l <= L; l++) {
    const train: number[][] = [];
    const trainY: number[][] = [];
    const test: { x: Float32Array; label: number }[] = [];
    outs.forEach((o, t) => {
      const r = o[`resid.${l}`].data as Float32Array;
      for (let i = 0; i < per; i++) {
        const x = r.subarray(i * D, (i + 1) * D);
        if (i % 2 === 0) {
          train.push(Array.from(x));
          trainY.push(tasks.map((_, k) => (k === t ? 1 : 0)));
        } else test.push({ x, label: t });
      }
    });
    const W = ridge(train, trainY, 1e-3);
    accuracy.push(test.filter(({ x, label }) => argmax(ridgePredict(W, x)) === label).length / test.length);
  }
  return { accuracy, chance: 1 / tasks.length, tasks: tasks.length };
}

// ---- scoring ----------------------------------------------------------------------------------

/** Mean of scores over all, dev and test queries (nMSE: summed squared error ÷ summed y²). */
function split(s: QueryScores, dev: readonly boolean[]): { all: number; dev: number; test: number } {
  const acc = { all: [0, 0], dev: [0, 0], test: [0, 0] };
  for (let i = 0; i < s.value.length; i++) {
    for (const k of ['all', dev[i] ? 'dev' : 'test'] as const) {
      acc[k][0] += s.value[i];
      acc[k][1] += s.metric === 'accuracy' ? 1 : s.y2[i];
    }
  }
  const mean = ([v, w]: number[]) => (w > 0 ? v / w : NaN);
  return { all: mean(acc.all), dev: mean(acc.dev), test: mean(acc.test) };
}

function curveOf(scores: readonly QueryScores[], dev: readonly boolean[]): Curve {
  const parts = scores.map((s) => split(s, dev));
  return { all: parts.map((p) => p.all), dev: parts.map((p) => p.dev), test: parts.map((p) => p.test) };
}

/** The layer with the best dev score among ℓ < `below` (every layer by default), and its scores. */
export function bestLayer(c: Curve, metric: 'accuracy' | 'nmse', below = c.dev.length): { layer: number; dev: number; test: number } {
  let layer = 0;
  for (let l = 1; l < below; l++) if (higherIsBetter(metric) ? c.dev[l] > c.dev[layer] : c.dev[l] < c.dev[layer]) layer = l;
  return { layer, dev: c.dev[layer], test: c.test[layer] };
}

// ---- the graphs ------------------------------------------------------------------------------


/**
 * The diagnostics' graphs, each opened once through the backend (which releases them when it
 * closes) and run over its batch in slices (Session.runSliced): one run over every query held a
 * full pass's activations for all of them (17 MB a query at 16 demos), and SIGTERM waited for it.
 */
class Runner {
  readonly cfg: ModelConfig;

  constructor(private readonly engine: GraphBackend) {
    this.cfg = engine.cfg;
  }

  /** `resid.ℓ` for ℓ = 0..L and `out.last`, at the last position. */
  async last(batch: Batch): Promise<Record<string, HostTensor>> {
    const s = await this.session('last', (g, inputs) => {
      const { output, hooks } = new Transformer(this.cfg, declareParams(g, this.cfg, null)).forward(inputs);
      for (let l = 0; l <= this.cfg.layers; l++) g.output(lastPosition(hooks.get(residualAtLayer(l).name)!), `resid.${l}`);
      g.output(lastPosition(output), 'out.last');
    });
    const outputs = [...Array.from({ length: this.cfg.layers + 1 }, (_, l) => `resid.${l}`), 'out.last'];
    return s.runSliced(batchFeeds(batch, false), outputs);
  }

  /** The output at the last position with that position's residual at layer ℓ replaced by theta [B, D]. */
  async replaceLast(batch: Batch, layer: number, theta: Float32Array): Promise<Float32Array> {
    const s = await this.session(`replace.${layer}`, (g, inputs) => {
      const th = g.input('theta', 'float32', ['batch', this.cfg.dModel]);
      const hook = residualAtLayer(layer).name;
      const { output } = new Transformer(this.cfg, declareParams(g, this.cfg, null)).forward(inputs, {
        intervene: (h, x) => (h.name === hook ? op.concat([op.slice(x, [0], [-1], [1]), op.unsqueeze(th, [1])], 1) : x),
      });
      g.output(lastPosition(output), 'out.last');
    });
    const out = await s.runSliced({ ...batchFeeds(batch, false), theta: { dtype: 'float32', shape: [batch.batch, this.cfg.dModel], data: theta } }, ['out.last']);
    return out['out.last'].data as Float32Array;
  }

  /** The output at the last position with its attention to the demos cut in blocks ℓ … L−1. */
  async masked(batch: Batch, layer: number): Promise<Float32Array> {
    const s = await this.session(`mask.${layer}`, (g, inputs) => {
      const allow = g.input('allow', 'float32', ['batch', 1, 'seq', 'seq']);
      const { output } = new Transformer(this.cfg, declareParams(g, this.cfg, null)).forward(inputs, {
        intervene: (h, x) => {
          if (h.kind !== 'attn.hook_pattern' || (h.layer ?? -1) < layer) return x;
          const kept = op.mul(x, allow); // [batch, head, q, k]
          return op.div(kept, op.add(op.reduceSum(kept, [3], true), 1e-9));
        },
      });
      g.output(lastPosition(output), 'out.last');
    });
    // allow[b, 0, q, k] = 1, except on the last row, where the demos (before the query's x) are 0.
    const [B, T] = [batch.batch, batch.seq];
    const allow = new Float32Array(B * T * T).fill(1);
    for (let b = 0; b < B; b++) {
      const queryStart = batch.queryPos[b] - batch.xOffset;
      const row = (b * T + (T - 1)) * T;
      for (let k = 0; k < queryStart; k++) allow[row + k] = 0;
    }
    const out = await s.runSliced({ ...batchFeeds(batch, false), allow: { dtype: 'float32', shape: [B, 1, T, T], data: allow } }, ['out.last']);
    return out['out.last'].data as Float32Array;
  }

  private session(key: string, build: (g: Graph, inputs: ReturnType<typeof modelInputs>) => void): Promise<Session> {
    return this.engine.graphSession(`emergence.${key}`, () => {
      const g = new Graph('float32');
      build(g, modelInputs(g, this.cfg));
      return g;
    });
  }
}
