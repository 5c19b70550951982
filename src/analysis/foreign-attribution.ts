/**
 * Attribution patching on a foreign model, through its imported graph (graph/import.ts) and our own
 * autodiff: for clean/corrupted prompt pairs, the effect of writing the clean residual into the
 * corrupted run at (layer ℓ, position p) is estimated to first order as
 *
 *   Σ_d (clean − corrupted)[ℓ, p, d] · ∂metric/∂resid[ℓ, p, d]   (gradient on the corrupted run)
 *
 * with metric = mean over prompts of logit(correct) − logit(wrong) at the last position (wrong: the
 * corrupted run's favourite other token, as exact patching takes it). Exact patching of every cell
 * runs beside it, and the result gives both grids and their correlation.
 */
import { op } from '../graph/index.js';
import { gradients } from '../graph/autodiff.js';
import { toOnnxBytes } from '../graph/onnx.js';
import type { HostTensor } from '../runtime/session.js';
import { type PromptRecord, recordsToBatch } from '../tasks/prompt-file.js';
import { importForShape } from '../backend/foreign-grad.js';
import { type Patch, promptFeeds } from '../backend/backend.js';
import type { FileBackend } from '../backend/file.js';

export interface ForeignAttributionResult {
  readonly analysis: 'attribution';
  readonly site: 'resid';
  /** Mean metric of the clean and corrupted runs. */
  readonly clean: number;
  readonly corrupted: number;
  /** [layer 0..L][position]: the first-order estimate, and exact patching of the same cells. */
  readonly attribution: readonly (readonly number[])[];
  readonly exact: readonly (readonly number[])[];
  /** Pearson correlation of the two grids over every cell. */
  readonly correlation: number;
}

export async function foreignAttribution(source: FileBackend, pairs: readonly PromptRecord[]): Promise<ForeignAttributionResult> {
  const clean = recordsToBatch(pairs, 'prompt pairs');
  const corrupt = recordsToBatch(pairs, 'prompt pairs', (r) => r.corrupted!);
  const [B, T] = [clean.batch, clean.seq];
  const L = source.layers;
  const cleanFeeds = source.modelFeeds(promptFeeds(clean));
  const corruptFeeds = source.modelFeeds(promptFeeds(corrupt));
  const correct = pairs.map((r) => r.answer!);
  const base = await source.run(promptFeeds(corrupt));
  const V = base.output.shape[2];
  const wrong = correct.map((c, b) => argmaxExcept(base.output, b, T, V, c));
  const weights = new Float32Array(B * T * V);
  correct.forEach((c, b) => {
    weights[(b * T + T - 1) * V + c] += 1 / B;
    weights[(b * T + T - 1) * V + wrong[b]] -= 1 / B;
  });
  const metricOf = (logits: HostTensor) => {
    let m = 0;
    for (let i = 0; i < weights.length; i++) if (weights[i] !== 0) m += weights[i] * (logits.data[i] as number);
    return m;
  };

  const tensors = Array.from({ length: L + 1 }, (_, l) => source.tensorOf(source.residual(l).name));
  // One graph per prompt shape: the model imported, d(metric)/d(resid ℓ) and resid ℓ as outputs.
  const session = await source.derivedSession(`attribution ${B}x${T}`, async () => {
    const imported = await importForShape(source.proto, B, T, source.sessionOptions);
    const g = imported.graph;
    const w = g.input('metric_weights', 'float32', [B, T, V]);
    const metric = op.reduceSum(op.mul(imported.outputs.get('logits')!, w), [0, 1, 2]);
    const resid = tensors.map((t) => imported.values.get(t)!);
    gradients(metric, resid).forEach((gr, l) => g.output(gr, `grad.resid.${l}`));
    resid.forEach((r, l) => g.output(op.identity(r), `act.resid.${l}`));
    return toOnnxBytes(g, { name: 'tvlens-foreign-attribution' });
  });
  const mw: HostTensor = { dtype: 'float32', shape: [B, T, V], data: weights };
  const onCorrupt = await session.run({ ...corruptFeeds, metric_weights: mw });
  const onClean = await session.run({ ...cleanFeeds, metric_weights: mw });

  const D = onClean['act.resid.0'].shape[2];
  const attribution = tensors.map((_, l) => {
    const [a, c, gr] = [onClean[`act.resid.${l}`].data, onCorrupt[`act.resid.${l}`].data, onCorrupt[`grad.resid.${l}`].data] as Float32Array[];
    return Array.from({ length: T }, (_, p) => {
      let s = 0;
      for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) s += (a[(b * T + p) * D + d] - c[(b * T + p) * D + d]) * gr[(b * T + p) * D + d];
      return s;
    });
  });
  const corruptedMetric = metricOf(base.output);
  const exact: number[][] = [];
  for (let l = 0; l <= L; l++) {
    const value = onClean[`act.resid.${l}`];
    const row: number[] = [];
    for (let p = 0; p < T; p++) {
      const mask = new Float32Array(T);
      mask[p] = 1;
      const patch: Patch = { hook: source.residual(l).name, value, mask: { dtype: 'float32', shape: [1, T, 1], data: mask } };
      row.push(metricOf((await source.run(promptFeeds(corrupt), { patches: [patch] })).output) - corruptedMetric);
    }
    exact.push(row);
  }
  const cleanMetric = metricOf((await source.run(promptFeeds(clean))).output);
  return { analysis: 'attribution', site: 'resid', clean: cleanMetric, corrupted: corruptedMetric, attribution, exact, correlation: pearson(attribution.flat(), exact.flat()) };
}

function argmaxExcept(logits: HostTensor, b: number, T: number, V: number, skip: number): number {
  const off = (b * T + T - 1) * V;
  let best = skip === 0 ? 1 : 0;
  for (let v = 0; v < V; v++) if (v !== skip && (logits.data[off + v] as number) > (logits.data[off + best] as number)) best = v;
  return best;
}

function pearson(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN;
}
