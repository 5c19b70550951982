/** TVP-loss: its gradients (through both passes and the replacement) and its replacement itself. */
import { describe, expect, it } from 'vitest';
import { inferenceGraph } from '../src/model/inference.js';
import { toOnnxBytes } from '../src/graph/index.js';
import { residualAtLayer } from '../src/model/hooks.js';
import { type HostTensor, Session } from '../src/runtime/session.js';
import { resolveRunConfig } from '../src/train/config.js';
import { resolveOptimizerConfig } from '../src/train/optimizer.js';
import { buildStepModels } from '../src/train/step.js';
import { tvpStepData } from '../src/tvp/data.js';
import { resolveTvpConfig, tvpLossProgram } from '../src/tvp/loss.js';
import { Rng } from '../src/util/rng.js';

const runTokens = resolveRunConfig({
  model: { layers: 2, dModel: 8, heads: 2, maxSeq: 16, initStd: 0.5 },
  task: { vocab: 5, demos: { min: 2, max: 2 }, heldoutTasks: 1 },
  train: { batchSize: 4 },
});

/** Feeds converted to float64 where they are float. */
const toF64 = (feeds: Record<string, HostTensor>) =>
  Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dtype === 'float32' ? { ...t, dtype: 'float64' as const, data: Float64Array.from(t.data as Float32Array) } : t]));

describe('TVP-loss', () => {
  const regression = resolveRunConfig({
    model: { layers: 2, dModel: 8, heads: 2, maxSeq: 16, initStd: 0.5 },
    task: { kind: 'linreg', linreg: { dIn: 3 }, demos: { min: 2, max: 2 }, heldoutTasks: 1 },
    train: { batchSize: 4 },
  });
  const attnOnly = resolveRunConfig({ ...runTokens, model: { ...runTokens.model, attnOnly: true, positional: 'rotary' } });
  for (const [name, run] of [['token prompts, cross-entropy', runTokens], ['vector prompts, squared error', regression], ['attention-only blocks, rotary positions', attnOnly]] as const) it(`has gradients for every weight that match central finite differences in float64, through both passes and the replacement (${name})`, async () => {
    const tvp = resolveTvpConfig({ layer: 1, lambda: 0.7, average: 2 }, run);
    const build = () => tvpLossProgram(run, tvp, 3, 'float64');
    const models = buildStepModels(build, resolveOptimizerConfig({}), 'split');
    const session = await Session.open(models.training);
    const lossOnly = await Session.open(models.eval!);
    const params = build().graph.params;
    const weights = Object.fromEntries(params.map((p) => [p.value.name, { dtype: 'float64' as const, shape: p.value.shape as number[], data: Float64Array.from(p.data as Float64Array) }]));
    const batch = toF64(tvpStepData(run, tvp, new Rng(1), 0).feeds);
    const base = await session.run({ ...batch, ...weights });
    const lossAt = async () => Number((await lossOnly.run({ ...batch, ...weights })).loss.data[0]);
    const eps = 1e-6;
    let worst = 0;
    const rng = new Rng(4);
    for (const p of params) {
      const w = weights[p.value.name].data;
      const grad = base[`grad.${p.value.name}`].data as Float64Array;
      // Every element of small tensors, a random sample of the larger ones.
      const picks = w.length <= 16 ? [...w.keys()] : Array.from({ length: 16 }, () => rng.int(w.length));
      for (const i of picks) {
        const keep = w[i];
        w[i] = keep + eps;
        const up = await lossAt();
        w[i] = keep - eps;
        const down = await lossAt();
        w[i] = keep;
        const numeric = (up - down) / (2 * eps);
        worst = Math.max(worst, Math.abs(numeric - grad[i]) / Math.max(1, Math.abs(numeric), Math.abs(grad[i])));
      }
    }
    expect(worst).toBeLessThan(1e-6);
  }, 60_000);

  it("computes L_TVP as the loss of Q run with its arrow state replaced by P's residual at layer ℓ", async () => {
    const run = runTokens;
    const tvp = resolveTvpConfig({ layer: 1, lambda: 1 }, run);
    const program = tvpLossProgram(run, tvp, 5);
    const session = await Session.open(toOnnxBytes(program.graph));
    const data = tvpStepData(run, tvp, new Rng(2), 0).feeds;
    const { loss_tvp } = await session.run(data);

    // Independently: fetch P's residual from a plain checkpoint graph, then run Q patched by hand.
    const { graph } = inferenceGraph(run.model, 5);
    const hook = residualAtLayer(1).name;
    graph.output(graph.nodes.find((n) => n.outputs[0].name === hook)!.outputs[0]);
    const plain = await Session.open(toOnnxBytes(graph));
    const resid = (await plain.run({ tokens: data.tokens }))[hook];
    const [B, T, D] = resid.shape;
    const source = data['tvp.source_pos'].data as BigInt64Array;
    const h = Array.from({ length: B }, (_, b) => (resid.data as Float32Array).slice((b * T + Number(source[b])) * D, (b * T + Number(source[b]) + 1) * D));

    const patched = inferenceGraph(run.model, 5);
    // Replace the hook's value with an input carrying the hand-patched residual of Q.
    const qTokens = data['q.tokens'];
    const qResid = (await plain.run({ tokens: qTokens }))[hook];
    const [, Tq] = qResid.shape;
    const manual = Float32Array.from(qResid.data as Float32Array);
    const patchPos = data['q.patch_pos'].data as BigInt64Array;
    for (let b = 0; b < B; b++) manual.set(h[b], (b * Tq + Number(patchPos[b])) * D);
    const g2 = patched.graph;
    const node = g2.nodes.find((n) => n.outputs[0].name === hook)!;
    const replacement = g2.input('manual_resid', 'float32', ['batch', 'seq', D]);
    (node as { inputs: unknown }).inputs = [replacement];
    const qSession = await Session.open(toOnnxBytes(g2));
    const logits = (await qSession.run({ tokens: qTokens, manual_resid: { dtype: 'float32', shape: [B, Tq, D], data: manual } })).logits;
    const V = logits.shape[2];
    const targets = data['q.targets'].data as BigInt64Array;
    const weights = data['q.weights'].data as Float32Array;
    let nll = 0, count = 0;
    for (let i = 0; i < B * Tq; i++) {
      if (!weights[i]) continue;
      const row = Array.from((logits.data as Float32Array).subarray(i * V, (i + 1) * V));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      nll += lse - row[Number(targets[i])];
      count++;
    }
    expect(Number(loss_tvp.data[0])).toBeCloseTo(nll / count, 5);
  });

  it('rejects a layer outside 0..L with the valid range', () => {
    expect(() => resolveTvpConfig({ layer: 3 }, runTokens)).toThrow(/layer 3 is out of range: this model has layers 0\.\.2/);
  });
});
