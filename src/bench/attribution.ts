/**
 * Attribution patching against exact patching of the same cells, on the reference model (4 layers,
 * d_model 128, 4 heads; discrete tasks, V = 32, 8 demos, 34 positions; 32 prompt pairs with the
 * demos relabelled by another task): the full grid, every layer × position at resid_pre,
 * resid_post, attn_out and mlp_out, and every head × position at z (1,088 + 544 cells).
 * Exact patching runs batched through the suffix forward, skipping cells that write back the
 * value already there; attribution is one run of one graph (a forward pass and a forward-plus-
 * backward pass, summed per cell in the graph).
 * Both run on warm sessions, timed within the same call, repeated and the medians taken; each is
 * also given in plain forward passes over the same prompts, timed between them.
 */
import { AttributionRunner } from '../analysis/attribution.js';
import { promptFeeds } from '../backend/backend.js';
import { GraphBackend } from '../backend/graph.js';
import { inferenceGraph } from '../model/inference.js';
import { toOnnxBytes } from '../graph/index.js';
import { Session } from '../runtime/session.js';
import { promptPairs } from '../analysis/patching.js';
import { resolveTaskConfig, taskList } from '../tasks/index.js';
import { benchModel, BENCH_TASK } from './analysis.js';
import { type Figures, type Repeats, spread } from './timing.js';

export async function attributionFigures(repeats: Repeats): Promise<Figures> {
  const quick = repeats.quick;
  const model = benchModel();
  const cfg = resolveTaskConfig(BENCH_TASK);
  const pair = promptPairs(cfg, taskList(cfg, 'train').slice(0, 4), { count: quick ? 4 : 8, corruption: 'other-task', seed: 0 });
  const engine = GraphBackend.open(model);
  const runner = new AttributionRunner(engine);
  // One plain forward pass over the corrupted prompts, for a figure the machine's load moves less.
  const forward = await Session.open(toOnnxBytes(inferenceGraph(model.cfg, null).graph, { paramData: model.params }));
  const feeds = promptFeeds(pair.corrupted);
  await runner.run(pair, { exact: true }); // warm: sessions built, suffix graphs cached
  await forward.run(feeds);
  const attribution: number[] = [];
  const exact: number[] = [];
  const plain: number[] = [];
  let cells = 0;
  for (let i = 0; i < repeats.timed; i++) {
    const t0 = performance.now();
    await forward.run(feeds);
    plain.push(performance.now() - t0);
    const r = await runner.run(pair, { exact: true });
    attribution.push(r.ms.attribution);
    exact.push(r.ms.exact!);
    cells = r.cells;
  }
  await engine.close();
  await forward.release();
  const per = (f: (i: number) => number) => spread(attribution.map((_, i) => f(i)));
  return {
    patch_attribution_cells: cells,
    patch_attribution_ms: spread(attribution),
    patch_attribution_exact_ms: spread(exact),
    patch_attribution_speedup: per((i) => exact[i] / attribution[i]),
    patch_attribution_over_forward: per((i) => attribution[i] / plain[i]),
    patch_attribution_exact_over_forward: per((i) => exact[i] / plain[i]),
    patch_attribution_target: 50,
  };
}
