/**
 * One point of the scale curve (scale.ts), in a process of its own so that its peak RSS is its
 * own: `node scale-point.js '{"dModel":128,"layers":4,"seq":256,"tokens":4096,"timed":3}'` prints
 * one JSON line. The matmul peak, the forward pass and the training step run interleaved; the
 * task-vector search and the patch sweep after them, on the same model (random weights).
 *
 * Model: d_head 32 (heads = d/32), d_mlp 4d, vocab 34 (discrete tasks with V = 32), learned
 * positions up to `seq`. Batch: `tokens / seq` prompts of `seq` tokens. The search and the sweep
 * run on prompts of the same length (4 demos-and-query tokens per demo: ⌊(seq − 2) / 4⌋ demos).
 */
import { type ModelWeights, GraphBackend } from '../backend/graph.js';
import { patch } from '../analysis/patching.js';
import { tvSearch } from '../analysis/tv-search.js';
import { Graph } from '../graph/index.js';
import { resolveModelConfig } from '../model/config.js';
import { declareParams } from '../model/transformer.js';
import { resolveTaskConfig, taskList } from '../tasks/index.js';
import { iclLossProgram } from '../train/icl-loss.js';
import { resolveOptimizerConfig } from '../train/optimizer.js';
import { Trainer } from '../train/step.js';
import { forwardSession, matmulFlops, matmulSession } from './foundation.js';
import { sampleInterleaved, spread } from './timing.js';

export interface ScalePointSpec {
  readonly dModel: number;
  readonly layers: number;
  readonly seq: number;
  /** Tokens per training batch (batch = tokens / seq). */
  readonly tokens: number;
  readonly timed: number;
  /** Also run the search and the sweep (the goal point skips them). */
  readonly analyses: boolean;
}

export const SCALE_VOCAB = 34;
/** Tasks × demo prompts and zero-shot queries of the search; prompt pairs and last positions of the sweep. */
export const SEARCH = { tasks: 4, prompts: 4, queries: 16 } as const;
export const SWEEP = { tasks: 2, prompts: 4, positions: 8 } as const;

export interface ScalePointResult extends ScalePointSpec {
  readonly batch: number;
  readonly matmulGflops: number;
  readonly forwardMs: number;
  readonly trainMs: number;
  readonly tvSearchMs: number | null;
  readonly patchSweepMs: number | null;
  readonly peakRssBytes: number;
  readonly seconds: number;
}

export function scaleModelConfig(p: Pick<ScalePointSpec, 'dModel' | 'layers' | 'seq'>) {
  return resolveModelConfig({ layers: p.layers, dModel: p.dModel, heads: p.dModel / 32, vocab: SCALE_VOCAB, maxSeq: p.seq });
}

export const demosFor = (seq: number) => Math.floor((seq - 2) / 4);

export async function runScalePoint(p: ScalePointSpec): Promise<ScalePointResult> {
  const t0 = performance.now();
  const cfg = scaleModelConfig(p);
  const batch = p.tokens / p.seq;
  const n = batch * p.seq;
  const feeds = {
    tokens: { dtype: 'int64' as const, shape: [batch, p.seq], data: BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7919) % cfg.vocab)) },
    targets: { dtype: 'int64' as const, shape: [batch, p.seq], data: BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7919 + 3) % cfg.vocab)) },
    weights: { dtype: 'float32' as const, shape: [batch, p.seq], data: new Float32Array(n).fill(1) },
  };
  const matmul = await matmulSession(2048);
  const forward = await forwardSession(cfg);
  const trainer = await Trainer.create(() => iclLossProgram(cfg, 0), resolveOptimizerConfig({ schedule: 'constant' }));
  const repeats = { timed: p.timed, warmup: 1, quick: false };
  const t = await sampleInterleaved({ matmul: matmul.run, forward: () => forward.run({ tokens: feeds.tokens }), train: () => trainer.step(feeds, 1e-4) }, repeats);
  await Promise.all([matmul.release(), forward.release(), trainer.release()]);

  let tvSearchMs: number | null = null;
  let patchSweepMs: number | null = null;
  if (p.analyses) {
    const g = new Graph('float32');
    declareParams(g, cfg, 0);
    const model: ModelWeights = { cfg, params: new Map(g.params.map((x) => [x.value.name, x.data as Float32Array])) };
    const demos = demosFor(p.seq);
    const task = resolveTaskConfig({ kind: 'discrete', vocab: SCALE_VOCAB - 2, demos: { min: demos, max: demos }, heldoutTasks: 4 });
    const tasks = taskList(task, 'train');
    const engine = GraphBackend.open(model);
    const a = await sampleInterleaved(
      {
        search: () => tvSearch(engine, task, { tasks: tasks.slice(0, SEARCH.tasks), prompts: SEARCH.prompts, queries: SEARCH.queries, seed: 0 }),
        sweep: () => {
          const T = 4 * demos + 2;
          const positions = Array.from({ length: SWEEP.positions }, (_, i) => T - SWEEP.positions + i);
          return patch(engine, task, { tasks: tasks.slice(0, SWEEP.tasks), prompts: SWEEP.prompts, positions, seed: 0, site: 'resid_pre' });
        },
      },
      { timed: Math.max(2, p.timed - 1), warmup: 1, quick: false },
    );
    await engine.close();
    tvSearchMs = a.time('search').median;
    patchSweepMs = a.time('sweep').median;
  }
  return {
    ...p,
    batch,
    matmulGflops: spread(t.ms.matmul.map((ms) => matmulFlops(2048) / ms / 1e6)).median,
    forwardMs: t.time('forward').median,
    trainMs: t.time('train').median,
    tvSearchMs,
    patchSweepMs,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    seconds: (performance.now() - t0) / 1000,
  };
}

if (process.argv[1]?.endsWith('scale-point.js')) {
  runScalePoint(JSON.parse(process.argv[2]) as ScalePointSpec)
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e) => {
      console.error(`scale point: ${e instanceof Error ? e.message : e}`);
      process.exit(1);
    });
}

/** The axes a scale curve varies, one at a time, and the timings it reports (scale.ts draws them). */
export const AXES = { dModel: [64, 128, 256, 512], layers: [2, 4, 8, 12], seq: [64, 256, 1024] } as const;
export const GOAL = { dModel: 512, layers: 8, seq: 256 } as const;
export type Axis = keyof typeof AXES;
export const METRICS = ['forwardMs', 'trainMs', 'tvSearchMs', 'patchSweepMs'] as const;
export type Metric = (typeof METRICS)[number];
