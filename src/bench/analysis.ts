/**
 * Analysis figures: the cost of a task-vector search over every layer and of a layer × position
 * patching sweep, each against the naive method (one full forward pass per layer, or per cell)
 * and against one plain forward pass over the same prompts. The model is the reference size
 * (4 layers, d_model 128, 4 heads) on discrete tasks with V = 32 and 8 demos (34 positions).
 * Weights are random: the cost does not depend on them.
 */
import { type Variant, promptFeeds } from '../backend/backend.js';
import { GraphBackend, type ModelWeights } from '../backend/graph.js';
import { patch, promptPairs } from '../analysis/patching.js';
import { tvSearch } from '../analysis/tv-search.js';
import { inferenceGraph } from '../model/inference.js';
import { Graph, toOnnxBytes } from '../graph/index.js';
import { resolveModelConfig } from '../model/config.js';
import { declareParams } from '../model/transformer.js';
import { Session } from '../runtime/session.js';
import { type Task, resolveTaskConfig, taskList, taskPrompts, zeroShotPrompts } from '../tasks/index.js';
import { batchFeeds } from '../tasks/feeds.js';
import { Rng } from '../util/rng.js';
import { concatBatches } from '../tasks/index.js';
import { REFERENCE } from './foundation.js';
import { type Figures, type Repeats, sampleInterleaved } from './timing.js';

export const BENCH_TASK = { kind: 'discrete', vocab: 32, demos: { min: 8, max: 8 }, heldoutTasks: 4 } as const;
const TASK = BENCH_TASK;

/** The reference model with random weights (the cost does not depend on them). */
export function benchModel(): ModelWeights {
  const cfg = resolveModelConfig({ ...REFERENCE, vocab: TASK.vocab + 2, maxSeq: 64 });
  const g = new Graph('float32');
  declareParams(g, cfg, 0);
  return { cfg, params: new Map(g.params.map((p) => [p.value.name, p.data as Float32Array])) };
}

async function plainForward(model: ModelWeights): Promise<Session> {
  return Session.open(toOnnxBytes(inferenceGraph(model.cfg, null).graph, { paramData: model.params }));
}

/** The task-vector search over all 5 layers: 16 tasks, 16 demo prompts and 64 zero-shot queries each. */
export async function tvSearchFigures(repeats: Repeats): Promise<Figures> {
  const model = benchModel();
  const cfg = resolveTaskConfig(TASK);
  const tasks: Task[] = taskList(cfg, 'train').slice(0, 16);
  const options = { tasks, prompts: 16, queries: 64, seed: 0 };
  const engine = GraphBackend.open(model);
  const forward = await plainForward(model);
  // The same prompts the search draws (its demo and zero-shot streams), for the plain passes.
  const rng = new Rng(0);
  const [demoRng, zsRng] = [rng.fork(), rng.fork()];
  const demos = batchFeeds(concatBatches(tasks.map((t) => taskPrompts(cfg, t, demoRng.fork(), 16, 8))), false);
  const zs = batchFeeds(concatBatches(tasks.map((t) => zeroShotPrompts(cfg, t, zsRng.fork(), 64))), false);
  const t = await sampleInterleaved(
    {
      forward: async () => {
        await forward.run(demos);
        await forward.run(zs);
      },
      fast: () => tvSearch(engine, cfg, options),
      naive: () => tvSearch(engine, cfg, { ...options, method: 'naive' }),
    },
    repeats,
  );
  await engine.close();
  await forward.release();
  return {
    tv_search_forward_ms: t.time('forward'),
    tv_search_ms: t.time('fast'),
    tv_search_naive_ms: t.time('naive'),
    tv_search_over_forward: t.ratio('fast', 'forward'),
    tv_search_naive_over_forward: t.ratio('naive', 'forward'),
    tv_search_target: 2,
  };
}

/**
 * A resid_pre × position sweep: 4 blocks × 34 positions = 136 cells over 32 prompt pairs (demos
 * relabelled by another task: 32 cells write back the value already there and are skipped). The
 * naive method's cost is (cells + 2) forward passes with one patched site each (the 2 are the
 * clean and corrupted runs it also needs): each costs the same, so one is timed, interleaved
 * with the sweep, rather than running all 138 every repeat.
 */
export async function patchFigures(repeats: Repeats): Promise<Figures> {
  const model = benchModel();
  const cfg = resolveTaskConfig(TASK);
  const tasks = taskList(cfg, 'train').slice(0, 4);
  const options = { tasks, prompts: 8, seed: 0, site: 'resid_pre' as const };
  const engine = GraphBackend.open(model);
  const bare = GraphBackend.open(model, { skipUnchanged: false });
  const forward = await plainForward(model);
  const pair = promptPairs(cfg, tasks, { count: 8, corruption: 'other-task', seed: 0 });
  const feeds = promptFeeds(pair.corrupted);
  const [T, D] = [pair.clean.seq, model.cfg.dModel];
  const cells = model.cfg.layers * T;
  const value = new Float32Array(D);
  const cell: Variant = [{ site: { kind: 'resid', layer: 1 }, positions: [T - 5], mode: 'replace', value: () => value }];
  const t = await sampleInterleaved(
    {
      forward: () => forward.run(feeds),
      naiveCell: () => engine.patchedNaive(feeds, [cell]),
      sweep: () => patch(engine, cfg, options),
      sweepBare: () => patch(bare, cfg, options),
    },
    repeats,
  );
  await engine.close();
  await bare.close();
  await forward.release();
  const naive = (x: Readonly<Record<string, number>>) => (cells + 2) * x.naiveCell;
  return {
    patch_cells: cells,
    patch_forward_ms: t.time('forward'),
    patch_naive_cell_ms: t.time('naiveCell'),
    patch_sweep_ms: t.time('sweep'),
    patch_sweep_naive_ms: t.derive(naive),
    patch_naive_over_sweep: t.derive((x) => naive(x) / x.sweep),
    patch_naive_over_sweep_without_skipping: t.derive((x) => naive(x) / x.sweepBare),
    patch_forward_per_cell_over_sweep: t.derive((x) => (cells * x.forward) / x.sweep),
    patch_sweep_target: 5,
  };
}
