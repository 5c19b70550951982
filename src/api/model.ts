/**
 * `openModel`: one Model for a tvlens checkpoint and a foreign ONNX model alike, with
 * TransformerLens-like methods. Behind it, the pieces the analyses are built from:
 *
 *   ModelSource   runs the ONNX model as it is, fetching and patching hooks by graph rewrites
 *                 (run, runWithCache, cacheToArrow);
 *   Engine        a checkpoint's fast path: the suffix forward reuses everything before a patch;
 *   SourceEngine  a foreign model's path through its hook map: the ONNX graph split at the
 *                 patched hook, the prefix run once and the suffix once per variant.
 *
 * Layers in the task-vector analyses follow LAYER_CONVENTION: layer ℓ is the residual stream
 * entering block ℓ (ℓ = 0 the embeddings, `blocks.0.hook_resid_pre`; ℓ ≥ 1
 * `blocks.{ℓ-1}.hook_resid_post`; ℓ = L the final stream). Hook names are TransformerLens's.
 */
import { type AttributionOptions, type AttributionResult, attributionPatch } from '../analysis/attribution.js';
import type { AnalysisEngine } from '../analysis/contracts.js';
import { Engine, fromCheckpoint } from '../analysis/engine.js';
import { type ForeignFvResult, foreignFunctionVectors } from '../analysis/foreign-fv.js';
import { type ForeignAttributionResult, foreignAttribution } from '../analysis/foreign-attribution.js';
import { type FunctionVectorOptions, type FunctionVectorResult, functionVectors } from '../analysis/function-vectors.js';
import { type LocalityOptions, type LocalityResult, locality } from '../analysis/locality.js';
import { type PatchOptions, type PatchResult, type PromptPair, patch, promptPairsFrom } from '../analysis/patching.js';
import { SourceEngine, padFeeds } from '../analysis/source-engine.js';
import { ModelSource, type Patch } from '../analysis/source.js';
import { type SearchPrompts, type TvSearchOptions, type TvSearchResult, searchPromptsFrom, tvSearch } from '../analysis/tv-search.js';
import { type CacheSummary, type PositionSpec, selectHooks, writeCache } from '../analysis/cache.js';
import { loadCheckpoint } from '../checkpoint/checkpoint.js';
import type { Manifest } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { type HookPoint, residualAtLayer } from '../model/hooks.js';
import type { HostTensor, Provider } from '../runtime/session.js';
import type { Batch, Split, Task, TaskConfig } from '../tasks/index.js';
import { type PromptRecord, maxTokenId, recordsToBatch } from '../tasks/prompt-file.js';
import { batchFeeds } from '../tasks/feeds.js';
import { type TextPrompts, type TextTaskInput, isTextTaskInput, textPrompts } from '../text/tasks.js';
import { TextTokenizer } from '../text/tokenizer.js';
import { Tensor } from './tensor.js';

// Node 20 defines Symbol.asyncDispose; older runtimes get the well-known registry symbol, as
// TypeScript's own `await using` helper does.
(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for('Symbol.asyncDispose');

export interface OpenModelOptions {
  /**
   * For a foreign model (an .onnx tvlens did not make): a hook map file, or its JSON, mapping
   * the graph's tensor names to hook names. Default: none (the model runs, but has no hooks).
   */
  readonly hookMap?: string | Record<string, unknown>;
  /** Execution provider. Default 'cpu'. */
  readonly provider?: Provider;
  /** ONNX Runtime threads. Default: one per core. */
  readonly threads?: number;
  /** For a foreign export that fixed the sequence length: run prompts padded on the right to this length. Default: none. */
  readonly padTo?: number;
}

/** Prompts as token ids: rows of equal length, a [batch, pos] int64 tensor, or a tvlens batch (vector models too). */
export type Prompts = readonly (readonly number[])[] | Tensor<BigInt64Array> | Batch;

/**
 * A patch as data: write (or add) `value` into `hook` at `positions` of every prompt.
 * `value` is one cell's value (d_model for a residual hook; [head, d_head] for attn.hook_z),
 * broadcast over prompts and positions, or a tensor [batch, positions, …] with one value each.
 */
export interface HookPatch {
  readonly hook: string;
  /** Positions on the hook's pos axis; negative count from the end. Default: every position. */
  readonly positions?: readonly number[];
  readonly value: Tensor | ArrayLike<number>;
  /** 'replace' the activation (default) or 'add' to it. */
  readonly mode?: 'replace' | 'add';
}

export interface RunOptions {
  /** Patches applied in this run. Default none. */
  readonly patches?: readonly HookPatch[];
}

export interface RunWithCacheOptions extends RunOptions {
  /** Hooks to cache, by name. Default: every hook (or those `filter` keeps). */
  readonly names?: readonly string[];
  /** Keeps the hooks for which it returns true. */
  readonly filter?: (name: string) => boolean;
}

/** Activations of one run by hook name, as `run_with_cache` returns them. Patched hooks show their value before the patch. */
export class ActivationCache {
  constructor(private readonly tensors: ReadonlyMap<string, Tensor>) {}

  /** The activation at a hook, e.g. `cache.get('blocks.1.hook_resid_post')` [batch, pos, d_model]. */
  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new InputError(`the cache holds no hook '${name}'. It holds: ${[...this.tensors.keys()].join(', ') || 'nothing'}`);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** The residual stream at task-vector layer ℓ (see LAYER_CONVENTION) [batch, pos, d_model]. */
  residual(layer: number): Tensor {
    return this.get(residualAtLayer(layer).name);
  }

  get names(): string[] {
    return [...this.tensors.keys()];
  }

  [Symbol.iterator](): IterableIterator<[string, Tensor]> {
    return this.tensors.entries();
  }
}

/** Prompts for an analysis: a task config to draw them from, or your own (prompt records, or built prompt sets). */
export type SearchInput = TaskConfig | readonly PromptRecord[] | SearchPrompts | TextTaskInput;
export type PatchInput = TaskConfig | readonly PromptRecord[] | PromptPair | TextTaskInput;

export interface CacheToArrowOptions {
  /** Prompts: a task config (drawn with `count`, `seed`, …) or prompt records. Default: a checkpoint's own task config. */
  readonly prompts?: TaskConfig | readonly PromptRecord[];
  /** Hook names or globs; 'resid' is the residual stream at every task-vector layer. Default ['resid']. */
  readonly hooks?: readonly string[];
  /** Keep only hooks of these blocks. Default: all. */
  readonly layers?: readonly number[];
  /** Default 'last-arrow' (each prompt's query, or a record's position). */
  readonly positions?: PositionSpec;
  /** Prompts drawn from a task config. Default 256. */
  readonly count?: number;
  readonly seed?: number;
  readonly demos?: number;
  readonly split?: Split;
  /** Prompts per forward pass and record batch. Default 32. */
  readonly chunk?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Options of `Model.functionVectors`: the analysis's own (FunctionVectorOptions, whose other
 * fields give their defaults), with the defaults of those it leaves unsaid written out here.
 */
export interface FunctionVectorsOptions extends FunctionVectorOptions {
  /** These tasks instead of a split's. Default: the split's tasks (at most maxTasks). */
  readonly tasks?: readonly Task[];
  /** Called as each stage goes: (stage, done, total). Default: none. */
  readonly onProgress?: (stage: string, done: number, total: number) => void;
}

/**
 * Options of `Model.attributionPatch`: the analysis's own (AttributionOptions, whose other fields
 * give their defaults), with the defaults of those it leaves unsaid written out here. Prompt pairs
 * of your own go in the method's first argument (or `pairs`).
 */
export interface AttributionPatchOptions extends AttributionOptions {
  /** Tasks of this split. Default 'train'. */
  readonly split?: 'train' | 'heldout';
  /** These tasks instead of a split's. Default: the split's tasks (at most maxTasks). */
  readonly tasks?: readonly Task[];
  /** At most this many tasks. Default 8. */
  readonly maxTasks?: number;
  /** Seed of the prompt pairs. Default 0. */
  readonly seed?: number;
  /** These prompt pairs instead of drawing them from the task config. Default: drawn. */
  readonly pairs?: PromptPair;
  /** Called as exact patching goes: (done, total) cells. Default: none. */
  readonly onProgress?: (done: number, total: number) => void;
}

export class Model implements AsyncDisposable {
  private engineOpen: Promise<AnalysisEngine> | null = null;
  private textTokenizer: TextTokenizer | null = null;

  private constructor(
    private readonly source: ModelSource,
    private readonly options: OpenModelOptions,
    /** d_model where known: a checkpoint's, or a foreign model's read off its residual stream. */
    readonly dModel: number | null,
    private foreignEngine: SourceEngine | null,
  ) {}

  /** 'tvlens' (a checkpoint) or 'foreign'. */
  get kind(): 'tvlens' | 'foreign' {
    return this.source.kind;
  }

  /** The .onnx file. */
  get file(): string {
    return this.source.file;
  }

  /** Hook names, in forward order (TransformerLens names). */
  get hooks(): string[] {
    return this.source.hooks.map((h) => h.name);
  }

  /** Hook points with their kind, block and axes. */
  get hookPoints(): readonly HookPoint[] {
    return this.source.hooks;
  }

  /** Blocks, L; task-vector layers are 0..L. */
  get layers(): number {
    return this.source.layers;
  }

  /** A checkpoint's model config; null for a foreign model. */
  get config(): ModelConfig | null {
    return this.source.manifest?.model ?? null;
  }

  /** A checkpoint's manifest; null for a foreign model. */
  get manifest(): Manifest | null {
    return this.source.manifest;
  }

  /** The task config a checkpoint was trained on; null for a foreign model. */
  get taskConfig(): TaskConfig | null {
    return this.source.taskConfig;
  }

  /** A checkpoint's weights hash, or the sha256 of a foreign model's file. */
  get modelHash(): string {
    return this.source.modelHash;
  }

  /** The longest prompt the model takes, where known. */
  get maxSeq(): number | null {
    return this.options.padTo ?? this.source.maxSeq;
  }

  /** A model folder's tokenizer (tokenizer.json), checked against the model's vocabulary on first use. */
  get tokenizer(): TextTokenizer {
    if (this.textTokenizer) return this.textTokenizer;
    const folder = this.source.folder;
    if (!folder) throw new InputError(`${this.file} was opened as a file: open its folder (model.onnx with tokenizer.json beside it) to use text`);
    if (!folder.tokenizer) throw new InputError(`${folder.dir} has no tokenizer.json: save the model's tokenizer beside it (tokenizer.save_pretrained(dir) writes one)`);
    const tok = TextTokenizer.load(folder.tokenizer);
    const width = this.foreignEngine?.outWidth ?? null;
    if (width !== null && tok.vocabSize > width) throw new InputError(`${folder.tokenizer} has ${tok.vocabSize} tokens, but ${this.file} scores ${width}: the tokenizer is not this model's`);
    this.textTokenizer = tok;
    return tok;
  }

  /** Token ids of `text` (with the tokens the tokenizer adds around a text, e.g. BOS, when `special`). */
  tokenize(text: string, special = false): number[] {
    return this.tokenizer.encode(text, special);
  }

  /** A text task's prompts as token records: for tv-search (`search`) and patching (`pairs`). */
  textPrompts(input: TextTaskInput): TextPrompts {
    return textPrompts(this.tokenizer, input);
  }

  /** Logits [batch, pos, vocab] (or predictions [batch, pos, d_out] for a vector model). */
  async run(prompts: Prompts, options: RunOptions = {}): Promise<Tensor> {
    return (await this.forward(prompts, [], options.patches ?? [])).logits;
  }

  /** Logits and the activations at the chosen hooks, as TransformerLens's run_with_cache. */
  async runWithCache(prompts: Prompts, options: RunWithCacheOptions = {}): Promise<{ logits: Tensor; cache: ActivationCache }> {
    let names = options.names ? options.names.map((n) => this.source.hook(n).name) : this.hooks;
    if (options.filter) names = names.filter(options.filter);
    return this.forward(prompts, names, options.patches ?? []);
  }

  /**
   * Task-vector search at every layer (or `options.layers`): θ_ℓ from demo prompts written into
   * zero-shot prompts. Prompts: a task config (default: a checkpoint's own), or your own prompt
   * records (role "demo" and "query"; see the README's prompts-file schema).
   */
  async tvSearch(prompts?: SearchInput, options: TvSearchOptions = {}): Promise<TvSearchResult> {
    const engine = await this.engine();
    const { cfg, given } = this.searchInput(prompts);
    return tvSearch(engine, cfg, { ...options, given: given ?? options.given });
  }

  /** Activation patching between clean and corrupted prompts: drawn from a task config, or your own pairs. */
  async patch(pairs?: PatchInput, options: PatchOptions = {}): Promise<PatchResult> {
    const engine = await this.engine();
    if (isTextTaskInput(pairs)) pairs = this.textPrompts(pairs).pairs;
    if (pairs && isRecords(pairs)) {
      this.checkPrompts(pairs);
      return patch(engine, null, { ...options, pairs: promptPairsFrom(pairs) });
    }
    if (pairs && 'clean' in pairs) return patch(engine, null, { ...options, pairs });
    return patch(engine, this.taskFor(pairs as TaskConfig | undefined), options);
  }

  /** Locality, strength and separability of the task vectors (a search with best-k combinations). */
  async locality(prompts?: SearchInput, options: LocalityOptions = {}): Promise<LocalityResult> {
    const engine = await this.engine();
    const { cfg, given } = this.searchInput(prompts);
    return locality(engine, cfg, { ...options, given: given ?? options.given }, { file: this.file, step: this.manifest?.step });
  }

  /**
   * Function vectors (Todd et al.): heads ranked by their indirect effect on shuffled-label
   * prompts, the top-k heads' mean outputs summed through W_O, and that sum added to zero-shot
   * prompts at each layer (beside Hendel's task vector). Tasks: a task config (default: a
   * checkpoint's own). A tvlens checkpoint only: it reads per-head outputs and W_O.
   */
  async functionVectors(task?: TaskConfig, options?: FunctionVectorsOptions): Promise<FunctionVectorResult>;
  /** Function vectors of text tasks on a model folder (foreign-fv.ts): heads by AIE, FV = Σ top-k z̄ · W_O slice, added at each layer. */
  async functionVectors(task: TextTaskInput, options?: { topK?: number }): Promise<ForeignFvResult>;
  async functionVectors(task?: TaskConfig | TextTaskInput, options: FunctionVectorsOptions = {}): Promise<FunctionVectorResult | ForeignFvResult> {
    if (isTextTaskInput(task)) {
      const { search, pairs } = this.textPrompts(task);
      return foreignFunctionVectors(this.source, search, pairs, { topK: options.topK });
    }
    const engine = await this.checkpointEngine('function vectors need a tvlens checkpoint (they read and project per-head outputs)', 'tvSearch (the task vector)');
    return functionVectors(engine, this.taskFor(task), options);
  }

  /**
   * Attribution patching: every cell of every site (ATTRIBUTION_SITES) estimated from one forward
   * and one forward-plus-backward pass, and (unless `exact: false`) checked against exact
   * patching. Pairs as for `patch`: drawn from a task config (default: a checkpoint's own), or
   * your own. A tvlens checkpoint only: it differentiates the model.
   */
  async attributionPatch(pairs?: PatchInput, options?: AttributionPatchOptions): Promise<AttributionResult>;
  /** On a model folder with text pairs: residual-stream attribution through the imported graph (foreign-attribution.ts). */
  async attributionPatch(pairs: TextTaskInput | readonly PromptRecord[], options?: AttributionPatchOptions): Promise<AttributionResult | ForeignAttributionResult>;
  async attributionPatch(pairs?: PatchInput, options: AttributionPatchOptions = {}): Promise<AttributionResult | ForeignAttributionResult> {
    if (this.kind === 'foreign' && (isTextTaskInput(pairs) || (pairs && isRecords(pairs)))) {
      const records = isTextTaskInput(pairs) ? this.textPrompts(pairs).pairs : (pairs as readonly PromptRecord[]);
      this.checkPrompts(records);
      return foreignAttribution(this.source, records);
    }
    const engine = await this.checkpointEngine('attribution patching needs a tvlens checkpoint (it differentiates the model)', 'patch (exact patching)');
    if (isTextTaskInput(pairs)) pairs = this.textPrompts(pairs).pairs;
    if (pairs && isRecords(pairs)) {
      this.checkPrompts(pairs);
      return attributionPatch(engine, null, { ...options, pairs: promptPairsFrom(pairs) });
    }
    if (pairs && 'clean' in pairs) return attributionPatch(engine, null, { ...options, pairs });
    return attributionPatch(engine, this.taskFor(pairs as TaskConfig | undefined), options);
  }

  /** Streams chosen hooks at chosen positions to an Arrow IPC file (pyarrow reads it as it is). */
  async cacheToArrow(file: string, options: CacheToArrowOptions = {}): Promise<CacheSummary> {
    const hooks = selectHooks(this.source, options.hooks ?? ['resid'], options.layers);
    const records = options.prompts && isRecords(options.prompts) ? options.prompts : null;
    if (records) this.checkPrompts(records);
    const given = records ? recordsToBatch(records) : undefined;
    const task = records ? null : this.taskFor(options.prompts as TaskConfig | undefined);
    return writeCache(
      this.source,
      file,
      { task, given, prompts: given ? given.batch : (options.count ?? 256), hooks, positions: options.positions, seed: options.seed, demos: options.demos, split: options.split, chunk: options.chunk },
      options.onProgress,
    );
  }

  /** The engine the analyses run on (opened on first use). */
  engine(): Promise<AnalysisEngine> {
    if (this.foreignEngine) return Promise.resolve(this.foreignEngine);
    this.engineOpen ??= (async () => {
      if (this.kind === 'foreign') throw new InputError(`${this.file} has no residual hooks to analyse: open it with a hook map naming blocks.{l}.hook_resid_post for every block`);
      const { provider, threads } = this.options;
      return Engine.open(fromCheckpoint(loadCheckpoint(this.file)), { provider, threads });
    })();
    return this.engineOpen;
  }

  /** Checks that a task's token ids fit a foreign model's vocabulary (checkpoints check their own). */
  checkTask(cfg: TaskConfig): void {
    this.foreignEngine?.checkTask(cfg);
  }

  async close(): Promise<void> {
    if (this.engineOpen) await (await this.engineOpen.catch(() => null))?.release();
    await this.foreignEngine?.release();
    await this.source.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- inside ----------------------------------------------------------------------------------

  /** @internal */
  static async open(file: string, options: OpenModelOptions = {}): Promise<Model> {
    const { hookMap, provider, threads, padTo } = options;
    const source = ModelSource.open(file, { hookMap, provider, threads });
    try {
      if (source.kind === 'tvlens') {
        if (padTo !== undefined) throw new InputError('padTo applies to a foreign model; a checkpoint runs prompts at their own length');
        return new Model(source, options, source.manifest!.model.dModel, null);
      }
      const engine = source.layers > 0 ? await SourceEngine.open(source, { padTo }) : null;
      return new Model(source, options, engine?.dims.dModel ?? null, engine);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  /** A checkpoint's Engine, for the analyses a foreign model cannot run: `need` says why they need one, `instead` what runs on a foreign model. */
  private async checkpointEngine(need: string, instead: string): Promise<Engine> {
    if (this.kind === 'foreign') throw new InputError(`${need}, and ${this.file} is a foreign model: use ${instead} on it`);
    return (await this.engine()) as Engine; // a checkpoint's engine is always an Engine
  }

  private taskFor(cfg: TaskConfig | undefined): TaskConfig {
    const task = cfg ?? this.taskConfig;
    if (!task) throw new InputError(`${this.file} is a foreign model, which has no task config: give one, or your own prompts`);
    this.checkTask(task);
    return task;
  }

  private searchInput(prompts: SearchInput | undefined): { cfg: TaskConfig | null; given?: SearchPrompts } {
    if (isTextTaskInput(prompts)) prompts = this.textPrompts(prompts).search;
    if (prompts && isRecords(prompts)) {
      this.checkPrompts(prompts);
      return { cfg: null, given: searchPromptsFrom(prompts) };
    }
    if (prompts && 'demos' in prompts && 'queries' in prompts && typeof prompts.queries === 'object') return { cfg: null, given: prompts as SearchPrompts };
    return { cfg: this.taskFor(prompts as TaskConfig | undefined) };
  }

  /** Checks that prompt records are token ids within the vocabulary, where it is known. */
  checkPrompts(records: readonly PromptRecord[]): void {
    const vocab = this.config ? (this.config.output === 'logits' ? this.config.vocab : null) : (this.foreignEngine?.outWidth ?? null);
    if (this.config && this.config.input !== 'tokens') throw new InputError(`${this.file} takes vectors, and prompts files hold token ids`);
    const top = maxTokenId(records);
    if (vocab !== null && top >= vocab) throw new InputError(`the prompts use token id ${top}, but ${this.file} has a vocabulary of ${vocab} (ids 0..${vocab - 1})`);
  }

  private async forward(prompts: Prompts, names: readonly string[], patches: readonly HookPatch[]): Promise<{ logits: Tensor; cache: ActivationCache }> {
    if (prompts === null || typeof prompts !== 'object') throw new InputError(`prompts must be rows of token ids (e.g. [[3, 12, 5]]), an int64 Tensor [batch, pos] or a tvlens Batch; got ${prompts === null ? 'null' : typeof prompts}`);
    if (!Array.isArray(patches)) throw new InputError('patches must be a list of { hook, value, positions?, mode? }');
    let feeds = toFeeds(prompts);
    const [B, T] = feeds[Object.keys(feeds)[0]].shape;
    this.checkFeeds(feeds, T);
    const P = this.options.padTo ?? T;
    if (P < T) throw new InputError(`prompts of ${T} positions are longer than the ${P} that ${this.file} runs at (padTo)`);
    if (P > T) feeds = padFeeds(feeds, P);
    const sourcePatches = patches.map((p) => this.sourcePatch(p, B, T, P));
    const r = await this.source.run(feeds, { fetch: names, patches: sourcePatches });
    const unpad = (t: HostTensor, axis: number) => (P === T ? Tensor.from(t) : Tensor.from(cutAxis(t, axis, T)));
    const cache = new Map(names.map((n) => [n, unpad(r.hooks[n], this.source.hook(n).axes[1] === 'pos' ? 1 : -1)]));
    return { logits: unpad(r.output, 1), cache: new ActivationCache(cache) };
  }

  /** Token ids within the vocabulary and prompts within the context, where the model says what they are (else ONNX Runtime fails in its own words, or reads past a table). */
  private checkFeeds(feeds: Record<string, HostTensor>, T: number): void {
    const context = this.config?.maxSeq ?? this.source.maxSeq;
    if (context && T > context) throw new InputError(`prompts of ${T} positions are longer than the context of ${this.file} (${context} positions)`);
    const vocab = this.config ? (this.config.input === 'tokens' ? this.config.vocab : null) : null;
    const tokens = feeds.tokens?.dtype === 'int64' ? (feeds.tokens.data as BigInt64Array) : null;
    if (tokens && vocab !== null) {
      for (let i = 0; i < tokens.length; i++) {
        if (tokens[i] < 0n || tokens[i] >= BigInt(vocab)) throw new InputError(`token id ${tokens[i]} (prompt ${Math.floor(i / T)}, position ${i % T}) is outside the vocabulary of ${this.file} (ids 0..${vocab - 1})`);
      }
    }
  }

  /** A patch as data → value and mask tensors over the whole hook [B, P, …cell]. */
  private sourcePatch(p: HookPatch, B: number, T: number, P: number): Patch {
    if (p === null || typeof p !== 'object' || typeof p.hook !== 'string') throw new InputError('a patch is { hook: string, value, positions?, mode? }');
    if (p.mode !== undefined && p.mode !== 'replace' && p.mode !== 'add') throw new InputError(`patch at ${p.hook}: unknown mode ${JSON.stringify(p.mode)}. Should be one of: replace, add`);
    if (p.value === undefined || p.value === null || (typeof p.value !== 'object' && typeof p.value !== 'string')) throw new InputError(`patch at ${p.hook}: no value (give a Tensor or a list of numbers)`);
    if (!(p.value instanceof Tensor) && (typeof p.value === 'string' || typeof (p.value as ArrayLike<number>).length !== 'number')) throw new InputError(`patch at ${p.hook}: the value must be a Tensor or a list of numbers`);
    const hook = this.source.hook(p.hook);
    if (hook.axes[1] !== 'pos') throw new InputError(`patches as data write along the pos axis; ${hook.name} is [${hook.axes.join(', ')}]`);
    const cellRank = hook.axes.length - 2;
    const positions = (p.positions ?? Array.from({ length: T }, (_, i) => i)).map((q) => {
      const at = q < 0 ? T + q : q;
      if (!Number.isInteger(at) || at < 0 || at >= T) throw new InputError(`patch at ${hook.name}: position ${q} is out of range for prompts of ${T} positions`);
      return at;
    });
    const full = p.value instanceof Tensor && p.value.dims.length === hook.axes.length;
    let cellDims: number[];
    if (p.value instanceof Tensor) {
      cellDims = full ? p.value.dims.slice(2) : [...p.value.dims];
      if (full && (p.value.dims[0] !== B || p.value.dims[1] !== positions.length)) {
        throw new InputError(`patch at ${hook.name}: a per-prompt value has dims [${p.value.dims.join(', ')}], expected [${B}, ${positions.length}, …]`);
      }
    } else if (cellRank === 1) cellDims = [p.value.length];
    else if (this.config && hook.kind === 'attn.hook_z') cellDims = [this.config.heads, this.config.dModel / this.config.heads];
    else throw new InputError(`patch at ${hook.name}: give the value as a Tensor with dims [${hook.axes.slice(2).join(', ')}]`);
    const known: Record<string, number | undefined> = { d_model: this.dModel ?? undefined, head: this.config?.heads, d_head: this.config ? this.config.dModel / this.config.heads : undefined };
    const expected = hook.axes.slice(2).map((a) => known[a]);
    if (cellDims.length !== cellRank || cellDims.some((d, i) => expected[i] !== undefined && d !== expected[i])) {
      throw new InputError(`patch at ${hook.name}: a value of dims [${cellDims.join(', ')}] (${cellDims.reduce((a, b) => a * b, 1)} numbers) does not fit [${hook.axes.slice(2).map((a, i) => expected[i] ?? a).join(', ')}]`);
    }
    const width = cellDims.reduce((a, b) => a * b, 1);
    const src = p.value instanceof Tensor ? p.value.data : p.value;
    if (!full && src.length !== width) throw new InputError(`patch at ${hook.name}: the value has ${src.length} numbers, its dims [${cellDims.join(', ')}] ${width}`);
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new InputError(`patch at ${hook.name}: value ${i} is ${typeof v === 'number' ? v : JSON.stringify(v)}, not a finite number`);
    }
    const value = new Float32Array(B * P * width);
    const mask = new Float32Array(B * P);
    for (let n = 0; n < B; n++) {
      positions.forEach((pos, i) => {
        const from = full ? (n * positions.length + i) * width : 0;
        for (let d = 0; d < width; d++) value[(n * P + pos) * width + d] = Number(src[from + d]);
        mask[n * P + pos] = 1;
      });
    }
    return {
      hook: hook.name,
      mode: p.mode ?? 'replace',
      value: { dtype: 'float32', shape: [B, P, ...cellDims], data: value },
      mask: { dtype: 'float32', shape: [B, P, ...cellDims.map(() => 1)], data: mask },
    };
  }
}

/** Opens a tvlens checkpoint (.onnx with its manifest beside it) or a foreign ONNX model (with a hook map). */
export function openModel(file: string, options: OpenModelOptions = {}): Promise<Model> {
  return Model.open(file, options);
}

const isRecords = (x: object): x is readonly PromptRecord[] => Array.isArray(x);

function toFeeds(prompts: Prompts): Record<string, HostTensor> {
  if (prompts instanceof Tensor) {
    if (prompts.dims.length !== 2 || !(prompts.data instanceof BigInt64Array)) throw new InputError(`token prompts are an int64 tensor [batch, pos], got dims [${prompts.dims.join(', ')}]`);
    return { tokens: { dtype: 'int64', shape: prompts.dims, data: prompts.data } };
  }
  if (Array.isArray(prompts)) {
    const rows = prompts as readonly (readonly number[])[];
    if (rows.length === 0 || !rows.every((r) => Array.isArray(r))) throw new InputError('token prompts are rows of token ids, e.g. [[3, 12, 5]]');
    const T = rows[0].length;
    if (T === 0 || rows.some((r) => r.length !== T)) throw new InputError('token prompts must be non-empty rows of one length');
    const data = new BigInt64Array(rows.length * T);
    rows.forEach((r, b) =>
      r.forEach((t, p) => {
        if (!Number.isInteger(t) || t < 0) throw new InputError(`token ${t} (prompt ${b}, position ${p}) is not a token id`);
        data[b * T + p] = BigInt(t);
      }),
    );
    return { tokens: { dtype: 'int64', shape: [rows.length, T], data } };
  }
  return batchFeeds(prompts as Batch, false);
}

/** The first `T` entries along `axis` (−1: none cut). */
function cutAxis(t: HostTensor, axis: number, T: number): HostTensor {
  if (axis < 0) return t;
  const outer = t.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const P = t.shape[axis];
  const inner = t.data.length / (outer * P);
  const data = new (t.data.constructor as new (n: number) => HostTensor['data'])(outer * T * inner);
  for (let o = 0; o < outer; o++) data.set(t.data.subarray(o * P * inner, (o * P + T) * inner) as never, o * T * inner);
  return { dtype: t.dtype, shape: [...t.shape.slice(0, axis), T, ...t.shape.slice(axis + 1)], data };
}
