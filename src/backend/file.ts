/**
 * The file backend: it runs an ONNX model as it is: a model tvlens did not make, read through its
 * hook map, or a checkpoint's own file. `run` fetches and patches hooks by rewriting the graph
 * once per set of hooks asked for (a run that asks for none runs the model as it is); the
 * analyses' contract is answered on top of it:
 *
 *   at       one run that fetches the residual stream at every layer, sliced at one position;
 *   base     one plain run that keeps the residual stream at every layer, and every tensor the
 *            graph's suffixes read (see below);
 *   patched  a variant that writes one residual layer runs only the graph's *suffix* from that
 *            layer's tensor to the output (onnx-edit's suffixSplit): the prefix ran once, in
 *            base, and the suffix reads the patched residual and the base run's cut tensors.
 *            Other variants (several layers at once), and graphs that do not split, run in full
 *            with patch points at the residual hooks: `patchedNaive`, the reference.
 *
 * Resid sites only: a foreign model's heads are not hooks, so head (z) patching needs a tvlens
 * checkpoint. Layers follow LAYER_CONVENTION. The model must be causal (GPT-style): `padTo`
 * relies on it.
 */
import { InputError } from '../errors.js';
import { type HookPoint, residualAtLayer } from '../model/hooks.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { type AnalysisRun, type Backend, type ModelFacts, type Patch, type RunOptions, type RunResult, type Site, type Variant, checkLayer, checkPosition, forEachWrite, range, writeValue } from './backend.js';
import { type HookMapOption, type OnnxModel, readModelFile } from './file-open.js';
import { emptyPast, outputAt, padFeeds, shapeOf } from './feeds.js';
import { type PatchMode, type SuffixSplit, encodeModel, patchInputs, suffixModel, suffixSplit, suggest, withOutputs, withPatches } from './onnx-edit.js';

/** A base run, with the feeds it ran on: a patched variant runs them again. */
export interface FileRun extends AnalysisRun {
  readonly feeds: Readonly<Record<string, HostTensor>>;
  /** What the graph suffixes read: the model's own feeds, each layer's residual and the cut tensors, at the padded length. */
  readonly suffix: { readonly feeds: Readonly<Record<string, HostTensor>>; readonly resid: readonly HostTensor[]; readonly cuts: Readonly<Record<string, HostTensor>> } | null;
}

export interface FileBackendOptions extends SessionOptions {
  /** For a foreign model: a hook map file, or its parsed JSON. Default: none (no hooks). */
  readonly hookMap?: HookMapOption;
  /**
   * Run every prompt at this length, padded on the right with token 0. Default: the length the
   * graph's token input fixes, if it fixes one (torch.onnx.export can also bake the traced length
   * into the attention's reshapes while declaring it dynamic: then give it). A causal model's
   * positions before the padding never see it, so every value read there is the unpadded prompt's.
   */
  readonly padTo?: number;
  /** Run one-layer variants through the graph's suffix from that layer. Default true; off for comparisons. */
  readonly split?: boolean;
}

export const HEAD_PATCHING_NEEDS_CHECKPOINT =
  'head patching (attn.hook_z) needs a tvlens checkpoint: a foreign model is analysed through its residual stream only (resid_pre, resid_post)';

/** Sessions kept per rewrite; a sweep over layers uses one each, and more than this is rare. */
const SESSION_CACHE = 16;

export class FileBackend implements Backend<FileRun> {
  readonly facts: ModelFacts;
  /** d_model and the output width: a checkpoint's config says them, a foreign model's first run reads them (0 until then). */
  dims: { readonly dModel: number; readonly heads: null };
  outWidth: number;
  readonly modelInfo: { readonly config: null; readonly weightsSha256: string };
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly derived = new Map<string, Promise<Session>>();
  private readonly suffixSessions = new Map<number, Promise<Session>>();
  /** The residual hook of each layer 0..L, and where the graph splits there (null: it does not). */
  private resid: readonly string[] = [];
  private splits: readonly (SuffixSplit | null)[] = [];

  private constructor(
    private readonly model: OnnxModel,
    /** Options of every session this backend opens. */
    readonly sessionOptions: SessionOptions,
    readonly padTo: number | null,
    dModel: number,
    outWidth: number,
  ) {
    this.facts = model.facts;
    this.dims = { dModel, heads: null };
    this.outWidth = outWidth;
    this.modelInfo = { config: null, weightsSha256: model.facts.modelHash };
  }

  /** Opens an .onnx file: a checkpoint, or a foreign model with a hook map. */
  static open(file: string, options: FileBackendOptions = {}): Promise<FileBackend> {
    return FileBackend.over(readModelFile(file, options.hookMap).model, options);
  }

  /**
   * A backend over a decoded model. For the analyses, a foreign model's hook map must name the
   * residual stream at every layer 0..L; one run of a one-token prompt (padded to `padTo`) reads
   * d_model and the output width. A model without residual hooks still runs.
   */
  static async over(model: OnnxModel, options: FileBackendOptions = {}): Promise<FileBackend> {
    const { hookMap: _, padTo: given, split, ...sessionOptions } = options;
    const { facts } = model;
    const cfg = facts.manifest?.model;
    if (cfg) return new FileBackend(model, sessionOptions, null, cfg.dModel, cfg.output === 'logits' ? cfg.vocab : cfg.dOut).ready(split);
    const padTo = given ?? facts.staticSeq;
    if (padTo !== null) {
      if (!Number.isInteger(padTo) || padTo < 1) throw new InputError(`padTo must be a positive integer, got ${padTo}`);
      if (facts.maxSeq !== null && padTo > facts.maxSeq) throw new InputError(`padTo ${padTo} is longer than the model's context: ${facts.file} takes at most ${facts.maxSeq}`);
    }
    const backend = new FileBackend(model, sessionOptions, padTo, 0, 0);
    // A model runs (and shows its hooks) whatever its hook map names; what keeps it from the
    // analyses is said when one is asked for, not at open.
    backend.notAnalysable = await backend.probe();
    return backend.notAnalysable ? backend : backend.ready(split);
  }

  /** Why the analyses cannot run on this model, or null when they can. */
  private notAnalysable: string | null = null;

  /** Reads d_model and the output width off one run of a one-token prompt (padded to `padTo`); says what is wrong where that fails. */
  private async probe(): Promise<string | null> {
    const { facts } = this;
    if (facts.layers === 0) return `${facts.file} has no residual hooks to analyse: give a hook map naming blocks.{l}.hook_resid_post for every block (\`tvlens hooks ${facts.file}\` suggests one)`;
    let first: string;
    try {
      range(facts.layers + 1).forEach((l) => this.residual(l)); // every layer mapped, or an error naming the missing one
      first = this.residual(0).name;
    } catch (e) {
      return (e as Error).message;
    }
    const P = this.padTo ?? 1;
    let probe;
    try {
      probe = await this.run({ tokens: { dtype: 'int64', shape: [1, P], data: new BigInt64Array(P) } }, { fetch: [first] });
    } catch (e) {
      const why = (e as Error).message.split('\n')[0];
      return this.padTo !== null ? why : `${facts.file} does not run a one-token prompt (${why}); if its export fixed the sequence length, pad prompts to that length (padTo, --pad-to)`;
    }
    const resid = probe.hooks[first];
    if (resid.shape.length !== 3) return `${first} (tensor '${this.tensorOf(first)}') has shape [${resid.shape.join(', ')}]; a residual stream is [batch, seq, d_model]`;
    if (probe.output.shape.length !== 3) return `the output '${facts.output}' has shape [${probe.output.shape.join(', ')}]; the analyses need [batch, seq, vocab]`;
    this.dims = { dModel: resid.shape[2], heads: null };
    this.outWidth = probe.output.shape[2];
    return null;
  }

  /** The decoded model `run` executes. */
  get proto(): OnnxModel['proto'] {
    return this.model.proto;
  }

  get layers(): number {
    return this.facts.layers;
  }

  private ready(split = true): this {
    this.resid = range(this.facts.layers + 1).map((l) => this.residual(l).name);
    this.splits = this.resid.map((h) => (split ? suffixSplit(this.model.proto, this.tensorOf(h), this.facts.output) : null));
    return this;
  }

  hook(name: string): HookPoint {
    const h = this.facts.hooks.find((x) => x.name === name);
    if (!h) {
      const names = this.facts.hooks.map((x) => x.name);
      const list = names.length ? suggest(name, names) || `. Hooks: ${names.join(', ')}` : '. This model has no hooks (a foreign model needs a hook map)';
      throw new InputError(`no hook '${name}' in ${this.facts.file}${list}`);
    }
    return h;
  }

  residual(layer: number): HookPoint {
    if (!Number.isInteger(layer) || layer < 0 || layer > this.facts.layers) {
      throw new InputError(`layer ${layer} is out of range: this model has layers 0..${this.facts.layers} (0 = embeddings, ℓ = output of block ℓ−1)`);
    }
    const want = residualAtLayer(layer);
    if (!this.model.tensorOfHook.has(want.name)) throw new InputError(`layer ${layer}'s residual ${want.name} is not in the hook map of ${this.facts.file}`);
    return this.hook(want.name);
  }

  tensorOf(hook: string): string {
    return this.model.tensorOfHook.get(this.hook(hook).name)!;
  }

  checkLayer(layer: number, kind: Site['kind'] = 'resid'): void {
    checkLayer(layer, this.facts.layers, kind);
  }

  /** Fails when prompts of `seq` positions do not fit the model's context (or the length it runs at). */
  checkSeq(seq: number): void {
    const { maxSeq, file } = this.facts;
    if (maxSeq !== null && seq > maxSeq) throw new InputError(`prompts longer than the model's context: they have ${seq} positions, ${file} takes at most ${maxSeq}`);
    if (this.padTo !== null && seq > this.padTo) throw new InputError(`prompts of ${seq} positions are longer than the ${this.padTo} that ${file} runs at (padTo); use fewer demos`);
  }

  async run(feeds: Readonly<Record<string, HostTensor>>, options: RunOptions = {}): Promise<RunResult> {
    const fetch = [...new Set(options.fetch ?? [])].map((h) => this.hook(h).name);
    const patches = options.patches ?? [];
    const modelFeeds = this.modelFeeds(feeds);
    for (const p of patches) {
      const names = patchInputs(this.hook(p.hook).name);
      modelFeeds[names.value] = p.value;
      modelFeeds[names.mask] = p.mask;
    }
    const raw = [...new Set(options.tensors ?? [])];
    const session = await this.session(fetch, patches.map((p) => ({ hook: this.hook(p.hook).name, mode: p.mode ?? 'replace' })), raw);
    const tensors = fetch.map((h) => this.model.tensorOfHook.get(h)!);
    const output = this.facts.output;
    const names = [...new Set([output, ...tensors, ...raw])];
    // Raw tensors of a foreign graph need not lead with the batch axis: those runs go whole.
    const out = raw.length ? await session.run(modelFeeds, names) : await session.runSliced(modelFeeds, names);
    return { output: out[output], hooks: Object.fromEntries(fetch.map((h, i) => [h, out[tensors[i]]])), tensors: Object.fromEntries(raw.map((t) => [t, out[t]])) };
  }

  async at(feeds: Record<string, HostTensor>, position: number): Promise<{ resid: Float32Array; last: Float32Array }> {
    const [B, T] = shapeOf(feeds);
    checkPosition(position, T);
    const r = await this.runPadded(feeds, { fetch: this.analysable() });
    const [L1, D, P] = [this.facts.layers + 1, this.dims.dModel, r.seq];
    const resid = new Float32Array(B * L1 * D); // [B, L+1, D]
    this.resid.forEach((hook, l) => {
      const x = r.hooks[hook].data as Float32Array; // [B, P, D]
      for (let n = 0; n < B; n++) resid.set(x.subarray((n * P + position) * D, (n * P + position + 1) * D), (n * L1 + l) * D);
    });
    return { resid, last: outputAt(r.output, T - 1) };
  }

  async base(feeds: Record<string, HostTensor>, options: { z?: boolean } = {}): Promise<FileRun> {
    if (options.z) throw new InputError(HEAD_PATCHING_NEEDS_CHECKPOINT);
    const [B, T] = shapeOf(feeds);
    const cuts = [...new Set(this.splits.flatMap((s) => s?.cuts ?? []))];
    const r = await this.runPadded(feeds, { fetch: this.analysable(), tensors: cuts });
    const [D, P] = [this.dims.dModel, r.seq];
    const unpad = (x: Float32Array) => {
      if (P === T) return x;
      const out = new Float32Array(B * T * D); // [B, P, D] → [B, T, D]
      for (let n = 0; n < B; n++) out.set(x.subarray(n * P * D, (n * P + T) * D), n * T * D);
      return out;
    };
    const suffix = this.splits.some((s) => s) ? { feeds: this.modelFeeds(P === T ? feeds : padFeeds(feeds, P)), resid: this.resid.map((h) => r.hooks[h]), cuts: r.tensors } : null;
    return { batch: B, seq: T, resid: this.resid.map((h) => unpad(r.hooks[h].data as Float32Array)), z: null, out: outputAt(r.output, T - 1), feeds, suffix };
  }

  /** Each variant through the graph suffix from its one patched layer where it can, else in full. */
  async patched(base: FileRun, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const v of variants) {
      const layers = new Set(v.map((p) => p.site.layer));
      const layer = v[0]?.site.layer;
      const split = layers.size === 1 && v.every((p) => p.site.kind === 'resid') && base.suffix ? this.splits[layer] : null;
      out.push(split ? await this.runSuffix(base, v, layer, split) : (await this.patchedNaive(base.feeds, [v]))[0]);
      onProgress?.(out.length, variants.length);
    }
    return out;
  }

  async patchedNaive(feeds: Readonly<Record<string, HostTensor>>, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]> {
    const [B, T] = shapeOf(feeds);
    const P = this.padTo ?? T;
    const out: Float32Array[] = [];
    for (const v of variants) {
      const r = await this.runPadded(feeds, { patches: this.patches(v, B, T, P) });
      out.push(outputAt(r.output, T - 1));
      onProgress?.(out.length, variants.length);
    }
    return out;
  }

  /**
   * The session of a model derived from this one by an analysis (its imported graph with gradients,
   * foreign-attribution.ts), opened once per key with this backend's options and released with it,
   * so that only a backend opens sessions.
   */
  derivedSession(key: string, build: () => Promise<Uint8Array>): Promise<Session> {
    let s = this.derived.get(key);
    if (!s) {
      s = build().then((bytes) => Session.open(bytes, this.sessionOptions));
      this.derived.set(key, s);
      s.catch(() => this.derived.delete(key)); // a failed build is not kept: the next call tries again
    }
    return s;
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values(), ...this.suffixSessions.values(), ...this.derived.values()];
    this.sessions.clear();
    this.suffixSessions.clear();
    this.derived.clear();
    for (const s of all) await (await s.catch(() => null))?.release(); // a session that failed to open has nothing to release
  }

  /** Renames tvlens feed names to the model's, fills the inputs an exporter adds, checks lengths. */
  modelFeeds(feeds: Readonly<Record<string, HostTensor>>): Record<string, HostTensor> {
    const { tokenInput, file } = this.facts;
    const first = feeds[tokenInput] ?? feeds.tokens ?? feeds.markers;
    if (!first) throw new InputError(`${file} takes '${tokenInput}' (${this.model.inputs.join(', ')}), and the prompts given are ${Object.keys(feeds).join(', ') || 'nothing'}`);
    const [B, T] = first.shape;
    const { maxSeq } = this.facts;
    if (maxSeq !== null && T > maxSeq) throw new InputError(`prompts longer than the model's context: they have ${T} positions, ${file} takes at most ${maxSeq}`);
    const out: Record<string, HostTensor> = {};
    for (const name of this.model.inputs) {
      if (feeds[name]) out[name] = feeds[name];
      else if (name === tokenInput && feeds.tokens) out[name] = feeds.tokens;
      else if (/attention_mask/.test(name)) out[name] = { dtype: 'int64', shape: [B, T], data: new BigInt64Array(B * T).fill(1n) };
      else if (/position_ids/.test(name)) out[name] = { dtype: 'int64', shape: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)) };
      else if (/^past_key_values|^past\./.test(name)) out[name] = emptyPast(this.model.proto, name, B, file);
      else if (name === 'use_cache_branch') out[name] = { dtype: 'bool', shape: [1], data: new Uint8Array(1) };
      else throw new InputError(`${file} takes ${this.model.inputs.join(', ')}, and the prompts give no '${name}'${feeds.tokens ? ' (token prompts; this model takes vectors: give a batch of its own task)' : ''}`);
    }
    return out;
  }

  private session(fetch: readonly string[], patches: readonly { hook: string; mode: PatchMode }[], raw: readonly string[] = []): Promise<Session> {
    const key = JSON.stringify([[...fetch].sort(), [...patches].sort((a, b) => a.hook.localeCompare(b.hook)), [...raw].sort()]);
    const hit = this.sessions.get(key);
    if (hit) {
      this.sessions.delete(key); // re-insert: the Map's order is the LRU order
      this.sessions.set(key, hit);
      return hit;
    }
    let model = this.model.proto;
    const tensorOf = this.model.tensorOfHook;
    if (patches.length) model = withPatches(model, patches.map((p) => ({ ...p, tensor: tensorOf.get(p.hook)! })));
    if (fetch.length || raw.length) model = withOutputs(model, [...fetch.map((h) => tensorOf.get(h)!), ...raw]);
    const opened = Session.open(encodeModel(model), this.sessionOptions);
    this.sessions.set(key, opened);
    if (this.sessions.size > SESSION_CACHE) {
      const [oldKey, old] = this.sessions.entries().next().value!;
      this.sessions.delete(oldKey);
      void old.then((s) => s.release());
    }
    return opened;
  }

  /** The residual hooks the analyses read; fails, saying why, on a model they cannot run on. */
  analysable(): readonly string[] {
    if (this.notAnalysable) throw new InputError(this.notAnalysable);
    return this.resid;
  }

  /** One variant at one residual layer: the base run's residual with the patch written in, through the suffix. */
  private async runSuffix(base: FileRun, v: Variant, layer: number, split: SuffixSplit): Promise<Float32Array> {
    const [B, T] = [base.batch, base.seq];
    const s = base.suffix!;
    const resid = s.resid[layer];
    const P = resid.shape[1];
    const D = this.dims.dModel;
    const x = (resid.data as Float32Array).slice(); // [B, P, D]
    for (const p of this.patches(v, B, T, P)) {
      const [value, mask] = [p.value.data as Float32Array, p.mask.data as Float32Array];
      for (let cell = 0; cell < B * P; cell++) {
        if (mask[cell] === 0) continue;
        // As the patch point computes it at a 0/1 mask: the value (replace), or x + value (add).
        if (p.mode === 'replace') for (let d = 0; d < D; d++) x[cell * D + d] = value[cell * D + d];
        else for (let d = 0; d < D; d++) x[cell * D + d] += value[cell * D + d];
      }
    }
    const feeds: Record<string, HostTensor> = { [split.tensor]: { dtype: 'float32', shape: resid.shape, data: x } };
    for (const c of split.cuts) feeds[c] = s.cuts[c];
    for (const i of split.inputs) feeds[i] = s.feeds[i];
    let session = this.suffixSessions.get(layer);
    if (!session) {
      const dtypes = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dtype]));
      session = Session.open(encodeModel(suffixModel(this.model.proto, split, dtypes)), this.sessionOptions);
      this.suffixSessions.set(layer, session);
    }
    const r = await (await session).run(feeds, [split.output]);
    return outputAt(r[split.output], T - 1);
  }

  /** Runs prompts [B, T] padded to [B, P]; `seq` is P. */
  private async runPadded(feeds: Readonly<Record<string, HostTensor>>, options: RunOptions): Promise<RunResult & { seq: number }> {
    const [, T] = shapeOf(feeds);
    this.checkSeq(T);
    const P = this.padTo ?? T;
    return { ...(await this.run(P === T ? feeds : padFeeds(feeds, P), options)), seq: P };
  }

  /** A variant as one patch per residual layer: value [B, P, D], mask [B, P, 1] = 1 exactly at the written cells. */
  private patches(v: Variant, B: number, T: number, P: number): Patch[] {
    if (v.length === 0) throw new InputError('a patched variant needs at least one patch');
    this.analysable();
    const D = this.dims.dModel;
    const byLayer = new Map<number, { mode: 'replace' | 'add'; value: Float32Array; mask: Float32Array }>();
    for (const p of v) {
      if (p.site.kind !== 'resid' || p.head !== undefined) throw new InputError(HEAD_PATCHING_NEEDS_CHECKPOINT);
      const l = p.site.layer;
      this.checkLayer(l);
      if (p.positions.length === 0) throw new InputError(`a patch at resid.${l} lists no positions`);
      p.positions.forEach((pos) => checkPosition(pos, T));
      let at = byLayer.get(l);
      if (!at) byLayer.set(l, (at = { mode: p.mode, value: new Float32Array(B * P * D), mask: new Float32Array(B * P) }));
      // One patch point per tensor takes one mode; a variant that mixes them at a layer is rare.
      if (at.mode !== p.mode) throw new InputError(`a variant both replaces and adds at residual layer ${l}; on a foreign model a variant takes one mode per layer`);
      forEachWrite(p, 0, B, D, (n, pos, value) => {
        at.mask[n * P + pos] = 1;
        writeValue(at.value, (n * P + pos) * D, value, p.mode);
      });
    }
    return [...byLayer].map(([l, p]) => ({
      hook: this.resid[l],
      mode: p.mode,
      value: { dtype: 'float32', shape: [B, P, D], data: p.value },
      mask: { dtype: 'float32', shape: [B, P, 1], data: p.mask },
    }));
  }
}
