/**
 * Hook maps: how a model tvlens did not make names its activations. A hook map is JSON, either
 * flat, `{"<tensor in the graph>": "blocks.0.hook_resid_post", ...}`, or an object with the map
 * under "hooks" and optional facts the graph may not carry:
 * `{"hooks": {...}, "input": "input_ids", "output": "logits", "maxSeq": 1024}`.
 *
 * `parseHookName` is the one place where a hook's layer is read from a name: a foreign map's
 * targets are strings by nature, and they are turned into HookPoints once, at load.
 */
import fs from 'node:fs';
import type onnxProto from 'onnx-proto';
import { InputError } from '../errors.js';
import { HOOK_KINDS, type HookKind, type HookPoint, hookPoint } from '../model/hooks.js';
import { suggest, tensorNames } from './onnx-edit.js';

type ModelProto = onnxProto.onnx.ModelProto;

const GLOBAL_KINDS: readonly HookKind[] = ['hook_embed', 'hook_pos_embed', 'ln_final.hook_normalized'];
const BLOCK_KINDS = HOOK_KINDS.filter((k) => !GLOBAL_KINDS.includes(k));

/** The HookPoint a TransformerLens hook name stands for, or null when it is not one. */
export function parseHookName(name: string): HookPoint | null {
  if ((GLOBAL_KINDS as readonly string[]).includes(name)) return hookPoint(name as HookKind);
  const m = /^blocks\.(0|[1-9]\d*)\.(.+)$/.exec(name);
  if (!m || !(BLOCK_KINDS as readonly string[]).includes(m[2])) return null;
  return hookPoint(m[2] as HookKind, Number(m[1]));
}

export interface HookMap {
  /** Hook point → tensor name, in the order the map lists them. */
  readonly hooks: ReadonlyMap<string, { readonly hook: HookPoint; readonly tensor: string }>;
  readonly input?: string;
  readonly output?: string;
  readonly maxSeq?: number;
}

const MAP_KEYS = ['hooks', 'input', 'output', 'maxSeq'];

/** Reads and checks a hook map file's own shape (not yet against a graph: see `checkHookMap`). */
export function readHookMap(file: string): HookMap {
  if (!fs.existsSync(file)) throw new InputError(`hook map ${file} does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(`hook map ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return hookMapFrom(json, file);
}

export function hookMapFrom(json: unknown, where = 'hook map'): HookMap {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(json)) throw new InputError(`${where}: expected a JSON object of "tensor name": "hook name"`);
  const wrapped = isObject(json.hooks);
  if (wrapped) {
    for (const k of Object.keys(json)) if (!MAP_KEYS.includes(k)) throw new InputError(`${where}: unknown key '${k}'. Should be one of: ${MAP_KEYS.join(', ')}`);
  }
  const entries = Object.entries(wrapped ? (json.hooks as Record<string, unknown>) : json);
  const hooks = new Map<string, { hook: HookPoint; tensor: string }>();
  for (const [tensor, target] of entries) {
    if (typeof target !== 'string') throw new InputError(`${where}: tensor '${tensor}' maps to ${JSON.stringify(target)}, not a hook name`);
    const hook = parseHookName(target);
    if (!hook) {
      throw new InputError(`${where}: '${target}' is not a hook name. Should be one of: ${GLOBAL_KINDS.join(', ')}, or blocks.<layer>.<kind> with kind one of ${BLOCK_KINDS.join(', ')}`);
    }
    if (hooks.has(hook.name)) throw new InputError(`${where}: ${hook.name} is mapped twice (from '${hooks.get(hook.name)!.tensor}' and '${tensor}')`);
    hooks.set(hook.name, { hook, tensor });
  }
  const str = (k: string) => {
    const v = wrapped ? json[k] : undefined;
    if (v !== undefined && typeof v !== 'string') throw new InputError(`${where}: '${k}' must be a string`);
    return v as string | undefined;
  };
  const maxSeq = wrapped ? json.maxSeq : undefined;
  if (maxSeq !== undefined && !(Number.isInteger(maxSeq) && (maxSeq as number) > 0)) throw new InputError(`${where}: 'maxSeq' must be a positive integer`);
  return { hooks, input: str('input'), output: str('output'), maxSeq: maxSeq as number | undefined };
}

/** Checks every mapped tensor exists in the graph, naming the first that does not with the closest names. */
export function checkHookMap(map: HookMap, model: ModelProto, where: string): void {
  const names = tensorNames(model);
  for (const { hook, tensor } of map.hooks.values()) {
    if (!names.has(tensor)) throw new InputError(`${where}: the hook map names tensor '${tensor}' (for ${hook.name}), which is not in the graph${suggest(tensor, names)}`);
  }
}

/**
 * In TransformerLens a block's resid_pre is the previous block's resid_post: one tensor, two names.
 * A foreign map usually lists only resid_post; add the resid_pre aliases it implies.
 */
export function withResidualAliases(map: HookMap, layers: number): HookMap {
  const hooks = new Map(map.hooks);
  for (const { hook, tensor } of map.hooks.values()) {
    if (hook.kind !== 'hook_resid_post' || hook.layer! + 1 >= layers) continue;
    const next = hookPoint('hook_resid_pre', hook.layer! + 1);
    if (!hooks.has(next.name)) hooks.set(next.name, { hook: next, tensor });
  }
  return { ...map, hooks };
}

export interface ResidualCandidate {
  /** Position in the residual chain, from the embeddings up. */
  readonly index: number;
  /** The node that produces the tensor ('' when it is a graph input). */
  readonly node: string;
  readonly tensor: string;
  /** The hook this tensor most likely is, if the chain has the usual two Adds per block. */
  readonly suggested: string;
}

/**
 * The tensors on the residual path of a GPT-style graph: the longest chain of Add nodes in which
 * each Add's output is an input of the next. A branch's bias Add also feeds a residual Add, but
 * starts a chain of length one, so the longest chain is the residual stream. Ties (the embedding
 * sum against a bias Add, both depth one) go to the tensor with more consumers, since the
 * residual also feeds the next LayerNorm. With 2L+1 Adds the first is the embedding sum; with 2L
 * the stream starts at the first Add's residual input. A heuristic: read its output before
 * trusting it, which is why it is a suggestion.
 */
export function residualCandidates(model: ModelProto): ResidualCandidate[] {
  const nodes = model.graph!.node ?? [];
  const producer = new Map<string, number>();
  const consumers = new Map<string, number>();
  // Identity nodes (hook points, in tvlens's own graphs) are looked through: their output is their input.
  const same = new Map<string, string>();
  const resolve = (x: string): string => (same.has(x) ? resolve(same.get(x)!) : x);
  nodes.forEach((n, i) => {
    if (n.opType === 'Identity') same.set(n.output![0], n.input![0]);
    else for (const o of n.output ?? []) producer.set(o, i);
    for (const x of n.input ?? []) if (n.opType !== 'Identity') consumers.set(resolve(x), (consumers.get(resolve(x)) ?? 0) + 1);
  });
  const depth = new Map<number, number>();
  const addInputs = (i: number) => (nodes[i].input ?? []).map(resolve).filter((x) => depth.has(producer.get(x) ?? -1));
  const better = (a: string, b: string) => {
    const da = depth.get(producer.get(a)!)!;
    const db = depth.get(producer.get(b)!)!;
    return da !== db ? da > db : (consumers.get(a) ?? 0) > (consumers.get(b) ?? 0);
  };
  nodes.forEach((n, i) => {
    if (n.opType !== 'Add') return;
    depth.set(i, 1 + Math.max(0, ...addInputs(i).map((x) => depth.get(producer.get(x)!)!)));
  });
  if (depth.size === 0) return [];
  let end = -1;
  for (const [i, d] of depth) if (end < 0 || d > depth.get(end)! || (d === depth.get(end)! && i > end)) end = i;
  const chain: number[] = [end];
  for (;;) {
    const preds = addInputs(chain[0]);
    if (preds.length === 0) break;
    const best = preds.reduce((a, b) => (better(b, a) ? b : a));
    chain.unshift(producer.get(best)!);
  }
  // Without an embedding sum (rotary or no positions), the chain can start at a branch's bias Add
  // (the first attention output). The stream beside it in the next Add has more consumers (its
  // LayerNorm too): then that Add is a branch, and the stream enters from outside the chain.
  if (chain.length >= 2) {
    const first = nodes[chain[0]].output![0];
    const other = (nodes[chain[1]].input ?? []).map(resolve).find((x) => x !== first);
    if (other !== undefined && (consumers.get(other) ?? 0) > (consumers.get(first) ?? 0)) chain.shift();
  }
  const tensors = chain.map((i) => ({ node: nodes[i].name ?? '', tensor: nodes[i].output![0] }));
  if (chain.length % 2 === 0) {
    // The stream enters the first residual Add from outside the chain: the input with more consumers.
    const ins = (nodes[chain[0]].input ?? []).map(resolve);
    const entry = ins.reduce((a, b) => ((consumers.get(b) ?? 0) > (consumers.get(a) ?? 0) ? b : a));
    tensors.unshift({ node: producer.has(entry) ? (nodes[producer.get(entry)!].name ?? '') : '', tensor: entry });
  }
  return tensors.map((t, index) => ({
    index,
    ...t,
    suggested: index === 0 ? 'blocks.0.hook_resid_pre' : `blocks.${(index - 1) >> 1}.${index % 2 ? 'hook_resid_mid' : 'hook_resid_post'}`,
  }));
}

/** The hook map the candidates suggest, in the flat form `readHookMap` takes. */
export function suggestHookMap(candidates: readonly ResidualCandidate[]): Record<string, string> {
  return Object.fromEntries(candidates.map((c) => [c.tensor, c.suggested]));
}
