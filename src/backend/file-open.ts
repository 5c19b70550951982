/**
 * Reading a model file for a backend: a tvlens checkpoint (its hooks are named tensors already, its
 * manifest beside it) or a foreign GPT-style ONNX model plus a hook map. Either way the result is
 * the decoded model and the facts every backend answers (ModelFacts): which hooks exist, how many
 * layers, how long a prompt may be, which hash identifies the weights. The manifest is read once
 * and the file decoded once.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type onnxProto from 'onnx-proto';
import { type LoadedCheckpoint, type Manifest, loadCheckpoint, readManifest, readOnnxFile } from '../checkpoint/checkpoint.js';
import { InputError } from '../errors.js';
import { type HookPoint, allHookPoints } from '../model/hooks.js';
import type { ModelFacts } from './backend.js';
import { type HookMap, checkHookMap, hookMapFrom, readHookMap, withResidualAliases } from './hookmap.js';
import { isModelFolder, readModelFolder } from './model-folder.js';
import { graphInputs } from './onnx-edit.js';
import { suggestHooks } from './suggest-hooks.js';

/** A decoded ONNX model and what a backend needs to know to run it. */
export interface OnnxModel {
  readonly facts: ModelFacts;
  readonly proto: onnxProto.onnx.ModelProto;
  /** Hook name → the tensor in the graph behind it. */
  readonly tensorOfHook: ReadonlyMap<string, string>;
  /** The graph's inputs (not its weights). */
  readonly inputs: readonly string[];
}

export type HookMapOption = string | HookMap | Record<string, unknown>;

/**
 * Reads `file`: a checkpoint (the .onnx with its manifest beside it, or the manifest), returned
 * loaded (weights checked against the manifest's hash), or a foreign .onnx read with `hookMap`.
 */
export function readModelFile(fileOrFolder: string, hookMap?: HookMapOption): { model: OnnxModel; checkpoint: LoadedCheckpoint | null } {
  if (!fs.existsSync(fileOrFolder)) throw new InputError(`${fileOrFolder} does not exist`);
  const folder = isModelFolder(fileOrFolder) ? readModelFolder(fileOrFolder) : null;
  const file = folder ? folder.onnx : fileOrFolder;
  const manifest = manifestBeside(file);
  if (manifest) {
    if (hookMap) throw new InputError(`${file} is a tvlens checkpoint, whose hooks are named already; drop the hook map`);
    const checkpoint = loadCheckpoint(file, manifest);
    return { model: checkpointModel(checkpoint), checkpoint };
  }
  const { bytes, model: proto } = readOnnxFile(file);
  // A model folder opens with the hooks its graph suggests unless a hook map is given.
  const given = hookMap === undefined && folder ? hookMapFrom({ hooks: suggestHooks(proto).hooks }, file) : resolveHookMap(hookMap);
  checkHookMap(given, proto, file);
  const layers = 1 + Math.max(-1, ...[...given.hooks.values()].map((e) => e.hook.layer ?? -1));
  const map = withResidualAliases(given, layers);
  const hooks = [...map.hooks.values()].map((e) => e.hook).sort(forwardOrder);
  const inputs = graphInputs(proto);
  const tokenInput = pickInput(map, inputs, file);
  const outputs = (proto.graph!.output ?? []).map((o) => o.name!);
  const output = map.output ?? (outputs.includes('logits') ? 'logits' : outputs[0]);
  if (!outputs.includes(output)) throw new InputError(`${file} has no output '${output}'. Should be one of: ${outputs.join(', ')}`);
  // An export that fixed the sequence length declares it on the token input: [batch, 16].
  const seqDim = inputs.find((v) => v.name === tokenInput)?.type?.tensorType?.shape?.dim?.[1]?.dimValue;
  const staticSeq = seqDim ? Number(seqDim) : null;
  const facts: ModelFacts = {
    kind: 'foreign',
    file,
    manifest: null,
    modelHash: createHash('sha256').update(bytes).digest('hex'),
    layers,
    hooks,
    tokenInput,
    output,
    maxSeq: map.maxSeq ?? staticSeq,
    staticSeq,
    folder,
  };
  return { model: { facts, proto, tensorOfHook: new Map([...map.hooks].map(([k, v]) => [k, v.tensor])), inputs: inputs.map((v) => v.name!) }, checkpoint: null };
}

/** A loaded checkpoint as a model to run: its hooks are its own tensor names. */
export function checkpointModel(c: LoadedCheckpoint): OnnxModel {
  const cfg = c.manifest.model;
  const hooks = allHookPoints(cfg.layers, cfg.positional).filter((h) => c.manifest.hooks.includes(h.name));
  const facts: ModelFacts = {
    kind: 'tvlens',
    file: c.file,
    manifest: c.manifest,
    modelHash: c.manifest.weightsSha256,
    layers: cfg.layers,
    hooks,
    tokenInput: cfg.input === 'tokens' ? 'tokens' : 'markers',
    output: c.manifest.output,
    // Only a learned position table ends; rotary and no positions run at any length.
    maxSeq: cfg.positional === 'learned' ? cfg.maxSeq : null,
    staticSeq: null,
    folder: null,
  };
  return { facts, proto: c.model, tensorOfHook: new Map(hooks.map((h) => [h.name, h.name])), inputs: graphInputs(c.model).map((v) => v.name!) };
}

/** The manifest beside `file` (or `file` itself, a .json), or null where there is none: a foreign model. */
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

function resolveHookMap(map: HookMapOption | undefined): HookMap {
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
