/**
 * Activations of one run by hook name, as TransformerLens's `run_with_cache` returns them, with
 * its conveniences: the residual stream by layer (negative layers count from the end), the
 * accumulated and decomposed residual stream, and a logit attribution of any stack of them.
 */
import { InputError } from '../errors.js';
import { hookPoint, residualAtLayer } from '../model/hooks.js';
import { Tensor } from './tensor.js';

/** What a logit attribution reads of a checkpoint: the final LayerNorm and the unembedding. */
export interface Unembed {
  readonly dModel: number;
  readonly vocab: number;
  readonly lnEpsilon: number;
  /** ln_final.w, ln_final.b [d_model]. */
  readonly lnW: Float32Array;
  readonly lnB: Float32Array;
  /** unembed.W_U [d_model, vocab], unembed.b_U [vocab]. */
  readonly WU: Float32Array;
  readonly bU: Float32Array;
}

/** Components of the residual stream stacked on a leading axis: [components, batch, pos, d_model]. */
export interface ResidStack {
  readonly labels: readonly string[];
  readonly stack: Tensor;
}

export class ActivationCache {
  constructor(
    private readonly tensors: ReadonlyMap<string, Tensor>,
    /** Blocks, L: residual layers are 0..L. */
    readonly layers: number,
    /** A checkpoint's final LayerNorm and unembedding (null for a foreign model: no logit attribution). */
    private readonly unembed: Unembed | null = null,
  ) {}

  /** The activation at a hook, e.g. `cache.get('blocks.1.hook_resid_post')` [batch, pos, d_model]. */
  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new InputError(`the cache holds no hook '${name}'. It holds: ${[...this.tensors.keys()].join(', ') || 'nothing'}`);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get names(): string[] {
    return [...this.tensors.keys()];
  }

  /**
   * The residual stream at layer ℓ (LAYER_CONVENTION: ℓ = 0 the embeddings, ℓ = L the final
   * stream) [batch, pos, d_model]. Negative layers count from the end: −1 is the final stream.
   */
  resid(layer: number): Tensor {
    const L = this.layers;
    const l = layer < 0 ? L + 1 + layer : layer;
    if (!Number.isInteger(layer) || l < 0 || l > L) throw new InputError(`residual layer ${layer} is out of range: this model has layers 0..${L} (or −${L + 1}..−1 from the end)`);
    return this.get(residualAtLayer(l).name);
  }

  /** The same as `resid`. */
  residual(layer: number): Tensor {
    return this.resid(layer);
  }

  /** The residual stream at every layer 0..L, stacked: [L+1, batch, pos, d_model] (TransformerLens's accumulated_resid). */
  accumulatedResid(): ResidStack {
    const layers = Array.from({ length: this.layers + 1 }, (_, l) => l);
    return stack(layers.map((l) => [l === 0 ? 'embed' : `${l - 1}_resid_post`, this.resid(l)]));
  }

  /**
   * The final residual stream split into what wrote it: the embeddings (and learned positions),
   * then each block's attention and MLP output. The components sum to `resid(-1)`:
   * [components, batch, pos, d_model] (TransformerLens's decompose_resid).
   */
  decomposeResid(): ResidStack {
    const parts: [string, Tensor][] = [['embed', this.get('hook_embed')]];
    if (this.has('hook_pos_embed')) parts.push(['pos_embed', this.get('hook_pos_embed')]);
    for (let l = 0; l < this.layers; l++) {
      parts.push([`${l}_attn_out`, this.get(hookPoint('hook_attn_out', l).name)]);
      parts.push([`${l}_mlp_out`, this.get(hookPoint('hook_mlp_out', l).name)]);
    }
    return stack(parts.map(([label, t]) => [label, broadcastBatch(t, this.resid(-1).dims)]));
  }

  /**
   * Each component's direct contribution to the logit of `tokens[b]` at `position` of prompt b,
   * through the final LayerNorm at this run's scale (TransformerLens's logit_attrs): [components,
   * batch]. For the components of `decomposeResid`, they sum to the logit less the constant
   * ln_final.b·W_U[:, t] + b_U[t]. A tvlens checkpoint only (it reads W_U).
   */
  logitAttrs(components: ResidStack, tokens: readonly number[], position = -1): Tensor {
    const u = this.unembed;
    if (!u) throw new InputError('logit attribution reads the unembedding, so it needs a tvlens checkpoint');
    const final = this.resid(-1); // [batch, pos, d_model]
    const [B, T, D] = final.dims;
    const p = position < 0 ? T + position : position;
    if (!Number.isInteger(p) || p < 0 || p >= T) throw new InputError(`position ${position} is out of range for prompts of ${T} positions`);
    if (tokens.length !== B) throw new InputError(`logitAttrs takes one token per prompt: ${B} prompts, ${tokens.length} tokens`);
    const C = components.stack.dims[0];
    const out = new Float32Array(C * B);
    for (let b = 0; b < B; b++) {
      const t = tokens[b];
      if (!Number.isInteger(t) || t < 0 || t >= u.vocab) throw new InputError(`token ${t} is not in the vocabulary (0..${u.vocab - 1})`);
      const x = final.at(b, p);
      const mean = x.reduce((a, v) => a + v, 0) / D;
      const scale = Math.sqrt(x.reduce((a, v) => a + (v - mean) ** 2, 0) / D + u.lnEpsilon);
      for (let c = 0; c < C; c++) {
        const v = components.stack.at(c, b, p);
        const m = v.reduce((a, w) => a + w, 0) / D;
        let s = 0;
        for (let d = 0; d < D; d++) s += ((v[d] - m) / scale) * u.lnW[d] * u.WU[d * u.vocab + t];
        out[c * B + b] = s;
      }
    }
    return new Tensor(out, [C, B]);
  }

  [Symbol.iterator](): IterableIterator<[string, Tensor]> {
    return this.tensors.entries();
  }
}

function stack(parts: readonly (readonly [string, Tensor])[]): ResidStack {
  const dims = parts[0][1].dims;
  const size = parts[0][1].size;
  const data = new Float32Array(parts.length * size);
  parts.forEach(([, t], i) => data.set(t.data, i * size));
  return { labels: parts.map(([l]) => l), stack: new Tensor(data, [parts.length, ...dims]) };
}

/** A [1, pos, d_model] activation (learned positions are the same for every prompt) repeated to [batch, pos, d_model]. */
function broadcastBatch(t: Tensor, dims: readonly number[]): Tensor {
  if (t.dims[0] === dims[0]) return t;
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let b = 0; b < dims[0]; b++) data.set(t.data, b * t.size);
  return new Tensor(data, dims);
}
