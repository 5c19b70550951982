/**
 * The patching engine that task-vector search and activation patching share. It rebuilds a
 * tvlens model from its config and weights and runs it three ways:
 *
 *   base     one full forward pass that keeps every layer's residual stream, keys and values
 *            (and attn.hook_z): everything a patched variant can reuse;
 *   patched  many patched *variants* of a base run at once, through the suffix forward
 *            (model/suffix.ts): only positions from the first patched one onward, only layers
 *            from each variant's first patched layer upward;
 *   naive    one full forward pass per variant, with the patch written in by `intervene`: the
 *            reference the fast path is tested and benchmarked against.
 *
 * Layers follow the task-vector convention: residual layer ℓ is the stream entering block ℓ
 * (ℓ = 0 the embeddings, `blocks.0.hook_resid_pre`; ℓ ≥ 1 `blocks.{ℓ-1}.hook_resid_post`; ℓ = L
 * the final stream). A z site at layer ℓ is `blocks.{ℓ}.attn.hook_z`.
 */
import type { LoadedCheckpoint } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import { Graph, type Value, op, toOnnxBytes } from '../graph/index.js';
import { type ModelConfig, dHeadOf } from '../model/config.js';
import { hookPoint, residualAtLayer } from '../model/hooks.js';
import { type EntrySite, type SuffixPlan, activeAt, siteOrder, suffixForward } from '../model/suffix.js';
import { Transformer, declareParams } from '../model/transformer.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import type { Batch } from '../tasks/index.js';
import { modelInputs } from '../model/inputs.js';
import { batchFeeds } from '../tasks/feeds.js';

/** A layer, position or head outside the model or the prompt; the message gives the valid range. */
export class RangeInputError extends InputError {
  override name = 'RangeInputError';
}

/** A model to analyse: its config and weights by parameter name. */
export interface ModelWeights {
  readonly cfg: ModelConfig;
  readonly params: ReadonlyMap<string, Float32Array>;
  /** sha256 of the weights, recorded in outputs. */
  readonly weightsSha256?: string;
}

export const fromCheckpoint = (c: LoadedCheckpoint): ModelWeights => ({ cfg: c.manifest.model, params: c.params, weightsSha256: c.manifest.weightsSha256 });

export const LAYER_CONVENTION =
  'layer ℓ = the residual stream entering block ℓ: ℓ = 0 is the embeddings (blocks.0.hook_resid_pre), ℓ ≥ 1 is blocks.{ℓ-1}.hook_resid_post, ℓ = L the final stream';

/** Where a patch writes: the residual stream at layer ℓ (0..L), or block ℓ's attn.hook_z (0..L−1). */
export type Site = EntrySite;

/** One write into a run. */
export interface SitePatch {
  readonly site: Site;
  /** Positions written, in the prompt. */
  readonly positions: readonly number[];
  /** z sites: the head written; absent for all heads. */
  readonly head?: number;
  /** 'replace' the activation, or 'add' to it. */
  readonly mode: 'replace' | 'add';
  /**
   * The vector written for prompt n at positions[i]: d_model floats (resid), d_head (z, one head)
   * or heads·d_head (z, all heads); null leaves that prompt as it is (a patch for some prompts only).
   */
  readonly value: (n: number, i: number) => ArrayLike<number> | null;
}

/** A patched variant of a base run: its patches, all applied. */
export type Variant = readonly SitePatch[];

/** What the analyses read of a base run. Layouts as in TransformerLens. */
export interface AnalysisRun {
  readonly batch: number;
  readonly seq: number;
  /** resid[ℓ] [B, T, D] for ℓ = 0..L. */
  readonly resid: readonly Float32Array[];
  /** z[ℓ] [B, T, H, dh] for each block, when asked for. */
  readonly z: readonly Float32Array[] | null;
  /** The output at the last position [B, vocab | dOut]. */
  readonly out: Float32Array;
}

/** The fast engine's base run: also the keys and values its patched variants reuse. */
export interface BaseRun extends AnalysisRun {
  /** q[ℓ], k[ℓ], v[ℓ] [B, H, T, dh] for each block (after rotary). */
  readonly q: readonly Float32Array[];
  readonly k: readonly Float32Array[];
  readonly v: readonly Float32Array[];
}

/**
 * What task-vector search, patching and locality ask of a model. `Engine` answers it for a tvlens
 * checkpoint through the suffix forward; `SourceEngine` (source-engine.ts) for any model with a
 * hook map, one full forward pass per variant. `Run` is the engine's own base run: `patched`
 * takes only what its own `base` made.
 */
export interface AnalysisEngine<Run extends AnalysisRun = AnalysisRun> {
  /** Blocks, L: residual layers are 0..L. */
  readonly layers: number;
  /** d_model, and the heads where the model's heads can be patched (null: they cannot). */
  readonly dims: { readonly dModel: number; readonly heads: number | null };
  /** Width of the output: vocab (logits) or dOut. */
  readonly outWidth: number;
  /** What outputs record of the model: its config (null for a foreign model) and its hash. */
  readonly modelInfo: { readonly config: ModelConfig | null; readonly weightsSha256?: string };
  /** Checks a residual layer (0..L) or z layer (0..L−1). */
  checkLayer(layer: number, kind?: Site['kind']): void;
  /** Checks that prompts of `seq` positions fit the model's context. */
  checkSeq(seq: number): void;
  /** The residual at every layer at one position [B, L+1, D], and the output at the last position [B, O]. */
  at(feeds: Record<string, HostTensor>, position: number): Promise<{ resid: Float32Array; last: Float32Array }>;
  /** A full forward pass that keeps what patched variants read (z only when asked for). */
  base(feeds: Record<string, HostTensor>, options?: { z?: boolean }): Promise<Run>;
  /** The output at the last position [B, O] of each variant of a base run. */
  patched(base: Run, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]>;
  /** The same, by one full forward pass per variant. */
  patchedNaive(feeds: Record<string, HostTensor>, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]>;
  release(): Promise<void>;
}

/** The input feeds of a prompt batch. */
export const promptFeeds = (batch: Batch): Record<string, HostTensor> => batchFeeds(batch, false);

export interface EngineOptions extends SessionOptions {
  /** Most suffix rows (prompts × variants × positions) per fast run; bounds memory. Default 16384. */
  readonly rowsPerRun?: number;
  /** Reuse the base run's rows after a one-row patch at its entry block (plan.reuse). Default true; off for comparisons. */
  readonly reuseRows?: boolean;
  /** Answer a variant that writes back the base run's own values with the base output. Default true; off for comparisons. */
  readonly skipUnchanged?: boolean;
}

export class Engine implements AnalysisEngine<BaseRun> {
  readonly cfg: ModelConfig;
  /** Width of the output: vocab (logits) or dOut. */
  readonly outWidth: number;
  private readonly sessions = new Map<string, Promise<Session>>();

  private constructor(
    readonly model: ModelWeights,
    private readonly options: EngineOptions,
  ) {
    this.cfg = model.cfg;
    this.outWidth = model.cfg.output === 'logits' ? model.cfg.vocab : model.cfg.dOut;
  }

  static open(model: ModelWeights, options: EngineOptions = {}): Engine {
    return new Engine(model, options);
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
    const max = kind === 'resid' ? this.cfg.layers : this.cfg.layers - 1;
    if (!Number.isInteger(layer) || layer < 0 || layer > max) {
      const what = kind === 'resid' ? `residual layer` : `attn.hook_z layer`;
      throw new RangeInputError(`${what} ${layer} is out of range: this model has ${this.cfg.layers} blocks, so valid layers are 0..${max} (${kind === 'resid' ? 'layer ℓ = the stream entering block ℓ' : 'block index'})`);
    }
  }

  /** Checks that prompts of `seq` positions fit the model's context. */
  checkSeq(seq: number): void {
    if (this.cfg.positional === 'learned' && seq > this.cfg.maxSeq) {
      throw new InputError(`prompts of ${seq} positions are longer than the model's context of ${this.cfg.maxSeq} (learned positions); use fewer demos`);
    }
  }

  /** The output at the last position [B, O]: a plain forward pass. */
  async forward(feeds: Record<string, HostTensor>): Promise<Float32Array> {
    const s = await this.session('base', () => this.baseGraph());
    const r = await s.run({ ...feeds, at: atFeed(0) }, ['out.last']);
    return r['out.last'].data as Float32Array;
  }

  /** The residual at every layer at one position [B, L+1, D], and the output at the last position [B, O]. */
  async at(feeds: Record<string, HostTensor>, position: number): Promise<{ resid: Float32Array; last: Float32Array }> {
    const s = await this.session('base', () => this.baseGraph());
    const r = await s.run({ ...feeds, at: atFeed(position) }, ['at.resid', 'out.last']);
    return { resid: r['at.resid'].data as Float32Array, last: r['out.last'].data as Float32Array };
  }

  /** A full forward pass that keeps what patched variants reuse. */
  async base(feeds: Record<string, HostTensor>, options: { z?: boolean } = {}): Promise<BaseRun> {
    const L = this.cfg.layers;
    const s = await this.session('base', () => this.baseGraph());
    const names = ['out.last', ...range(L + 1).map((l) => `resid.${l}`), ...range(L).flatMap((l) => [`q.${l}`, `k.${l}`, `v.${l}`, ...(options.z ? [`z.${l}`] : [])])];
    const r = await s.run({ ...feeds, at: atFeed(0) }, names);
    const first = Object.values(feeds)[0];
    const get = (n: string) => r[n].data as Float32Array;
    return {
      batch: first.shape[0],
      seq: first.shape[1],
      resid: range(L + 1).map((l) => get(`resid.${l}`)),
      q: range(L).map((l) => get(`q.${l}`)),
      k: range(L).map((l) => get(`k.${l}`)),
      v: range(L).map((l) => get(`v.${l}`)),
      z: options.z ? range(L).map((l) => get(`z.${l}`)) : null,
      out: get('out.last'),
    };
  }

  /**
   * The output at the last position of each variant [B, O], computed through the suffix forward:
   * variants are grouped by their first patched position, each group runs as one batch.
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
    for (const [start, members] of [...groups].sort((a, b) => a[0] - b[0])) {
      const out = await this.runGroup(base, start, members.map((i) => variants[i]));
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
      const s = await this.session(key, () => this.naiveGraph(sites));
      const patchFeeds: Record<string, HostTensor> = {};
      for (const site of sites) {
        const w = site.kind === 'resid' ? [1, this.cfg.dModel] : [this.cfg.heads, dHeadOf(this.cfg)];
        const keep = new Float32Array(B * T * w[0]).fill(1);
        const add = new Float32Array(B * T * w[0] * w[1]);
        for (const p of v.filter((q) => siteKey(q.site) === siteKey(site))) {
          for (let n = 0; n < B; n++) {
            p.positions.forEach((pos, i) => {
              const value = p.value(n, i);
              if (value === null) return;
              const heads = site.kind === 'z' && p.head !== undefined ? [p.head] : range(w[0]);
              const width = heads.length * w[1];
              if (value.length !== width) throw new InputError(`a patch at ${siteKey(site)} writes ${value.length} numbers where ${width} are needed`);
              heads.forEach((h, j) => {
                const cell = (n * T + pos) * w[0] + h;
                if (p.mode === 'replace') {
                  keep[cell] = 0;
                  for (let d = 0; d < w[1]; d++) add[cell * w[1] + d] = value[j * w[1] + d];
                } else for (let d = 0; d < w[1]; d++) add[cell * w[1] + d] += value[j * w[1] + d];
              });
            });
          }
        }
        const shape = site.kind === 'resid' ? [B, T] : [B, T, w[0]];
        patchFeeds[`keep.${siteKey(site)}`] = { dtype: 'float32', shape: [...shape, 1], data: keep };
        patchFeeds[`add.${siteKey(site)}`] = { dtype: 'float32', shape: [...shape, w[1]], data: add };
      }
      const r = await s.run({ ...feeds, ...patchFeeds }, ['out.last']);
      out.push(r['out.last'].data as Float32Array);
      onProgress?.(out.length, variants.length);
    }
    return out;
  }

  async release(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }

  // ---- graphs ---------------------------------------------------------------------------------

  private session(key: string, build: () => Graph): Promise<Session> {
    let s = this.sessions.get(key);
    if (!s) {
      s = Session.open(toOnnxBytes(build(), { paramData: this.model.params }), this.options);
      this.sessions.set(key, s);
    }
    return s;
  }

  /** The forward pass with residuals, keys, values and z as outputs, and the output at `at`. */
  private baseGraph(): Graph {
    const g = new Graph('float32');
    const cfg = this.cfg;
    const { output, hooks, kv } = new Transformer(cfg, declareParams(g, cfg, 0)).forward(modelInputs(g, cfg));
    const at = g.input('at', 'int64', [1]);
    const resid = range(cfg.layers + 1).map((l) => hooks.get(residualAtLayer(l).name)!);
    resid.forEach((r, l) => g.output(r, `resid.${l}`));
    kv.forEach(({ q, k, v }, l) => {
      g.output(q, `q.${l}`);
      g.output(k, `k.${l}`);
      g.output(v, `v.${l}`);
      g.output(hooks.get(hookPoint('attn.hook_z', l).name)!, `z.${l}`);
    });
    g.output(op.concat(resid.map((r) => op.gather(r, at, 1)), 1), 'at.resid'); // [B, L+1, D]
    g.output(op.reshape(op.slice(output, [-1], [Infinity], [1]), [0, -1]), 'out.last'); // [B, O]
    return g;
  }

  /** A full forward pass that rewrites the listed sites as x·keep + add. */
  private naiveGraph(sites: readonly Site[]): Graph {
    const g = new Graph('float32');
    const cfg = this.cfg;
    const [H, dh] = [cfg.heads, dHeadOf(cfg)];
    const byHook = new Map<string, Site>(sites.map((s) => [s.kind === 'resid' ? residualAtLayer(s.layer).name : hookPoint('attn.hook_z', s.layer).name, s]));
    const inputs = modelInputs(g, cfg);
    const patchInputs = new Map(
      sites.map((s) => {
        const shape = s.kind === 'resid' ? ['batch', 'seq'] : ['batch', 'seq', H];
        const width = s.kind === 'resid' ? cfg.dModel : dh;
        return [siteKey(s), { keep: g.input(`keep.${siteKey(s)}`, 'float32', [...shape, 1]), add: g.input(`add.${siteKey(s)}`, 'float32', [...shape, width]) }];
      }),
    );
    const { output } = new Transformer(cfg, declareParams(g, cfg, 0)).forward(inputs, {
      intervene: (hook, x: Value) => {
        const site = byHook.get(hook.name);
        if (!site) return x;
        const { keep, add } = patchInputs.get(siteKey(site))!;
        return op.add(op.mul(x, keep), add);
      },
    });
    g.output(op.reshape(op.slice(output, [-1], [Infinity], [1]), [0, -1]), 'out.last');
    return g;
  }

  // ---- the fast path --------------------------------------------------------------------------

  private checkVariant(v: Variant, seq: number): void {
    if (v.length === 0) throw new InputError('a patched variant needs at least one patch');
    this.checkSeq(seq);
    for (const p of v) {
      this.checkLayer(p.site.layer, p.site.kind);
      for (const pos of p.positions) {
        if (!Number.isInteger(pos) || pos < 0 || pos >= seq) throw new RangeInputError(`position ${pos} is out of range: these prompts have positions 0..${seq - 1}`);
      }
      if (p.positions.length === 0) throw new InputError(`a patch at ${siteKey(p.site)} lists no positions`);
      if (p.head !== undefined && (p.site.kind !== 'z' || !Number.isInteger(p.head) || p.head < 0 || p.head >= this.cfg.heads)) {
        throw new RangeInputError(p.site.kind !== 'z' ? 'only z sites take a head' : `head ${p.head} is out of range: valid heads are 0..${this.cfg.heads - 1}`);
      }
    }
  }

  private async runGroup(base: BaseRun, start: number, variants: readonly Variant[]): Promise<Float32Array[]> {
    const cfg = this.cfg;
    const L = cfg.layers;
    const [H, dh, D, O] = [cfg.heads, dHeadOf(cfg), cfg.dModel, this.outWidth];
    const [B, T] = [base.batch, base.seq];
    const S = T - start;
    // Each variant enters at its earliest site; later residual patches become in-graph rewrites.
    const entries = variants.map((v) => v.map((p) => p.site).reduce((a, b) => (siteOrder(b) < siteOrder(a) ? b : a)));
    variants.forEach((v, i) => {
      for (const p of v) {
        if (p.site.kind === 'z' && siteKey(p.site) !== siteKey(entries[i])) {
          throw new InputError(`the fast path takes a z patch only as a variant's first site; ${siteKey(p.site)} comes after ${siteKey(entries[i])} (use the naive path)`);
        }
      }
    });
    const order = range(variants.length).sort((a, b) => siteOrder(entries[a]) - siteOrder(entries[b]) || a - b);
    const plan: SuffixPlan = {
      resid: range(L + 1).map((l) => entries.filter((e) => e.kind === 'resid' && e.layer === l).length),
      z: range(L).map((l) => entries.filter((e) => e.kind === 'z' && e.layer === l).length),
      inject: [...new Set(variants.flatMap((v, i) => v.filter((p) => siteKey(p.site) !== siteKey(entries[i])).map((p) => p.site.layer)))].sort((a, b) => a - b),
      prefix: start > 0,
      single: S === 1,
      // Entries that change only the first suffix row keep the base's other rows at their entry block.
      reuse:
        this.options.reuseRows !== false &&
        S > 1 &&
        variants.every((v, i) => v.every((p) => p.site.kind !== 'resid' || p.site.layer !== entries[i].layer || (p.positions.length === 1 && p.positions[0] === start))) &&
        entries.some((e) => e.kind === 'resid' && e.layer < L) &&
        !variants.some((v, i) => v.some((p) => siteKey(p.site) !== siteKey(entries[i]))),
    };
    const session = await this.session(`suffix:${JSON.stringify(plan)}`, () => {
      const g = new Graph('float32');
      g.output(suffixForward(g, cfg, declareParams(g, cfg, 0), plan), 'out');
      return g;
    });
    const wanted = new Set(session.inputNames);
    const C = variants.length;
    // A one-position suffix holds its scores against every prefix key at once: count those too.
    const rowsPerPrompt = C * S * (plan.single ? start + 1 : 1);
    const chunk = Math.max(1, Math.floor((this.options.rowsPerRun ?? 16384) / rowsPerPrompt));
    const results = variants.map(() => new Float32Array(B * O));
    const positions: HostTensor = { dtype: 'int64', shape: [S], data: BigInt64Array.from(range(S), (i) => BigInt(start + i)) };

    for (let n0 = 0; n0 < B; n0 += chunk) {
      const N = Math.min(chunk, B - n0);
      const feeds: Record<string, HostTensor> = { positions };
      const rowsOf = (src: Float32Array, n: number, width: number) => src.subarray(((n0 + n) * T + start) * width, ((n0 + n) * T + T) * width);
      for (let l = 0; l < L; l++) {
        if (!wanted.has(`k.${l}`)) continue;
        const [k, v] = [new Float32Array(N * H * start * dh), new Float32Array(N * H * start * dh)];
        for (let n = 0; n < N; n++) {
          for (let h = 0; h < H; h++) {
            const from = ((n0 + n) * H + h) * T * dh;
            k.set(base.k[l].subarray(from, from + start * dh), (n * H + h) * start * dh);
            v.set(base.v[l].subarray(from, from + start * dh), (n * H + h) * start * dh);
          }
        }
        feeds[`k.${l}`] = { dtype: 'float32', shape: [N, H, start, dh], data: k };
        feeds[`v.${l}`] = { dtype: 'float32', shape: [N, H, start, dh], data: v };
      }
      // Entry rows: the base run's rows from `start` on, with the variant's entry patches written in.
      const entryFeed = (site: Site, members: number[]) => {
        const width = site.kind === 'resid' ? D : H * dh;
        const src = site.kind === 'resid' ? base.resid[site.layer] : base.z![site.layer];
        const data = new Float32Array(N * members.length * S * width);
        for (let n = 0; n < N; n++) {
          const rows = rowsOf(src, n, width);
          members.forEach((vi, c) => {
            const at = (n * members.length + c) * S * width;
            data.set(rows, at);
            for (const p of variants[vi]) if (siteKey(p.site) === siteKey(site)) writePatch(data, at, p, n0 + n, start, site.kind === 'resid' ? D : dh, H);
          });
        }
        return data;
      };
      for (let l = 0; l <= L; l++) {
        const members = order.filter((i) => entries[i].kind === 'resid' && entries[i].layer === l);
        if (!members.length) continue;
        feeds[`resid.${l}`] = { dtype: 'float32', shape: [N, members.length, S, D], data: entryFeed({ kind: 'resid', layer: l }, members) };
        if (!plan.reuse || l === L) continue;
        for (const [m, src] of [['q', base.q[l]], ['k', base.k[l]], ['v', base.v[l]]] as const) {
          const data = new Float32Array(N * H * S * dh);
          for (let n = 0; n < N; n++) {
            for (let h = 0; h < H; h++) {
              const from = (((n0 + n) * H + h) * T + start) * dh;
              data.set(src.subarray(from, from + S * dh), (n * H + h) * S * dh);
            }
          }
          feeds[`${m}s.${l}`] = { dtype: 'float32', shape: [N, H, S, dh], data };
        }
      }
      for (let l = 0; l < L; l++) {
        const members = order.filter((i) => entries[i].kind === 'z' && entries[i].layer === l);
        if (!members.length) continue;
        if (!base.z) throw new InputError('z patches need a base run with z (base(feeds, { z: true }))');
        feeds[`z.${l}`] = { dtype: 'float32', shape: [N, members.length, S, H, dh], data: entryFeed({ kind: 'z', layer: l }, members) };
        const zbase = new Float32Array(N * S * D);
        for (let n = 0; n < N; n++) zbase.set(rowsOf(base.resid[l], n, D), n * S * D);
        feeds[`zbase.${l}`] = { dtype: 'float32', shape: [N, 1, S, D], data: zbase };
      }
      for (const l of plan.inject) {
        const Cl = activeAt(plan, l);
        const keep = new Float32Array(N * Cl * S).fill(1);
        const add = new Float32Array(N * Cl * S * D);
        order.slice(0, Cl).forEach((vi, c) => {
          for (const p of variants[vi]) {
            if (p.site.kind !== 'resid' || p.site.layer !== l || siteKey(p.site) === siteKey(entries[vi])) continue;
            for (let n = 0; n < N; n++) {
              p.positions.forEach((pos, i) => {
                const value = p.value(n0 + n, i);
                if (value === null) return;
                const at = ((n * Cl + c) * S + pos - start) * D;
                if (p.mode === 'replace') {
                  keep[(n * Cl + c) * S + pos - start] = 0;
                  for (let d = 0; d < D; d++) add[at + d] = value[d];
                } else for (let d = 0; d < D; d++) add[at + d] += value[d];
              });
            }
          }
        });
        feeds[`keep.${l}`] = { dtype: 'float32', shape: [N, Cl, S, 1], data: keep };
        feeds[`add.${l}`] = { dtype: 'float32', shape: [N, Cl, S, D], data: add };
      }
      const out = (await session.run(feeds, ['out']))['out'].data as Float32Array; // [N, C, O]
      order.forEach((vi, c) => {
        for (let n = 0; n < N; n++) results[vi].set(out.subarray((n * C + c) * O, (n * C + c + 1) * O), (n0 + n) * O);
      });
    }
    return results;
  }
}

/** Whether every patch of `v` writes, for every prompt, exactly the base run's own value. */
function writesNothing(v: Variant, base: BaseRun, cfg: ModelConfig): boolean {
  const [H, dh, D, T] = [cfg.heads, dHeadOf(cfg), cfg.dModel, base.seq];
  for (const p of v) {
    if (p.site.kind === 'z' && !base.z) return false;
    const src = p.site.kind === 'resid' ? base.resid[p.site.layer] : base.z![p.site.layer];
    const stride = p.site.kind === 'resid' ? D : H * dh;
    const offset = p.site.kind === 'z' && p.head !== undefined ? p.head * dh : 0;
    for (let n = 0; n < base.batch; n++) {
      for (let i = 0; i < p.positions.length; i++) {
        const value = p.value(n, i);
        if (value === null) continue;
        const at = (n * T + p.positions[i]) * stride + offset;
        for (let d = 0; d < value.length; d++) if (p.mode === 'replace' ? value[d] !== src[at + d] : value[d] !== 0) return false;
      }
    }
  }
  return true;
}

/** Writes one patch into a variant's entry rows [S, width·(H or 1)] starting at `at`. */
function writePatch(data: Float32Array, at: number, p: SitePatch, n: number, start: number, width: number, heads: number): void {
  p.positions.forEach((pos, i) => {
    const value = p.value(n, i);
    if (value === null) return;
    const z = p.site.kind === 'z';
    const row = at + (pos - start) * (z ? heads * width : width);
    const offset = z && p.head !== undefined ? row + p.head * width : row;
    const count = z && p.head === undefined ? heads * width : width;
    if (value.length !== count) throw new InputError(`a patch at ${siteKey(p.site)} writes ${value.length} numbers where ${count} are needed`);
    if (p.mode === 'replace') for (let d = 0; d < count; d++) data[offset + d] = value[d];
    else for (let d = 0; d < count; d++) data[offset + d] += value[d];
  });
}

/** The prompts `indices` of a base run, as a base run of their own. */
export function subsetBase(base: BaseRun, indices: readonly number[]): BaseRun {
  const pick = (a: Float32Array) => {
    const per = a.length / base.batch;
    const out = new Float32Array(indices.length * per);
    indices.forEach((n, i) => out.set(a.subarray(n * per, (n + 1) * per), i * per));
    return out;
  };
  return {
    batch: indices.length,
    seq: base.seq,
    resid: base.resid.map(pick),
    q: base.q.map(pick),
    k: base.k.map(pick),
    v: base.v.map(pick),
    z: base.z ? base.z.map(pick) : null,
    out: pick(base.out),
  };
}

export const siteKey = (s: Site): string => `${s.kind}.${s.layer}`;

function uniqueSites(v: Variant): Site[] {
  const seen = new Map<string, Site>();
  for (const p of v) seen.set(siteKey(p.site), p.site);
  return [...seen.values()].sort((a, b) => siteOrder(a) - siteOrder(b));
}

/** Prompts [from, to) of a set of feeds (every feed has the prompt on axis 0). */
export function sliceFeeds(feeds: Readonly<Record<string, HostTensor>>, from: number, to: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const per = t.data.length / t.shape[0];
    out[name] = { dtype: t.dtype, shape: [to - from, ...t.shape.slice(1)], data: t.data.subarray(from * per, to * per) as HostTensor['data'] };
  }
  return out;
}

const atFeed = (position: number): HostTensor => ({ dtype: 'int64', shape: [1], data: BigInt64Array.of(BigInt(position)) });

export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
