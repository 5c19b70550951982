/**
 * Gradients of a foreign model: its ONNX graph imported into the graph IR (graph/import.ts) for
 * one input shape, the shape arithmetic folded by running the model once in ONNX Runtime, and our
 * own autodiff applied to whatever loss the caller builds on its outputs.
 */
import onnxProto from 'onnx-proto';
import { type HostArray, type ImportedGraph, importGraph, importPlan } from '../graph/import.js';
import type { Value } from '../graph/ir.js';
import { gradients } from '../graph/autodiff.js';
import { toOnnxBytes } from '../graph/onnx.js';
import { type HostTensor, Session, type SessionOptions } from '../runtime/session.js';
import { encodeModel, graphInputs } from './onnx-edit.js';

type ModelProto = onnxProto.onnx.ModelProto;

/** Feeds of the given shape with harmless values: token 0, a full attention mask, positions 0..T−1. */
export function placeholderFeeds(model: ModelProto, batch: number, seq: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const v of graphInputs(model)) {
    const name = v.name!;
    const n = batch * seq;
    if (/position/.test(name)) out[name] = { dtype: 'int64', shape: [batch, seq], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i % seq)) };
    else if (/mask/.test(name)) out[name] = { dtype: 'int64', shape: [batch, seq], data: new BigInt64Array(n).fill(1n) };
    else out[name] = { dtype: 'int64', shape: [batch, seq], data: new BigInt64Array(n) };
  }
  return out;
}

/** Imports `model` for inputs of [batch, seq]: the folded constants computed by ONNX Runtime, the rest rebuilt as graph ops. */
export async function importForShape(model: ModelProto, batch: number, seq: number, options: SessionOptions = {}): Promise<ImportedGraph> {
  return importGraph(model, Object.fromEntries(Object.entries(placeholderFeeds(model, batch, seq)).map(([k, v]) => [k, v.shape])), await foldFor(model, batch, seq, options));
}

/** The values of the tensors `importPlan(model).fold` names, for inputs of [batch, seq], computed by ONNX Runtime. */
export async function foldFor(model: ModelProto, batch: number, seq: number, options: SessionOptions = {}): Promise<Map<string, HostArray>> {
  const plan = importPlan(model);
  const feeds = placeholderFeeds(model, batch, seq);
  const folded = new Map<string, HostArray>();
  if (plan.fold.length) {
    // Outputs without a type: ONNX Runtime infers them (they are ints, bools and a few floats).
    const g = model.graph!;
    const probe = onnxProto.onnx.ModelProto.create({ ...model, graph: onnxProto.onnx.GraphProto.create({ ...g, output: plan.fold.map((name) => onnxProto.onnx.ValueInfoProto.create({ name })) }) });
    const session = await Session.open(encodeModel(probe), options);
    try {
      const out = await session.run(feeds, plan.fold);
      for (const name of plan.fold) {
        const t = out[name];
        folded.set(name, { dtype: t.dtype as HostArray['dtype'], shape: [...t.shape], data: t.data as HostArray['data'] });
      }
    } finally {
      await session.release();
    }
  }
  return folded;
}

/**
 * Adds d(loss)/d(every weight) to an imported graph as outputs named `grad.<weight>`, and returns
 * the ONNX bytes of the graph (weights as initializers) with the loss output first.
 */
export function withWeightGradients(imported: ImportedGraph, loss: Value): { bytes: Uint8Array; gradNames: ReadonlyMap<string, string> } {
  const { graph, params } = imported;
  const names = [...params.keys()];
  const grads = gradients(loss, names.map((n) => params.get(n)!));
  graph.output(loss, 'loss');
  const gradNames = new Map(names.map((n, i) => [n, graph.output(grads[i], `grad.${n}`).name]));
  return { bytes: toOnnxBytes(graph, { name: 'tvlens-imported-gradients' }), gradNames };
}
