/**
 * The analyses' engine over a ModelSource: a model tvlens did not make, read through its hook map
 * (or a checkpoint opened that way). It answers what `Engine` answers:
 *
 *   at       one run that fetches the residual stream at every layer, sliced at one position;
 *   base     one plain run that keeps the residual stream at every layer, and every tensor the
 *            graph's suffixes read (see below);
 *   patched  a variant that writes one residual layer runs only the graph's *suffix* from that
 *            layer's tensor to the output (onnx-edit's suffixSplit): the prefix ran once, in
 *            base, and the suffix reads the patched residual and the base run's cut tensors.
 *            Other variants (several layers at once), and graphs that do not split, run in full
 *            with patch points at the residual hooks (ModelSource rewrites the graph once per set
 *            of layers patched, and keeps that session): `patchedNaive`, the reference.
 *
 * Resid sites only: a foreign model's heads are not hooks, so head (z) patching needs a tvlens
 * checkpoint. Layers follow LAYER_CONVENTION, through `ModelSource.residual`. The model must be
 * causal (GPT-style): `padTo` relies on it.
 */
import { InputError } from '../errors.js';
import { type HostTensor, Session } from '../runtime/session.js';
import { type TaskConfig, taskIO } from '../tasks/index.js';
import { type AnalysisEngine, type AnalysisRun, type Site, type Variant, checkLayer, checkPosition, forEachWrite, range, writeValue } from './contracts.js';
import { type SuffixSplit, encodeModel, suffixModel, suffixSplit } from './onnx-edit.js';
import type { ModelSource, Patch, RunOptions, RunResult } from './source.js';

/** A base run, with the feeds it ran on: a patched variant runs them again. */
export interface SourceRun extends AnalysisRun {
  readonly feeds: Readonly<Record<string, HostTensor>>;
  /** What the graph suffixes read: the model's own feeds, each layer's residual and the cut tensors, at the padded length. */
  readonly suffix: { readonly feeds: Readonly<Record<string, HostTensor>>; readonly resid: readonly HostTensor[]; readonly cuts: Readonly<Record<string, HostTensor>> } | null;
}

export interface SourceEngineOptions {
  /**
   * Run every prompt at this length, padded on the right with token 0, for exports whose graph
   * fixes the sequence length: torch.onnx.export can bake the traced length into the attention's
   * reshapes while declaring it dynamic. A causal model's positions before the padding never see
   * it, so every residual and output read there is the unpadded prompt's. Default: none (prompts
   * run at their own length).
   */
  readonly padTo?: number;
  /** Run one-layer variants through the graph's suffix from that layer. Default true; off for comparisons. */
  readonly split?: boolean;
}

export const HEAD_PATCHING_NEEDS_CHECKPOINT =
  'head patching (attn.hook_z) needs a tvlens checkpoint: a foreign model is analysed through its residual stream only (resid_pre, resid_post)';

export class SourceEngine implements AnalysisEngine<SourceRun> {
  readonly layers: number;
  readonly dims: { readonly dModel: number; readonly heads: null };
  readonly modelInfo: { readonly config: null; readonly weightsSha256: string };
  /** The residual hook of each layer 0..L. */
  private readonly resid: readonly string[];
  /** Where the graph splits at each layer's residual; null where it does not (or splitting is off). */
  private readonly splits: readonly (SuffixSplit | null)[];
  private readonly suffixSessions = new Map<number, Promise<Session>>();

  private constructor(
    readonly source: ModelSource,
    dModel: number,
    /** Width of the output at a position. */
    readonly outWidth: number,
    private readonly padTo: number | null,
    split: boolean,
  ) {
    this.layers = source.layers;
    this.dims = { dModel, heads: null };
    // For a foreign model, ModelSource.modelHash is the sha256 of its file.
    this.modelInfo = { config: null, weightsSha256: source.modelHash };
    this.resid = range(source.layers + 1).map((l) => source.residual(l).name);
    this.splits = this.resid.map((h) => (split ? suffixSplit(source.model, source.tensorOf(h), source.output) : null));
  }

  /**
   * An engine over `source`, whose hook map must name the residual stream at every layer 0..L.
   * One run of a one-token prompt (padded to `padTo`) reads d_model and the output width.
   */
  static async open(source: ModelSource, options: SourceEngineOptions = {}): Promise<SourceEngine> {
    if (source.layers === 0) {
      throw new InputError(`${source.file} has no residual hooks to analyse: give a hook map naming blocks.{l}.hook_resid_post for every block (\`tvlens hooks ${source.file}\` suggests one)`);
    }
    const first = source.residual(0).name;
    range(source.layers + 1).forEach((l) => source.residual(l)); // every layer mapped, or an error naming the missing one
    const padTo = options.padTo ?? null;
    if (padTo !== null) {
      if (!Number.isInteger(padTo) || padTo < 1) throw new InputError(`padTo must be a positive integer, got ${padTo}`);
      source.checkSeq(padTo);
    }
    const P = padTo ?? 1;
    let probe;
    try {
      probe = await source.run({ tokens: { dtype: 'int64', shape: [1, P], data: new BigInt64Array(P) } }, { fetch: [first] });
    } catch (e) {
      if (padTo !== null) throw e;
      throw new InputError(`${source.file} does not run a one-token prompt (${(e as Error).message.split('\n')[0]}); if its export fixed the sequence length, pad prompts to that length (padTo, --pad-to)`);
    }
    const resid = probe.hooks[first];
    if (resid.shape.length !== 3) throw new InputError(`${first} (tensor '${source.tensorOf(first)}') has shape [${resid.shape.join(', ')}]; a residual stream is [batch, seq, d_model]`);
    if (probe.output.shape.length !== 3) throw new InputError(`the output '${source.output}' has shape [${probe.output.shape.join(', ')}]; the analyses need [batch, seq, vocab]`);
    return new SourceEngine(source, resid.shape[2], probe.output.shape[2], padTo, options.split !== false);
  }

  /** Checks that a task's prompts are token ids the model has: its symbols, then → and ,. */
  checkTask(cfg: TaskConfig): void {
    const io = taskIO(cfg);
    if (io.input !== 'tokens') throw new InputError(`${cfg.kind} prompts are vectors, and ${this.source.file} takes token ids: give a token task (discrete, hmm or dfa)`);
    if (io.vocabSize > this.outWidth) {
      throw new InputError(
        `the task's prompts use token ids 0..${io.vocabSize - 1} (vocab ${cfg.vocab} symbols, then → = ${cfg.vocab} and , = ${cfg.vocab + 1}), but ${this.source.file} has ${this.outWidth} outputs (its vocabulary): give a task config with vocab ≤ ${this.outWidth - 2}`,
      );
    }
  }

  checkLayer(layer: number, kind: Site['kind'] = 'resid'): void {
    checkLayer(layer, this.layers, kind);
  }

  checkSeq(seq: number): void {
    this.source.checkSeq(seq);
    if (this.padTo !== null && seq > this.padTo) throw new InputError(`prompts of ${seq} positions are longer than the ${this.padTo} that ${this.source.file} runs at (padTo); use fewer demos`);
  }

  async at(feeds: Record<string, HostTensor>, position: number): Promise<{ resid: Float32Array; last: Float32Array }> {
    const [B, T] = shapeOf(feeds);
    checkPosition(position, T);
    const r = await this.run(feeds, { fetch: this.resid });
    const [L1, D, P] = [this.layers + 1, this.dims.dModel, r.seq];
    const resid = new Float32Array(B * L1 * D); // [B, L+1, D]
    this.resid.forEach((hook, l) => {
      const x = r.hooks[hook].data as Float32Array; // [B, P, D]
      for (let n = 0; n < B; n++) resid.set(x.subarray((n * P + position) * D, (n * P + position + 1) * D), (n * L1 + l) * D);
    });
    return { resid, last: outputAt(r.output, T - 1) };
  }

  async base(feeds: Record<string, HostTensor>, options: { z?: boolean } = {}): Promise<SourceRun> {
    if (options.z) throw new InputError(HEAD_PATCHING_NEEDS_CHECKPOINT);
    const [B, T] = shapeOf(feeds);
    const cuts = [...new Set(this.splits.flatMap((s) => s?.cuts ?? []))];
    const r = await this.run(feeds, { fetch: this.resid, tensors: cuts });
    const [D, P] = [this.dims.dModel, r.seq];
    const unpad = (x: Float32Array) => {
      if (P === T) return x;
      const out = new Float32Array(B * T * D); // [B, P, D] → [B, T, D]
      for (let n = 0; n < B; n++) out.set(x.subarray(n * P * D, (n * P + T) * D), n * T * D);
      return out;
    };
    const suffix = this.splits.some((s) => s) ? { feeds: this.source.modelFeeds(P === T ? feeds : padFeeds(feeds, P)), resid: this.resid.map((h) => r.hooks[h]), cuts: r.tensors } : null;
    return { batch: B, seq: T, resid: this.resid.map((h) => unpad(r.hooks[h].data as Float32Array)), z: null, out: outputAt(r.output, T - 1), feeds, suffix };
  }

  /** Each variant through the graph suffix from its one patched layer where it can, else in full. */
  async patched(base: SourceRun, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]> {
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

  /** One variant at one residual layer: the base run's residual with the patch written in, through the suffix. */
  private async runSuffix(base: SourceRun, v: Variant, layer: number, split: SuffixSplit): Promise<Float32Array> {
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
      session = Session.open(encodeModel(suffixModel(this.source.model, split, dtypes)), this.source.sessionOptions);
      this.suffixSessions.set(layer, session);
    }
    const r = await (await session).run(feeds, [split.output]);
    return outputAt(r[split.output], T - 1);
  }

  async patchedNaive(feeds: Readonly<Record<string, HostTensor>>, variants: readonly Variant[], onProgress?: (done: number, total: number) => void): Promise<Float32Array[]> {
    const [B, T] = shapeOf(feeds);
    const P = this.padTo ?? T;
    const out: Float32Array[] = [];
    for (const v of variants) {
      const r = await this.run(feeds, { patches: this.patches(v, B, T, P) });
      out.push(outputAt(r.output, T - 1));
      onProgress?.(out.length, variants.length);
    }
    return out;
  }

  async release(): Promise<void> {
    const all = [...this.suffixSessions.values()];
    this.suffixSessions.clear();
    for (const s of all) await (await s).release();
    await this.source.close();
  }

  /** Runs prompts [B, T] padded to [B, P]; `seq` is P. */
  private async run(feeds: Readonly<Record<string, HostTensor>>, options: RunOptions): Promise<RunResult & { seq: number }> {
    const [, T] = shapeOf(feeds);
    this.checkSeq(T);
    const P = this.padTo ?? T;
    return { ...(await this.source.run(P === T ? feeds : padFeeds(feeds, P), options)), seq: P };
  }

  /** A variant as one patch per residual layer: value [B, P, D], mask [B, P, 1] = 1 exactly at the written cells. */
  private patches(v: Variant, B: number, T: number, P: number): Patch[] {
    if (v.length === 0) throw new InputError('a patched variant needs at least one patch');
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

/** [batch, seq] of a prompt batch's feeds. */
function shapeOf(feeds: Readonly<Record<string, HostTensor>>): [number, number] {
  const first = Object.values(feeds)[0];
  if (!first || first.shape.length < 2) throw new InputError('expected prompt feeds of shape [batch, seq]');
  return [first.shape[0], first.shape[1]];
}

/** The output at one position: [B, P, O] → [B, O]. */
function outputAt(output: HostTensor, position: number): Float32Array {
  const [B, P, O] = output.shape;
  const data = output.data as Float32Array;
  const out = new Float32Array(B * O);
  for (let n = 0; n < B; n++) out.set(data.subarray((n * P + position) * O, (n * P + position + 1) * O), n * O);
  return out;
}

/** Each feed [B, T, …] padded with zeros on axis 1 to [B, P, …]. */
export function padFeeds(feeds: Readonly<Record<string, HostTensor>>, P: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(feeds)) {
    const [B, T] = t.shape;
    const row = t.data.length / (B * T);
    const data = new (t.data.constructor as new (n: number) => HostTensor['data'])(B * P * row);
    for (let n = 0; n < B; n++) data.set(t.data.subarray(n * T * row, (n + 1) * T * row) as never, n * P * row);
    out[name] = { dtype: t.dtype, shape: [B, P, ...t.shape.slice(2)], data };
  }
  return out;
}
