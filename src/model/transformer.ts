/**
 * A GPT-2-style decoder-only transformer, pre-LayerNorm with a causal mask, built in the graph.
 * It reads bottom-up like the math: x = x + attn(ln1(x)); x = x + mlp(ln2(x)).
 *
 * Every activation passes through a hook point. `forward` takes an optional `intervene` callback
 * that sees each hook's value and returns the value to continue with: that is how patching and the
 * TVP-loss write a task vector into the residual stream inside one graph.
 */
import { type Graph, type TypedData, type Value, floatArray, op } from '../graph/index.js';
import { Rng } from '../util/rng.js';
import { type ModelConfig, dHeadOf, dMlpOf } from './config.js';
import { type HookKind, type HookPoint, hookPoint } from './hooks.js';

export type Intervene = (hook: HookPoint, x: Value) => Value;

/**
 * The model's inputs: token ids, or vectors with marker ids (0 data, 1 arrow, 2 separator); `keep`
 * [batch, pos] scales each position's embedding (token-wise dropout in training graphs only).
 */
export type ModelInputs = ({ tokens: Value } | { inputs: Value; markers: Value }) & { keep?: Value };

export interface ForwardResult {
  /** `logits` [batch, pos, vocab] or `predictions` [batch, pos, dOut]. */
  readonly output: Value;
  /** Every hook's value, by name. */
  readonly hooks: ReadonlyMap<string, Value>;
  /**
   * Each block's attention queries, keys and values [batch, head, pos, d_head] (after rotary):
   * what a suffix forward (suffix.ts) reuses instead of recomputing positions a patch leaves alone.
   */
  readonly kv: readonly KeysValues[];
}

export interface KeysValues {
  readonly q: Value;
  readonly k: Value;
  readonly v: Value;
}

export const MARKERS = 3;

/** The model's weights as graph values. Parameter names follow TransformerLens (W_Q, b_in, ...). */
export type Params = Readonly<Record<string, Value>>;

/** One parameter: its name, shape, and how GPT-2 initialises it. */
interface ParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** N(0, std²) weights, or a constant fill (biases, LayerNorm gains); fills take no weight decay. */
  readonly init: { readonly std: number } | { readonly fill: number };
}

/** The parameters of `cfg`, in declaration order. */
function paramSpecs(cfg: ModelConfig): ParamSpec[] {
  const D = cfg.dModel;
  const out: ParamSpec[] = [];
  const normal = (name: string, shape: number[], std = cfg.initStd) => out.push({ name, shape, init: { std } });
  const fill = (name: string, shape: number[], value: number) => out.push({ name, shape, init: { fill: value } });
  const residStd = cfg.initStd / Math.sqrt(2 * cfg.layers);

  if (cfg.input === 'tokens') normal('embed.W_E', [cfg.vocab, D]);
  else {
    normal('embed.W_in', [cfg.dIn, D]);
    normal('embed.W_marker', [MARKERS, D]);
  }
  if (cfg.positional === 'learned') normal('pos_embed.W_pos', [cfg.maxSeq, D]);
  for (let l = 0; l < cfg.layers; l++) {
    const b = `blocks.${l}`;
    fill(`${b}.ln1.w`, [D], 1);
    fill(`${b}.ln1.b`, [D], 0);
    for (const m of ['Q', 'K', 'V']) {
      normal(`${b}.attn.W_${m}`, [D, D]);
      fill(`${b}.attn.b_${m}`, [D], 0);
    }
    normal(`${b}.attn.W_O`, [D, D], residStd);
    fill(`${b}.attn.b_O`, [D], 0);
    if (cfg.attnOnly) continue;
    fill(`${b}.ln2.w`, [D], 1);
    fill(`${b}.ln2.b`, [D], 0);
    normal(`${b}.mlp.W_in`, [D, dMlpOf(cfg)]);
    fill(`${b}.mlp.b_in`, [dMlpOf(cfg)], 0);
    normal(`${b}.mlp.W_out`, [dMlpOf(cfg), D], residStd);
    fill(`${b}.mlp.b_out`, [D], 0);
  }
  fill('ln_final.w', [D], 1);
  fill('ln_final.b', [D], 0);
  const width = cfg.output === 'logits' ? cfg.vocab : cfg.dOut;
  normal('unembed.W_U', [D, width]);
  fill('unembed.b_U', [width], 0);
  return out;
}

/** The parameter names of `cfg`: what a checkpoint's weights are, among its initializers. */
export const paramNames = (cfg: ModelConfig): string[] => paramSpecs(cfg).map((p) => p.name);

/**
 * Declares the parameters with GPT-2's initialisation: N(0, initStd²) weights, residual output
 * projections scaled by 1/√(2·layers), zero biases, unit LayerNorm gains. `seed` null declares
 * shapes only (zeros), for a graph whose weights are bound from a checkpoint when it is written,
 * or filled from `initialParams` by a trainer.
 */
export function declareParams(g: Graph, cfg: ModelConfig, seed: number | null): Params {
  const draws = initialValues(cfg, seed, g.floatType);
  let r = draws.next();
  while (!r.done) r = draws.next();
  const p: Record<string, Value> = {};
  for (const { name, shape, init } of paramSpecs(cfg)) p[name] = g.param(name, [...shape], r.value.get(name)!, 'fill' in init ? { decay: false } : undefined);
  return p;
}

/**
 * The same values `declareParams` gives for `seed`, drawn in slices with a pause between them:
 * 38M random draws take 2–4 s, and a trainer draws them this way so that a signal or a progress
 * line is served meanwhile.
 */
export async function initialParams(cfg: ModelConfig, seed: number): Promise<Map<string, TypedData>> {
  const draws = initialValues(cfg, seed, 'float32');
  for (let r = draws.next(); ; r = draws.next()) {
    if (r.done) return r.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Draws every parameter's initial values in declaration order, pausing (yield) after each ~1M draws. */
function* initialValues(cfg: ModelConfig, seed: number | null, floatType: 'float32' | 'float64'): Generator<void, Map<string, TypedData>> {
  const rng = seed === null ? null : new Rng(seed);
  const out = new Map<string, TypedData>();
  for (const { name, shape, init } of paramSpecs(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = floatType === 'float32' ? new Float32Array(n) : new Float64Array(n);
    if ('fill' in init) data.fill(init.fill);
    else if (rng) {
      // Straight into the typed array (a JS array of 16M numbers first took 13 s at 38M parameters).
      for (let i0 = 0; i0 < n; i0 += DRAWS_PER_SLICE) {
        for (let i = i0; i < Math.min(n, i0 + DRAWS_PER_SLICE); i++) data[i] = rng.normal() * init.std;
        yield;
      }
    }
    out.set(name, data);
  }
  return out;
}

/** About 50 ms of random draws on this machine's cores. */
const DRAWS_PER_SLICE = 1 << 20;

export class Transformer {
  constructor(
    readonly cfg: ModelConfig,
    readonly params: Params,
  ) {}

  /**
   * Builds the forward pass. `intervene` may replace any hook's value. `nameHooks` gives each hook's
   * tensor its TransformerLens name (through an Identity), as a checkpoint wants; a graph holding
   * two forward passes (TVP-loss) leaves it off, since names must be unique.
   */
  forward(inputs: ModelInputs, options: { intervene?: Intervene; nameHooks?: boolean } = {}): ForwardResult {
    const { intervene, nameHooks } = options;
    const hooks = new Map<string, Value>();
    const kv: KeysValues[] = [];
    const hook = (kind: HookKind, layer: number | null, x: Value): Value => {
      const point = hookPoint(kind, layer);
      let y = intervene ? intervene(point, x) : x;
      if (nameHooks) y = x.graph.apply('Identity', [y], {}, { outputNames: [point.name], nodeName: `hook/${point.name}` })[0];
      hooks.set(point.name, y);
      return y;
    };
    const p = this.params;
    const first = 'tokens' in inputs ? inputs.tokens : inputs.markers; // [batch, pos]
    const g = first.graph;
    const seqLen = op.dimOf(first, 1);
    const positions = op.arange(seqLen, first.shape[1]); // [pos]

    // ---- embeddings
    let x = g.scope('embed', () =>
      'tokens' in inputs
        ? op.gather(p['embed.W_E'], inputs.tokens) // [batch, pos, d_model]
        : op.add(op.matmul(inputs.inputs, p['embed.W_in']), op.gather(p['embed.W_marker'], inputs.markers)),
    );
    if (inputs.keep) x = op.mul(x, op.unsqueeze(inputs.keep, [2])); // a dropped token's embedding is zero
    x = hook('hook_embed', null, x);
    if (this.cfg.positional === 'learned') {
      const pos = hook('hook_pos_embed', null, op.unsqueeze(op.gather(p['pos_embed.W_pos'], positions), [0])); // [1, pos, d_model]
      x = op.add(x, pos);
    }
    const mask = causalMaskBias(positions, x); // [pos, pos]
    const rotary = this.cfg.positional === 'rotary' ? rotaryTables(positions, dHeadOf(this.cfg), x) : null;

    // ---- blocks
    for (let l = 0; l < this.cfg.layers; l++) {
      g.scope(`blocks.${l}`, () => {
        const b = `blocks.${l}`;
        x = hook('hook_resid_pre', l, x);
        const h1 = op.layerNorm(x, p[`${b}.ln1.w`], p[`${b}.ln1.b`], this.cfg.lnEpsilon);
        const attnOut = hook('hook_attn_out', l, this.attention(l, h1, mask, rotary, hook, kv));
        x = hook('hook_resid_mid', l, op.add(x, attnOut));
        const mlpOut = hook('hook_mlp_out', l, blockMlp(this.cfg, p, l, x));
        x = hook('hook_resid_post', l, op.add(x, mlpOut));
      });
    }

    // ---- read-out
    const normalized = hook('ln_final.hook_normalized', null, finalNorm(this.cfg, p, x));
    const output = unembed(p, normalized); // [batch, pos, vocab | dOut]
    return { output, hooks, kv };
  }

  private attention(
    l: number,
    x: Value,
    maskBias: Value,
    rotary: RotaryTables | null,
    hook: (kind: HookKind, layer: number | null, x: Value) => Value,
    kv: KeysValues[],
  ): Value {
    const { heads } = this.cfg;
    const dh = dHeadOf(this.cfg);
    const p = this.params;
    const b = `blocks.${l}.attn`;
    const project = (m: string) => op.add(op.matmul(x, p[`${b}.W_${m}`]), p[`${b}.b_${m}`]);
    const split = (t: Value) => op.reshape(t, [0, 0, heads, dh]); // [batch, pos, head, d_head]
    let q = op.transpose(split(project('Q')), [0, 2, 1, 3]); // [batch, head, pos, d_head]
    let k = op.transpose(split(project('K')), [0, 2, 1, 3]); // [batch, head, pos, d_head]
    const v = op.transpose(split(project('V')), [0, 2, 1, 3]); // [batch, head, pos, d_head]
    if (rotary) [q, k] = [rotate(q, rotary), rotate(k, rotary)];
    kv.push({ q, k, v });
    const scores = op.add(op.mul(op.matmulTransB(q, k), 1 / Math.sqrt(dh)), maskBias); // [batch, head, q, k]
    const pattern = hook('attn.hook_pattern', l, op.softmax(scores));
    const z = hook('attn.hook_z', l, op.transpose(op.matmul(pattern, v), [0, 2, 1, 3])); // [batch, pos, head, d_head]
    return op.add(op.matmul(op.reshape(z, [0, 0, -1]), p[`${b}.W_O`]), p[`${b}.b_O`]); // [batch, pos, d_model]
  }
}

/** 0 where key ≤ query, −1e9 where the key is in the future. */
function causalMaskBias(positions: Value, like: Value): Value {
  const future = op.greater(op.unsqueeze(positions, [0]), op.unsqueeze(positions, [1])); // [q, k]
  return op.mul(op.cast(future, like.dtype), -1e9);
}

export interface RotaryTables {
  readonly cos: Value; // [pos, d_head/2]
  readonly sin: Value;
}

/** GPT-NeoX rotary embedding tables, θ_i = 10000^(−2i/d_head), computed in the graph for any length. */
export function rotaryTables(positions: Value, dh: number, like: Value): RotaryTables {
  const g = like.graph;
  const half = dh / 2;
  const inv = g.constant(floatArray(g.floatType, Array.from({ length: half }, (_, i) => 10000 ** (-(2 * i) / dh))), like.dtype, [1, half]);
  const angles = op.mul(op.unsqueeze(op.cast(positions, like.dtype), [1]), inv); // [pos, half]
  return { cos: op.cos(angles), sin: op.sin(angles) };
}

/** Rotates the two halves of the head dimension (the last axis, after pos) by the position's angles. */
export function rotate(x: Value, { cos, sin }: RotaryTables): Value {
  const last = x.rank - 1;
  const half = (x.shape[last] as number) / 2;
  const x1 = op.slice(x, [0], [half], [last]);
  const x2 = op.slice(x, [half], [Infinity], [last]);
  return op.concat([op.sub(op.mul(x1, cos), op.mul(x2, sin)), op.add(op.mul(x2, cos), op.mul(x1, sin))], last);
}

/** Block `l`'s MLP output on its residual stream x: mlp(ln2(x)), zero in an attention-only model. */
export function blockMlp(cfg: ModelConfig, p: Params, l: number, x: Value): Value {
  const b = `blocks.${l}`;
  return cfg.attnOnly ? op.mul(x, 0) : mlp(p, b, op.layerNorm(x, p[`${b}.ln2.w`], p[`${b}.ln2.b`], cfg.lnEpsilon));
}

/** The final LayerNorm of the residual stream x. */
export function finalNorm(cfg: ModelConfig, p: Params, x: Value): Value {
  return op.layerNorm(x, p['ln_final.w'], p['ln_final.b'], cfg.lnEpsilon);
}

/** The last position of a [B, T, W] stream (the output, a residual) as [B, W]. */
export const lastPosition = (output: Value): Value => op.reshape(op.lastAlong(output, 1), [0, -1]);

/** The read-out of the normalised stream: logits (or the output vector). */
export function unembed(p: Params, normalized: Value): Value {
  return op.add(op.matmul(normalized, p['unembed.W_U']), p['unembed.b_U']);
}

/** A block's MLP on its normalised input h2: W_out · gelu(W_in · h2 + b_in) + b_out. */
export function mlp(p: Params, b: string, h2: Value): Value {
  const hidden = op.gelu(op.add(op.matmul(h2, p[`${b}.mlp.W_in`]), p[`${b}.mlp.b_in`])); // [.., d_mlp]
  return op.add(op.matmul(hidden, p[`${b}.mlp.W_out`]), p[`${b}.mlp.b_out`]);
}
