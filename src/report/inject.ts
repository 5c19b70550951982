/**
 * The explorer's model: the checkpoint's forward pass with a task-vector injection built in, so one
 * ONNX graph answers ICL, zero-shot and injected queries in the browser (and in Node, for parity).
 *
 *   tokens         int64 [batch, seq]    (vector models: inputs [batch, seq, dIn], markers [batch, seq])
 *   tv             float [d_model]       the vector written into the residual stream
 *   tv_layer_mask  float [L+1]           1 at the layer(s) written; all zeros = the checkpoint as it is
 *   tv_pos         int64 []              the position written
 *
 * At each residual layer ℓ (the task-vector convention: ℓ = 0 embeddings, ℓ ≥ 1 the output of
 * block ℓ−1, as residualAtLayer names it) the stream becomes x + mask[ℓ]·onehot(pos)·(tv − x):
 * the row at `tv_pos` is replaced by `tv` where the mask is 1, and untouched elsewhere.
 */
import type { Manifest } from '../checkpoint/checkpoint.js';
import { outputName } from '../model/inference.js';
import { Graph, op, toOnnxBytes } from '../graph/index.js';
import type { ModelConfig } from '../model/config.js';
import { residualAtLayer } from '../model/hooks.js';
import { Transformer, declareParams } from '../model/transformer.js';
import { modelInputs } from '../model/inputs.js';

export const INJECT_INPUTS = { tv: 'tv', layerMask: 'tv_layer_mask', pos: 'tv_pos' } as const;

export function injectionGraph(cfg: ModelConfig): Graph {
  const g = new Graph('float32');
  const tv = g.input(INJECT_INPUTS.tv, 'float32', [cfg.dModel]);
  const mask = g.input(INJECT_INPUTS.layerMask, 'float32', [cfg.layers + 1]);
  const pos = g.input(INJECT_INPUTS.pos, 'int64', []);
  const layerOf = new Map(Array.from({ length: cfg.layers + 1 }, (_, l) => [residualAtLayer(l).name, l]));
  const model = new Transformer(cfg, declareParams(g, cfg, 0));
  const { output } = model.forward(modelInputs(g, cfg), {
    intervene: (hook, x) => {
      const l = layerOf.get(hook.name);
      if (l === undefined) return x;
      const seq = op.arange(op.dimOf(x, 1), x.shape[1]); // [pos]
      const row = op.unsqueeze(op.cast(op.equal(seq, pos), 'float32'), [1]); // [pos, 1]
      const m = op.slice(mask, [l], [l + 1], [0]); // [1]
      return op.add(x, op.mul(op.mul(row, m), op.sub(tv, x))); // [batch, pos, d_model]
    },
  });
  g.output(output, outputName(cfg));
  return g;
}

/** The injection graph as ONNX bytes, carrying the checkpoint's weights and hash. */
export function injectionModelBytes(m: Manifest, params: ReadonlyMap<string, Float32Array>): Uint8Array {
  return toOnnxBytes(injectionGraph(m.model), {
    paramData: params,
    name: 'tvlens-explorer',
    metadata: { weights_sha256: m.weightsSha256, step: String(m.step), inject: 'x + tv_layer_mask[l]*onehot(tv_pos)*(tv - x) at each residual layer l' },
  });
}

/** Feeds for one prompt through the injection graph: a one-hot mask at `layer`, or none. */
export function injectionFeeds(dModel: number, layers: number, tv: ArrayLike<number> | null, layer: number | null, pos: number) {
  const mask = new Float32Array(layers + 1);
  if (layer !== null) mask[layer] = 1;
  return {
    [INJECT_INPUTS.tv]: { dtype: 'float32' as const, shape: [dModel], data: tv ? Float32Array.from(tv) : new Float32Array(dModel) },
    [INJECT_INPUTS.layerMask]: { dtype: 'float32' as const, shape: [layers + 1], data: mask },
    [INJECT_INPUTS.pos]: { dtype: 'int64' as const, shape: [], data: BigInt64Array.of(BigInt(pos)) },
  };
}
