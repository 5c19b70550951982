/**
 * Rewrites of a decoded ONNX model, for analysis: expose intermediate tensors as graph outputs, and
 * insert patch points after them. Both return a new ModelProto that shares the original's weights
 * (no copy of the initializers), and use only standard `ai.onnx` ops, so the result runs on any
 * ONNX Runtime build and the original model is never modified.
 */
import onnxProto from 'onnx-proto';
import { InputError } from '../errors.js';

type ModelProto = onnxProto.onnx.ModelProto;
type NodeProto = onnxProto.onnx.INodeProto;
type ValueInfo = onnxProto.onnx.IValueInfoProto;

const FLOAT = 1; // TensorProto.DataType.FLOAT

export type PatchMode = 'replace' | 'add';
export const PATCH_MODES: readonly PatchMode[] = ['replace', 'add'];

export interface PatchPoint {
  /** The tensor in the graph whose consumers see the patched value. */
  readonly tensor: string;
  /** The name the patch inputs are called after (a hook name). */
  readonly hook: string;
  /**
   * 'replace': consumers see mask·value + (1−mask)·x (exact for a 0/1 mask in both directions).
   * 'add': consumers see x + mask·value (function-vector injection).
   */
  readonly mode: PatchMode;
}

/** The graph inputs a patch point adds: both float, broadcastable against the tensor. */
export function patchInputs(hook: string): { value: string; mask: string } {
  return { value: `patch.${hook}.value`, mask: `patch.${hook}.mask` };
}

/** Every tensor name in the main graph: inputs, initializers and node outputs. */
export function tensorNames(model: ModelProto): Set<string> {
  const g = model.graph!;
  const names = new Set<string>();
  for (const v of g.input ?? []) if (v.name) names.add(v.name);
  for (const t of g.initializer ?? []) if (t.name) names.add(t.name);
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (o) names.add(o);
  return names;
}

/** The graph's real inputs: declared inputs that are not initializers (old exporters list weights as inputs too). */
export function graphInputs(model: ModelProto): ValueInfo[] {
  const g = model.graph!;
  const weights = new Set((g.initializer ?? []).map((t) => t.name));
  return (g.input ?? []).filter((v) => !weights.has(v.name));
}

/** A copy of `model` in which each of `tensors` is also a graph output. */
export function withOutputs(model: ModelProto, tensors: readonly string[]): ModelProto {
  const g = model.graph!;
  requireTensors(model, tensors);
  const present = new Set((g.output ?? []).map((o) => o.name));
  const extra = tensors.filter((t, i) => !present.has(t) && tensors.indexOf(t) === i).map((t) => floatInfo(t, elemType(model, t)));
  return copyModel(model, { output: [...(g.output ?? []), ...extra] });
}

/**
 * A copy of `model` with a patch point after each tensor: two new inputs per point (see
 * `patchInputs`) and a few elementwise nodes placed right after the tensor's producer, which keeps
 * the node list topologically sorted. Every consumer of the tensor is rewired to the blend; graph
 * outputs keep the unpatched value, so fetching a patched tensor shows what the model computed.
 */
export function withPatches(model: ModelProto, points: readonly PatchPoint[]): ModelProto {
  requireTensors(model, points.map((p) => p.tensor));
  const seen = new Set<string>();
  for (const p of points) {
    if (seen.has(p.tensor)) throw new InputError(`two patches at tensor '${p.tensor}'; patch each tensor once`);
    seen.add(p.tensor);
  }
  const g = model.graph!;
  let nodes = [...(g.node ?? [])];
  const inputs = [...(g.input ?? [])];
  for (const p of points) {
    const type = elemType(model, p.tensor);
    const { value, mask } = patchInputs(p.hook);
    const out = `patched.${p.hook}`;
    inputs.push(floatInfo(value, type), floatInfo(mask, type));
    const patch = patchNodes(p, value, mask, out, type);
    nodes = nodes.map((n) => ((n.input ?? []).includes(p.tensor) ? rewire(n, p.tensor, out) : n));
    const at = nodes.findIndex((n) => (n.output ?? []).includes(p.tensor));
    nodes.splice(at + 1, 0, ...patch); // at = -1 (a graph input) puts the patch first
  }
  return copyModel(model, { node: nodes, input: inputs });
}

function patchNodes(p: PatchPoint, value: string, mask: string, out: string, type: number): NodeProto[] {
  const n = (opType: string, input: string[], output: string): NodeProto =>
    onnxProto.onnx.NodeProto.create({ opType, input, output: [output], name: `${output}:${opType}` });
  const t = (s: string) => `patch/${p.hook}/${s}`;
  if (p.mode === 'add') return [n('Mul', [mask, value], t('masked')), n('Add', [p.tensor, t('masked')], out)];
  // mask·value + (1−mask)·x rather than x + mask·(value−x): the latter is not exactly `value`
  // at mask 1 in floating point, and patching clean into clean must reproduce clean exactly.
  const one = onnxProto.onnx.NodeProto.create({
    opType: 'Constant',
    output: [t('one')],
    name: `${t('one')}:Constant`,
    attribute: [{ name: 'value', type: onnxProto.onnx.AttributeProto.AttributeType.TENSOR, t: scalarTensor(1, type) }],
  });
  return [
    one,
    n('Sub', [t('one'), mask], t('keep')),
    n('Mul', [mask, value], t('new')),
    n('Mul', [t('keep'), p.tensor], t('old')),
    n('Add', [t('new'), t('old')], out),
  ];
}

function rewire(node: NodeProto, from: string, to: string): NodeProto {
  return onnxProto.onnx.NodeProto.create({ ...node, input: (node.input ?? []).map((i) => (i === from ? to : i)) });
}

function scalarTensor(v: number, type: number): onnxProto.onnx.ITensorProto {
  if (type === 11) return { dataType: 11, dims: [], doubleData: [v] };
  if (type !== FLOAT) throw new InputError(`patching supports float32 and float64 tensors, not ONNX type ${type}`);
  return { dataType: FLOAT, dims: [], floatData: [v] };
}

/** The element type of a tensor where the model declares it, else float (every hook is a float). */
function elemType(model: ModelProto, name: string): number {
  const g = model.graph!;
  for (const v of [...(g.valueInfo ?? []), ...(g.input ?? []), ...(g.output ?? [])]) {
    if (v.name === name && v.type?.tensorType?.elemType) return v.type.tensorType.elemType;
  }
  const init = (g.initializer ?? []).find((t) => t.name === name);
  return init?.dataType ?? FLOAT;
}

/** A value info with an element type and no shape: any rank, so patch inputs may broadcast. */
function floatInfo(name: string, elemType: number): ValueInfo {
  return onnxProto.onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType } } });
}

function requireTensors(model: ModelProto, tensors: readonly string[]): void {
  const names = tensorNames(model);
  for (const t of tensors) {
    if (!names.has(t)) throw new InputError(`the graph has no tensor named '${t}'${suggest(t, names)}`);
  }
}

/** A shallow copy with some graph fields replaced; the initializers are shared, not copied. */
function copyModel(model: ModelProto, graph: Partial<onnxProto.onnx.IGraphProto>): ModelProto {
  return onnxProto.onnx.ModelProto.create({ ...model, graph: onnxProto.onnx.GraphProto.create({ ...model.graph!, ...graph }) });
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnxProto.onnx.ModelProto.encode(model).finish();
}

/** ". Did you mean: a, b, c?" from the names closest to `name`, or '' when none is close. */
export function suggest(name: string, pool: Iterable<string>, k = 3): string {
  const near = nearest(name, pool, k);
  return near.length ? `. Did you mean: ${near.join(', ')}?` : '';
}

export function nearest(name: string, pool: Iterable<string>, k = 3): string[] {
  const scored = [...pool].map((p) => ({ p, d: editDistance(name.toLowerCase(), p.toLowerCase()) }));
  const limit = Math.max(3, Math.ceil(name.length / 2));
  return scored.filter((s) => s.d <= limit).sort((a, b) => a.d - b.d || a.p.localeCompare(b.p)).slice(0, k).map((s) => s.p);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/**
 * Where the graph splits at `tensor`: the suffix is every node on a path from `tensor` to
 * `output`, plus the constant-only nodes those read (copied, so nothing constant is fed). What
 * else the suffix reads is either a graph input (fed as it is) or a *cut* tensor the prefix
 * computed from the inputs (fetched from a base run and fed back). Null when the output does not
 * depend on `tensor`, or the suffix holds a node with a subgraph (If, Loop, Scan), whose implicit
 * reads this does not follow.
 */
export interface SuffixSplit {
  readonly tensor: string;
  readonly output: string;
  readonly nodes: readonly NodeProto[];
  /** Prefix tensors the suffix reads, fetched from a base run. */
  readonly cuts: readonly string[];
  /** Graph inputs the suffix reads. */
  readonly inputs: readonly string[];
}

export function suffixSplit(model: ModelProto, tensor: string, output: string): SuffixSplit | null {
  const g = model.graph!;
  const nodes = g.node ?? [];
  const weights = new Set((g.initializer ?? []).map((t) => t.name!));
  const graphInputs = new Set(graphInputs_(model));
  // Tensors that depend on the graph's inputs (everything else is constant).
  const dynamic = new Set<string>(graphInputs);
  // Tensors downstream of `tensor`.
  const down = new Set<string>([tensor]);
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => {
    const ins = (n.input ?? []).filter((x) => x);
    for (const o of n.output ?? []) if (o) producer.set(o, i);
    if (ins.some((x) => dynamic.has(x))) for (const o of n.output ?? []) if (o) dynamic.add(o);
    if (ins.some((x) => down.has(x))) for (const o of n.output ?? []) if (o && o !== tensor) down.add(o);
  });
  if (tensor === output || !down.has(output)) return null;
  // Walk back from the output: downstream nodes and constant nodes join the suffix.
  const keep = new Set<number>();
  const cuts = new Set<string>();
  const inputs = new Set<string>();
  const want = [output];
  const seen = new Set<string>();
  while (want.length) {
    const t = want.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    if (t === tensor || weights.has(t)) continue;
    if (graphInputs.has(t)) {
      inputs.add(t);
      continue;
    }
    const i = producer.get(t);
    if (i === undefined) return null;
    if (!down.has(t) && dynamic.has(t)) {
      cuts.add(t);
      continue;
    }
    keep.add(i);
    for (const x of nodes[i].input ?? []) if (x) want.push(x);
  }
  const suffix = nodes.filter((_, i) => keep.has(i));
  if (suffix.some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length))) return null;
  return { tensor, output, nodes: suffix, cuts: [...cuts], inputs: [...inputs] };
}

/** ONNX element types of the runtime's dtypes, for the suffix's fed inputs. */
const ELEM_TYPE: Readonly<Record<string, number>> = { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 };

/**
 * The suffix as a model: inputs `tensor`, the cuts and the graph inputs it reads (typed by
 * `dtypes`, from a base run), the suffix nodes in their order, the one output. Initializers are
 * shared with the original.
 */
export function suffixModel(model: ModelProto, split: SuffixSplit, dtypes: Readonly<Record<string, string>>): ModelProto {
  const g = model.graph!;
  const typed = (name: string) => {
    const t = ELEM_TYPE[dtypes[name]];
    if (!t) throw new InputError(`cannot feed tensor '${name}' of type ${dtypes[name]} to a graph suffix`);
    return floatInfo(name, t);
  };
  const used = new Set(split.nodes.flatMap((n) => n.input ?? []));
  const out = (g.output ?? []).find((o) => o.name === split.output) ?? floatInfo(split.output, FLOAT);
  return copyModel(model, {
    node: [...split.nodes],
    input: [split.tensor, ...split.cuts, ...split.inputs].map(typed),
    initializer: (g.initializer ?? []).filter((t) => used.has(t.name!)),
    output: [out],
    valueInfo: [],
  });
}

function graphInputs_(model: ModelProto): string[] {
  return graphInputs(model).map((v) => v.name!);
}
