/**
 * Writes a Graph as an ONNX ModelProto (opset 17, standard ai.onnx ops only) through onnx-proto's
 * protobuf bindings. The writer checks the graph first and refuses a malformed one by node name.
 */
import onnxProto from 'onnx-proto';
import { GraphError } from '../errors.js';
import { opDef } from './registry.js';
import { ONNX_DTYPE } from './ops/constants.js';
import type { AttrValue, Graph, Initializer, Node, Shape, Value } from './ir.js';

const { onnx } = onnxProto;
export { onnx };

export const OPSET = 17;
/** IR version 8 is the one that goes with opset 17. */
const IR_VERSION = 8;

export interface WriteOptions {
  /** 'inputs' for a training graph fed fresh weights each step; 'initializers' for a checkpoint. Default 'initializers'. */
  readonly paramsAs?: 'inputs' | 'initializers';
  readonly name?: string;
  /** Key/value pairs stored in the model's metadata_props (config, hashes). */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Replaces the data of parameters by name (the trained weights of a checkpoint). */
  readonly paramData?: ReadonlyMap<string, Initializer['data']>;
}

export function toModelProto(graph: Graph, options: WriteOptions = {}): onnxProto.onnx.ModelProto {
  const nodes = liveNodes(graph);
  checkWellFormed(graph, nodes);
  const paramsAsInputs = options.paramsAs === 'inputs';
  const used = new Set<Value>(nodes.flatMap((n) => n.inputs));
  graph.outputs.forEach((v) => used.add(v));
  const params = graph.params.filter((p) => used.has(p.value));
  const paramData = (p: Initializer) => options.paramData?.get(p.value.name) ?? p.data;
  const initializers = [
    ...(paramsAsInputs ? [] : params.map((p) => tensorProto(p.value, paramData(p)))),
    ...graph.constants.filter((c) => used.has(c.value)).map((c) => tensorProto(c.value, c.data)),
  ];
  const inputs = [...graph.inputs, ...(paramsAsInputs ? params.map((p) => p.value) : [])];
  return onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'tvlens',
    opsetImport: [{ domain: '', version: OPSET }],
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: options.name ?? 'tvlens',
      node: nodes.map(nodeProto),
      initializer: initializers,
      input: inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
    },
  });
}

export function toOnnxBytes(graph: Graph, options: WriteOptions = {}): Uint8Array {
  return onnx.ModelProto.encode(toModelProto(graph, options)).finish();
}

/** Nodes that some graph output needs, in build order. Rules may build gradients nobody asked for. */
function liveNodes(graph: Graph): Node[] {
  const needed = new Set<Value>(graph.outputs);
  const live: Node[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (node.outputs.some((y) => needed.has(y))) {
      live.push(node);
      node.inputs.forEach((x) => needed.add(x));
    }
  }
  return live.reverse();
}

function checkWellFormed(graph: Graph, nodes: readonly Node[]): void {
  if (graph.outputs.length === 0) throw new GraphError('graph has no outputs');
  const defined = new Set<Value>([...graph.inputs, ...graph.params.map((p) => p.value), ...graph.constants.map((c) => c.value)]);
  const nodeNames = new Set<string>();
  for (const node of nodes) {
    if (nodeNames.has(node.name)) throw new GraphError('duplicate node name', node.name);
    nodeNames.add(node.name);
    for (const x of node.inputs) {
      if (!defined.has(x)) throw new GraphError(`input '${x.name}' is not produced by any earlier node, input or initializer`, node.name);
    }
    node.outputs.forEach((y) => defined.add(y));
  }
  for (const y of graph.outputs) {
    if (!defined.has(y)) throw new GraphError(`output '${y.name}' is never produced`);
  }
}

function nodeProto(node: Node): onnxProto.onnx.INodeProto {
  const floats = new Set(opDef(node.op).floatAttrs ?? []);
  return {
    name: node.name,
    opType: node.op,
    input: node.inputs.map((x) => x.name),
    output: node.outputs.map((y) => y.name),
    attribute: Object.entries(node.attrs).map(([name, v]) => attributeProto(name, v, floats.has(name))),
  };
}

function attributeProto(name: string, v: AttrValue, isFloat: boolean): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') return isFloat ? { name, type: T.FLOAT, f: v } : { name, type: T.INT, i: v };
  return isFloat ? { name, type: T.FLOATS, floats: [...v] } : { name, type: T.INTS, ints: [...v] };
}

function tensorProto(v: Value, data: Initializer['data']): onnxProto.onnx.ITensorProto {
  return {
    name: v.name,
    dims: v.shape as number[],
    dataType: ONNX_DTYPE[v.dtype],
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

function valueInfo(v: Value): onnxProto.onnx.IValueInfoProto {
  return { name: v.name, type: { tensorType: { elemType: ONNX_DTYPE[v.dtype], shape: shapeProto(v.shape) } } };
}

function shapeProto(shape: Shape): onnxProto.onnx.ITensorShapeProto {
  return { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
}
