/**
 * `openModel`: one Model for a tvlens checkpoint and a foreign ONNX model alike, with
 * TransformerLens-like methods. It is the only door: behind it sits one backend (backend/), the
 * GraphBackend of a checkpoint or the FileBackend of a foreign model, and the model is loaded once.
 * The guards live here, so every consumer gets them: a task must fit the model (its vocabulary, its
 * context), prompts files must hold ids the model has, prompts must be the kind it takes.
 *
 * Layers in the task-vector analyses follow LAYER_CONVENTION: layer ℓ is the residual stream
 * entering block ℓ (ℓ = 0 the embeddings, `blocks.0.hook_resid_pre`; ℓ ≥ 1
 * `blocks.{ℓ-1}.hook_resid_post`; ℓ = L the final stream). Hook names are TransformerLens's.
 */
import { type AttributionResult, attributionPatch } from '../analysis/attribution.js';
import { type CacheSummary, selectHooks, writeCache } from '../analysis/cache.js';
import { type FunctionVectorResult, functionVectors } from '../analysis/function-vectors.js';
import { type ForeignFvResult, foreignFunctionVectors } from '../analysis/foreign-fv.js';
import { type ForeignAttributionResult, foreignAttribution } from '../analysis/foreign-attribution.js';
import { type LocalityOptions, type LocalityResult, locality } from '../analysis/locality.js';
import { type PatchOptions, type PatchResult, patch, promptPairsFrom } from '../analysis/patching.js';
import { type SearchPrompts, searchPromptsFrom } from '../analysis/search-prompts.js';
import { type TvSearchOptions, type TvSearchResult, tvSearch } from '../analysis/tv-search.js';
import type { Backend } from '../backend/backend.js';
import { padFeeds } from '../backend/feeds.js';
import { FileBackend } from '../backend/file.js';
import { type ResidualCandidate, residualCandidates, suggestHookMap } from '../backend/hookmap.js';
import { suggestHooks } from '../backend/suggest-hooks.js';
import { GraphBackend } from '../backend/graph.js';
import { openBackend } from '../backend/open.js';
import type { Manifest } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import type { HookPoint } from '../model/hooks.js';
import type { HostTensor } from '../runtime/session.js';
import { type TaskConfig, resolveTaskConfig, taskIO } from '../tasks/index.js';
import { type PromptRecord, maxTokenId, recordsToBatch } from '../tasks/prompt-file.js';
import { type TextPrompts, type TextTaskInput, isTextTaskInput, textPrompts } from '../text/tasks.js';
import { TextTokenizer } from '../text/tokenizer.js';
import { ActivationCache, type Unembed } from './activation-cache.js';
import { cutAxis, hookPatch, toFeeds } from './feeds.js';
import type { AttributionPatchOptions, CacheToArrowOptions, FunctionVectorsOptions, HookPatch, OpenModelOptions, PatchInput, Prompts, RunOptions, RunWithCacheOptions, SearchInput } from './options.js';
import { Tensor } from './tensor.js';

// Node 20 defines Symbol.asyncDispose; older runtimes get the well-known registry symbol, as
// TypeScript's own `await using` helper does.
(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for('Symbol.asyncDispose');

export class Model implements AsyncDisposable {
  private task: TaskConfig | null | undefined;
  private textTokenizer: TextTokenizer | null = null;

  private constructor(private readonly inner: Backend) {}

  /**
   * @internal The backend, for this package's own analyses that have no Model method (the
   * study's query-copy score): they run through the model opened here, never a backend of their own.
   */
  get backend(): Backend {
    return this.inner;
  }

  /** Opens a model: the same as `openModel`. */
  static async open(file: string, options: OpenModelOptions = {}): Promise<Model> {
    const { hookMap, provider, threads, padTo } = options;
    return new Model(await openBackend(file, { hookMap, provider, threads, padTo }));
  }

  /** @internal A checkpoint's config and weights, for this package's analyses that build their own graphs of it (the study's emergence diagnostics); null for a foreign model. */
  get weights(): GraphBackend['model'] | null {
    return this.inner instanceof GraphBackend ? this.inner.model : null;
  }

  /** 'tvlens' (a checkpoint) or 'foreign'. */
  get kind(): 'tvlens' | 'foreign' {
    return this.inner.facts.kind;
  }

  /** The .onnx file. */
  get file(): string {
    return this.inner.facts.file;
  }

  /** Hook names, in forward order (TransformerLens names). */
  get hooks(): string[] {
    return this.inner.facts.hooks.map((h) => h.name);
  }

  /** Hook points with their kind, block and axes. */
  get hookPoints(): readonly HookPoint[] {
    return this.inner.facts.hooks;
  }

  /** Blocks, L; task-vector layers are 0..L. */
  get layers(): number {
    return this.inner.facts.layers;
  }

  /** d_model where known: a checkpoint's, or a foreign model's read off its residual stream. */
  get dModel(): number | null {
    return this.inner.dims.dModel || null;
  }

  /** A checkpoint's model config; null for a foreign model. */
  get config(): ModelConfig | null {
    return this.inner.facts.manifest?.model ?? null;
  }

  /** A checkpoint's manifest; null for a foreign model. */
  get manifest(): Manifest | null {
    return this.inner.facts.manifest;
  }

  /** The task config a checkpoint was trained on; null for a foreign model. */
  get taskConfig(): TaskConfig | null {
    if (this.task === undefined) this.task = this.manifest ? resolveTaskConfig(this.manifest.task) : null;
    return this.task;
  }

  /** A checkpoint's weights hash, or the sha256 of a foreign model's file. */
  get modelHash(): string {
    return this.inner.facts.modelHash;
  }

  /** The longest prompt the model takes, where known (a fixed-length export: its length). */
  get maxSeq(): number | null {
    return this.inner.padTo ?? this.inner.facts.maxSeq;
  }

  /** The sequence length a foreign export's graph fixes ([batch, 16]), where it fixes one; prompts run padded to it. */
  get staticSeq(): number | null {
    return this.inner.facts.staticSeq;
  }

  /** The input that takes token ids, and the main output, by their names in the graph. */
  get io(): { readonly input: string; readonly output: string } {
    return { input: this.inner.facts.tokenInput, output: this.inner.facts.output };
  }

  /** Width of the output at a position: the vocabulary (logits), or d_out (0 for a foreign model without hooks, until it runs). */
  get outWidth(): number {
    return this.inner.outWidth;
  }

  /**
   * Checks that a task config or prompt records fit this model: the kind of prompt it takes, its
   * vocabulary. Every method that takes them checks them itself; this says so up front.
   */
  checkFits(input: TaskConfig | readonly PromptRecord[]): void {
    if (isRecords(input)) this.checkPrompts(input);
    else this.checkTask(input);
  }

  /** For a foreign model: the residual path read off its graph (chains of Adds), and the hook map it suggests. Null for a checkpoint. */
  residualPath(): { candidates: ResidualCandidate[]; hookMap: Record<string, string> } | null {
    if (!(this.inner instanceof FileBackend) || this.kind !== 'foreign') return null;
    const candidates = residualCandidates(this.inner.proto);
    // The full suggestion (residual stream, attention and MLP outputs, per-head z, pattern) where the
    // graph's blocks match; the residual stream alone otherwise.
    const full = suggestHooks(this.inner.proto);
    return { candidates, hookMap: full.layers > 0 ? full.hooks : suggestHookMap(candidates) };
  }

  /** The tensor in the graph behind a hook (a checkpoint's hooks are tensors of their own names). */
  tensorOf(hook: string): string {
    return this.inner.tensorOf(hook);
  }

  /** A model folder's tokenizer (tokenizer.json), checked against the model's vocabulary on first use. */
  get tokenizer(): TextTokenizer {
    if (this.textTokenizer) return this.textTokenizer;
    const folder = this.inner.facts.folder;
    if (!folder) throw new InputError(`${this.file} was opened as a file: open its folder (model.onnx with tokenizer.json beside it) to use text`);
    if (!folder.tokenizer) throw new InputError(`${folder.dir} has no tokenizer.json: save the model's tokenizer beside it (tokenizer.save_pretrained(dir) writes one)`);
    const tok = TextTokenizer.load(folder.tokenizer);
    const width = this.inner.outWidth || null;
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
    let names = options.names ? options.names.map((n) => this.inner.hook(n).name) : this.hooks;
    if (options.filter) names = names.filter(options.filter);
    return this.forward(prompts, names, options.patches ?? []);
  }

  /**
   * Task-vector search at every layer (or `options.layers`): θ_ℓ from demo prompts written into
   * zero-shot prompts. Prompts: a task config (default: a checkpoint's own), or your own prompt
   * records (role "demo" and "query"; see docs/formats.md's prompts-file schema).
   */
  async tvSearch(prompts?: SearchInput, options: TvSearchOptions = {}): Promise<TvSearchResult> {
    const { cfg, given } = this.searchInput(prompts);
    return tvSearch(this.analysable(), cfg, { ...options, given: given ?? options.given });
  }

  /** Activation patching between clean and corrupted prompts: drawn from a task config, or your own pairs. */
  async patch(pairs?: PatchInput, options: PatchOptions = {}): Promise<PatchResult> {
    const backend = this.analysable();
    if (isTextTaskInput(pairs)) pairs = this.textPrompts(pairs).pairs;
    if (pairs && isRecords(pairs)) {
      this.checkPrompts(pairs);
      return patch(backend, null, { ...options, pairs: promptPairsFrom(pairs) });
    }
    if (pairs && 'clean' in pairs) return patch(backend, null, { ...options, pairs });
    return patch(backend, this.taskFor(pairs as TaskConfig | undefined), options);
  }

  /** Locality, strength and separability of the task vectors (a search with best-k combinations). */
  async locality(prompts?: SearchInput, options: LocalityOptions = {}): Promise<LocalityResult> {
    const { cfg, given } = this.searchInput(prompts);
    return locality(this.analysable(), cfg, { ...options, given: given ?? options.given }, { file: this.file, step: this.manifest?.step });
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
      if (!(this.inner instanceof FileBackend)) throw new InputError(`${this.file}: function vectors of text tasks run on a model folder`);
      return foreignFunctionVectors(this.inner, search, pairs, { topK: options.topK });
    }
    const backend = this.graph('function vectors need a tvlens checkpoint (they read and project per-head outputs)', 'tvSearch (the task vector)');
    return functionVectors(backend, this.taskFor(task as TaskConfig | undefined), options);
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
    if (this.inner instanceof FileBackend && (isTextTaskInput(pairs) || (pairs && isRecords(pairs)))) {
      const records = isTextTaskInput(pairs) ? this.textPrompts(pairs).pairs : (pairs as readonly PromptRecord[]);
      this.checkPrompts(records);
      return foreignAttribution(this.inner, records);
    }
    const backend = this.graph('attribution patching needs a tvlens checkpoint (it differentiates the model)', 'patch (exact patching)');
    if (isTextTaskInput(pairs)) pairs = this.textPrompts(pairs).pairs;
    if (pairs && isRecords(pairs)) {
      this.checkPrompts(pairs);
      return attributionPatch(backend, null, { ...options, pairs: promptPairsFrom(pairs) });
    }
    if (pairs && 'clean' in pairs) return attributionPatch(backend, null, { ...options, pairs });
    return attributionPatch(backend, this.taskFor(pairs as TaskConfig | undefined), options);
  }

  /** Streams chosen hooks at chosen positions to an Arrow IPC file (pyarrow reads it as it is). */
  async cacheToArrow(file: string, options: CacheToArrowOptions = {}): Promise<CacheSummary> {
    const hooks = selectHooks(this.inner, options.hooks ?? ['resid'], options.blocks);
    const records = options.prompts && isRecords(options.prompts) ? options.prompts : null;
    if (records) this.checkPrompts(records);
    const given = records ? recordsToBatch(records) : undefined;
    const task = records ? null : this.taskFor(options.prompts as TaskConfig | undefined);
    return writeCache(
      this.inner,
      file,
      { task, given, prompts: given ? given.batch : (options.count ?? 256), hooks, positions: options.positions, seed: options.seed, demos: options.demos, split: options.split, chunk: options.chunk },
      options.onProgress,
    );
  }

  /** Releases the model's sessions. */
  async close(): Promise<void> {
    await this.inner.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- guards ----------------------------------------------------------------------------------

  /** The backend, for the analyses: one with residual hooks at every layer. */
  private analysable(): Backend {
    if (this.inner instanceof FileBackend) this.inner.analysable();
    return this.inner;
  }

  /** A checkpoint's GraphBackend, for the analyses a foreign model cannot run: `need` says why, `instead` what runs on a foreign model. */
  private graph(need: string, instead: string): GraphBackend {
    if (!(this.inner instanceof GraphBackend)) throw new InputError(`${need}, and ${this.file} is a foreign model: use ${instead} on it`);
    return this.inner;
  }

  private taskFor(cfg: TaskConfig | undefined): TaskConfig {
    const task = cfg ?? this.taskConfig;
    if (!task) throw new InputError(`${this.file} is a foreign model, which has no task config: give one, or your own prompts`);
    this.checkTask(task);
    return task;
  }

  /** Checks that a task's prompts are what the model takes: token ids it has (its symbols, then → and ,), or vectors of its width. */
  private checkTask(cfg: TaskConfig): void {
    const io = taskIO(cfg);
    const own = this.config;
    const takes = own ? own.input : 'tokens';
    if (io.input !== takes) throw new InputError(`${cfg.kind} prompts are ${io.input === 'tokens' ? 'token ids' : 'vectors'}, and ${this.file} takes ${takes === 'tokens' ? 'token ids: give a token task (discrete, hmm or dfa)' : 'vectors: give a vector task'}`);
    const vocab = own ? (own.output === 'logits' ? own.vocab : null) : this.inner.outWidth;
    if (io.input === 'tokens' && vocab !== null && io.vocabSize > vocab) {
      throw new InputError(
        `the task's prompts use token ids 0..${io.vocabSize - 1} (vocab ${cfg.vocab} symbols, then → = ${cfg.vocab} and , = ${cfg.vocab + 1}), but ${this.file} has ${vocab} outputs (its vocabulary): give a task config with vocab ≤ ${vocab - 2}`,
      );
    }
  }

  /** Checks that prompt records are token ids within the vocabulary, where it is known. */
  private checkPrompts(records: readonly PromptRecord[]): void {
    const vocab = this.config ? (this.config.output === 'logits' ? this.config.vocab : null) : this.inner.outWidth || null;
    if (this.config && this.config.input !== 'tokens') throw new InputError(`${this.file} takes vectors, and prompts files hold token ids`);
    const top = maxTokenId(records);
    if (vocab !== null && top >= vocab) throw new InputError(`the prompts use token id ${top}, but ${this.file} has a vocabulary of ${vocab} (ids 0..${vocab - 1})`);
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

  // ---- one run ---------------------------------------------------------------------------------

  private async forward(prompts: Prompts, names: readonly string[], patches: readonly HookPatch[]): Promise<{ logits: Tensor; cache: ActivationCache }> {
    if (prompts === null || typeof prompts !== 'object') throw new InputError(`prompts must be rows of token ids (e.g. [[3, 12, 5]]), an int64 Tensor [batch, pos] or a tvlens Batch; got ${prompts === null ? 'null' : typeof prompts}`);
    if (!Array.isArray(patches)) throw new InputError('patches must be a list of { hook, value, positions?, mode? }');
    let feeds = toFeeds(prompts, { file: this.file, takes: this.config?.input ?? 'tokens' });
    const [B, T] = feeds[Object.keys(feeds)[0]].shape;
    this.checkFeeds(feeds, T);
    const P = this.inner.padTo ?? T;
    if (P < T) throw new InputError(`prompts of ${T} positions are longer than the ${P} that ${this.file} runs at (padTo)`);
    if (P > T) feeds = padFeeds(feeds, P);
    const backendPatches = patches.map((p) => {
      if (p === null || typeof p !== 'object' || typeof p.hook !== 'string') throw new InputError('a patch is { hook: string, value, positions?, mode? }');
      return hookPatch(p, this.inner.hook(p.hook), B, T, P, this.config, this.dModel);
    });
    const r = await this.inner.run(feeds, { fetch: names, patches: backendPatches });
    const cache = new Map(names.map((n) => [n, Tensor.from(cutAxis(r.hooks[n], this.inner.hook(n).axes[1] === 'pos' ? 1 : -1, T))]));
    return { logits: Tensor.from(cutAxis(r.output, 1, T)), cache: new ActivationCache(cache, this.layers, this.unembed()) };
  }

  /** Token ids within the vocabulary and prompts within the context, where the model says what they are (else ONNX Runtime fails in its own words, or reads past a table). */
  private checkFeeds(feeds: Record<string, HostTensor>, T: number): void {
    // A learned position table (or a foreign export's fixed length) ends the context; rotary and
    // no positions run past maxSeq, which the eval suite's length generalisation relies on.
    const context = this.config ? (this.config.positional === 'learned' ? this.config.maxSeq : null) : this.inner.facts.maxSeq;
    if (context && T > context) throw new InputError(`prompts of ${T} positions are longer than the context of ${this.file} (${context} positions)`);
    const vocab = this.config ? (this.config.input === 'tokens' ? this.config.vocab : null) : null;
    const tokens = feeds.tokens?.dtype === 'int64' ? (feeds.tokens.data as BigInt64Array) : null;
    if (tokens && vocab !== null) {
      for (let i = 0; i < tokens.length; i++) {
        if (tokens[i] < 0n || tokens[i] >= BigInt(vocab)) throw new InputError(`token id ${tokens[i]} (prompt ${Math.floor(i / T)}, position ${i % T}) is outside the vocabulary of ${this.file} (ids 0..${vocab - 1})`);
      }
    }
  }

  /** A checkpoint's final LayerNorm and unembedding, for logit attribution. */
  private unembed(): Unembed | null {
    if (!(this.inner instanceof GraphBackend) || this.inner.cfg.output !== 'logits') return null;
    const { cfg, params } = this.inner.model;
    const get = (n: string) => params.get(n)!;
    return { dModel: cfg.dModel, vocab: cfg.vocab, lnEpsilon: cfg.lnEpsilon, lnW: get('ln_final.w'), lnB: get('ln_final.b'), WU: get('unembed.W_U'), bU: get('unembed.b_U') };
  }
}

/** Opens a tvlens checkpoint (.onnx with its manifest beside it) or a foreign ONNX model (with a hook map). */
export function openModel(file: string, options: OpenModelOptions = {}): Promise<Model> {
  return Model.open(file, options);
}

const isRecords = (x: object): x is readonly PromptRecord[] => Array.isArray(x);
