/**
 * The cost of the newer methods against what they replace or build on, as ratios measured side
 * by side:
 *
 *   fv_search_over_forward     function vectors (demo pass with z, shuffled pass, L·H head
 *                              patches, zero-shot pass, L+1 layer additions; Hendel's comparison
 *                              off) over one plain forward pass over the same prompts;
 *   tvp_step_over_plain_step   a TVP-loss training step (few-shot P plus zero-shot Q, ℓ = 2) over
 *                              a plain ICL training step on the same model and P batch (target ≤ 1.6).
 *
 * The function-vector model is the reference size with random weights (the cost does not depend
 * on them); the TVP model is the reference size too (4 layers, d_model 128, 4 heads), on discrete
 * tasks with V = 32, 8 demos, batch 32.
 */
import { promptFeeds } from '../backend/backend.js';
import { GraphBackend } from '../backend/graph.js';
import { functionVectors } from '../analysis/function-vectors.js';
import { searchPromptsFor } from '../analysis/search-prompts.js';
import { concatBatches } from '../tasks/index.js';
import { inferenceGraph } from '../model/inference.js';
import { toOnnxBytes } from '../graph/index.js';
import { Session } from '../runtime/session.js';
import { resolveTaskConfig, taskList, taskPrompts } from '../tasks/index.js';
import { resolveRunConfig } from '../train/config.js';
import { iclLossProgram } from '../train/icl-loss.js';
import { resolveOptimizerConfig } from '../train/optimizer.js';
import { Trainer } from '../train/step.js';
import { tvpLossProgram, resolveTvpConfig } from '../tvp/loss.js';
import { tvpStepData } from '../tvp/data.js';
import { Rng } from '../util/rng.js';
import { BENCH_TASK, benchModel } from './analysis.js';
import { REFERENCE } from './foundation.js';
import { type Figures, type Repeats, sampleInterleaved } from './timing.js';

export async function fvFigures(repeats: Repeats): Promise<Figures> {
  const quick = repeats.quick;
  const model = benchModel();
  const cfg = resolveTaskConfig(BENCH_TASK);
  const tasks = taskList(cfg, 'train').slice(0, quick ? 4 : 8);
  const options = { tasks, prompts: 16, shuffled: 16, queries: 32, topK: 3, seed: 0, compareTv: false } as const;
  const engine = GraphBackend.open(model);
  const forward = await Session.open(toOnnxBytes(inferenceGraph(model.cfg, null).graph, { paramData: model.params }));
  // The same prompts the method runs: its demo and zero-shot prompts (tv-search's), and the shuffled ones.
  const p = searchPromptsFor(cfg, tasks, options);
  const shufRng = new Rng(options.seed ^ 0x5a1f);
  const shuffled = concatBatches(tasks.map((t) => taskPrompts(cfg, t, shufRng.fork(), options.shuffled, cfg.demos.max, { shuffleLabels: true })));
  const feeds = [p.demos, shuffled, p.queries].map(promptFeeds);
  const t = await sampleInterleaved(
    {
      forward: async () => {
        for (const f of feeds) await forward.run(f);
      },
      fv: () => functionVectors(engine, cfg, options),
    },
    repeats,
  );
  await engine.close();
  await forward.release();
  return { fv_forward_ms: t.time('forward'), fv_search_ms: t.time('fv'), fv_search_over_forward: t.ratio('fv', 'forward'), fv_heads: model.cfg.layers * model.cfg.heads };
}

export async function tvpStepFigures(repeats: Repeats): Promise<Figures> {
  const run = resolveRunConfig({ model: { ...REFERENCE, maxSeq: 40 }, task: { ...BENCH_TASK }, train: { batchSize: 32 } });
  const tvp = resolveTvpConfig({ layer: 2 }, run);
  const opt = resolveOptimizerConfig({ schedule: 'constant' });
  const plain = await Trainer.create(() => iclLossProgram(run.model, 0), opt);
  const withTvp = await Trainer.create(() => tvpLossProgram(run, tvp, 0), opt);
  const data = tvpStepData(run, tvp, new Rng(0), 0).feeds;
  // The plain step gets P's own feeds: the same prompts, without Q and the TVP inputs.
  const pFeeds = Object.fromEntries(Object.entries(data).filter(([k]) => !k.startsWith('q.') && !k.startsWith('tvp.')));
  const t = await sampleInterleaved({ plain: () => plain.step(pFeeds, 1e-4), tvp: () => withTvp.step(data, 1e-4) }, { ...repeats, warmup: 2 });
  await Promise.all([plain.release(), withTvp.release()]);
  return { tvp_plain_step_ms: t.time('plain'), tvp_step_ms: t.time('tvp'), tvp_step_over_plain_step: t.ratio('tvp', 'plain'), tvp_step_target: 1.6 };
}
