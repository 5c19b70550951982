/**
 * The suffix forward: the transformer run only where a patch can change anything.
 *
 * A patch at position p and layer ℓ leaves every position before p untouched at every layer, and
 * every layer below ℓ untouched everywhere. So the analyses run one full forward pass (the base
 * run), keep each block's keys and values, and then push many patched *copies* of the suffix
 * (positions p..T−1) through the blocks from their entry layer upward. Copies attend to the
 * base run's cached keys and values for the prefix, and causally to their own suffix rows.
 *
 * Copies enter at different layers in one graph: at block ℓ the copies that entered earlier are
 * carried on, and those that enter at ℓ are concatenated to them, so a copy that starts late
 * costs nothing below its layer. Only the last position's output is read out, so the last block
 * computes its queries, attention and MLP for that one row.
 *
 * Shapes: N prompts, C copies, S suffix positions, P prefix positions, H heads, dh = d_head.
 *   activations  [N, C, S, D]
 *   attention    [N, H, C, S, dh]; the prefix's keys and values [N, H, P, dh], shared by the copies
 *                (their products with the prefix run on every copy's rows at once, [N, H, C·S, dh])
 */
import { GraphError } from '../errors.js';
import { type Dim, type Graph, type Value, op } from '../graph/index.js';
import { type ModelConfig, dHeadOf } from './config.js';
import { type Params, type RotaryTables, blockMlp, finalNorm, rotaryTables, rotate, unembed } from './transformer.js';

/** Which copies enter where. Copies are ordered by entry: resid 0, z 0, resid 1, z 1, …, resid L. */
export interface SuffixPlan {
  /** resid[ℓ], ℓ = 0..L: copies that start from the residual stream at layer ℓ (TV convention). */
  readonly resid: readonly number[];
  /** z[ℓ], ℓ = 0..L−1: copies that start from block ℓ's attn.hook_z (its output is recomputed). */
  readonly z: readonly number[];
  /** Residual layers where every copy active there is rewritten in the graph as x·keep + add. */
  readonly inject: readonly number[];
  /** Whether there are positions before the suffix; their keys and values are then inputs. */
  readonly prefix: boolean;
  /**
   * Whether the suffix is one position (S = 1, as in task-vector search): attention then runs as
   * elementwise products in z's own layout, with no transposes and no tiny per-head matmuls.
   */
  readonly single?: boolean;
}

/** An entry point of a copy, in forward order: resid ℓ comes before z ℓ, which comes before resid ℓ+1. */
export type EntrySite = { readonly kind: 'resid' | 'z'; readonly layer: number };

export const siteOrder = (s: EntrySite): number => 2 * s.layer + (s.kind === 'z' ? 1 : 0);

/** Copies active at the residual of layer ℓ: those that entered at or before it. */
export function activeAt(plan: SuffixPlan, layer: number): number {
  let n = 0;
  for (let j = 0; j <= layer; j++) n += (plan.resid[j] ?? 0) + (j < layer ? (plan.z[j] ?? 0) : 0);
  return n;
}

/**
 * The graph inputs the suffix forward declares (all optional per plan; see `suffixForward`):
 *   positions       int64 [S]               absolute positions of the suffix rows
 *   k.ℓ, v.ℓ        [N, H, T, dh]           the base run's keys and values of block ℓ, every position (the
 *                                           graph reads the prefix, positions before positions[0]: fed
 *                                           whole, they are views of the base run, not copies)
 *   resid.ℓ         [N, resid[ℓ], S, D]     entry rows of the copies that start at layer ℓ
 *   z.ℓ             [N, z[ℓ], S, H, dh]     entry z of the copies that start at block ℓ's z
 *   zbase.ℓ         [N, 1, S, D]            the base residual entering block ℓ, for those copies
 *   keep.ℓ, add.ℓ   [N, C_ℓ, S, 1], [N, C_ℓ, S, D]   the in-graph rewrite at an inject layer
 * Returns the output at the last position of every copy: [N, C, vocab | dOut].
 */
export function suffixForward(g: Graph, cfg: ModelConfig, p: Params, plan: SuffixPlan): Value {
  const L = cfg.layers;
  const [H, dh, D] = [cfg.heads, dHeadOf(cfg), cfg.dModel];
  if (plan.resid.length !== L + 1 || plan.z.length !== L) {
    throw new GraphError(`a suffix plan for ${L} layers needs ${L + 1} resid counts and ${L} z counts, got ${plan.resid.length} and ${plan.z.length}`);
  }
  if (plan.resid.every((c) => c === 0) && plan.z.every((c) => c === 0)) throw new GraphError('a suffix plan with no copies');
  const positions = g.input('positions', 'int64', ['s']);
  let tables: RotaryTables | null = null;
  const rotary = (like: Value) => (tables ??= rotaryTables(positions, dh, like));
  // The base run's per-position tensors come whole [N, H, T, dh]; the prefix is what lies before the suffix.
  const start = op.slice(positions, [0], [1], [0]);
  const baseInput = (name: string) => g.input(name, g.floatType, ['n', H, 't', dh]);
  const prefixOf = (name: string) => op.sliceAt(baseInput(name), 0, start, 2, 'p');

  let x: Value | null = null; // [N, C, S, D], or [N, C, 1, D] after the last block
  let trimmed = false;
  const join = (a: Value | null, b: Value) => (a ? op.concat([a, b], 1) : b);
  const enter = (layer: number) => {
    if (plan.resid[layer] > 0) {
      const rows = g.input(`resid.${layer}`, g.floatType, ['n', plan.resid[layer], 's', D]);
      x = join(x, trimmed ? op.lastAlong(rows, 2) : rows);
    }
    if (x && plan.inject.includes(layer)) {
      const C = activeAt(plan, layer);
      let keep = g.input(`keep.${layer}`, g.floatType, ['n', C, 's', 1]);
      let add = g.input(`add.${layer}`, g.floatType, ['n', C, 's', D]);
      if (trimmed) [keep, add] = [op.lastAlong(keep, 2), op.lastAlong(add, 2)];
      x = op.add(op.mul(x, keep), add);
    }
  };

  for (let l = 0; l < L; l++) {
    enter(l);
    const zCopies = plan.z[l];
    if (!x && zCopies === 0) continue;
    const b = `blocks.${l}`;
    const last = l === L - 1;
    const prefix = plan.prefix ? { k: prefixOf(`k.${l}`), v: prefixOf(`v.${l}`) } : null;
    const cur: Value | null = x;
    x = g.scope(`suffix/${b}`, () => {
      let mid: Value | null = null;
      if (cur) {
        const h1 = op.layerNorm(cur, p[`${b}.ln1.w`], p[`${b}.ln1.b`], cfg.lnEpsilon);
        const tables = cfg.positional === 'rotary' ? rotary(h1) : null;
        const z = plan.single ? attendOne(cfg, p, l, h1, prefix, tables) : attend(cfg, p, l, h1, prefix, tables, positions, last); // [N, C, S', H, dh]
        mid = op.add(last ? op.lastAlong(cur, 2) : cur, outProject(p, b, z));
      }
      if (zCopies > 0) {
        let z = g.input(`z.${l}`, g.floatType, ['n', zCopies, 's', H, dh]);
        let base = g.input(`zbase.${l}`, g.floatType, ['n', 1, 's', D]);
        if (last) [z, base] = [op.lastAlong(z, 2), op.lastAlong(base, 2)];
        mid = join(mid, op.add(base, outProject(p, b, z))); // [N, zCopies, S', D]
      }
      const m = mid!;
      return cfg.attnOnly ? m : op.add(m, blockMlp(cfg, p, l, m));
    });
    trimmed ||= last;
  }
  enter(L);
  let final = x as Value | null;
  if (!final) throw new GraphError('the suffix plan leaves no copy at the read-out');
  if (!trimmed) final = op.lastAlong(final, 2);
  const out = unembed(p, finalNorm(cfg, p, final)); // [N, C, 1, vocab | dOut]
  return op.reshape(out, [0, 0, -1]); // [N, C, vocab | dOut]
}

/** z [N, C, S, H, dh] → attention output [N, C, S, D]. */
function outProject(p: Params, b: string, z: Value): Value {
  return op.add(op.matmul(op.reshape(z, [0, 0, 0, -1]), p[`${b}.attn.W_O`]), p[`${b}.attn.b_O`]);
}

/**
 * `attend` for a one-position suffix, in z's layout [N, C, 1, H, dh]: the scores against the
 * copy's own key and the P prefix keys are products summed over dh, and the softmax is merged by
 * hand as in `attend`. The prefix's [N, H, P, dh] is turned to [N, 1, P, H, dh] once per block.
 */
function attendOne(cfg: ModelConfig, p: Params, l: number, h1: Value, prefix: { k: Value; v: Value } | null, tables: RotaryTables | null): Value {
  const [H, dh] = [cfg.heads, dHeadOf(cfg)];
  const b = `blocks.${l}.attn`;
  const project = (m: string) => op.reshape(op.add(op.matmul(h1, p[`${b}.W_${m}`]), p[`${b}.b_${m}`]), [0, 0, 0, H, dh]); // [N, C, 1, H, dh]
  const [q, k] = (['Q', 'K'] as const).map((m) => {
    const t = project(m);
    // Tables are [S, dh/2]; here the position axis is 2 of 5, ahead of the head axis.
    return tables ? rotate(t, { cos: op.unsqueeze(tables.cos, [1]), sin: op.unsqueeze(tables.sin, [1]) }) : t;
  });
  const v = project('V');
  const scale = 1 / Math.sqrt(dh);
  const own = op.mul(op.reduceSum(op.mul(q, k), [-1], true), scale); // [N, C, 1, H, 1]
  if (!prefix) return v; // a lone key: softmax weight 1
  const keys = op.unsqueeze(op.transpose(prefix.k, [0, 2, 1, 3]), [1]); // [N, 1, P, H, dh]
  const values = op.unsqueeze(op.transpose(prefix.v, [0, 2, 1, 3]), [1]);
  const pre = op.mul(op.reduceSum(op.mul(q, keys), [-1], true), scale); // [N, C, P, H, 1]
  const max = op.max(own, op.reduceMax(pre, [2], true)); // [N, C, 1, H, 1]
  const eOwn = op.exp(op.sub(own, max));
  const ePre = op.exp(op.sub(pre, max));
  const num = op.add(op.mul(eOwn, v), op.reduceSum(op.mul(ePre, values), [2], true)); // [N, C, 1, H, dh]
  const den = op.add(eOwn, op.reduceSum(ePre, [2], true));
  return op.div(num, den);
}

/**
 * Attention of the suffix rows: to the prefix's cached keys (all visible) and causally to the
 * copy's own suffix rows. The two score blocks share one softmax, merged by hand (a common max,
 * then summed numerators and denominators), so no slicing at a run-time split point is needed.
 * With `lastOnly`, only the last row asks: that is all the read-out needs from the last block.
 * Returns z [N, C, S', H, dh] (S' = 1 with lastOnly).
 */
function attend(
  cfg: ModelConfig,
  p: Params,
  l: number,
  h1: Value,
  prefix: { k: Value; v: Value } | null,
  tables: RotaryTables | null,
  positions: Value,
  lastOnly: boolean,
): Value {
  const [H, dh] = [cfg.heads, dHeadOf(cfg)];
  const b = `blocks.${l}.attn`;
  const project = (m: string, t: Value) => op.add(op.matmul(t, p[`${b}.W_${m}`]), p[`${b}.b_${m}`]);
  const heads = (t: Value) => headsFirst(op.reshape(t, [0, 0, 0, H, dh])); // [N, H, C, S, dh]
  let k = heads(project('K', h1));
  const v = heads(project('V', h1));
  let q = heads(project('Q', lastOnly ? op.lastAlong(h1, 2) : h1)); // [N, H, C, S', dh]
  if (tables) {
    k = rotate(k, tables);
    q = rotate(q, lastOnly ? { cos: op.lastAlong(tables.cos, 0), sin: op.lastAlong(tables.sin, 0) } : tables);
  }
  const scale = 1 / Math.sqrt(dh);
  let own = op.mul(op.matmulTransB(q, k), scale); // [N, H, C, S', S]
  if (!lastOnly) {
    const future = op.greater(op.unsqueeze(positions, [0]), op.unsqueeze(positions, [1])); // [S, S]
    own = op.add(own, op.mul(op.cast(future, own.dtype), -1e9));
  }
  let max = op.reduceMax(own, [-1], true); // [N, H, C, S', 1]
  const toPrefix = prefix ? prefixProducts(q, prefix) : null;
  const pre = toPrefix ? op.mul(toPrefix.scores, scale) : null; // [N, H, C, S', P]
  if (pre) max = op.max(max, op.reduceMax(pre, [-1], true));
  const e = op.exp(op.sub(own, max));
  let num = op.matmul(e, v); // [N, H, C, S', dh]
  let den = op.reduceSum(e, [-1], true);
  if (pre && toPrefix) {
    const ep = op.exp(op.sub(pre, max));
    num = op.add(num, toPrefix.values(ep));
    den = op.add(den, op.reduceSum(ep, [-1], true));
  }
  return headsLast(op.div(num, den)); // [N, C, S', H, dh]
}

/**
 * The copies' queries q [N, H, C, S', dh] against the prefix's keys, and weights [N, H, C, S', P]
 * over its values. The prefix is every copy's, so each is one product per prompt and head on the
 * copies' rows together, [N, H, C·S', dh]: broadcasting over C made one small product per copy (for
 * the last block's one row, a 1 × P by P × dh), 25 → 10 ms of a patch sweep.
 */
function prefixProducts(q: Value, prefix: { k: Value; v: Value }): { scores: Value; values: (weights: Value) => Value } {
  const g = q.graph;
  const [N, H, C, S, dh] = q.shape;
  const n = (x: number) => op.int64s(g, [x]);
  const dim = (t: Value, axis: number) => op.gather(op.shapeOf(t), n(axis));
  const [copies, P] = [typeof C === 'number' ? n(C) : dim(q, 2), dim(prefix.k, 2)];
  const reshape = (t: Value, dims: Value[], hint: Dim[]) => g.apply('Reshape', [t, op.concat(dims, 0)], {}, { shapeHint: hint })[0];
  // The last axis: its size as a tensor, and as the shape says it.
  type Last = readonly [Value, Dim];
  const [byHead, byPrefix]: Last[] = [[n(dh as number), dh], [P, 'p']];
  const rows = (t: Value, [w, hint]: Last) => reshape(t, [n(0), n(0), n(-1), w], [N, H, 'cs', hint]);
  const copiesOf = (t: Value, [w, hint]: Last) => reshape(t, [n(0), n(0), copies, n(-1), w], [N, H, C, S, hint]);
  return {
    scores: copiesOf(op.matmulTransB(rows(q, byHead), prefix.k), byPrefix),
    values: (weights) => copiesOf(op.matmul(rows(weights, byPrefix), prefix.v), byHead),
  };
}

/**
 * [N, C, S, H, dh] → [N, H, C, S, dh]. C and S keep their order, so this is the 4-D transpose
 * [N, C·S, H, dh] → [N, H, C·S, dh] between two reshapes: ONNX Runtime's 5-D transposes took
 * 0.5–1 ms for tensors its 4-D ones move in a fifth of that.
 */
function headsFirst(t: Value): Value {
  const [, C, , H, dh] = t.shape;
  if (typeof C !== 'number') return op.transpose(t, [0, 3, 1, 2, 4]);
  return op.reshape(op.transpose(op.reshape(t, [0, -1, H as number, dh as number]), [0, 2, 1, 3]), [0, H as number, C, -1, dh as number]);
}

/** [N, H, C, S, dh] → [N, C, S, H, dh], the inverse of `headsFirst`, as a 4-D transpose likewise. */
function headsLast(t: Value): Value {
  const [, H, C, , dh] = t.shape;
  if (typeof C !== 'number') return op.transpose(t, [0, 2, 3, 1, 4]);
  return op.reshape(op.transpose(op.reshape(t, [0, H as number, -1, dh as number]), [0, 2, 1, 3]), [0, C, -1, H as number, dh as number]);
}
