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
 * Cost: one forward pass over the source prompts (their activations) and one forward-plus-backward
 * pass over the base prompts, whose gradient at every hook comes out of one graph that tvlens's own
 * autodiff builds (`gradientGraph`). Exact patching (`exactCells`) costs one suffix pass per cell.
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
import { Graph, type Value, gradients, op, toOnnxBytes } from '../graph/index.js';
import { dHeadOf } from '../model/config.js';
import { hookPoint, residualAtLayer } from '../model/hooks.js';
import { Transformer, declareParams } from '../model/transformer.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { type Task, type TaskConfig, promptLength } from '../tasks/index.js';
import { checkRunsFit } from './guard.js';
import { modelInputs } from '../model/inputs.js';
import { analysisTasks } from './batches.js';
import { LAYER_CONVENTION, type Variant, promptFeeds, range } from '../backend/backend.js';
import type { GraphBackend } from '../backend/graph.js';
import { CORRUPTIONS, type Corruption, DIRECTIONS, DIRECTION_RUNS, type Direction, type PromptPair, checkPromptPair, positionLabels, promptPairs } from './patching.js';

export const ATTRIBUTION_SITES = ['resid_pre', 'resid_post', 'attn_out', 'mlp_out', 'z'] as const;
export type AttributionSite = (typeof ATTRIBUTION_SITES)[number];

/** A site whose estimate tracks exact patching worse than this (Pearson r) gets a warning. */
export const WEAK_R = 0.7;
/** A row (block, or block and head) whose estimates miss exact patching by more than this (normalised units) gets a warning. */
export const WEAK_ERROR = 0.25;
/** A row whose exact effects reach this, but whose estimate correlates with them worse than WEAK_R, gets a warning. */
export const WEAK_ROW_EFFECT = 0.1;

/** Every hook activation the attribution reads, per block, [B, T, width] (z: [B, T, H, dh]). */
interface Activations {
  /** resid[ℓ] for ℓ = 0..L (TV convention), [B, T, D]. */
  readonly resid: Float32Array[];
  readonly attnOut: Float32Array[];
  readonly mlpOut: Float32Array[];
  readonly z: Float32Array[];
  /** The output at the last position [B, O]. */
  readonly out: Float32Array;
}

type ActivationName = 'resid' | 'attnOut' | 'mlpOut' | 'z';
const ACTIVATIONS: readonly ActivationName[] = ['resid', 'attnOut', 'mlpOut', 'z'];

/** The hook value of one activation at layer `l` of a forward result. */
function hookValue(hooks: ReadonlyMap<string, Value>, name: ActivationName, l: number): Value {
  const hook =
    name === 'resid' ? residualAtLayer(l) : name === 'attnOut' ? hookPoint('hook_attn_out', l) : name === 'mlpOut' ? hookPoint('hook_mlp_out', l) : hookPoint('attn.hook_z', l);
  return hooks.get(hook.name)!;
}

/**
 * The forward pass with every residual, attn_out, mlp_out and z as outputs (`act.*`), and, with
 * `withGradient`, the gradient of metric = Σ_n Σ_j lin[n,j]·o[n,j] + quad[n,j]·o[n,j]² (o the output
 * at the last position) at each of them (`grad.*`). A logit difference is lin = ±1 at two tokens;
 * −(o − t)²/O is lin = 2t/O, quad = −1/O (plus a constant).
 *
 * Where a prompt's wrong token is the run's own favourite among the others (`metric.undecided` 1,
 * `metric.pick` −1e9 at the correct token), the graph picks it, so no extra pass is needed:
 * lin −= one-hot(argmax(o + pick)), as `metric.picked` [batch, O]. The weights are constants to the
 * gradient. Nodes whose values no output reads (the rules' weight gradients) are dropped.
 */
export function gradientGraph(cfg: GraphBackend['cfg'], withGradient: boolean): Graph {
  const g = new Graph('float32');
  const O = cfg.output === 'logits' ? cfg.vocab : cfg.dOut;
  const { output, hooks } = new Transformer(cfg, declareParams(g, cfg, null)).forward(modelInputs(g, cfg));
  const last = op.reshape(op.slice(output, [-1], [Infinity], [1]), [0, -1]); // [B, O]
  const values = ACTIVATIONS.flatMap((name) => range(name === 'resid' ? cfg.layers + 1 : cfg.layers).map((l) => ({ key: `${name}.${l}`, value: hookValue(hooks, name, l) })));
  values.forEach(({ key, value }) => g.output(value, `act.${key}`));
  g.output(last, 'out.last');
  if (withGradient) {
    const input = (name: string, width: number | string) => g.input(`metric.${name}`, 'float32', ['batch', width]);
    const [given, quad, pick, undecided] = [input('lin', O), input('quad', O), input('pick', O), input('undecided', 1)];
    const masked = op.add(op.detach(last), pick);
    const picked = op.mul(op.cast(op.equal(masked, op.reduceMax(masked, [1], true)), 'float32'), undecided); // [B, O]
    g.output(picked, 'metric.picked');
    const lin = op.detach(op.sub(given, picked));
    const metric = op.reduceSum(op.add(op.mul(last, lin), op.mul(op.mul(last, last), quad)), [0, 1]); // scalar
    const grads = gradients(metric, values.map((v) => v.value));
    values.forEach(({ key }, i) => g.output(grads[i], `grad.${key}`));
  }
  return pruned(g);
}

/** Drops the nodes no graph output depends on. */
function pruned(g: Graph): Graph {
  const live = new Set<Value>(g.outputs);
  const keep = g.nodes.map(() => false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const node = g.nodes[i];
    if (!node.outputs.some((o) => live.has(o))) continue;
    keep[i] = true;
    node.inputs.forEach((x) => live.add(x));
  }
  const kept = g.nodes.filter((_, i) => keep[i]);
  g.nodes.splice(0, g.nodes.length, ...kept);
  return g;
}

/**
 * Per-prompt metric weights, matching patching.ts's logit difference: +1 at the correct token, −1 at
 * the wrong one; where the wrong one is the corrupted run's favourite among the others, `undecided`
 * is 1 and the graph picks it from `pick` (or `resolve` does, from a corrupted output). Regression:
 * −(o − t)²/O as lin and quad.
 */
interface Metric {
  readonly lin: Float32Array;
  readonly quad: Float32Array;
  readonly pick: Float32Array;
  readonly undecided: Float32Array;
  /** Fixes the wrong tokens from `picked` [B, O] (the graph's one-hot pick) or from the corrupted run's output. */
  readonly resolve: (picked: Float32Array, fromOutput: boolean) => void;
  /** The metric per prompt of an output [B, O]; its mean over prompts is patching's `logitDiff`. */
  readonly of: (out: Float32Array) => Float64Array;
}

function metricFor(pair: PromptPair, O: number): Metric {
  const B = pair.clean.batch;
  const lin = new Float32Array(B * O);
  const quad = new Float32Array(B * O);
  const pick = new Float32Array(B * O);
  const undecided = new Float32Array(B);
  if (pair.clean.kind === 'tokens') {
    const wrong = [...pair.wrong];
    pair.correct.forEach((c, n) => {
      lin[n * O + c] += 1;
      if (Number.isNaN(wrong[n])) {
        undecided[n] = 1;
        pick[n * O + c] = -1e9;
      } else lin[n * O + wrong[n]] -= 1;
    });
    const resolve = (src: Float32Array, fromOutput: boolean) => {
      for (let n = 0; n < B; n++) {
        if (!undecided[n]) continue;
        const c = pair.correct[n];
        const row = src.subarray(n * O, (n + 1) * O);
        // As patching.ts: the corrupted run's favourite among the other tokens (first of any tie).
        let best = c === 0 ? 1 : 0;
        for (let j = 0; j < O; j++) if (j !== c && row[j] > row[best]) best = j;
        wrong[n] = best;
        if (fromOutput) {
          lin[n * O + best] -= 1;
          undecided[n] = 0;
          pick[n * O + c] = 0;
        }
      }
    };
    return { lin, quad, pick, undecided, resolve, of: (out) => Float64Array.from(range(B), (n) => out[n * O + pair.correct[n]] - out[n * O + wrong[n]]) };
  }
  const targets = pair.clean.targets as Float32Array; // vectors: [B, T, dOut]
  const target = (n: number, j: number) => targets[(n * pair.clean.seq + pair.clean.queryPos[n]) * O + j];
  for (let n = 0; n < B; n++) {
    for (let j = 0; j < O; j++) {
      lin[n * O + j] = (2 * target(n, j)) / O;
      quad[n * O + j] = -1 / O;
    }
  }
  return {
    lin,
    quad,
    pick,
    undecided,
    resolve: () => {},
    of: (out) =>
      Float64Array.from(range(B), (n) => {
        let se = 0;
        for (let j = 0; j < O; j++) se += (out[n * O + j] - target(n, j)) ** 2;
        return -se / O;
      }),
  };
}

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
   * Milliseconds: the attribution (two passes and the sums), exact patching of the same cells when
   * run, and building the attribution's two sessions (once per runner; 0 when already built).
   */
  readonly ms: { readonly attribution: number; readonly exact: number | null; readonly sessions: number };
  readonly warnings: readonly string[];
}

/**
 * Holds the two sessions attribution needs (activations; activations and gradients), so repeated
 * runs (the bench, a study) pay for building them once. Runs on the fast GraphBackend: it needs the
 * model's graph, which a foreign model does not give.
 */
export class AttributionRunner {
  private sessions: { act: Promise<Session>; grad: Promise<Session> } | null = null;

  /**
   * `options` default to one thread per session: the two passes run side by side on their own
   * cores, which beats two threads each taking turns (2.5× on a loaded 2-core machine).
   */
  constructor(
    readonly engine: GraphBackend,
    private readonly options: SessionOptions = { threads: 1 },
  ) {}

  private open(): { act: Promise<Session>; grad: Promise<Session> } {
    const { cfg, params } = this.engine.model;
    return (this.sessions ??= {
      act: Session.open(toOnnxBytes(gradientGraph(cfg, false), { paramData: params }), this.options),
      grad: Session.open(toOnnxBytes(gradientGraph(cfg, true), { paramData: params }), this.options),
    });
  }

  private async activations(feeds: Record<string, HostTensor>, extra: Record<string, HostTensor> | null): Promise<{ act: Activations; grad: Activations | null; picked: Float32Array | null }> {
    const { act, grad } = this.open();
    const s = await (extra ? grad : act);
    // Every output leads with the batch axis, and the metric is a sum over prompts: slices are exact.
    const r = await s.runSliced({ ...feeds, ...(extra ?? {}) }, s.outputNames);
    const L = this.engine.layers;
    const read = (prefix: string): Activations => ({
      resid: range(L + 1).map((l) => r[`${prefix}.resid.${l}`].data as Float32Array),
      attnOut: range(L).map((l) => r[`${prefix}.attnOut.${l}`].data as Float32Array),
      mlpOut: range(L).map((l) => r[`${prefix}.mlpOut.${l}`].data as Float32Array),
      z: range(L).map((l) => r[`${prefix}.z.${l}`].data as Float32Array),
      out: r['out.last'].data as Float32Array,
    });
    return { act: read('act'), grad: extra ? read('grad') : null, picked: extra ? (r['metric.picked'].data as Float32Array) : null };
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

    // ---- the attribution: a forward pass on the other run, a forward-and-backward on the base.
    // Building the two sessions is paid once per runner; it is timed apart from the passes.
    const ts = performance.now();
    const sessions = this.open();
    await Promise.all([sessions.act, sessions.grad]);
    const msSessions = performance.now() - ts;
    const t0 = performance.now();
    const cleanFeeds = promptFeeds(pair.clean);
    const corruptFeeds = promptFeeds(pair.corrupted);
    const baseFeeds = runs.base === 'clean' ? cleanFeeds : corruptFeeds;
    const otherFeeds = runs.base === 'clean' ? corruptFeeds : cleanFeeds;
    const metric = metricFor(pair, O);
    const feed = (a: Float32Array, w = O) => ({ dtype: 'float32' as const, shape: [B, w], data: a });
    const gradientRun = () =>
      this.activations(baseFeeds, {
        'metric.lin': feed(metric.lin),
        'metric.quad': feed(metric.quad),
        'metric.pick': feed(metric.pick),
        'metric.undecided': feed(metric.undecided, 1),
      });
    let other: Activations;
    let based: Awaited<ReturnType<typeof gradientRun>>;
    if (runs.base === 'clean') {
      // The corrupted run (the other one) picks the wrong tokens, so it runs first.
      other = (await this.activations(otherFeeds, null)).act;
      metric.resolve(other.out, true);
      based = await gradientRun();
    } else {
      // Independent passes: ONNX Runtime runs them side by side.
      const [o, b] = await Promise.all([this.activations(otherFeeds, null), gradientRun()]);
      [other, based] = [o.act, b];
    }
    const { act: base, grad, picked } = based;
    if (runs.base !== 'clean') metric.resolve(picked!, false);
    const clean = runs.base === 'clean' ? base : other;
    const corrupt = runs.base === 'clean' ? other : base;
    const source: Activations = runs.source === 'mean' ? meanActivations(clean, B) : runs.source === 'clean' ? clean : corrupt;
    const mean = (xs: Float64Array) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const ldClean = mean(metric.of(clean.out));
    const ldCorrupt = mean(metric.of(corrupt.out));
    const ldBase = runs.base === 'clean' ? ldClean : ldCorrupt;
    const normalise = (ld: number) => (ld - ldCorrupt) / (ldClean - ldCorrupt);
    const noEffect = !(Math.abs(ldClean - ldCorrupt) > 1e-9 * Math.max(1, Math.abs(ldClean)));

    // Per activation (each read once, however many grids share it): Σ over the cell's width of
    // (source − base)·grad, and the patch's relative size, per prompt and cell, summed over prompts.
    const sums = new Map<string, { dot: Float64Array; size: Float64Array }>();
    const reduce = (name: ActivationName, layer: number, width: number, stride: number) => {
      const key = `${name}.${layer}`;
      let r = sums.get(key);
      if (r) return r;
      const [src, at, g] = [source[name][layer], base[name][layer], grad![name][layer]];
      const per = stride / width; // cells per position: heads for z, else 1
      const dot = new Float64Array(T * per);
      const size = new Float64Array(T * per);
      for (let n = 0; n < B; n++) {
        for (let k = 0; k < T * per; k++) {
          const from = (n * T * per + k) * width;
          let dg = 0;
          let dd = 0;
          let aa = 0;
          for (let d = from; d < from + width; d++) {
            const delta = src[d] - at[d];
            dg += delta * g[d];
            dd += delta * delta;
            aa += at[d] * at[d];
          }
          dot[k] += dg;
          size[k] += aa > 0 ? Math.sqrt(dd / aa) : dd > 0 ? Infinity : 0;
        }
      }
      sums.set(key, (r = { dot, size }));
      return r;
    };
    const estimateOf = (c: Cell): { value: number; size: number } => {
      const r = reduce(c.name, c.layer, c.width, c.stride);
      const k = c.pos * (c.stride / c.width) + c.offset / c.width;
      return { value: normalise(ldBase + r.dot[k] / B), size: r.size[k] / B };
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
            const own = base.mlpOut[c.layer];
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

  async release(): Promise<void> {
    if (!this.sessions) return;
    const { act, grad } = this.sessions;
    this.sessions = null;
    await (await act).release();
    await (await grad).release();
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
  const runner = new AttributionRunner(engine);
  try {
    const r = await runner.run(pair, { ...options, direction, labels });
    return {
      ...r,
      convention: `${LAYER_CONVENTION}; rows here are blocks by their hook names`,
      corruption: pair.corruption,
      options: { tasks: tasks.map((t) => t.name), prompts: options.pairs ? pair.clean.batch : (options.prompts ?? 16), shots: pair.clean.demos, seed, sites: options.sites ?? ATTRIBUTION_SITES, exact: options.exact !== false, topK: options.topK ?? 10 },
    };
  } finally {
    await runner.release();
  }
}

function siteWarnings(site: AttributionSite, est: number[][], exact: number[][] | null, rows: readonly string[], size: number[][], r: number | null): string[] {
  const out: string[] = [];
  if (exact) {
    if (r === null) out.push(`${site}: exact patching is flat here, so the correlation is undefined; compare the maps by eye`);
    else if (r < WEAK_R) out.push(`${site}: attribution tracks exact patching weakly (r = ${r.toFixed(2)}): read this map as a hint, not a measurement`);
    rows.forEach((row, i) => {
      const worst = Math.max(...est[i].map((e, j) => Math.abs(e - exact[i][j])));
      if (worst > WEAK_ERROR) out.push(`${row}: attribution misses exact patching by up to ${worst.toFixed(2)} (normalised): the patch is too large, or sits at a saturated nonlinearity, for a linear estimate`);
      else {
        // Smaller misses that still lose the row's pattern (typically the embeddings, where a patch swaps a token).
        const big = Math.max(...exact[i].map(Math.abs));
        const rr = pearson(est[i], exact[i]);
        const scale = est[i].reduce((a, e) => a + Math.abs(e), 0) / exact[i].reduce((a, e) => a + Math.abs(e), 0);
        if (big < WEAK_ROW_EFFECT) return;
        if (rr === null || rr < WEAK_R) out.push(`${row}: attribution misses this row's pattern (row r = ${rr === null ? 'undefined' : rr.toFixed(2)}; exact effects up to ${big.toFixed(2)})`);
        else if (scale < 0.5 || scale > 2) out.push(`${row}: attribution has the pattern (row r = ${rr.toFixed(2)}) but ${scale < 1 ? `${(1 / scale).toFixed(1)}× too small` : `${scale.toFixed(1)}× too large`}: a saturated nonlinearity between this site and the answer`);
      }
    });
  } else {
    // No exact run to compare with: flag where the approximation is known to be poor.
    if (site === 'resid_pre') out.push(`${rows[0]}: patches of the embeddings swap token identities, where attribution is least reliable`);
    rows.forEach((row, i) => {
      const big = Math.max(...size[i].filter(Number.isFinite), 0);
      if (big > 1) out.push(`${row}: patches as large as the activation itself (‖Δ‖/‖a‖ up to ${big.toFixed(1)}): attribution is unreliable for them; check with exact patching`);
    });
  }
  return out;
}

/** The mean over prompts of every activation, for every prompt (mean ablation's source). */
function meanActivations(a: Activations, B: number): Activations {
  const mean = (x: Float32Array) => {
    const per = x.length / B;
    const m = new Float64Array(per);
    for (let n = 0; n < B; n++) for (let i = 0; i < per; i++) m[i] += x[n * per + i];
    const out = new Float32Array(x.length);
    for (let n = 0; n < B; n++) for (let i = 0; i < per; i++) out[n * per + i] = m[i] / B;
    return out;
  };
  return { resid: a.resid.map(mean), attnOut: a.attnOut.map(mean), mlpOut: a.mlpOut.map(mean), z: a.z.map(mean), out: a.out };
}

/** Pearson's r; null when either side is constant. */
export function pearson(a: readonly number[], b: readonly number[]): number | null {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let [sab, saa, sbb] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : null;
}

/** The share of the k cells largest in |a| that are also among the k largest in |b|. */
export function topKOverlap(a: readonly number[], b: readonly number[], k: number): number {
  const top = (xs: readonly number[]) => new Set(range(xs.length).sort((i, j) => Math.abs(xs[j]) - Math.abs(xs[i]) || i - j).slice(0, k));
  const [ta, tb] = [top(a), top(b)];
  return [...ta].filter((i) => tb.has(i)).length / k;
}
