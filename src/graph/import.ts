/**
 * ONNX → graph IR: a foreign decoder's graph rebuilt from our own ops, so that our autodiff
 * differentiates it (attribution, function vectors' projections and TVP-loss on imported models).
 *
 * The import is specialised to one set of input shapes. Exporters compute shapes at run time
 * (Shape → Gather → Unsqueeze → Concat → Reshape, Range, ConstantOfShape, Trilu of ones); for fixed
 * input shapes those values are constants. `importPlan` finds them: a tensor is *dynamic* when it
 * depends on a float weight or on an input's values (Shape cuts the dependence: it reads only a
 * shape), and every other tensor that a dynamic node reads is *folded*, its value computed once by
 * the caller (ONNX Runtime, on inputs of the chosen shapes) and handed to `importGraph` as a
 * constant. Only dynamic nodes become ops; shape arithmetic is never differentiated. Float
 * initializers become parameters under their own names, so gradients are keyed as the model's weights.
 */
import { GraphError } from '../errors.js';
import { type DType, Graph, type TypedData, type Value, typedArrayFor } from './ir.js';
import { DTYPE_OF_ONNX } from './ops/elementwise.js';
import './ops/index.js'; // registers every op the import may meet
import type onnxProto from 'onnx-proto';

type ModelProto = onnxProto.onnx.ModelProto;
type TensorProto = onnxProto.onnx.ITensorProto;

export interface HostArray {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedData;
}

export interface ImportPlan {
  /** Tensors that depend on a weight or on an input's values. */
  readonly dynamic: ReadonlySet<string>;
  /** Non-initializer tensors that dynamic nodes read whose values are fixed by the input shapes: fold these. */
  readonly fold: readonly string[];
}

/** Which tensors are computed at run time and which are constants once the input shapes are fixed. */
export function importPlan(model: ModelProto): ImportPlan {
  const g = model.graph!;
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const dynamic = new Set<string>();
  for (const v of g.input ?? []) if (!inits.has(v.name!)) dynamic.add(v.name!);
  for (const t of inits.values()) if (t.dataType === 1 || t.dataType === 11) dynamic.add(t.name!);
  for (const n of g.node ?? []) {
    if (n.opType === 'Shape' || n.opType === 'Size' || n.opType === 'Constant') continue;
    if ((n.input ?? []).some((x) => dynamic.has(x))) for (const o of n.output ?? []) dynamic.add(o);
  }
  const fold = new Set<string>();
  for (const n of g.node ?? []) {
    if (!(n.output ?? []).some((o) => dynamic.has(o))) continue;
    for (const x of n.input ?? []) if (x && !dynamic.has(x) && !inits.has(x)) fold.add(x);
  }
  return { dynamic, fold: [...fold] };
}

export interface ImportedGraph {
  readonly graph: Graph;
  /** Graph inputs (token ids, masks, positions) by their ONNX names. */
  readonly inputs: ReadonlyMap<string, Value>;
  /** The float initializers as parameters, by name. */
  readonly params: ReadonlyMap<string, Value>;
  /** Every imported tensor by its ONNX name (hooks map tensor names to these). */
  readonly values: ReadonlyMap<string, Value>;
  /** The model's outputs by name. */
  readonly outputs: ReadonlyMap<string, Value>;
}

export interface ImportOptions {
  /** Build into this graph (a second pass of the same model, sharing its weights). Default: a new one. */
  readonly graph?: Graph;
  /** Prefix of the names of this pass's inputs and tensors (not of its weights). Default ''. */
  readonly prefix?: string;
  /** Weights already declared by an earlier pass, by name: this pass uses them. */
  readonly params?: ReadonlyMap<string, Value>;
  /** Called with each computed tensor (by its ONNX name); what it returns replaces the tensor downstream. */
  readonly intervene?: (tensor: string, value: Value) => Value;
}

/**
 * Rebuilds the dynamic part of `model` in a Graph. `shapes` fixes every graph input's shape;
 * `folded` holds the values `importPlan(model).fold` names. An op the IR does not know is one line
 * naming the op and the node.
 */
export function importGraph(model: ModelProto, shapes: Readonly<Record<string, readonly number[]>>, folded: ReadonlyMap<string, HostArray>, options: ImportOptions = {}): ImportedGraph {
  const g = model.graph!;
  const plan = importPlan(model);
  const graph = options.graph ?? new Graph('float32');
  const prefix = options.prefix ?? '';
  const intervene = options.intervene ?? ((_: string, v: Value) => v);
  const values = new Map<string, Value>();
  const inputs = new Map<string, Value>();
  const params = new Map<string, Value>(options.params ?? []);
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  for (const v of g.input ?? []) {
    if (inits.has(v.name!)) continue;
    const shape = shapes[v.name!];
    if (!shape) throw new GraphError(`no shape given for the model's input '${v.name}'`);
    const dtype = DTYPE_OF_ONNX[v.type?.tensorType?.elemType ?? 1];
    if (!dtype) throw new GraphError(`input '${v.name}' has an element type tvlens cannot import (${v.type?.tensorType?.elemType})`);
    const value = graph.input(prefix + v.name!, dtype, shape);
    values.set(v.name!, intervene(v.name!, value));
    inputs.set(v.name!, value);
  }
  const valueOf = (name: string, node: string): Value => {
    const known = values.get(name);
    if (known) return known;
    const init = inits.get(name);
    let v: Value;
    if (init && (init.dataType === 1 || init.dataType === 11)) {
      v = params.get(name) ?? graph.param(name, (init.dims ?? []).map(Number), tensorData(init) as Float32Array);
      params.set(name, v);
    } else if (init) {
      const t = hostOf(init);
      v = graph.constant(t.data, t.dtype, t.shape, prefix + name);
    } else {
      const t = folded.get(name);
      if (!t) throw new GraphError(`tensor '${name}' is neither computed by the imported graph nor folded`, node);
      v = graph.constant(t.data, t.dtype, t.shape, prefix + name);
    }
    values.set(name, v);
    return v;
  };
  for (const n of g.node ?? []) {
    const outs = (n.output ?? []).filter((o) => plan.dynamic.has(o));
    if (outs.length === 0) continue;
    const name = n.name || `${n.opType}_${n.output![0]}`;
    let ins = (n.input ?? []).map((x) => (x === '' ? null : valueOf(x, name)));
    const attrs = attributes(n);
    // Slice's steps input: the IR slices with unit steps; exporters write explicit ones.
    if (n.opType === 'Slice' && ins.length === 5) {
      const steps = graph.constantValue(ins[4]!);
      if (steps && Array.from(steps as BigInt64Array).every((s) => s === 1n)) ins = ins.slice(0, 4);
    }
    if (n.opType === 'Slice' && ins.length === 3) ins = [...ins, graph.constant(BigInt64Array.from({ length: (graph.constantValue(ins[1]!) ?? []).length }, (_, i) => BigInt(i)), 'int64', [(graph.constantValue(ins[1]!) ?? []).length])];
    if (ins.some((x) => x === null) && n.opType !== 'LayerNormalization') throw new GraphError(`${n.opType} with an omitted input cannot be imported`, name);
    const outputNames = (n.output ?? []).map((o, i) => prefix + (i === 0 || plan.dynamic.has(o) ? o : `${o}__unused_${i}`));
    let produced: Value[];
    try {
      produced = graph.apply(n.opType!, ins.filter((x): x is Value => x !== null), attrs, { nodeName: prefix + name, outputNames: opOutputNames(n.opType!, outputNames) });
    } catch (e) {
      if (e instanceof GraphError && /unknown op/.test(e.message)) throw new GraphError(`op ${n.opType} cannot be imported (tvlens has no rule for it)`, name);
      throw e;
    }
    (n.output ?? []).forEach((o, i) => produced[i] && values.set(o, intervene(o, produced[i])));
  }
  const outputs = new Map<string, Value>();
  for (const o of g.output ?? []) {
    const v = values.get(o.name!);
    if (!v) throw new GraphError(`output '${o.name}' does not depend on the inputs or weights`);
    if (!options.graph) graph.output(v);
    outputs.set(o.name!, v);
  }
  return { graph, inputs, params, values, outputs };
}

/** Output names for an op that makes more outputs in the IR than the ONNX node lists (LayerNormalization's stashed statistics). */
function opOutputNames(op: string, names: readonly string[]): string[] {
  if (op === 'LayerNormalization' && names.length < 3) return [...names, ...[`${names[0]}__mean`, `${names[0]}__invstd`].slice(names.length - 1)];
  return [...names];
}

function attributes(n: onnxProto.onnx.INodeProto): Record<string, number | string | number[]> {
  const out: Record<string, number | string | number[]> = {};
  for (const a of n.attribute ?? []) {
    switch (a.type) {
      case 1:
        out[a.name!] = a.f ?? 0;
        break;
      case 2:
        out[a.name!] = Number(a.i ?? 0);
        break;
      case 3:
        out[a.name!] = new TextDecoder().decode(a.s ?? new Uint8Array());
        break;
      case 6:
        out[a.name!] = [...(a.floats ?? [])];
        break;
      case 7:
        out[a.name!] = (a.ints ?? []).map(Number);
        break;
      default:
        throw new GraphError(`attribute '${a.name}' of type ${a.type} cannot be imported`, n.name ?? n.opType ?? '');
    }
  }
  return out;
}

/** An initializer's values in its own dtype. */
export function hostOf(t: TensorProto): HostArray {
  const dtype = DTYPE_OF_ONNX[t.dataType ?? 0];
  if (!dtype) throw new GraphError(`initializer '${t.name}' has an element type tvlens cannot import (${t.dataType})`);
  return { dtype, shape: (t.dims ?? []).map(Number), data: tensorData(t) };
}

function tensorData(t: TensorProto): TypedData {
  const dtype = DTYPE_OF_ONNX[t.dataType ?? 0];
  const size = (t.dims ?? []).map(Number).reduce((a, b) => a * b, 1);
  const raw = t.rawData && t.rawData.length ? t.rawData : null;
  if (raw) {
    const buf = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
    switch (dtype) {
      case 'float32':
        return new Float32Array(buf);
      case 'float64':
        return new Float64Array(buf);
      case 'int64':
        return new BigInt64Array(buf);
      case 'int32':
        return new Int32Array(buf);
      case 'bool':
        return new Uint8Array(buf);
    }
  }
  const out = typedArrayFor(dtype, size);
  const src: ArrayLike<number | bigint | { toString(): string }> =
    dtype === 'float32' ? (t.floatData ?? []) : dtype === 'float64' ? (t.doubleData ?? []) : dtype === 'int64' ? (t.int64Data ?? []) : (t.int32Data ?? []);
  for (let i = 0; i < size; i++) {
    const v = src[i];
    if (out instanceof BigInt64Array) out[i] = BigInt(v === undefined ? 0 : String(v));
    else out[i] = Number(v ?? 0);
  }
  return out;
}
