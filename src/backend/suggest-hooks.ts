/**
 * A full hook map suggested from a foreign decoder's graph alone: the residual stream (the chain of
 * residual Adds, see `residualCandidates`), and for each block the branch outputs beside it,
 *
 *   hook_attn_out      the other input of the block's first residual Add
 *   hook_mlp_out       the other input of its second
 *   attn.hook_z        per-head z [batch, pos, head, d_head]: walking back from attn_out through a
 *                      bias Add and the output projection (MatMul or Gemm with a weight) to the
 *                      Reshape that merges heads, z is that Reshape's input
 *   attn.hook_pattern  the Softmax whose output is multiplied with the values, where the graph has one
 *
 * A hook whose pattern does not match is left out rather than guessed. `tvlens hooks <dir>` prints
 * the map; a model folder opened without a hook map uses it.
 */
import type onnxProto from 'onnx-proto';
import { residualCandidates } from './hookmap.js';

type ModelProto = onnxProto.onnx.ModelProto;
type NodeProto = onnxProto.onnx.INodeProto;

export interface SuggestedHooks {
  /** Tensor → hook name, in forward order. */
  readonly hooks: Record<string, string>;
  /** Blocks found. */
  readonly layers: number;
  /** Per block: the output-projection weight (initializer) behind hook_z, where found. */
  readonly outputWeights: readonly (string | null)[];
}

export function suggestHooks(model: ModelProto): SuggestedHooks {
  const nodes = model.graph!.node ?? [];
  const weights = new Set((model.graph!.initializer ?? []).map((t) => t.name!));
  const producer = new Map<string, NodeProto>();
  for (const n of nodes) for (const o of n.output ?? []) producer.set(o, n);
  const through = (x: string): string => {
    const p = producer.get(x);
    return p?.opType === 'Identity' ? through(p.input![0]) : x;
  };
  const candidates = residualCandidates(model);
  const hooks: Record<string, string> = {};
  const outputWeights: (string | null)[] = [];
  if (candidates.length < 3) return { hooks: Object.fromEntries(candidates.map((c) => [c.tensor, c.suggested])), layers: 0, outputWeights };
  const layers = (candidates.length - 1) >> 1;
  for (let l = 0; l < layers; l++) {
    const [pre, mid, post] = [candidates[2 * l], candidates[2 * l + 1], candidates[2 * l + 2]];
    hooks[pre.tensor] ??= `blocks.${l}.hook_resid_pre`;
    const branch = (resid: string, prev: string) => {
      const add = producer.get(resid);
      return add?.opType === 'Add' ? (add.input ?? []).map(through).find((x) => x !== through(prev)) : undefined;
    };
    const attnOut = branch(mid.tensor, pre.tensor);
    const head = attnOut ? headTensors(attnOut, producer, weights, through) : null;
    if (head?.pattern) hooks[head.pattern] = `blocks.${l}.attn.hook_pattern`;
    if (head?.z) hooks[head.z] = `blocks.${l}.attn.hook_z`;
    outputWeights.push(head?.weight ?? null);
    if (attnOut) hooks[attnOut] = `blocks.${l}.hook_attn_out`;
    hooks[mid.tensor] = `blocks.${l}.hook_resid_mid`;
    const mlpOut = branch(post.tensor, mid.tensor);
    if (mlpOut) hooks[mlpOut] = `blocks.${l}.hook_mlp_out`;
    hooks[post.tensor] = `blocks.${l}.hook_resid_post`;
  }
  return { hooks, layers, outputWeights };
}

/** From an attention branch's output back to per-head z (and the pattern), or nulls where the graph differs. */
function headTensors(out: string, producer: ReadonlyMap<string, NodeProto>, weights: ReadonlySet<string>, through: (x: string) => string): { z: string | null; pattern: string | null; weight: string | null } {
  let node = producer.get(out);
  // A bias after the projection: Add(projection, bias).
  if (node?.opType === 'Add') {
    const data = (node.input ?? []).map(through).find((x) => !weights.has(x));
    node = data ? producer.get(data) : undefined;
  }
  if (!node || (node.opType !== 'MatMul' && node.opType !== 'Gemm')) return { z: null, pattern: null, weight: null };
  const [a, b] = (node.input ?? []).map(through);
  if (!weights.has(b)) return { z: null, pattern: null, weight: null };
  const merge = producer.get(a);
  if (merge?.opType !== 'Reshape') return { z: null, pattern: null, weight: b };
  const z = through(merge.input![0]);
  // z = Transpose(MatMul(pattern, v)); pattern = Softmax(…) where the graph computes it so.
  const t = producer.get(z);
  const mm = t?.opType === 'Transpose' ? producer.get(through(t.input![0])) : undefined;
  const sm = mm?.opType === 'MatMul' ? producer.get(through(mm.input![0])) : undefined;
  return { z, pattern: sm?.opType === 'Softmax' ? sm.output![0] : null, weight: b };
}
