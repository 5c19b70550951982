/**
 * A model source: what every analysis runs on. It opens a tvlens checkpoint (its hooks are named
 * tensors already) or a foreign GPT-style ONNX model plus a hook map, and answers the same
 * questions for both: which hooks exist, how many layers, how long a prompt may be, which hash
 * identifies the weights. `run` fetches and patches hooks by rewriting the graph once per set of
 * hooks asked for; a run that asks for none runs the model as it is.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type onnxProto from 'onnx-proto';
import { type Manifest, decodeModel, loadCheckpoint, readManifest, readOnnxFile } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import { type HookPoint, allHookPoints, residualAtLayer } from '../model/hooks.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { type Batch, type TaskConfig, resolveTaskConfig } from '../tasks/index.js';
import { batchFeeds } from '../tasks/feeds.js';
import { type HookMap, checkHookMap, hookMapFrom, readHookMap, withResidualAliases } from './hookmap.js';
import { type ModelFolder, isModelFolder, readModelFolder } from './model-folder.js';
import { suggestHooks } from './suggest-hooks.js';
import { type PatchMode, encodeModel, graphInputs, patchInputs, suggest, withOutputs, withPatches } from './onnx-edit.js';

export interface OpenOptions extends SessionOptions {
  /** For a foreign model: a hook map file, or its parsed JSON. Default: none (no hooks). */
  readonly hookMap?: string | HookMap | Record<string, unknown>;
}

/** A patch at one hook for one run. Both tensors broadcast against the hook's shape. */
export interface Patch {
  readonly hook: string;
  readonly value: HostTensor;
  /** 1 where the value is written (or added), 0 where the model's own value stays. */
  readonly mask: HostTensor;
  /** Default 'replace'. */
  readonly mode?: PatchMode;
}

export interface RunOptions {
  /** Hooks to return, by name. Default: none. */
  readonly fetch?: readonly string[];
  /** Tensors to return by their names in the graph (not hooks): what a graph suffix reads. Default: none. */
  readonly tensors?: readonly string[];
  readonly patches?: readonly Patch[];
}

export interface RunResult {
  /** The model's main output (logits or predictions). */
  readonly output: HostTensor;
  /** Each fetched hook, by hook name. A patched hook shows its value before the patch. */
  readonly hooks: Readonly<Record<string, HostTensor>>;
  /** Each tensor of `tensors`, by its name in the graph. */
  readonly tensors: Readonly<Record<string, HostTensor>>;
}

/** Sessions kept per rewrite; a sweep over layers uses one each, and more than this is rare. */
const SESSION_CACHE = 16;

export class ModelSource {
  private readonly tensorOfHook: ReadonlyMap<string, string>;
  private readonly sessions = new Map<string, Promise<Session>>();
  /** The model folder it was opened from (model.onnx, tokenizer.json, config.json), or null for a file. */
  folder: ModelFolder | null = null;

  private constructor(
    readonly kind: 'tvlens' | 'foreign',
    /** The .onnx file. */
    readonly file: string,
    /** The decoded model; rewrites share its weights. */
    readonly model: onnxProto.onnx.ModelProto,
    /** The manifest's weightsSha256 for a checkpoint, the sha256 of the file for a foreign model. */
    readonly modelHash: string,
    /** Number of transformer blocks. */
    readonly layers: number,
    /** The hooks this model can fetch and patch, in forward order. */
    readonly hooks: readonly HookPoint[],
    tensors: ReadonlyMap<string, string>,
    /** The graph's inputs (not its weights). */
    readonly inputs: readonly string[],
    /** The input that takes token ids [batch, seq] (or markers, for vector models). */
    readonly tokenInput: string,
    readonly output: string,
    /** The longest prompt the model takes, where known. */
    readonly maxSeq: number | null,
    readonly manifest: Manifest | null,
    /** Options of every session this source opens. */
    readonly sessionOptions: SessionOptions,
  ) {
    this.tensorOfHook = tensors;
  }

  /** Opens a checkpoint (.onnx with its manifest beside it, or the manifest) or a foreign .onnx. */
  static open(fileOrFolder: string, options: OpenOptions = {}): ModelSource {
    const { hookMap, ...sessionOptions } = options;
    if (!fs.existsSync(fileOrFolder)) throw new InputError(`${fileOrFolder} does not exist`);
    const folder = isModelFolder(fileOrFolder) ? readModelFolder(fileOrFolder) : null;
    const file = folder ? folder.onnx : fileOrFolder;
    const manifest = manifestBeside(file);
    if (manifest) {
      if (hookMap) throw new InputError(`${file} is a tvlens checkpoint, whose hooks are named already; drop the hook map`);
      const ckpt = loadCheckpoint(file);
      const model = decodeModel(ckpt.bytes, ckpt.file);
      const cfg = manifest.model;
      const hooks = allHookPoints(cfg.layers, cfg.positional).filter((h) => manifest.hooks.includes(h.name));
      const inputs = graphInputs(model).map((v) => v.name!);
      return new ModelSource('tvlens', ckpt.file, model, manifest.weightsSha256, cfg.layers, hooks, new Map(hooks.map((h) => [h.name, h.name])),
        // Only a learned position table ends; rotary and no positions run at any length.
        inputs, cfg.input === 'tokens' ? 'tokens' : 'markers', manifest.output, cfg.positional === 'learned' ? cfg.maxSeq : null, manifest, sessionOptions);
    }
    const { bytes, model } = readOnnxFile(file);
    // A model folder opens with the hooks its graph suggests unless a hook map is given.
    const given = hookMap === undefined && folder ? hookMapFrom({ hooks: suggestHooks(model).hooks }, file) : resolveHookMap(hookMap);
    checkHookMap(given, model, file);
    const layers = 1 + Math.max(-1, ...[...given.hooks.values()].map((e) => e.hook.layer ?? -1));
    const map = withResidualAliases(given, layers);
    const hooks = [...map.hooks.values()].map((e) => e.hook).sort(forwardOrder);
    const inputs = graphInputs(model);
    const tokenInput = pickInput(map, inputs, file);
    const outputs = (model.graph!.output ?? []).map((o) => o.name!);
    const output = map.output ?? (outputs.includes('logits') ? 'logits' : outputs[0]);
    if (!outputs.includes(output)) throw new InputError(`${file} has no output '${output}'. Should be one of: ${outputs.join(', ')}`);
    const seqDim = inputs.find((v) => v.name === tokenInput)?.type?.tensorType?.shape?.dim?.[1]?.dimValue;
    const maxSeq = map.maxSeq ?? (seqDim ? Number(seqDim) : null);
    const hash = createHash('sha256').update(bytes).digest('hex');
    const source = new ModelSource('foreign', file, model, hash, layers, hooks, new Map([...map.hooks].map(([k, v]) => [k, v.tensor])),
      inputs.map((v) => v.name!), tokenInput, output, maxSeq, null, sessionOptions);
    source.folder = folder;
    return source;
  }

  /** The task config the model was trained on (checkpoints only). */
  get taskConfig(): TaskConfig | null {
    return this.manifest ? resolveTaskConfig(this.manifest.task) : null;
  }

  /** A hook by name, or an error listing the closest names. */
  hook(name: string): HookPoint {
    const h = this.hooks.find((x) => x.name === name);
    if (!h) {
      const list = this.hooks.length ? suggest(name, this.hooks.map((x) => x.name)) || `. Hooks: ${this.hooks.map((x) => x.name).join(', ')}` : '. This model has no hooks (a foreign model needs a hook map)';
      throw new InputError(`no hook '${name}' in ${this.file}${list}`);
    }
    return h;
  }

  /** The residual stream at "layer ℓ" (0 = embeddings, ℓ ≥ 1 = output of block ℓ−1). */
  residual(layer: number): HookPoint {
    if (!Number.isInteger(layer) || layer < 0 || layer > this.layers) {
      throw new InputError(`layer ${layer} is out of range: this model has layers 0..${this.layers} (0 = embeddings, ℓ = output of block ℓ−1)`);
    }
    const want = residualAtLayer(layer);
    if (!this.tensorOfHook.has(want.name)) throw new InputError(`layer ${layer}'s residual ${want.name} is not in the hook map of ${this.file}`);
    return this.hook(want.name);
  }

  /** The tensor in the graph behind a hook. */
  tensorOf(hook: string): string {
    return this.tensorOfHook.get(this.hook(hook).name)!;
  }

  /** Fails when prompts of `seq` positions do not fit the model's context. */
  checkSeq(seq: number): void {
    if (this.maxSeq !== null && seq > this.maxSeq) {
      throw new InputError(`prompts longer than the model's context: they have ${seq} positions, ${this.file} takes at most ${this.maxSeq}`);
    }
  }

  /** A batch's prompts as feeds for this model. */
  feeds(batch: Batch): Record<string, HostTensor> {
    return batchFeeds(batch, false);
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
    const tensors = fetch.map((h) => this.tensorOfHook.get(h)!);
    const out = await session.run(modelFeeds, [...new Set([this.output, ...tensors, ...raw])]);
    return { output: out[this.output], hooks: Object.fromEntries(fetch.map((h, i) => [h, out[tensors[i]]])), tensors: Object.fromEntries(raw.map((t) => [t, out[t]])) };
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of all) await (await s).release();
  }

  /** Renames tvlens feed names to the model's, fills the inputs an exporter adds, checks lengths. */
  modelFeeds(feeds: Readonly<Record<string, HostTensor>>): Record<string, HostTensor> {
    const first = feeds[this.tokenInput] ?? feeds.tokens ?? feeds.markers;
    if (!first) throw new InputError(`no token feed: expected '${this.tokenInput}' (or 'tokens'), got ${Object.keys(feeds).join(', ') || 'nothing'}`);
    const [B, T] = first.shape;
    this.checkSeq(T);
    const out: Record<string, HostTensor> = {};
    for (const name of this.inputs) {
      if (feeds[name]) out[name] = feeds[name];
      else if (name === this.tokenInput && feeds.tokens) out[name] = feeds.tokens;
      else if (/attention_mask/.test(name)) out[name] = { dtype: 'int64', shape: [B, T], data: new BigInt64Array(B * T).fill(1n) };
      else if (/position_ids/.test(name)) out[name] = { dtype: 'int64', shape: [B, T], data: BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T)) };
      else if (/^past_key_values|^past\./.test(name)) out[name] = this.emptyPast(name, B);
      else if (name === 'use_cache_branch') out[name] = { dtype: 'bool', shape: [1], data: new Uint8Array(1) };
      else throw new InputError(`no feed for the model's input '${name}'. Its inputs: ${this.inputs.join(', ')}`);
    }
    return out;
  }

  /** An empty key/value cache [batch, heads, 0, d_head] for a with-past export: the prompt runs from its start. */
  private emptyPast(name: string, B: number): HostTensor {
    const dims = graphInputs(this.model).find((v) => v.name === name)?.type?.tensorType?.shape?.dim ?? [];
    const fixed = dims.map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : null));
    if (dims.length !== 4 || fixed[1] === null || fixed[3] === null) {
      throw new InputError(`${this.file} takes a key/value cache ('${name}') whose shape tvlens cannot tell: export it without past (optimum-cli export onnx --task text-generation)`);
    }
    return { dtype: 'float32', shape: [B, fixed[1], 0, fixed[3]], data: new Float32Array(0) };
  }

  private session(fetch: readonly string[], patches: readonly { hook: string; mode: PatchMode }[], raw: readonly string[] = []): Promise<Session> {
    const key = JSON.stringify([[...fetch].sort(), [...patches].sort((a, b) => a.hook.localeCompare(b.hook)), [...raw].sort()]);
    const hit = this.sessions.get(key);
    if (hit) {
      this.sessions.delete(key); // re-insert: the Map's order is the LRU order
      this.sessions.set(key, hit);
      return hit;
    }
    let model = this.model;
    if (patches.length) model = withPatches(model, patches.map((p) => ({ ...p, tensor: this.tensorOfHook.get(p.hook)! })));
    if (fetch.length || raw.length) model = withOutputs(model, [...fetch.map((h) => this.tensorOfHook.get(h)!), ...raw]);
    const opened = Session.open(encodeModel(model), this.sessionOptions);
    this.sessions.set(key, opened);
    if (this.sessions.size > SESSION_CACHE) {
      const [oldKey, old] = this.sessions.entries().next().value!;
      this.sessions.delete(oldKey);
      void old.then((s) => s.release());
    }
    return opened;
  }
}

function manifestBeside(file: string): Manifest | null {
  const json = file.endsWith('.onnx') ? `${file.slice(0, -5)}.json` : file;
  if (!fs.existsSync(json)) return null;
  try {
    return readManifest(json);
  } catch (e) {
    if (file.endsWith('.json')) throw e;
    // Some other JSON beside a foreign model is fine; a tvlens manifest that is empty, cut short or
    // damaged is the user's to fix, not a reason to open the checkpoint as a foreign model.
    const text = fs.readFileSync(json, 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw e;
    }
    if ((parsed as { format?: unknown } | null)?.format === 'tvlens-checkpoint/1') throw e;
    return null;
  }
}

function resolveHookMap(map: OpenOptions['hookMap']): HookMap {
  if (map === undefined) return { hooks: new Map() };
  if (typeof map === 'string') return readHookMap(map);
  return map.hooks instanceof Map ? (map as HookMap) : hookMapFrom(map);
}

const TOKEN_INPUTS = ['input_ids', 'tokens', 'input'];

function pickInput(map: HookMap, inputs: readonly onnxProto.onnx.IValueInfoProto[], file: string): string {
  const names = inputs.map((v) => v.name!);
  if (map.input) {
    if (!names.includes(map.input)) throw new InputError(`${file} has no input '${map.input}'. Should be one of: ${names.join(', ')}`);
    return map.input;
  }
  const known = TOKEN_INPUTS.find((n) => names.includes(n));
  if (known) return known;
  const ints = inputs.filter((v) => v.type?.tensorType?.elemType === 7 && !/attention_mask|position_ids/.test(v.name!));
  if (ints.length === 1) return ints[0].name!;
  throw new InputError(`${file}: cannot tell which input takes the token ids (inputs: ${names.join(', ')}); name it with "input" in the hook map`);
}

/** Orders hooks as the forward pass meets them: globals around the blocks, blocks in order. */
function forwardOrder(a: HookPoint, b: HookPoint): number {
  const rank = (h: HookPoint) => (h.layer === null ? (h.kind === 'ln_final.hook_normalized' ? 1e9 : -1) : h.layer * 100) + KIND_ORDER.indexOf(h.kind);
  return rank(a) - rank(b);
}
const KIND_ORDER = allHookPoints(1).map((h) => h.kind);
