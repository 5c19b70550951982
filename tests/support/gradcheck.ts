/**
 * The one finite-difference checker that every gradient test goes through.
 *
 * A case builds any float output f(x₁, …, xₙ). The checker draws a random projection r shaped like
 * f and takes the loss L = Σ r ⊙ f, so that every element of a non-scalar output is checked, not
 * just its sum. It builds ∂L/∂xᵢ with `gradients`, writes the graph once, opens one Session, and:
 *
 *   - runs it once for f and the analytic gradients;
 *   - for each element of each checked input, runs it at x ± ε and takes the central difference
 *     (L(x+ε) − L(x−ε)) / (x₊ − x₋), where x₊ and x₋ are the perturbed values as actually stored in
 *     the input's dtype, and the difference of L is summed on the host in float64 from the fetched f.
 *
 * Pass criterion, per element: |a − n| ≤ tol · max(1, |a|, |n|), with tol = 1e-6 and ε = 1e-6 in
 * float64. (Relative where gradients are larger than 1, absolute below; the central difference's
 * own error in float64 is about 1e-10 here, so 1e-6 has a wide margin.) Float32 cases state their
 * own ε and tolerance next to the case.
 *
 * Inputs are fresh random draws on every test run: the base seed is GRADCHECK_SEED when set, else
 * random, and each case mixes in a hash of its name. A failure prints the seed that reproduces it.
 */
import { Graph, gradients, op, toOnnxBytes, typedArrayFor, type DType, type FloatType, type Shape, type TypedData, type Value } from '../../src/graph/index.js';
import { Session, type HostTensor } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/rng.js';

export interface InputSpec {
  /** Symbolic dimensions (names) take their sizes from the case's `dims`. */
  readonly shape: Shape;
  /** Default: the case's dtype. */
  readonly dtype?: DType;
  /** Fixed contents (required for int64, int32 and bool inputs). A float input with data is not checked. */
  readonly data?: readonly number[];
  /** How to draw each element of a checked float input. Default: standard normal. */
  readonly sample?: (rng: Rng) => number;
}

export interface GradCase {
  /** A sentence: it names the test. */
  readonly name: string;
  readonly inputs: readonly InputSpec[];
  /** Builds the output from one graph value per input spec, in order. */
  readonly build: (g: Graph, xs: Value[]) => Value;
  /** Float type of the graph and of inputs that do not say. Default 'float64'. */
  readonly dtype?: FloatType;
  /** Run-time sizes of symbolic dimensions. */
  readonly dims?: Readonly<Record<string, number>>;
  /** Perturbation. Default 1e-6 (float64 only; float32 cases must give their own). */
  readonly eps?: number;
  /** See the pass criterion above. Default 1e-6 (float64 only). */
  readonly tol?: number;
}

export interface GradCheckResult {
  readonly seed: number;
  /** The data every input was fed, in spec order. */
  readonly inputs: readonly HostTensor[];
  /** Per input: the analytic gradient, or null for an input that is not checked. */
  readonly analytic: readonly (Float64Array | null)[];
  readonly numeric: readonly (Float64Array | null)[];
  /** The largest |a − n| / max(1, |a|, |n|) over every checked element. */
  readonly maxError: number;
}

/** Samplers for inputs that must avoid a domain edge or a kink. */
export const positive = (rng: Rng): number => 0.5 + 1.5 * rng.uniform();
export const awayFromZero = (rng: Rng): number => (rng.uniform() < 0.5 ? -1 : 1) * (0.2 + rng.uniform());

const baseSeed = process.env.GRADCHECK_SEED ? Number(process.env.GRADCHECK_SEED) : Math.floor(Math.random() * 2 ** 31);

export async function gradcheck(c: GradCase): Promise<GradCheckResult> {
  const dtype = c.dtype ?? 'float64';
  if (dtype === 'float32' && (c.eps === undefined || c.tol === undefined)) throw new Error(`${c.name}: a float32 case must state eps and tol`);
  const eps = c.eps ?? 1e-6;
  const tol = c.tol ?? 1e-6;
  const seed = (baseSeed ^ hash(c.name)) >>> 0;
  const rng = new Rng(seed);

  // Forward graph, loss Σ r ⊙ f, and the gradients of every checked input.
  const g = new Graph(dtype);
  const xs = c.inputs.map((s, i) => g.input(`x${i}`, s.dtype ?? dtype, s.shape));
  const checked = c.inputs.map((s, i) => isFloatType(xs[i].dtype) && s.data === undefined);
  const f = c.build(g, xs);
  if (!isFloatType(f.dtype)) throw new Error(`${c.name}: the output must be a float, got ${f.dtype}`);
  // r has fresh symbolic dims so that a first run can feed it as all-ones [1, …, 1] to learn f's shape.
  const r = g.input('r', f.dtype, f.shape.map((_, i) => `r${i}`));
  const loss = op.reduceSum(op.mul(f, r), [...f.shape.keys()]);
  const wrt = xs.filter((_, i) => checked[i]);
  const grads = gradients(loss, wrt);
  g.output(f, 'f');
  grads.forEach((gx, k) => g.output(gx, `grad${k}`));

  const session = await Session.open(toOnnxBytes(g));
  try {
    const feeds: Record<string, HostTensor> = {};
    const inputs = c.inputs.map((s, i) => {
      const shape = s.shape.map((d) => (typeof d === 'number' ? d : dimSize(c, d)));
      const n = shape.reduce((a, b) => a * b, 1);
      const t: HostTensor = { dtype: xs[i].dtype, shape, data: fill(xs[i].dtype, n, s, rng, c.name) };
      feeds[xs[i].name] = t;
      return t;
    });
    feeds.r = { dtype: f.dtype, shape: f.shape.map(() => 1), data: typedArrayFor(f.dtype, 1).fill(1 as never) };
    const fShape = (await session.run(feeds, ['f'])).f.shape;
    const rData = Float64Array.from({ length: fShape.reduce((a, b) => a * b, 1) }, () => rng.normal());
    feeds.r = { dtype: f.dtype, shape: fShape, data: f.dtype === 'float32' ? Float32Array.from(rData) : rData };
    const rHost = Float64Array.from(feeds.r.data as Float32Array | Float64Array);

    const first = await session.run(feeds);
    const analytic: (Float64Array | null)[] = [];
    const numeric: (Float64Array | null)[] = [];
    const fAt = async () => (await session.run(feeds, ['f'])).f.data as Float32Array | Float64Array;
    // L(x+ε) − L(x−ε) as Σ r ⊙ (f₊ − f₋): entries that do not move (a -1e9 mask fill) cancel exactly
    // instead of swamping the difference of two large sums.
    const lossDelta = (plus: ArrayLike<number>, minus: ArrayLike<number>): number => {
      let s = 0;
      for (let j = 0; j < plus.length; j++) s += rHost[j] * (plus[j] - minus[j]);
      return s;
    };
    let maxError = 0;
    const failures: string[] = [];
    let k = 0;
    for (let i = 0; i < inputs.length; i++) {
      if (!checked[i]) {
        analytic.push(null);
        numeric.push(null);
        continue;
      }
      const a = Float64Array.from(first[`grad${k++}`].data as Float64Array);
      const x = inputs[i].data as Float32Array | Float64Array;
      const nGrad = new Float64Array(x.length);
      for (let j = 0; j < x.length; j++) {
        const x0 = x[j];
        x[j] = x0 + eps;
        const xPlus = x[j];
        const fPlus = await fAt();
        x[j] = x0 - eps;
        const xMinus = x[j];
        const fMinus = await fAt();
        x[j] = x0;
        nGrad[j] = lossDelta(fPlus, fMinus) / (xPlus - xMinus);
        const err = Math.abs(a[j] - nGrad[j]) / Math.max(1, Math.abs(a[j]), Math.abs(nGrad[j]));
        maxError = Math.max(maxError, err);
        if (!(err <= tol) && failures.length < 5) {
          failures.push(`x${i}[${j}]: analytic ${a[j]}, numeric ${nGrad[j]} (error ${err.toExponential(2)} > ${tol})`);
        }
      }
      analytic.push(a);
      numeric.push(nGrad);
    }
    if (failures.length) {
      throw new Error(`${c.name}: gradient mismatch (reproduce with GRADCHECK_SEED=${baseSeed}):\n  ${failures.join('\n  ')}`);
    }
    return { seed: baseSeed, inputs, analytic, numeric, maxError };
  } finally {
    await session.release();
  }
}

function isFloatType(t: DType): t is FloatType {
  return t === 'float32' || t === 'float64';
}

function dimSize(c: GradCase, d: string): number {
  const n = c.dims?.[d];
  if (n === undefined) throw new Error(`${c.name}: no size given for symbolic dimension '${d}' (set dims)`);
  return n;
}

function fill(dtype: DType, n: number, s: InputSpec, rng: Rng, name: string): TypedData {
  const out = typedArrayFor(dtype, n);
  if (s.data !== undefined) {
    if (s.data.length !== n) throw new Error(`${name}: input data has ${s.data.length} elements, its shape needs ${n}`);
    s.data.forEach((v, j) => (out[j] = (dtype === 'int64' ? BigInt(v) : v) as never));
    return out;
  }
  if (!isFloatType(dtype)) throw new Error(`${name}: a ${dtype} input needs fixed data`);
  const draw = s.sample ?? ((r: Rng) => r.normal());
  for (let j = 0; j < n; j++) out[j] = draw(rng) as never;
  return out;
}

/** FNV-1a, to give each case its own stream from the base seed. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * The ops a case differentiates through: the forward nodes that have an input depending on a
 * checked input. Used to assert that every differentiable op is covered by some case.
 */
export function coveredOps(c: GradCase): Set<string> {
  const dtype = c.dtype ?? 'float64';
  const g = new Graph(dtype);
  const xs = c.inputs.map((s, i) => g.input(`x${i}`, s.dtype ?? dtype, s.shape));
  c.build(g, xs);
  const live = new Set<Value>(xs.filter((x, i) => isFloatType(x.dtype) && c.inputs[i].data === undefined));
  const ops = new Set<string>();
  for (const node of g.nodes) {
    if (node.meta.stopGradient || !node.inputs.some((x) => live.has(x))) continue;
    ops.add(node.op);
    node.outputs.forEach((y) => live.add(y));
  }
  return ops;
}
