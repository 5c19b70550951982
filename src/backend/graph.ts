/**
 * The graph backend of a tvlens checkpoint. `run` executes the checkpoint's own file (through a
 * FileBackend over the model decoded once at load; for weights without a file, the inference
 * graph rebuilt from them). The analyses run graphs rebuilt from its config and weights, and
 * answer the backend contract (backend.ts) three ways:
 *
 *   base     one full forward pass that keeps every layer's residual stream, keys and values
 *            (and attn.hook_z): everything a patched variant can reuse (engine-graphs.ts);
 *   patched  many patched *variants* of a base run at once, through the suffix forward
 *            (fast-path.ts): only positions from the first patched one onward, only layers
 *            from each variant's first patched layer upward;
 *   naive    one full forward pass per variant, with the patch written in by `intervene`: the
 *            reference the fast path is tested and benchmarked against.
 *
 * Layers follow LAYER_CONVENTION (contracts.ts).
 */
import { type LoadedCheckpoint, decodeModel } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import { type Graph, toOnnxBytes } from '../graph/index.js';
import { type ModelConfig, dHeadOf } from '../model/config.js';
import { type HookPoint, allHookPoints, residualAtLayer } from '../model/hooks.js';
import { inferenceGraph, outputName } from '../model/inference.js';
import { siteOrder } from '../model/suffix.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { type Backend, type ModelFacts, RangeInputError, type RunOptions, type RunResult, type Site, type Variant, checkLayer, checkPosition, forEachWrite, range, siteKey, writeValue } from './backend.js';
import { type BaseRun, type FastPathContext, FeedArena, runGroup, writesNothing } from './fast-path.js';
import { FileBackend } from './file.js';
import { type OnnxModel, checkpointModel } from './file-open.js';
import { baseGraph, naiveGraph, suffixGraph } from './graph-plans.js';

/** A model to analyse: its config and weights by parameter name. */
export interface ModelWeights {
  readonly cfg: ModelConfig;
  readonly params: ReadonlyMap<string, Float32Array>;
  /** sha256 of the weights, recorded in outputs. */
  readonly weightsSha256?: string;
}

export interface EngineOptions extends SessionOptions {
  /** Most suffix rows (prompts × variants × positions) per fast run; bounds memory. Default 16384. */
  readonly rowsPerRun?: number;
  /** Answer a variant that writes back the base run's own values with the base output. Default true; off for comparisons. */
  readonly skipUnchanged?: boolean;
}

export class GraphBackend implements Backend<BaseRun> {
  readonly cfg: ModelConfig;
  readonly facts: ModelFacts;
  /** Width of the output: vocab (logits) or dOut. */
  readonly outWidth: number;
  /** A checkpoint runs prompts at their own length. */
  readonly padTo = null;
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly fastPath: FastPathContext;
  /** What `run` executes: the checkpoint's file, opened on first use. */
  private file: Promise<FileBackend> | null = null;

  private constructor(
    readonly model: ModelWeights,
    private readonly options: EngineOptions,
    private readonly checkpoint: LoadedCheckpoint | null,
  ) {
    this.cfg = model.cfg;
    this.outWidth = model.cfg.output === 'logits' ? model.cfg.vocab : model.cfg.dOut;
    const cfg = model.cfg;
    this.facts = checkpoint
      ? checkpointModel(checkpoint).facts
      : {
          kind: 'tvlens',
          file: '(weights in memory)',
          manifest: null,
          modelHash: model.weightsSha256 ?? '',
          layers: cfg.layers,
          hooks: allHookPoints(cfg.layers, cfg.positional),
          tokenInput: cfg.input === 'tokens' ? 'tokens' : 'markers',
          output: outputName(cfg),
          maxSeq: cfg.positional === 'learned' ? cfg.maxSeq : null,
          staticSeq: null,
          folder: null,
        };
    this.fastPath = {
      cfg: this.cfg,
      outWidth: this.outWidth,
      rowsPerRun: options.rowsPerRun ?? 16384,
      session: (plan) => this.graphSession(`suffix:${JSON.stringify(plan)}`, () => suffixGraph(this.cfg, plan)),
      feeds: new FeedArena(),
    };
  }

  /** A backend over weights alone (tests, the bench): `run` executes the inference graph rebuilt from them. */
  static open(model: ModelWeights, options: EngineOptions = {}): GraphBackend {
    return new GraphBackend(model, options, null);
  }

  /** The backend of a loaded checkpoint: `run` executes its file, decoded once at load. */
  static fromCheckpoint(c: LoadedCheckpoint, options: EngineOptions = {}): GraphBackend {
    return new GraphBackend({ cfg: c.manifest.model, params: c.params, weightsSha256: c.manifest.weightsSha256 }, options, c);
  }

  hook(name: string): HookPoint {
    const h = this.facts.hooks.find((x) => x.name === name);
    if (!h) throw new InputError(`no hook '${name}' in ${this.facts.file}. Hooks: ${this.facts.hooks.map((x) => x.name).join(', ')}`);
    return h;
  }

  residual(layer: number): HookPoint {
    checkLayer(layer, this.cfg.layers);
    return this.hook(residualAtLayer(layer).name);
  }

  /** A checkpoint's hooks are tensors of their own names. */
  tensorOf(hook: string): string {
    return this.hook(hook).name;
  }

  async run(feeds: Readonly<Record<string, HostTensor>>, options: RunOptions = {}): Promise<RunResult> {
    this.file ??= FileBackend.over(this.checkpoint ? checkpointModel(this.checkpoint) : rebuilt(this.model, this.facts), this.options);
    return (await this.file).run(feeds, options);
  }

  get layers(): number {
    return this.cfg.layers;
  }

  get dims(): { dModel: number; heads: number } {
    return { dModel: this.cfg.dModel, heads: this.cfg.heads };
  }

  get modelInfo(): { config: ModelConfig; weightsSha256?: string } {
    return { config: this.cfg, weightsSha256: this.model.weightsSha256 };
  }

  /** Checks a residual layer (0..L) or z layer (0..L−1). */
  checkLayer(layer: number, kind: Site['kind'] = 'resid'): void {
    checkLayer(layer, this.cfg.layers, kind);
  }

  /** Checks that prompts of `seq` positions fit the model's context. */
  checkSeq(seq: number): void {
    if (this.cfg.positional === 'learned' && seq > this.cfg.maxSeq) {
      throw new InputError(`prompts of ${seq} positions are longer than the model's context of ${this.cfg.maxSeq} (learned positions); use fewer demos`);
    }
  }

  /** The output at the last position [B, O]: a plain forward pass. */
  async forward(feeds: Record<string, HostTensor>): Promise<Float32Array> {
    const s = await this.graphSession('base', () => baseGraph(this.cfg));
    const r = await s.runSliced({ ...feeds, at: atFeed(0) }, ['out.last'], { whole: ['at'] });
    return r['out.last'].data as Float32Array;
  }

  /** The residual at every layer at one position [B, L+1, D], and the output at the last position [B, O]. */
  async at(feeds: Record<string, HostTensor>, position: number): Promise<{ resid: Float32Array; last: Float32Array }> {
    const s = await this.graphSession('base', () => baseGraph(this.cfg));
    const r = await s.runSliced({ ...feeds, at: atFeed(position) }, ['at.resid', 'out.last'], { whole: ['at'] });
    return { resid: r['at.resid'].data as Float32Array, last: r['out.last'].data as Float32Array };
  }

  /** A full forward pass that keeps what patched variants reuse. */
  async base(feeds: Record<string, HostTensor>, options: { z?: boolean } = {}): Promise<BaseRun> {
    const L = this.cfg.layers;
    const s = await this.graphSession('base', () => baseGraph(this.cfg));
    const names = ['out.last', ...range(L + 1).map((l) => `resid.${l}`), ...range(L).flatMap((l) => [`k.${l}`, `v.${l}`, ...(options.z ? [`z.${l}`] : [])])];
    const r = await s.runSliced({ ...feeds, at: atFeed(0) }, names, { whole: ['at'] });
    const first = Object.values(feeds)[0];
    const get = (n: string) => r[n].data as Float32Array;
    return {
      batch: first.shape[0],
      seq: first.shape[1],
      resid: range(L + 1).map((l) => get(`resid.${l}`)),
      k: range(L).map((l) => get(`k.${l}`)),
      v: range(L).map((l) => get(`v.${l}`)),
      z: options.z ? range(L).map((l) => get(`z.${l}`)) : null,
      out: get('out.last'),
    };
  }

  /**
   * The output at the last position of each variant [B, O], computed through the suffix forward:
   * variants are grouped by their first patched position, and groups that start close together run
   * as one batch (`mergeNearbyStarts`).
   */
  async patched(base: BaseRun, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]> {
    const results: Float32Array[] = new Array(variants.length);
    const groups = new Map<number, number[]>();
    variants.forEach((v, i) => {
      this.checkVariant(v, base.seq);
      // A variant that writes back what is already there is the base run: ICL corruptions leave
      // most positions of the lower layers untouched, so whole rows of a patching grid are this.
      if (this.options.skipUnchanged !== false && writesNothing(v, base, this.cfg)) {
        results[i] = base.out.slice();
        return;
      }
      const start = Math.min(...v.map((p) => Math.min(...p.positions)));
      groups.set(start, [...(groups.get(start) ?? []), i]);
    });
    let done = variants.length - [...groups.values()].reduce((n, m) => n + m.length, 0);
    onProgress?.(done, variants.length);
    for (const [start, members] of mergeNearbyStarts(groups, base.seq, base.batch, this.fastPath.rowsPerRun)) {
      const out = await runGroup(this.fastPath, base, start, members.map((i) => variants[i]));
      members.forEach((vi, j) => (results[vi] = out[j]));
      done += members.length;
      onProgress?.(done, variants.length);
    }
    return results;
  }

  /** The same as `patched`, by one full forward pass per variant. */
  async patchedNaive(feeds: Record<string, HostTensor>, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]> {
    const first = Object.values(feeds)[0];
    const [B, T] = [first.shape[0], first.shape[1]];
    const out: Float32Array[] = [];
    for (const v of variants) {
      this.checkVariant(v, T);
      const sites = uniqueSites(v);
      const key = `naive:${sites.map(siteKey).join(',')}`;
      const s = await this.graphSession(key, () => naiveGraph(this.cfg, sites));
      const patchFeeds = naivePatchFeeds(this.cfg, v, sites, B, T);
      const r = await s.run({ ...feeds, ...patchFeeds }, ['out.last']);
      out.push(r['out.last'].data as Float32Array);
      onProgress?.(out.length, variants.length);
    }
    return out;
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
    this.fastPath.feeds.release();
    const file = this.file;
    this.file = null;
    if (file) await (await file.catch(() => null))?.close();
  }

  // ---- sessions -------------------------------------------------------------------------------

  /**
   * The session of a graph over this model's weights (bound as initializers), opened once per key
   * and released with the backend: the suffix and naive graphs here, and the analyses' own graphs
   * (attribution's gradients, the emergence diagnostics), so that only a backend opens sessions.
   */
  graphSession(key: string, build: () => Graph, options: SessionOptions = this.options): Promise<Session> {
    let s = this.sessions.get(key);
    if (!s) {
      s = Session.open(toOnnxBytes(build(), { paramData: this.model.params }), options);
      this.sessions.set(key, s);
    }
    return s;
  }

  // ---- the fast path ----------------------------------------------------------------------------

  private checkVariant(v: Variant, seq: number): void {
    if (v.length === 0) throw new InputError('a patched variant needs at least one patch');
    this.checkSeq(seq);
    for (const p of v) {
      this.checkLayer(p.site.layer, p.site.kind);
      for (const pos of p.positions) checkPosition(pos, seq);
      if (p.positions.length === 0) throw new InputError(`a patch at ${siteKey(p.site)} lists no positions`);
      if (p.head !== undefined && (p.site.kind !== 'z' || !Number.isInteger(p.head) || p.head < 0 || p.head >= this.cfg.heads)) {
        throw new RangeInputError(p.site.kind !== 'z' ? 'only z sites take a head' : `head ${p.head} is out of range: valid heads are 0..${this.cfg.heads - 1}`);
      }
    }
  }

}

/** The keep and add feeds of a naive pass [B, T(, H), 1 | width]: the sites' cells rewritten as x·keep + add. */
export function naivePatchFeeds(cfg: ModelConfig, v: Variant, sites: readonly Site[], B: number, T: number): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const site of sites) {
    const [rows, width] = site.kind === 'resid' ? [1, cfg.dModel] : [cfg.heads, dHeadOf(cfg)];
    const keep = new Float32Array(B * T * rows).fill(1);
    const add = new Float32Array(B * T * rows * width);
    for (const p of v.filter((q) => siteKey(q.site) === siteKey(site))) {
      const heads = site.kind === 'z' && p.head !== undefined ? [p.head] : range(rows);
      forEachWrite(p, 0, B, heads.length * width, (n, pos, value) => {
        heads.forEach((h, j) => {
          const cell = (n * T + pos) * rows + h;
          if (p.mode === 'replace') keep[cell] = 0;
          writeValue(add, cell * width, value, p.mode, j * width, width);
        });
      });
    }
    const shape = site.kind === 'resid' ? [B, T] : [B, T, rows];
    feeds[`keep.${siteKey(site)}`] = { dtype: 'float32', shape: [...shape, 1], data: keep };
    feeds[`add.${siteKey(site)}`] = { dtype: 'float32', shape: [...shape, width], data: add };
  }
  return feeds;
}

function uniqueSites(v: Variant): Site[] {
  const seen = new Map<string, Site>();
  for (const p of v) seen.set(siteKey(p.site), p.site);
  return [...seen.values()].sort((a, b) => siteOrder(a) - siteOrder(b));
}

/** The inference graph rebuilt from weights, as the model a FileBackend runs. */
function rebuilt(model: ModelWeights, facts: ModelFacts): OnnxModel {
  const { graph } = inferenceGraph(model.cfg, null);
  const proto = decodeModel(toOnnxBytes(graph, { paramData: model.params }), facts.file);
  const manifest = { format: 'tvlens-checkpoint/1', tvlensVersion: '', onnx: '', step: 0, seed: 0, model: model.cfg, task: null, metrics: {}, weightsSha256: facts.modelHash, output: facts.output, hooks: facts.hooks.map((h) => h.name) } as const;
  return { facts: { ...facts, manifest }, proto, tensorOfHook: new Map(facts.hooks.map((h) => [h.name, h.name])), inputs: graph.inputs.map((v) => v.name) };
}

const atFeed = (position: number): HostTensor => ({ dtype: 'int64', shape: [1], data: BigInt64Array.of(BigInt(position)) });

/**
 * Runs groups whose first positions lie close together as one, from the earliest: a variant that
 * starts later recomputes its few unchanged rows, which costs less than a run of its own (each run
 * has its fixed costs: feeds, fetches, ONNX Runtime's per-op work). A group joins the run before it
 * while its start is at most a quarter of its own suffix length after the run's start, and while
 * the run still fits in one batch of `rowsPerRun` rows (past that it is split anyway, and larger
 * runs only add rows). On a resid_pre sweep of the bench's model: 34 runs → 14, 0.88–0.91× the
 * time (an eighth: 18 runs, 0.91–0.92×; a half: 12 runs, 0.94×). Without the second condition,
 * exact patching of the bench's attribution grid (32 variants a position) took 1.0–1.45× the time.
 */
export function mergeNearbyStarts(groups: ReadonlyMap<number, readonly number[]>, seq: number, batch: number, rowsPerRun: number): [number, number[]][] {
  const runs: [number, number[]][] = [];
  for (const [start, members] of [...groups].sort((a, b) => a[0] - b[0])) {
    const last = runs[runs.length - 1];
    const fits = last && (last[1].length + members.length) * (seq - last[0]) * batch <= rowsPerRun;
    if (fits && (start - last[0]) * 4 <= seq - start) last[1].push(...members);
    else runs.push([start, [...members]]);
  }
  return runs;
}
