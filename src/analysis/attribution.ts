/**
 * Attribution patching (Nanda 2023; Syed et al. 2023): a linear estimate of every activation
 * patch at once. For a cell (a site, a position, perhaps a head),
 *
 *   metric(patched) − metric(base) ≈ (source − base activation) · ∂metric/∂activation,
 *
 * with the gradient taken on the base run. The metric is the one exact patching scores
 * (patching.ts): the logit difference correct − wrong at the query (tokens), or −MSE against the
 * clean target (regression), so the estimates land on the same normalised scale, (patched −
 * corrupted) / (clean − corrupted).
 *
 * Cost: one run of one graph (`attributionGraph`): a forward pass over the source prompts and a
 * forward-plus-backward pass over the base prompts, the gradient at every hook from tvlens's own
 * autodiff, and the sums above per prompt and cell. Exact patching costs one suffix pass per cell.
 *
 * Grids (rows × columns):
 *   resid_pre, resid_post   blocks × positions     blocks.{l}.hook_resid_pre / hook_resid_post
 *   attn_out, mlp_out       blocks × positions     blocks.{l}.hook_attn_out / hook_mlp_out
 *   z                       (block, head) × positions   blocks.{l}.attn.hook_z[head]
 *
 * Exact counterparts through the GraphBackend: resid_pre l is residual layer l, resid_post l is layer
 * l+1; attn_out is every head's z at the position (attn_out = z·W_O + b_O, so the patch is the
 * same); mlp_out adds (source − base) mlp_out to residual layer l+1 at the position (nothing else
 * in block l reads it).
 */
import { InputError } from '../errors.js';
import { dHeadOf } from '../model/config.js';
import { hookPoint } from '../model/hooks.js';
import type { HostTensor, Session, SessionOptions } from '../runtime/session.js';
import { type Task, type TaskConfig, promptLength } from '../tasks/index.js';
import { ACTIVATIONS, type Activations, type ActivationName, type SourceKind, activationGraph, attributionGraph, meanActivations, metricFor } from './attribution-graph.js';
import { pearson, siteWarnings, topKOverlap } from './attribution-stats.js';
import { checkRunsFit } from './guard.js';
import { analysisTasks } from './batches.js';
import { LAYER_CONVENTION, type Variant, promptFeeds, range } from '../backend/backend.js';
import type { GraphBackend } from '../backend/graph.js';
import { CORRUPTIONS, type Corruption, DIRECTIONS, DIRECTION_RUNS, type Direction, type PromptPair, checkPromptPair, positionLabels, promptPairs } from './patching.js';

export const ATTRIBUTION_SITES = ['resid_pre', 'resid_post', 'attn_out', 'mlp_out', 'z'] as const;
export type AttributionSite = (typeof ATTRIBUTION_SITES)[number];

/** One grid: the attribution estimate per cell, and, when validated, exact patching beside it. */
export interface AttributionGrid {
  readonly site: AttributionSite;
  readonly hook: string;
  readonly rows: readonly string[];
  readonly columns: readonly string[];
  /** The estimate of the normalised score, (patched − corrupted) / (clean − corrupted). */
  readonly estimate: number[][];
  /** Exact patching's normalised score per cell; null when not run. */
  readonly exact: number[][] | null;
  /** Mean over prompts of ‖source − base‖ / ‖base‖ per cell: large patches are where the linear estimate fails first. */
  readonly patchSize: number[][];
  /** Pearson r between estimate and exact over the grid's cells; null without exact (or with a constant grid). */
  readonly pearson: number | null;
  /** |top-k cells by |estimate|  ∩  top-k by |exact|| / k; null without exact. */
  readonly topKOverlap: number | null;
  readonly warnings: readonly string[];
}

export interface AttributionOptions {
  /** Grids to estimate. Default: all of ATTRIBUTION_SITES. */
  readonly sites?: readonly AttributionSite[];
  /** Default 'denoising'. */
  readonly direction?: Direction;
  /** Default 'other-task'. */
  readonly corruption?: Corruption;
  /** Tasks of this split (default 'train'), or these tasks; at most maxTasks of them (default 8). */
  readonly split?: 'train' | 'heldout';
  readonly tasks?: readonly Task[];
  readonly maxTasks?: number;
  /** Prompt pairs per task. Default 16. */
  readonly prompts?: number;
  /** Demos per prompt. Default: the task config's demos.max. */
  readonly shots?: number;
  readonly seed?: number;
  /** Also run exact patching on every cell, and compare. Default true. */
  readonly exact?: boolean;
  /** k of the top-k overlap. Default 10 (at most the grid's cells). */
  readonly topK?: number;
  /** Estimate on these prompt pairs instead of drawing them from the task config (a prompts file; see patching's `promptPairsFrom`). */
  readonly pairs?: PromptPair;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface AttributionResult {
  /** 'attribution': its own kind of output (the report draws it beside exact patching). */
  readonly analysis: 'attribution';
  readonly method: 'attribution';
  readonly convention: string;
  readonly direction: Direction;
  readonly corruption: PromptPair['corruption'];
  readonly options: Readonly<Record<string, unknown>>;
  /** Mean metric (patching's logitDiff) of the clean and corrupted runs. */
  readonly clean: number;
  readonly corrupted: number;
  readonly grids: readonly AttributionGrid[];
  /** Cells estimated, over every grid. */
  readonly cells: number;
  /**
   * Milliseconds: the attribution (its graph's run and the sums over prompts), exact patching of the
   * same cells when run, and building the attribution's session (once per backend; 0 when built).
   */
  readonly ms: { readonly attribution: number; readonly exact: number | null; readonly sessions: number };
  readonly warnings: readonly string[];
}

/**
 * Runs attribution on a GraphBackend (it needs the model's graph, which a foreign model does not
 * give), through the backend's sessions of its graphs (the attribution; the activations, for exact
 * patching and mean ablation): built once per backend, so repeated runs pay for them once.
 */
export class AttributionRunner {
  /**
   * `options` default to every session's thread count ($TVLENS_THREADS, else one per core).
   */
  constructor(
    readonly engine: GraphBackend,
    private readonly options: SessionOptions = {},
  ) {}

  /** The session of the graph that computes the whole attribution (`attributionGraph`). */
  private attribution(source: SourceKind, corrupted: 'base' | 'other'): Promise<Session> {
    // The backend keeps each session by its key: asking again costs nothing. One run of ~700 ops that
    // runs alone: its threads spin between them (0.8× its time alone, docs/bench.md).
    const options = { spinWithinRun: true, ...this.options };
    return this.engine.graphSession(`attribution.${source}.${corrupted}`, () => attributionGraph(this.engine.cfg, source, corrupted), options);
  }

  /** Every activation of a forward pass: exact patching's sources, and mean ablation's. */
  private async activations(feeds: Record<string, HostTensor>): Promise<Activations> {
    const s = await this.engine.graphSession('attribution.act', () => activationGraph(this.engine.cfg), this.options);
    // Every output leads with the batch axis: slices are exact.
    const r = await s.runSliced(feeds, s.outputNames);
    const L = this.engine.layers;
    const read = (name: string, count: number) => range(count).map((l) => r[`act.${name}.${l}`].data as Float32Array);
    return { resid: read('resid', L + 1), attnOut: read('attnOut', L), mlpOut: read('mlpOut', L), z: read('z', L), out: r['out.last'].data as Float32Array };
  }

  /**
   * Estimates every cell of `sites` on a prompt pair, for a direction (which run is patched, and
   * from where), and with `exact`, runs exact patching on the same cells through the engine.
   */
  async run(
    pair: PromptPair,
    options: { sites?: readonly AttributionSite[]; direction?: Direction; exact?: boolean; topK?: number; labels?: readonly string[]; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<Omit<AttributionResult, 'options' | 'convention' | 'corruption'>> {
    const sites = [...(options.sites ?? ATTRIBUTION_SITES)];
    for (const s of sites) if (!ATTRIBUTION_SITES.includes(s)) throw new InputError(`unknown attribution site '${s}'. Should be one of: ${ATTRIBUTION_SITES.join(', ')}`);
    const direction = options.direction ?? 'denoising';
    if (!DIRECTIONS.includes(direction)) throw new InputError(`unknown direction '${direction}'. Should be one of: ${DIRECTIONS.join(', ')}`);
    const runs = DIRECTION_RUNS[direction];
    const engine = this.engine;
    engine.checkSeq(pair.clean.seq);
    const cfg = engine.cfg;
    const [L, H, dh, D, O] = [cfg.layers, cfg.heads, dHeadOf(cfg), cfg.dModel, engine.outWidth];
    const [B, T] = [pair.clean.batch, pair.clean.seq];

    // Cells: per site a list of (activation, layer, position, offset within the row, width).
    interface Cell {
      readonly name: ActivationName;
      readonly layer: number;
      readonly pos: number;
      readonly offset: number;
      readonly width: number;
      readonly stride: number;
    }
    const layout = (site: AttributionSite): { cells: Cell[]; rows: string[]; hook: string } => {
      const perPos = (name: ActivationName, layerOf: (b: number) => number, stride: number, hook: (b: number) => string) => ({
        cells: range(L).flatMap((b) => range(T).map((pos) => ({ name, layer: layerOf(b), pos, offset: 0, width: stride, stride }))),
        rows: range(L).map(hook),
      });
      switch (site) {
        case 'resid_pre':
          return { ...perPos('resid', (b) => b, D, (b) => hookPoint('hook_resid_pre', b).name), hook: 'blocks.{l}.hook_resid_pre' };
        case 'resid_post':
          return { ...perPos('resid', (b) => b + 1, D, (b) => hookPoint('hook_resid_post', b).name), hook: 'blocks.{l}.hook_resid_post' };
        case 'attn_out':
          return { ...perPos('attnOut', (b) => b, D, (b) => hookPoint('hook_attn_out', b).name), hook: 'blocks.{l}.hook_attn_out' };
        case 'mlp_out':
          return { ...perPos('mlpOut', (b) => b, D, (b) => hookPoint('hook_mlp_out', b).name), hook: 'blocks.{l}.hook_mlp_out' };
        case 'z':
          return {
            cells: range(L).flatMap((b) => range(H).flatMap((h) => range(T).map((pos) => ({ name: 'z' as const, layer: b, pos, offset: h * dh, width: dh, stride: H * dh })))),
            rows: range(L).flatMap((b) => range(H).map((h) => `${hookPoint('attn.hook_z', b).name}[head ${h}]`)),
            hook: 'blocks.{l}.attn.hook_z',
          };
      }
    };
    const plans = sites.map((site) => ({ site, ...layout(site) }));
    // k of the top-k overlap: at or beyond a site's cell count every overlap is trivially 1.
    for (const p of plans) {
      if (options.topK !== undefined && options.topK >= p.cells.length) {
        throw new InputError(`top-k ${options.topK} is not below the ${p.cells.length} cells of site ${p.site}: every overlap would be 1; give at most ${p.cells.length - 1}`);
      }
    }
    if (options.exact !== false) options.onProgress?.(0, plans.reduce((n, p) => n + p.cells.length, 0)); // a bar before the passes, which take a while on many prompts

    // ---- the attribution: one graph runs the other run forward and the base run forward and
    // backward, and sums (source − base)·gradient per prompt and cell. Building its session is paid
    // once per backend; it is timed apart from the run.
    const ts = performance.now();
    const sourceKind: SourceKind = runs.source === 'mean' ? 'given' : 'other';
    const session = await this.attribution(sourceKind, runs.base === 'clean' ? 'other' : 'base');
    const msSessions = performance.now() - ts;
    const t0 = performance.now();
    const cleanFeeds = promptFeeds(pair.clean);
    const corruptFeeds = promptFeeds(pair.corrupted);
    const baseFeeds = runs.base === 'clean' ? cleanFeeds : corruptFeeds;
    const otherFeeds = runs.base === 'clean' ? corruptFeeds : cleanFeeds;
    const metric = metricFor(pair, O);
    const feed = (a: Float32Array, w = O) => ({ dtype: 'float32' as const, shape: [B, w], data: a });
    const feeds: Record<string, HostTensor> = {
      ...baseFeeds,
      ...Object.fromEntries(Object.entries(otherFeeds).map(([k, t]) => [`other.${k}`, t])),
      'metric.lin': feed(metric.lin),
      'metric.quad': feed(metric.quad),
      'metric.pick': feed(metric.pick),
      'metric.undecided': feed(metric.undecided, 1),
    };
    // Mean ablation: the mean over prompts of the base (clean) run's activations.
    const baseActs = runs.source === 'mean' ? await this.activations(baseFeeds) : null;
    const meanSource = baseActs ? meanActivations(baseActs, B) : null;
    if (meanSource) {
      for (const name of ACTIVATIONS) meanSource[name].forEach((a, l) => (feeds[`source.${name}.${l}`] = { dtype: 'float32', shape: [B, T, ...(name === 'z' ? [H, dh] : [D])], data: a }));
    }
    const r = await session.runSliced(feeds, session.outputNames);
    metric.resolve(r['metric.picked'].data as Float32Array, false);
    const [baseOut, otherOut] = [r['out.last'].data as Float32Array, r['other.out.last'].data as Float32Array];
    const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ldClean = mean(metric.of(runs.base === 'clean' ? baseOut : otherOut));
    const ldCorrupt = mean(metric.of(runs.base === 'clean' ? otherOut : baseOut));
    const ldBase = runs.base === 'clean' ? ldClean : ldCorrupt;
    const normalise = (ld: number) => (ld - ldCorrupt) / (ldClean - ldCorrupt);
    const noEffect = !(Math.abs(ldClean - ldCorrupt) > 1e-9 * Math.max(1, Math.abs(ldClean)));

    // Per activation, summed over prompts: the estimate's dot product and the patch's relative size, per cell.
    const sums = new Map<string, { dot: Float64Array; size: Float64Array }>();
    const reduce = (name: ActivationName, layer: number) => {
      const key = `${name}.${layer}`;
      let got = sums.get(key);
      if (got) return got;
      const [dot, dd, aa] = ['dot', 'delta2', 'base2'].map((k) => r[`${k}.${key}`].data as Float32Array);
      const per = dot.length / B;
      sums.set(key, (got = { dot: new Float64Array(per), size: new Float64Array(per) }));
      for (let n = 0; n < B; n++) {
        for (let k = 0; k < per; k++) {
          const i = n * per + k;
          got.dot[k] += dot[i];
          got.size[k] += aa[i] > 0 ? Math.sqrt(dd[i] / aa[i]) : dd[i] > 0 ? Infinity : 0;
        }
      }
      return got;
    };
    const estimateOf = (c: Cell): { value: number; size: number } => {
      const got = reduce(c.name, c.layer);
      const k = c.pos * (c.stride / c.width) + c.offset / c.width;
      return { value: normalise(ldBase + got.dot[k] / B), size: got.size[k] / B };
    };
    const estimates = plans.map((p) => p.cells.map(estimateOf));
    const msAttribution = performance.now() - t0;

    // ---- exact patching of the same cells, through the engine's suffix forward.
    let exact: number[] | null = null;
    let msExact: number | null = null;
    if (options.exact !== false) {
      const t1 = performance.now();
      const needZ = sites.includes('z') || sites.includes('attn_out');
      const baseRun = await engine.base(baseFeeds, { z: needZ });
      // The patches' values: the other run's activations, or their mean; an mlp_out cell also subtracts the base's own.
      const source = meanSource ?? (await this.activations(otherFeeds));
      const base = sites.includes('mlp_out') ? (baseActs ?? (await this.activations(baseFeeds))) : null;
      const variantOf = (c: Cell): Variant => {
        const src = source[c.name][c.layer];
        const at = (n: number) => (n * T + c.pos) * c.stride + c.offset;
        switch (c.name) {
          case 'resid':
            return [{ site: { kind: 'resid', layer: c.layer }, positions: [c.pos], mode: 'replace', value: (n) => src.subarray(at(n), at(n) + c.width) }];
          case 'attnOut': {
            const z = source.z[c.layer];
            const w = H * dh;
            return [{ site: { kind: 'z', layer: c.layer }, positions: [c.pos], mode: 'replace', value: (n) => z.subarray((n * T + c.pos) * w, (n * T + c.pos + 1) * w) }];
          }
          case 'mlpOut': {
            const own = base!.mlpOut[c.layer];
            return [{ site: { kind: 'resid', layer: c.layer + 1 }, positions: [c.pos], mode: 'add', value: (n) => Float32Array.from({ length: D }, (_, d) => src[at(n) + d] - own[at(n) + d]) }];
          }
          case 'z':
            return [{ site: { kind: 'z', layer: c.layer }, head: c.offset / dh, positions: [c.pos], mode: 'replace', value: (n) => src.subarray(at(n), at(n) + c.width) }];
        }
      };
      const all = plans.flatMap((p) => p.cells.map(variantOf));
      const outs = await engine.patched(baseRun, all, options.onProgress);
      exact = outs.map((o) => normalise(mean(metric.of(o))));
      msExact = performance.now() - t1;
    }

    const labels = options.labels ?? range(T).map(String);
    let offset = 0;
    const grids: AttributionGrid[] = plans.map((p, i) => {
      const C = p.cells.length;
      const est = estimates[i].map((e) => e.value);
      const ex = exact ? exact.slice(offset, offset + C) : null;
      offset += C;
      const grid = (xs: readonly number[]) => range(p.rows.length).map((r) => xs.slice(r * T, (r + 1) * T));
      const k = Math.min(options.topK ?? 10, C);
      // Clean and corrupted alike (identical prompts): no effect to normalise by, nothing to compare.
      if (noEffect) {
        const none = est.map(() => NaN);
        return { site: p.site, hook: p.hook, rows: p.rows, columns: labels, estimate: grid(none), exact: ex ? grid(none) : null, patchSize: grid(estimates[i].map((e) => e.size)), pearson: null, topKOverlap: null, warnings: [`${p.site}: the clean and corrupted prompts give the same metric (${ldClean.toFixed(4)}), so there is no effect to attribute`] };
      }
      const r = ex ? pearson(est, ex) : null;
      const overlap = ex ? topKOverlap(est, ex, k) : null;
      const warnings = siteWarnings(p.site, grid(est), ex ? grid(ex) : null, p.rows, grid(estimates[i].map((e) => e.size)), r);
      return { site: p.site, hook: p.hook, rows: p.rows, columns: labels, estimate: grid(est), exact: ex ? grid(ex) : null, patchSize: grid(estimates[i].map((e) => e.size)), pearson: r, topKOverlap: overlap, warnings };
    });
    return {
      analysis: 'attribution',
      method: 'attribution',
      direction,
      clean: ldClean,
      corrupted: ldCorrupt,
      grids,
      cells: grids.reduce((n, g) => n + g.rows.length * g.columns.length, 0),
      ms: { attribution: msAttribution, exact: msExact, sessions: msSessions },
      warnings: grids.flatMap((g) => g.warnings),
    };
  }

}

/** Runs attribution patching on ICL prompt pairs: the preset `patch --method attribution` calls. */
export async function attributionPatch(engine: GraphBackend, cfg: TaskConfig | null, options: AttributionOptions = {}): Promise<AttributionResult> {
  const direction = options.direction ?? 'denoising';
  const corruption = options.corruption ?? 'other-task';
  if (!CORRUPTIONS.includes(corruption)) throw new InputError(`unknown corruption '${corruption}'. Should be one of: ${CORRUPTIONS.join(', ')}`);
  if (options.topK !== undefined && (!Number.isInteger(options.topK) || options.topK < 1)) throw new InputError(`top-k must be an integer ≥ 1, got ${options.topK}`);
  const seed = options.seed ?? 0;
  if (!options.pairs && !cfg) throw new InputError('attribution patching needs a task config or given prompt pairs');
  const tasks = options.pairs ? [] : options.tasks ? [...options.tasks] : analysisTasks(cfg!, options.split ?? 'train', options.maxTasks ?? 8, seed);
  if (!options.pairs) {
    // Activations and gradients of the base run, activations of the other, and exact patching's base run.
    const count = { prompts: tasks.length * (options.prompts ?? 16), seq: promptLength(cfg!, options.shots ?? cfg!.demos.max), perBlock: 4, count: 4 };
    checkRunsFit(engine, 'attribution patching', count, 'lower prompts or maxTasks');
  }
  const pair = options.pairs ? checkPromptPair(options.pairs) : promptPairs(cfg!, tasks, { count: options.prompts ?? 16, shots: options.shots, corruption, seed });
  const T = pair.clean.seq;
  // Given pairs have no task layout to name positions by: their tokens (or indices) label them.
  const labels = cfg && !options.pairs ? positionLabels(cfg, pair.clean) : range(T).map((p) => (pair.clean.kind === 'tokens' ? `${p}(${pair.clean.tokens[p]})` : String(p)));
  const r = await new AttributionRunner(engine).run(pair, { ...options, direction, labels });
  return {
    ...r,
    convention: `${LAYER_CONVENTION}; rows here are blocks by their hook names`,
    corruption: pair.corruption,
    options: { tasks: tasks.map((t) => t.name), prompts: options.pairs ? pair.clean.batch : (options.prompts ?? 16), shots: pair.clean.demos, seed, sites: options.sites ?? ATTRIBUTION_SITES, exact: options.exact !== false, topK: options.topK ?? 10 },
  };
}
